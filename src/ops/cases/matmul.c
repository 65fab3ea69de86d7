/* Op-table family "matmul_*": random operands, the device result against the double
 * reference, the error normalized by the magnitude bound sum_k |a||b| (so the tolerance is the
 * fp32-accumulation bound K*u, independent of the data). */
#include "harness.h"

#include "vkft/error.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct matmul_ctx {
  vkft_matmul_orient orient;
  vkft_tensor a, b, c;
  int64_t M, N, K;
  float beta;
  const float *c_init;
} matmul_ctx;

static int record(vkft_backend *be, void *p) {
  matmul_ctx *x = p;
  return vkft_matmul(be, x->orient, &x->a, &x->b, &x->c, x->M, x->N, x->K, 1.0f, x->beta);
}

static int reset_c(vkft_backend *be, void *p) {
  matmul_ctx *x = p;
  return x->beta != 0 ? vkft_tensor_write(be, &x->c, x->c_init) : VKFT_OK;
}

/* Reference rows of C to check: all of them, or a sample of 64 rows for the big bench shapes
 * (a double-precision 1024^3 product would take seconds per case). */
static int64_t rows_checked(int64_t M, int64_t N, int64_t K) {
  return (double)M * N * K > 64.0 * 1024 * 1024 && M > 64 ? 64 : M;
}

static int run(vkft_backend *vk, const vkft_op_case *c, int timed_runs, vkft_op_result *r) {
  matmul_ctx x = {.M = c->d[0], .N = c->d[1], .K = c->d[2], .beta = c->d[3] ? 0.5f : 0.0f};
  const char *variant = c->op + strlen("matmul_");
  if (!strcmp(variant, "nt"))
    x.orient = VKFT_MATMUL_NT;
  else if (!strcmp(variant, "nn"))
    x.orient = VKFT_MATMUL_NN;
  else if (!strcmp(variant, "tn"))
    x.orient = VKFT_MATMUL_TN;
  else
    return vkft_error("op table: unknown matmul variant %s", c->op);
  int64_t M = x.M, N = x.N, K = x.K;
  snprintf(r->shape, sizeof r->shape, "%lldx%lldx%lld%s", (long long)M, (long long)N, (long long)K,
           x.beta != 0 ? "+C" : "");

  size_t na = (size_t)(M * K), nb = (size_t)(N * K), nc = (size_t)(M * N);
  float *a = malloc(na * sizeof *a), *b = malloc(nb * sizeof *b), *c0 = malloc(nc * sizeof *c0);
  float *out = malloc(nc * sizeof *out);
  void *b_stored = malloc(nb * vkft_dtype_size(c->dtype));
  int status = VKFT_ERR;
  if (!a || !b || !c0 || !out || !b_stored) {
    vkft_error("matmul %s: out of host memory", r->shape);
    goto done;
  }
  harness_rng rng = {(uint64_t)(M * 1000003 + N * 1009 + K) ^ (uint64_t)c->dtype << 40};
  for (size_t i = 0; i < na; i++) a[i] = (float)harness_uniform(&rng, -1, 1);
  for (size_t i = 0; i < nb; i++) b[i] = (float)harness_uniform(&rng, -1, 1);
  for (size_t i = 0; i < nc; i++) c0[i] = (float)harness_uniform(&rng, -1, 1);
  /* the weight as stored (rounded to its dtype), and its exact fp32 value for the reference */
  vkft_convert_from_f32(c->dtype, b, b_stored, nb);
  vkft_convert_to_f32(c->dtype, b_stored, b, nb);
  x.c_init = c0;

  if (vkft_tensor_alloc(vk, VKFT_F32, (int64_t)na, &x.a) ||
      vkft_tensor_alloc(vk, c->dtype, (int64_t)nb, &x.b) ||
      vkft_tensor_alloc(vk, VKFT_F32, (int64_t)nc, &x.c) || vkft_tensor_write(vk, &x.a, a) ||
      vkft_tensor_write(vk, &x.b, b_stored) || reset_c(vk, &x) || vkft_begin(vk) ||
      record(vk, &x) || vkft_end(vk) || vkft_tensor_read(vk, &x.c, out))
    goto release;

  /* double reference on the checked rows: C, and the bound sum_k |a||b| */
  int64_t Mc = rows_checked(M, N, K);
  double *ad = malloc((size_t)(Mc * K) * sizeof *ad), *aa = malloc((size_t)(Mc * K) * sizeof *aa);
  double *bd = malloc(nb * sizeof *bd), *ba = malloc(nb * sizeof *ba);
  double *cd = malloc((size_t)(Mc * N) * sizeof *cd),
         *bound = malloc((size_t)(Mc * N) * sizeof *bound);
  if (!ad || !aa || !bd || !ba || !cd || !bound) {
    vkft_error("matmul %s: out of host memory", r->shape);
  } else {
    for (int64_t m = 0; m < Mc; m++)
      for (int64_t k = 0; k < K; k++) {
        /* op(A) rows: A[m,k] (NT, NN) or A[k,m] (TN), packed as the same orientation with M=Mc */
        double v = x.orient == VKFT_MATMUL_TN ? a[k * M + m] : a[m * K + k];
        int64_t at = x.orient == VKFT_MATMUL_TN ? k * Mc + m : m * K + k;
        ad[at] = v;
        aa[at] = fabs(v);
      }
    for (size_t i = 0; i < nb; i++) bd[i] = b[i], ba[i] = fabs(b[i]);
    for (int64_t i = 0; i < Mc * N; i++) cd[i] = c0[i];
    vkft_ref_matmul_f64(x.orient, ad, bd, cd, Mc, N, K, 1.0, x.beta);
    vkft_ref_matmul_f64(x.orient, aa, ba, bound, Mc, N, K, 1.0, 0.0);
    double max_err = 0;
    for (int64_t i = 0; i < Mc * N; i++) {
      double scale = bound[i] + fabs(x.beta * c0[i]) + 1e-30;
      double err = fabs((double)out[i] - cd[i]) / scale;
      if (!(err <= max_err)) max_err = err; /* NaN propagates as a failure */
    }
    r->max_err = max_err;
    /* fp32 accumulation of K products plus the beta term: the classic gamma_(K+2) bound */
    r->tol = (double)(K + 2) * ldexp(1.0, -24) * 1.01;
    r->ok = max_err <= r->tol;
    status = harness_repeat(vk, reset_c, record, &x, &x.c, out, timed_runs, r);
    if (status == VKFT_OK && r->ms > 0) r->gflops = 2.0 * M * N * K / (r->ms * 1e6);
  }
  free(ad), free(aa), free(bd), free(ba), free(cd), free(bound);
release:
  vkft_tensor_free(vk, &x.a);
  vkft_tensor_free(vk, &x.b);
  vkft_tensor_free(vk, &x.c);
done:
  free(a), free(b), free(c0), free(out), free(b_stored);
  return status;
}

/* matmul d = {M, N, K, beta != 0}. Odd and tile-straddling sizes, length 1, and one weight
 * over maxStorageBufferRange of lavapipe (33000 x 1024 fp32 = 135 MB > 128 MiB). */
static const vkft_op_case cases[] = {
    {"matmul_nt", VKFT_F32, {64, 64, 64, 0}, HARNESS_T | HARNESS_S},
    {"matmul_nt", VKFT_F32, {1, 1, 1, 0}, HARNESS_T},
    {"matmul_nt", VKFT_F32, {1, 67, 33, 0}, HARNESS_T},
    {"matmul_nt", VKFT_F32, {17, 33, 65, 1}, HARNESS_T},
    {"matmul_nt", VKFT_F32, {130, 257, 96, 0}, HARNESS_T},
    {"matmul_nt", VKFT_F16, {64, 64, 64, 0}, HARNESS_T | HARNESS_S},
    {"matmul_nt", VKFT_F16, {19, 70, 37, 1}, HARNESS_T},
    {"matmul_nt", VKFT_F16, {33, 129, 256, 0}, HARNESS_T},
    {"matmul_nt", VKFT_BF16, {64, 64, 64, 0}, HARNESS_T | HARNESS_S},
    {"matmul_nt", VKFT_BF16, {19, 70, 37, 0}, HARNESS_T},
    {"matmul_nt", VKFT_BF16, {33, 129, 256, 1}, HARNESS_T},
    {"matmul_nn", VKFT_F32, {64, 64, 64, 0}, HARNESS_T | HARNESS_S},
    {"matmul_nn", VKFT_F32, {1, 1, 1, 0}, HARNESS_T},
    {"matmul_nn", VKFT_F32, {23, 45, 67, 1}, HARNESS_T},
    {"matmul_nn", VKFT_F32, {64, 256, 130, 0}, HARNESS_T},
    {"matmul_nn", VKFT_F16, {23, 45, 67, 0}, HARNESS_T},
    {"matmul_nn", VKFT_F16, {40, 128, 64, 1}, HARNESS_T | HARNESS_S},
    {"matmul_nn", VKFT_BF16, {23, 45, 67, 0}, HARNESS_T},
    {"matmul_nn", VKFT_BF16, {40, 128, 64, 1}, HARNESS_T | HARNESS_S},
    {"matmul_tn", VKFT_F32, {64, 64, 64, 0}, HARNESS_T | HARNESS_S},
    {"matmul_tn", VKFT_F32, {1, 1, 1, 0}, HARNESS_T},
    {"matmul_tn", VKFT_F32, {33, 47, 19, 1}, HARNESS_T},
    {"matmul_tn", VKFT_F32, {96, 160, 300, 0}, HARNESS_T},
    /* shapes that select the larger register tiles (8x8, 8x16), with ragged edges */
    {"matmul_nt", VKFT_F32, {70, 260, 44, 0}, HARNESS_T},
    {"matmul_nt", VKFT_F32, {130, 520, 68, 1}, HARNESS_T},
    {"matmul_nt", VKFT_BF16, {130, 520, 68, 0}, HARNESS_T},
    {"matmul_nt", VKFT_F16, {70, 260, 45, 0}, HARNESS_T},
    {"matmul_nn", VKFT_F32, {130, 520, 68, 0}, HARNESS_T},
    {"matmul_nn", VKFT_BF16, {70, 260, 44, 1}, HARNESS_T},
    {"matmul_tn", VKFT_F32, {130, 520, 68, 1}, HARNESS_T},
    {"matmul_tn", VKFT_F32, {70, 262, 44, 0}, HARNESS_T},
    {"matmul_nt", VKFT_F32, {8, 33000, 1024, 0}, HARNESS_T}, /* > 128 MiB weight */
    {"matmul_nt", VKFT_F32, {1024, 1024, 1024, 0}, HARNESS_B},
    {"matmul_nt", VKFT_F16, {1024, 1024, 1024, 0}, HARNESS_B},
    {"matmul_nt", VKFT_BF16, {1024, 1024, 1024, 0}, HARNESS_B},
    {"matmul_nn", VKFT_F32, {1024, 1024, 1024, 0}, HARNESS_B},
    {"matmul_nn", VKFT_BF16, {1024, 1024, 1024, 0}, HARNESS_B},
    {"matmul_tn", VKFT_F32, {1024, 1024, 1024, 0}, HARNESS_B},
};

const harness_family family_matmul = {cases, HARNESS_COUNT(cases), run};
