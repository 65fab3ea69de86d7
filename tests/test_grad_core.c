/* Gradient checks of the ops-core references: every backward (rmsnorm for x and w, rope,
 * swiglu for gate and up, embedding for the table) against central finite differences of the
 * forward, all in double, with the scalar objective L = sum(dout .* out) for a random dout.
 * Also the host helpers: transformers' llama3 inverse frequencies, the embedding plan, and
 * id validation. */
#include "check.h"

#include "vkft/error.h"
#include "vkft/ops.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng_state = 0x2545f4914f6cdd1dull;
static double uniform(double lo, double hi) {
  rng_state ^= rng_state << 13, rng_state ^= rng_state >> 7, rng_state ^= rng_state << 17;
  return lo + (hi - lo) * (double)(rng_state >> 11) * (1.0 / 9007199254740992.0);
}
static void fill(double *a, int64_t n, double lo, double hi) {
  for (int64_t i = 0; i < n; i++) a[i] = uniform(lo, hi);
}
static double dot(const double *a, const double *b, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; i++) s += a[i] * b[i];
  return s;
}

/* The forward of the op under test as a function of one input vector, writing out (n_out). */
typedef void (*forward_fn)(void *ctx, const double *in, double *out);

/* Compares grad (the analytic dL/din) with central differences of L = dout . forward(in);
 * every element must agree to 1e-6 relative (of the element, or of the largest gradient
 * element for the ones near zero). */
static void check_gradient(const char *what, forward_fn f, void *ctx, double *in, int64_t n_in,
                           const double *dout, int64_t n_out, const double *grad) {
  double *out = malloc((size_t)n_out * sizeof *out);
  double largest = 0;
  for (int64_t i = 0; i < n_in; i++) largest = fmax(largest, fabs(grad[i]));
  double worst = 0;
  for (int64_t i = 0; i < n_in; i++) {
    double keep = in[i], h = 1e-5 * fmax(1.0, fabs(keep));
    in[i] = keep + h;
    f(ctx, in, out);
    double up = dot(dout, out, n_out);
    in[i] = keep - h;
    f(ctx, in, out);
    double down = dot(dout, out, n_out);
    in[i] = keep;
    double numeric = (up - down) / (2 * h);
    double err = fabs(numeric - grad[i]) / fmax(fabs(grad[i]), 1e-3 * largest + 1e-300);
    if (!(err <= worst)) worst = err;
  }
  printf("%-24s max relative error %.2e over %lld inputs\n", what, worst, (long long)n_in);
  CHECKF(worst < 1e-6, "%s: finite differences disagree by %.3e", what, worst);
  free(out);
}

/* ---- rmsnorm ---- */
typedef struct rms_ctx {
  int64_t R, C;
  double *x, *w; /* the one not being varied */
  int vary_w;
} rms_ctx;

static void rms_forward(void *p, const double *in, double *out) {
  rms_ctx *k = p;
  vkft_ref_rmsnorm_f64(k->vary_w ? k->x : in, k->vary_w ? in : k->w, out, NULL, k->R, k->C, 1e-5);
}

static void grad_rmsnorm(int64_t R, int64_t C) {
  int64_t n = R * C;
  double *x = malloc(n * 8), *w = malloc(C * 8), *y = malloc(n * 8), *rstd = malloc(R * 8);
  double *dy = malloc(n * 8), *dx = malloc(n * 8), *dw = calloc(C, 8);
  fill(x, n, -2, 2), fill(w, C, -1.5, 1.5), fill(dy, n, -1, 1);
  vkft_ref_rmsnorm_f64(x, w, y, rstd, R, C, 1e-5);
  vkft_ref_rmsnorm_backward_f64(x, w, rstd, dy, dx, dw, R, C);
  rms_ctx k = {R, C, x, w, 0};
  char what[64];
  snprintf(what, sizeof what, "rmsnorm dx %lldx%lld", (long long)R, (long long)C);
  check_gradient(what, rms_forward, &k, x, n, dy, n, dx);
  k.vary_w = 1;
  snprintf(what, sizeof what, "rmsnorm dw %lldx%lld", (long long)R, (long long)C);
  check_gradient(what, rms_forward, &k, w, C, dy, n, dw);
  /* dw accumulates: a second backward doubles it */
  double *dw2 = malloc(C * 8);
  memcpy(dw2, dw, C * 8);
  vkft_ref_rmsnorm_backward_f64(x, w, rstd, dy, dx, dw2, R, C);
  int doubled = 1;
  for (int64_t j = 0; j < C; j++) doubled &= fabs(dw2[j] - 2 * dw[j]) <= 1e-12 * fabs(dw[j]);
  CHECK(doubled);
  free(x), free(w), free(y), free(rstd), free(dy), free(dx), free(dw), free(dw2);
}

/* ---- rope ---- */
typedef struct rope_ctx {
  int64_t T, H, D;
  const int32_t *pos;
  const float *inv_freq;
} rope_ctx;

static void rope_forward(void *p, const double *in, double *out) {
  rope_ctx *k = p;
  vkft_ref_rope_f64(in, out, k->pos, k->inv_freq, k->T, k->H, k->D, 0);
}

static void grad_rope(int64_t T, int64_t H, int64_t D, int llama3) {
  int64_t n = T * H * D;
  vkft_rope_config cfg = {.theta = 10000};
  if (llama3)
    cfg = (vkft_rope_config){.theta = 500000,
                             .llama3 = 1,
                             .factor = 8,
                             .low_freq_factor = 1,
                             .high_freq_factor = 4,
                             .original_max_position_embeddings = 8192};
  float *inv_freq = malloc((D / 2) * 4);
  CHECK(vkft_rope_inv_freq(&cfg, D, inv_freq) == VKFT_OK);
  int32_t *pos = malloc(T * 4);
  for (int64_t t = 0; t < T; t++) pos[t] = t < T / 2 ? (int32_t)t : (int32_t)(8191 + 977 * t);
  double *x = malloc(n * 8), *y = malloc(n * 8), *dy = malloc(n * 8), *dx = malloc(n * 8);
  fill(x, n, -1, 1), fill(dy, n, -1, 1);
  vkft_ref_rope_f64(dy, dx, pos, inv_freq, T, H, D, 1);
  rope_ctx k = {T, H, D, pos, inv_freq};
  char what[64];
  snprintf(what, sizeof what, "rope dx %lldx%lldx%lld%s", (long long)T, (long long)H, (long long)D,
           llama3 ? " llama3" : "");
  check_gradient(what, rope_forward, &k, x, n, dy, n, dx);
  /* the backward undoes the forward (a rotation), in place too */
  vkft_ref_rope_f64(x, y, pos, inv_freq, T, H, D, 0);
  vkft_ref_rope_f64(y, y, pos, inv_freq, T, H, D, 1);
  double worst = 0;
  for (int64_t i = 0; i < n; i++) worst = fmax(worst, fabs(y[i] - x[i]));
  CHECKF(worst < 1e-14, "rope: inverse(forward(x)) differs from x by %.3e", worst);
  free(inv_freq), free(pos), free(x), free(y), free(dy), free(dx);
}

/* ---- swiglu ---- */
typedef struct swiglu_ctx {
  int64_t n;
  double *gate, *up;
  int vary_up;
} swiglu_ctx;

static void swiglu_forward(void *p, const double *in, double *out) {
  swiglu_ctx *k = p;
  vkft_ref_swiglu_f64(k->vary_up ? k->gate : in, k->vary_up ? in : k->up, out, k->n);
}

static void grad_swiglu(int64_t n) {
  double *gate = malloc(n * 8), *up = malloc(n * 8), *dout = malloc(n * 8);
  double *dgate = malloc(n * 8), *dup = malloc(n * 8);
  fill(gate, n, -8, 8), fill(up, n, -2, 2), fill(dout, n, -1, 1);
  vkft_ref_swiglu_backward_f64(gate, up, dout, dgate, dup, n);
  swiglu_ctx k = {n, gate, up, 0};
  check_gradient("swiglu dgate", swiglu_forward, &k, gate, n, dout, n, dgate);
  k.vary_up = 1;
  check_gradient("swiglu dup", swiglu_forward, &k, up, n, dout, n, dup);
  free(gate), free(up), free(dout), free(dgate), free(dup);
}

/* ---- embedding ---- */
typedef struct emb_ctx {
  int64_t T, C;
  const int32_t *ids;
} emb_ctx;

static void embedding_forward(void *p, const double *in, double *out) {
  emb_ctx *k = p;
  vkft_ref_embedding_f64(in, k->ids, out, k->T, k->C);
}

static void grad_embedding(int64_t T, int64_t C, int64_t V) {
  int32_t *ids = malloc(T * 4);
  for (int64_t t = 0; t < T; t++) ids[t] = (int32_t)uniform(0, (double)V) % (int32_t)V;
  ids[T - 1] = ids[0]; /* a repeated id at least */
  double *table = malloc(V * C * 8), *dout = malloc(T * C * 8), *dtable = calloc(V * C, 8);
  fill(table, V * C, -1, 1), fill(dout, T * C, -1, 1);
  vkft_ref_embedding_backward_f64(dout, ids, dtable, T, C);
  emb_ctx k = {T, C, ids};
  check_gradient("embedding dtable", embedding_forward, &k, table, V * C, dout, T * C, dtable);

  /* the device plan: every token once, grouped by id, in increasing t within an id */
  int32_t *plan = malloc(vkft_embedding_plan_len(T) * 4);
  int64_t unique = 0;
  CHECK(vkft_embedding_plan(ids, T, V, plan, &unique) == VKFT_OK);
  int ok = unique > 0 && unique < T && plan[2 * T] == 0 && plan[2 * T + unique] == T;
  int *seen = calloc(T, sizeof *seen);
  for (int64_t u = 0; u < unique && ok; u++) {
    ok &= u == 0 || plan[T + u] > plan[T + u - 1];
    for (int32_t j = plan[2 * T + u]; j < plan[2 * T + u + 1] && ok; j++) {
      ok &= ids[plan[j]] == plan[T + u] && !seen[plan[j]]++;
      ok &= j == plan[2 * T + u] || plan[j] > plan[j - 1];
    }
  }
  for (int64_t t = 0; t < T; t++) ok &= seen[t] == 1;
  CHECK(ok);
  ids[1] = (int32_t)V;
  CHECK_ERR(vkft_embedding_plan(ids, T, V, plan, &unique), VKFT_ERR_INPUT,
            "outside the vocabulary");
  ids[1] = -1;
  CHECK(vkft_embedding_check_ids(ids, T, V) == VKFT_ERR);
  free(ids), free(table), free(dout), free(dtable), free(plan), free(seen);
}

/* Llama 3.1 8B's rope_scaling (factor 8, low 1, high 4, original 8192, theta 500000, head_dim
 * 128): values of transformers' _compute_llama3_parameters evaluated in double, one index in
 * each band (high frequency kept, medium smoothed, low divided by the factor). */
static void llama3_inv_freq(void) {
  vkft_rope_config cfg = {.theta = 500000,
                          .llama3 = 1,
                          .factor = 8,
                          .low_freq_factor = 1,
                          .high_freq_factor = 4,
                          .original_max_position_embeddings = 8192};
  float f[64];
  CHECK(vkft_rope_inv_freq(&cfg, 128, f) == VKFT_OK);
  static const struct {
    int i;
    double want;
  } known[] = {{0, 1.0},
               {20, 0.016560440080994446},
               {28, 0.0032114459947525913},
               {30, 0.0013718935677611381},
               {33, 0.00031269375038406517},
               {35, 9.556212353964683e-05},
               {63, 3.068925988914511e-07}};
  for (size_t j = 0; j < sizeof known / sizeof known[0]; j++)
    CHECKF(f[known[j].i] == (float)known[j].want, "inv_freq[%d] = %.9g, want %.9g", known[j].i,
           f[known[j].i], known[j].want);
  vkft_rope_config bad = {.theta = 10000};
  CHECK(vkft_rope_inv_freq(&bad, 7, f) == VKFT_ERR);
  cfg.high_freq_factor = 0.5;
  CHECK(vkft_rope_inv_freq(&cfg, 128, f) == VKFT_ERR);
}

/* torch's clip_grad_norm_ coefficient: min(1, max_norm / (norm + 1e-6)); none at max_norm 0 */
static void grad_norm_reference(void) {
  double a[3] = {3, 0, 4}, b[1] = {12};
  const double *g[2] = {a, b};
  int64_t n[2] = {3, 1};
  double norm, scale;
  vkft_ref_grad_norm_f64(g, n, 2, 6.5, &norm, &scale);
  CHECK(norm == 13 && fabs(scale - 6.5 / (13 + 1e-6)) < 1e-15);
  vkft_ref_grad_norm_f64(g, n, 2, 100, &norm, &scale);
  CHECK(scale == 1);
  vkft_ref_grad_norm_f64(g, n, 2, 0, &norm, &scale);
  CHECK(scale == 1);
}

int main(void) {
  grad_rmsnorm(3, 7);
  grad_rmsnorm(1, 1);
  grad_rmsnorm(4, 64);
  grad_rope(5, 3, 8, 0);
  grad_rope(6, 2, 16, 1);
  grad_swiglu(200);
  grad_embedding(9, 5, 6);
  llama3_inv_freq();
  grad_norm_reference();
  return check_summary();
}
