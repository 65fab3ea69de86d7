/* ggml's block quantization, written from the format and ggml's reference algorithms
 * (ggml-org/ggml src/ggml-quants.c, quantize_row_*_ref and dequantize_row_*; docs/GGUF.md gives
 * the commit). The quantizers must give the same bytes as ggml's: every float expression below
 * is evaluated in the same order and precision as ggml's (fp32, no contraction into fused
 * multiply-adds: the project builds as ISO C11, which turns contraction off), and fp16 fields
 * round to nearest even like ggml's GGML_FP32_TO_FP16. tests/test_ggml_quants.c checks the
 * bytes against blocks ggml itself produced. */
#include "vkft/ggml_quants.h"

#include "vkft/dtype.h"

#include <math.h>
#include <string.h>

/* ggml treats a group whose largest magnitude is below this as all zeros (GROUP_MAX_EPS) */
#define GROUP_ZERO_EPS 1e-15f

/* Round to nearest, ties to even, for |x| < 2^22: adding 1.5 * 2^23 pushes the fraction out of
 * the float's mantissa, so the low mantissa bits hold the rounded integer plus 2^22. This is
 * how ggml rounds in the k-quants (nearest_int); lrintf would agree in the default rounding
 * mode, but a function call per weight is slow. */
static inline int round_even(float x) {
  float shifted = x + 12582912.0f;
  int32_t bits;
  memcpy(&bits, &shifted, sizeof bits);
  return (bits & 0x007fffff) - 0x00400000;
}

static inline int clamp_int(int v, int lo, int hi) {
  return v < lo ? lo : v > hi ? hi : v;
}

static inline float half(uint16_t h) {
  return vkft_f16_to_f32(h);
}

/* the element of largest magnitude (the first one on ties), with its sign */
static float signed_absmax(const float *x, int n) {
  float amax = 0.0f, max = 0.0f;
  for (int i = 0; i < n; i++) {
    if (amax < fabsf(x[i])) {
      amax = fabsf(x[i]);
      max = x[i];
    }
  }
  return max;
}

/* ======================================================================================
 * Q8_0: 32 weights, x = d * q, q = round(x / d) (half away from zero), d = absmax / 127
 * ====================================================================================== */

void vkft_quantize_row_q8_0(const float *x, vkft_block_q8_0 *y, int64_t n) {
  for (int64_t b = 0; b < n / VKFT_QK8_0; b++, x += VKFT_QK8_0) {
    float amax = 0.0f;
    for (int i = 0; i < VKFT_QK8_0; i++) amax = amax > fabsf(x[i]) ? amax : fabsf(x[i]);
    const float d = amax / 127.0f;
    const float inv_d = d != 0.0f ? 1.0f / d : 0.0f;
    y[b].d = vkft_f32_to_f16(d);
    for (int i = 0; i < VKFT_QK8_0; i++) y[b].qs[i] = (int8_t)roundf(x[i] * inv_d);
  }
}

void vkft_dequantize_row_q8_0(const vkft_block_q8_0 *x, float *y, int64_t n) {
  for (int64_t b = 0; b < n / VKFT_QK8_0; b++) {
    const float d = half(x[b].d);
    for (int i = 0; i < VKFT_QK8_0; i++) *y++ = x[b].qs[i] * d;
  }
}

/* ======================================================================================
 * Q4_0 / Q5_0: 32 weights, x = d * (q - 2^(bits-1)); d = -max / 2^(bits-1) with max the
 * signed element of largest magnitude, so that element maps exactly to q = 0. q is the
 * truncation of x / d + 2^(bits-1) + 0.5, i.e. rounding half up, capped at 2^bits - 1.
 * ====================================================================================== */

/* q values of one block of 32 with offset `zero` (8 or 16) into q[32]; returns d */
static float quantize_offset_block(const float *x, int zero, uint8_t q[32]) {
  const float d = signed_absmax(x, 32) / (float)-zero;
  const float inv_d = d != 0.0f ? 1.0f / d : 0.0f;
  const int qmax = 2 * zero - 1;
  for (int i = 0; i < 32; i++) {
    int v = (int8_t)(x[i] * inv_d + ((float)zero + 0.5f));
    q[i] = (uint8_t)(v < qmax ? v : qmax);
  }
  return d;
}

void vkft_quantize_row_q4_0(const float *x, vkft_block_q4_0 *y, int64_t n) {
  for (int64_t b = 0; b < n / VKFT_QK4_0; b++, x += VKFT_QK4_0) {
    uint8_t q[32];
    y[b].d = vkft_f32_to_f16(quantize_offset_block(x, 8, q));
    for (int j = 0; j < 16; j++) y[b].qs[j] = (uint8_t)(q[j] | q[j + 16] << 4);
  }
}

void vkft_dequantize_row_q4_0(const vkft_block_q4_0 *x, float *y, int64_t n) {
  for (int64_t b = 0; b < n / VKFT_QK4_0; b++, y += VKFT_QK4_0) {
    const float d = half(x[b].d);
    for (int j = 0; j < 16; j++) {
      y[j] = ((x[b].qs[j] & 0x0F) - 8) * d;
      y[j + 16] = ((x[b].qs[j] >> 4) - 8) * d;
    }
  }
}

void vkft_quantize_row_q5_0(const float *x, vkft_block_q5_0 *y, int64_t n) {
  for (int64_t b = 0; b < n / VKFT_QK5_0; b++, x += VKFT_QK5_0) {
    uint8_t q[32];
    y[b].d = vkft_f32_to_f16(quantize_offset_block(x, 16, q));
    uint32_t high = 0;
    for (int j = 0; j < 16; j++) {
      y[b].qs[j] = (uint8_t)((q[j] & 0x0F) | (q[j + 16] & 0x0F) << 4);
      high |= (uint32_t)(q[j] >> 4) << j;
      high |= (uint32_t)(q[j + 16] >> 4) << (j + 16);
    }
    for (int k = 0; k < 4; k++) y[b].qh[k] = (uint8_t)(high >> (8 * k));
  }
}

void vkft_dequantize_row_q5_0(const vkft_block_q5_0 *x, float *y, int64_t n) {
  for (int64_t b = 0; b < n / VKFT_QK5_0; b++, y += VKFT_QK5_0) {
    const float d = half(x[b].d);
    const uint32_t high = (uint32_t)x[b].qh[0] | (uint32_t)x[b].qh[1] << 8 |
                          (uint32_t)x[b].qh[2] << 16 | (uint32_t)x[b].qh[3] << 24;
    for (int j = 0; j < 16; j++) {
      const int q0 = (x[b].qs[j] & 0x0F) | (int)((high >> j) & 1) << 4;
      const int q1 = (x[b].qs[j] >> 4) | (int)((high >> (j + 16)) & 1) << 4;
      y[j] = (q0 - 16) * d;
      y[j + 16] = (q1 - 16) * d;
    }
  }
}

/* ======================================================================================
 * k-quant helpers
 * ====================================================================================== */

/* Affine fit x ~ scale * q - min_out, q in 0..qmax, of one sub-block of n weights with weights
 * w (ggml's make_qkx2_quants without the mean-absolute-deviation option): start from the
 * min/max grid, then try nstep + 1 grids of (qmax + rmin + rdelta * k) / (max - min) levels,
 * solving the weighted least squares scale and offset for each q assignment and keeping the
 * best. The offset is never positive (the min is <= 0), as Q4_K/Q5_K store min >= 0. */
static float fit_affine(int n, int qmax, const float *x, const float *w, uint8_t *q, float *min_out,
                        uint8_t *q_try, float rmin, float rdelta, int nstep) {
  float lo = x[0], hi = x[0];
  float sum_w = w[0], sum_x = sum_w * x[0];
  for (int i = 1; i < n; i++) {
    if (x[i] < lo) lo = x[i];
    if (x[i] > hi) hi = x[i];
    sum_w += w[i];
    sum_x += w[i] * x[i];
  }
  if (lo > 0) lo = 0;
  if (hi == lo) {
    memset(q, 0, (size_t)n);
    *min_out = -lo;
    return 0.0f;
  }
  float inv_scale = qmax / (hi - lo);
  float scale = 1 / inv_scale;
  float best_err = 0;
  for (int i = 0; i < n; i++) {
    q[i] = (uint8_t)clamp_int(round_even(inv_scale * (x[i] - lo)), 0, qmax);
    const float diff = scale * q[i] + lo - x[i];
    best_err += w[i] * (diff * diff);
  }
  for (int step = 0; step <= nstep; step++) {
    inv_scale = (rmin + rdelta * step + qmax) / (hi - lo);
    float sum_l = 0, sum_l2 = 0, sum_xl = 0;
    for (int i = 0; i < n; i++) {
      const int l = clamp_int(round_even(inv_scale * (x[i] - lo)), 0, qmax);
      q_try[i] = (uint8_t)l;
      sum_l += w[i] * l;
      sum_l2 += w[i] * l * l;
      sum_xl += w[i] * l * x[i];
    }
    const float det = sum_w * sum_l2 - sum_l * sum_l;
    if (!(det > 0)) continue;
    float try_scale = (sum_w * sum_xl - sum_x * sum_l) / det;
    float try_min = (sum_l2 * sum_x - sum_l * sum_xl) / det;
    if (try_min > 0) {
      try_min = 0;
      try_scale = sum_xl / sum_l2;
    }
    float err = 0;
    for (int i = 0; i < n; i++) {
      const float diff = try_scale * q_try[i] + try_min - x[i];
      err += w[i] * (diff * diff);
    }
    if (err < best_err) {
      memcpy(q, q_try, (size_t)n);
      best_err = err;
      scale = try_scale;
      lo = try_min;
    }
  }
  *min_out = -lo;
  return scale;
}

/* Symmetric fit x ~ scale * (q - qhalf), q in 0..2*qhalf-1, of n weights weighted by x^2
 * (ggml's make_qx_quants with rmse_type 1 and no importance weights): the grid through the
 * element of largest magnitude, then 18 grids of qhalf +- 0.1 * k levels, keeping the one with
 * the best weighted least-squares fit. */
static float fit_symmetric(int n, int qhalf, const float *x, uint8_t *q) {
  float max = 0, amax = 0;
  for (int i = 0; i < n; i++) {
    if (fabsf(x[i]) > amax) {
      amax = fabsf(x[i]);
      max = x[i];
    }
  }
  if (amax < GROUP_ZERO_EPS) {
    memset(q, 0, (size_t)n);
    return 0.0f;
  }
  float inv_scale = -qhalf / max;
  float sum_lx = 0, sum_l2 = 0;
  for (int i = 0; i < n; i++) {
    const int l = clamp_int(round_even(inv_scale * x[i]), -qhalf, qhalf - 1);
    q[i] = (uint8_t)(l + qhalf);
    const float w = x[i] * x[i];
    sum_lx += w * x[i] * l;
    sum_l2 += w * l * l;
  }
  float scale = sum_l2 != 0 ? sum_lx / sum_l2 : 0.0f;
  float best = scale * sum_lx;
  for (int k = -9; k <= 9; k++) {
    if (k == 0) continue;
    inv_scale = -(qhalf + 0.1f * k) / max;
    sum_lx = sum_l2 = 0;
    for (int i = 0; i < n; i++) {
      const int l = clamp_int(round_even(inv_scale * x[i]), -qhalf, qhalf - 1);
      const float w = x[i] * x[i];
      sum_lx += w * x[i] * l;
      sum_l2 += w * l * l;
    }
    if (sum_l2 > 0 && sum_lx * sum_lx > best * sum_l2) {
      for (int i = 0; i < n; i++)
        q[i] = (uint8_t)(qhalf + clamp_int(round_even(inv_scale * x[i]), -qhalf, qhalf - 1));
      scale = sum_lx / sum_l2;
      best = scale * sum_lx;
    }
  }
  return scale;
}

void vkft_ggml_k4_scale_min(const uint8_t scales[VKFT_K_SCALE_SIZE], int j, uint8_t *scale,
                            uint8_t *min) {
  if (j < 4) {
    *scale = scales[j] & 63;
    *min = scales[j + 4] & 63;
  } else {
    *scale = (uint8_t)((scales[j + 4] & 0x0F) | (scales[j - 4] >> 6) << 4);
    *min = (uint8_t)((scales[j + 4] >> 4) | (scales[j] >> 6) << 4);
  }
}

/* The shared part of Q4_K and Q5_K (8 sub-blocks of 32, q in 0..qmax): fits each sub-block,
 * quantizes the 8 scales and 8 mins to 6 bits against the super-block's fp16 d and dmin,
 * then requantizes the weights against the rounded scales. Fills d, dmin, scales and q[256]. */
static void quantize_k_affine(const float *x, int qmax, float rmin, int nstep, uint16_t *d,
                              uint16_t *dmin, uint8_t scales[VKFT_K_SCALE_SIZE], uint8_t q[256]) {
  float sub_scale[8], sub_min[8], w[32];
  uint8_t q_try[32];
  float max_scale = 0, max_min = 0;
  for (int j = 0; j < 8; j++) {
    const float *xs = x + 32 * j;
    float sum_x2 = 0;
    for (int i = 0; i < 32; i++) sum_x2 += xs[i] * xs[i];
    /* ggml's weighting: the sub-block's RMS plus each weight's magnitude */
    const float rms = sqrtf(sum_x2 / 32);
    for (int i = 0; i < 32; i++) w[i] = rms + fabsf(xs[i]);
    sub_scale[j] = fit_affine(32, qmax, xs, w, q + 32 * j, &sub_min[j], q_try, rmin, 0.1f, nstep);
    if (sub_scale[j] > max_scale) max_scale = sub_scale[j];
    if (sub_min[j] > max_min) max_min = sub_min[j];
  }
  const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
  const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
  memset(scales, 0, VKFT_K_SCALE_SIZE);
  for (int j = 0; j < 8; j++) {
    uint8_t ls = (uint8_t)round_even(inv_scale * sub_scale[j]);
    uint8_t lm = (uint8_t)round_even(inv_min * sub_min[j]);
    ls = ls < 63 ? ls : 63;
    lm = lm < 63 ? lm : 63;
    if (j < 4) {
      scales[j] = ls;
      scales[j + 4] = lm;
    } else {
      scales[j + 4] = (uint8_t)((ls & 0x0F) | (lm & 0x0F) << 4);
      scales[j - 4] |= (uint8_t)((ls >> 4) << 6);
      scales[j] |= (uint8_t)((lm >> 4) << 6);
    }
  }
  *d = vkft_f32_to_f16(max_scale / 63.f);
  *dmin = vkft_f32_to_f16(max_min / 63.f);
  for (int j = 0; j < 8; j++) {
    uint8_t sc, m;
    vkft_ggml_k4_scale_min(scales, j, &sc, &m);
    const float step = half(*d) * sc;
    if (step == 0) continue; /* keeps the fit's q, as ggml does */
    const float offset = half(*dmin) * m;
    for (int i = 0; i < 32; i++)
      q[32 * j + i] = (uint8_t)clamp_int(round_even((x[32 * j + i] + offset) / step), 0, qmax);
  }
}

/* ======================================================================================
 * Q4_K / Q5_K: x = d * sc[j] * q - dmin * m[j] per sub-block j of 32
 * ====================================================================================== */

void vkft_quantize_row_q4_K(const float *x, vkft_block_q4_K *y, int64_t n) {
  for (int64_t b = 0; b < n / VKFT_QK_K; b++, x += VKFT_QK_K) {
    uint8_t q[VKFT_QK_K];
    quantize_k_affine(x, 15, -1.0f, 20, &y[b].d, &y[b].dmin, y[b].scales, q);
    for (int c = 0; c < 4; c++)
      for (int l = 0; l < 32; l++)
        y[b].qs[32 * c + l] = (uint8_t)(q[64 * c + l] | q[64 * c + 32 + l] << 4);
  }
}

void vkft_dequantize_row_q4_K(const vkft_block_q4_K *x, float *y, int64_t n) {
  for (int64_t b = 0; b < n / VKFT_QK_K; b++) {
    const float d = half(x[b].d), dmin = half(x[b].dmin);
    for (int c = 0; c < 4; c++) {
      uint8_t sc, m;
      vkft_ggml_k4_scale_min(x[b].scales, 2 * c, &sc, &m);
      const float d_lo = d * sc, m_lo = dmin * m;
      vkft_ggml_k4_scale_min(x[b].scales, 2 * c + 1, &sc, &m);
      const float d_hi = d * sc, m_hi = dmin * m;
      const uint8_t *qs = x[b].qs + 32 * c;
      for (int l = 0; l < 32; l++) *y++ = d_lo * (qs[l] & 0x0F) - m_lo;
      for (int l = 0; l < 32; l++) *y++ = d_hi * (qs[l] >> 4) - m_hi;
    }
  }
}

void vkft_quantize_row_q5_K(const float *x, vkft_block_q5_K *y, int64_t n) {
  for (int64_t b = 0; b < n / VKFT_QK_K; b++, x += VKFT_QK_K) {
    uint8_t q[VKFT_QK_K];
    quantize_k_affine(x, 31, -0.5f, 15, &y[b].d, &y[b].dmin, y[b].scales, q);
    memset(y[b].qh, 0, sizeof y[b].qh);
    for (int c = 0; c < 4; c++) {
      for (int l = 0; l < 32; l++) {
        const int lo = q[64 * c + l], hi = q[64 * c + 32 + l];
        y[b].qs[32 * c + l] = (uint8_t)((lo & 0x0F) | (hi & 0x0F) << 4);
        y[b].qh[l] |= (uint8_t)((lo >> 4) << (2 * c) | (hi >> 4) << (2 * c + 1));
      }
    }
  }
}

void vkft_dequantize_row_q5_K(const vkft_block_q5_K *x, float *y, int64_t n) {
  for (int64_t b = 0; b < n / VKFT_QK_K; b++) {
    const float d = half(x[b].d), dmin = half(x[b].dmin);
    for (int c = 0; c < 4; c++) {
      uint8_t sc, m;
      vkft_ggml_k4_scale_min(x[b].scales, 2 * c, &sc, &m);
      const float d_lo = d * sc, m_lo = dmin * m;
      vkft_ggml_k4_scale_min(x[b].scales, 2 * c + 1, &sc, &m);
      const float d_hi = d * sc, m_hi = dmin * m;
      const uint8_t *qs = x[b].qs + 32 * c;
      for (int l = 0; l < 32; l++)
        *y++ = d_lo * ((qs[l] & 0x0F) + ((x[b].qh[l] >> (2 * c)) & 1) * 16) - m_lo;
      for (int l = 0; l < 32; l++)
        *y++ = d_hi * ((qs[l] >> 4) + ((x[b].qh[l] >> (2 * c + 1)) & 1) * 16) - m_hi;
    }
  }
}

/* ======================================================================================
 * Q6_K: x = d * sc[j] * (q - 32) per sub-block j of 16; sc signed 8-bit, q 6-bit.
 * Layout of each half h (128 weights): element 32 * k + l (k = 0..3, l = 0..31) keeps its
 * low nibble in ql[64h + l + 32 * (k & 1)] (low nibble for k < 2, high for k >= 2) and its
 * top two bits in bits 2k..2k+1 of qh[32h + l].
 * ====================================================================================== */

void vkft_quantize_row_q6_K(const float *x, vkft_block_q6_K *y, int64_t n) {
  for (int64_t b = 0; b < n / VKFT_QK_K; b++, x += VKFT_QK_K) {
    uint8_t q[VKFT_QK_K];
    float sub_scale[16];
    float max_scale = 0, max_abs_scale = 0;
    for (int j = 0; j < 16; j++) {
      sub_scale[j] = fit_symmetric(16, 32, x + 16 * j, q + 16 * j);
      if (fabsf(sub_scale[j]) > max_abs_scale) {
        max_abs_scale = fabsf(sub_scale[j]);
        max_scale = sub_scale[j];
      }
    }
    memset(&y[b], 0, sizeof y[b]);
    if (max_abs_scale < GROUP_ZERO_EPS) continue; /* an all-zero block: d = 0 */
    const float inv_scale = -128.f / max_scale;
    y[b].d = vkft_f32_to_f16(1 / inv_scale);
    for (int j = 0; j < 16; j++) {
      const int s = round_even(inv_scale * sub_scale[j]);
      y[b].scales[j] = (int8_t)(s < 127 ? s : 127);
    }
    for (int j = 0; j < 16; j++) {
      const float step = half(y[b].d) * y[b].scales[j];
      if (step == 0) continue; /* keeps the fit's q, as ggml does */
      for (int i = 0; i < 16; i++)
        q[16 * j + i] = (uint8_t)(clamp_int(round_even(x[16 * j + i] / step), -32, 31) + 32);
    }
    for (int h = 0; h < 2; h++) {
      const uint8_t *qh_src = q + 128 * h;
      uint8_t *ql = y[b].ql + 64 * h, *qh = y[b].qh + 32 * h;
      for (int l = 0; l < 32; l++) {
        ql[l] = (uint8_t)((qh_src[l] & 0x0F) | (qh_src[l + 64] & 0x0F) << 4);
        ql[l + 32] = (uint8_t)((qh_src[l + 32] & 0x0F) | (qh_src[l + 96] & 0x0F) << 4);
        qh[l] = (uint8_t)(qh_src[l] >> 4 | (qh_src[l + 32] >> 4) << 2 | (qh_src[l + 64] >> 4) << 4 |
                          (qh_src[l + 96] >> 4) << 6);
      }
    }
  }
}

void vkft_dequantize_row_q6_K(const vkft_block_q6_K *x, float *y, int64_t n) {
  for (int64_t b = 0; b < n / VKFT_QK_K; b++) {
    const float d = half(x[b].d);
    for (int h = 0; h < 2; h++, y += 128) {
      const uint8_t *ql = x[b].ql + 64 * h, *qh = x[b].qh + 32 * h;
      const int8_t *sc = x[b].scales + 8 * h;
      for (int l = 0; l < 32; l++) {
        const int s = l / 16;
        const int q0 = ((ql[l] & 0x0F) | ((qh[l] >> 0) & 3) << 4) - 32;
        const int q1 = ((ql[l + 32] & 0x0F) | ((qh[l] >> 2) & 3) << 4) - 32;
        const int q2 = ((ql[l] >> 4) | ((qh[l] >> 4) & 3) << 4) - 32;
        const int q3 = ((ql[l + 32] >> 4) | ((qh[l] >> 6) & 3) << 4) - 32;
        y[l] = d * sc[s] * q0;
        y[l + 32] = d * sc[s + 2] * q1;
        y[l + 64] = d * sc[s + 4] * q2;
        y[l + 96] = d * sc[s + 6] * q3;
      }
    }
  }
}
