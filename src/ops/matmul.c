/* matmul on both backends (shaders/matmul.comp, src/ref/matmul.c). */
#include "core_util.h"

#include "vkft/platform.h"
#include "vkft/quant.h"

#include <stdlib.h>
#include <string.h>

/* The register kernel's tile: rm x rn values per invocation, wn invocations along n (64 in a
 * workgroup). On a CPU driver each invocation is a SIMD lane whose loads are gathers, while
 * accumulators that spill stay in the L1 cache: the more multiply-adds per load, the faster, so
 * the tile is as big as the shape allows while the workgroups still keep every core busy. Up to
 * 8 x 16: bigger tiles run faster still (16 x 16, 32 x 16: up to 2x at 1024^3) but lavapipe takes
 * 0.2 and 0.5 s to create such a pipeline even from Mesa's shader cache (5 and 13 s without it),
 * 0.05 s at 8 x 16 and 0.01 s at 4 x 4 — paid by every process, and most runs are short. For the
 * same reason the lanes along n stay 8 (a lavapipe subgroup, which then shares its A rows) for
 * every N: the fewest lanes that cover N would be ~4% faster at the demo's shapes but one more
 * pipeline per orientation and N. Lanes past N leave at once. Measured on lavapipe (2 cores),
 * the matmuls of a demo step (M = 1024, N and K in 16..512) take 0.51-0.56x the time of the
 * earlier 4 x 4 .. 8 x 16 tiles over 16 lanes, at M = 256 0.55-0.59x. Every tile sums each output
 * in the same k order: the choice never changes a bit (test_kernels). */
static void register_tile(const vkft_backend *be, vkft_matmul_orient orient, vkft_dtype weight,
                          int64_t M, int64_t N, uint32_t *rm, uint32_t *rn, uint32_t *wn) {
  const vkft_device_info *info = vkft_device_get_info(be->dev);
  /* workgroups that keep the device busy: two per core of a CPU driver (lavapipe runs one
   * thread per core), else the GPU kernels' own measure (this kernel is their fallback) */
  int64_t enough = !strcmp(info->type, "cpu")        ? 2 * (int64_t)vkft_cpu_count()
                   : !strcmp(info->type, "discrete") ? 256
                                                     : 32;
  *rn = N > 32 ? 16 : 8, *wn = 8;
  int64_t gx = (N + *wn * *rn - 1) / (*wn * *rn);
  for (*rm = 8; *rm > 4 && gx * ((M + *rm * 8 - 1) / (*rm * 8)) < enough;) *rm /= 2;
  if (vkft_dtype_is_quantized(weight) && M >= 64 && N >= 256 && (M / 64) * (N / 256) >= 4)
    *rm = 16, *rn = 16, *wn = 16; /* a dequantized weight value serves more rows of A: worth a
                                     bigger pipeline (1024^3 NF4: 1.5x as fast as 8 x 16) */
  if (orient == VKFT_MATMUL_NT && M < 4) { /* generation at batch 1-3: one row per lane, all 64
                                                lanes along n (NT reads A by rows, so its tile
                                                need not be a multiple of 4 rows) */
    *rm = 1, *wn = 64;
    for (*rn = 16; *rn > 4 && (N + 64 * *rn - 1) / (64 * *rn) * M < enough;) *rn /= 2;
  }
  if (be->tuning.matmul_rm) *rm = be->tuning.matmul_rm, *rn = be->tuning.matmul_rn;
  if (be->tuning.matmul_wn) *wn = be->tuning.matmul_wn;
}

int vkft_matmul(vkft_backend *be, vkft_matmul_orient orient, const vkft_tensor *a,
                const vkft_tensor *b, vkft_tensor *c, int64_t M, int64_t N, int64_t K, float alpha,
                float beta) {
  if (M <= 0 || N <= 0 || K <= 0)
    return vkft_error("matmul: empty shape %lldx%lldx%lld", (long long)M, (long long)N,
                      (long long)K);
  unsigned weight_types = DT(VKFT_F32);
  for (int t = 0; orient != VKFT_MATMUL_TN && t < VKFT_DTYPE_COUNT; t++)
    if (t != VKFT_I32) weight_types |= DT(t); /* every float and quantized storage type */
  if (op_check("matmul", "A", a, M * K, DT(VKFT_F32)) ||
      op_check("matmul", "B", b, N * K, weight_types) ||
      op_check("matmul", "C", c, M * N, DT(VKFT_F32)))
    return VKFT_ERR;

  if (!be->dev) {
    float *bf = b->dtype == VKFT_F32 ? b->host : ref_as_f32(b, N * K);
    if (!bf) return VKFT_ERR;
    vkft_ref_matmul_f32(orient, a->host, bf, c->host, M, N, K, alpha, beta);
    if (bf != b->host) free(bf);
    return VKFT_OK;
  }

  static const char *names[3][VKFT_DTYPE_COUNT] = {
      [VKFT_MATMUL_NT] = {[VKFT_F32] = "matmul_nt_f32",
                          [VKFT_F16] = "matmul_nt_f16",
                          [VKFT_BF16] = "matmul_nt_bf16",
                          [VKFT_NF4] = "matmul_nt_nf4",
                          [VKFT_FP4] = "matmul_nt_fp4",
                          [VKFT_Q8_0] = "matmul_nt_q8_0",
                          [VKFT_Q4_0] = "matmul_nt_q4_0",
                          [VKFT_Q5_0] = "matmul_nt_q5_0",
                          [VKFT_Q4_K] = "matmul_nt_q4_k",
                          [VKFT_Q5_K] = "matmul_nt_q5_k",
                          [VKFT_Q6_K] = "matmul_nt_q6_k"},
      [VKFT_MATMUL_NN] = {[VKFT_F32] = "matmul_nn_f32",
                          [VKFT_F16] = "matmul_nn_f16",
                          [VKFT_BF16] = "matmul_nn_bf16",
                          [VKFT_NF4] = "matmul_nn_nf4",
                          [VKFT_FP4] = "matmul_nn_fp4",
                          [VKFT_Q8_0] = "matmul_nn_q8_0",
                          [VKFT_Q4_0] = "matmul_nn_q4_0",
                          [VKFT_Q5_0] = "matmul_nn_q5_0",
                          [VKFT_Q4_K] = "matmul_nn_q4_k",
                          [VKFT_Q5_K] = "matmul_nn_q5_k",
                          [VKFT_Q6_K] = "matmul_nn_q6_k"},
      [VKFT_MATMUL_TN] = {[VKFT_F32] = "matmul_tn_f32"}};
  if (M > UINT32_MAX || N > UINT32_MAX || K > UINT32_MAX)
    return vkft_error("matmul: dimension over 2^32");
  struct {
    uint64_t a, b, c;
    uint32_t M, N, K;
    float alpha, beta, pad;
    uint64_t scales, nested_absmax, nested_code;
    uint32_t block_shift, nested;
    float offset;
  } push = {.a = a->buf.addr,
            .b = b->buf.addr,
            .c = c->buf.addr,
            .M = (uint32_t)M,
            .N = (uint32_t)N,
            .K = (uint32_t)K,
            .alpha = alpha,
            .beta = beta};
  if (b->dtype == VKFT_NF4 || b->dtype == VKFT_FP4) { /* the block scales follow the codes */
    vkft_bnb4_layout l;
    vkft_bnb4_layout_of(b->n, b->quant.blocksize, b->quant.nested, &l);
    push.scales = b->buf.addr + l.scales;
    push.nested_absmax = b->buf.addr + l.nested_absmax;
    push.nested_code = b->buf.addr + l.nested_code;
    while ((1u << push.block_shift) < (uint32_t)b->quant.blocksize) push.block_shift++;
    push.nested = (uint32_t)b->quant.nested;
    push.offset = b->quant.offset;
  }
  int kernel;
  if (matmul_kernel_choose(be, M, N, &kernel) != VKFT_OK) return VKFT_ERR;
  push.alpha = matmul_kernel_alpha(be, kernel, alpha);
  vkft_dispatch_desc d = {.push = &push,
                          .push_size = sizeof push,
                          .reads = {vk_range_of(a), vk_range_of(b), vk_range_of(c)},
                          .read_count = beta != 0 ? 3 : 2,
                          .writes = {vk_range_of(c)},
                          .write_count = 1};
  if (kernel != MATMUL_REGISTER) { /* a GPU kernel (src/ops/matmul_kernels.c) */
    if (matmul_kernel_desc(be, kernel, orient, b->dtype, M, N, &d) != VKFT_OK) return VKFT_ERR;
    return vkft_stream_dispatch(be->dev, &d);
  }
  /* The CPU drivers' kernel (shaders/matmul.comp). */
  uint32_t rm, rn, wn;
  register_tile(be, orient, b->dtype, M, N, &rm, &rn, &wn);
  uint32_t bm = rm * (64 / wn), bn = rn * wn; /* 64 invocations: wn along n */
  /* The vector loads read A in 16-byte words and B in 16-byte (fp32) or 8-byte (16-bit) words:
   * the shader checks that the shape keeps rows aligned, this that the views start aligned
   * (a view may start at any element). */
  /* a quantized weight's 4-value loads read inside its blocks (any even address: a ggml view
   * starts at a block); they need rows of whole 4-value groups, which the shader's
   * row-alignment test already asks for */
  uint32_t vec = core_aligned(a, 16) && (vkft_dtype_is_quantized(b->dtype) ||
                                         core_aligned(b, b->dtype == VKFT_F32 ? 16 : 8));
  d.shader = names[orient][b->dtype];
  d.spec[0] = rm, d.spec[1] = rn, d.spec[2] = vec, d.spec[3] = wn;
  d.spec_count = 4;
  d.groups[0] = (uint32_t)((N + bn - 1) / bn), d.groups[1] = (uint32_t)((M + bm - 1) / bm);
  d.groups[2] = 1;
  return vkft_stream_dispatch(be->dev, &d);
}

int vkft_matmul_precision_of(const vkft_backend *be, vkft_matmul_orient orient, vkft_dtype weight,
                             int64_t M, int64_t N, vkft_matmul_precision *out) {
  int kernel = MATMUL_REGISTER;
  if (be->dev && matmul_kernel_choose(be, M, N, &kernel) != VKFT_OK) return VKFT_ERR;
  matmul_kernel_precision(be, kernel, weight, orient, out);
  return VKFT_OK;
}
