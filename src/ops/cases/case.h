/* What an op case says, and nothing about how it is run. A family's case file
 * (src/ops/cases/<family>.c) declares, for one row of the table (table.c): its tensors with their
 * contents (random in a range, or made by its own generator: ids, positions, packed weights), how
 * it records itself on the op API (vkft/ops.h), its double-precision reference (src/ref/,
 * vkft_ref_*_f64) and, for each output, the error measure and its derived tolerance. The runner
 * (runner.c) does the rest on every backend: allocation, upload, the run, reading and comparing
 * each output, the bit-identical rerun, and timing for `vkft bench ops`. */
#ifndef VKFT_OPS_CASE_H
#define VKFT_OPS_CASE_H

#include "vkft/error.h"
#include "vkft/opcases.h"

#include <math.h>
#include <stddef.h>
#include <stdint.h>

/* The op families: X(name) is `case_<name>`, defined in src/ops/cases/<name>.c. Adding a
 * family: its shader, its reference, its op entry, its case file, a line here, and its rows in
 * table.c. */
#define CASE_FAMILIES(X)                                                                           \
  X(matmul)                                                                                        \
  X(attention)                                                                                     \
  X(cross_entropy)                                                                                 \
  X(lora)                                                                                          \
  X(dora)                                                                                          \
  X(rmsnorm)                                                                                       \
  X(elementwise)                                                                                   \
  X(swiglu)                                                                                        \
  X(rope)                                                                                          \
  X(embedding)                                                                                     \
  X(adamw)                                                                                         \
  X(grad_norm)                                                                                     \
  X(dropout)                                                                                       \
  X(kv_cache)                                                                                      \
  X(pref_loss)

/* fp32 unit roundoff: the error unit every tolerance is expressed in */
#define CASE_U (1.0 / 16777216.0)

#define CASE_MAX_TENSORS 12
#define CASE_MAX_CHECKS 12
#define CASE_MAX_VARIANTS 8

/* Deterministic random numbers (splitmix64), independent of the C library; seeded from the row. */
typedef struct case_rng {
  uint64_t state;
} case_rng;
double case_uniform(case_rng *rng, double lo, double hi);

typedef enum case_role {
  CASE_IN,      /* read by the op: uploaded once per backend */
  CASE_OUT,     /* written or accumulated into: uploaded before every run and read back after */
  CASE_SCRATCH, /* the op's working memory: allocated, never uploaded or compared */
} case_role;

typedef struct case_tensor {
  const char *name; /* NULL: slot not used by this row */
  vkft_dtype dtype;
  int64_t n; /* elements the op sees */
  case_role role;
  void *data; /* the n elements before the op (NULL for scratch) */
  /* elements before and after the view in its allocation (unaligned starts, neighbours of a
   * 16-bit view); they hold random bytes that an output must leave untouched */
  int64_t offset, pad;
  vkft_quant quant; /* a quantized input's layout (data holds its bytes) */
} case_tensor;

/* One comparison of an output with its reference: elements [first, first + count) of the
 * tensor's view. Values (fp32 outputs): error max |got - want| / scale (scale NULL: |want|,
 * relative; a scale of 0: must be equal; a NaN wanted: must be NaN) against tol. Bits: the
 * bytes must be `bits` exactly (tol 0, the error is the number of elements that differ). */
typedef struct case_check {
  int tensor;
  int64_t first, count;
  const double *want, *scale;
  const void *bits;
  double tol;
  const char *what; /* a host-side fact (see case_require), tensor < 0 */
  double err;
} case_check;

typedef struct case_block case_block;

/* One row being run: what its family's setup filled in. */
typedef struct op_case {
  const vkft_op_case *row;
  int variant; /* index of row->op in the family's op list */
  /* the backends it will run on: a tolerance may depend on how their kernels round */
  vkft_backend *const *backends;
  int backend_count;
  case_rng rng;
  void *params; /* the family's own parameters (case_alloc'd), for record() */
  char shape[64];
  case_tensor t[CASE_MAX_TENSORS];
  case_check check[CASE_MAX_CHECKS];
  int checks;
  int host_refuses;    /* the reference backend must reject these inputs (the device cannot) */
  double flops, bytes; /* work of one run, for the bench rate */
  int failed;          /* an allocation or declaration failed (message set) */
  case_block *blocks;  /* host memory freed with the case */
} op_case;

typedef struct case_family {
  const char *ops[CASE_MAX_VARIANTS]; /* the op names of its rows (row->op): the variants */
  int (*setup)(op_case *oc);
  /* records the op on backend be; t[slot] is the view of each declared tensor */
  int (*record)(vkft_backend *be, const op_case *oc, vkft_tensor *t);
} case_family;

#define CASE_DECLARE(name) extern const case_family case_##name;
CASE_FAMILIES(CASE_DECLARE)
#undef CASE_DECLARE

/* Zeroed host memory for count elements of `size` bytes, freed with the case; NULL (and
 * oc->failed, the message set) when out of memory. */
void *case_alloc(op_case *oc, int64_t count, size_t size);
#define CASE_NEW(oc, type, count) ((type *)case_alloc((oc), (count), sizeof(type)))
/* The family's parameters for record(): oc->params, zeroed. */
#define CASE_PARAMS(oc, type) ((type *)((oc)->params = case_alloc((oc), 1, sizeof(type))))

void case_shape(op_case *oc, const char *fmt, ...) VKFT_PRINTF(2, 3);

/* For ops that run matmuls inside (LoRA, the LM-head cross-entropy): the largest unit with which
 * any of the case's backends rounds the inputs of the given products (0: fp32 kernels), and in
 * *acc the unit of their additions (CASE_U, or twice it where they may truncate). Each product:
 * {orientation, weight dtype, M, N}. */
typedef struct case_product {
  vkft_matmul_orient orient;
  vkft_dtype dtype;
  int64_t M, N;
} case_product;
double case_matmul_input_unit(op_case *oc, const case_product *products, int n, double *acc);

/* Declares tensor `slot`: n elements of dtype; returns its zeroed contents for the case to fill
 * (NULL for scratch, or on failure). */
void *case_tensor_new(op_case *oc, int slot, const char *name, vkft_dtype dtype, int64_t n,
                      case_role role);
/* A quantized input of n values with layout q: returns its vkft_tensor_bytes() bytes, zeroed,
 * for the case to fill (with the quantizer's device layout). */
void *case_quantized(op_case *oc, int slot, const char *name, vkft_dtype dtype, int64_t n,
                     const vkft_quant *q);
/* A tensor of n values uniform in [lo, hi] rounded to dtype (f32, f16 or bf16): returns the
 * stored values in double, for the reference. */
double *case_random(op_case *oc, int slot, const char *name, vkft_dtype dtype, int64_t n,
                    case_role role, double lo, double hi);
/* An fp32 output the op must write without reading: it starts as NaN. */
void case_poisoned(op_case *oc, int slot, const char *name, int64_t n);

/* Compares the whole output (case_expect) or a part of it. */
void case_expect_part(op_case *oc, int slot, int64_t first, int64_t count, const double *want,
                      const double *scale, double tol);
void case_expect(op_case *oc, int slot, const double *want, const double *scale, double tol);
void case_expect_bits(op_case *oc, int slot, const void *bits);
/* A fact about the inputs or the reference checked on the host (err <= tol), reported with
 * every backend's result. */
void case_require(op_case *oc, const char *what, double err, double tol);

/* The setup's return: VKFT_ERR if anything above failed. */
static inline int case_status(const op_case *oc) {
  return oc->failed ? VKFT_ERR : VKFT_OK;
}

#endif
