/* Shared inside src/quant: the decision tables of bnb's quantizers and the arithmetic of its
 * CUDA kernels (compiled with --use_fast_math, so subnormals read and round to zero). */
#ifndef VKFT_QUANT_INTERNAL_H
#define VKFT_QUANT_INTERNAL_H

#include "vkft/quant.h"

#include <float.h>
#include <math.h>
#include <stdint.h>

/* dQuantizeNF4: code = the number of thresholds a value exceeds (15 midpoints, ascending). */
void vkft_bnb_nf4_thresholds(float thresholds[15]);
/* dQuantizeFP4: the magnitude's interval among 7 thresholds picks the 3 low bits, the sign the
 * fourth. */
extern const float vkft_bnb_fp4_thresholds[7];
extern const uint8_t vkft_bnb_fp4_interval_code[8];

/* "float32", "float16", "bfloat16": str(torch.<dtype>).strip("torch."), as QuantState.as_dict
 * writes "dtype" and BitsAndBytesConfig.to_dict bnb_4bit_compute_dtype. */
const char *vkft_bnb_torch_dtype_name(vkft_dtype t);

/* Parses a config.json keeping each number's int/float kind as Python would (floats become raw
 * Python reprs), for rewriting it as transformers prints it. NULL with an error naming file. */
cJSON *vkft_quant_read_config(const char *file);

/* --ftz=true: a subnormal operand or result of a float operation is a zero of the same sign. */
static inline float bnb_ftz(float x) {
  return fabsf(x) < FLT_MIN ? copysignf(0.0f, x) : x;
}

#endif
