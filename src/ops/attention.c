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

/* The attention kernels of a Vulkan device:
 *   flat         shaders/attention.comp: each invocation owns R rows and reads the other side's
 *                rows itself, no shared memory. For CPU drivers (lavapipe), everyone's last
 *                fallback.
 *   tiled        shaders/attention_tiled.comp: a workgroup owns BR rows and stages them, and BC
 *                rows of the other side at a time, through shared memory; fp32 (GPUs).
 *   coopmat      the same with ATTN_COOPMAT: both products of a step on cooperative matrices
 *                (fp16 blocks scaled by powers of two, fp32 sums), where the device lists an
 *                fp16 shape and the head dim is a multiple of it.
 *   coopmat_emu  coopmat with the matrices emulated (shaders/coopmat.glsl): never chosen, forced
 *                by the tests so that its code runs on devices without cooperative matrices.
 * A GPU (or VKFT_MATMUL_CHOICE=gpu) takes coopmat, else tiled, else flat, per call: a head dim a
 * kernel cannot take (its tiles must fit the shared memory; coopmat needs a multiple of the
 * matrix shape) goes to the next. VKFT_ATTENTION puts one kernel first for every call. */
enum { PASS_FWD, PASS_DQ, PASS_DKV };
enum { KIND_FLAT, KIND_TILED, KIND_COOPMAT, KIND_COOPMAT_EMU };
static const char *const kind_names[] = {"flat", "tiled", "coopmat", "coopmat_emu"};
static const char *const shaders[][3] = {
    {"attention_fwd", "attention_bwd_dq", "attention_bwd_dkv"},
    {"attention_tiled_fwd", "attention_tiled_bwd_dq", "attention_tiled_bwd_dkv"},
    {"attention_coopmat_fwd", "attention_coopmat_bwd_dq", "attention_coopmat_bwd_dkv"},
    {"attention_coopemu_fwd", "attention_coopemu_bwd_dq", "attention_coopemu_bwd_dkv"}};

typedef struct attention_tile {
  uint32_t br, bc;         /* owned rows per workgroup, other-side rows per step */
  uint32_t cm, cn, ck, sg; /* coopmat: the matrix shape and the required subgroup size */
} attention_tile;

/* Shared memory of a pass (see the declarations in attention_tiled.comp). */
static uint64_t shared_bytes(int kind, int pass, uint64_t br, uint64_t bc, uint64_t D) {
  uint64_t words = br + 1 + 4 * br + bc + (pass == PASS_DKV ? 2 * bc : 0); /* seqs, red, stats */
  if (kind == KIND_TILED) {
    words += br * (bc + 1) * (pass == PASS_DKV ? 2 : 1);
    return 4 * (words + (pass == PASS_FWD ? br + 2 * bc : 2 * br + 2 * bc) * (D + 1));
  }
  uint64_t halves = br * (D + 8) * (pass == PASS_FWD ? 1 : 2) + 2 * bc * (D + 8) +
                    br * (bc + 8) * (pass == PASS_DKV ? 2 : 1);
  words += br * (bc + 4) * (pass == PASS_FWD ? 1 : 2) + br * (D + 4) + 10;
  return 2 * halves + 4 * words;
}

/* The tile of a kernel kind for a pass and head dim: the biggest that fits the device (4
 * invocations per owned row); 0 when none does. */
static int kernel_tile(const vkft_device_info *info, int kind, int pass, int64_t D,
                       attention_tile *t) {
  static const uint32_t tiles[][2] = {{32, 32}, {32, 16}, {16, 16}, {16, 8}, {8, 8}};
  *t = (attention_tile){0};
  if (kind == KIND_FLAT || D > 256) return 0; /* the owned rows' accumulators: registers */
  if (kind >= KIND_COOPMAT) {
    int emu = kind == KIND_COOPMAT_EMU;
    uint32_t mnk[3];
    kernel_coopmat_shape(info, emu, mnk);
    t->cm = mnk[0], t->cn = mnk[1], t->ck = mnk[2], t->sg = kernel_coopmat_subgroup(info);
    if (!t->cm || !t->sg || (emu && t->sg < 4) || D % t->ck || D % t->cn || D % 8) return 0;
  }
  for (size_t i = 0; i < sizeof tiles / sizeof tiles[0]; i++) {
    uint32_t br = tiles[i][0], bc = tiles[i][1], wg = 4 * br;
    if (shared_bytes(kind, pass, br, bc, (uint64_t)D) > info->max_shared_memory ||
        wg > info->max_workgroup_invocations)
      continue;
    if (kind >= KIND_COOPMAT && (br % t->cm || bc % t->cn || bc % t->ck || wg % t->sg)) continue;
    t->br = br, t->bc = bc;
    return 1;
  }
  return 0;
}

static void describe_variants(vkft_backend *be) {
  const vkft_device_info *info = vkft_device_get_info(be->dev);
  for (int kind = KIND_FLAT; kind <= KIND_COOPMAT_EMU; kind++) {
    vkft_kernel_variant *v = &be->variants[ATTENTION_FLAT + kind];
    *v = (vkft_kernel_variant){.family = "attention", .available = 1};
    snprintf(v->name, sizeof v->name, "attention_%s", kind_names[kind]);
    if (kind == KIND_FLAT) {
      snprintf(v->detail, sizeof v->detail, "rows per invocation, no shared memory, fp32");
      continue;
    }
    attention_tile t;
    int fits = kernel_tile(info, kind, PASS_DKV, 128, &t);
    if (kind == KIND_TILED)
      snprintf(v->detail, sizeof v->detail,
               "query x key tiles through shared memory (head dim 128: %ux%u), fp32", t.br, t.bc);
    else
      snprintf(v->detail, sizeof v->detail,
               "tiles as tiled (head dim 128: %ux%u), %ux%ux%u fp16 matrices%s, fp32 sums", t.br,
               t.bc, t.cm, t.cn, t.ck, kind == KIND_COOPMAT_EMU ? " emulated (tests)" : "");
    const char *why = NULL;
    if (!vkft_spirv_find(shaders[kind][PASS_FWD]))
      why = "not compiled in (this build's glslang or spirv-val could not make it)";
    else if (kind == KIND_COOPMAT && !info->coopmat_m)
      why = info->coopmat_why;
    else if (kind >= KIND_COOPMAT && !kernel_coopmat_subgroup(info))
      why = "the subgroup size varies and cannot be required";
    else if (!kernel_tile(info, kind, PASS_DKV, 64, &t) || !fits)
      why = "no tile fits the device's shared memory and matrix shape";
    if (why) {
      v->available = 0;
      snprintf(v->why, sizeof v->why, "%s", why);
    }
  }
}

static int enabled(const vkft_backend *be, int kind) {
  const vkft_kernel_variant *v = &be->variants[ATTENTION_FLAT + kind];
  return v->available && !v->disabled;
}

/* `used`: a GPU takes coopmat and tiled (for the head dims coopmat cannot take), else flat. */
void attention_kernels_refresh(vkft_backend *be) {
  for (int kind = KIND_FLAT; kind <= KIND_COOPMAT_EMU; kind++)
    be->variants[ATTENTION_FLAT + kind].used = 0;
  int env = be->env_attention;
  if (env >= 0 && be->variants[env].available && !be->variants[env].disabled) {
    be->variants[env].used = 1;
    return;
  }
  int gpu = kernel_choice_is_gpu(be);
  be->variants[ATTENTION_COOPMAT].used = gpu && enabled(be, KIND_COOPMAT);
  be->variants[ATTENTION_TILED].used = gpu && enabled(be, KIND_TILED);
  be->variants[ATTENTION_FLAT].used = !be->variants[ATTENTION_TILED].used;
}

int attention_kernels_init(vkft_backend *be) {
  be->forced_attention = be->env_attention = -1;
  describe_variants(be);
  const char *want = be->tuning.attention_kernel;
  for (int kind = KIND_FLAT; kind <= KIND_COOPMAT_EMU; kind++)
    if (!strcmp(want, kind_names[kind])) be->env_attention = ATTENTION_FLAT + kind;
  be->forced_attention = be->env_attention;
  attention_kernels_refresh(be);
  if (!*want || be->env_attention >= 0) return VKFT_OK;
  return vkft_error("VKFT_ATTENTION=%s: no such attention kernel (flat, tiled, coopmat, "
                    "coopmat_emu)",
                    want);
}

/* The kernel kind for a pass of head dim D, and its tile: the forced kernel, or the device's
 * best, or the next that can take D. */
static int choose(const vkft_backend *be, int pass, int64_t D, attention_tile *t, int *chosen) {
  const vkft_device_info *info = vkft_device_get_info(be->dev);
  int forced = be->forced_attention;
  if (forced >= 0 && forced == be->env_attention && be->variants[forced].disabled) forced = -1;
  if (forced >= 0 && !be->variants[forced].available)
    return vkft_error_with(VKFT_ERR_UNSUPPORTED, "attention: kernel %s is not available on %s: %s",
                           be->variants[forced].name, info->name, be->variants[forced].why);
  int first = forced >= 0                 ? forced - ATTENTION_FLAT
              : !kernel_choice_is_gpu(be) ? KIND_FLAT
                                          : KIND_COOPMAT;
  /* from the first kind down the chain coopmat_emu, coopmat -> tiled -> flat */
  for (int kind = first; kind > KIND_FLAT; kind = kind >= KIND_COOPMAT ? KIND_TILED : KIND_FLAT)
    if ((kind == first && forced >= 0) || enabled(be, kind))
      if (kernel_tile(info, kind, pass, D, t)) {
        *chosen = kind;
        return VKFT_OK;
      }
  *chosen = KIND_FLAT;
  return VKFT_OK;
}

/* Whether the chosen kernel for head dim D stages through fp16 (the op table's tolerance). */
int vkft_attention_precision_of(const vkft_backend *be, int64_t D, double *input_unit) {
  *input_unit = 0;
  if (!be->dev) return VKFT_OK;
  for (int pass = PASS_FWD; pass <= PASS_DKV; pass++) {
    attention_tile t;
    int kind;
    if (choose(be, pass, D, &t, &kind)) return VKFT_ERR;
    /* fp16 rounding to nearest or toward zero (Vulkan leaves the choice to the driver) */
    if (kind >= KIND_COOPMAT) *input_unit = 1.0 / 1024.0;
  }
  return VKFT_OK;
}

/* A shared-memory kernel's dispatch of a pass over `rows` owned rows of `heads` heads. */
static void tiled_desc(const vkft_backend *be, vkft_dispatch_desc *d, int kind, int pass, int64_t D,
                       const attention_tile *t, int64_t rows, uint32_t heads,
                       attention_push *push) {
  if (!strcmp(be->tuning.kernel_fault, be->variants[ATTENTION_FLAT + kind].name))
    push->scale *= 1.0f + 1.0f / 1024;
  d->shader = shaders[kind][pass];
  uint32_t spec[] = {4 * t->br, (uint32_t)D, t->br, t->bc, t->cm, t->cn, t->ck, t->sg};
  d->spec_count = kind >= KIND_COOPMAT ? 8 : 4;
  memcpy(d->spec, spec, sizeof(uint32_t) * (size_t)d->spec_count);
  d->subgroup_size = kind >= KIND_COOPMAT ? t->sg : 0;
  d->push = push;
  d->push_size = sizeof *push;
  d->groups[0] = (uint32_t)((rows + t->br - 1) / t->br);
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

/* One pass over `rows` owned rows of `heads` heads with the kernel chosen for it. */
static int dispatch_pass(vkft_backend *be, vkft_dispatch_desc *d, int pass, int64_t D, int64_t rows,
                         uint32_t heads, const attention_push *push) {
  attention_tile t;
  int kind;
  attention_push p = *push; /* a fault planted in a kernel changes its copy (tests) */
  if (choose(be, pass, D, &t, &kind)) return VKFT_ERR;
  if (kind != KIND_FLAT) {
    tiled_desc(be, d, kind, pass, D, &t, rows, heads, &p);
  } else {
    d->shader = shaders[KIND_FLAT][pass];
    specialize(be, d, D, &p);
    uint32_t per_group = d->spec[2] * d->spec[3];
    d->groups[0] = (uint32_t)((rows + per_group - 1) / per_group);
    d->groups[1] = heads;
    d->groups[2] = 1;
  }
  return vkft_stream_dispatch(be->dev, d);
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
      .reads = {vk_range_of(q), vk_range_of(k), vk_range_of(v), vk_range_of(seq_id)},
      .read_count = 4,
      .writes = {vk_range_of(out), vk_range_of(lse)},
      .write_count = 2};
  return dispatch_pass(be, &d, PASS_FWD, D, Tq, (uint32_t)Hq, &push);
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
  vkft_dispatch_desc d = {.reads = {vk_range_of(q), vk_range_of(k), vk_range_of(v),
                                    vk_range_of(seq_id), vk_range_of(out), vk_range_of(lse),
                                    vk_range_of(dout)},
                          .read_count = 7,
                          .writes = {vk_range_of(dq), vk_range_of(delta)},
                          .write_count = 2};
  if (dispatch_pass(be, &d, PASS_DQ, D, T, (uint32_t)Hq, &push)) return VKFT_ERR;

  /* pass 2 owns key rows of one kv head: dk and dv, after delta */
  vkft_dispatch_desc e = {.reads = {vk_range_of(q), vk_range_of(k), vk_range_of(v),
                                    vk_range_of(seq_id), vk_range_of(lse), vk_range_of(dout),
                                    vk_range_of(delta)},
                          .read_count = 7,
                          .writes = {vk_range_of(dk), vk_range_of(dv)},
                          .write_count = 2};
  return dispatch_pass(be, &e, PASS_DKV, D, T, (uint32_t)Hkv, &push);
}
