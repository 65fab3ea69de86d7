/* attention forward and backward on both backends (shaders/attention.comp,
 * src/ref/attention.c). */
#include "backend.h"

#include "vkft/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct attention_push {
  uint64_t q, k, v, seq, out, lse, dout, dq, dk, dv, delta;
  uint32_t T, Hq, Hkv;
  float scale;
  uint32_t q_offset;
} attention_push;

static int check_shape(const char *op, int64_t T, int64_t Hq, int64_t Hkv, int64_t D) {
  if (T <= 0 || Hq <= 0 || Hkv <= 0 || D <= 0)
    return vkft_error("%s: empty shape T=%lld Hq=%lld Hkv=%lld D=%lld", op, (long long)T,
                      (long long)Hq, (long long)Hkv, (long long)D);
  if (Hq % Hkv != 0)
    return vkft_error("%s: Hq=%lld is not a multiple of Hkv=%lld", op, (long long)Hq,
                      (long long)Hkv);
  if (T > UINT32_MAX) return vkft_error("%s: T over 2^32", op);
  return VKFT_OK;
}

/* The attention kernels of a Vulkan device (variants ATTENTION_FLAT, ATTENTION_TILED):
 *   flat   shaders/attention.comp: each invocation owns R rows and reads the other side's rows
 *          itself, no shared memory. For CPU drivers (lavapipe) and everyone's last fallback.
 *   tiled  shaders/attention_tiled.comp: a workgroup owns BR rows and stages them and BC rows
 *          of the other side at a time through shared memory (GPUs).
 * The choice is per device (its type, or VKFT_MATMUL_CHOICE) and head dim (the tiles must fit
 * the device's shared memory), or VKFT_ATTENTION for every call. */
enum { PASS_FWD, PASS_DQ, PASS_DKV };
static const char *const tiled_shaders[] = {"attention_tiled_fwd", "attention_tiled_bwd_dq",
                                            "attention_tiled_bwd_dkv"};

/* Shared memory of the tiled kernel's pass (see the declarations in attention_tiled.comp). */
static uint64_t tiled_shared_bytes(int pass, uint64_t br, uint64_t bc, uint64_t D) {
  uint64_t tpr = 4, words = br + 1 + br * tpr + bc + br * (bc + 1); /* seqs, bound, red, tile */
  words += (pass == PASS_FWD ? br + 2 * bc : 2 * br + 2 * bc) * (D + 1);
  if (pass == PASS_DKV) words += br * (bc + 1) + 2 * bc;
  return 4 * words;
}

/* The tiled kernel's tile for a pass and head dim: rows owned per workgroup (BR) and other-side
 * rows per step (BC), the biggest that fit the device, 4 invocations per owned row; 0 when none
 * fits (the head dim is too big: the flat kernel takes it). */
static int tiled_tile(const vkft_device_info *info, int pass, int64_t D, uint32_t *br,
                      uint32_t *bc) {
  static const uint32_t tiles[][2] = {{32, 32}, {32, 16}, {16, 16}, {16, 8}, {8, 8}};
  if (D > 256) return 0; /* the owned rows' accumulators would not fit in registers */
  for (size_t i = 0; i < sizeof tiles / sizeof tiles[0]; i++)
    if (tiled_shared_bytes(pass, tiles[i][0], tiles[i][1], (uint64_t)D) <=
            info->max_shared_memory &&
        4 * tiles[i][0] <= info->max_workgroup_invocations) {
      *br = tiles[i][0], *bc = tiles[i][1];
      return 1;
    }
  return 0;
}

static void describe_variants(vkft_backend *be) {
  const vkft_device_info *info = vkft_device_get_info(be->dev);
  vkft_kernel_variant *flat = &be->variants[ATTENTION_FLAT],
                      *tiled = &be->variants[ATTENTION_TILED];
  *flat = (vkft_kernel_variant){.name = "attention_flat", .family = "attention", .available = 1};
  snprintf(flat->detail, sizeof flat->detail, "rows per invocation, no shared memory, fp32");
  *tiled = (vkft_kernel_variant){.name = "attention_tiled", .family = "attention", .available = 1};
  uint32_t br = 0, bc = 0;
  int fits = tiled_tile(info, PASS_DKV, 128, &br, &bc);
  snprintf(tiled->detail, sizeof tiled->detail,
           "query x key tiles through shared memory (head dim 128: %ux%u), 4 invocations a row, "
           "fp32",
           br, bc);
  const char *why = NULL;
  if (!vkft_spirv_find(tiled_shaders[PASS_FWD]))
    why = "not compiled in";
  else if (!tiled_tile(info, PASS_DKV, 64, &br, &bc) || !fits)
    why = "needs more shared memory than the device has";
  if (why) {
    tiled->available = 0;
    snprintf(tiled->why, sizeof tiled->why, "%s", why);
  }
}

void attention_kernels_refresh(vkft_backend *be) {
  vkft_kernel_variant *flat = &be->variants[ATTENTION_FLAT],
                      *tiled = &be->variants[ATTENTION_TILED];
  int env = be->env_attention;
  if (env >= 0 && be->variants[env].available && !be->variants[env].disabled) {
    flat->used = env == ATTENTION_FLAT, tiled->used = env == ATTENTION_TILED;
    return;
  }
  tiled->used = kernel_choice_is_gpu(be) && tiled->available && !tiled->disabled;
  flat->used = !tiled->used;
}

int attention_kernels_init(vkft_backend *be) {
  be->forced_attention = be->env_attention = -1;
  describe_variants(be);
  const char *want = be->tuning.attention_kernel;
  if (!strcmp(want, "flat")) be->env_attention = ATTENTION_FLAT;
  if (!strcmp(want, "tiled")) be->env_attention = ATTENTION_TILED;
  be->forced_attention = be->env_attention;
  attention_kernels_refresh(be);
  if (!*want || be->env_attention >= 0) return VKFT_OK;
  return vkft_error("VKFT_ATTENTION=%s: no such attention kernel (flat, tiled)", want);
}

/* The variant for a call of head dim D, and its tile when tiled. */
static int choose(const vkft_backend *be, int pass, int64_t D, uint32_t *br, uint32_t *bc,
                  int *variant) {
  const vkft_device_info *info = vkft_device_get_info(be->dev);
  int forced = be->forced_attention;
  if (forced >= 0 && forced == be->env_attention && be->variants[forced].disabled) forced = -1;
  if (forced >= 0 && !be->variants[forced].available)
    return vkft_error_with(VKFT_ERR_UNSUPPORTED, "attention: kernel %s is not available on %s: %s",
                           be->variants[forced].name, info->name, be->variants[forced].why);
  int fits = tiled_tile(info, pass, D, br, bc);
  if (forced == ATTENTION_TILED && !fits)
    return vkft_error_with(VKFT_ERR_UNSUPPORTED,
                           "attention: kernel attention_tiled cannot take head dim %lld on %s "
                           "(shared memory)",
                           (long long)D, info->name);
  *variant = forced >= 0                                  ? forced
             : be->variants[ATTENTION_TILED].used && fits ? ATTENTION_TILED
                                                          : ATTENTION_FLAT;
  return VKFT_OK;
}

/* The tiled kernel's dispatch of a pass over `rows` owned rows of `heads` heads. */
static void tiled_desc(const vkft_backend *be, vkft_dispatch_desc *d, int pass, int64_t D,
                       uint32_t br, uint32_t bc, int64_t rows, uint32_t heads,
                       attention_push *push) {
  if (!strcmp(be->tuning.kernel_fault, "attention_tiled")) push->scale *= 1.0f + 1.0f / 1024;
  d->shader = tiled_shaders[pass];
  d->spec[0] = 4 * br, d->spec[1] = (uint32_t)D, d->spec[2] = br, d->spec[3] = bc;
  d->spec_count = 4;
  d->push = push;
  d->push_size = sizeof *push;
  d->groups[0] = (uint32_t)((rows + br - 1) / br);
  d->groups[1] = heads;
  d->groups[2] = 1;
}

/* Specialization: head dim, whether every (T, H, D) row is 16-byte aligned for vector loads,
 * the workgroup size, owned rows per invocation R and other-side rows per step C (see
 * shaders/attention.comp). On CPU drivers loads dominate, so big tiles win: R = 8, C = 16
 * measured best on lavapipe (fwd and bwd); elsewhere R = 4, C = 8 keeps the R x C score
 * tiles within GPU register files (not yet measured). A workgroup is one subgroup, at least
 * 16 invocations. The VKFT_ATTN_* variables override all three for tuning (src/ops/backend.h). */
static void specialize(const vkft_backend *be, vkft_dispatch_desc *d, int64_t D,
                       const attention_push *push) {
  const uint64_t addrs[] = {push->q,    push->k,  push->v,  push->out,
                            push->dout, push->dq, push->dk, push->dv};
  int aligned = D % 4 == 0;
  for (size_t i = 0; i < sizeof addrs / sizeof addrs[0]; i++) aligned &= addrs[i] % 16 == 0;
  const vkft_device_info *info = vkft_device_get_info(be->dev);
  const vkft_tuning *tune = &be->tuning;
  int cpu = !strcmp(info->type, "cpu");
  uint32_t subgroup = info->subgroup_size;
  d->spec[0] = (uint32_t)D;
  d->spec[1] = (uint32_t)aligned;
  d->spec[2] = tune->attn_wg ? tune->attn_wg : subgroup > 16 && subgroup <= 128 ? subgroup : 16;
  d->spec[3] = tune->attn_r ? tune->attn_r : cpu ? 8 : 4;
  d->spec[4] = tune->attn_c ? tune->attn_c : cpu ? 16 : 8;
  d->spec_count = 5;
  d->push = push;
  d->push_size = sizeof *push;
}

int vkft_attention_at(vkft_backend *be, const vkft_tensor *q, const vkft_tensor *k,
                      const vkft_tensor *v, const vkft_tensor *seq_id, vkft_tensor *out,
                      vkft_tensor *lse, int64_t Tq, int64_t q_offset, int64_t Hq, int64_t Hkv,
                      int64_t D, float scale) {
  int64_t T = q_offset + Tq; /* positions covered by the keys */
  if (q_offset < 0 || check_shape("attention", T, Hq, Hkv, D) ||
      op_check("attention", "q", q, Tq * Hq * D, DT(VKFT_F32)) ||
      op_check("attention", "k", k, T * Hkv * D, DT(VKFT_F32)) ||
      op_check("attention", "v", v, T * Hkv * D, DT(VKFT_F32)) ||
      op_check("attention", "seq_id", seq_id, T, DT(VKFT_I32)) ||
      op_check("attention", "out", out, Tq * Hq * D, DT(VKFT_F32)) ||
      op_check("attention", "lse", lse, Tq * Hq, DT(VKFT_F32)))
    return VKFT_ERR;
  if (Tq <= 0) return vkft_error("attention: no query");

  if (!be->dev) {
    vkft_ref_attention_forward_at_f32(q->host, k->host, v->host, seq_id->host, out->host, lse->host,
                                      Tq, q_offset, Hq, Hkv, D, scale);
    return VKFT_OK;
  }

  attention_push push = {.q = q->buf.addr,
                         .k = k->buf.addr,
                         .v = v->buf.addr,
                         .seq = seq_id->buf.addr,
                         .out = out->buf.addr,
                         .lse = lse->buf.addr,
                         .T = (uint32_t)Tq,
                         .Hq = (uint32_t)Hq,
                         .Hkv = (uint32_t)Hkv,
                         .scale = scale,
                         .q_offset = (uint32_t)q_offset};
  vkft_dispatch_desc d = {
      .shader = "attention_fwd",
      .reads = {vk_range_of(q), vk_range_of(k), vk_range_of(v), vk_range_of(seq_id)},
      .read_count = 4,
      .writes = {vk_range_of(out), vk_range_of(lse)},
      .write_count = 2};
  uint32_t br, bc;
  int variant;
  if (choose(be, PASS_FWD, D, &br, &bc, &variant)) return VKFT_ERR;
  if (variant == ATTENTION_TILED) {
    tiled_desc(be, &d, PASS_FWD, D, br, bc, Tq, (uint32_t)Hq, &push);
    return vkft_stream_dispatch(be->dev, &d);
  }
  specialize(be, &d, D, &push);
  uint32_t rows = d.spec[2] * d.spec[3];
  d.groups[0] = (uint32_t)((Tq + rows - 1) / rows);
  d.groups[1] = (uint32_t)Hq;
  d.groups[2] = 1;
  return vkft_stream_dispatch(be->dev, &d);
}

int vkft_attention(vkft_backend *be, const vkft_tensor *q, const vkft_tensor *k,
                   const vkft_tensor *v, const vkft_tensor *seq_id, vkft_tensor *out,
                   vkft_tensor *lse, int64_t T, int64_t Hq, int64_t Hkv, int64_t D, float scale) {
  return vkft_attention_at(be, q, k, v, seq_id, out, lse, T, 0, Hq, Hkv, D, scale);
}

int vkft_attention_bwd(vkft_backend *be, const vkft_tensor *q, const vkft_tensor *k,
                       const vkft_tensor *v, const vkft_tensor *seq_id, const vkft_tensor *out,
                       const vkft_tensor *lse, const vkft_tensor *dout, vkft_tensor *dq,
                       vkft_tensor *dk, vkft_tensor *dv, vkft_tensor *delta, int64_t T, int64_t Hq,
                       int64_t Hkv, int64_t D, float scale) {
  const char *op = "attention_bwd";
  if (check_shape(op, T, Hq, Hkv, D) || op_check(op, "q", q, T * Hq * D, DT(VKFT_F32)) ||
      op_check(op, "k", k, T * Hkv * D, DT(VKFT_F32)) ||
      op_check(op, "v", v, T * Hkv * D, DT(VKFT_F32)) ||
      op_check(op, "seq_id", seq_id, T, DT(VKFT_I32)) ||
      op_check(op, "out", out, T * Hq * D, DT(VKFT_F32)) ||
      op_check(op, "lse", lse, T * Hq, DT(VKFT_F32)) ||
      op_check(op, "dout", dout, T * Hq * D, DT(VKFT_F32)) ||
      op_check(op, "dq", dq, T * Hq * D, DT(VKFT_F32)) ||
      op_check(op, "dk", dk, T * Hkv * D, DT(VKFT_F32)) ||
      op_check(op, "dv", dv, T * Hkv * D, DT(VKFT_F32)) ||
      op_check(op, "delta", delta, T * Hq, DT(VKFT_F32)))
    return VKFT_ERR;

  if (!be->dev) {
    vkft_ref_attention_backward_f32(q->host, k->host, v->host, seq_id->host, out->host, lse->host,
                                    dout->host, dq->host, dk->host, dv->host, delta->host, T, Hq,
                                    Hkv, D, scale);
    return VKFT_OK;
  }

  attention_push push = {.q = q->buf.addr,
                         .k = k->buf.addr,
                         .v = v->buf.addr,
                         .seq = seq_id->buf.addr,
                         .out = out->buf.addr,
                         .lse = lse->buf.addr,
                         .dout = dout->buf.addr,
                         .dq = dq->buf.addr,
                         .dk = dk->buf.addr,
                         .dv = dv->buf.addr,
                         .delta = delta->buf.addr,
                         .T = (uint32_t)T,
                         .Hq = (uint32_t)Hq,
                         .Hkv = (uint32_t)Hkv,
                         .scale = scale};
  /* pass 1 owns query rows: delta and dq */
  vkft_dispatch_desc d = {.shader = "attention_bwd_dq",
                          .reads = {vk_range_of(q), vk_range_of(k), vk_range_of(v),
                                    vk_range_of(seq_id), vk_range_of(out), vk_range_of(lse),
                                    vk_range_of(dout)},
                          .read_count = 7,
                          .writes = {vk_range_of(dq), vk_range_of(delta)},
                          .write_count = 2};
  uint32_t br, bc, br2, bc2;
  int variant, variant2;
  if (choose(be, PASS_DQ, D, &br, &bc, &variant) || choose(be, PASS_DKV, D, &br2, &bc2, &variant2))
    return VKFT_ERR;
  if (variant == ATTENTION_TILED && variant2 == ATTENTION_TILED) {
    attention_push push2 = push;
    tiled_desc(be, &d, PASS_DQ, D, br, bc, T, (uint32_t)Hq, &push);
    if (vkft_stream_dispatch(be->dev, &d)) return VKFT_ERR;
    vkft_dispatch_desc e = {.reads = {vk_range_of(q), vk_range_of(k), vk_range_of(v),
                                      vk_range_of(seq_id), vk_range_of(lse), vk_range_of(dout),
                                      vk_range_of(delta)},
                            .read_count = 7,
                            .writes = {vk_range_of(dk), vk_range_of(dv)},
                            .write_count = 2};
    tiled_desc(be, &e, PASS_DKV, D, br2, bc2, T, (uint32_t)Hkv, &push2);
    return vkft_stream_dispatch(be->dev, &e);
  }
  specialize(be, &d, D, &push);
  uint32_t rows = d.spec[2] * d.spec[3];
  d.groups[0] = (uint32_t)((T + rows - 1) / rows);
  d.groups[1] = (uint32_t)Hq;
  d.groups[2] = 1;
  if (vkft_stream_dispatch(be->dev, &d)) return VKFT_ERR;

  /* pass 2 owns key rows of one kv head: dk and dv, after delta */
  vkft_dispatch_desc e = {.shader = "attention_bwd_dkv",
                          .reads = {vk_range_of(q), vk_range_of(k), vk_range_of(v),
                                    vk_range_of(seq_id), vk_range_of(lse), vk_range_of(dout),
                                    vk_range_of(delta)},
                          .read_count = 7,
                          .writes = {vk_range_of(dk), vk_range_of(dv)},
                          .write_count = 2};
  specialize(be, &e, D, &push);
  e.groups[0] = d.groups[0];
  e.groups[1] = (uint32_t)Hkv;
  e.groups[2] = 1;
  return vkft_stream_dispatch(be->dev, &e);
}
