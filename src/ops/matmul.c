/* matmul on both backends (shaders/matmul.comp, src/ref/matmul.c). */
#include "core_util.h"

#include "vkft/quant.h"

#include <stdlib.h>

int vkft_matmul(vkft_backend *be, vkft_matmul_orient orient, const vkft_tensor *a,
                const vkft_tensor *b, vkft_tensor *c, int64_t M, int64_t N, int64_t K, float alpha,
                float beta) {
  if (M <= 0 || N <= 0 || K <= 0)
    return vkft_error("matmul: empty shape %lldx%lldx%lld", (long long)M, (long long)N,
                      (long long)K);
  unsigned weight_types = orient == VKFT_MATMUL_TN ? DT(VKFT_F32)
                                                   : DT(VKFT_F32) | DT(VKFT_F16) | DT(VKFT_BF16) |
                                                         DT(VKFT_NF4) | DT(VKFT_FP4);
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
                          [VKFT_FP4] = "matmul_nt_fp4"},
      [VKFT_MATMUL_NN] = {[VKFT_F32] = "matmul_nn_f32",
                          [VKFT_F16] = "matmul_nn_f16",
                          [VKFT_BF16] = "matmul_nn_bf16",
                          [VKFT_NF4] = "matmul_nn_nf4",
                          [VKFT_FP4] = "matmul_nn_fp4"},
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
  if (vkft_dtype_is_quantized(b->dtype)) { /* the block scales follow the codes */
    vkft_bnb4_layout l;
    vkft_bnb4_layout_of(b->n, b->quant.blocksize, b->quant.nested, &l);
    push.scales = b->buf.addr + l.scales;
    push.nested_absmax = b->buf.addr + l.nested_absmax;
    push.nested_code = b->buf.addr + l.nested_code;
    while ((1u << push.block_shift) < (uint32_t)b->quant.blocksize) push.block_shift++;
    push.nested = (uint32_t)b->quant.nested;
    push.offset = b->quant.offset;
  }
  /* Register tile per invocation: the biggest that still gives the device enough workgroups
   * (CPU drivers gain most from big tiles: every per-lane load is costly there). */
  uint32_t rm = 4, rn = 4;
  if (vkft_dtype_is_quantized(b->dtype) && M >= 64 && N >= 256 && (M / 64) * (N / 256) >= 4)
    rm = 16, rn = 16; /* a dequantized weight value serves more rows of A */
  else if (M >= 32 && N >= 256 && (M / 32) * (N / 256) >= 4)
    rm = 8, rn = 16;
  else if (M >= 32 && N >= 128 && (M / 32) * (N / 128) >= 4)
    rm = 8, rn = 8;
  else if (orient == VKFT_MATMUL_NT && M < 4)
    rm = 1; /* generation at batch 1-3: rows past M would be computed for nothing (NT reads A by
               rows, so its tile need not be a multiple of 4 rows) */
  if (be->tuning.matmul_rm) rm = be->tuning.matmul_rm, rn = be->tuning.matmul_rn;
  uint32_t bm = rm * 4, bn = rn * 16; /* 64 invocations: 16 along n, 4 along m */
  /* The vector loads read A in 16-byte words and B in 16-byte (fp32) or 8-byte (16-bit) words:
   * the shader checks that the shape keeps rows aligned, this that the views start aligned
   * (a view may start at any element). */
  uint32_t vec = core_aligned(a, 16) && core_aligned(b, b->dtype == VKFT_F32 ? 16 : 8);
  /* a quantized weight is a whole tensor (aligned); its 4-value loads need rows of whole
   * 4-value groups, which the shader's row-alignment test already asks for */
  vkft_dispatch_desc d = {
      .shader = names[orient][b->dtype],
      .spec = {rm, rn, vec},
      .spec_count = 3,
      .push = &push,
      .push_size = sizeof push,
      .groups = {(uint32_t)((N + bn - 1) / bn), (uint32_t)((M + bm - 1) / bm), 1},
      .reads = {vk_range_of(a), vk_range_of(b), vk_range_of(c)},
      .read_count = beta != 0 ? 3 : 2,
      .writes = {vk_range_of(c)},
      .write_count = 1};
  return vkft_stream_dispatch(be->dev, &d);
}
