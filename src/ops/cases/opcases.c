/* The op table and the generic parts of the harness: case lookup, RNG, repeat-and-time. */
#include "harness.h"

#include "vkft/error.h"
#include "vkft/platform.h"

#include <stdlib.h>
#include <string.h>

static const harness_family *const families[] = {
    &family_matmul,    &family_attention,   &family_cross_entropy, &family_lora,
    &family_rmsnorm,   &family_elementwise, &family_swiglu,        &family_rope,
    &family_embedding, &family_adamw,       &family_grad_norm,     &family_dropout,
};

#define MAX_CASES 512
static vkft_op_case all_cases[MAX_CASES];
static const harness_family *case_family[MAX_CASES];
static int all_count = -1;

/* The table is the concatenation of the families' rows, in the order listed above. */
static void collect(void) {
  if (all_count >= 0) return;
  all_count = 0;
  for (size_t f = 0; f < sizeof families / sizeof families[0]; f++)
    for (int i = 0; i < families[f]->count && all_count < MAX_CASES; i++) {
      case_family[all_count] = families[f];
      all_cases[all_count++] = families[f]->cases[i];
    }
}

const vkft_op_case *vkft_op_cases(int *count) {
  collect();
  *count = all_count;
  return all_cases;
}

int vkft_op_case_run(vkft_backend *vk, const vkft_op_case *c, int timed_runs, vkft_op_result *r) {
  memset(r, 0, sizeof *r);
  collect();
  for (int i = 0; i < all_count; i++)
    if (&all_cases[i] == c) return case_family[i]->run(vk, c, timed_runs, r);
  for (int i = 0; i < all_count; i++) /* a copy of a row */
    if (!memcmp(&all_cases[i], c, sizeof *c)) return case_family[i]->run(vk, c, timed_runs, r);
  return vkft_error("op table: case %s is not in the table", c->op);
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
