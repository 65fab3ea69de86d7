/* QLoRA's frozen base: the seven linear projections of every layer as bitsandbytes 4-bit
 * weights (NF4/FP4), read as they are from a bitsandbytes checkpoint or quantized at load from
 * the f32/f16/bf16 safetensors — one tensor at a time, from the memory map, so the
 * full-precision model is never held in host or device memory. The device keeps the
 * checkpoint's layout (src/quant/device.c) and the matmul dequantizes as it reads. */
#include "internal.h"

#include "vkft/error.h"
#include "vkft/quant.h"
#include "vkft/safetensors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static vkft_dtype dtype_of(vkft_bnb4_type type) {
  return type == VKFT_BNB4_NF4 ? VKFT_NF4 : VKFT_FP4;
}

/* Uploads weight w into a new tensor t (or only counts it, planning). */
static int upload(vkft_model *m, const vkft_bnb4_weight *w, vkft_tensor *t) {
  vkft_quant q = {.blocksize = w->blocksize, .nested = w->nested, .offset = w->offset};
  if (model_own_quant(m, t, dtype_of(w->type), w->numel, &q, &m->bytes_weights) != VKFT_OK)
    return VKFT_ERR;
  if (m->desc.plan_only) return VKFT_OK;
  uint8_t *bytes = malloc((size_t)vkft_tensor_bytes(t));
  if (!bytes) return vkft_error_nomem();
  vkft_bnb4_pack_device(w, bytes);
  int status = vkft_tensor_write(m->be, t, bytes);
  free(bytes);
  return status;
}

/* The layout a plan needs without the weight's values: a plan of a folder with config.json
 * alone, or of one whose weights are to be quantized. */
static int plan_only(vkft_model *m, int64_t n, vkft_tensor *t) {
  vkft_quant q = {.blocksize = m->desc.quant_block ? m->desc.quant_block : 64,
                  .nested = m->desc.quant_double};
  return model_own_quant(m, t, m->desc.quant_dtype, n, &q, &m->bytes_weights);
}

int model_load_quantized_proj(vkft_model *m, const vkft_st_set *st, int l, int p, vkft_tensor *t) {
  int64_t out = m->proj_out[p], in = m->proj_in[p];
  char name[160];
  snprintf(name, sizeof name, "model.layers.%d.%s.weight", l, vkft_proj_path(p));
  vkft_bnb4_weight w = {0};
  int status;
  if (m->bnb_checkpoint) { /* as the checkpoint stores it */
    status = vkft_bnb4_read_proj(st, l, (vkft_proj)p, &w);
    if (status == VKFT_OK && (w.rank != 2 || w.shape[0] != out || w.shape[1] != in))
      status = vkft_error("%s: \"%s\" has shape [%lld, %lld] in its quant_state, config.json "
                          "implies [%lld, %lld]",
                          m->desc.dir, name, (long long)w.shape[0],
                          (long long)(w.rank > 1 ? w.shape[1] : 0), (long long)out, (long long)in);
  } else if (!st) {
    return plan_only(m, out * in, t) || model_add_param(m, name, 2, out, in, t, NULL);
  } else { /* quantized here, bit-identical to bitsandbytes' quantize_4bit */
    const vkft_st_tensor *src = vkft_st_find(st, name);
    vkft_dtype file_dtype;
    if (!src) return vkft_error("%s: missing tensor \"%s\"", m->desc.dir, name);
    if (src->rank != 2 || src->shape[0] != out || src->shape[1] != in)
      return vkft_error("%s: tensor \"%s\" has the wrong shape for config.json",
                        vkft_st_file_of(st, src), name);
    if (vkft_st_to_dtype(src->dtype, &file_dtype) != 0 || file_dtype == VKFT_I32)
      return vkft_error("%s: tensor \"%s\" has dtype %s (4-bit quantization reads F32, F16 or "
                        "BF16)",
                        vkft_st_file_of(st, src), name, src->dtype_name);
    if (m->desc.plan_only)
      return plan_only(m, out * in, t) || model_add_param(m, name, 2, out, in, t, NULL);
    vkft_bnb4_type type = m->desc.quant_dtype == VKFT_NF4 ? VKFT_BNB4_NF4 : VKFT_BNB4_FP4;
    status =
        vkft_bnb4_weight_quantize(type, m->desc.quant_block ? m->desc.quant_block : 64,
                                  m->desc.quant_double, file_dtype, src->data, 2, src->shape, &w);
  }
  if (status == VKFT_OK) status = upload(m, &w, t);
  vkft_bnb4_weight_free(&w);
  if (status != VKFT_OK) return vkft_error_prefix("loading %s", name);
  return model_add_param(m, name, 2, out, in, t, NULL);
}
