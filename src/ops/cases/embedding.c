/* Op-table family "embedding" / "embedding_bwd". The forward is a copy (exact, widening a
 * 16-bit table included): tolerance 0. The backward must give the same bits as the fp32
 * reference (same additions in the same order), and is also measured against the double
 * reference relative to |dtable| + sum |dout| with the bound of a sum of (tokens per id + 1)
 * terms. A row with an id outside the vocabulary checks the device's NaN row and the
 * reference backend's error. */
#include "core.h"

#include <stdio.h>

typedef struct emb_ctx {
  int64_t T, C, V, unique;
  int bwd;
  vkft_dtype dtype;
  int32_t *ids, *plan;
  void *table_stored;
  float *dout, *dtable0;
  vkft_tensor ttable, tids, tout, tplan, tdout;
} emb_ctx;

static int reset(vkft_backend *be, void *p) {
  emb_ctx *k = p;
  return k->bwd ? vkft_tensor_write(be, &k->ttable, k->dtable0) : VKFT_OK;
}

static int record(vkft_backend *be, void *p) {
  emb_ctx *k = p;
  if (!k->bwd) return vkft_embedding(be, &k->ttable, &k->tids, &k->tout, k->T, k->C, k->V);
  return vkft_embedding_bwd(be, &k->tdout, &k->tplan, &k->ttable, k->T, k->C, k->V, k->unique);
}

static void release(vkft_backend *be, emb_ctx *k) {
  vkft_tensor *all[] = {&k->ttable, &k->tids, &k->tout, &k->tplan, &k->tdout};
  for (int i = 0; i < 5; i++)
    if (all[i]->host || all[i]->buf.addr) vkft_tensor_free(be, all[i]);
}

static int run_on(vkft_backend *be, emb_ctx *k, float *got) {
  int64_t T = k->T, C = k->C, V = k->V;
  if (!k->bwd) {
    if (vkft_tensor_alloc(be, k->dtype, V * C, &k->ttable) ||
        vkft_tensor_write(be, &k->ttable, k->table_stored) ||
        vkft_tensor_alloc(be, VKFT_I32, T, &k->tids) || vkft_tensor_write(be, &k->tids, k->ids) ||
        vkft_tensor_alloc(be, VKFT_F32, T * C, &k->tout) || vkft_begin(be) || record(be, k) ||
        vkft_end(be) || vkft_tensor_read(be, &k->tout, got))
      return VKFT_ERR;
    return VKFT_OK;
  }
  if (vkft_tensor_alloc(be, VKFT_F32, V * C, &k->ttable) || reset(be, k) ||
      vkft_tensor_alloc(be, VKFT_I32, vkft_embedding_plan_len(T), &k->tplan) ||
      vkft_tensor_write(be, &k->tplan, k->plan) ||
      vkft_tensor_alloc(be, VKFT_F32, T * C, &k->tdout) ||
      vkft_tensor_write(be, &k->tdout, k->dout) || vkft_begin(be) || record(be, k) ||
      vkft_end(be) || vkft_tensor_read(be, &k->ttable, got))
    return VKFT_ERR;
  return VKFT_OK;
}

static int run(vkft_backend *vk, const vkft_op_case *c, int timed_runs, vkft_op_result *r) {
  emb_ctx k = {.T = c->d[0],
               .C = c->d[1],
               .V = c->d[2],
               .dtype = c->dtype,
               .bwd = strstr(c->op, "bwd") != NULL};
  int bad_id = (int)c->d[3];
  int64_t T = k.T, C = k.C, V = k.V, out_n = k.bwd ? V * C : T * C;
  snprintf(r->shape, sizeof r->shape, "T%lld C%lld V%lld%s", (long long)T, (long long)C,
           (long long)V, bad_id ? " bad id" : "");
  k.ids = malloc((size_t)T * 4), k.plan = malloc((size_t)vkft_embedding_plan_len(T) * 4);
  float *table = malloc((size_t)(V * C) * 4), *got = malloc((size_t)out_n * 4);
  float *expect = malloc((size_t)out_n * 4);
  k.dout = malloc((size_t)(T * C) * 4);
  double *want = malloc((size_t)out_n * 8), *scale = malloc((size_t)out_n * 8);
  int status = VKFT_ERR;
  double sum_tol = 0;
  if (!k.ids || !k.plan || !table || !got || !expect || !k.dout || !want || !scale) {
    vkft_error("embedding: out of host memory");
    goto done;
  }
  harness_rng rng = {(uint64_t)(T * 7 + C * 1009 + V) ^ (uint64_t)k.bwd << 40 ^
                     (uint64_t)c->dtype << 44};
  /* ids with repeats: a few hot ids (like common tokens) and a uniform tail */
  for (int64_t t = 0; t < T; t++)
    k.ids[t] = (int32_t)(harness_uniform(&rng, 0, 1) < 0.3 ? harness_uniform(&rng, 0, 3)
                                                           : harness_uniform(&rng, 0, (double)V));
  core_uniform(&rng, table, V * C, -1, 1);
  core_uniform(&rng, k.dout, T * C, -1, 1);
  if (!k.bwd) {
    if (core_round_to(k.dtype, table, V * C, &k.table_stored)) goto done;
    if (bad_id) k.ids[T / 2] = (int32_t)V; /* one past the end */
    for (int64_t t = 0; t < T; t++)
      for (int64_t j = 0; j < C; j++)
        expect[t * C + j] = k.ids[t] < V ? table[k.ids[t] * C + j] : NAN;
  } else {
    k.dtable0 = table;
    if (vkft_embedding_plan(k.ids, T, V, k.plan, &k.unique)) goto done;
    memcpy(expect, table, (size_t)(V * C) * 4);
    vkft_ref_embedding_backward_f32(k.dout, k.ids, expect, T, C);
    for (int64_t i = 0; i < V * C; i++) want[i] = table[i], scale[i] = fabs(table[i]);
    int64_t max_count = 0;
    int32_t *count = calloc((size_t)V, sizeof *count);
    if (!count) goto done;
    for (int64_t t = 0; t < T; t++) {
      if (++count[k.ids[t]] > max_count) max_count = count[k.ids[t]];
      for (int64_t j = 0; j < C; j++) {
        want[k.ids[t] * C + j] += k.dout[t * C + j];
        scale[k.ids[t] * C + j] += fabs(k.dout[t * C + j]);
      }
    }
    free(count);
    sum_tol = ((double)max_count + 1) * CORE_U;
  }

  status = run_on(vk, &k, got);
  if (status == VKFT_OK) {
    /* bits: NaN rows compare as NaN bits (both sides use the canonical quiet NaN) */
    int64_t differ = 0;
    for (int64_t i = 0; i < out_n; i++)
      differ += isnan(expect[i]) ? !isnan(got[i]) : memcmp(&got[i], &expect[i], 4) != 0;
    core_report(r, (double)differ, 0);
    if (k.bwd) core_report(r, core_err(got, want, scale, out_n), sum_tol);
    status = harness_repeat(vk, reset, record, &k, k.bwd ? &k.ttable : &k.tout, got, timed_runs, r);
  }
  if (status == VKFT_OK && r->ms > 0)
    r->gbps = (k.bwd ? 12.0 * T * C : (4.0 + vkft_dtype_size(k.dtype)) * T * C) / (r->ms * 1e6);
  release(vk, &k);
  vkft_backend *ref;
  if (status == VKFT_OK && timed_runs == 0 && (status = vkft_backend_ref_create(&ref)) == 0) {
    int ran = run_on(ref, &k, got);
    if (bad_id) {
      /* the reference backend can see the ids: it must refuse them */
      core_report(r, ran == VKFT_OK, 0);
    } else if ((status = ran) == VKFT_OK) {
      core_report(r, (double)core_bits_differ(got, expect, out_n * 4), 0);
    }
    release(ref, &k);
    vkft_backend_destroy(ref);
  }
done:
  free(k.ids), free(k.plan), free(table), free(got), free(expect), free(k.dout), free(want);
  free(scale), free(k.table_stored);
  return status;
}

/* d = {T, C, V, one id out of range}: odd C (scalar path), T = 1, many tokens per id. */
static const vkft_op_case cases[] = {
    {"embedding", VKFT_F32, {64, 256, 1000, 0}, HARNESS_T | HARNESS_S},
    {"embedding", VKFT_F32, {1, 1, 1, 0}, HARNESS_T},
    {"embedding", VKFT_F32, {17, 33, 50, 0}, HARNESS_T},
    {"embedding", VKFT_F16, {40, 128, 300, 0}, HARNESS_T},
    {"embedding", VKFT_F16, {9, 7, 20, 0}, HARNESS_T},
    {"embedding", VKFT_BF16, {40, 128, 300, 0}, HARNESS_T | HARNESS_S},
    {"embedding", VKFT_BF16, {13, 65, 99, 0}, HARNESS_T},
    {"embedding", VKFT_F32, {16, 64, 100, 1}, HARNESS_T},
    {"embedding_bwd", VKFT_F32, {64, 256, 1000, 0}, HARNESS_T | HARNESS_S},
    {"embedding_bwd", VKFT_F32, {1, 1, 1, 0}, HARNESS_T},
    {"embedding_bwd", VKFT_F32, {300, 33, 50, 0}, HARNESS_T},
    {"embedding_bwd", VKFT_F32, {513, 128, 64, 0}, HARNESS_T},
    {"embedding", VKFT_F32, {2048, 512, 32000, 0}, HARNESS_B},
    {"embedding", VKFT_BF16, {2048, 512, 32000, 0}, HARNESS_B},
    {"embedding_bwd", VKFT_F32, {2048, 512, 32000, 0}, HARNESS_B},
};

const harness_family family_embedding = {cases, HARNESS_COUNT(cases), run};
