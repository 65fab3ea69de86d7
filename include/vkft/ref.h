/* The plain-C reference of every op: the specification the shaders are tested against.
 * Each op exists twice, vkft_ref_<op>_f32 over float and vkft_ref_<op>_f64 over double (the
 * same source compiled twice, see src/ref/real.h); the double form is what gradient checks and
 * tolerance-bounded comparisons evaluate. Shapes are in comments as in llm.c. */
#ifndef VKFT_REF_H
#define VKFT_REF_H

#include <stdint.h>

/* Matmul orientations training needs (row-major storage):
 *   NT: C[M,N] = A[M,K] * B[N,K]^T   forward y = x W^T (W is [out, in])
 *   NN: C[M,N] = A[M,K] * B[K,N]     input gradient dX = dY W
 *   TN: C[M,N] = A[K,M]^T * B[K,N]   weight gradient dW = dY^T X */
typedef enum vkft_matmul_orient {
  VKFT_MATMUL_NT,
  VKFT_MATMUL_NN,
  VKFT_MATMUL_TN
} vkft_matmul_orient;

/* ---- preference objectives (vkft_pref_loss in vkft/ops.h, src/ref/pref.c) ----
 * The loss of one pair of sequence log-probs (chosen c, rejected r; DPO also the reference's),
 * as TRL computes it (docs/PREFERENCE.md, "Objectives"):
 *   SIGMOID  -log sigmoid(beta d)                 d = (c - ref_c) - (r - ref_r)
 *   ROBUST   (-(1 - ls) log sigmoid(beta d) + ls log sigmoid(-beta d)) / (1 - 2 ls)
 *   HINGE    relu(1 - beta d)
 *   IPO      (d' - 1 / (2 beta))^2                d' with each log-ratio divided by its tokens
 *   ORPO     -beta log sigmoid(o)                 o = (c - r) - (log(1 - e^c) - log(1 - e^r)),
 *            c, r mean (not summed) log-probs; plus the NLL of the chosen sequences. */
typedef enum vkft_pref_loss_kind {
  VKFT_PREF_LOSS_SIGMOID,
  VKFT_PREF_LOSS_ROBUST,
  VKFT_PREF_LOSS_HINGE,
  VKFT_PREF_LOSS_IPO,
  VKFT_PREF_LOSS_ORPO
} vkft_pref_loss_kind;

typedef struct vkft_pref_objective {
  vkft_pref_loss_kind kind;
  float beta;            /* DPO's beta; ORPO's lambda */
  float label_smoothing; /* ROBUST only (as in TRL) */
  float pair_scale;      /* d(step loss) / d(pair loss): 1 / (pairs x micro-batches of the step) */
  float nll_scale;       /* ORPO: d(step loss) / d(one chosen token's NLL) */
} vkft_pref_objective;

/* ---- ops-core: types the rmsnorm..grad_norm references share with the op API ---- */
/* One AdamW step's scalars, derived on the host in double from lr, betas, eps, weight decay and
 * the step number (vkft_adamw_step_for in vkft/ops.h) and rounded to fp32 once: what torch's
 * AdamW applies to fp32 tensors. */
typedef struct vkft_adamw_step {
  float decay;           /* 1 - lr * weight_decay */
  float one_minus_beta1; /* lerp weight of exp_avg */
  float beta2, one_minus_beta2;
  float step_size;             /* lr / (1 - beta1^step) */
  float bias_correction2_sqrt; /* sqrt(1 - beta2^step) */
  float eps;
} vkft_adamw_step;

/* Dropout's mask: an integer hash of (seed, stream, element index), the same in C and GLSL
 * (shaders/dropout.comp), so both backends drop the same elements. threshold = p * 2^24. */
static inline uint32_t vkft_dropout_hash(uint32_t seed, uint32_t stream, uint64_t i) {
  uint32_t x = seed ^ (stream * 0x9e3779b9u) ^ ((uint32_t)i * 0x85ebca6bu) ^
               ((uint32_t)(i >> 32) * 0xc2b2ae35u);
  x ^= x >> 16;
  x *= 0x7feb352du;
  x ^= x >> 15;
  x *= 0x846ca68bu;
  x ^= x >> 16;
  return x;
}
static inline int vkft_dropout_keep(uint32_t seed, uint32_t stream, uint64_t i,
                                    uint32_t threshold) {
  return (vkft_dropout_hash(seed, stream, i) >> 8) >= threshold;
}
/* uniform_noise's value for element i: magnitude * (2u - 1), u = (hash >> 8) / 2^24, in
 * [-magnitude, magnitude): 2u - 1 is exact in fp32, the product one rounding. */
static inline float vkft_uniform_noise_value(uint32_t seed, uint32_t stream, uint64_t i,
                                             float magnitude) {
  float unit =
      (float)(vkft_dropout_hash(seed, stream, i) >> 8) * (1.0f / 16777216.0f) * 2.0f - 1.0f;
  float noise = magnitude * unit;
  return noise;
}

#define VKFT_REF_REAL float
#define VKFT_REF(name) vkft_ref_##name##_f32
#include "vkft/ref_ops.h"
#undef VKFT_REF_REAL
#undef VKFT_REF

#define VKFT_REF_REAL double
#define VKFT_REF(name) vkft_ref_##name##_f64
#include "vkft/ref_ops.h"
#undef VKFT_REF_REAL
#undef VKFT_REF

#endif
