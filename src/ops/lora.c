/* LoRA on both backends: y += s B (A x) and its backward, on top of vkft_matmul (reference:
 * src/ref/lora.c). A (r, in) and B (out, r) are the trainable fp32 factors, s the scaling the
 * caller chose (alpha / r, or alpha / sqrt(r) with rsLoRA). */
#include "backend.h"

#include "vkft/error.h"

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
  if (vkft_matmul(be, VKFT_MATMUL_NT, x, a, u, T, r, in, 1.0f, 0.0f) ||
      vkft_matmul(be, VKFT_MATMUL_NT, u, b, y, T, out, r, s, 1.0f))
    return VKFT_ERR;
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
  if (vkft_matmul(be, VKFT_MATMUL_TN, dy, u, db, out, r, T, s, 1.0f) ||
      vkft_matmul(be, VKFT_MATMUL_NN, dy, b, du, T, r, out, s, 0.0f) ||
      vkft_matmul(be, VKFT_MATMUL_TN, du, x, da, r, in, T, 1.0f, 1.0f) ||
      (dx && vkft_matmul(be, VKFT_MATMUL_NN, du, a, dx, T, in, r, 1.0f, 1.0f)))
    return VKFT_ERR;
  return VKFT_OK;
}
