/* Op-table family "matmul_nt" / "_nn" / "_tn": random operands against the double reference,
 * the error normalized by the magnitude bound sum_k |a||b| (so the tolerance is the
 * fp32-accumulation bound K*u, independent of the data), widened by what the kernel that runs
 * rounds (the fp16 inputs of the cooperative-matrix kernels: src/ops/matmul_kernels.c). */
#include "case.h"

#include "ops/backend.h"

#include "vkft/ggml_quants.h"
#include "vkft/quant.h"

#include <stdio.h>
#include <stdlib.h>

enum { A, B, C };
/* d[3]: flags, and for the 4-bit types log2 of the block size in bits 8.. (0: 64) */
enum { WITH_BETA = 1, ODD_VIEWS = 2, TINY_WEIGHTS = 4, NESTED_SCALES = 8, IDENTITY_A = 16 };

typedef struct matmul_params {
  vkft_matmul_orient orient;
  int64_t M, N, K;
  float beta;
} matmul_params;

/* A bitsandbytes 4-bit weight: random values quantized by the bnb-exact quantizer into the
 * device layout; the reference sees the dequantized values (the same fp32 bits the shader
 * computes, so the fp32-accumulation bound still applies). */
static double *bnb4_operand(op_case *oc, vkft_dtype dtype, int64_t n, int64_t flags) {
  int shift = (int)(flags >> 8);
  vkft_quant q = {.blocksize = shift ? 1 << shift : 64, .nested = (flags & NESTED_SCALES) != 0};
  float *f = malloc((size_t)n * sizeof *f), *deq = malloc((size_t)n * sizeof *deq);
  double *values = CASE_NEW(oc, double, n);
  vkft_bnb4_weight w = {0};
  int status = f && deq && values ? VKFT_OK : vkft_error_nomem();
  for (int64_t i = 0; status == VKFT_OK && i < n; i++) f[i] = (float)case_uniform(&oc->rng, -1, 1);
  vkft_bnb4_type type = dtype == VKFT_NF4 ? VKFT_BNB4_NF4 : VKFT_BNB4_FP4;
  if (status == VKFT_OK)
    status = vkft_bnb4_weight_quantize(type, q.blocksize, q.nested, VKFT_F32, f, 1, &n, &w);
  q.offset = w.offset;
  void *bytes = status == VKFT_OK ? case_quantized(oc, B, "B", dtype, n, &q) : NULL;
  if (bytes) {
    vkft_bnb4_pack_device(&w, bytes);
    vkft_bnb4_dequantize_device(type, bytes, n, q.blocksize, q.nested, q.offset, deq);
    for (int64_t i = 0; i < n; i++) values[i] = deq[i];
  }
  vkft_bnb4_weight_free(&w);
  free(f), free(deq);
  if (status != VKFT_OK || !bytes) {
    oc->failed = 1;
    return NULL;
  }
  return values;
}

/* A ggml block weight (a GGUF file's Q8_0 ... Q6_K): random values quantized by the
 * ggml-exact quantizers; the reference sees the dequantized values (the bits the shader must
 * compute). n must be whole blocks (the rows shapes give are, or blocks span rows). */
static double *ggml_operand(op_case *oc, vkft_dtype dtype, int64_t n) {
  vkft_ggml_type type = (vkft_ggml_type)vkft_ggml_type_of_dtype(dtype);
  vkft_quant q = {.blocksize = (int32_t)vkft_ggml_block_size(type)};
  if (n % q.blocksize) {
    vkft_error("matmul: %lld %s values are not whole blocks", (long long)n, vkft_dtype_name(dtype));
    oc->failed = 1;
    return NULL;
  }
  float *f = malloc((size_t)n * sizeof *f), *deq = malloc((size_t)n * sizeof *deq);
  double *values = CASE_NEW(oc, double, n);
  void *bytes = f && deq && values ? case_quantized(oc, B, "B", dtype, n, &q) : NULL;
  /* values of both signs, and blocks with a sub-block far smaller than the rest: the k-quants'
   * 6-bit sub-block scales then reach their small codes */
  for (int64_t i = 0; bytes && i < n; i++)
    f[i] = (float)case_uniform(&oc->rng, -1, 1) * ((i / 32) % 7 == 3 ? 1.0f / 64 : 1.0f);
  int status = bytes ? vkft_ggml_quantize_row(type, f, bytes, n) : VKFT_ERR;
  if (status == VKFT_OK) status = vkft_ggml_dequantize_row(type, bytes, deq, n);
  for (int64_t i = 0; status == VKFT_OK && i < n; i++) values[i] = deq[i];
  free(f), free(deq);
  if (status != VKFT_OK) {
    oc->failed = 1;
    return NULL;
  }
  return values;
}

/* The weight operand B (n values) as the op reads it, in storage type `dtype`; returns its exact
 * values for the reference. A quantized type adds its case here: random values packed by its
 * quantizer, and the dequantized values returned. */
static double *weight_operand(op_case *oc, vkft_dtype dtype, int64_t n, int64_t flags) {
  /* tiny: most f16 values subnormal (below 2^-14), which must not be flushed */
  double range = flags & TINY_WEIGHTS ? 1e-4 : 1;
  switch (dtype) {
  case VKFT_F32:
  case VKFT_F16:
  case VKFT_BF16:
    return case_random(oc, B, "B", dtype, n, CASE_IN, -range, range);
  case VKFT_NF4:
  case VKFT_FP4:
    return bnb4_operand(oc, dtype, n, flags);
  case VKFT_Q8_0:
  case VKFT_Q4_0:
  case VKFT_Q5_0:
  case VKFT_Q4_K:
  case VKFT_Q5_K:
  case VKFT_Q6_K:
    return ggml_operand(oc, dtype, n);
  default:
    vkft_error("matmul: no weight generator for dtype %s", vkft_dtype_name(dtype));
    oc->failed = 1;
    return NULL;
  }
}

/* Reference rows of C to check: all of them, or 64 for the big bench shapes (a
 * double-precision 1024^3 product would take seconds per case). */
static int64_t rows_checked(int64_t M, int64_t N, int64_t K) {
  return (double)M * N * K > 64.0 * 1024 * 1024 && M > 64 ? 64 : M;
}

static int setup(op_case *oc) {
  const vkft_op_case *c = oc->row;
  matmul_params *p = CASE_PARAMS(oc, matmul_params);
  if (!p) return VKFT_ERR;
  int64_t M = c->d[0], N = c->d[1], K = c->d[2], Mc = rows_checked(M, N, K);
  *p = (matmul_params){(vkft_matmul_orient)oc->variant, M, N, K, c->d[3] & WITH_BETA ? 0.5f : 0};
  char block[16] = "";
  if (c->dtype == VKFT_NF4 || c->dtype == VKFT_FP4)
    snprintf(block, sizeof block, " b%d", c->d[3] >> 8 ? 1 << (int)(c->d[3] >> 8) : 64);
  case_shape(oc, "%lldx%lldx%lld%s%s%s%s%s", (long long)M, (long long)N, (long long)K,
             p->beta != 0 ? "+C" : "", c->d[3] & ODD_VIEWS ? " @odd" : "",
             c->d[3] & TINY_WEIGHTS ? " tiny B" : "", block, c->d[3] & NESTED_SCALES ? " dq" : "");
  double *a = case_random(oc, A, "A", VKFT_F32, M * K, CASE_IN, -1, 1);
  if (a && (c->d[3] & IDENTITY_A)) { /* A = I (M = K): C is B's values themselves, exactly */
    float *stored = oc->t[A].data;
    for (int64_t i = 0; i < M * K; i++) a[i] = stored[i] = i / K == i % K ? 1.0f : 0.0f;
  }
  double *b = weight_operand(oc, c->dtype, N * K, c->d[3]), *c0 = NULL;
  if (p->beta != 0)
    c0 = case_random(oc, C, "C", VKFT_F32, M * N, CASE_OUT, -1, 1);
  else
    case_poisoned(oc, C, "C", M * N); /* with beta = 0, C is written, never read */
  if (c->d[3] & ODD_VIEWS)
    for (int s = A; s <= C; s++)
      if (!vkft_dtype_is_quantized(oc->t[s].dtype)) oc->t[s].offset = 1, oc->t[s].pad = 3;
  double *ad = CASE_NEW(oc, double, Mc *K), *aa = CASE_NEW(oc, double, Mc *K);
  double *ba = CASE_NEW(oc, double, N *K), *want = CASE_NEW(oc, double, Mc *N);
  double *bound = CASE_NEW(oc, double, Mc *N);
  if (oc->failed) return VKFT_ERR;

  /* the first Mc rows of op(A), packed in the same orientation with M = Mc, and |A| */
  for (int64_t m = 0; m < Mc; m++)
    for (int64_t k = 0; k < K; k++) {
      double v = p->orient == VKFT_MATMUL_TN ? a[k * M + m] : a[m * K + k];
      int64_t at = p->orient == VKFT_MATMUL_TN ? k * Mc + m : m * K + k;
      ad[at] = v, aa[at] = fabs(v);
    }
  for (int64_t i = 0; i < N * K; i++) ba[i] = fabs(b[i]);
  for (int64_t i = 0; c0 && i < Mc * N; i++) want[i] = c0[i];
  vkft_ref_matmul_f64(p->orient, ad, b, want, Mc, N, K, 1.0, p->beta);
  vkft_ref_matmul_f64(p->orient, aa, ba, bound, Mc, N, K, 1.0, 0.0);
  for (int64_t i = 0; c0 && i < Mc * N; i++) bound[i] += fabs(p->beta * c0[i]);
  /* The loosest rounding among the kernels the backends will run (a reference or fp32 kernel:
   * none on the inputs, fp32 sums). */
  vkft_matmul_precision pr = {.accumulate_unit = CASE_U, .b_exact = 1};
  for (int i = 0; i < oc->backend_count; i++) {
    vkft_matmul_precision q;
    if (vkft_matmul_precision_of(oc->backends[i], p->orient, c->dtype, M, N, &q) != VKFT_OK) {
      oc->failed = 1;
      return VKFT_ERR;
    }
    pr.input_unit = fmax(pr.input_unit, q.input_unit);
    pr.flush_rel = fmax(pr.flush_rel, q.flush_rel);
    pr.accumulate_unit = fmax(pr.accumulate_unit, q.accumulate_unit);
    pr.b_exact &= q.b_exact || q.input_unit == 0;
  }
  /* Accumulation of K products plus the beta term: the classic gamma_(K+2) bound, plus each
   * rounded input's relative error (A's, and B's unless exact); second-order terms fit in the
   * 1% margin. Values flushed below flush_rel times their row's largest |value| add an absolute
   * error of at most flush_rel * (max_k |A[m,k]| * sum_k |B[n,k]| + max_k |B[n,k]| *
   * sum_k |A[m,k]|), folded into the scale so that scale * tol covers it. With A = I and exact
   * inputs every sum is one exact product: the device's dequantized values must be the
   * reference's bits. */
  if ((c->d[3] & IDENTITY_A) && pr.input_unit == 0) {
    case_expect_part(oc, C, 0, Mc * N, want, CASE_NEW(oc, double, Mc *N), 0);
  } else {
    double tol =
        ((pr.b_exact ? 1 : 2) * pr.input_unit + (double)(K + 2) * pr.accumulate_unit) * 1.01;
    if (pr.flush_rel > 0) {
      double *a_max = CASE_NEW(oc, double, Mc), *a_sum = CASE_NEW(oc, double, Mc);
      double *b_max = CASE_NEW(oc, double, N), *b_sum = CASE_NEW(oc, double, N);
      if (oc->failed) return VKFT_ERR;
      for (int64_t m = 0; m < Mc; m++)
        for (int64_t k = 0; k < K; k++) {
          double v = aa[p->orient == VKFT_MATMUL_TN ? k * Mc + m : m * K + k];
          a_max[m] = fmax(a_max[m], v), a_sum[m] += v;
        }
      for (int64_t n = 0; n < N; n++)
        for (int64_t k = 0; k < K; k++) {
          double v = ba[p->orient == VKFT_MATMUL_NT ? n * K + k : k * N + n];
          b_max[n] = fmax(b_max[n], v), b_sum[n] += v;
        }
      for (int64_t m = 0; m < Mc; m++)
        for (int64_t n = 0; n < N; n++)
          bound[m * N + n] +=
              pr.flush_rel / tol * (a_max[m] * b_sum[n] + (pr.b_exact ? 0 : b_max[n] * a_sum[m]));
    }
    case_expect_part(oc, C, 0, Mc * N, want, bound, tol);
  }
  oc->flops = 2.0 * M * N * K;
  return case_status(oc);
}

static int record(vkft_backend *be, const op_case *oc, vkft_tensor *t) {
  const matmul_params *p = oc->params;
  return vkft_matmul(be, p->orient, &t[A], &t[B], &t[C], p->M, p->N, p->K, 1.0f, p->beta);
}

/* in vkft_matmul_orient order */
const case_family case_matmul = {{"matmul_nt", "matmul_nn", "matmul_tn"}, setup, record};
