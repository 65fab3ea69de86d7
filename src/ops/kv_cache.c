/* The KV-cache ops of batched generation on both backends (shaders/kv_cache.comp,
 * src/ref/kv_cache.c): storing new keys/values at their rows, and the attention of new queries
 * over their own sequence's rows. */
#include "core_util.h"

typedef struct kv_push {
  uint64_t q, k, v, rows, pos, out;
  uint32_t T, Hq, Hkv, W;
  float scale;
  uint32_t vec;
} kv_push;

/* The reference backend can check what the device cannot: every row inside the cache, and
 * (attention) every query's first key too. */
static int check_rows(const char *op, const int32_t *rows, const int32_t *pos, int64_t T,
                      int64_t R) {
  for (int64_t t = 0; t < T; t++) {
    int64_t first = pos ? (int64_t)rows[t] - pos[t] : rows[t];
    if (rows[t] < 0 || rows[t] >= R || first < 0 || (pos && pos[t] < 0))
      return vkft_error("%s: token %lld has cache row %d (position %d) outside [0, %lld)", op,
                        (long long)t, rows[t], pos ? pos[t] : 0, (long long)R);
  }
  return VKFT_OK;
}

int vkft_kv_store(vkft_backend *be, const vkft_tensor *x, const vkft_tensor *rows,
                  vkft_tensor *cache, int64_t T, int64_t W, int64_t R) {
  if (T <= 0 || W <= 0 || R <= 0)
    return vkft_error("kv_store: empty shape T=%lld W=%lld R=%lld", (long long)T, (long long)W,
                      (long long)R);
  if (T > UINT32_MAX / W) return vkft_error("kv_store: T x W over 2^32");
  if (op_check("kv_store", "x", x, T * W, DT(VKFT_F32)) ||
      op_check("kv_store", "rows", rows, T, DT(VKFT_I32)) ||
      op_check("kv_store", "cache", cache, R * W, DT(VKFT_F32)))
    return VKFT_ERR;
  if (!be->dev) {
    if (check_rows("kv_store", rows->host, NULL, T, R)) return VKFT_ERR;
    vkft_ref_kv_store_f32(x->host, rows->host, cache->host, T, W);
    return VKFT_OK;
  }
  kv_push push = {.q = x->buf.addr,
                  .rows = rows->buf.addr,
                  .out = cache->buf.addr,
                  .T = (uint32_t)T,
                  .W = (uint32_t)W,
                  .vec = W % 4 == 0 && core_aligned(x, 16) && core_aligned(cache, 16)};
  vkft_dispatch_desc d = {.shader = "kv_store",
                          .push = &push,
                          .push_size = sizeof push,
                          .reads = {vk_range_of(x), vk_range_of(rows)},
                          .read_count = 2,
                          .writes = {vk_range_of(cache)},
                          .write_count = 1};
  uint64_t invocations = (uint64_t)T * (uint64_t)(push.vec ? W / 4 : W);
  if (core_grid(be, "kv_store", (invocations + 63) / 64, d.groups)) return VKFT_ERR;
  return vkft_stream_dispatch(be->dev, &d);
}

int vkft_attention_decode(vkft_backend *be, const vkft_tensor *q, const vkft_tensor *k,
                          const vkft_tensor *v, const vkft_tensor *rows, const vkft_tensor *pos,
                          vkft_tensor *out, int64_t T, int64_t R, int64_t Hq, int64_t Hkv,
                          int64_t D, float scale) {
  const char *op = "attention_decode";
  if (T <= 0 || R <= 0 || Hq <= 0 || Hkv <= 0 || D <= 0)
    return vkft_error("%s: empty shape T=%lld R=%lld Hq=%lld Hkv=%lld D=%lld", op, (long long)T,
                      (long long)R, (long long)Hq, (long long)Hkv, (long long)D);
  if (Hq % Hkv != 0)
    return vkft_error("%s: Hq=%lld is not a multiple of Hkv=%lld", op, (long long)Hq,
                      (long long)Hkv);
  if (op_check(op, "q", q, T * Hq * D, DT(VKFT_F32)) ||
      op_check(op, "k", k, R * Hkv * D, DT(VKFT_F32)) ||
      op_check(op, "v", v, R * Hkv * D, DT(VKFT_F32)) ||
      op_check(op, "rows", rows, T, DT(VKFT_I32)) || op_check(op, "pos", pos, T, DT(VKFT_I32)) ||
      op_check(op, "out", out, T * Hq * D, DT(VKFT_F32)))
    return VKFT_ERR;
  if (!be->dev) {
    if (check_rows(op, rows->host, pos->host, T, R)) return VKFT_ERR;
    vkft_ref_attention_decode_f32(q->host, k->host, v->host, rows->host, pos->host, out->host, T,
                                  Hq, Hkv, D, scale);
    return VKFT_OK;
  }
  const vkft_device_info *info = vkft_device_get_info(be->dev);
  if (T > info->max_workgroup_count[0] || Hq > info->max_workgroup_count[1])
    return vkft_error("%s: %lld queries x %lld heads exceed the device's workgroup counts", op,
                      (long long)T, (long long)Hq);
  kv_push push = {.q = q->buf.addr,
                  .k = k->buf.addr,
                  .v = v->buf.addr,
                  .rows = rows->buf.addr,
                  .pos = pos->buf.addr,
                  .out = out->buf.addr,
                  .T = (uint32_t)T,
                  .Hq = (uint32_t)Hq,
                  .Hkv = (uint32_t)Hkv,
                  .scale = scale};
  int aligned = D % 4 == 0 && core_aligned(q, 16) && core_aligned(k, 16) && core_aligned(v, 16) &&
                core_aligned(out, 16);
  vkft_dispatch_desc d = {.shader = "attention_decode",
                          .spec = {(uint32_t)D, (uint32_t)aligned},
                          .spec_count = 2,
                          .push = &push,
                          .push_size = sizeof push,
                          .reads = {vk_range_of(q), vk_range_of(k), vk_range_of(v),
                                    vk_range_of(rows), vk_range_of(pos)},
                          .read_count = 5,
                          .writes = {vk_range_of(out)},
                          .write_count = 1,
                          .groups = {(uint32_t)T, (uint32_t)Hq, 1}};
  return vkft_stream_dispatch(be->dev, &d);
}
