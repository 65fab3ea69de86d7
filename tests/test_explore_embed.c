/* The embeddings of `vkft data explore` (vkft_model_forward_pooled) on the bundled stories260K,
 * on the Vulkan device and the C reference backend: the pooled vector is the state after the
 * final norm (each token's row, taken with a one-hot weight, has RMS 1 once divided by the
 * norm's weight), mean pooling equals the mean of those rows, two slots pooled in one stream
 * each equal the slot pooled alone (the shared activations are not mixed up), and the two
 * backends agree. */
#include "backends.h"
#include "check.h"

#include "vkft/error.h"
#include "vkft/model.h"
#include "vkft/vk.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define STORIES VKFT_SOURCE_DIR "/models/stories260K"
enum { CAP = 16, C_MAX = 512 };
static int64_t hidden; /* C of the model */

/* pooled[slot] for weights w (2, CAP), recorded in one stream */
static int pool(vkft_backend *be, vkft_model *m, vkft_tensor *wt, vkft_tensor *out, const float *w,
                int slots, int64_t C, float *pooled) {
  vkft_tensor ws = vkft_tensor_view(wt, 0, 2 * CAP);
  if (vkft_tensor_write(be, &ws, w) || vkft_begin(be)) return VKFT_ERR;
  int status = VKFT_OK;
  for (int s = 0; s < slots && status == VKFT_OK; s++) {
    vkft_tensor wv = vkft_tensor_view(wt, s * CAP, CAP), ov = vkft_tensor_view(out, s * C, C);
    status = vkft_model_forward_pooled(m, s, &wv, &ov);
  }
  if (vkft_end(be)) status = VKFT_ERR;
  vkft_tensor os = vkft_tensor_view(out, 0, slots * C);
  return status || vkft_tensor_read(be, &os, pooled);
}

/* the pooled means of two sequences (lengths 7 and 12) into mean (2, C); checks as above */
static void embed_checks(vkft_backend *be, const char *name, float *mean) {
  vkft_model *m;
  vkft_model_desc md = {.dir = STORIES, .max_tokens = CAP, .micro_batches = 2};
  if (vkft_model_load(be, &md, &m) != VKFT_OK) {
    CHECKF(0, "%s: %s", name, vkft_error_message());
    return;
  }
  int64_t C = vkft_model_get_config(m)->hidden_size, T[2] = {7, 12};
  hidden = C;
  int32_t ids[2][CAP], labels[CAP], pos[CAP], seq[CAP];
  for (int t = 0; t < CAP; t++) {
    ids[0][t] = 1 + (t * 37) % 300, ids[1][t] = 1 + (t * 91 + 5) % 400;
    labels[t] = -100, pos[t] = t, seq[t] = 0;
  }
  for (int s = 0; s < 2; s++)
    CHECK(vkft_model_set_batch(m, s, &(vkft_model_batch){T[s], ids[s], labels, pos, seq}) == 0);
  /* the final norm's weight */
  vkft_param *params;
  int count;
  vkft_model_params(m, &params, &count);
  float norm_w[C_MAX];
  int found = 0;
  for (int p = 0; p < count; p++)
    if (!strcmp(params[p].name, "model.norm.weight"))
      found = vkft_tensor_read_f32(be, params[p].value, norm_w) == VKFT_OK;
  CHECKF(found, "%s: model.norm.weight", name);
  vkft_tensor wt, out;
  CHECK(C <= C_MAX && vkft_tensor_alloc(be, VKFT_F32, 2 * CAP, &wt) == VKFT_OK &&
        vkft_tensor_alloc(be, VKFT_F32, 2 * C, &out) == VKFT_OK);
  float w[2 * CAP] = {0}, both[2 * C_MAX], alone[C_MAX], row[C_MAX];
  for (int s = 0; s < 2; s++)
    for (int t = 0; t < T[s]; t++) w[s * CAP + t] = 1.0f / (float)T[s];
  CHECK(pool(be, m, &wt, &out, w, 2, C, both) == VKFT_OK);
  memcpy(mean, both, (size_t)(2 * C) * sizeof *mean);
  /* slot 1 alone (weights of slot 1 put in place of slot 0's view: pool only the 2nd slot) */
  float w1[2 * CAP] = {0};
  memcpy(w1 + CAP, w + CAP, CAP * sizeof *w1);
  vkft_tensor ws = vkft_tensor_view(&wt, 0, 2 * CAP);
  vkft_tensor wv = vkft_tensor_view(&wt, CAP, CAP), ov = vkft_tensor_view(&out, 0, C);
  CHECK(vkft_tensor_write(be, &ws, w1) == 0 && vkft_begin(be) == 0 &&
        vkft_model_forward_pooled(m, 1, &wv, &ov) == 0 && vkft_end(be) == 0 &&
        vkft_tensor_read(be, &ov, alone) == 0);
  CHECKF(!memcmp(alone, both + C, (size_t)C * sizeof *alone), "%s: slot 1 alone differs", name);
  /* one-hot weights: each row of slot 0 is a normalised state; their mean is the pooled mean */
  double worst_rms = 0, worst_mean = 0, sum[C_MAX] = {0};
  for (int t = 0; t < T[0]; t++) {
    float onehot[2 * CAP] = {0};
    onehot[t] = 1;
    CHECK(pool(be, m, &wt, &out, onehot, 1, C, row) == VKFT_OK);
    double ms = 0;
    for (int64_t c = 0; c < C; c++) {
      ms += (double)(row[c] / norm_w[c]) * (row[c] / norm_w[c]);
      sum[c] += row[c];
    }
    worst_rms = fmax(worst_rms, fabs(sqrt(ms / (double)C) - 1));
  }
  for (int64_t c = 0; c < C; c++)
    worst_mean = fmax(worst_mean, fabs(sum[c] / T[0] - mean[c]) / (fabs(mean[c]) + 1e-3));
  /* RMSNorm's eps (1e-5 against a mean square of order 1) moves the RMS by ~5e-6 */
  CHECKF(worst_rms < 1e-4, "%s: a row's RMS after the norm is off 1 by %g", name, worst_rms);
  CHECKF(worst_mean < 1e-4, "%s: the pooled mean is off the rows' mean by %g", name, worst_mean);
  vkft_tensor_free(be, &wt);
  vkft_tensor_free(be, &out);
  vkft_model_free(m);
}

int main(void) {
  vkft_device *dev;
  vkft_backend *vk, *ref;
  if (!open_backends("test_explore_embed", &dev, &vk, &ref)) return 1;
  static float on_vk[2 * C_MAX], on_ref[2 * C_MAX];
  embed_checks(vk, "vulkan", on_vk);
  embed_checks(ref, "reference", on_ref);
  double worst = 0;
  for (int64_t q = 0; q < 2 * hidden; q++) worst = fmax(worst, fabs(on_vk[q] - on_ref[q]));
  /* fp32 throughout on both: agreement to float rounding of a few layers' sums */
  CHECKF(worst < 1e-4, "vulkan and reference pooled states differ by %g", worst);
  CHECKF(vkft_device_validation_errors(dev) == 0, "%d validation messages",
         vkft_device_validation_errors(dev));
  vkft_backend_destroy(vk);
  vkft_backend_destroy(ref);
  vkft_device_destroy(dev);
  return check_summary();
}
