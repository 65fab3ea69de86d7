/* The code tables of bitsandbytes' quantizers, each derived the way bnb derives it so that the
 * values are bit-identical (docs/QUANT-BNB.md, "Code tables"): the NF4 and FP4 4-bit codes with
 * the decision thresholds of its CUDA kernels, and the signed 8-bit dynamic map. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

int vkft_bnb4_type_parse(const char *name, vkft_bnb4_type *out) {
  if (!strcmp(name, "nf4")) return *out = VKFT_BNB4_NF4, 0;
  if (!strcmp(name, "fp4")) return *out = VKFT_BNB4_FP4, 0;
  return -1;
}

const char *vkft_bnb4_type_name(vkft_bnb4_type type) {
  return type == VKFT_BNB4_NF4 ? "nf4" : "fp4";
}

int vkft_bnb4_blocksize_valid(int blocksize) {
  return blocksize >= 32 && blocksize <= 4096 && !(blocksize & (blocksize - 1));
}

/* NF4: get_4bit_type("nf4"), quantiles of N(0, 1) normalised to [-1, 1], as bnb lists them
 * (each decimal is a float32 value printed as a double, so it converts exactly). */
static const float nf4_code[16] = {-1.0f,
                                   -0.6961928009986877f,
                                   -0.5250730514526367f,
                                   -0.39491748809814453f,
                                   -0.28444138169288635f,
                                   -0.18477343022823334f,
                                   -0.09105003625154495f,
                                   0.0f,
                                   0.07958029955625534f,
                                   0.16093020141124725f,
                                   0.24611230194568634f,
                                   0.33791524171829224f,
                                   0.44070982933044434f,
                                   0.5626170039176941f,
                                   0.7229568362236023f,
                                   1.0f};

/* FP4 (1 sign, 2 exponent, 1 mantissa bit) magnitudes of the 3 low bits, before bnb divides them
 * by the largest (12) in float32. */
static const float fp4_unscaled[8] = {0.0f, 0.0625f, 8.0f, 12.0f, 4.0f, 6.0f, 2.0f, 3.0f};

/* dQuantizeFP4's comparison constants (float literals in csrc/kernels.cu). They are *not* the
 * float32 midpoints of the code (0.583333 where the midpoint is 0.58333334), which is why the
 * pure-torch backend, bucketizing at midpoints, can differ; the CUDA kernels wrote the public
 * checkpoints, so these are the rule. */
const float vkft_bnb_fp4_thresholds[7] = {0.00260417f, 0.0859375f, 0.20833333f, 0.29166667f,
                                          0.4166667f,  0.583333f,  0.8333333f};
/* The 3-bit FP4 code of each interval between those thresholds, smallest magnitude first. */
const uint8_t vkft_bnb_fp4_interval_code[8] = {0x0, 0x1, 0x6, 0x7, 0x4, 0x5, 0x2, 0x3};

static void fp4_magnitudes(float mag[8]) {
  for (int i = 0; i < 8; i++) mag[i] = fp4_unscaled[i] / 12.0f;
}

void vkft_bnb4_code(vkft_bnb4_type type, float code[16]) {
  if (type == VKFT_BNB4_NF4) {
    memcpy(code, nf4_code, sizeof nf4_code);
    return;
  }
  /* dDequantizeFP4Tree: the magnitude times 1 - 2 * sign, so code 8 is -0.0 */
  float mag[8];
  fp4_magnitudes(mag);
  for (int i = 0; i < 16; i++) code[i] = i & 8 ? -mag[i & 7] : mag[i & 7];
}

void vkft_bnb4_quant_map(vkft_bnb4_type type, float code[16]) {
  vkft_bnb4_code(type, code);
  /* get_4bit_type writes FP4's zero as the Python int -0, which is 0: the stored map has +0.0 */
  if (type == VKFT_BNB4_FP4) code[8] = 0.0f;
}

void vkft_bnb_nf4_thresholds(float thresholds[15]) {
  /* dQuantizeNF4's constants are the midpoints of neighbouring codes, each sum exact in double
   * and rounded once to float (the test checks them against the kernel's literals) */
  for (int k = 0; k < 15; k++)
    thresholds[k] = (float)(((double)nf4_code[k] + (double)nf4_code[k + 1]) * 0.5);
}

/* torch.linspace(0.1, 1, n, dtype=float32) on the CPU: start and step in float32, the first half
 * start + step * i and the second end - step * (n - 1 - i), each contracted to one fused
 * multiply-add by the compiler in the AVX2/AVX-512 kernels PyTorch dispatches to (only the fused
 * form reproduces bnb's stored map). The fused result is the exact value rounded once: here the
 * product (24 bits times i < 128) and the sum (< 32 significant bits) are exact in double. */
static void linspace_f32(int n, float *out) {
  const float start = (float)0.1, end = 1.0f;
  const float step = (end - start) / (float)(n - 1);
  for (int i = 0; i < n; i++)
    out[i] = i < n / 2 ? (float)((double)start + (double)step * i)
                       : (float)((double)end - (double)step * (n - 1 - i));
}

static int by_value(const void *a, const void *b) {
  float x = *(const float *)a, y = *(const float *)b;
  return (x > y) - (x < y);
}

void vkft_bnb_dynamic_map(float map[256]) {
  /* create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8): for exponent i = 0..6,
   * the 2^i midpoints of linspace(0.1, 1, 2^i + 1) (float32 sum, exact halving), scaled by
   * 10^(i - 6) — a Python float that torch rounds to float32 before the float32 multiply —
   * with both signs; then 0 and 1, sorted. */
  int count = 0;
  float bounds[65];
  for (int i = 0; i < 7; i++) {
    int n = (1 << i) + 1;
    static const double powers[7] = {1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0};
    const float scale = (float)powers[i];
    linspace_f32(n, bounds);
    for (int k = 0; k + 1 < n; k++) {
      float mean = (float)((double)bounds[k] + (double)bounds[k + 1]) * 0.5f;
      float value = (float)((double)scale * (double)mean); /* 24 x 24 bits: exact in double */
      map[count++] = value;
      map[count++] = -value;
    }
  }
  map[count++] = 0.0f;
  map[count++] = 1.0f;
  qsort(map, (size_t)count, sizeof *map, by_value);
}
