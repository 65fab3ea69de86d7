/* bitsandbytes' blockwise quantizers on the host, bit-identical to its CUDA kernels
 * (kQuantizeBlockwise with dQuantizeNF4 / dQuantizeFP4 / dQuantize, kDequantizeBlockwise), and
 * the double quantization of the block scales. The rules, case by case: docs/QUANT-BNB.md.
 *
 * Every product below is a separate statement: a compiler contracting x * r + c into one fused
 * multiply-add would round once where bnb rounds twice. */
#include "internal.h"

#include "vkft/error.h"

#include <stdlib.h>
#include <string.h>

enum { MAX_BLOCK = 4096 };

/* ---- one block ---- */

/* The kernel's reduction: fmaxf over |x| starting from -FLT_MAX (fmaxf skips NaNs), with the
 * zeros that pad a last partial block taking part. */
static float block_absmax(const float *x, int count, int partial) {
  float amax = partial ? 0.0f : -FLT_MAX;
  for (int i = 0; i < count; i++) {
    float a = fabsf(bnb_ftz(x[i]));
    amax = a > amax ? a : amax;
  }
  return amax;
}

/* The kernel multiplies by the reciprocal (1.0f / absmax, +inf for a zero block). */
static float block_scale(float absmax) {
  return bnb_ftz(1.0f / absmax);
}

static inline uint8_t nf4_index(float y, const float thresholds[15]) {
  int code = 0; /* a NaN exceeds nothing: code 0 */
  for (int k = 0; k < 15; k++) code += y > thresholds[k];
  return (uint8_t)code;
}

static inline uint8_t fp4_index(float y) {
  float a = fabsf(y);
  int interval = 0;
  for (int k = 0; k < 7; k++) interval += a > vkft_bnb_fp4_thresholds[k];
  return (uint8_t)(vkft_bnb_fp4_interval_code[interval] | (y < 0.0f ? 8 : 0));
}

typedef struct quantizer {
  vkft_bnb4_type type;
  float thresholds[15];
} quantizer;

static inline uint8_t index4(const quantizer *q, float x, float scale) {
  float y = bnb_ftz(bnb_ftz(x) * scale);
  return q->type == VKFT_BNB4_NF4 ? nf4_index(y, q->thresholds) : fp4_index(y);
}

/* count values of one block (count even except in a last block) into count / 2 rounded up bytes;
 * an odd count pads the last low nibble with the code of a zero (0 * scale: NaN for a zero
 * block, as on the device). */
static void pack_block(const quantizer *q, const float *x, int count, float scale,
                       uint8_t *packed) {
  int i = 0;
  for (; i + 1 < count; i += 2)
    packed[i / 2] = (uint8_t)(index4(q, x[i], scale) << 4 | index4(q, x[i + 1], scale));
  if (i < count) packed[i / 2] = (uint8_t)(index4(q, x[i], scale) << 4 | index4(q, 0.0f, scale));
}

/* dQuantize<0>: a 7-step binary search over the sorted code from index 127, then the nearer of
 * the final pivot and the neighbour on x's side, a tie going to the pivot. */
static uint8_t index8(const float code[256], float x) {
  int pivot = 127, upper_pivot = 255, lower_pivot = 0;
  float lower = -1.0f, upper = 1.0f, val = code[pivot];
  for (int step = 64; step > 0; step >>= 1) {
    if (x > val) {
      lower_pivot = pivot;
      lower = val;
      pivot += step;
    } else {
      upper_pivot = pivot;
      upper = val;
      pivot -= step;
    }
    val = code[pivot];
  }
  if (upper_pivot == 255) upper = code[255];
  if (lower_pivot == 0) lower = code[0];
  if (x > val) {
    float midpoint = bnb_ftz((upper + val) * 0.5f);
    return (uint8_t)(x > midpoint ? upper_pivot : pivot);
  }
  float midpoint = bnb_ftz((lower + val) * 0.5f);
  return (uint8_t)(x < midpoint ? lower_pivot : pivot);
}

/* count values of src from start, as fp32 in buf (a copy even for fp32: src may be unaligned). */
static const float *load_block(vkft_dtype dtype, const void *src, int64_t start, int count,
                               float *buf) {
  vkft_convert_to_f32(dtype, (const uint8_t *)src + start * (int64_t)vkft_dtype_size(dtype), buf,
                      (size_t)count);
  return buf;
}

/* ---- 4-bit ---- */

void vkft_bnb4_absmax(int blocksize, vkft_dtype dtype, const void *src, int64_t n, float *absmax) {
  float buf[MAX_BLOCK];
  for (int64_t start = 0, b = 0; start < n; start += blocksize, b++) {
    int count = (int)(n - start < blocksize ? n - start : blocksize);
    absmax[b] = block_absmax(load_block(dtype, src, start, count, buf), count, count < blocksize);
  }
}

/* With known block scales (known != NULL) or computing them into absmax. */
static void quantize4(vkft_bnb4_type type, int blocksize, vkft_dtype dtype, const void *src,
                      int64_t n, const float *known, uint8_t *packed, float *absmax) {
  quantizer q = {.type = type};
  vkft_bnb_nf4_thresholds(q.thresholds);
  float buf[MAX_BLOCK];
  for (int64_t start = 0, b = 0; start < n; start += blocksize, b++) {
    int count = (int)(n - start < blocksize ? n - start : blocksize);
    const float *x = load_block(dtype, src, start, count, buf);
    float block_max = known ? known[b] : block_absmax(x, count, count < blocksize);
    if (!known) absmax[b] = block_max;
    pack_block(&q, x, count, block_scale(block_max), packed + start / 2);
  }
}

void vkft_bnb4_quantize(vkft_bnb4_type type, int blocksize, vkft_dtype dtype, const void *src,
                        int64_t n, uint8_t *packed, float *absmax) {
  quantize4(type, blocksize, dtype, src, n, NULL, packed, absmax);
}

void vkft_bnb4_quantize_scaled(vkft_bnb4_type type, int blocksize, vkft_dtype dtype,
                               const void *src, int64_t n, const float *absmax, uint8_t *packed) {
  quantize4(type, blocksize, dtype, src, n, absmax, packed, NULL);
}

/* ---- 8-bit and double quantization ---- */

void vkft_bnb8_quantize(const float code[256], int blocksize, const float *src, int64_t n,
                        uint8_t *q, float *absmax) {
  for (int64_t start = 0, b = 0; start < n; start += blocksize, b++) {
    int count = (int)(n - start < blocksize ? n - start : blocksize);
    absmax[b] = block_absmax(src + start, count, count < blocksize);
    float scale = block_scale(absmax[b]);
    for (int i = 0; i < count; i++) {
      float y = bnb_ftz(bnb_ftz(src[start + i]) * scale);
      q[start + i] = index8(code, y);
    }
  }
}

float vkft_bnb_absmax_offset(const float *absmax, int64_t blocks) {
  /* torch's absmax.mean() sums in fp32 in an order set by its reduction kernel and multiplies by
   * fp32 1/n; a double sum (error below n * 2^-53 of the sum) divided once and rounded once is
   * within half an ulp of the exact mean, so the two may differ by an ulp or two */
  double sum = 0;
  for (int64_t i = 0; i < blocks; i++) sum += absmax[i];
  return (float)(sum / (double)blocks);
}

void vkft_bnb_double_quant(const float *absmax, int64_t blocks, float offset, uint8_t *q,
                           float *nested_absmax) {
  float map[256], centred[VKFT_BNB_NESTED_BLOCKSIZE];
  vkft_bnb_dynamic_map(map);
  for (int64_t start = 0; start < blocks; start += VKFT_BNB_NESTED_BLOCKSIZE) {
    int count = (int)(blocks - start < VKFT_BNB_NESTED_BLOCKSIZE ? blocks - start
                                                                 : VKFT_BNB_NESTED_BLOCKSIZE);
    for (int i = 0; i < count; i++) centred[i] = absmax[start + i] - offset; /* fp32, as torch */
    vkft_bnb8_quantize(map, VKFT_BNB_NESTED_BLOCKSIZE, centred, count, q + start,
                       nested_absmax + start / VKFT_BNB_NESTED_BLOCKSIZE);
  }
}

void vkft_bnb4_decode_absmax(const uint8_t *q, int64_t blocks, const float *nested_absmax,
                             int nested_blocksize, const float code[256], float offset,
                             float *absmax) {
  for (int64_t j = 0; j < blocks; j++) {
    float scaled = bnb_ftz(code[q[j]] * nested_absmax[j / nested_blocksize]);
    absmax[j] = scaled + offset;
  }
}

/* ---- whole weights ---- */

void vkft_bnb4_weight_absmax(const vkft_bnb4_weight *w, float *absmax) {
  if (w->nested)
    vkft_bnb4_decode_absmax(w->absmax_q, w->blocks, w->nested_absmax, w->nested_blocksize,
                            w->nested_code, w->offset, absmax);
  else
    memcpy(absmax, w->absmax, (size_t)w->blocks * sizeof *absmax);
}

void vkft_bnb4_dequantize(const vkft_bnb4_weight *w, const float *absmax, float *out) {
  const int64_t n = w->numel;
  for (int64_t i = 0; i < n; i++) {
    uint8_t byte = w->packed[i / 2];
    int nibble = i % 2 ? byte & 15 : byte >> 4;
    out[i] = bnb_ftz(w->code[nibble] * absmax[i / w->blocksize]);
  }
}

void vkft_bnb4_weight_free(vkft_bnb4_weight *w) {
  if (!w) return;
  free(w->owned);
  memset(w, 0, sizeof *w);
}

int vkft_bnb4_weight_quantize(vkft_bnb4_type type, int blocksize, int double_quant,
                              vkft_dtype dtype, const void *src, int rank, const int64_t *shape,
                              vkft_bnb4_weight *out) {
  memset(out, 0, sizeof *out);
  if (!vkft_bnb4_blocksize_valid(blocksize))
    return vkft_error("bnb 4-bit: block size %d (32, 64, ..., 4096)", blocksize);
  if (rank < 1 || rank > VKFT_BNB4_MAX_RANK) return vkft_error("bnb 4-bit: rank %d", rank);
  if (dtype == VKFT_I32) return vkft_error("bnb 4-bit: only f32/f16/bf16 weights quantize");
  int64_t n = 1;
  for (int d = 0; d < rank; d++) n *= shape[d];
  if (n <= 0 || n > INT32_MAX) /* bnb's kernels index with int */
    return vkft_error("bnb 4-bit: %lld values (1 .. 2^31 - 1)", (long long)n);
  int64_t blocks = (n + blocksize - 1) / blocksize;
  int64_t nested_blocks = (blocks + VKFT_BNB_NESTED_BLOCKSIZE - 1) / VKFT_BNB_NESTED_BLOCKSIZE;
  /* one allocation, floats first: absmax, [dynamic map, nested absmax,] packed, [codes] */
  size_t floats = (size_t)blocks + (double_quant ? 256 + (size_t)nested_blocks : 0);
  size_t bytes = (size_t)(n + 1) / 2 + (double_quant ? (size_t)blocks : 0);
  float *mem = malloc(floats * sizeof(float) + bytes);
  if (!mem) return vkft_error("bnb 4-bit: out of host memory");
  float *absmax = mem;
  uint8_t *packed = (uint8_t *)(mem + floats);
  vkft_bnb4_quantize(type, blocksize, dtype, src, n, packed, absmax);
  *out = (vkft_bnb4_weight){.type = type,
                            .blocksize = blocksize,
                            .rank = rank,
                            .numel = n,
                            .blocks = blocks,
                            .dtype = dtype,
                            .packed = packed,
                            .absmax = absmax,
                            .owned = mem};
  for (int d = 0; d < rank; d++) out->shape[d] = shape[d];
  vkft_bnb4_code(type, out->code);
  vkft_bnb4_quant_map(type, out->quant_map);
  if (double_quant) {
    float *map = absmax + blocks, *nested_absmax = map + 256;
    uint8_t *absmax_q = packed + (n + 1) / 2;
    vkft_bnb_dynamic_map(map);
    out->offset = vkft_bnb_absmax_offset(absmax, blocks);
    vkft_bnb_double_quant(absmax, blocks, out->offset, absmax_q, nested_absmax);
    out->nested = 1;
    out->absmax = NULL;
    out->absmax_q = absmax_q;
    out->nested_absmax = nested_absmax;
    out->nested_code = map;
    out->nested_blocksize = VKFT_BNB_NESTED_BLOCKSIZE;
  }
  return VKFT_OK;
}
