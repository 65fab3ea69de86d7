/* Quantized tensors on a device (include/vkft/quant.h): the layout of bitsandbytes 4-bit
 * weights (the checkpoint's packed nibbles and block scales side by side in one tensor, aligned
 * for the shaders' loads, with the double-quantized scales kept compressed: 4.13 bits per weight
 * instead of 4.5), and the size and reference dequantization of every quantized dtype (ggml
 * block types are stored as the GGUF file's blocks). */
#include "internal.h"

#include "vkft/ggml_quants.h"
#include "vkft/quant.h"

#include <string.h>

static uint64_t round16(uint64_t x) {
  return (x + 15) / 16 * 16;
}

void vkft_bnb4_layout_of(int64_t n, int blocksize, int nested, vkft_bnb4_layout *out) {
  memset(out, 0, sizeof *out);
  out->blocks = (n + blocksize - 1) / blocksize;
  out->scales = round16(((uint64_t)n + 1) / 2);
  if (!nested) {
    out->bytes = out->scales + round16((uint64_t)out->blocks * 4);
    return;
  }
  out->nested_absmax = out->scales + round16((uint64_t)out->blocks);
  int64_t nested_blocks = (out->blocks + VKFT_BNB_NESTED_BLOCKSIZE - 1) / VKFT_BNB_NESTED_BLOCKSIZE;
  out->nested_code = out->nested_absmax + round16((uint64_t)nested_blocks * 4);
  out->bytes = out->nested_code + 256 * 4;
}

void vkft_bnb4_pack_device(const vkft_bnb4_weight *w, void *dst) {
  vkft_bnb4_layout l;
  vkft_bnb4_layout_of(w->numel, w->blocksize, w->nested, &l);
  uint8_t *d = dst;
  memset(d, 0, l.bytes);
  memcpy(d, w->packed, ((size_t)w->numel + 1) / 2);
  if (!w->nested) {
    memcpy(d + l.scales, w->absmax, (size_t)l.blocks * 4);
    return;
  }
  int64_t nested_blocks = (l.blocks + VKFT_BNB_NESTED_BLOCKSIZE - 1) / VKFT_BNB_NESTED_BLOCKSIZE;
  memcpy(d + l.scales, w->absmax_q, (size_t)l.blocks);
  memcpy(d + l.nested_absmax, w->nested_absmax, (size_t)nested_blocks * 4);
  memcpy(d + l.nested_code, w->nested_code, 256 * 4);
}

void vkft_bnb4_dequantize_device(vkft_bnb4_type type, const void *bytes, int64_t n, int blocksize,
                                 int nested, float offset, float *out) {
  vkft_bnb4_layout l;
  vkft_bnb4_layout_of(n, blocksize, nested, &l);
  const uint8_t *b = bytes;
  vkft_bnb4_weight w = {.type = type,
                        .blocksize = blocksize,
                        .numel = n,
                        .blocks = l.blocks,
                        .packed = b,
                        .nested = nested,
                        .nested_blocksize = VKFT_BNB_NESTED_BLOCKSIZE,
                        .offset = offset};
  vkft_bnb4_code(type, w.code);
  /* the scales are read in place: the parts are 16-byte aligned in the tensor */
  if (nested) {
    w.absmax_q = b + l.scales;
    w.nested_absmax = (const float *)(const void *)(b + l.nested_absmax);
    w.nested_code = (const float *)(const void *)(b + l.nested_code);
  } else {
    w.absmax = (const float *)(const void *)(b + l.scales);
  }
  /* one block's scale at a time: no whole-weight scratch */
  for (int64_t start = 0, blk = 0; start < n; start += blocksize, blk++) {
    float absmax;
    vkft_bnb4_weight one = w;
    one.packed = b + start / 2;
    one.numel = start + blocksize < n ? blocksize : n - start;
    one.blocks = 1;
    if (nested) {
      vkft_bnb4_decode_absmax(w.absmax_q + blk, 1,
                              w.nested_absmax + blk / VKFT_BNB_NESTED_BLOCKSIZE, 1, w.nested_code,
                              offset, &absmax);
    } else {
      absmax = w.absmax[blk];
    }
    vkft_bnb4_dequantize(&one, &absmax, out + start);
  }
}

uint64_t vkft_quant_tensor_bytes(vkft_dtype dtype, int64_t n, int blocksize, int nested) {
  int ggml = vkft_ggml_type_of_dtype(dtype);
  if (ggml >= 0) return vkft_ggml_row_size((vkft_ggml_type)ggml, n);
  vkft_bnb4_layout l;
  vkft_bnb4_layout_of(n, blocksize, nested, &l);
  return l.bytes;
}

int vkft_quant_tensor_valid(vkft_dtype dtype, int64_t n, int blocksize) {
  if (!vkft_dtype_is_quantized(dtype) || n < 0) return 0;
  int ggml = vkft_ggml_type_of_dtype(dtype);
  if (ggml < 0) return vkft_bnb4_blocksize_valid(blocksize);
  int64_t block = vkft_ggml_block_size((vkft_ggml_type)ggml);
  return blocksize == block && n % block == 0;
}

void vkft_quant_tensor_dequantize(vkft_dtype dtype, const void *bytes, int64_t n, int blocksize,
                                  int nested, float offset, float *out) {
  int ggml = vkft_ggml_type_of_dtype(dtype);
  if (ggml >= 0) {
    vkft_ggml_dequantize_row((vkft_ggml_type)ggml, bytes, out, n);
    return;
  }
  vkft_bnb4_dequantize_device(dtype == VKFT_NF4 ? VKFT_BNB4_NF4 : VKFT_BNB4_FP4, bytes, n,
                              blocksize, nested, offset, out);
}
