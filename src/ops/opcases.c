/* The op table and the generic parts of the harness: case lookup, RNG, repeat-and-time. */
#include "harness.h"

#include "vkft/error.h"
#include "vkft/platform.h"

#include <stdlib.h>
#include <string.h>

#define T VKFT_CASE_TEST
#define S VKFT_CASE_SELFTEST
#define B VKFT_CASE_BENCH

/* matmul d = {M, N, K, beta != 0}. Odd and tile-straddling sizes, length 1, and one weight
 * over maxStorageBufferRange of lavapipe (33000 x 1024 fp32 = 135 MB > 128 MiB). */
static const vkft_op_case cases[] = {
    {"matmul_nt", VKFT_F32, {64, 64, 64, 0}, T | S},
    {"matmul_nt", VKFT_F32, {1, 1, 1, 0}, T},
    {"matmul_nt", VKFT_F32, {1, 67, 33, 0}, T},
    {"matmul_nt", VKFT_F32, {17, 33, 65, 1}, T},
    {"matmul_nt", VKFT_F32, {130, 257, 96, 0}, T},
    {"matmul_nt", VKFT_F16, {64, 64, 64, 0}, T | S},
    {"matmul_nt", VKFT_F16, {19, 70, 37, 1}, T},
    {"matmul_nt", VKFT_F16, {33, 129, 256, 0}, T},
    {"matmul_nt", VKFT_BF16, {64, 64, 64, 0}, T | S},
    {"matmul_nt", VKFT_BF16, {19, 70, 37, 0}, T},
    {"matmul_nt", VKFT_BF16, {33, 129, 256, 1}, T},
    {"matmul_nn", VKFT_F32, {64, 64, 64, 0}, T | S},
    {"matmul_nn", VKFT_F32, {1, 1, 1, 0}, T},
    {"matmul_nn", VKFT_F32, {23, 45, 67, 1}, T},
    {"matmul_nn", VKFT_F32, {64, 256, 130, 0}, T},
    {"matmul_nn", VKFT_F16, {23, 45, 67, 0}, T},
    {"matmul_nn", VKFT_F16, {40, 128, 64, 1}, T | S},
    {"matmul_nn", VKFT_BF16, {23, 45, 67, 0}, T},
    {"matmul_nn", VKFT_BF16, {40, 128, 64, 1}, T | S},
    {"matmul_tn", VKFT_F32, {64, 64, 64, 0}, T | S},
    {"matmul_tn", VKFT_F32, {1, 1, 1, 0}, T},
    {"matmul_tn", VKFT_F32, {33, 47, 19, 1}, T},
    {"matmul_tn", VKFT_F32, {96, 160, 300, 0}, T},
    /* shapes that select the larger register tiles (8x8, 8x16), with ragged edges */
    {"matmul_nt", VKFT_F32, {70, 260, 44, 0}, T},
    {"matmul_nt", VKFT_F32, {130, 520, 68, 1}, T},
    {"matmul_nt", VKFT_BF16, {130, 520, 68, 0}, T},
    {"matmul_nt", VKFT_F16, {70, 260, 45, 0}, T},
    {"matmul_nn", VKFT_F32, {130, 520, 68, 0}, T},
    {"matmul_nn", VKFT_BF16, {70, 260, 44, 1}, T},
    {"matmul_tn", VKFT_F32, {130, 520, 68, 1}, T},
    {"matmul_tn", VKFT_F32, {70, 262, 44, 0}, T},
    {"matmul_nt", VKFT_F32, {8, 33000, 1024, 0}, T}, /* > 128 MiB weight */
    {"matmul_nt", VKFT_F32, {1024, 1024, 1024, 0}, B},
    {"matmul_nt", VKFT_F16, {1024, 1024, 1024, 0}, B},
    {"matmul_nt", VKFT_BF16, {1024, 1024, 1024, 0}, B},
    {"matmul_nn", VKFT_F32, {1024, 1024, 1024, 0}, B},
    {"matmul_nn", VKFT_BF16, {1024, 1024, 1024, 0}, B},
    {"matmul_tn", VKFT_F32, {1024, 1024, 1024, 0}, B},
};

static const harness_family families[] = {
    {"matmul_", case_matmul_run},
};

const vkft_op_case *vkft_op_cases(int *count) {
  *count = (int)(sizeof cases / sizeof cases[0]);
  return cases;
}

int vkft_op_case_run(vkft_backend *vk, const vkft_op_case *c, int timed_runs, vkft_op_result *r) {
  memset(r, 0, sizeof *r);
  for (size_t i = 0; i < sizeof families / sizeof families[0]; i++)
    if (!strncmp(c->op, families[i].prefix, strlen(families[i].prefix)))
      return families[i].run(vk, c, timed_runs, r);
  return vkft_error("op table: no family for op \"%s\"", c->op);
}

double harness_uniform(harness_rng *rng, double lo, double hi) {
  uint64_t z = (rng->state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  z ^= z >> 31;
  return lo + (hi - lo) * (double)(z >> 11) * (1.0 / 9007199254740992.0);
}

static int compare_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int harness_repeat(vkft_backend *be, harness_record_fn prepare, harness_record_fn record, void *ctx,
                   const vkft_tensor *result, const float *first_output, int timed_runs,
                   vkft_op_result *r) {
  float *again = malloc((size_t)result->n * sizeof *again);
  if (!again) return vkft_error("out of host memory");
  int status = VKFT_OK;
  if ((prepare && prepare(be, ctx)) || vkft_begin(be) || record(be, ctx) || vkft_end(be) ||
      vkft_tensor_read(be, result, again)) {
    status = VKFT_ERR;
  } else {
    r->deterministic = !memcmp(again, first_output, (size_t)result->n * sizeof *again);
  }
  free(again);
  if (status != VKFT_OK || timed_runs <= 0) return status;

  double times[64];
  if (timed_runs > 64) timed_runs = 64;
  for (int i = -1; i < timed_runs; i++) { /* i == -1: warm-up */
    if (prepare && prepare(be, ctx)) return VKFT_ERR;
    double t0 = vkft_time_s();
    if (vkft_begin(be) || record(be, ctx) || vkft_end(be)) return VKFT_ERR;
    if (i >= 0) times[i] = (vkft_time_s() - t0) * 1e3;
  }
  qsort(times, (size_t)timed_runs, sizeof times[0], compare_double);
  r->ms = times[timed_runs / 2];
  return VKFT_OK;
}
