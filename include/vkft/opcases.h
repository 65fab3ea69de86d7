/* The op table: one list of op cases that drives the device-vs-reference tests, `vkft
 * selftest` and `vkft bench ops` alike (the ggml test-backend-ops idea). Each case names an op
 * variant, a storage dtype and up to four dimensions; the op's family knows how to make
 * inputs, run both backends and compare. A second implementation of an op (say a
 * cooperative-matrix matmul) is another row with another variant name. */
#ifndef VKFT_OPCASES_H
#define VKFT_OPCASES_H

#include "vkft/ops.h"

enum {
  VKFT_CASE_TEST = 1,     /* run by tests/test_ops */
  VKFT_CASE_SELFTEST = 2, /* run by `vkft selftest` (quick) */
  VKFT_CASE_BENCH = 4,    /* run by `vkft bench ops` */
};

typedef struct vkft_op_case {
  const char *op; /* e.g. "matmul_nt" */
  vkft_dtype dtype;
  int64_t d[4];
  unsigned flags;
} vkft_op_case;

typedef struct vkft_op_result {
  char shape[64];
  double max_err, tol; /* normalized error against the double-precision reference */
  int ok;              /* max_err <= tol */
  int deterministic;   /* a second run gave the same bits */
  double ms;           /* median of the timed runs (bench), else 0 */
  double gflops, gbps; /* work rate of the median run (one of them is 0) */
} vkft_op_result;

const vkft_op_case *vkft_op_cases(int *count);

/* Runs one case on the Vulkan backend `vk` against the reference. timed_runs > 0 adds one
 * warm-up and that many timed runs (median reported). Returns VKFT_ERR only when the case
 * cannot run at all (e.g. out of memory); a wrong result is r->ok == 0. */
int vkft_op_case_run(vkft_backend *vk, const vkft_op_case *c, int timed_runs, vkft_op_result *r);

#endif
