/* rope on both backends (shaders/rope.comp, src/ref/rope.c), and the host-side frequency table:
 * transformers' inverse frequencies (default and llama3 scaling), each also as a 64-bit
 * fixed-point rotation per position for the shader. */
#include "core_util.h"

#include <math.h>
#include <string.h>

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

int vkft_rope_inv_freq(const vkft_rope_config *cfg, int64_t D, float *inv_freq) {
  if (D <= 0 || D % 2) return vkft_error("rope: head dimension %lld is not even", (long long)D);
  if (!(cfg->theta > 0)) return vkft_error("rope: rope_theta must be positive");
  double low_wavelen = 0, high_wavelen = 0;
  if (cfg->llama3) {
    if (!(cfg->factor > 0) || !(cfg->original_max_position_embeddings > 0) ||
        !(cfg->low_freq_factor > 0) || !(cfg->high_freq_factor > cfg->low_freq_factor))
      return vkft_error("rope: llama3 scaling needs factor > 0, original_max_position_embeddings "
                        "> 0 and high_freq_factor > low_freq_factor > 0");
    low_wavelen = cfg->original_max_position_embeddings / cfg->low_freq_factor;
    high_wavelen = cfg->original_max_position_embeddings / cfg->high_freq_factor;
  }
  for (int64_t i = 0; i < D / 2; i++) {
    /* _compute_default_rope_parameters: 1 / base^(arange(0, dim, 2) / dim) */
    double f = 1.0 / pow(cfg->theta, (double)(2 * i) / (double)D);
    if (cfg->llama3) { /* _compute_llama3_parameters */
      double wavelen = 2 * M_PI / f;
      if (wavelen > low_wavelen) {
        f = f / cfg->factor;
      } else if (!(wavelen < high_wavelen)) {
        double smooth = (cfg->original_max_position_embeddings / wavelen - cfg->low_freq_factor) /
                        (cfg->high_freq_factor - cfg->low_freq_factor);
        f = (1 - smooth) * f / cfg->factor + smooth * f;
      }
    }
    inv_freq[i] = (float)f;
  }
  return VKFT_OK;
}

int64_t vkft_rope_freqs_len(int64_t D) {
  return 3 * (D / 2);
}

/* Layout: D/2 uint64 rotations per position (fraction of a turn * 2^64, as little-endian
 * pairs of int32), then the D/2 fp32 inverse frequencies (the reference's input). The
 * rotation is computed in double from the fp32 frequency: relative error 2^-52, so 2^-34 turns
 * at position 2^20 for the fastest pair. */
int vkft_rope_freqs(const vkft_rope_config *cfg, int64_t D, int32_t *freqs) {
  int64_t half = D / 2;
  float *inv_freq = (float *)(freqs + 2 * half);
  if (vkft_rope_inv_freq(cfg, D, inv_freq)) return VKFT_ERR;
  for (int64_t i = 0; i < half; i++) {
    double turns = (double)inv_freq[i] / (2 * M_PI);
    turns -= floor(turns);
    double scaled = ldexp(turns, 64);
    uint64_t fixed = scaled >= 18446744073709551615.0 ? 0 : (uint64_t)scaled; /* 1 turn == 0 */
    uint32_t lo = (uint32_t)fixed, hi = (uint32_t)(fixed >> 32);
    memcpy(&freqs[2 * i], &lo, 4);
    memcpy(&freqs[2 * i + 1], &hi, 4);
  }
  return VKFT_OK;
}

static int rope_run(vkft_backend *be, const char *op, const vkft_tensor *x, vkft_tensor *out,
                    const vkft_tensor *pos, const vkft_tensor *freqs, int64_t T, int64_t H,
                    int64_t D, int inverse) {
  if (T <= 0 || H <= 0 || D <= 0 || D % 2)
    return vkft_error("%s: bad shape T=%lld H=%lld D=%lld (D must be even)", op, (long long)T,
                      (long long)H, (long long)D);
  int64_t n = T * H * D, half = D / 2;
  if (op_check(op, "x", x, n, DT(VKFT_F32)) || op_check(op, "out", out, n, DT(VKFT_F32)) ||
      op_check(op, "positions", pos, T, DT(VKFT_I32)) ||
      op_check(op, "freqs", freqs, vkft_rope_freqs_len(D), DT(VKFT_I32)))
    return VKFT_ERR;
  if (!be->dev) {
    vkft_ref_rope_f32(x->host, out->host, pos->host, (const float *)freqs->host + 2 * half, T, H, D,
                      inverse);
    return VKFT_OK;
  }
  int vec = D % 8 == 0 && core_aligned(x, 16) && core_aligned(out, 16);
  uint64_t invocations = (uint64_t)T * (uint64_t)(half / (vec ? 4 : 1));
  if (invocations >= ((uint64_t)1 << 32) - 64 || H > UINT32_MAX || D > UINT32_MAX)
    return vkft_error("%s: shape too large", op);
  struct {
    uint64_t x, out, pos, turns;
    uint32_t T, H, D, inverse, vec;
  } push = {x->buf.addr, out->buf.addr, pos->buf.addr,     freqs->buf.addr, (uint32_t)T,
            (uint32_t)H, (uint32_t)D,   (uint32_t)inverse, (uint32_t)vec};
  vkft_dispatch_desc d = {.shader = "rope",
                          .push = &push,
                          .push_size = sizeof push,
                          .reads = {{x->buf.addr, (uint64_t)n * 4},
                                    {pos->buf.addr, (uint64_t)T * 4},
                                    {freqs->buf.addr, (uint64_t)half * 8}},
                          .read_count = 3,
                          .writes = {{out->buf.addr, (uint64_t)n * 4}},
                          .write_count = 1};
  if (core_grid(be, op, (invocations + 63) / 64, d.groups)) return VKFT_ERR;
  return vkft_stream_dispatch(be->dev, &d);
}

int vkft_rope(vkft_backend *be, const vkft_tensor *x, vkft_tensor *out, const vkft_tensor *pos,
              const vkft_tensor *freqs, int64_t T, int64_t H, int64_t D) {
  return rope_run(be, "rope", x, out, pos, freqs, T, H, D, 0);
}

int vkft_rope_bwd(vkft_backend *be, const vkft_tensor *dout, vkft_tensor *dx,
                  const vkft_tensor *pos, const vkft_tensor *freqs, int64_t T, int64_t H,
                  int64_t D) {
  return rope_run(be, "rope_bwd", dout, dx, pos, freqs, T, H, D, 1);
}
