/* Op-table family "rope" / "rope_bwd": packed sequences (positions restart at 0), Llama-3
 * frequency scaling, large positions (up to 131071), in place; the device and the reference
 * backend against the double reference.
 * Tolerance: each output a*c - b*s (or b*c + a*s) is measured against |a| + |b|. The device's
 * cos/sin are within ~4 u of the exact values at any position (exact integer phase, 40-bit
 * remainder rounded to fp32, fp32 pi/2, polynomials of ~1 ulp; see shaders/rope.comp), and the
 * two products and the sum add 3 u: 10 u leaves a little room. The fp32 reference takes cos/sin
 * in double and rounds them, well inside that. */
#include "core.h"

#include <stdio.h>

enum { ROPE_LLAMA3 = 1, ROPE_LARGE_POS = 2, ROPE_IN_PLACE = 4 };

typedef struct rope_ctx {
  int64_t T, H, D;
  int bwd, in_place;
  float *x;
  int32_t *pos, *freqs;
  vkft_tensor tx, tout, tpos, tfreqs;
} rope_ctx;

static int reset(vkft_backend *be, void *p) {
  rope_ctx *k = p;
  return k->in_place ? vkft_tensor_write(be, &k->tout, k->x) : VKFT_OK;
}

static int record(vkft_backend *be, void *p) {
  rope_ctx *k = p;
  const vkft_tensor *in = k->in_place ? &k->tout : &k->tx;
  return (k->bwd ? vkft_rope_bwd : vkft_rope)(be, in, &k->tout, &k->tpos, &k->tfreqs, k->T, k->H,
                                              k->D);
}

static void release(vkft_backend *be, rope_ctx *k) {
  vkft_tensor *all[] = {&k->tx, &k->tout, &k->tpos, &k->tfreqs};
  for (int i = 0; i < 4; i++)
    if (all[i]->host || all[i]->buf.addr) vkft_tensor_free(be, all[i]);
}

static int run_on(vkft_backend *be, rope_ctx *k, float *got) {
  int64_t n = k->T * k->H * k->D;
  if (vkft_tensor_alloc(be, VKFT_F32, n, &k->tx) || vkft_tensor_write(be, &k->tx, k->x) ||
      vkft_tensor_alloc(be, VKFT_F32, n, &k->tout) ||
      vkft_tensor_alloc(be, VKFT_I32, k->T, &k->tpos) || vkft_tensor_write(be, &k->tpos, k->pos) ||
      vkft_tensor_alloc(be, VKFT_I32, vkft_rope_freqs_len(k->D), &k->tfreqs) ||
      vkft_tensor_write(be, &k->tfreqs, k->freqs) || reset(be, k) || vkft_begin(be) ||
      record(be, k) || vkft_end(be) || vkft_tensor_read(be, &k->tout, got))
    return VKFT_ERR;
  return VKFT_OK;
}

static int run(vkft_backend *vk, const vkft_op_case *c, int timed_runs, vkft_op_result *r) {
  int flags = (int)c->d[3];
  rope_ctx k = {.T = c->d[0],
                .H = c->d[1],
                .D = c->d[2],
                .bwd = strstr(c->op, "bwd") != NULL,
                .in_place = (flags & ROPE_IN_PLACE) != 0};
  int64_t T = k.T, H = k.H, D = k.D, n = T * H * D, half = D / 2;
  snprintf(r->shape, sizeof r->shape, "%lldx%lldx%lld%s%s%s", (long long)T, (long long)H,
           (long long)D, flags & ROPE_LLAMA3 ? " llama3" : "",
           flags & ROPE_LARGE_POS ? " pos>8k" : "", k.in_place ? " in place" : "");
  k.x = malloc((size_t)n * 4), k.pos = malloc((size_t)T * 4);
  k.freqs = malloc((size_t)vkft_rope_freqs_len(D) * 4);
  float *got = malloc((size_t)n * 4);
  double *xd = malloc((size_t)n * 8), *want = malloc((size_t)n * 8), *scale = malloc((size_t)n * 8);
  int status = VKFT_ERR;
  if (!k.x || !k.pos || !k.freqs || !got || !xd || !want || !scale) {
    vkft_error("rope: out of host memory");
    goto done;
  }
  vkft_rope_config cfg = {.theta = 10000};
  if (flags & ROPE_LLAMA3)
    cfg = (vkft_rope_config){.theta = 500000,
                             .llama3 = 1,
                             .factor = 32,
                             .low_freq_factor = 1,
                             .high_freq_factor = 4,
                             .original_max_position_embeddings = 8192};
  if (vkft_rope_freqs(&cfg, D, k.freqs)) goto done;
  harness_rng rng = {(uint64_t)(T * 1000003 + H * 101 + D) ^ (uint64_t)flags << 40 ^
                     (uint64_t)k.bwd << 48};
  core_uniform(&rng, k.x, n, -1, 1);
  /* packed sequences of random lengths, each restarting at 0 (or at a large offset) */
  int32_t next = 0;
  for (int64_t t = 0; t < T; t++) {
    if (harness_uniform(&rng, 0, 1) < 4.0 / (double)(T + 3))
      next = flags & ROPE_LARGE_POS ? (int32_t)harness_uniform(&rng, 8000, 131000) : 0;
    if (t == 0 && (flags & ROPE_LARGE_POS)) next = 8191;
    k.pos[t] = next++;
  }
  if (flags & ROPE_LARGE_POS) k.pos[T - 1] = 131071;
  const float *inv_freq = (const float *)(k.freqs + 2 * half);
  for (int64_t i = 0; i < n; i++) xd[i] = k.x[i];
  vkft_ref_rope_f64(xd, want, k.pos, inv_freq, T, H, D, k.bwd);
  for (int64_t i = 0; i < n; i++) {
    int64_t j = i % D, pair = j < half ? i + half : i - half;
    scale[i] = fabs(xd[i]) + fabs(xd[pair]);
  }
  double tol = 10 * CORE_U;

  status = run_on(vk, &k, got);
  if (status == VKFT_OK) {
    core_report(r, core_err(got, want, scale, n), tol);
    status = harness_repeat(vk, reset, record, &k, &k.tout, got, timed_runs, r);
  }
  if (status == VKFT_OK && r->ms > 0) r->gbps = 8.0 * n / (r->ms * 1e6);
  release(vk, &k);
  vkft_backend *ref;
  if (status == VKFT_OK && timed_runs == 0 && (status = vkft_backend_ref_create(&ref)) == 0) {
    status = run_on(ref, &k, got);
    if (status == VKFT_OK) core_report(r, core_err(got, want, scale, n), tol);
    release(ref, &k);
    vkft_backend_destroy(ref);
  }
done:
  free(k.x), free(k.pos), free(k.freqs), free(got), free(xd), free(want), free(scale);
  return status;
}

/* d = {T, H, D, flags: 1 llama3 scaling, 2 positions 8191..131071, 4 in place}. D = 2 and odd
 * D/2 (no vector path), T = 1, head_dim 64 and 128 (vector path). */
static const vkft_op_case cases[] = {
    {"rope", VKFT_F32, {64, 4, 64, 0}, HARNESS_T | HARNESS_S},
    {"rope", VKFT_F32, {1, 1, 2, 0}, HARNESS_T},
    {"rope", VKFT_F32, {7, 3, 6, 0}, HARNESS_T},
    {"rope", VKFT_F32, {33, 5, 128, 1}, HARNESS_T},
    {"rope", VKFT_F32, {50, 2, 64, 1 | 2}, HARNESS_T | HARNESS_S},
    {"rope", VKFT_F32, {19, 3, 10, 2}, HARNESS_T},
    {"rope", VKFT_F32, {21, 4, 128, 2 | 4}, HARNESS_T},
    {"rope_bwd", VKFT_F32, {64, 4, 64, 0}, HARNESS_T | HARNESS_S},
    {"rope_bwd", VKFT_F32, {1, 1, 2, 0}, HARNESS_T},
    {"rope_bwd", VKFT_F32, {9, 3, 18, 1 | 2}, HARNESS_T},
    {"rope_bwd", VKFT_F32, {40, 8, 128, 1 | 2 | 4}, HARNESS_T},
    {"rope", VKFT_F32, {2048, 32, 64, 1}, HARNESS_B},
    {"rope_bwd", VKFT_F32, {2048, 32, 64, 1}, HARNESS_B},
    {"rope", VKFT_F32, {2048, 16, 128, 0}, HARNESS_B},
};

const harness_family family_rope = {cases, HARNESS_COUNT(cases), run};
