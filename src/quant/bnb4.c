/* bitsandbytes' blockwise quantizers on the host, bit-identical to its CUDA kernels
 * (kQuantizeBlockwise with dQuantizeNF4 / dQuantizeFP4 / dQuantize, kDequantizeBlockwise), and
 * the double quantization of the block scales. The rules, case by case: docs/QUANT-BNB.md.
 *
 * Every product below is a separate statement: a compiler contracting x * r + c into one fused
 * multiply-add would round once where bnb rounds twice. */
#include "internal.h"

#include "vkft/error.h"
#include "vkft/platform.h"

#include <stdlib.h>
#include <string.h>

enum { MAX_BLOCK = 4096 };

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define VKFT_X86_DISPATCH 1
#define VKFT_ALWAYS_INLINE __attribute__((always_inline))
#else
#define VKFT_X86_DISPATCH 0
#define VKFT_ALWAYS_INLINE
#endif

/* ---- one block ---- */

/* The kernel's reduction: fmaxf over |x| starting from -FLT_MAX (fmaxf skips NaNs; --ftz reads
 * subnormals as 0), with the zeros that pad a last partial block taking part. Done on the bit
 * patterns, whose order is the order of non-negative floats, so that it vectorizes. */
static inline VKFT_ALWAYS_INLINE float block_absmax(const float *x, int count, int partial) {
  int32_t best = -1;
  for (int i = 0; i < count; i++) {
    uint32_t bits;
    memcpy(&bits, &x[i], 4);
    int32_t a = (int32_t)(bits & 0x7fffffffu);
    a = a > 0x7f800000 ? -1 : a < 0x00800000 ? 0 : a;
    best = a > best ? a : best;
  }
  if (best < 0) return partial ? 0.0f : -FLT_MAX;
  float amax;
  memcpy(&amax, &best, 4);
  return amax;
}

/* The kernel multiplies by the reciprocal (1.0f / absmax, +inf for a zero block). */
static inline VKFT_ALWAYS_INLINE float block_scale(float absmax) {
  return bnb_ftz(1.0f / absmax);
}

typedef struct quantizer {
  vkft_bnb4_type type;
  float thresholds[15];
} quantizer;

/* The 4-bit codes of count values of one block (one more, a zero, when count is odd: it pads
 * the last low nibble with the code of 0 * scale, NaN for a zero block as on the device).
 * Written as passes over the block so that each loop vectorizes. */
static inline VKFT_ALWAYS_INLINE void code_block(const quantizer *q, const float *x, int count,
                                                 float scale, uint8_t *codes) {
  float y[MAX_BLOCK + 2];
  int padded = count + count % 2;
  for (int i = 0; i < count; i++) {
    float product = bnb_ftz(x[i]) * scale;
    y[i] = bnb_ftz(product);
  }
  if (count % 2) y[count] = bnb_ftz(0.0f * scale);
  if (q->type == VKFT_BNB4_NF4) {
    /* the code is the number of thresholds y exceeds; a NaN exceeds none: code 0 */
    float t[15];
    memcpy(t, q->thresholds, sizeof t);
    for (int i = 0; i < padded; i++) {
      int c = 0;
      for (int k = 0; k < 15; k++) c += y[i] > t[k];
      codes[i] = (uint8_t)c;
    }
    return;
  }
  /* FP4: the interval of |y| among the thresholds picks the 3 low bits, y < 0 the sign */
  float t[7];
  memcpy(t, vkft_bnb_fp4_thresholds, sizeof t);
  for (int i = 0; i < padded; i++) {
    int c = 0;
    for (int k = 0; k < 7; k++) c += fabsf(y[i]) > t[k];
    codes[i] = (uint8_t)c;
  }
  for (int i = 0; i < padded; i++)
    codes[i] = (uint8_t)(vkft_bnb_fp4_interval_code[codes[i]] | (y[i] < 0.0f ? 8 : 0));
}

/* Element 2i in the high nibble of byte i, 2i + 1 in the low one. */
static inline VKFT_ALWAYS_INLINE void pack_block(const quantizer *q, const float *x, int count,
                                                 float scale, uint8_t *packed) {
  uint8_t codes[MAX_BLOCK + 1];
  code_block(q, x, count, scale, codes);
  for (int i = 0; i < (count + 1) / 2; i++)
    packed[i] = (uint8_t)(codes[2 * i] << 4 | codes[2 * i + 1]);
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
static inline VKFT_ALWAYS_INLINE const float *load_block(vkft_dtype dtype, const void *src,
                                                         int64_t start, int count, float *buf) {
  const uint8_t *at = (const uint8_t *)src + start * (int64_t)vkft_dtype_size(dtype);
  if (dtype == VKFT_BF16) { /* inline: the common case, and a loop that vectorizes */
    for (int i = 0; i < count; i++) {
      uint16_t h;
      memcpy(&h, at + 2 * i, 2);
      uint32_t bits = (uint32_t)h << 16;
      memcpy(&buf[i], &bits, 4);
    }
    return buf;
  }
  vkft_convert_to_f32(dtype, at, buf, (size_t)count);
  return buf;
}

/* ---- 4-bit, blocks spread over the CPU's threads ---- */

/* Blocks are independent: a weight is cut into one run of whole blocks per thread, so the
 * result does not depend on the thread count. */
enum { MAX_THREADS = 64, MIN_VALUES_PER_THREAD = 1 << 18 };

typedef struct run4 {
  vkft_bnb4_type type;
  int blocksize;
  vkft_dtype dtype;
  const void *src;
  int64_t n, first_block, end_block;
  const float *known; /* block scales given, or NULL: computed into absmax */
  uint8_t *packed;    /* NULL: block scales only */
  float *absmax;
} run4;

static inline VKFT_ALWAYS_INLINE void run_blocks_body(const run4 *r) {
  quantizer q = {.type = r->type};
  vkft_bnb_nf4_thresholds(q.thresholds);
  float buf[MAX_BLOCK];
  for (int64_t b = r->first_block; b < r->end_block; b++) {
    int64_t start = b * r->blocksize;
    int count = (int)(r->n - start < r->blocksize ? r->n - start : r->blocksize);
    const float *x = load_block(r->dtype, r->src, start, count, buf);
    float block_max = r->known ? r->known[b] : block_absmax(x, count, count < r->blocksize);
    if (!r->known) r->absmax[b] = block_max;
    if (r->packed) pack_block(&q, x, count, block_scale(block_max), r->packed + start / 2);
  }
}

/* The same loops compiled for 8-wide AVX2 where the CPU has it (about twice as fast); the
 * arithmetic is the same IEEE single precision either way (no FMA: the target adds none and C11
 * forbids contracting across statements). */
#if VKFT_X86_DISPATCH
__attribute__((target("avx2"))) static void run_blocks_avx2(const run4 *r) {
  run_blocks_body(r);
}
#endif

static void run_blocks(void *arg) {
#if VKFT_X86_DISPATCH
  /* VKFT_QUANT_GENERIC=1 forces the portable loops (the tests compare both) */
  const char *generic = getenv("VKFT_QUANT_GENERIC");
  if (__builtin_cpu_supports("avx2") && !(generic && *generic == '1')) {
    run_blocks_avx2(arg);
    return;
  }
#endif
  run_blocks_body(arg);
}

static void run_parallel(const run4 *whole) {
  int64_t blocks = (whole->n + whole->blocksize - 1) / whole->blocksize;
  int64_t by_size = whole->n / MIN_VALUES_PER_THREAD;
  int threads = vkft_cpu_count();
  if (threads > MAX_THREADS) threads = MAX_THREADS;
  if (threads > by_size) threads = by_size > 1 ? (int)by_size : 1;
  run4 runs[MAX_THREADS];
  vkft_thread *started[MAX_THREADS];
  for (int t = 0; t < threads; t++) {
    runs[t] = *whole;
    runs[t].first_block = blocks * t / threads;
    runs[t].end_block = blocks * (t + 1) / threads;
    started[t] = t ? vkft_thread_start(run_blocks, &runs[t]) : NULL;
    if (t && !started[t]) run_blocks(&runs[t]); /* no thread: do it here */
  }
  run_blocks(&runs[0]);
  for (int t = 1; t < threads; t++)
    if (started[t]) vkft_thread_join(started[t]);
}

void vkft_bnb4_absmax(int blocksize, vkft_dtype dtype, const void *src, int64_t n, float *absmax) {
  run_parallel(
      &(run4){.blocksize = blocksize, .dtype = dtype, .src = src, .n = n, .absmax = absmax});
}

void vkft_bnb4_quantize(vkft_bnb4_type type, int blocksize, vkft_dtype dtype, const void *src,
                        int64_t n, uint8_t *packed, float *absmax) {
  run_parallel(&(run4){.type = type,
                       .blocksize = blocksize,
                       .dtype = dtype,
                       .src = src,
                       .n = n,
                       .packed = packed,
                       .absmax = absmax});
}

void vkft_bnb4_quantize_scaled(vkft_bnb4_type type, int blocksize, vkft_dtype dtype,
                               const void *src, int64_t n, const float *absmax, uint8_t *packed) {
  run_parallel(&(run4){.type = type,
                       .blocksize = blocksize,
                       .dtype = dtype,
                       .src = src,
                       .n = n,
                       .known = absmax,
                       .packed = packed});
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

/* the fp32 scale of one block, as vkft_bnb4_weight_absmax gives it */
static void weight_block_absmax(const vkft_bnb4_weight *w, int64_t block, float *scale) {
  if (w->nested) /* one block: its code, and its nested scale as element 0 of a one-block group */
    vkft_bnb4_decode_absmax(w->absmax_q + block, 1, w->nested_absmax + block / w->nested_blocksize,
                            1, w->nested_code, w->offset, scale);
  else
    *scale = w->absmax[block];
}

void vkft_bnb4_dequantize(const vkft_bnb4_weight *w, const float *absmax, float *out) {
  /* out[i] = code[nibble i] * absmax[i / blocksize]; blocks start on even i (blocksize even) */
  for (int64_t start = 0, b = 0; start < w->numel; start += w->blocksize, b++) {
    int64_t end = start + w->blocksize < w->numel ? start + w->blocksize : w->numel;
    for (int64_t i = start; i < end; i++) {
      uint8_t byte = w->packed[i / 2];
      float product = w->code[i % 2 ? byte & 15 : byte >> 4] * absmax[b];
      out[i] = bnb_ftz(product);
    }
  }
}

void vkft_bnb4_dequantize_range(const vkft_bnb4_weight *w, int64_t first, int64_t n, float *out) {
  int64_t block = -1;
  float scale = 0;
  for (int64_t k = 0; k < n; k++) {
    const int64_t i = first + k;
    if (i / w->blocksize != block) {
      block = i / w->blocksize;
      weight_block_absmax(w, block, &scale);
    }
    uint8_t byte = w->packed[i / 2];
    out[k] = bnb_ftz(w->code[i % 2 ? byte & 15 : byte >> 4] * scale);
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
  if (!mem) return vkft_error_with(VKFT_ERR_NOMEM, "bnb 4-bit: out of host memory");
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
