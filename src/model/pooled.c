/* Sequence embeddings for `vkft data explore`: the training forward of one micro-batch slot
 * (model_forward, the same ops training records) followed by a weighted sum of the final hidden
 * state over the slot's tokens, all in the current stream. With weights 1/T this is mean
 * pooling of the state after the final norm, the vector the LM head reads. */
#include "internal.h"

#include "vkft/error.h"

int vkft_model_forward_pooled(vkft_model *m, int slot, const vkft_tensor *weights,
                              vkft_tensor *out) {
  if (slot < 0 || slot >= m->desc.micro_batches || m->slot_T[slot] <= 0)
    return vkft_error("model: micro-batch slot %d has no batch", slot);
  int64_t T = m->slot_T[slot], C = m->cfg.hidden_size;
  if (weights->n < T || out->n < C)
    return vkft_error("model: pooling %lld tokens of width %lld into %lld weights, %lld outputs",
                      (long long)T, (long long)C, (long long)weights->n, (long long)out->n);
  if (model_forward(m, slot, T) != VKFT_OK) return VKFT_ERR;
  /* out (1, C) = weights (1, T) . hf (T, C) */
  return vkft_matmul(m->be, VKFT_MATMUL_NN, weights, &m->hf, out, 1, C, T, 1.0f, 0.0f);
}
