/* Internals of the op harness shared by the per-family case files (src/ops/case_*.c). */
#ifndef VKFT_OPS_HARNESS_H
#define VKFT_OPS_HARNESS_H

#include "vkft/opcases.h"

#include <stdint.h>

typedef int (*harness_record_fn)(vkft_backend *be, void *ctx);

/* Deterministic random numbers (splitmix64), independent of the C library. */
typedef struct harness_rng {
  uint64_t state;
} harness_rng;
double harness_uniform(harness_rng *rng, double lo, double hi);

/* Runs record(be, ctx) in its own stream (after prepare(be, ctx), outside the stream, if
 * given): once more to check that `result` (fp32) comes out with the same bits as
 * `first_output`, then a warm-up and timed runs; fills r->deterministic and r->ms. */
int harness_repeat(vkft_backend *be, harness_record_fn prepare, harness_record_fn record, void *ctx,
                   const vkft_tensor *result, const float *first_output, int timed_runs,
                   vkft_op_result *r);

/* A family of ops: its cases are the rows whose op name starts with `prefix`. */
typedef struct harness_family {
  const char *prefix;
  int (*run)(vkft_backend *vk, const vkft_op_case *c, int timed_runs, vkft_op_result *r);
} harness_family;

int case_matmul_run(vkft_backend *vk, const vkft_op_case *c, int timed_runs, vkft_op_result *r);

#endif
