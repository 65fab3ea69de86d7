/* Internals of the op harness shared by the per-family case files in src/ops/cases/. */
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

/* A family of ops (one src/ops/cases/<family>.c): its rows of the op table and how to run
 * one. Adding a family: define it in its case file and list it in src/ops/cases/opcases.c. */
typedef struct harness_family {
  const vkft_op_case *cases;
  int count;
  int (*run)(vkft_backend *vk, const vkft_op_case *c, int timed_runs, vkft_op_result *r);
} harness_family;

#define HARNESS_T VKFT_CASE_TEST
#define HARNESS_S VKFT_CASE_SELFTEST
#define HARNESS_B VKFT_CASE_BENCH
#define HARNESS_COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

extern const harness_family family_matmul;
extern const harness_family family_attention;
/* ops-loss: the LM-head cross-entropy and LoRA families */
extern const harness_family family_cross_entropy;
extern const harness_family family_lora;
/* ops-core families */
extern const harness_family family_rmsnorm;
extern const harness_family family_elementwise;
extern const harness_family family_swiglu;
extern const harness_family family_rope;
extern const harness_family family_embedding;
extern const harness_family family_adamw;
extern const harness_family family_grad_norm;

extern const harness_family family_dropout;

#endif
