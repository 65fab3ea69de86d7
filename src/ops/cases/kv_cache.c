/* Op-table family "kv_store" / "attention_decode": the KV cache of batched generation against
 * the double reference.
 *
 * kv_store d = {T, W, R, views at element offset 1}: T rows of W values stored at T distinct
 * random rows of an R-row cache that starts random; every other row must be left as it was.
 * A copy: tolerance 0.
 *
 * attention_decode d = {T, Hq, Hkv, D | keys << 16}: S = min(T, 5) sequences of `keys` cache
 * rows each (150 when 0: two full blocks of 64 keys and a ragged third), T queries spread over
 * them at random positions, the first at position 0 (one key) and the second at the last
 * position; the rows past each query's position hold random values that must not be read.
 * Tolerance, as for the training attention (cases/attention.c): every output element is a
 * softmax-weighted sum, normalized by its magnitude bound b = sum_j p_j |v_j| (double); the
 * fp32 scores are off by at most D u SB (SB the largest scale sum_d |q||k|), the maximum
 * subtracted by as much again, so each weight carries 2 D u SB relative error; the sums over
 * N keys add N u; exp2 and the division of the driver a few ulp: 16 u. */
#include "case.h"

#include <string.h>

enum { Q, K, V, ROWS, POS, OUT, X = 0, CACHE = 6 };
enum { STORE, DECODE };

typedef struct kv_params {
  int64_t T, Hq, Hkv, D, W, R;
  float scale;
} kv_params;

/* T distinct rows of [0, R): a partial Fisher-Yates shuffle */
static int distinct_rows(op_case *oc, int64_t T, int64_t R, int32_t *rows) {
  int32_t *all = CASE_NEW(oc, int32_t, R);
  if (!all) return VKFT_ERR;
  for (int64_t i = 0; i < R; i++) all[i] = (int32_t)i;
  for (int64_t t = 0; t < T; t++) {
    int64_t j = t + (int64_t)case_uniform(&oc->rng, 0, (double)(R - t));
    int32_t x = all[j];
    all[j] = all[t], all[t] = x;
    rows[t] = x;
  }
  return VKFT_OK;
}

static int setup_store(op_case *oc, kv_params *p) {
  const vkft_op_case *c = oc->row;
  p->T = c->d[0], p->W = c->d[1], p->R = c->d[2];
  int64_t T = p->T, W = p->W, R = p->R;
  case_shape(oc, "T%lld W%lld R%lld%s", (long long)T, (long long)W, (long long)R,
             c->d[3] ? " odd" : "");
  double *x = case_random(oc, X, "x", VKFT_F32, T * W, CASE_IN, -1, 1);
  int32_t *rows = case_tensor_new(oc, ROWS, "rows", VKFT_I32, T, CASE_IN);
  double *cache = case_random(oc, CACHE, "cache", VKFT_F32, R * W, CASE_OUT, -1, 1);
  double *exact = CASE_NEW(oc, double, R *W);
  if (oc->failed || distinct_rows(oc, T, R, rows)) return VKFT_ERR;
  for (int64_t t = 0; t < T; t++) memcpy(cache + rows[t] * W, x + t * W, (size_t)W * sizeof *x);
  if (c->d[3]) oc->t[X].offset = oc->t[CACHE].offset = 1;
  case_expect(oc, CACHE, cache, exact, 0); /* a scale of 0: equal */
  oc->bytes = 8.0 * (double)(T * W);
  return case_status(oc);
}

static int setup_decode(op_case *oc, kv_params *p) {
  const vkft_op_case *c = oc->row;
  int64_t T = c->d[0], Hq = c->d[1], Hkv = c->d[2], D = c->d[3] & 0xffff;
  int64_t keys = c->d[3] >> 16 ? c->d[3] >> 16 : 150, S = T < 5 ? T : 5, R = S * keys;
  *p = (kv_params){.T = T, .Hq = Hq, .Hkv = Hkv, .D = D, .R = R};
  p->scale = (float)(1.0 / sqrt((double)D));
  case_shape(oc, "T%lld Hq%lld/%lld D%lld keys%lld", (long long)T, (long long)Hq, (long long)Hkv,
             (long long)D, (long long)keys);
  double *q = case_random(oc, Q, "q", VKFT_F32, T * Hq * D, CASE_IN, -1, 1);
  double *k = case_random(oc, K, "k", VKFT_F32, R * Hkv * D, CASE_IN, -1, 1);
  double *v = case_random(oc, V, "v", VKFT_F32, R * Hkv * D, CASE_IN, -1, 1);
  int32_t *rows = case_tensor_new(oc, ROWS, "rows", VKFT_I32, T, CASE_IN);
  int32_t *pos = case_tensor_new(oc, POS, "pos", VKFT_I32, T, CASE_IN);
  case_poisoned(oc, OUT, "out", T * Hq * D);
  double *want = CASE_NEW(oc, double, T *Hq *D), *bound = CASE_NEW(oc, double, T *Hq *D);
  if (oc->failed) return VKFT_ERR;
  for (int64_t t = 0; t < T; t++) {
    int64_t s = t % S;
    pos[t] = t == 0 ? 0 : t == 1 ? (int32_t)(keys - 1) : (int32_t)case_uniform(&oc->rng, 0, keys);
    rows[t] = (int32_t)(s * keys + pos[t]);
  }
  vkft_ref_attention_decode_f64(q, k, v, rows, pos, want, T, Hq, Hkv, D, p->scale);
  /* the magnitude bounds and SB of the top comment, and the attended pairs */
  double sb = 0, pairs = 0;
  int64_t group = Hq / Hkv, longest = 0;
  for (int64_t t = 0; t < T; t++) {
    int64_t first = rows[t] - pos[t];
    if (pos[t] + 1 > longest) longest = pos[t] + 1;
    for (int64_t h = 0; h < Hq; h++) {
      const double *qt = q + (t * Hq + h) * D;
      int64_t g = h / group;
      double max = -INFINITY, sum = 0;
      for (int64_t pass = 0; pass < 2; pass++)
        for (int64_t j = first; j <= rows[t]; j++) {
          const double *kj = k + (j * Hkv + g) * D, *vj = v + (j * Hkv + g) * D;
          double s = 0, s_abs = 0;
          for (int64_t d = 0; d < D; d++) s += qt[d] * kj[d], s_abs += fabs(qt[d] * kj[d]);
          s *= p->scale;
          if (pass == 0) {
            max = fmax(max, s);
            sb = fmax(sb, p->scale * s_abs);
            pairs += 1;
            continue;
          }
          double w = exp(s - max);
          sum += w;
          for (int64_t d = 0; d < D; d++) bound[(t * Hq + h) * D + d] += w * fabs(vj[d]);
        }
      for (int64_t d = 0; d < D; d++) bound[(t * Hq + h) * D + d] /= sum;
    }
  }
  case_expect(oc, OUT, want, bound, (2 * D * sb + (double)longest + 16) * CASE_U);
  oc->flops = 4.0 * (double)D * pairs;
  return case_status(oc);
}

static int setup(op_case *oc) {
  kv_params *p = CASE_PARAMS(oc, kv_params);
  if (!p) return VKFT_ERR;
  return oc->variant == STORE ? setup_store(oc, p) : setup_decode(oc, p);
}

static int record(vkft_backend *be, const op_case *oc, vkft_tensor *t) {
  const kv_params *p = oc->params;
  if (oc->variant == STORE) return vkft_kv_store(be, &t[X], &t[ROWS], &t[CACHE], p->T, p->W, p->R);
  return vkft_attention_decode(be, &t[Q], &t[K], &t[V], &t[ROWS], &t[POS], &t[OUT], p->T, p->R,
                               p->Hq, p->Hkv, p->D, p->scale);
}

const case_family case_kv_cache = {{"kv_store", "attention_decode"}, setup, record};
