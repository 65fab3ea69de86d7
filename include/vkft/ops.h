/* The op API the model is written against. Every op has one entry here, implemented by two
 * backends: the Vulkan backend records a dispatch of shaders/<op>.comp into the current
 * stream, the CPU reference backend runs src/ref/<op>.c at once. Running the same model code
 * on both is how the whole model is tested (DESIGN.md, "One model, two backends"). */
#ifndef VKFT_OPS_H
#define VKFT_OPS_H

#include "vkft/dtype.h"
#include "vkft/ref.h"
#include "vkft/vk.h"

#include <stdint.h>

typedef struct vkft_backend vkft_backend;

/* How a quantized tensor is laid out: NF4 / FP4 storage holds the packed codes and block scales
 * (include/vkft/quant.h, "the device layout"), these parameters travel with it; a ggml block
 * type (VKFT_Q8_0 ...) holds a GGUF file's blocks and needs only blocksize (the type's). */
typedef struct vkft_quant {
  int32_t blocksize; /* values per block scale */
  int32_t nested;    /* the block scales are double-quantized (8-bit codes + nested scales) */
  float offset;      /* the double quantization's offset (the mean block scale) */
} vkft_quant;

/* A flat tensor of n elements of one dtype; shapes are the op's business (comments at each
 * op). A view shares storage at an element offset (ggml block types: whole blocks; NF4 / FP4:
 * whole tensors only). */
typedef struct vkft_tensor {
  vkft_dtype dtype;
  int64_t n;
  void *host;      /* reference backend storage */
  vkft_buffer buf; /* Vulkan backend storage (buf.addr includes the view offset) */
  int owns;        /* 0 for views */
  vkft_quant quant;
} vkft_tensor;

/* The CPU reference backend (no device). */
int vkft_backend_ref_create(vkft_backend **out);
/* The Vulkan backend on an open device (the backend does not own the device). */
int vkft_backend_vk_create(vkft_device *dev, vkft_backend **out);
void vkft_backend_destroy(vkft_backend *be);
const char *vkft_backend_name(const vkft_backend *be);
vkft_device *vkft_backend_device(const vkft_backend *be); /* NULL for the reference */

int vkft_tensor_alloc(vkft_backend *be, vkft_dtype dtype, int64_t n, vkft_tensor *t);
/* A quantized tensor of n values with layout q; written whole with vkft_tensor_write (the
 * layout's bytes, vkft_bnb4_pack_device). */
int vkft_tensor_alloc_quant(vkft_backend *be, vkft_dtype dtype, int64_t n, const vkft_quant *q,
                            vkft_tensor *t);
/* Bytes of the tensor's storage (n * element size, or the quantized layout's). */
uint64_t vkft_tensor_bytes(const vkft_tensor *t);
void vkft_tensor_free(vkft_backend *be, vkft_tensor *t);
vkft_tensor vkft_tensor_view(const vkft_tensor *t, int64_t offset, int64_t n);
/* Copies n elements in the tensor's own dtype from/to host memory (outside a stream). */
int vkft_tensor_write(vkft_backend *be, const vkft_tensor *t, const void *src);
int vkft_tensor_read(vkft_backend *be, const vkft_tensor *t, void *dst);
/* The same for n elements starting at element `offset` (streaming large tensors in pieces). */
int vkft_tensor_write_range(vkft_backend *be, const vkft_tensor *t, int64_t offset, int64_t n,
                            const void *src);
int vkft_tensor_read_range(vkft_backend *be, const vkft_tensor *t, int64_t offset, int64_t n,
                           void *dst);
/* Reads all n elements widened to fp32 (f32, f16 or bf16 tensors). */
int vkft_tensor_read_f32(vkft_backend *be, const vkft_tensor *t, float *dst);

/* Ops between vkft_begin and vkft_end are recorded into one command stream (Vulkan) and run
 * at vkft_end; the reference backend runs each op immediately. */
int vkft_begin(vkft_backend *be);
int vkft_end(vkft_backend *be);

/* ---- ops ---- */

/* C = alpha * op(A) op(B) + beta * C in the orientations of vkft/ref.h. A and C are fp32; B
 * (the weight operand) may be f32, f16, bf16 or any quantized dtype (nf4, fp4, q8_0, q4_0,
 * q5_0, q4_k, q5_k, q6_k) for NT and NN (the forward x W^T and the input gradient dY W;
 * quantized weights are dequantized as they are read, in fp32), f32 for TN. fp32 accumulation.
 * With beta == 0, C is only written. */
int vkft_matmul(vkft_backend *be, vkft_matmul_orient orient, const vkft_tensor *a,
                const vkft_tensor *b, vkft_tensor *c, int64_t M, int64_t N, int64_t K, float alpha,
                float beta);

/* Causal grouped-query attention over packed sequences: token i attends to token j iff
 * j <= i and seq_id[j] == seq_id[i] (ids of the whole flattened batch: give every packed
 * sequence of every batch row its own id). q is (T, Hq, D), k and v are (T, Hkv, D) fp32 with
 * Hq a multiple of Hkv (query head h reads kv head h / (Hq / Hkv)); seq_id is (T) i32.
 * Writes out (T, Hq, D) and lse (T, Hq), the log-sum-exp of the scores scale * <q, k> that
 * the backward needs (scale is usually 1 / sqrt(D)). Flash style: no T x T matrix exists.
 * Outputs must not overlap inputs (the device accumulates in them). */
int vkft_attention(vkft_backend *be, const vkft_tensor *q, const vkft_tensor *k,
                   const vkft_tensor *v, const vkft_tensor *seq_id, vkft_tensor *out,
                   vkft_tensor *lse, int64_t T, int64_t Hq, int64_t Hkv, int64_t D, float scale);
/* The forward for Tq queries at positions q_offset .. q_offset + Tq - 1 over keys, values and
 * sequence ids of every position 0 .. q_offset + Tq - 1 (a KV cache while generating); out is
 * (Tq, Hq, D), lse (Tq, Hq). vkft_attention is this with q_offset = 0. */
int vkft_attention_at(vkft_backend *be, const vkft_tensor *q, const vkft_tensor *k,
                      const vkft_tensor *v, const vkft_tensor *seq_id, vkft_tensor *out,
                      vkft_tensor *lse, int64_t Tq, int64_t q_offset, int64_t Hq, int64_t Hkv,
                      int64_t D, float scale);
/* The backward of vkft_attention from dout = dL/dout (T, Hq, D) and the forward's out and
 * lse: overwrites dq (T, Hq, D), dk and dv (T, Hkv, D) (not overlapping any input). delta is
 * caller-provided scratch of (T, Hq) fp32 (memory is planned once); it holds sum_d dout * out
 * afterwards. dk and dv sum over the query heads of a group and the query tokens in a fixed order:
 * same bits each run. */
int vkft_attention_bwd(vkft_backend *be, const vkft_tensor *q, const vkft_tensor *k,
                       const vkft_tensor *v, const vkft_tensor *seq_id, const vkft_tensor *out,
                       const vkft_tensor *lse, const vkft_tensor *dout, vkft_tensor *dq,
                       vkft_tensor *dk, vkft_tensor *dv, vkft_tensor *delta, int64_t T, int64_t Hq,
                       int64_t Hkv, int64_t D, float scale);
/* ---- ops-core: RMSNorm, RoPE, SwiGLU, embedding, elementwise, AdamW, gradient norm ----
 * Activations, gradients and optimizer state are fp32; frozen weights keep their storage
 * dtype. Every op gives the same bits for the same inputs (fixed reduction orders, no float
 * atomics). */

/* y (R, C) = x / sqrt(mean(x^2) + eps) * w, x (R, C) fp32, w (C) f32/f16/bf16; rstd (R) fp32
 * receives 1/rms of each row for the backward (NULL: not written). Qwen3's per-head q/k norm
 * is this op with R = T*H rows of C = head_dim. */
int vkft_rmsnorm(vkft_backend *be, const vkft_tensor *x, const vkft_tensor *w, vkft_tensor *y,
                 vkft_tensor *rstd, int64_t R, int64_t C, float eps);
/* dx (R, C) is written (callers add it into residual streams themselves); dw (C) fp32 is
 * accumulated (+=), or NULL for a frozen weight. rstd is the forward's. */
int vkft_rmsnorm_bwd(vkft_backend *be, const vkft_tensor *x, const vkft_tensor *w,
                     const vkft_tensor *rstd, const vkft_tensor *dy, vkft_tensor *dx,
                     vkft_tensor *dw, int64_t R, int64_t C);

/* RoPE in the Hugging Face rotate_half layout. The frequencies of a model are computed once
 * on the host (vkft_rope_freqs) into an int32 table the op reads; see src/ref/rope.c for the
 * exact angle semantics. */
typedef struct vkft_rope_config {
  double theta; /* rope_theta */
  int llama3;   /* rope_scaling {"rope_type": "llama3", ...}: the four fields below */
  double factor, low_freq_factor, high_freq_factor, original_max_position_embeddings;
} vkft_rope_config;
/* The D/2 inverse frequencies as transformers computes them (_compute_default_rope_parameters,
 * then _compute_llama3_parameters), evaluated in double and rounded to fp32 once. */
int vkft_rope_inv_freq(const vkft_rope_config *cfg, int64_t D, float *inv_freq);
/* Length in int32 of the table (3 * D/2): the fp32 inverse frequencies, then each one's
 * rotation per position as a 64-bit fixed-point fraction of a turn (what the shader uses). */
int64_t vkft_rope_freqs_len(int64_t D);
int vkft_rope_freqs(const vkft_rope_config *cfg, int64_t D, int32_t *freqs);
/* out (T, H, D) = rope(x (T, H, D)) at positions pos (T) int32 (packed sequences restart at
 * 0); out may be x. D even. */
int vkft_rope(vkft_backend *be, const vkft_tensor *x, vkft_tensor *out, const vkft_tensor *pos,
              const vkft_tensor *freqs, int64_t T, int64_t H, int64_t D);
/* dx = the inverse rotation of dout (both (T, H, D); dx may be dout). */
int vkft_rope_bwd(vkft_backend *be, const vkft_tensor *dout, vkft_tensor *dx,
                  const vkft_tensor *pos, const vkft_tensor *freqs, int64_t T, int64_t H,
                  int64_t D);

/* out = silu(gate) * up, all (R, F) fp32 flattened to n; out may be gate or up. */
int vkft_swiglu(vkft_backend *be, const vkft_tensor *gate, const vkft_tensor *up, vkft_tensor *out,
                int64_t n);
/* dgate, dup from dout (all n fp32); dgate/dup may be gate/up. */
int vkft_swiglu_bwd(vkft_backend *be, const vkft_tensor *gate, const vkft_tensor *up,
                    const vkft_tensor *dout, vkft_tensor *dgate, vkft_tensor *dup, int64_t n);

/* out (T, C) fp32 = table[ids[t], :], table (V, C) f32/f16/bf16, ids (T) int32. A GPU cannot
 * report a bad id: callers validate ids on the host (vkft_embedding_check_ids, or the plan
 * below); on the device an id outside [0, V) reads nothing and yields a row of NaN. */
int vkft_embedding(vkft_backend *be, const vkft_tensor *table, const vkft_tensor *ids,
                   vkft_tensor *out, int64_t T, int64_t C, int64_t V);
int vkft_embedding_check_ids(const int32_t *ids, int64_t T, int64_t V);
/* The backward's plan, built on the host from the ids (T): the tokens grouped by id so that
 * each distinct id's row is summed by one invocation in increasing t (deterministic, no
 * atomics). plan holds vkft_embedding_plan_len(T) int32; *unique receives the number of
 * distinct ids. Fails on an id outside [0, V). */
int64_t vkft_embedding_plan_len(int64_t T);
int vkft_embedding_plan(const int32_t *ids, int64_t T, int64_t V, int32_t *plan, int64_t *unique);
/* dtable (V, C) fp32 += dout (T, C) scattered by the ids the plan (int32 tensor) was built
 * from. */
int vkft_embedding_bwd(vkft_backend *be, const vkft_tensor *dout, const vkft_tensor *plan,
                       vkft_tensor *dtable, int64_t T, int64_t C, int64_t V, int64_t unique);

/* Elementwise on n elements. out = a + b (fp32; out may be a or b). */
int vkft_add(vkft_backend *be, const vkft_tensor *a, const vkft_tensor *b, vkft_tensor *out,
             int64_t n);
/* x *= s (fp32) */
int vkft_scale(vkft_backend *be, vkft_tensor *x, float s, int64_t n);
/* dst = src, same dtype (any). */
int vkft_copy(vkft_backend *be, const vkft_tensor *src, vkft_tensor *dst, int64_t n);
/* dst = src converted: f32 -> f16/bf16 (round to nearest even, bit-identical to
 * vkft_f32_to_f16/bf16) or f16/bf16 -> f32 (exact); same dtypes copy. */
int vkft_convert(vkft_backend *be, const vkft_tensor *src, vkft_tensor *dst, int64_t n);
/* t[0..n) = value in t's dtype (rounded to nearest even for f16/bf16; truncated for i32,
 * which must then be in the int32 range). */
int vkft_fill(vkft_backend *be, vkft_tensor *t, double value, int64_t n);

/* AdamW as torch.optim.AdamW (decoupled weight decay, bias correction; see src/ref/adamw.c
 * for the exact order of operations). step counts from 1. */
typedef struct vkft_adamw_hparams {
  double lr, beta1, beta2, eps, weight_decay;
  int64_t step;
} vkft_adamw_hparams;
/* The step's scalars in double, rounded to fp32 once (the bias corrections 1 - beta^step are
 * computed on the host so the shader needs no pow). */
vkft_adamw_step vkft_adamw_step_for(const vkft_adamw_hparams *hp);
/* One step on p, m, v (n fp32 each) with gradient g (n fp32) times grad_scale[0] (an fp32
 * tensor on the device, e.g. the clip coefficient vkft_grad_norm writes, so clipping needs no
 * host round trip; NULL: 1). */
int vkft_adamw(vkft_backend *be, vkft_tensor *p, const vkft_tensor *g, vkft_tensor *m,
               vkft_tensor *v, const vkft_tensor *grad_scale, const vkft_adamw_hparams *hp,
               int64_t n);

/* Global L2 norm of count fp32 gradient tensors (each whole, grads[k].n elements) and the clip
 * coefficient of torch.nn.utils.clip_grad_norm_: out (2 fp32) receives {norm,
 * min(1, max_norm / (norm + 1e-6))} (coefficient 1 when max_norm <= 0). slots is fp32 scratch of
 * vkft_grad_norm_slots(grads, count) elements holding per-chunk partial sums in a fixed
 * order, so the result is deterministic. */
int64_t vkft_grad_norm_slots(const vkft_tensor *grads, int count);
int vkft_grad_norm(vkft_backend *be, const vkft_tensor *grads, int count, vkft_tensor *slots,
                   vkft_tensor *out, float max_norm);

/* ---- dropout (src/ops/dropout.c) ----
 * out (n) = x * 1/(1-p) where kept, 0 where dropped, fp32; out may be x. The mask is a hash of
 * (seed, stream, index), the same on both backends: applying the op with the same seed and
 * stream to the gradient is the backward. */
int vkft_dropout(vkft_backend *be, const vkft_tensor *x, vkft_tensor *out, int64_t n, double p,
                 uint32_t seed, uint32_t stream);
/* out (n) = x + noise, fp32, noise uniform in [-magnitude, magnitude) from the same hash of
 * (seed, stream, index) on both backends (NEFTune's embedding noise); out may be x. Additive:
 * the backward is the identity. */
int vkft_uniform_noise(vkft_backend *be, const vkft_tensor *x, vkft_tensor *out, int64_t n,
                       float magnitude, uint32_t seed, uint32_t stream);

/* ---- cross-entropy of the LM head (src/ops/cross_entropy.c) ----
 * logits = h W^T, log-softmax over the vocabulary, loss of every trained token, and (when dh is
 * given) the backward in the same call. h (T, C) fp32; W (V, C) f32, f16, bf16 or a ggml block
 * type (a GGUF base's head, frozen: the matmuls dequantize it as they read); labels (T)
 * int32, already shifted by the caller (labels[t] is the target of position t); -100 (any
 * label outside [0, V)) is not trained. loss (fp32 [2]) receives the sum of the trained tokens'
 * losses and their count: a count of 0 is the caller's to handle (the sum is then 0).
 * dh (T, C), if not NULL, is written with grad_scale * dloss/dh (grad_scale = 1 / trained tokens
 * of the whole optimizer step, so accumulation gives the big-batch gradient); dW (V, C) fp32, if
 * not NULL (a trainable head; needs dh), is accumulated into. The (T, V) logits are never
 * materialised: the vocabulary goes in chunks of `chunk` columns (<= 0: a default) through
 * `scratch`, fp32 of vkft_cross_entropy_scratch_elems(T, V, chunk) elements. */
int vkft_cross_entropy(vkft_backend *be, const vkft_tensor *h, const vkft_tensor *w,
                       const vkft_tensor *labels, int64_t T, int64_t C, int64_t V, float grad_scale,
                       vkft_tensor *dh, vkft_tensor *dw, vkft_tensor *loss, vkft_tensor *scratch,
                       int64_t chunk);
/* The same with the options preference objectives need (vkft_pref_loss):
 *   row_loss (T fp32, optional): each token's loss (0 when not trained), written by the forward;
 *   row_weight (T fp32, optional): the backward's dlogits of token t are scaled by
 *     grad_scale * row_weight[t] (the derivative of the objective w.r.t. that token's loss);
 *   phase: FORWARD (loss, row_loss, no gradients), BACKWARD (the gradients only, from the
 *     statistics a FORWARD call with the same h, W, labels and scratch left there: what lies
 *     between may read row_loss and write row_weight, not the scratch) or BOTH. */
typedef enum vkft_ce_phase { VKFT_CE_BOTH, VKFT_CE_FORWARD, VKFT_CE_BACKWARD } vkft_ce_phase;
typedef struct vkft_cross_entropy_desc {
  const vkft_tensor *h, *w, *labels;
  int64_t T, C, V;
  float grad_scale;
  const vkft_tensor *row_weight;
  vkft_tensor *dh, *dw, *loss, *row_loss, *scratch;
  int64_t chunk;
  vkft_ce_phase phase;
} vkft_cross_entropy_desc;
int vkft_cross_entropy_run(vkft_backend *be, const vkft_cross_entropy_desc *d);
/* The chunk width actually used for a requested `chunk` (a multiple of 4, at most V rounded up). */
int64_t vkft_cross_entropy_chunk(int64_t V, int64_t chunk);
/* A chunk whose (T, chunk) fp32 logits fit in budget_bytes (between 256 and 2048 columns). */
int64_t vkft_cross_entropy_chunk_for_budget(int64_t T, int64_t V, uint64_t budget_bytes);
int64_t vkft_cross_entropy_scratch_elems(int64_t T, int64_t V, int64_t chunk);

/* ---- preference objectives (src/ops/pref.c, shaders/pref.comp, src/ref/pref.c) ----
 * One micro-batch of N pairs as 2N sequences: s = i the chosen and s = N + i the rejected
 * completion of pair i. From row_loss (T fp32, the LM head's per-token loss) and
 *   tok (T int32): 2 s + 1 when token t's target counts in sequence s's log-prob (the
 *     completion), 2 s when it is a target of s otherwise (the prompt: ORPO's NLL only), -1;
 *   ranges (2N x 2 int32): the tokens [first, end) of each sequence;
 *   ref (2N fp32, DPO; NULL for ORPO or a log-probs-only call): the reference log-probs;
 * writes seq (4N + 2 fp32): the log-probs (sums over the completion; ORPO: means), their token
 * counts, and the NLL sum and count of the chosen sequences; and, when weights (T fp32) is not
 * NULL, the derivative of the step's loss w.r.t. each token's loss (vkft_pref_objective in
 * vkft/ref.h) for vkft_cross_entropy_run's row_weight. N <= VKFT_PREF_MAX_PAIRS. */
#define VKFT_PREF_MAX_PAIRS 256
typedef struct vkft_pref_loss_desc {
  vkft_pref_objective objective;
  const vkft_tensor *row_loss, *tok, *ranges, *ref;
  vkft_tensor *seq, *weights;
  int64_t T, N;
} vkft_pref_loss_desc;
int vkft_pref_loss(vkft_backend *be, const vkft_pref_loss_desc *d);

/* ---- LoRA (src/ops/lora.c) ----
 * x (T, in) fp32, A (r, in) and B (out, r) fp32 (trainable), s = alpha / r (or alpha / sqrt(r)).
 * Forward: u (T, r) = x A^T is written (kept for the backward) and y (T, out) += s u B^T (y
 * holds the base layer's output). Backward from dy (T, out): dB += s dy^T u, du = s dy B,
 * dA += du^T x, dx += du A (dx may be NULL: the input needs no gradient); du (T, r) is scratch. */
int vkft_lora(vkft_backend *be, const vkft_tensor *x, const vkft_tensor *a, const vkft_tensor *b,
              vkft_tensor *y, vkft_tensor *u, int64_t T, int64_t in, int64_t out, int64_t r,
              float s);
int vkft_lora_bwd(vkft_backend *be, const vkft_tensor *x, const vkft_tensor *a,
                  const vkft_tensor *b, const vkft_tensor *u, const vkft_tensor *dy,
                  vkft_tensor *dx, vkft_tensor *da, vkft_tensor *db, vkft_tensor *du, int64_t T,
                  int64_t in, int64_t out, int64_t r, float s);

/* ---- DoRA (src/ops/dora.c, shaders/dora.comp, src/ref/dora.c) ----
 * Weight-decomposed LoRA (Liu et al. 2024) as PEFT's DoraLinearLayer computes it (docs/LORA.md):
 * a projection W (out, in) with LoRA factors A (r, in), B (out, r), scale s and a trainable
 * magnitude m (out), one per output row. The norm is detached (no gradient flows through it).
 * dora_norm: norm (out) = ||W[o, :] + s B[o, :] A|| per row in fp32 and, when m is not NULL,
 * scale (out) = m / norm. W is f32, f16 or bf16; the rest fp32. */
int vkft_dora_norm(vkft_backend *be, const vkft_tensor *w, const vkft_tensor *a,
                   const vkft_tensor *b, const vkft_tensor *m, vkft_tensor *norm,
                   vkft_tensor *scale, int64_t out, int64_t in, int64_t r, float s);
/* y (T, out) = beta y + (scale[o] - shift) x (T, out), fp32; y may be x (beta 0: y only
 * written). shift 1 gives PEFT's (m / norm - 1) factor. */
int vkft_dora_scale(vkft_backend *be, const vkft_tensor *x, const vkft_tensor *scale,
                    vkft_tensor *y, int64_t T, int64_t out, float shift, float beta);
/* The magnitude's gradient: dm (out) += sum_t dy[t, o] yd[t, o] / norm[o], dy and yd (T, out)
 * fp32, t summed in order (the same bits each run). */
int vkft_dora_mag_grad(vkft_backend *be, const vkft_tensor *dy, const vkft_tensor *yd,
                       const vkft_tensor *norm, vkft_tensor *dm, int64_t T, int64_t out);

/* ---- the KV cache of batched generation (src/ops/kv_cache.c) ----
 * A slotted cache of R rows of (Hkv, D) fp32 keys (another of values): every sequence being
 * generated owns a run of rows, one per position, so sequences of any lengths share one batch.
 * Row indices are int32 tensors built on the host; the device cannot report a bad one, so the
 * caller keeps them in range (the reference backend checks). */
/* cache[rows[t], :] = x[t, :] for t < T: x (T, W) fp32, rows (T) int32 distinct, in [0, R);
 * cache (R, W) fp32. */
int vkft_kv_store(vkft_backend *be, const vkft_tensor *x, const vkft_tensor *rows,
                  vkft_tensor *cache, int64_t T, int64_t W, int64_t R);
/* T new queries q (T, Hq, D), each over its own sequence: query t is at position pos[t] and
 * its key and value are stored at row rows[t], so it attends to the rows rows[t] - pos[t] ..
 * rows[t] of k and v (R, Hkv, D) (causal by construction). Writes out (T, Hq, D) fp32; query
 * head h reads kv head h / (Hq / Hkv). A query's result depends only on its own row and keys,
 * not on the rest of the batch (the same bits batched or alone). */
int vkft_attention_decode(vkft_backend *be, const vkft_tensor *q, const vkft_tensor *k,
                          const vkft_tensor *v, const vkft_tensor *rows, const vkft_tensor *pos,
                          vkft_tensor *out, int64_t T, int64_t R, int64_t Hq, int64_t Hkv,
                          int64_t D, float scale);

#endif
