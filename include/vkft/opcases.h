/* The op table: one list of op cases that drives the backend-vs-reference tests, `vkft
 * selftest` and `vkft bench ops` alike (the ggml test-backend-ops idea). Each row names an op
 * variant, a storage dtype and up to four dimensions; the op's family (src/ops/cases/) says what
 * the inputs are, how the op is recorded, its double-precision reference and the tolerance of
 * each output, and one runner does the rest on any backend (Vulkan or the C reference). A
 * second implementation of an op (say a cooperative-matrix matmul) is another row with another
 * variant name; a new weight type is another row with another dtype. */
#ifndef VKFT_OPCASES_H
#define VKFT_OPCASES_H

#include "vkft/ops.h"

enum {
  VKFT_CASE_TEST = 1,     /* run by tests/test_ops, on both backends */
  VKFT_CASE_SELFTEST = 2, /* run by `vkft selftest` (quick) */
  VKFT_CASE_BENCH = 4,    /* run by `vkft bench ops` */
  VKFT_CASE_LARGE = 8,    /* run by `vkft bench ops --large`: GPU-sized shapes */
};

typedef struct vkft_op_case {
  const char *op; /* e.g. "matmul_nt" */
  vkft_dtype dtype;
  int64_t d[4];
  unsigned flags;
} vkft_op_case;

typedef struct vkft_op_result {
  char shape[64];
  char output[16];     /* the output whose error is closest to (or over) its tolerance */
  double max_err, tol; /* that output's normalized error against the double-precision reference */
  int ok;              /* every output within its own tolerance */
  int deterministic;   /* a second run gave the same bits */
  double ms;           /* median of the timed runs (bench), else 0 */
  double gflops, gbps; /* work rate of the median run (one of them is 0) */
} vkft_op_result;

/* Every row of the table (a static array: nothing is allocated or dropped). */
const vkft_op_case *vkft_op_cases(int *count);

/* Runs one case on backend `be` (the Vulkan backend or the reference backend) against the
 * double-precision reference. timed_runs > 0 adds one warm-up and that many timed runs (median
 * reported). Returns VKFT_ERR only when the case cannot run at all (e.g. out of memory, a row no
 * family knows); a wrong result is r->ok == 0. */
int vkft_op_case_run(vkft_backend *be, const vkft_op_case *c, int timed_runs, vkft_op_result *r);
/* The same on `count` backends with one set of inputs and one reference (made once): r[i] is
 * the result of backends[i]. */
int vkft_op_case_run_on(vkft_backend *const *backends, int count, const vkft_op_case *c,
                        int timed_runs, vkft_op_result *r);

/* One report of the self-check: a row's result (row set), a row that could not run (message
 * set), or a kernel variant disabled for the run after failing (disabled set). */
typedef struct vkft_selftest_event {
  const vkft_op_case *row;
  const char *variant; /* the kernel variant the row ran with; NULL: the automatic choice */
  const vkft_op_result *result;
  const char *message;
  int disabled;
} vkft_selftest_event;
typedef void (*vkft_selftest_fn)(const vkft_selftest_event *e, void *user);

/* The self-check of a Vulkan backend (`vkft selftest`, and `vkft train` before it starts): the
 * rows of each kernel variant's family once per variant the device would use, that variant
 * forced (src/ops/cases/selftest.c); then every other self-test row with the automatic choice.
 * A variant whose rows fail is disabled for the backend's lifetime (its fallback takes over and
 * is checked in turn); a failure no variant can absorb counts in *failed. rows: the rows'
 * flag (VKFT_CASE_SELFTEST, or VKFT_CASE_TEST for the whole test table); filter: a substring
 * of the op names to run, or NULL. Returns VKFT_ERR only when a row that no variant explains
 * cannot run at all. */
int vkft_selftest(vkft_backend *be, unsigned rows, const char *filter, vkft_selftest_fn fn,
                  void *user, int *failed);

#endif
