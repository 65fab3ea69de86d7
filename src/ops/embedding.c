/* embedding on both backends (shaders/embedding.comp, src/ref/embedding.c), and the host-side
 * plan that makes the backward's scatter-add deterministic without atomics. */
#include "core_util.h"

#include <stdio.h>
#include <stdlib.h>

int vkft_embedding_check_ids(const int32_t *ids, int64_t T, int64_t V) {
  for (int64_t t = 0; t < T; t++)
    if (ids[t] < 0 || ids[t] >= V)
      return vkft_error("embedding: token %lld has id %d outside the vocabulary [0, %lld)",
                        (long long)t, ids[t], (long long)V);
  return VKFT_OK;
}

int64_t vkft_embedding_plan_len(int64_t T) {
  return 3 * T + 1;
}

static int compare_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* plan = order (T): token indices sorted by (id, t) | ids (T): the distinct ids, first
 * `unique` used | starts (T + 1): token u's range in order is [starts[u], starts[u + 1]). */
int vkft_embedding_plan(const int32_t *ids, int64_t T, int64_t V, int32_t *plan, int64_t *unique) {
  if (T < 0 || T > INT32_MAX / 3) return vkft_error("embedding plan: %lld tokens", (long long)T);
  if (vkft_embedding_check_ids(ids, T, V)) return VKFT_ERR;
  uint64_t *keys = malloc((size_t)(T ? T : 1) * sizeof *keys);
  if (!keys) return vkft_error_nomem();
  for (int64_t t = 0; t < T; t++) keys[t] = (uint64_t)(uint32_t)ids[t] << 32 | (uint64_t)t;
  qsort(keys, (size_t)T, sizeof *keys, compare_u64);
  int32_t *order = plan, *distinct = plan + T, *starts = plan + 2 * T;
  int64_t u = 0;
  for (int64_t k = 0; k < T; k++) {
    order[k] = (int32_t)(keys[k] & 0xffffffffu);
    int32_t id = (int32_t)(keys[k] >> 32);
    if (k == 0 || id != distinct[u - 1]) {
      distinct[u] = id;
      starts[u++] = (int32_t)k;
    }
  }
  starts[u] = (int32_t)T;
  for (int64_t i = u; i < T; i++) distinct[i] = 0, starts[i + 1] = (int32_t)T; /* unused */
  *unique = u;
  free(keys);
  return VKFT_OK;
}

typedef struct embedding_push {
  uint64_t src, index, dst;
  uint32_t T, C, rows, vec;
} embedding_push;

int vkft_embedding(vkft_backend *be, const vkft_tensor *table, const vkft_tensor *ids,
                   vkft_tensor *out, int64_t T, int64_t C, int64_t V) {
  if (T <= 0 || C <= 0 || V <= 0)
    return vkft_error("embedding: empty shape T=%lld C=%lld V=%lld", (long long)T, (long long)C,
                      (long long)V);
  unsigned floats = DT(VKFT_F32) | DT(VKFT_F16) | DT(VKFT_BF16);
  if (op_check("embedding", "table", table, V * C, floats) ||
      op_check("embedding", "ids", ids, T, DT(VKFT_I32)) ||
      op_check("embedding", "out", out, T * C, DT(VKFT_F32)))
    return VKFT_ERR;
  if (!be->dev) {
    if (vkft_embedding_check_ids(ids->host, T, V)) return VKFT_ERR;
    if (table->dtype == VKFT_F32) {
      vkft_ref_embedding_f32(table->host, ids->host, out->host, T, C);
      return VKFT_OK;
    }
    float *out_h = out->host;
    for (int64_t t = 0; t < T; t++) /* widen only the rows used, not the whole table */
      vkft_convert_to_f32(table->dtype,
                          (const char *)table->host +
                              (size_t)((int64_t)((const int32_t *)ids->host)[t] * C) *
                                  vkft_dtype_size(table->dtype),
                          out_h + t * C, (size_t)C);
    return VKFT_OK;
  }
  if ((uint64_t)T * (uint64_t)C >= ((uint64_t)1 << 32) - 64 || V > INT32_MAX)
    return vkft_error("embedding: shape too large");
  int vec =
      C % 4 == 0 && core_aligned(table, table->dtype == VKFT_F32 ? 16 : 8) && core_aligned(out, 16);
  embedding_push push = {table->buf.addr, ids->buf.addr, out->buf.addr, (uint32_t)T,
                         (uint32_t)C,     (uint32_t)V,   (uint32_t)vec};
  char name[32];
  snprintf(name, sizeof name, "embedding_%s", vkft_dtype_name(table->dtype));
  vkft_dispatch_desc d = {.shader = name,
                          .push = &push,
                          .push_size = sizeof push,
                          .reads = {vk_range_of(table), {ids->buf.addr, (uint64_t)T * 4}},
                          .read_count = 2,
                          .writes = {{out->buf.addr, (uint64_t)(T * C) * 4}},
                          .write_count = 1};
  uint64_t invocations = (uint64_t)T * (uint64_t)(C / (vec ? 4 : 1));
  if (core_grid(be, "embedding", (invocations + 63) / 64, d.groups)) return VKFT_ERR;
  return vkft_stream_dispatch(be->dev, &d);
}

int vkft_embedding_bwd(vkft_backend *be, const vkft_tensor *dout, const vkft_tensor *plan,
                       vkft_tensor *dtable, int64_t T, int64_t C, int64_t V, int64_t unique) {
  if (T <= 0 || C <= 0 || V <= 0 || unique <= 0 || unique > T)
    return vkft_error("embedding_bwd: bad shape T=%lld C=%lld V=%lld unique=%lld", (long long)T,
                      (long long)C, (long long)V, (long long)unique);
  if (op_check("embedding_bwd", "dout", dout, T * C, DT(VKFT_F32)) ||
      op_check("embedding_bwd", "plan", plan, vkft_embedding_plan_len(T), DT(VKFT_I32)) ||
      op_check("embedding_bwd", "dtable", dtable, V * C, DT(VKFT_F32)))
    return VKFT_ERR;
  if (!be->dev) {
    /* the ids back from the plan; the reference then adds in increasing t, as the plan does */
    const int32_t *p = plan->host;
    int32_t *ids = malloc((size_t)T * sizeof *ids);
    if (!ids) return vkft_error_nomem();
    for (int64_t t = 0; t < T; t++) ids[t] = -1; /* a token the plan misses fails the check */
    for (int64_t u = 0; u < unique; u++)
      for (int32_t k = p[2 * T + u]; k < p[2 * T + u + 1]; k++) ids[p[k]] = p[T + u];
    int status = vkft_embedding_check_ids(ids, T, V);
    if (status == VKFT_OK) vkft_ref_embedding_backward_f32(dout->host, ids, dtable->host, T, C);
    free(ids);
    return status;
  }
  if ((uint64_t)T * (uint64_t)C >= ((uint64_t)1 << 32) - 64 || V > INT32_MAX)
    return vkft_error("embedding_bwd: shape too large");
  int vec = C % 4 == 0 && core_aligned(dout, 16) && core_aligned(dtable, 16);
  embedding_push push = {dout->buf.addr, plan->buf.addr,   dtable->buf.addr, (uint32_t)T,
                         (uint32_t)C,    (uint32_t)unique, (uint32_t)vec};
  vkft_dispatch_desc d = {.shader = "embedding_bwd",
                          .push = &push,
                          .push_size = sizeof push,
                          .reads = {{dout->buf.addr, (uint64_t)(T * C) * 4},
                                    {plan->buf.addr, (uint64_t)vkft_embedding_plan_len(T) * 4},
                                    {dtable->buf.addr, (uint64_t)(V * C) * 4}},
                          .read_count = 3,
                          .writes = {{dtable->buf.addr, (uint64_t)(V * C) * 4}},
                          .write_count = 1};
  uint64_t invocations = (uint64_t)unique * (uint64_t)(C / (vec ? 4 : 1));
  if (core_grid(be, "embedding_bwd", (invocations + 63) / 64, d.groups)) return VKFT_ERR;
  return vkft_stream_dispatch(be->dev, &d);
}
