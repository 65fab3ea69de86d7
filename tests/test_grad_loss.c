/* Gradient checks of the loss-side references (src/ref/cross_entropy.c, src/ref/lora.c): every
 * analytic gradient of the double reference against central finite differences of the same
 * reference, for every input and weight. Also runs both ops through the reference backend of
 * the op API (what the whole-model reference uses) against the double reference. */
#include "check.h"

#include "vkft/error.h"
#include "vkft/ops.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng_state = 12345;
static double uniform(double lo, double hi) {
  uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  z ^= z >> 31;
  return lo + (hi - lo) * (double)(z >> 11) * (1.0 / 9007199254740992.0);
}

static double *randv(int64_t n, double scale) {
  double *v = malloc((size_t)n * sizeof *v);
  for (int64_t i = 0; i < n; i++) v[i] = uniform(-scale, scale);
  return v;
}

/* Normwise relative error max|num - ana| / max|ana| of a gradient, with the numeric gradient of
 * objective() with respect to every element of p (central differences, step 1e-5: truncation
 * ~1e-10 and cancellation ~1e-11 relative, both far below the 1e-6 asked). */
typedef double (*objective_fn)(void *ctx);
static double grad_error(objective_fn f, void *ctx, double *p, const double *analytic, int64_t n) {
  const double eps = 1e-5;
  double worst = 0, scale = 0;
  for (int64_t i = 0; i < n; i++) {
    double keep = p[i];
    p[i] = keep + eps;
    double up = f(ctx);
    p[i] = keep - eps;
    double down = f(ctx);
    p[i] = keep;
    double numeric = (up - down) / (2 * eps);
    if (fabs(numeric - analytic[i]) > worst || isnan(numeric - analytic[i]))
      worst = fabs(numeric - analytic[i]);
    if (fabs(analytic[i]) > scale) scale = fabs(analytic[i]);
  }
  return scale > 0 ? worst / scale : worst;
}

/* ---- cross-entropy: the objective is grad_scale * loss sum (what dh and dW are of) ---- */
typedef struct ce_case {
  int64_t T, C, V;
  double *h, *w, scale, *logits;
  int32_t *labels;
} ce_case;

static double ce_objective(void *p) {
  ce_case *c = p;
  double loss[2];
  vkft_ref_cross_entropy_f64(c->h, c->w, c->labels, c->T, c->C, c->V, loss, NULL, c->logits);
  return c->scale * loss[0];
}

static void check_cross_entropy(int64_t T, int64_t C, int64_t V) {
  ce_case c = {T,
               C,
               V,
               randv(T * C, 1),
               randv(V * C, 1),
               0,
               malloc((size_t)V * sizeof(double)),
               malloc((size_t)T * sizeof(int32_t))};
  int trained = 0;
  for (int64_t t = 0; t < T; t++) {
    int32_t label = (int32_t)(uniform(0, 1) * (double)V) % (int32_t)V;
    if (t % 3 == 1) label = -100; /* HF: not trained */
    if (t % 3 == 2) label = (int32_t)V - 1;
    c.labels[t] = label;
    trained += label >= 0;
  }
  c.scale = trained ? 1.0 / trained : 1.0;
  double *dh = malloc((size_t)(T * C) * sizeof *dh), *dw = calloc((size_t)(V * C), sizeof *dw);
  double loss[2];
  vkft_ref_cross_entropy_f64(c.h, c.w, c.labels, T, C, V, loss, NULL, c.logits);
  CHECKF(loss[1] == trained, "count %g, trained %d", loss[1], trained);
  vkft_ref_cross_entropy_bwd_f64(c.h, c.w, c.labels, T, C, V, c.scale, NULL, dh, dw, c.logits);
  double eh = grad_error(ce_objective, &c, c.h, dh, T * C);
  double ew = grad_error(ce_objective, &c, c.w, dw, V * C);
  printf("cross_entropy T%lld C%lld V%lld: dh rel err %.2e, dW rel err %.2e\n", (long long)T,
         (long long)C, (long long)V, eh, ew);
  CHECKF(eh < 1e-6, "cross_entropy dh: %.3e", eh);
  CHECKF(ew < 1e-6, "cross_entropy dW: %.3e", ew);
  /* the backward without dW gives the same dh */
  double *dh2 = malloc((size_t)(T * C) * sizeof *dh2);
  vkft_ref_cross_entropy_bwd_f64(c.h, c.w, c.labels, T, C, V, c.scale, NULL, dh2, NULL, c.logits);
  CHECK(!memcmp(dh, dh2, (size_t)(T * C) * sizeof *dh));
  free(c.h), free(c.w), free(c.logits), free(c.labels), free(dh), free(dw), free(dh2);
}

/* all labels ignored: loss 0, count 0, zero gradients (the caller sees count 0) */
static void check_cross_entropy_all_ignored(void) {
  enum { T = 3, C = 4, V = 5 };
  double *h = randv(T * C, 1), *w = randv(V * C, 1), logits[V], loss[2], dh[T * C], dw[V * C];
  int32_t labels[T] = {-100, -100, -100};
  memset(dw, 0, sizeof dw);
  vkft_ref_cross_entropy_f64(h, w, labels, T, C, V, loss, NULL, logits);
  vkft_ref_cross_entropy_bwd_f64(h, w, labels, T, C, V, 1.0, NULL, dh, dw, logits);
  CHECK(loss[0] == 0 && loss[1] == 0);
  int zero = 1;
  for (int i = 0; i < T * C; i++) zero &= dh[i] == 0;
  for (int i = 0; i < V * C; i++) zero &= dw[i] == 0;
  CHECK(zero);
  free(h), free(w);
}

/* ---- preference objectives: the objective is the step loss of one micro-batch of pairs,
 * sum_i pair_scale L_i (+ nll_scale NLL for ORPO), from the token losses of the LM head; its
 * gradient w.r.t. h and W is the cross-entropy backward with the weights pref_loss gives. This
 * checks the whole chain the trainer runs, in double, for every objective. ---- */
typedef struct pref_case {
  int64_t T, C, V, N;
  double *h, *w, *logits, *row_loss, *seq, *ref;
  int32_t *labels, *tok, *ranges;
  vkft_pref_objective o;
} pref_case;

static double pref_objective(void *p) {
  pref_case *c = p;
  double loss[2];
  vkft_ref_cross_entropy_f64(c->h, c->w, c->labels, c->T, c->C, c->V, loss, c->row_loss, c->logits);
  vkft_ref_pref_loss_f64(&c->o, c->row_loss, c->tok, c->ranges, c->ref, c->T, c->N, c->seq, NULL);
  const int64_t S = 2 * c->N;
  double J = 0;
  for (int64_t i = 0; i < c->N; i++)
    J += c->o.pair_scale * vkft_ref_pref_pair_loss_f64(
                               &c->o, c->seq[i], c->seq[c->N + i], c->ref ? c->ref[i] : 0,
                               c->ref ? c->ref[c->N + i] : 0, c->seq[S + i], c->seq[S + c->N + i]);
  if (c->o.kind == VKFT_PREF_LOSS_ORPO) J += c->o.nll_scale * c->seq[2 * S];
  return J;
}

/* 2 pairs: 4 sequences of 5 tokens packed in a row; token 0 of each has no target, 1..2 are
 * the prompt (ORPO's NLL targets), 3..4 the completion; the last position has no target */
static void check_pref(vkft_pref_loss_kind kind) {
  enum { N = 2, L = 5, T = 2 * N * L, C = 6, V = 11 };
  pref_case c = {.T = T, .C = C, .V = V, .N = N};
  c.h = randv(T * C, 1);
  c.w = randv(V * C, 1);
  c.logits = malloc(V * sizeof *c.logits);
  c.row_loss = malloc(T * sizeof *c.row_loss);
  c.seq = malloc((4 * N + 2) * sizeof *c.seq);
  c.ref = kind == VKFT_PREF_LOSS_ORPO ? NULL : randv(2 * N, 3);
  for (int64_t s = 0; c.ref && s < 2 * N; s++) c.ref[s] -= 6; /* log-probs are negative */
  c.labels = malloc(T * sizeof *c.labels);
  c.tok = malloc(T * sizeof *c.tok);
  c.ranges = malloc(4 * N * sizeof *c.ranges);
  const int orpo = kind == VKFT_PREF_LOSS_ORPO;
  int nll = 0;
  for (int s = 0; s < 2 * N; s++) {
    c.ranges[2 * s] = s * L, c.ranges[2 * s + 1] = (s + 1) * L;
    for (int k = 0; k < L; k++) {
      int t = s * L + k, target = k + 1 < L; /* position t predicts token t + 1 */
      int completion = target && k + 1 >= 3, prompt = target && !completion;
      int counted = completion || (orpo && prompt && s < N);
      c.labels[t] = counted ? (int32_t)uniform(0, V - 1) : -100;
      c.tok[t] = completion ? 2 * s + 1 : counted ? 2 * s : -1;
      nll += orpo && s < N && counted;
    }
  }
  c.o = (vkft_pref_objective){.kind = kind,
                              .beta = kind == VKFT_PREF_LOSS_IPO ? 0.7f : 0.5f,
                              .label_smoothing = kind == VKFT_PREF_LOSS_ROBUST ? 0.25f : 0,
                              .pair_scale = 0.5f,
                              .nll_scale = orpo ? 1.0f / (float)nll : 0};
  double *weights = malloc(T * sizeof *weights), *dh = malloc(T * C * sizeof *dh);
  double *dw = calloc(V * C, sizeof *dw);
  pref_objective(&c); /* row losses and log-probs at the point */
  vkft_ref_pref_loss_f64(&c.o, c.row_loss, c.tok, c.ranges, c.ref, T, N, c.seq, weights);
  vkft_ref_cross_entropy_bwd_f64(c.h, c.w, c.labels, T, C, V, 1.0, weights, dh, dw, c.logits);
  double eh = grad_error(pref_objective, &c, c.h, dh, T * C);
  double ew = grad_error(pref_objective, &c, c.w, dw, V * C);
  printf("pref objective %d (N%d T%d C%d V%d): dh rel err %.2e, dW rel err %.2e\n", (int)kind, N, T,
         C, V, eh, ew);
  CHECKF(eh < 1e-6 && ew < 1e-6, "pref kind %d: dh error %.2e, dW error %.2e", (int)kind, eh, ew);
  free(c.h), free(c.w), free(c.logits), free(c.row_loss), free(c.seq), free(c.ref);
  free(c.labels), free(c.tok), free(c.ranges), free(weights), free(dh), free(dw);
}

/* a LoRA adapter that is still zero: the policy is the reference, DPO's loss is log 2 */
static void check_pref_equal_policy(void) {
  vkft_pref_objective o = {.kind = VKFT_PREF_LOSS_SIGMOID, .beta = 0.1f, .pair_scale = 1};
  CHECK(fabs(vkft_ref_pref_pair_loss_f64(&o, -12.5, -20.25, -12.5, -20.25, 4, 6) - log(2.0)) <
        1e-15);
  o.kind = VKFT_PREF_LOSS_IPO; /* (0 - 1/(2 beta))^2, beta = 0.25 (exact in fp32) */
  o.beta = 0.25f;
  CHECK(fabs(vkft_ref_pref_pair_loss_f64(&o, -3, -4, -3, -4, 2, 2) - 4.0) < 1e-12);
  o.kind = VKFT_PREF_LOSS_HINGE;
  CHECK(vkft_ref_pref_pair_loss_f64(&o, -3, -4, -3, -4, 2, 2) == 1.0);
}

/* ---- LoRA: the objective is sum(dy .* y) with y = y0 + s B (A x) ---- */
typedef struct lora_case {
  int64_t T, in, out, r;
  double s, *x, *a, *b, *y0, *dy, *y, *u;
} lora_case;

static double lora_objective(void *p) {
  lora_case *c = p;
  memcpy(c->y, c->y0, (size_t)(c->T * c->out) * sizeof *c->y);
  vkft_ref_lora_f64(c->x, c->a, c->b, c->y, c->u, c->T, c->in, c->out, c->r, c->s);
  double sum = 0;
  for (int64_t i = 0; i < c->T * c->out; i++) sum += c->dy[i] * c->y[i];
  return sum;
}

static void check_lora(int64_t T, int64_t in, int64_t out, int64_t r) {
  lora_case c = {T,
                 in,
                 out,
                 r,
                 2.0 / sqrt((double)r),
                 randv(T * in, 1),
                 randv(r * in, 1),
                 randv(out * r, 1),
                 randv(T * out, 1),
                 randv(T * out, 1),
                 malloc((size_t)(T * out) * sizeof(double)),
                 malloc((size_t)(T * r) * sizeof(double))};
  lora_objective(&c); /* u from the forward */
  double *dx = calloc((size_t)(T * in), sizeof *dx), *da = calloc((size_t)(r * in), sizeof *da);
  double *db = calloc((size_t)(out * r), sizeof *db);
  vkft_ref_lora_bwd_f64(c.x, c.a, c.b, c.u, c.dy, dx, da, db, T, in, out, r, c.s);
  double ex = grad_error(lora_objective, &c, c.x, dx, T * in);
  double ea = grad_error(lora_objective, &c, c.a, da, r * in);
  double eb = grad_error(lora_objective, &c, c.b, db, out * r);
  printf("lora T%lld %lld->%lld r%lld: dx rel err %.2e, dA %.2e, dB %.2e\n", (long long)T,
         (long long)in, (long long)out, (long long)r, ex, ea, eb);
  CHECKF(ex < 1e-6, "lora dx: %.3e", ex);
  CHECKF(ea < 1e-6, "lora dA: %.3e", ea);
  CHECKF(eb < 1e-6, "lora dB: %.3e", eb);
  /* dx NULL leaves dA and dB as they were with it */
  double *da2 = calloc((size_t)(r * in), sizeof *da2),
         *db2 = calloc((size_t)(out * r), sizeof *db2);
  lora_objective(&c);
  vkft_ref_lora_bwd_f64(c.x, c.a, c.b, c.u, c.dy, NULL, da2, db2, T, in, out, r, c.s);
  CHECK(!memcmp(da, da2, (size_t)(r * in) * sizeof *da));
  CHECK(!memcmp(db, db2, (size_t)(out * r) * sizeof *db));
  free(c.x), free(c.a), free(c.b), free(c.y0), free(c.dy), free(c.y), free(c.u);
  free(dx), free(da), free(db), free(da2), free(db2);
}

/* ---- the op API's reference backend against the double reference ---- */
static vkft_tensor tensor_of(vkft_backend *be, vkft_dtype dtype, int64_t n, const void *data) {
  vkft_tensor t;
  CHECK(vkft_tensor_alloc(be, dtype, n, &t) == VKFT_OK);
  if (data) CHECK(vkft_tensor_write(be, &t, data) == VKFT_OK);
  return t;
}

static double max_rel(const float *got, const double *want, int64_t n) {
  double worst = 0, scale = 0;
  for (int64_t i = 0; i < n; i++) {
    if (!(fabs(got[i] - want[i]) <= worst)) worst = fabs(got[i] - want[i]);
    if (fabs(want[i]) > scale) scale = fabs(want[i]);
  }
  return scale > 0 ? worst / scale : worst;
}

static void reference_backend(void) {
  enum { T = 5, C = 7, V = 11, IN = 6, OUT = 9, R = 3 };
  vkft_backend *be;
  CHECK(vkft_backend_ref_create(&be) == VKFT_OK);
  float h[T * C], w[V * C], got[V * C + 2];
  double hd[T * C], wd[V * C], logits[V], loss[2], dh[T * C], dw[V * C];
  int32_t labels[T] = {3, -100, 10, 0, 7};
  for (int i = 0; i < T * C; i++) hd[i] = h[i] = (float)uniform(-1, 1);
  uint16_t wb[V * C]; /* a bf16 head: the reference widens it exactly */
  for (int i = 0; i < V * C; i++) {
    wb[i] = vkft_f32_to_bf16((float)uniform(-1, 1));
    wd[i] = w[i] = vkft_bf16_to_f32(wb[i]);
  }
  vkft_tensor th = tensor_of(be, VKFT_F32, T * C, h), tw = tensor_of(be, VKFT_BF16, V * C, wb);
  vkft_tensor tl = tensor_of(be, VKFT_I32, T, labels), tloss = tensor_of(be, VKFT_F32, 2, NULL);
  vkft_tensor tdh = tensor_of(be, VKFT_F32, T * C, NULL);
  vkft_tensor tdw = tensor_of(be, VKFT_F32, V * C, NULL);
  CHECK(vkft_begin(be) == VKFT_OK);
  CHECK(vkft_cross_entropy(be, &th, &tw, &tl, T, C, V, 0.25f, &tdh, &tdw, &tloss, NULL, 0) ==
        VKFT_OK);
  CHECK(vkft_cross_entropy(be, &th, &tw, &tl, T, C, V, 0.25f, NULL, &tdw, &tloss, NULL, 0) ==
        VKFT_ERR); /* dW without dh */
  CHECK(vkft_end(be) == VKFT_OK);
  memset(dw, 0, sizeof dw);
  vkft_ref_cross_entropy_f64(hd, wd, labels, T, C, V, loss, NULL, logits);
  vkft_ref_cross_entropy_bwd_f64(hd, wd, labels, T, C, V, 0.25, NULL, dh, dw, logits);
  vkft_tensor_read(be, &tloss, got);
  CHECK(got[1] == 4 && fabs(got[0] - loss[0]) < 1e-5 * fabs(loss[0]));
  vkft_tensor_read(be, &tdh, got);
  CHECK(max_rel(got, dh, T * C) < 1e-5);
  vkft_tensor_read(be, &tdw, got);
  CHECK(max_rel(got, dw, V * C) < 1e-5);
  vkft_tensor *ce[] = {&th, &tw, &tl, &tloss, &tdh, &tdw};
  for (int i = 0; i < 6; i++) vkft_tensor_free(be, ce[i]);

  float x[T * IN], a[R * IN], b[OUT * R], y[T * OUT], dy[T * OUT], g[T * OUT];
  double xd[T * IN], ad[R * IN], bd[OUT * R], yd[T * OUT], dyd[T * OUT], ud[T * R];
  double dxd[T * IN] = {0}, dad[R * IN] = {0}, dbd[OUT * R] = {0};
  for (int i = 0; i < T * IN; i++) xd[i] = x[i] = (float)uniform(-1, 1);
  for (int i = 0; i < R * IN; i++) ad[i] = a[i] = (float)uniform(-1, 1);
  for (int i = 0; i < OUT * R; i++) bd[i] = b[i] = (float)uniform(-1, 1);
  for (int i = 0; i < T * OUT; i++) yd[i] = y[i] = (float)uniform(-1, 1);
  for (int i = 0; i < T * OUT; i++) dyd[i] = dy[i] = (float)uniform(-1, 1);
  vkft_tensor tx = tensor_of(be, VKFT_F32, T * IN, x), ta = tensor_of(be, VKFT_F32, R * IN, a);
  vkft_tensor tb = tensor_of(be, VKFT_F32, OUT * R, b), ty = tensor_of(be, VKFT_F32, T * OUT, y);
  vkft_tensor tu = tensor_of(be, VKFT_F32, T * R, NULL);
  vkft_tensor tdy = tensor_of(be, VKFT_F32, T * OUT, dy);
  vkft_tensor tdx = tensor_of(be, VKFT_F32, T * IN, NULL),
              tda = tensor_of(be, VKFT_F32, R * IN, NULL);
  vkft_tensor tdb = tensor_of(be, VKFT_F32, OUT * R, NULL);
  CHECK(vkft_begin(be) == VKFT_OK);
  CHECK(vkft_lora(be, &tx, &ta, &tb, &ty, &tu, T, IN, OUT, R, 0.5f) == VKFT_OK);
  CHECK(vkft_lora_bwd(be, &tx, &ta, &tb, &tu, &tdy, &tdx, &tda, &tdb, NULL, T, IN, OUT, R, 0.5f) ==
        VKFT_OK);
  CHECK(vkft_end(be) == VKFT_OK);
  vkft_ref_lora_f64(xd, ad, bd, yd, ud, T, IN, OUT, R, 0.5);
  vkft_ref_lora_bwd_f64(xd, ad, bd, ud, dyd, dxd, dad, dbd, T, IN, OUT, R, 0.5);
  vkft_tensor_read(be, &ty, g);
  CHECK(max_rel(g, yd, T * OUT) < 1e-5);
  vkft_tensor_read(be, &tdx, g);
  CHECK(max_rel(g, dxd, T * IN) < 1e-5);
  vkft_tensor_read(be, &tda, g);
  CHECK(max_rel(g, dad, R * IN) < 1e-5);
  vkft_tensor_read(be, &tdb, g);
  CHECK(max_rel(g, dbd, OUT * R) < 1e-5);
  vkft_tensor *lo[] = {&tx, &ta, &tb, &ty, &tu, &tdy, &tdx, &tda, &tdb};
  for (int i = 0; i < 9; i++) vkft_tensor_free(be, lo[i]);
  vkft_backend_destroy(be);
}

/* chunk widths: multiples of 4 (aligned chunks of W), within the vocabulary, from a budget */
static void chunk_choice(void) {
  CHECK(vkft_cross_entropy_chunk(32000, 0) == 2048);
  CHECK(vkft_cross_entropy_chunk(32000, 1001) == 1004);
  CHECK(vkft_cross_entropy_chunk(50, 256) == 52);
  CHECK(vkft_cross_entropy_chunk_for_budget(512, 32000, 16u << 20) == 2048);
  CHECK(vkft_cross_entropy_chunk_for_budget(512, 32000, 1u << 20) == 512);
  CHECK(vkft_cross_entropy_chunk_for_budget(65536, 32000, 1u << 20) == 256);
  CHECK(vkft_cross_entropy_chunk_for_budget(8, 100, 1u << 30) == 100);
  CHECK(vkft_cross_entropy_scratch_elems(7, 1001, 256) == 7 * 256 + 3 * 7);
}

int main(void) {
  chunk_choice();
  check_cross_entropy(1, 3, 2);
  check_cross_entropy(5, 7, 13);
  check_cross_entropy(9, 4, 31);
  check_cross_entropy_all_ignored();
  for (int kind = VKFT_PREF_LOSS_SIGMOID; kind <= VKFT_PREF_LOSS_ORPO; kind++)
    check_pref((vkft_pref_loss_kind)kind);
  check_pref_equal_policy();
  check_lora(1, 3, 2, 1);
  check_lora(4, 7, 5, 3);
  check_lora(6, 9, 11, 16);
  reference_backend();
  return check_summary();
}
