/* ggml block types: quantization byte for byte against blocks made by ggml's own reference
 * quantizers, dequantization value for value against ggml's dequantizers on those blocks, and
 * dequantization of blocks built by hand from the layout description (every field of each
 * block type, the 6-bit scale packing of Q4_K/Q5_K and the split 6-bit quants of Q6_K).
 * Fixtures: tests/data/ggml_quants (README.md says how they were made). Runs in < 0.1 s. */
#include "check.h"

#include "vkft/ggml_quants.h"
#include "vkft/platform.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define FIXTURES VKFT_SOURCE_DIR "/tests/data/ggml_quants"
#define N_INPUT (24 * 256)

static void *read_fixture(const char *name, size_t expect_size) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", FIXTURES, name);
  char *data = NULL;
  size_t size = 0;
  if (vkft_file_read(path, &data, &size) != 0 || size != expect_size) {
    CHECKF(0, "fixture %s: missing or %zu bytes (expected %zu)", path, size, expect_size);
    free(data);
    return NULL;
  }
  return data;
}

static const struct {
  vkft_ggml_type type;
  const char *blocks, *dequant;
} fixtures[] = {
    {VKFT_GGML_Q8_0, "q8_0.bin", "q8_0.dequant.f32"},
    {VKFT_GGML_Q4_0, "q4_0.bin", "q4_0.dequant.f32"},
    {VKFT_GGML_Q5_0, "q5_0.bin", "q5_0.dequant.f32"},
    {VKFT_GGML_Q4_K, "q4_k.bin", "q4_k.dequant.f32"},
    {VKFT_GGML_Q5_K, "q5_k.bin", "q5_k.dequant.f32"},
    {VKFT_GGML_Q6_K, "q6_k.bin", "q6_k.dequant.f32"},
};

static void test_against_ggml(void) {
  float *input = read_fixture("input.f32", N_INPUT * sizeof(float));
  if (!input) return;
  for (size_t f = 0; f < sizeof fixtures / sizeof fixtures[0]; f++) {
    vkft_ggml_type t = fixtures[f].type;
    size_t bytes = (size_t)vkft_ggml_row_size(t, N_INPUT);
    uint8_t *expect = read_fixture(fixtures[f].blocks, bytes);
    float *expect_f32 = read_fixture(fixtures[f].dequant, N_INPUT * sizeof(float));
    uint8_t *got = malloc(bytes);
    float *got_f32 = malloc(N_INPUT * sizeof(float));
    if (expect && expect_f32 && got && got_f32) {
      CHECK(vkft_ggml_quantize_row(t, input, got, N_INPUT) == 0);
      size_t block_bytes = vkft_ggml_type_size(t), first_diff = bytes;
      for (size_t i = 0; i < bytes && first_diff == bytes; i++)
        if (got[i] != expect[i]) first_diff = i;
      CHECKF(first_diff == bytes,
             "%s: quantized bytes differ from ggml's from byte %zu (block %zu)",
             vkft_ggml_type_name(t), first_diff, first_diff / block_bytes);
      /* dequantize ggml's own blocks: every value bit-identical to ggml's dequantizer */
      CHECK(vkft_ggml_dequantize_row(t, expect, got_f32, N_INPUT) == 0);
      CHECKF(!memcmp(got_f32, expect_f32, N_INPUT * sizeof(float)),
             "%s: dequantized values differ from ggml's", vkft_ggml_type_name(t));
    }
    free(expect), free(expect_f32), free(got), free(got_f32);
  }
  free(input);
}

/* ---- hand-built blocks: bytes placed from the layout description, values from the formula */

static const float half_f = 0.5f, quarter_f = 0.25f;
#define FP16_HALF 0x3800    /* 0.5 */
#define FP16_QUARTER 0x3400 /* 0.25 */

/* Q4_K / Q5_K: sub-block scales and mins with values >= 16 in sub-blocks 4..7 so that the
 * top two bits (kept in scales[0..7]) are exercised; the bytes below were packed by hand:
 *   scales[0..3]  = sc[0..3] | (sc[4..7] >> 4) << 6
 *   scales[4..7]  = m[0..3]  | (m[4..7] >> 4) << 6
 *   scales[8..11] = (sc[4..7] & 15) | (m[4..7] & 15) << 4 */
static const uint8_t k_sc[8] = {1, 17, 33, 63, 5, 20, 42, 63};
static const uint8_t k_m[8] = {0, 3, 60, 16, 63, 1, 32, 48};
static const uint8_t k_packed[12] = {0x01, 0x51, 0xA1, 0xFF, 0xC0, 0x03,
                                     0xBC, 0xD0, 0xF5, 0x14, 0x0A, 0x0F};

static void test_hand_q4_k_q5_k(void) {
  for (int j = 0; j < 8; j++) {
    uint8_t sc, m;
    vkft_ggml_k4_scale_min(k_packed, j, &sc, &m);
    CHECKF(sc == k_sc[j] && m == k_m[j], "sub-block %d: scale %d min %d", j, sc, m);
  }
  vkft_block_q4_K b4;
  vkft_block_q5_K b5;
  memset(&b4, 0, sizeof b4);
  memset(&b5, 0, sizeof b5);
  b4.d = b5.d = FP16_HALF;
  b4.dmin = b5.dmin = FP16_QUARTER;
  memcpy(b4.scales, k_packed, 12);
  memcpy(b5.scales, k_packed, 12);
  int q[256];
  for (int e = 0; e < 256; e++) {
    int j = e / 32, l = e % 32;
    q[e] = (e * 5 + 3) % 32; /* 5 bits for Q5_K; Q4_K takes the low 4 */
    int byte = 32 * (j / 2) + l, shift = j % 2 ? 4 : 0;
    b4.qs[byte] |= (uint8_t)((q[e] & 15) << shift);
    b5.qs[byte] |= (uint8_t)((q[e] & 15) << shift);
    b5.qh[l] |= (uint8_t)((q[e] >> 4) << j);
  }
  float y4[256], y5[256];
  vkft_dequantize_row_q4_K(&b4, y4, 256);
  vkft_dequantize_row_q5_K(&b5, y5, 256);
  int bad4 = 0, bad5 = 0;
  for (int e = 0; e < 256; e++) {
    int j = e / 32;
    bad4 += y4[e] != half_f * k_sc[j] * (q[e] & 15) - quarter_f * k_m[j];
    bad5 += y5[e] != half_f * k_sc[j] * q[e] - quarter_f * k_m[j];
  }
  CHECKF(!bad4, "Q4_K hand block: %d values wrong", bad4);
  CHECKF(!bad5, "Q5_K hand block: %d values wrong", bad5);
  /* two values worked out on paper: element 0 (q 3, sc 1, m 0) and 255 (q 14 / 30, sc 63, m 48) */
  CHECK(y4[0] == 1.5f && y4[255] == 429.0f && y5[255] == 933.0f);
}

/* Q6_K: element e of half h = e / 128 (r = e % 128, k = r / 32, l = r % 32) keeps its low
 * nibble in ql[64h + l + 32 (k & 1)] (low nibble for k < 2, high for k >= 2) and its top two
 * bits in bits 2k, 2k + 1 of qh[32h + l]; the scale of element e is scales[e / 16]. */
static void test_hand_q6_k(void) {
  static const int8_t sc[16] = {-128, -1, 0, 1, 7, 127, -50, 33, 2, -3, 4, -5, 6, -7, 8, 100};
  vkft_block_q6_K b;
  memset(&b, 0, sizeof b);
  b.d = FP16_HALF;
  memcpy(b.scales, sc, 16);
  int q[256];
  for (int e = 0; e < 256; e++) {
    int h = e / 128, r = e % 128, k = r / 32, l = r % 32;
    q[e] = (e * 11 + 7) % 64;
    b.ql[64 * h + l + 32 * (k & 1)] |= (uint8_t)((q[e] & 15) << (k < 2 ? 0 : 4));
    b.qh[32 * h + l] |= (uint8_t)((q[e] >> 4) << (2 * k));
  }
  float y[256];
  vkft_dequantize_row_q6_K(&b, y, 256);
  int bad = 0;
  for (int e = 0; e < 256; e++) bad += y[e] != half_f * sc[e / 16] * (q[e] - 32);
  CHECKF(!bad, "Q6_K hand block: %d values wrong", bad);
  /* element 0: q 7, scale -128 -> 0.5 * -128 * -25 = 1600; element 255: q 60, scale 100 */
  CHECK(y[0] == 1600.0f && y[255] == 1400.0f);
}

static void test_hand_small_blocks(void) {
  vkft_block_q8_0 b8 = {.d = FP16_QUARTER};
  vkft_block_q4_0 b4 = {.d = FP16_HALF};
  vkft_block_q5_0 b5 = {.d = FP16_HALF};
  for (int i = 0; i < 32; i++) b8.qs[i] = (int8_t)(i * 8 - 127);
  /* Q4_0 / Q5_0: element i < 16 in the low nibble of qs[i], i >= 16 in the high nibble of
   * qs[i - 16]; Q5_0's fifth bit of element i is bit i of qh read as a little-endian word */
  int q4[32], q5[32];
  for (int i = 0; i < 32; i++) {
    q4[i] = (i * 7 + 1) % 16;
    q5[i] = (i * 13 + 5) % 32;
    b4.qs[i % 16] |= (uint8_t)(q4[i] << (i < 16 ? 0 : 4));
    b5.qs[i % 16] |= (uint8_t)((q5[i] & 15) << (i < 16 ? 0 : 4));
    b5.qh[i / 8] |= (uint8_t)((q5[i] >> 4) << (i % 8));
  }
  float y8[32], y4[32], y5[32];
  vkft_dequantize_row_q8_0(&b8, y8, 32);
  vkft_dequantize_row_q4_0(&b4, y4, 32);
  vkft_dequantize_row_q5_0(&b5, y5, 32);
  int bad = 0;
  for (int i = 0; i < 32; i++) {
    bad += y8[i] != quarter_f * (i * 8 - 127);
    bad += y4[i] != half_f * (q4[i] - 8);
    bad += y5[i] != half_f * (q5[i] - 16);
  }
  CHECKF(!bad, "Q8_0/Q4_0/Q5_0 hand blocks: %d values wrong", bad);
}

/* quantize -> dequantize stays within each format's step: a sanity bound, the byte tests above
 * are the real check. Bound: half a quantization step of the block (plus the fp16 scale's
 * rounding), taken generously as absmax / levels. */
static void test_round_trip_and_errors(void) {
  enum { N = 4096 };
  static float x[N], y[N];
  static uint8_t buf[N * 4];
  uint64_t s = 7;
  for (int i = 0; i < N; i++) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    x[i] = (float)((double)(s >> 11) / 9007199254740992.0 * 2.0 - 1.0);
  }
  static const struct {
    vkft_ggml_type t;
    double levels;
  } cases[] = {{VKFT_GGML_F32, 1e30}, {VKFT_GGML_F16, 2048}, {VKFT_GGML_BF16, 256},
               {VKFT_GGML_Q8_0, 127}, {VKFT_GGML_Q4_0, 7},   {VKFT_GGML_Q5_0, 15},
               {VKFT_GGML_Q4_K, 7},   {VKFT_GGML_Q5_K, 15},  {VKFT_GGML_Q6_K, 31}};
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    CHECK(vkft_ggml_quantize_row(cases[c].t, x, buf, N) == 0);
    CHECK(vkft_ggml_dequantize_row(cases[c].t, buf, y, N) == 0);
    double worst = 0;
    for (int i = 0; i < N; i++) worst = fmax(worst, fabs((double)x[i] - y[i]));
    CHECKF(worst <= 1.0 / cases[c].levels, "%s: round trip error %g",
           vkft_ggml_type_name(cases[c].t), worst);
  }
  CHECK(vkft_ggml_quantize_row(VKFT_GGML_Q4_K, x, buf, 100) != 0);   /* not a whole block */
  CHECK(vkft_ggml_quantize_row(VKFT_GGML_IQ2_XS, x, buf, 256) != 0); /* not supported */
  CHECK(vkft_ggml_row_size(VKFT_GGML_Q6_K, 512) == 420 &&
        vkft_ggml_row_size(VKFT_GGML_MXFP4, 64) == 34);
  CHECK(vkft_ggml_type_known(30) && !vkft_ggml_type_known(4) && !vkft_ggml_type_known(40));
  CHECK(!strcmp(vkft_ggml_type_name(VKFT_GGML_Q4_K), "Q4_K"));
}

int main(void) {
  test_against_ggml();
  test_hand_q4_k_q5_k();
  test_hand_q6_k();
  test_hand_small_blocks();
  test_round_trip_and_errors();
  return check_summary();
}
