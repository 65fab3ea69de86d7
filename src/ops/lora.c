/* LoRA on both backends: y += s B (A x) and its backward (reference: src/ref/lora.c). A (r, in)
 * and B (out, r) are the trainable fp32 factors, s the scaling the caller chose (alpha / r, or
 * alpha / sqrt(r) with rsLoRA). The products whose output has r columns (or rows) and a long
 * sum go through shaders/lora.comp, the others (a sum over r) through vkft_matmul. */
#include "core_util.h"

#include "vkft/platform.h"

#include <stdlib.h>
#include <string.h>

#define SKINNY_MAX_R 64

/* The skinny kernel for rank r (else the generic matmul): VKFT_LORA_MATMUL=1 forces the
 * generic path, to compare (src/ops/backend.h). */
static int use_skinny(const vkft_backend *be, int64_t r, int64_t M) {
  return r <= SKINNY_MAX_R && M <= 65535LL * 64 && !be->tuning.lora_generic;
}

/* C (M, R) = alpha op(A) op(B) + beta C with R = r (shaders/lora.comp): shader
 * lora_skinny_nt, _nn, _tn, or _tn_tc (C stored as (R, M)). */
static int skinny(vkft_backend *be, const char *shader, const vkft_tensor *a, const vkft_tensor *b,
                  vkft_tensor *c, int64_t M, int64_t R, int64_t K, float alpha, float beta) {
  struct {
    uint64_t a, b, c;
    uint32_t M, K;
    float alpha, beta;
  } push = {a->buf.addr, b->buf.addr, c->buf.addr, (uint32_t)M, (uint32_t)K, alpha, beta};
  /* RM x R accumulators per invocation, in workgroups of wg. On a CPU driver the B values'
   * loads (the same for all invocations) are shared by the RM rows and spilled accumulators are
   * cheap, so many rows pay; but lavapipe's time to create a pipeline (even from Mesa's cache)
   * grows with the accumulators (src/ops/matmul.c), paid by every process: up to 128. Small
   * workgroups (16) spread the few invocations of these products over the cores. Measured on
   * lavapipe (2 cores), the four products of a training step at 2 x 128 tokens: 0.72-0.77x the
   * time of RM = 4 in workgroups of 64. A GPU wants the accumulators in registers and many
   * invocations: one or two rows, 64 to a workgroup. The sums' order never depends on RM. */
  uint32_t rm, wg = 64;
  if (!strcmp(vkft_device_get_info(be->dev)->type, "cpu")) {
    int64_t enough = vkft_cpu_count();
    wg = 16;
    rm = R <= 16 ? 8 : R <= 32 ? 4 : 2;
    while (rm > 2 && ((uint64_t)M + (uint64_t)rm * wg - 1) / ((uint64_t)rm * wg) < (uint64_t)enough)
      rm /= 2;
  } else {
    rm = R <= 16 ? 2 : 1;
  }
  uint64_t invocations = ((uint64_t)M + rm - 1) / rm;
  /* 16-byte loads of A's and B's rows need views that start 16-byte aligned (the shader checks
   * the shapes) */
  uint32_t vec = core_aligned(a, 16) && core_aligned(b, 16);
  vkft_dispatch_desc d = {.shader = shader,
                          .spec = {(uint32_t)R, rm, vec, wg},
                          .spec_count = 4,
                          .push = &push,
                          .push_size = sizeof push,
                          .groups = {(uint32_t)((invocations + wg - 1) / wg), 1, 1},
                          .reads = {vk_range_of(a), vk_range_of(b), vk_range_of(c)},
                          .read_count = beta != 0 ? 3 : 2,
                          .writes = {vk_range_of(c)},
                          .write_count = 1};
  return vkft_stream_dispatch(be->dev, &d);
}

static int lora_check(const char *op, const vkft_tensor *x, const vkft_tensor *a,
                      const vkft_tensor *b, int64_t T, int64_t in, int64_t out, int64_t r) {
  if (T <= 0 || in <= 0 || out <= 0 || r <= 0)
    return vkft_error("%s: empty shape T=%lld in=%lld out=%lld r=%lld", op, (long long)T,
                      (long long)in, (long long)out, (long long)r);
  if (op_check(op, "x", x, T * in, DT(VKFT_F32)) || op_check(op, "A", a, r * in, DT(VKFT_F32)) ||
      op_check(op, "B", b, out * r, DT(VKFT_F32)))
    return VKFT_ERR;
  return VKFT_OK;
}

int vkft_lora(vkft_backend *be, const vkft_tensor *x, const vkft_tensor *a, const vkft_tensor *b,
              vkft_tensor *y, vkft_tensor *u, int64_t T, int64_t in, int64_t out, int64_t r,
              float s) {
  if (lora_check("lora", x, a, b, T, in, out, r) ||
      op_check("lora", "y", y, T * out, DT(VKFT_F32)) ||
      op_check("lora", "u", u, T * r, DT(VKFT_F32)))
    return VKFT_ERR;
  if (!be->dev) {
    vkft_ref_lora_f32(x->host, a->host, b->host, y->host, u->host, T, in, out, r, s);
    return VKFT_OK;
  }
  // u (T, r) = x A^T;  y (T, out) += s u B^T
  int status = use_skinny(be, r, T)
                   ? skinny(be, "lora_skinny_nt", x, a, u, T, r, in, 1.0f, 0.0f)
                   : vkft_matmul(be, VKFT_MATMUL_NT, x, a, u, T, r, in, 1.0f, 0.0f);
  if (status || vkft_matmul(be, VKFT_MATMUL_NT, u, b, y, T, out, r, s, 1.0f)) return VKFT_ERR;
  return VKFT_OK;
}

int vkft_lora_bwd(vkft_backend *be, const vkft_tensor *x, const vkft_tensor *a,
                  const vkft_tensor *b, const vkft_tensor *u, const vkft_tensor *dy,
                  vkft_tensor *dx, vkft_tensor *da, vkft_tensor *db, vkft_tensor *du, int64_t T,
                  int64_t in, int64_t out, int64_t r, float s) {
  if (lora_check("lora_bwd", x, a, b, T, in, out, r) ||
      op_check("lora_bwd", "u", u, T * r, DT(VKFT_F32)) ||
      op_check("lora_bwd", "dy", dy, T * out, DT(VKFT_F32)) ||
      (dx && op_check("lora_bwd", "dx", dx, T * in, DT(VKFT_F32))) ||
      op_check("lora_bwd", "dA", da, r * in, DT(VKFT_F32)) ||
      op_check("lora_bwd", "dB", db, out * r, DT(VKFT_F32)))
    return VKFT_ERR;
  if (!be->dev) {
    vkft_ref_lora_bwd_f32(x->host, a->host, b->host, u->host, dy->host, dx ? dx->host : NULL,
                          da->host, db->host, T, in, out, r, s);
    return VKFT_OK;
  }
  if (op_check("lora_bwd", "du (scratch)", du, T * r, DT(VKFT_F32))) return VKFT_ERR;
  // dB (out, r) += s dy^T u;  du (T, r) = s dy B;  dA (r, in) += du^T x;  dx (T, in) += du A
  if (use_skinny(be, r, out > T ? (out > in ? out : in) : (T > in ? T : in))) {
    if (skinny(be, "lora_skinny_tn", dy, u, db, out, r, T, s, 1.0f) ||
        skinny(be, "lora_skinny_nn", dy, b, du, T, r, out, s, 0.0f) ||
        skinny(be, "lora_skinny_tn_tc", x, du, da, in, r, T, 1.0f, 1.0f)) /* dA^T = x^T du */
      return VKFT_ERR;
  } else if (vkft_matmul(be, VKFT_MATMUL_TN, dy, u, db, out, r, T, s, 1.0f) ||
             vkft_matmul(be, VKFT_MATMUL_NN, dy, b, du, T, r, out, s, 0.0f) ||
             vkft_matmul(be, VKFT_MATMUL_TN, du, x, da, r, in, T, 1.0f, 1.0f)) {
    return VKFT_ERR;
  }
  if (dx && vkft_matmul(be, VKFT_MATMUL_NN, du, a, dx, T, in, r, 1.0f, 1.0f)) return VKFT_ERR;
  return VKFT_OK;
}
