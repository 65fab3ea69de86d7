/* ggml's type table (ids, names, block sizes as ggml.c's type_traits lists them) and the row
 * functions that dispatch to the per-type block code in ggml_quants.c. */
#include "vkft/ggml_quants.h"

#include "vkft/dtype.h"
#include "vkft/error.h"

#include <math.h>
#include <string.h>

_Static_assert(sizeof(vkft_block_q8_0) == 34, "block_q8_0 is 34 bytes in ggml");
_Static_assert(sizeof(vkft_block_q4_0) == 18, "block_q4_0 is 18 bytes in ggml");
_Static_assert(sizeof(vkft_block_q5_0) == 22, "block_q5_0 is 22 bytes in ggml");
_Static_assert(sizeof(vkft_block_q4_K) == 144, "block_q4_K is 144 bytes in ggml");
_Static_assert(sizeof(vkft_block_q5_K) == 176, "block_q5_K is 176 bytes in ggml");
_Static_assert(sizeof(vkft_block_q6_K) == 210, "block_q6_K is 210 bytes in ggml");

typedef struct type_traits {
  const char *name; /* NULL: no such type id */
  int block;        /* elements per block */
  int bytes;        /* bytes per block */
} type_traits;

/* sizeof(block_*) of ggml-common.h for the types vkft does not compute with */
static const type_traits traits[VKFT_GGML_TYPE_LIMIT] = {
    [VKFT_GGML_F32] = {"F32", 1, 4},
    [VKFT_GGML_F16] = {"F16", 1, 2},
    [VKFT_GGML_Q4_0] = {"Q4_0", 32, 18},
    [VKFT_GGML_Q4_1] = {"Q4_1", 32, 20},
    [VKFT_GGML_Q5_0] = {"Q5_0", 32, 22},
    [VKFT_GGML_Q5_1] = {"Q5_1", 32, 24},
    [VKFT_GGML_Q8_0] = {"Q8_0", 32, 34},
    [VKFT_GGML_Q8_1] = {"Q8_1", 32, 36},
    [VKFT_GGML_Q2_K] = {"Q2_K", 256, 84},
    [VKFT_GGML_Q3_K] = {"Q3_K", 256, 110},
    [VKFT_GGML_Q4_K] = {"Q4_K", 256, 144},
    [VKFT_GGML_Q5_K] = {"Q5_K", 256, 176},
    [VKFT_GGML_Q6_K] = {"Q6_K", 256, 210},
    [VKFT_GGML_Q8_K] = {"Q8_K", 256, 292},
    [VKFT_GGML_IQ2_XXS] = {"IQ2_XXS", 256, 66},
    [VKFT_GGML_IQ2_XS] = {"IQ2_XS", 256, 74},
    [VKFT_GGML_IQ3_XXS] = {"IQ3_XXS", 256, 98},
    [VKFT_GGML_IQ1_S] = {"IQ1_S", 256, 50},
    [VKFT_GGML_IQ4_NL] = {"IQ4_NL", 32, 18},
    [VKFT_GGML_IQ3_S] = {"IQ3_S", 256, 110},
    [VKFT_GGML_IQ2_S] = {"IQ2_S", 256, 82},
    [VKFT_GGML_IQ4_XS] = {"IQ4_XS", 256, 136},
    [VKFT_GGML_I8] = {"I8", 1, 1},
    [VKFT_GGML_I16] = {"I16", 1, 2},
    [VKFT_GGML_I32] = {"I32", 1, 4},
    [VKFT_GGML_I64] = {"I64", 1, 8},
    [VKFT_GGML_F64] = {"F64", 1, 8},
    [VKFT_GGML_IQ1_M] = {"IQ1_M", 256, 56},
    [VKFT_GGML_BF16] = {"BF16", 1, 2},
    [VKFT_GGML_TQ1_0] = {"TQ1_0", 256, 54},
    [VKFT_GGML_TQ2_0] = {"TQ2_0", 256, 66},
    [VKFT_GGML_MXFP4] = {"MXFP4", 32, 17},
};

int vkft_ggml_type_known(uint32_t t) {
  return t < VKFT_GGML_TYPE_LIMIT && traits[t].name != NULL;
}

const char *vkft_ggml_type_name(vkft_ggml_type t) {
  return vkft_ggml_type_known((uint32_t)t) ? traits[t].name : "?";
}

int64_t vkft_ggml_block_size(vkft_ggml_type t) {
  return vkft_ggml_type_known((uint32_t)t) ? traits[t].block : 0;
}

size_t vkft_ggml_type_size(vkft_ggml_type t) {
  return vkft_ggml_type_known((uint32_t)t) ? (size_t)traits[t].bytes : 0;
}

uint64_t vkft_ggml_row_size(vkft_ggml_type t, int64_t n) {
  if (!vkft_ggml_type_known((uint32_t)t)) return 0;
  return (uint64_t)n / (uint64_t)traits[t].block * (uint64_t)traits[t].bytes;
}

int vkft_ggml_can_dequantize(vkft_ggml_type t) {
  switch (t) {
  case VKFT_GGML_F32:
  case VKFT_GGML_F16:
  case VKFT_GGML_BF16:
  case VKFT_GGML_Q8_0:
  case VKFT_GGML_Q4_0:
  case VKFT_GGML_Q5_0:
  case VKFT_GGML_Q4_K:
  case VKFT_GGML_Q5_K:
  case VKFT_GGML_Q6_K:
    return 1;
  default:
    return 0;
  }
}

static const struct {
  vkft_dtype dtype;
  vkft_ggml_type type;
} dtype_types[] = {
    {VKFT_F32, VKFT_GGML_F32},   {VKFT_F16, VKFT_GGML_F16},   {VKFT_BF16, VKFT_GGML_BF16},
    {VKFT_Q8_0, VKFT_GGML_Q8_0}, {VKFT_Q4_0, VKFT_GGML_Q4_0}, {VKFT_Q5_0, VKFT_GGML_Q5_0},
    {VKFT_Q4_K, VKFT_GGML_Q4_K}, {VKFT_Q5_K, VKFT_GGML_Q5_K}, {VKFT_Q6_K, VKFT_GGML_Q6_K}};

int vkft_ggml_type_of_dtype(vkft_dtype dtype) {
  for (size_t i = 0; i < sizeof dtype_types / sizeof dtype_types[0]; i++)
    if (dtype_types[i].dtype == dtype) return (int)dtype_types[i].type;
  return -1;
}

int vkft_dtype_of_ggml_type(vkft_ggml_type t) {
  for (size_t i = 0; i < sizeof dtype_types / sizeof dtype_types[0]; i++)
    if (dtype_types[i].type == t) return (int)dtype_types[i].dtype;
  return -1;
}

int vkft_ggml_can_quantize(vkft_ggml_type t) {
  return vkft_ggml_can_dequantize(t);
}

int vkft_ggml_all_finite(const float *x, int64_t n) {
  for (int64_t i = 0; i < n; i++)
    if (!isfinite(x[i])) return 0;
  return 1;
}

static int check_row(vkft_ggml_type t, int64_t n, const char *what) {
  if (!vkft_ggml_can_dequantize(t))
    return vkft_error("%s: ggml type %s (%d) is not supported", what, vkft_ggml_type_name(t),
                      (int)t);
  if (n < 0 || n % vkft_ggml_block_size(t))
    return vkft_error("%s: %lld elements are not a multiple of %s's block of %lld", what,
                      (long long)n, vkft_ggml_type_name(t), (long long)vkft_ggml_block_size(t));
  return VKFT_OK;
}

int vkft_ggml_quantize_row(vkft_ggml_type t, const float *src, void *dst, int64_t n) {
  if (check_row(t, n, "quantize") != VKFT_OK) return VKFT_ERR;
  switch (t) {
  case VKFT_GGML_F32:
    memcpy(dst, src, (size_t)n * sizeof(float));
    break;
  case VKFT_GGML_F16:
    vkft_convert_from_f32(VKFT_F16, src, dst, (size_t)n);
    break;
  case VKFT_GGML_BF16:
    vkft_convert_from_f32(VKFT_BF16, src, dst, (size_t)n);
    break;
  case VKFT_GGML_Q8_0:
    vkft_quantize_row_q8_0(src, dst, n);
    break;
  case VKFT_GGML_Q4_0:
    vkft_quantize_row_q4_0(src, dst, n);
    break;
  case VKFT_GGML_Q5_0:
    vkft_quantize_row_q5_0(src, dst, n);
    break;
  case VKFT_GGML_Q4_K:
    vkft_quantize_row_q4_K(src, dst, n);
    break;
  case VKFT_GGML_Q5_K:
    vkft_quantize_row_q5_K(src, dst, n);
    break;
  case VKFT_GGML_Q6_K:
    vkft_quantize_row_q6_K(src, dst, n);
    break;
  default:
    break;
  }
  return VKFT_OK;
}

int vkft_ggml_dequantize_row(vkft_ggml_type t, const void *src, float *dst, int64_t n) {
  if (check_row(t, n, "dequantize") != VKFT_OK) return VKFT_ERR;
  switch (t) {
  case VKFT_GGML_F32:
    memcpy(dst, src, (size_t)n * sizeof(float));
    break;
  case VKFT_GGML_F16:
    vkft_convert_to_f32(VKFT_F16, src, dst, (size_t)n);
    break;
  case VKFT_GGML_BF16:
    vkft_convert_to_f32(VKFT_BF16, src, dst, (size_t)n);
    break;
  case VKFT_GGML_Q8_0:
    vkft_dequantize_row_q8_0(src, dst, n);
    break;
  case VKFT_GGML_Q4_0:
    vkft_dequantize_row_q4_0(src, dst, n);
    break;
  case VKFT_GGML_Q5_0:
    vkft_dequantize_row_q5_0(src, dst, n);
    break;
  case VKFT_GGML_Q4_K:
    vkft_dequantize_row_q4_K(src, dst, n);
    break;
  case VKFT_GGML_Q5_K:
    vkft_dequantize_row_q5_K(src, dst, n);
    break;
  case VKFT_GGML_Q6_K:
    vkft_dequantize_row_q6_K(src, dst, n);
    break;
  default:
    break;
  }
  return VKFT_OK;
}
