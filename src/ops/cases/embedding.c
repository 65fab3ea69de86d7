/* Op-table family "embedding" / "embedding_bwd". The forward is a copy (exact, widening a
 * 16-bit table included): tolerance 0. The backward must give the same bits as the fp32
 * reference (same additions in the same order), and is also measured against the double
 * reference relative to |dtable| + sum |dout| with the bound of a sum of (tokens per id + 1)
 * terms. A row with an id outside the vocabulary checks the device's NaN row and the
 * reference backend's refusal. */
#include "case.h"

#include <string.h>

enum { TABLE, IDS, OUT, PLAN, DOUT };

typedef struct embedding_params {
  int64_t T, C, V, unique;
  int bwd;
} embedding_params;

static int setup(op_case *oc) {
  const vkft_op_case *c = oc->row;
  embedding_params *p = CASE_PARAMS(oc, embedding_params);
  if (!p) return VKFT_ERR;
  *p = (embedding_params){.T = c->d[0], .C = c->d[1], .V = c->d[2], .bwd = oc->variant == 1};
  int64_t T = p->T, C = p->C, V = p->V;
  oc->host_refuses = (int)c->d[3];
  case_shape(oc, "T%lld C%lld V%lld%s", (long long)T, (long long)C, (long long)V,
             oc->host_refuses ? " bad id" : "");
  /* ids with repeats: a few hot ids (like common tokens) and a uniform tail */
  int32_t *ids = CASE_NEW(oc, int32_t, T);
  double hot = V < 3 ? (double)V : 3;
  for (int64_t t = 0; ids && t < T; t++)
    ids[t] =
        (int32_t)case_uniform(&oc->rng, 0, case_uniform(&oc->rng, 0, 1) < 0.3 ? hot : (double)V);
  if (!p->bwd) {
    double *table = case_random(oc, TABLE, "table", c->dtype, V * C, CASE_IN, -1, 1);
    int32_t *ids_in = case_tensor_new(oc, IDS, "ids", VKFT_I32, T, CASE_IN);
    case_tensor_new(oc, OUT, "out", VKFT_F32, T * C, CASE_OUT);
    double *want = CASE_NEW(oc, double, T *C), *exact = CASE_NEW(oc, double, T *C);
    if (oc->failed) return VKFT_ERR;
    if (oc->host_refuses) ids[T / 2] = (int32_t)V; /* one past the end */
    memcpy(ids_in, ids, (size_t)T * sizeof *ids);
    for (int64_t t = 0; t < T; t++)
      for (int64_t j = 0; j < C; j++) want[t * C + j] = ids[t] < V ? table[ids[t] * C + j] : NAN;
    case_expect(oc, OUT, want, exact, 0); /* a scale of 0: equal, NaN rows NaN */
    oc->bytes = (4.0 + vkft_dtype_size(c->dtype)) * T * C;
    return case_status(oc);
  }

  int32_t *plan = case_tensor_new(oc, PLAN, "plan", VKFT_I32, vkft_embedding_plan_len(T), CASE_IN);
  double *dout = case_random(oc, DOUT, "dout", VKFT_F32, T * C, CASE_IN, -1, 1);
  double *dtable = case_random(oc, TABLE, "dtable", VKFT_F32, V * C, CASE_OUT, -1, 1);
  float *expect = CASE_NEW(oc, float, V *C), *dout32 = CASE_NEW(oc, float, T *C);
  double *want = CASE_NEW(oc, double, V *C), *scale = CASE_NEW(oc, double, V *C);
  int32_t *count = CASE_NEW(oc, int32_t, V);
  if (oc->failed || vkft_embedding_plan(ids, T, V, plan, &p->unique)) return VKFT_ERR;
  for (int64_t i = 0; i < V * C; i++) expect[i] = (float)dtable[i], want[i] = dtable[i];
  for (int64_t i = 0; i < V * C; i++) scale[i] = fabs(dtable[i]);
  for (int64_t i = 0; i < T * C; i++) dout32[i] = (float)dout[i];
  vkft_ref_embedding_backward_f32(dout32, ids, expect, T, C);
  vkft_ref_embedding_backward_f64(dout, ids, want, T, C);
  int64_t max_count = 0;
  for (int64_t t = 0; t < T; t++) {
    if (++count[ids[t]] > max_count) max_count = count[ids[t]];
    for (int64_t j = 0; j < C; j++) scale[ids[t] * C + j] += fabs(dout[t * C + j]);
  }
  case_expect_bits(oc, TABLE, expect);
  case_expect(oc, TABLE, want, scale, ((double)max_count + 1) * CASE_U);
  oc->bytes = 12.0 * T * C;
  return case_status(oc);
}

static int record(vkft_backend *be, const op_case *oc, vkft_tensor *t) {
  const embedding_params *p = oc->params;
  if (!p->bwd) return vkft_embedding(be, &t[TABLE], &t[IDS], &t[OUT], p->T, p->C, p->V);
  return vkft_embedding_bwd(be, &t[DOUT], &t[PLAN], &t[TABLE], p->T, p->C, p->V, p->unique);
}

const case_family case_embedding = {{"embedding", "embedding_bwd"}, setup, record};
