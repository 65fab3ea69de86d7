/* bitsandbytes 4-bit quantization (src/quant, docs/QUANT-BNB.md): the code tables against the
 * kernels' constants and bnb's stored dynamic map, every NF4/FP4 threshold with its ties, special
 * blocks (zeros, -0, NaN, inf, subnormals), partial blocks, every block size, double quantization,
 * dequantization of hand-built blocks, the checkpoint layout read and written, config.json's
 * quantization_config (`vkft quantize` is tested by test_quantize.c).
 * Expected values are derived by hand (bit patterns computed from the rules with exact rational
 * arithmetic), not taken from the code under test. Costs about 1 s. */
#include "check.h"
#include "safetensors_order.h"

#include "vkft/error.h"
#include "vkft/json.h"
#include "vkft/model.h"
#include "vkft/platform.h"
#include "vkft/quant.h"
#include "vkft/safetensors.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define TMP "test_quant.tmp"
#define STORIES VKFT_SOURCE_DIR "/models/stories260K"

static float from_bits(uint32_t b) {
  float f;
  memcpy(&f, &b, 4);
  return f;
}

static uint32_t bits_of(float f) {
  uint32_t b;
  memcpy(&b, &f, 4);
  return b;
}

static uint64_t rng_state = 88172645463325252ull;
static float uniform(void) { /* [-1, 1) */
  rng_state ^= rng_state << 13, rng_state ^= rng_state >> 7, rng_state ^= rng_state << 17;
  return (float)((double)(rng_state >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

/* The code of one value quantized alone in a block whose absmax is `absmax` (the block holds the
 * value and, to set the scale, +absmax). */
static int code_of(vkft_bnb4_type type, float x, float absmax) {
  float block[32] = {absmax, x};
  uint8_t packed[16];
  float am;
  vkft_bnb4_quantize(type, 32, VKFT_F32, block, 32, packed, &am);
  return packed[0] & 15;
}

/* ---- code tables ---- */

static void code_tables(void) {
  /* NF4 (get_4bit_type) and the float32 thresholds of dQuantizeNF4, as bit patterns */
  static const uint32_t nf4[16] = {0xbf800000, 0xbf3239b1, 0xbf066b30, 0xbeca32a0,
                                   0xbe91a24d, 0xbe3d353f, 0xbdba7871, 0x00000000,
                                   0x3da2faff, 0x3e24cae3, 0x3e7c04dd, 0x3ead033a,
                                   0x3ee1a4b8, 0x3f1007ab, 0x3f3913b3, 0x3f800000};
  static const uint32_t nf4_thresholds[15] = {0xbf591cd8, 0xbf1c5270, 0xbeeb8480, 0xbeadea76,
                                              0xbe703cec, 0xbe0d38bc, 0xbd3a7871, 0x3d22faff,
                                              0x3df64862, 0x3e5067e0, 0x3e9582d4, 0x3ec753f9,
                                              0x3f006d04, 0x3f248daf, 0x3f5c89da};
  /* FP4: magnitudes {0, 0.0625, 8, 12, 4, 6, 2, 3} / 12 in float32 by code bits, and the
   * literals of dQuantizeFP4 (0.00260417f, 0.0859375f, ... 0.8333333f) */
  static const uint32_t fp4_magnitude[8] = {0x00000000, 0x3baaaaab, 0x3f2aaaab, 0x3f800000,
                                            0x3eaaaaab, 0x3f000000, 0x3e2aaaab, 0x3e800000};
  static const uint32_t fp4_thresholds[7] = {0x3b2aaab9, 0x3db00000, 0x3e555555, 0x3e955555,
                                             0x3ed55556, 0x3f155550, 0x3f555555};
  float code[16], map[16];
  vkft_bnb4_code(VKFT_BNB4_NF4, code);
  vkft_bnb4_quant_map(VKFT_BNB4_NF4, map);
  for (int i = 0; i < 16; i++) CHECKF(bits_of(code[i]) == nf4[i] && map[i] == code[i], "nf4 %d", i);
  for (int k = 0; k < 15; k++) {
    /* exactly at a threshold: the lower code (the kernel tests x > t); one ulp up: the next */
    float t = from_bits(nf4_thresholds[k]);
    CHECKF(code_of(VKFT_BNB4_NF4, t, 1.0f) == k, "nf4 tie %d", k);
    CHECKF(code_of(VKFT_BNB4_NF4, nextafterf(t, 2.0f), 1.0f) == k + 1, "nf4 above %d", k);
    CHECKF(code_of(VKFT_BNB4_NF4, nextafterf(t, -2.0f), 1.0f) == k, "nf4 below %d", k);
    /* scaled by an exact power of two, the same decisions */
    CHECKF(code_of(VKFT_BNB4_NF4, 4.0f * t, 4.0f) == k, "nf4 scaled tie %d", k);
  }
  CHECK(code_of(VKFT_BNB4_NF4, 1.0f, 1.0f) == 15 && code_of(VKFT_BNB4_NF4, -1.0f, 1.0f) == 0);
  CHECK(code_of(VKFT_BNB4_NF4, 0.0f, 1.0f) == 7 && code_of(VKFT_BNB4_NF4, -0.0f, 1.0f) == 7);

  vkft_bnb4_code(VKFT_BNB4_FP4, code);
  vkft_bnb4_quant_map(VKFT_BNB4_FP4, map);
  for (int i = 0; i < 16; i++) {
    uint32_t sign = i & 8 ? 0x80000000u : 0;
    CHECKF(bits_of(code[i]) == (fp4_magnitude[i & 7] | sign), "fp4 code %d", i);
    /* the stored map's zero at code 8 is +0.0 (Python's -0 is the int 0) */
    CHECKF(bits_of(map[i]) == (i == 8 ? 0 : (fp4_magnitude[i & 7] | sign)), "fp4 map %d", i);
  }
  /* interval k of |x| (between thresholds k - 1 and k) has 3-bit code low[k]; ties go down */
  static const int low[8] = {0, 1, 6, 7, 4, 5, 2, 3};
  for (int k = 0; k < 7; k++) {
    float t = from_bits(fp4_thresholds[k]);
    CHECKF(code_of(VKFT_BNB4_FP4, t, 1.0f) == low[k], "fp4 tie %d", k);
    CHECKF(code_of(VKFT_BNB4_FP4, -t, 1.0f) == (low[k] | 8), "fp4 -tie %d", k);
    CHECKF(code_of(VKFT_BNB4_FP4, nextafterf(t, 2.0f), 1.0f) == low[k + 1], "fp4 above %d", k);
    CHECKF(code_of(VKFT_BNB4_FP4, -nextafterf(t, 2.0f), 1.0f) == (low[k + 1] | 8), "fp4 %d", k);
  }
  /* 0.583333f is not the float32 midpoint 0.58333334f of 0.5 and 2/3: between them, 2/3 */
  CHECK(code_of(VKFT_BNB4_FP4, 0.58333331f, 1.0f) == 2);
  CHECK(code_of(VKFT_BNB4_FP4, -0.0f, 1.0f) == 0 && code_of(VKFT_BNB4_FP4, -1e-30f, 1.0f) == 8);

  /* create_dynamic_map(signed=True): bnb's stored nested_quant_map, FNV-1a of its 1 KiB */
  float dyn[256];
  vkft_bnb_dynamic_map(dyn);
  uint32_t hash = 2166136261u;
  for (int i = 0; i < 256; i++)
    for (int b = 0; b < 4; b++) hash = (hash ^ (bits_of(dyn[i]) >> (8 * b) & 255)) * 16777619u;
  CHECKF(hash == 0x6b337d44u, "dynamic map hash %08x", hash);
  CHECK(dyn[0] == -0.992968738079071f && dyn[127] == 0.0f && dyn[255] == 1.0f);
  CHECK(dyn[128] == 5.500000384017767e-07f && dyn[254] == 0.992968738079071f);
  /* entries that only the fused multiply-add form of torch.linspace gives */
  CHECK(dyn[18] == -0.7398437261581421f && dyn[20] == -0.7117187976837158f);
  for (int i = 1; i < 256; i++) CHECKF(dyn[i - 1] < dyn[i], "dynamic map order %d", i);
}

/* ---- special blocks ---- */

static void special_blocks(void) {
  float x[64], absmax[2];
  uint8_t packed[32];
  /* zeros and negative zeros: absmax 0, 1 / 0 = inf, 0 * inf = NaN, a NaN exceeds no
   * threshold: code 0 (NF4 -1.0, FP4 +0.0), which dequantizes to -0.0 / 0.0 */
  for (int i = 0; i < 64; i++) x[i] = i % 2 ? -0.0f : 0.0f;
  vkft_bnb4_quantize(VKFT_BNB4_NF4, 64, VKFT_F32, x, 64, packed, absmax);
  CHECK(absmax[0] == 0.0f && packed[0] == 0x00 && packed[31] == 0x00);
  vkft_bnb4_quantize(VKFT_BNB4_FP4, 64, VKFT_F32, x, 64, packed, absmax);
  CHECK(absmax[0] == 0.0f && packed[0] == 0x00);
  /* NaNs are skipped by the absmax and coded 0; the rest as usual */
  for (int i = 0; i < 64; i++) x[i] = 0.5f;
  x[0] = NAN, x[1] = -2.0f;
  vkft_bnb4_quantize(VKFT_BNB4_NF4, 64, VKFT_F32, x, 64, packed, absmax);
  CHECK(absmax[0] == 2.0f && packed[0] == 0x00); /* NaN -> 0, -1 -> 0 */
  CHECK(packed[1] == 0xaa);                      /* 0.25 -> code 10 (0.2461) */
  /* a whole block of NaNs: absmax -FLT_MAX (fmaxf from -FLT_MAX skips them all) */
  for (int i = 0; i < 64; i++) x[i] = NAN;
  vkft_bnb4_quantize(VKFT_BNB4_NF4, 32, VKFT_F32, x, 64, packed, absmax);
  CHECK(absmax[0] == -FLT_MAX && absmax[1] == -FLT_MAX && packed[0] == 0);
  /* ... but 0 for a last partial block, whose zero padding takes part */
  vkft_bnb4_quantize(VKFT_BNB4_NF4, 64, VKFT_F32, x, 33, packed, absmax);
  CHECK(absmax[0] == 0.0f);
  /* inf: absmax inf, scale 0: finite values -> 0 (NF4 code 7, FP4 0), inf * 0 = NaN -> 0 */
  for (int i = 0; i < 64; i++) x[i] = -3.0f;
  x[2] = -INFINITY;
  vkft_bnb4_quantize(VKFT_BNB4_NF4, 64, VKFT_F32, x, 64, packed, absmax);
  CHECK(absmax[0] == INFINITY && packed[0] == 0x77 && packed[1] == 0x07);
  vkft_bnb4_quantize(VKFT_BNB4_FP4, 64, VKFT_F32, x, 64, packed, absmax);
  CHECK(packed[0] == 0x00 && packed[1] == 0x00); /* -0 is not < 0: no sign bit */
  /* subnormals read as zero (--ftz): a block of them is a zero block */
  for (int i = 0; i < 64; i++) x[i] = from_bits(0x80000001u + (uint32_t)i);
  vkft_bnb4_quantize(VKFT_BNB4_FP4, 64, VKFT_F32, x, 64, packed, absmax);
  CHECK(absmax[0] == 0.0f && packed[5] == 0x00);
  x[0] = 1.0f;
  vkft_bnb4_quantize(VKFT_BNB4_FP4, 64, VKFT_F32, x, 64, packed, absmax);
  CHECK(absmax[0] == 1.0f && packed[1] == 0x00); /* -subnormal -> -0 -> 0b0000, not 0b1000 */
  /* the kernel multiplies by 1.0f / absmax: with absmax 3, x = 0x3df4787f times
   * RN(1/3) = 0x3eaaaaab is 0.039790153 > 0.039790150 (code 8) where x / 3 would round onto the
   * threshold (code 7, what the pure-torch backend's partial-block division gives) */
  CHECK(code_of(VKFT_BNB4_NF4, from_bits(0x3df4787f), 3.0f) == 8);
  CHECK(code_of(VKFT_BNB4_NF4, from_bits(0xbfea7ba7), 3.0f) == 1); /* -1.8319: x / 3 gives 2 */
}

/* ---- partial blocks, every block size against a plain per-value reading of the rules ---- */

static int plain_code(vkft_bnb4_type type, float y, const float code[16]) {
  /* the nearest code by the kernels' thresholds, written without the library's tables */
  if (type == VKFT_BNB4_NF4) {
    int c = 0;
    for (int k = 0; k < 15; k++) c += y > (float)(((double)code[k] + (double)code[k + 1]) * 0.5);
    return c;
  }
  static const float t[7] = {0.00260417f, 0.0859375f, 0.20833333f, 0.29166667f,
                             0.4166667f,  0.583333f,  0.8333333f};
  static const int low[8] = {0, 1, 6, 7, 4, 5, 2, 3};
  int m = 0;
  for (int k = 0; k < 7; k++) m += fabsf(y) > t[k];
  return low[m] | (y < 0 ? 8 : 0);
}

static void every_block_size(void) {
  for (int type = VKFT_BNB4_NF4; type <= VKFT_BNB4_FP4; type++) {
    float code[16];
    vkft_bnb4_code((vkft_bnb4_type)type, code);
    for (int bs = 32; bs <= 4096; bs *= 2) {
      int64_t n = 3 * bs + 17; /* odd: a partial last block and a padded last nibble */
      float *x = malloc((size_t)n * 4), *absmax = malloc(4 * 4), *back = malloc((size_t)n * 4);
      uint8_t *packed = malloc((size_t)(n + 1) / 2);
      for (int64_t i = 0; i < n; i++) x[i] = uniform() + uniform() + uniform();
      vkft_bnb4_quantize((vkft_bnb4_type)type, bs, VKFT_F32, x, n, packed, absmax);
      int bad = 0;
      for (int64_t b = 0; b * bs < n; b++) {
        float am = 0;
        for (int64_t i = b * bs; i < n && i < (b + 1) * bs; i++)
          if (fabsf(x[i]) > am) am = fabsf(x[i]);
        bad += am != absmax[b];
      }
      for (int64_t i = 0; i < n; i++) {
        float scale = 1.0f / absmax[i / bs];
        float y = x[i] * scale;
        int c = i % 2 ? packed[i / 2] & 15 : packed[i / 2] >> 4;
        bad += c != plain_code((vkft_bnb4_type)type, y, code);
      }
      /* the padding nibble is the code of 0.0 */
      bad += (packed[n / 2] & 15) != plain_code((vkft_bnb4_type)type, 0.0f, code);
      vkft_bnb4_weight w = {
          .type = (vkft_bnb4_type)type, .blocksize = bs, .numel = n, .packed = packed};
      memcpy(w.code, code, sizeof code);
      vkft_bnb4_dequantize(&w, absmax, back);
      for (int64_t i = 0; i < n; i++) {
        int c = i % 2 ? packed[i / 2] & 15 : packed[i / 2] >> 4;
        bad += bits_of(back[i]) != bits_of(code[c] * absmax[i / bs]);
      }
      CHECKF(!bad, "%s block size %d: %d mismatches", type ? "fp4" : "nf4", bs, bad);
      free(x), free(absmax), free(back), free(packed);
    }
  }
}

/* The AVX2 build of the block loops and the portable one give the same bytes. */
static void simd_paths_agree(void) {
  enum { N = 3 * 4096 + 1001 };
  float *x = malloc(N * 4), absmax[2][N / 32 + 1];
  uint8_t *packed[2] = {malloc(N / 2 + 1), malloc(N / 2 + 1)};
  for (int i = 0; i < N; i++) x[i] = uniform() * (i % 97 ? 1.0f : 1e-39f);
  x[5] = NAN, x[77] = -INFINITY;
  int bad = 0;
  for (int type = VKFT_BNB4_NF4; type <= VKFT_BNB4_FP4; type++)
    for (int bs = 32; bs <= 4096; bs *= 2) {
      for (int generic = 0; generic < 2; generic++) {
        vkft_setenv("VKFT_QUANT_GENERIC", generic ? "1" : NULL);
        vkft_bnb4_quantize((vkft_bnb4_type)type, bs, VKFT_F32, x, N, packed[generic],
                           absmax[generic]);
      }
      bad += memcmp(packed[0], packed[1], N / 2 + 1) != 0;
      bad += memcmp(absmax[0], absmax[1], (size_t)(N + bs - 1) / bs * 4) != 0;
    }
  vkft_setenv("VKFT_QUANT_GENERIC", NULL);
  CHECKF(!bad, "%d block sizes differ between the SIMD and portable loops", bad);
  free(x), free(packed[0]), free(packed[1]);
}

/* ---- 8-bit and double quantization ---- */

static void double_quant(void) {
  float dyn[256], absmax[4];
  vkft_bnb_dynamic_map(dyn);
  /* dQuantize's binary search ends on an even pivot, so a midpoint goes to the even index */
  float src[6] = {1.0f, (dyn[128] + dyn[129]) * 0.5f, (dyn[129] + dyn[130]) * 0.5f, dyn[200], -1.0f,
                  NAN};
  uint8_t q6[6];
  vkft_bnb8_quantize(dyn, 256, src, 6, q6, absmax);
  CHECK(absmax[0] == 1.0f && q6[0] == 255 && q6[1] == 128 && q6[2] == 130 && q6[3] == 200);
  CHECK(q6[4] == 0 && q6[5] == 0);
  /* the offset is the mean in double, rounded once: {2^24, 1, 1, 1} -> 4194304.75 -> 4194305
   * (a float32 running sum would lose the ones and give 4194304) */
  float big[4] = {16777216.0f, 1.0f, 1.0f, 1.0f};
  CHECK(vkft_bnb_absmax_offset(big, 4) == 4194305.0f);
  /* hand-built nested scales: code[q] * nested + offset, rounded after each step */
  uint8_t hand_q[4] = {0, 127, 255, 128};
  float nested = 2.0f;
  vkft_bnb4_decode_absmax(hand_q, 4, &nested, 256, dyn, 0.5f, absmax);
  CHECK(absmax[0] == -0.992968738079071f * 2 + 0.5f && absmax[1] == 0.5f && absmax[2] == 2.5f);
  CHECK(absmax[3] == 5.500000384017767e-07f * 2 + 0.5f);
  /* a round trip stays within half the largest gap of the map times the block's scale */
  enum { BLOCKS = 1000 };
  float scales[BLOCKS], back[BLOCKS], nested_absmax[4];
  uint8_t codes[BLOCKS];
  for (int i = 0; i < BLOCKS; i++) scales[i] = 0.02f + 0.01f * uniform();
  float offset = vkft_bnb_absmax_offset(scales, BLOCKS);
  vkft_bnb_double_quant(scales, BLOCKS, offset, codes, nested_absmax);
  vkft_bnb4_decode_absmax(codes, BLOCKS, nested_absmax, 256, dyn, offset, back);
  float gap = 0;
  for (int i = 1; i < 256; i++) gap = fmaxf(gap, dyn[i] - dyn[i - 1]);
  CHECK(gap > 0.014f && gap < 0.0141f); /* 0.9 / 64: the spacing of the widest exponent */
  int bad = 0;
  for (int i = 0; i < BLOCKS; i++)
    bad += fabsf(back[i] - scales[i]) > nested_absmax[i / 256] * (gap / 2 + 1e-6f) + 1e-9f;
  CHECKF(!bad, "%d nested scales off", bad);
}

/* ---- dequantization of hand-built blocks ---- */

static void dequantize_hand_built(void) {
  uint8_t packed[2] = {0x0f, 0x78};
  float absmax = 2.0f, out[4];
  vkft_bnb4_weight w = {.type = VKFT_BNB4_NF4, .blocksize = 32, .numel = 4, .packed = packed};
  vkft_bnb4_code(VKFT_BNB4_NF4, w.code);
  vkft_bnb4_dequantize(&w, &absmax, out);
  CHECK(out[0] == -2.0f && out[1] == 2.0f && bits_of(out[2]) == 0 &&
        out[3] == 0.07958029955625534f * 2);
  uint8_t fp4[2] = {0x3b, 0x81};
  w = (vkft_bnb4_weight){.type = VKFT_BNB4_FP4, .blocksize = 32, .numel = 3, .packed = fp4};
  vkft_bnb4_code(VKFT_BNB4_FP4, w.code);
  vkft_bnb4_dequantize(&w, &absmax, out);
  CHECK(out[0] == 2.0f && out[1] == -2.0f && bits_of(out[2]) == 0x80000000u); /* -0.0 */
}

/* ---- quant_state JSON, config.json ---- */

static void json_forms(void) {
  int64_t shape[2] = {4096, 11008};
  vkft_bnb4_weight w = {.type = VKFT_BNB4_NF4, .blocksize = 64, .rank = 2, .dtype = VKFT_BF16};
  memcpy(w.shape, shape, sizeof shape);
  char *json = vkft_bnb4_quant_state_json(&w);
  CHECKF(json && !strcmp(json, "{\"quant_type\": \"nf4\", \"blocksize\": 64, \"dtype\": "
                               "\"bfloat16\", \"shape\": [4096, 11008]}"),
         "%s", json);
  free(json);
  w = (vkft_bnb4_weight){.type = VKFT_BNB4_FP4,
                         .blocksize = 128,
                         .rank = 1,
                         .dtype = VKFT_F32,
                         .nested = 1,
                         .nested_blocksize = 256,
                         .offset = 0.1f};
  w.shape[0] = 7;
  json = vkft_bnb4_quant_state_json(&w);
  /* offset.item() is the float32 0.1 widened to a double: repr 0.10000000149011612 */
  CHECKF(json && !strcmp(json, "{\"quant_type\": \"fp4\", \"blocksize\": 128, \"dtype\": "
                               "\"float32\", \"shape\": [7], \"nested_blocksize\": 256, "
                               "\"nested_dtype\": \"float32\", \"nested_offset\": "
                               "0.10000000149011612}"),
         "%s", json);
  free(json);
  /* Python's repr of floats, as json.dumps writes them */
  static const struct {
    double v;
    const char *repr;
  } reprs[] = {{100.0, "100.0"},     {500000.0, "500000.0"},
               {1e-05, "1e-05"},     {0.0001, "0.0001"},
               {1e16, "1e+16"},      {123456789.0, "123456789.0"},
               {6.0, "6.0"},         {-0.0, "-0.0"},
               {1.5e-07, "1.5e-07"}, {0.02, "0.02"},
               {1e22, "1e+22"},      {12345678901234567890.0, "1.2345678901234567e+19"}};
  for (size_t i = 0; i < sizeof reprs / sizeof reprs[0]; i++) {
    cJSON *f = vkft_json_float(reprs[i].v);
    CHECKF(f && !strcmp(f->valuestring, reprs[i].repr), "%s vs %s", f ? f->valuestring : "",
           reprs[i].repr);
    cJSON_Delete(f);
  }
}

static void write_text(const char *path, const char *text) {
  CHECK(vkft_file_write_atomic(path, text, strlen(text)) == VKFT_OK);
}

static void inspect_configs(void) {
  vkft_quant_info info;
  write_text(TMP "/config.json", "{\"model_type\": \"llama\"}");
  CHECK(vkft_quant_inspect(TMP, &info) == VKFT_OK && info.kind == VKFT_QUANT_NONE);
  write_text(TMP "/config.json",
             "{\"quantization_config\": {\"quant_method\": \"bitsandbytes\", \"load_in_4bit\": "
             "true, \"bnb_4bit_quant_type\": \"nf4\", \"bnb_4bit_use_double_quant\": true, "
             "\"bnb_4bit_compute_dtype\": \"bfloat16\"}}");
  CHECK(vkft_quant_inspect(TMP, &info) == VKFT_OK && info.kind == VKFT_QUANT_BNB4 &&
        info.type == VKFT_BNB4_NF4 && info.double_quant &&
        !strcmp(info.compute_dtype, "bfloat16") && !strcmp(info.quant_storage, "uint8"));
  /* no quant_method (older configs) and no quant type: bitsandbytes' default, fp4 */
  write_text(TMP "/config.json", "{\"quantization_config\": {\"load_in_4bit\": true}}");
  CHECK(vkft_quant_inspect(TMP, &info) == VKFT_OK && info.type == VKFT_BNB4_FP4 &&
        !info.double_quant && !strcmp(info.compute_dtype, "float32"));
  static const struct {
    const char *config, *says;
    vkft_errcode code;
  } refused[] = {
      {"{\"quantization_config\": {\"quant_method\": \"bitsandbytes\", \"load_in_8bit\": true}}",
       "8-bit bitsandbytes (load_in_8bit)", VKFT_ERR_UNSUPPORTED},
      {"{\"quantization_config\": {\"quant_method\": \"gptq\", \"bits\": 4}}", "\"gptq\"",
       VKFT_ERR_UNSUPPORTED},
      {"{\"quantization_config\": {\"quant_method\": \"awq\", \"bits\": 4}}", "\"awq\"",
       VKFT_ERR_UNSUPPORTED},
      {"{\"quantization_config\": {\"quant_method\": \"fp8\"}}", "\"fp8\"", VKFT_ERR_UNSUPPORTED},
      {"{\"quantization_config\": {\"bits\": 4}}", "no quant_method", VKFT_ERR_INPUT},
      {"{\"quantization_config\": {\"quant_method\": \"bitsandbytes\", \"load_in_4bit\": true, "
       "\"bnb_4bit_quant_type\": \"int4\"}}",
       "bnb_4bit_quant_type", VKFT_ERR_UNSUPPORTED},
  };
  for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
    write_text(TMP "/config.json", refused[i].config);
    CHECKF(vkft_quant_inspect(TMP, &info) == VKFT_ERR && vkft_error_code() == refused[i].code &&
               strstr(vkft_error_message(), refused[i].says) &&
               strstr(vkft_error_message(), "config.json") && !strchr(vkft_error_message(), '\n'),
           "%s", vkft_error_message());
  }
}

/* ---- checkpoints ---- */

typedef struct sample {
  const char *name;
  vkft_bnb4_type type;
  int blocksize, double_quant, rank;
  int64_t shape[2];
  uint16_t *bf16;
  vkft_bnb4_weight w;
  char *json;
} sample;

static void make_sample(sample *s) {
  int64_t n = s->shape[0] * (s->rank == 2 ? s->shape[1] : 1);
  s->bf16 = malloc((size_t)n * 2);
  for (int64_t i = 0; i < n; i++) s->bf16[i] = vkft_f32_to_bf16(0.05f * (uniform() + uniform()));
  CHECK(vkft_bnb4_weight_quantize(s->type, s->blocksize, s->double_quant, VKFT_BF16, s->bf16,
                                  s->rank, s->shape, &s->w) == VKFT_OK);
  s->json = vkft_bnb4_quant_state_json(&s->w);
}

/* Writes the samples' tensors (and a plain norm weight) as one file, then edits: skip drops the
 * tensor with that suffix of samples[0], bad_json replaces its quant_state. */
static int write_samples(const char *path, sample *samples, int count, const char *skip,
                         const char *bad_json, const float *bad_map) {
  static const float norm[8] = {1, 1, 1, 1, 1, 1, 1, 1};
  vkft_st_writer *w;
  CHECK(vkft_st_writer_create(&w) == VKFT_OK);
  vkft_st_writer_add(w, "model.norm.weight", VKFT_F32, 1, (int64_t[]){8}, norm);
  vkft_st_writer_meta(w, "format", "pt");
  vkft_bnb4_weight copies[4]; /* the writer keeps pointers into them until it saves */
  for (int i = 0; i < count; i++) {
    vkft_bnb4_weight *copy = &copies[i];
    *copy = samples[i].w;
    if (i == 0 && bad_map) memcpy(copy->quant_map, bad_map, sizeof copy->quant_map);
    const char *json = i == 0 && bad_json ? bad_json : samples[i].json;
    if (i == 0 && skip) {
      /* every tensor but the skipped one, by hand (samples[0] is not double-quantized) */
      char key[256];
      snprintf(key, sizeof key, "%s.absmax", samples[0].name);
      if (strcmp(skip, ".absmax"))
        vkft_st_writer_add_raw(w, key, VKFT_ST_F32, 1, (int64_t[]){copy->blocks}, copy->absmax);
      snprintf(key, sizeof key, "%s.quant_map", samples[0].name);
      if (strcmp(skip, ".quant_map"))
        vkft_st_writer_add_raw(w, key, VKFT_ST_F32, 1, (int64_t[]){16}, copy->quant_map);
      snprintf(key, sizeof key, "%s.quant_state.bitsandbytes__nf4", samples[0].name);
      vkft_st_writer_add_raw(w, key, VKFT_ST_U8, 1, (int64_t[]){(int64_t)strlen(json)}, json);
      vkft_st_writer_add_raw(w, samples[0].name, VKFT_ST_U8, 2,
                             (int64_t[]){(copy->numel + 1) / 2, 1}, copy->packed);
      continue;
    }
    CHECK(vkft_bnb4_writer_add(w, samples[i].name, copy, json) == VKFT_OK);
  }
  int status = vkft_st_writer_save(w, path);
  vkft_st_writer_free(w);
  return status;
}

static void check_same_weight(const vkft_bnb4_weight *a, const vkft_bnb4_weight *b) {
  CHECK(a->type == b->type && a->blocksize == b->blocksize && a->rank == b->rank &&
        a->numel == b->numel && a->blocks == b->blocks && a->dtype == b->dtype &&
        a->nested == b->nested);
  CHECK(!memcmp(a->shape, b->shape, (size_t)a->rank * sizeof a->shape[0]));
  CHECK(!memcmp(a->packed, b->packed, (size_t)(a->numel + 1) / 2));
  float *sa = malloc((size_t)a->blocks * 4), *sb = malloc((size_t)b->blocks * 4);
  vkft_bnb4_weight_absmax(a, sa);
  vkft_bnb4_weight_absmax(b, sb);
  CHECK(!memcmp(sa, sb, (size_t)a->blocks * 4));
  if (a->nested)
    CHECK(a->offset == b->offset && !memcmp(a->absmax_q, b->absmax_q, (size_t)a->blocks) &&
          !memcmp(a->nested_code, b->nested_code, 1024));
  float *da = malloc((size_t)a->numel * 4), *db = malloc((size_t)b->numel * 4);
  vkft_bnb4_dequantize(a, sa, da);
  vkft_bnb4_dequantize(b, sb, db);
  CHECK(!memcmp(da, db, (size_t)a->numel * 4));
  free(sa), free(sb), free(da), free(db);
}

static void checkpoints(void) {
  sample samples[3] = {
      {.name = "a.weight", .type = VKFT_BNB4_NF4, .blocksize = 64, .rank = 2, .shape = {96, 80}},
      {.name = "b.weight",
       .type = VKFT_BNB4_FP4,
       .blocksize = 128,
       .double_quant = 1,
       .rank = 2,
       .shape = {96, 80}},
      {.name = "c.weight",
       .type = VKFT_BNB4_NF4,
       .blocksize = 32,
       .double_quant = 1,
       .rank = 2,
       .shape = {33, 3}}, /* odd: 99 values */
  };
  for (int i = 0; i < 3; i++) make_sample(&samples[i]);
  const char *path = TMP "/ckpt.safetensors";
  CHECK(write_samples(path, samples, 3, NULL, NULL, NULL) == VKFT_OK);
  check_safetensors_order(path);
  vkft_st_set *set;
  CHECKF(vkft_st_open(path, &set) == VKFT_OK, "%s", vkft_error_message());
  const vkft_st_tensor *t = vkft_st_find(set, "b.weight");
  CHECK(t && t->dtype == VKFT_ST_U8 && t->rank == 2 && t->shape[0] == 3840 && t->shape[1] == 1);
  t = vkft_st_find(set, "b.weight.absmax");
  CHECK(t && t->dtype == VKFT_ST_U8 && t->rank == 1 && t->shape[0] == 60);
  t = vkft_st_find(set, "a.weight.absmax");
  CHECK(t && t->dtype == VKFT_ST_F32 && t->shape[0] == 120);
  t = vkft_st_find(set, "b.weight.nested_absmax");
  CHECK(t && t->dtype == VKFT_ST_F32 && t->shape[0] == 1);
  t = vkft_st_find(set, "b.weight.nested_quant_map");
  CHECK(t && t->dtype == VKFT_ST_F32 && t->shape[0] == 256);
  t = vkft_st_find(set, "c.weight");
  CHECK(t && t->shape[0] == 50);
  t = vkft_st_find(set, "a.weight.quant_state.bitsandbytes__nf4");
  CHECK(t && t->dtype == VKFT_ST_U8 && t->size == strlen(samples[0].json) &&
        !memcmp(t->data, samples[0].json, t->size));
  CHECK(!vkft_st_find(set, "a.weight.nested_absmax") && vkft_st_count(set) == 1 + 4 + 6 + 6);
  CHECK(vkft_bnb4_is_quantized(set, "b.weight") &&
        !vkft_bnb4_is_quantized(set, "model.norm.weight"));
  for (int i = 0; i < 3; i++) {
    vkft_bnb4_weight back;
    int read = vkft_bnb4_read(set, samples[i].name, &back);
    CHECKF(read == VKFT_OK, "%s", vkft_error_message());
    if (read == VKFT_OK) check_same_weight(&samples[i].w, &back);
    vkft_bnb4_weight_free(&back);
  }
  vkft_bnb4_weight none;
  CHECK_ERR(vkft_bnb4_read(set, "model.norm.weight", &none), VKFT_ERR_INPUT,
            "not a bitsandbytes 4-bit weight");
  vkft_st_close(set);

  /* damaged checkpoints: one line naming the file and the tensor */
  float bad_map[16];
  vkft_bnb4_quant_map(VKFT_BNB4_NF4, bad_map);
  bad_map[3] = 0.25f;
  static const struct {
    const char *skip, *json;
    int map;
    const char *says;
  } damaged[] = {
      {".absmax", NULL, 0, "\"a.weight.absmax\" is missing"},
      {".quant_map", NULL, 0, "\"a.weight.quant_map\" is missing"},
      {NULL, NULL, 1, "\"a.weight.quant_map\"[3]"},
      {NULL,
       "{\"quant_type\": \"fp4\", \"blocksize\": 64, \"dtype\": \"bfloat16\", "
       "\"shape\": [96, 80]}",
       0, "quant_type is not \"nf4\""},
      {NULL,
       "{\"quant_type\": \"nf4\", \"blocksize\": 64, \"dtype\": \"bfloat16\", "
       "\"shape\": [96, 81]}",
       0, "\"a.weight\" is U8"},
      {NULL,
       "{\"quant_type\": \"nf4\", \"blocksize\": 48, \"dtype\": \"bfloat16\", "
       "\"shape\": [96, 80]}",
       0, "blocksize 48"},
      {NULL,
       "{\"quant_type\": \"nf4\", \"blocksize\": 64, \"dtype\": \"int8\", "
       "\"shape\": [96, 80]}",
       0, "dtype"},
      {NULL, "{not json", 0, "JSON object"},
  };
  for (size_t i = 0; i < sizeof damaged / sizeof damaged[0]; i++) {
    CHECK(write_samples(path, samples, 1, damaged[i].skip, damaged[i].json,
                        damaged[i].map ? bad_map : NULL) == VKFT_OK);
    CHECK(vkft_st_open(path, &set) == VKFT_OK);
    vkft_bnb4_weight w;
    CHECKF(vkft_bnb4_read(set, "a.weight", &w) == VKFT_ERR && vkft_error_code() == VKFT_ERR_INPUT &&
               strstr(vkft_error_message(), damaged[i].says) &&
               strstr(vkft_error_message(), "ckpt.safetensors") &&
               !strchr(vkft_error_message(), '\n'),
           "case %zu: %s", i, vkft_error_message());
    vkft_st_close(set);
  }
  for (int i = 0; i < 3; i++) {
    vkft_bnb4_weight_free(&samples[i].w);
    free(samples[i].bf16);
    free(samples[i].json);
  }
}

/* ---- vkft quantize ---- */

int main(void) {
  vkft_remove_tree(TMP);
  CHECK(vkft_mkdirs(TMP) == VKFT_OK);
  code_tables();
  special_blocks();
  every_block_size();
  simd_paths_agree();
  double_quant();
  dequantize_hand_built();
  json_forms();
  inspect_configs();
  checkpoints();
  vkft_remove_tree(TMP);
  return check_summary();
}
