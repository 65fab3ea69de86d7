/* DoRA (lora.use_dora, docs/LORA.md) on tiny random models: the layer's ops on a case worked
 * out by hand; the magnitude's and the factors' gradients against finite differences of the
 * loss on the reference backend (the norm held fixed, as PEFT detaches it), with and without
 * dropout; the Vulkan backend against the reference; the forward at initialisation equal to
 * LoRA's bit for bit (m = ||W|| makes the scale exactly 1) and different once trained; the PEFT
 * keys saved, read back and merged by export (the merged model gives the adapter's logits);
 * what is refused (quantized bases, a GGUF LoRA, an adapter without use_dora). */
#include "backends.h"
#include "check.h"

#include "vkft/error.h"
#include "vkft/export.h"
#include "vkft/model.h"
#include "vkft/platform.h"
#include "vkft/safetensors.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TMP "test_dora.tmp"
#define R 3
#define SCALE 2.0

/* Qwen2-shaped (q/k/v biases, tied embeddings), bf16 weights: the bias stays outside DoRA's
 * scale and the norm reads a 16-bit base */
static const char *const CONFIG =
    "{\"architectures\": [\"Qwen2ForCausalLM\"], \"vocab_size\": 80, \"hidden_size\": 32, "
    "\"intermediate_size\": 44, \"num_hidden_layers\": 2, \"num_attention_heads\": 4, "
    "\"num_key_value_heads\": 2, \"rms_norm_eps\": 1e-6, \"rope_theta\": 1000000.0, "
    "\"tie_word_embeddings\": true}";

static uint64_t rng_state = 99;
static float rnd(void) {
  rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
  return (float)((double)(rng_state >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

/* ---- the ops on a case by hand ----
 * W = [[3, 0], [0, 4]], A = [1, 1] (r = 1), B = [1, 0]^T, s = 1: W + s B A = [[4, 1], [0, 4]],
 * norms sqrt(17) and 4; m = [2, 8] gives the scale [2 / sqrt(17), 2]. x = [1, 2]: x W^T = [3, 8],
 * s B A x = [3, 0], so yd = [6, 8] and y = [12 / sqrt(17), 16]; for dy = [1, 1] the magnitude's
 * gradient dy yd / norm = [6 / sqrt(17), 2]. */
static void by_hand(vkft_backend *be) {
  const float w[4] = {3, 0, 0, 4}, a[2] = {1, 1}, b[2] = {1, 0}, mag[2] = {2, 8}, x[2] = {1, 2};
  const float dy[2] = {1, 1};
  vkft_tensor tw, ta, tb, tm, tx, tdy, tnorm, tscale, tyd, tu, ty, tdm;
  vkft_tensor *all[] = {&tw, &ta, &tb, &tm, &tx, &tdy, &tnorm, &tscale, &tyd, &tu, &ty, &tdm};
  const int64_t sizes[] = {4, 2, 2, 2, 2, 2, 2, 2, 2, 1, 2, 2};
  for (int i = 0; i < 12; i++) CHECK(vkft_tensor_alloc(be, VKFT_F32, sizes[i], all[i]) == VKFT_OK);
  vkft_tensor_write(be, &tw, w), vkft_tensor_write(be, &ta, a), vkft_tensor_write(be, &tb, b);
  vkft_tensor_write(be, &tm, mag), vkft_tensor_write(be, &tx, x), vkft_tensor_write(be, &tdy, dy);
  int status = vkft_begin(be) || vkft_fill(be, &tdm, 0.0, 2) ||
               vkft_dora_norm(be, &tw, &ta, &tb, &tm, &tnorm, &tscale, 2, 2, 1, 1.0f) ||
               vkft_matmul(be, VKFT_MATMUL_NT, &tx, &tw, &tyd, 1, 2, 2, 1.0f, 0.0f) ||
               vkft_lora(be, &tx, &ta, &tb, &tyd, &tu, 1, 2, 2, 1, 1.0f) ||
               vkft_dora_scale(be, &tyd, &tscale, &ty, 1, 2, 0.0f, 0.0f) ||
               vkft_dora_mag_grad(be, &tdy, &tyd, &tnorm, &tdm, 1, 2) || vkft_end(be);
  CHECKF(status == VKFT_OK, "by hand: %s", vkft_error_message());
  float norm[2], scale[2], y[2], dm[2];
  vkft_tensor_read(be, &tnorm, norm), vkft_tensor_read(be, &tscale, scale);
  vkft_tensor_read(be, &ty, y), vkft_tensor_read(be, &tdm, dm);
  const double r17 = sqrt(17.0);
  const double want[4][2] = {{r17, 4}, {2 / r17, 2}, {12 / r17, 16}, {6 / r17, 2}};
  const float *got[4] = {norm, scale, y, dm};
  double worst = 0;
  for (int k = 0; k < 4; k++)
    for (int i = 0; i < 2; i++) worst = fmax(worst, fabs(got[k][i] - want[k][i]) / want[k][i]);
  printf("%-9s by hand: norm %.7g %.7g scale %.7g %.7g y %.7g %.7g dm %.7g %.7g (worst rel %.1e)\n",
         vkft_backend_name(be), norm[0], norm[1], scale[0], scale[1], y[0], y[1], dm[0], dm[1],
         worst);
  /* a few fp32 roundings of values near 1..16: well within 1e-6 */
  CHECKF(worst < 1e-6, "DoRA by hand off by %.2e", worst);
  for (int i = 0; i < 12; i++) vkft_tensor_free(be, all[i]);
}

/* ---- tiny models ---- */

static vkft_model_desc model_desc(int dora, double dropout) {
  return (vkft_model_desc){.dir = TMP "/base",
                           .max_tokens = 23,
                           .micro_batches = 1,
                           .training = 1,
                           .lora_r = R,
                           .lora_scale = SCALE,
                           .lora_targets = 0x7f,
                           .seed = 7,
                           .lora_dropout = dropout,
                           .use_dora = dora};
}

static vkft_param *find_param(vkft_model *m, const char *name) {
  vkft_param *params;
  int n;
  vkft_model_params(m, &params, &n);
  for (int i = 0; i < n; i++)
    if (!strcmp(params[i].name, name)) return &params[i];
  return NULL;
}

static float *read_f32(vkft_backend *be, const vkft_tensor *t) {
  float *v = malloc((size_t)t->n * sizeof *v);
  CHECKF(vkft_tensor_read_f32(be, t, v) == VKFT_OK, "%s", vkft_error_message());
  return v;
}

/* B random (PEFT starts it at 0, where no gradient reaches A) and m away from ||W|| (so the scale
 * is not 1): every path of the layer carries something. */
static void perturb_adapter(vkft_backend *be, vkft_model *m) {
  vkft_param *params;
  int n;
  vkft_model_params(m, &params, &n);
  rng_state = 99;
  for (int i = 0; i < n; i++) {
    int is_b = strstr(params[i].name, "lora_B") != NULL;
    if (!is_b && !strstr(params[i].name, "lora_magnitude_vector")) continue;
    float *v = read_f32(be, params[i].value);
    for (int64_t k = 0; k < params[i].value->n; k++)
      v[k] = is_b ? 0.1f * rnd() : v[k] * (1.0f + 0.2f * rnd());
    vkft_tensor_write(be, params[i].value, v);
    free(v);
  }
}

static void set_batch(vkft_model *m) {
  int32_t ids[23], labels[23], pos[23], seq[23];
  int lens[3] = {9, 6, 8}, t = 0;
  for (int s = 0; s < 3; s++)
    for (int i = 0; i < lens[s]; i++, t++) {
      ids[t] = (int32_t)((t * 37 + 11) % 80);
      labels[t] = i < 2 ? -100 : ids[t];
      pos[t] = i;
      seq[t] = s;
    }
  vkft_model_batch b = {23, ids, labels, pos, seq};
  CHECKF(vkft_model_set_batch(m, 0, &b) == VKFT_OK, "%s", vkft_error_message());
}

/* The loss sum of the batch (gradient scale 1: the gradients are the sum's); with the backward
 * (dropout is on only in a training forward). */
static double loss_sum(vkft_backend *be, vkft_model *m, int zero_grads) {
  int status = vkft_begin(be) || (zero_grads && vkft_model_zero_grads(m)) ||
               vkft_model_forward_backward(m, 0, 1.0f, 1) || vkft_end(be);
  CHECKF(status == VKFT_OK, "forward: %s", vkft_error_message());
  double sum = 0, count = 0;
  vkft_model_read_loss(m, 0, &sum, &count);
  return sum;
}

static vkft_model *load(vkft_backend *be, int dora, double dropout) {
  vkft_model_desc d = model_desc(dora, dropout);
  vkft_model *m = NULL;
  CHECKF(vkft_model_load(be, &d, &m) == VKFT_OK, "load: %s", vkft_error_message());
  if (m) vkft_model_set_dropout_seed(m, 5);
  return m;
}

/* Row norms ||W + s B A|| in double (W (out, in), A (r, in), B (out, r)). */
static void host_norms(const float *w, const double *a, const double *b, int64_t out, int64_t in,
                       double *norm) {
  for (int64_t o = 0; o < out; o++) {
    double sum = 0;
    for (int64_t i = 0; i < in; i++) {
      double v = w[o * in + i];
      for (int64_t k = 0; k < R; k++) v += SCALE * b[o * R + k] * a[k * in + i];
      sum += v * v;
    }
    norm[o] = sqrt(sum);
  }
}

/* The loss with element `index` of A, B or m (which: 0, 1, 2) of one projection moved by h, the
 * norm held fixed: a change of A or B moves the norms, so m is moved with them (m' = m norm' /
 * norm) and the scale m / norm stays what it was. */
static double loss_detached(vkft_backend *be, vkft_model *m, const char *proj, int which,
                            int64_t index, double h) {
  char name[4][200];
  const char *suffix[4] = {"lora_A.weight", "lora_B.weight", "lora_magnitude_vector", "weight"};
  vkft_param *p[4];
  for (int k = 0; k < 4; k++) {
    snprintf(name[k], sizeof name[k], "%s.%s", proj, suffix[k]);
    p[k] = find_param(m, name[k]);
    CHECKF(p[k] != NULL, "no parameter %s", name[k]);
    if (!p[k]) return 0;
  }
  int64_t out = p[2]->value->n, in = p[0]->value->n / R;
  float *orig[3], *w = read_f32(be, p[3]->value);
  double *v[3];
  for (int k = 0; k < 3; k++) {
    orig[k] = read_f32(be, p[k]->value);
    v[k] = malloc((size_t)p[k]->value->n * sizeof *v[k]);
    for (int64_t i = 0; i < p[k]->value->n; i++) v[k][i] = orig[k][i];
  }
  double *norm0 = malloc((size_t)out * sizeof *norm0), *norm1 = malloc((size_t)out * sizeof *norm1);
  host_norms(w, v[0], v[1], out, in, norm0);
  v[which][index] += h;
  host_norms(w, v[0], v[1], out, in, norm1);
  if (which < 2)
    for (int64_t o = 0; o < out; o++) v[2][o] *= norm1[o] / norm0[o];
  for (int k = 0; k < 3; k++) {
    float *f = malloc((size_t)p[k]->value->n * sizeof *f);
    for (int64_t i = 0; i < p[k]->value->n; i++) f[i] = (float)v[k][i];
    vkft_tensor_write(be, p[k]->value, f);
    free(f);
  }
  double loss = loss_sum(be, m, 0);
  for (int k = 0; k < 3; k++)
    vkft_tensor_write(be, p[k]->value, orig[k]), free(orig[k]), free(v[k]);
  free(w), free(norm0), free(norm1);
  return loss;
}

/* Gradients of m, A and B of two projections against central differences of the loss sum on
 * the reference backend (fp32; gradient scale 1, so the gradients are the sum's). The loss
 * (~110 over 18 tokens) is off by some 2^-22 of itself after two layers of fp32 ops (measured: a
 * quotient with h = 3e-3 moved by 4e-3 where h = 1e-2 gave 1e-3), so a quotient carries
 * ~L 2^-22 / (2 h); with h = 1e-2 the h^2 term is below that. Tolerance: 16 L 2^-24 / (2 h)
 * absolute (5e-3 here), and the checked gradients must be far above it (10x), so that a wrong
 * formula (the norm not detached, the scale missing: errors of the gradient's own size) fails. */
static void finite_differences(vkft_backend *ref, double dropout) {
  vkft_model *m = load(ref, 1, dropout);
  if (!m) return;
  perturb_adapter(ref, m);
  set_batch(m);
  double loss = loss_sum(ref, m, 1);
  const double h = 1e-2, tol = 16 * fabs(loss) / 16777216.0 / (2 * h);
  const char *projs[2] = {"model.layers.0.self_attn.q_proj", "model.layers.1.mlp.down_proj"};
  const char *kinds[3] = {"A", "B", "m"};
  const char *grad_suffix[3] = {"lora_A.weight", "lora_B.weight", "lora_magnitude_vector"};
  float *grads[2][3] = {{0}};
  vkft_param *params[2][3] = {{0}};
  for (int pi = 0; pi < 2; pi++) /* read before the differences' runs add to them */
    for (int which = 0; which < 3; which++) {
      char name[200];
      snprintf(name, sizeof name, "%s.%s", projs[pi], grad_suffix[which]);
      vkft_param *p = params[pi][which] = find_param(m, name);
      CHECKF(p && p->grad, "no gradient of %s", name);
      if (p && p->grad) grads[pi][which] = read_f32(ref, p->grad);
    }
  for (int pi = 0; pi < 2; pi++)
    for (int which = 0; which < 3; which++) {
      vkft_param *p = params[pi][which];
      float *g = grads[pi][which];
      if (!g) continue;
      enum { K = 6 };
      double fd[K], largest = 0, worst = 0;
      int64_t idx[K];
      for (int k = 0; k < K; k++) {
        idx[k] = (int64_t)k * 7919 % p->value->n;
        double up = loss_detached(ref, m, projs[pi], which, idx[k], h);
        double down = loss_detached(ref, m, projs[pi], which, idx[k], -h);
        fd[k] = (up - down) / (2 * h);
        largest = fmax(largest, fabs(g[idx[k]]));
      }
      for (int k = 0; k < K; k++) worst = fmax(worst, fabs(fd[k] - g[idx[k]]));
      printf("finite differences, dropout %.1f: %s %s: largest |grad| %.3e, worst |error| %.2e "
             "(tolerance %.2e)\n",
             dropout, projs[pi], kinds[which], largest, worst, tol);
      CHECKF(largest > 10 * tol && worst < tol, "%s %s: gradient vs finite differences %.2e",
             projs[pi], kinds[which], worst);
      free(g);
    }
  vkft_model_free(m);
}

typedef struct grads {
  double loss;
  int n;
  float *g[128];
  int64_t size[128];
  char name[128][160];
} grads;

static void run_grads(vkft_backend *be, double dropout, int checkpointing, grads *out) {
  vkft_model_desc d = model_desc(1, dropout);
  d.grad_checkpointing = checkpointing;
  vkft_model *m = NULL;
  out->n = 0;
  CHECKF(vkft_model_load(be, &d, &m) == VKFT_OK, "%s", vkft_error_message());
  if (!m) return;
  vkft_model_set_dropout_seed(m, 5);
  perturb_adapter(be, m);
  set_batch(m);
  out->loss = loss_sum(be, m, 1);
  vkft_param *params;
  int n;
  vkft_model_params(m, &params, &n);
  for (int i = 0; i < n && out->n < 128; i++)
    if (params[i].grad) {
      out->g[out->n] = read_f32(be, params[i].grad);
      out->size[out->n] = params[i].grad->n;
      snprintf(out->name[out->n], 160, "%s", params[i].name);
      out->n++;
    }
  vkft_model_free(m);
}

static void free_grads(grads *g) {
  for (int i = 0; i < g->n; i++) free(g->g[i]);
  g->n = 0;
}

/* Vulkan against the reference: the loss within 1e-5 and every gradient (A, B, m) within 1e-4
 * relative L2, the bounds test_model.c holds LoRA to; gradient checkpointing gives the same bits.
 */
static void backends_agree(vkft_backend *vk, vkft_backend *ref) {
  for (int drop = 0; drop < 2; drop++) {
    double dropout = drop ? 0.2 : 0.0;
    static grads gv, gr, gc;
    run_grads(vk, dropout, 0, &gv);
    run_grads(ref, dropout, 0, &gr);
    run_grads(vk, dropout, 1, &gc);
    CHECK(gv.n == gr.n && gv.n == gc.n && gv.n == 14 * 3);
    double worst = 0;
    const char *worst_name = "";
    int same = gc.loss == gv.loss;
    for (int i = 0; i < gv.n && i < gr.n && i < gc.n; i++) {
      double num = 0, den = 0;
      for (int64_t k = 0; k < gv.size[i]; k++) {
        double dd = (double)gv.g[i][k] - gr.g[i][k];
        num += dd * dd, den += (double)gr.g[i][k] * gr.g[i][k];
      }
      double e = den > 0 ? sqrt(num / den) : sqrt(num);
      if (e > worst || e != e) worst = e, worst_name = gv.name[i];
      same = same && !memcmp(gv.g[i], gc.g[i], (size_t)gv.size[i] * sizeof(float));
    }
    printf("vulkan vs reference, dropout %.1f: loss %.6f vs %.6f, %d gradients, worst rel L2 "
           "%.2e (%s)%s\n",
           dropout, gv.loss, gr.loss, gv.n, worst, worst_name,
           same ? ", checkpointing: same bits" : "");
    CHECKF(fabs(gv.loss - gr.loss) <= 1e-5 * fabs(gr.loss), "DoRA loss differs between backends");
    CHECKF(worst < 1e-4, "DoRA gradient %s differs by %.2e", worst_name, worst);
    CHECKF(same, "DoRA: gradient checkpointing changed the bits");
    free_grads(&gv), free_grads(&gr), free_grads(&gc);
  }
}

static float *logits_of(vkft_model *m) {
  set_batch(m);
  float *logits = malloc((size_t)23 * 80 * sizeof *logits);
  CHECKF(vkft_model_logits(m, 0, logits) == VKFT_OK, "%s", vkft_error_message());
  return logits;
}

static double max_diff(const float *a, const float *b, int64_t n) {
  double worst = 0;
  for (int64_t i = 0; i < n; i++) worst = fmax(worst, fabs((double)a[i] - b[i]));
  return worst;
}

/* At initialisation B = 0 and m = ||W|| (computed by the op that computes the forward's norm):
 * m / norm is exactly 1 and DoRA's logits are LoRA's, bit for bit. With the same trained B they
 * differ (the norm moved, m did not). */
static void init_is_lora(vkft_backend *be) {
  vkft_model *dora = load(be, 1, 0.0), *lora = load(be, 0, 0.0);
  if (!dora || !lora) return;
  float *ld = logits_of(dora), *ll = logits_of(lora);
  int same = !memcmp(ld, ll, (size_t)23 * 80 * sizeof *ld);
  vkft_param *params;
  int n;
  vkft_model_params(lora, &params, &n);
  rng_state = 99;
  for (int i = 0; i < n; i++) /* the same B in both */
    if (strstr(params[i].name, "lora_B")) {
      float *v = malloc((size_t)params[i].value->n * sizeof *v);
      for (int64_t k = 0; k < params[i].value->n; k++) v[k] = 0.1f * rnd();
      vkft_tensor_write(be, params[i].value, v);
      vkft_tensor_write(be, find_param(dora, params[i].name)->value, v);
      free(v);
    }
  free(ld), free(ll);
  ld = logits_of(dora), ll = logits_of(lora);
  double moved = max_diff(ld, ll, 23 * 80);
  printf("%-9s at init DoRA logits %s LoRA's; with B trained they differ by up to %.3e\n",
         vkft_backend_name(be), same ? "==" : "!=", moved);
  CHECKF(same, "%s: DoRA at initialisation is not LoRA's forward", vkft_backend_name(be));
  CHECKF(moved > 1e-4, "DoRA with a trained B gives LoRA's logits");
  free(ld), free(ll);
  vkft_model_free(dora), vkft_model_free(lora);
}

static int export_to(vkft_export_target target, const char *adapter, const char *out) {
  vkft_export_desc d = {.target = target,
                        .model_dir = TMP "/base",
                        .adapter_dir = adapter,
                        .out = out,
                        .type = target == VKFT_EXPORT_HF ? "f32" : NULL,
                        .threads = 1,
                        .no_modelfile = 1};
  vkft_export_report r;
  return vkft_export(&d, &r);
}

/* Saved as PEFT saves it, read back (the same logits, bit for bit), merged by export (the
 * merged model's logits within fp32 rounding of the adapter's), and what is refused. */
static void save_load_merge(vkft_backend *be) {
  vkft_model *m = load(be, 1, 0.0);
  if (!m) return;
  perturb_adapter(be, m);
  float *want = logits_of(m);
  vkft_adapter_info info = {.r = R, .alpha = SCALE * R, .targets = 0x7f, .use_dora = 1};
  snprintf(info.base_model, sizeof info.base_model, "base");
  vkft_mkdirs(TMP "/adapter");
  CHECKF(vkft_model_save_adapter(m, &info, TMP "/adapter") == VKFT_OK, "%s", vkft_error_message());
  vkft_model_free(m);

  vkft_st_set *st;
  if (vkft_st_open(TMP "/adapter/adapter_model.safetensors", &st) != VKFT_OK) {
    CHECKF(0, "%s", vkft_error_message());
    free(want);
    return;
  }
  const vkft_st_tensor *mq =
      vkft_st_find(st, "base_model.model.model.layers.0.self_attn.q_proj.lora_magnitude_vector");
  const vkft_st_tensor *md =
      vkft_st_find(st, "base_model.model.model.layers.1.mlp.down_proj.lora_magnitude_vector");
  CHECK(mq && mq->rank == 1 && mq->shape[0] == 32 && mq->dtype == VKFT_ST_F32);
  CHECK(md && md->rank == 1 && md->shape[0] == 32);
  CHECKF(vkft_st_count(st) == 2 * 7 * 3, "%d tensors in the DoRA adapter", vkft_st_count(st));
  vkft_st_close(st);
  vkft_adapter_info back;
  CHECK(vkft_adapter_read_config(TMP "/adapter", &back) == VKFT_OK && back.use_dora == 1);

  /* read back as generate and eval open an adapter */
  vkft_model *again = load(be, 1, 0.0);
  if (again) {
    CHECKF(vkft_model_apply_adapter(again, TMP "/adapter") == VKFT_OK, "%s", vkft_error_message());
    float *got = logits_of(again);
    CHECKF(!memcmp(got, want, (size_t)23 * 80 * sizeof *got),
           "the read-back DoRA adapter gives other logits");
    free(got);
    vkft_model_free(again);
  }
  vkft_model *plain = load(be, 0, 0.0);
  if (plain) {
    CHECK(vkft_model_apply_adapter(plain, TMP "/adapter") != VKFT_OK);
    printf("a LoRA model refuses the DoRA adapter: %s\n", vkft_error_message());
    vkft_model_free(plain);
  }

  /* merged: W' = m / ||W + s B A|| (W + s B A), stored f32, loaded without an adapter */
  CHECKF(export_to(VKFT_EXPORT_HF, TMP "/adapter", TMP "/merged") == VKFT_OK, "export: %s",
         vkft_error_message());
  vkft_model_desc md_desc = {.dir = TMP "/merged", .max_tokens = 23, .micro_batches = 1};
  vkft_model *merged = NULL;
  CHECKF(vkft_model_load(be, &md_desc, &merged) == VKFT_OK, "%s", vkft_error_message());
  if (merged) {
    float *got = logits_of(merged);
    double d = max_diff(got, want, 23 * 80);
    printf("%-9s merged DoRA model vs the adapter: max |logit diff| %.2e\n", vkft_backend_name(be),
           d);
    /* the same products in another order: fp32 rounding of logits of magnitude ~1, a few 1e-7
     * per layer */
    CHECKF(d < 1e-4, "merged DoRA logits differ by %.2e", d);
    free(got);
    vkft_model_free(merged);
  }
  CHECK(export_to(VKFT_EXPORT_GGUF_LORA, TMP "/adapter", TMP "/adapter.gguf") != VKFT_OK &&
        vkft_error_code() == VKFT_ERR_UNSUPPORTED);
  printf("gguf-lora refuses: %s\n", vkft_error_message());
  free(want);

  /* a quantized base: one line naming the key */
  vkft_model_desc q = model_desc(1, 0.0);
  q.quant_dtype = VKFT_NF4;
  q.quant_block = 32;
  vkft_model *qm = NULL;
  CHECK(vkft_model_load(be, &q, &qm) != VKFT_OK && vkft_error_code() == VKFT_ERR_UNSUPPORTED);
  CHECKF(strstr(vkft_error_message(), "lora.use_dora") != NULL, "message: %s",
         vkft_error_message());
  printf("an NF4 base refuses: %s\n", vkft_error_message());
  vkft_model_free(qm);
}

/* The memory plan counts m (trainable), its gradient, and the saved norms, scales and yd. */
static void plan_counts(void) {
  vkft_model_desc d0 = model_desc(0, 0.0), d1 = model_desc(1, 0.0);
  d0.plan_only = d1.plan_only = 1;
  vkft_model *m0 = NULL, *m1 = NULL;
  CHECK(vkft_model_load(NULL, &d0, &m0) == VKFT_OK && vkft_model_load(NULL, &d1, &m1) == VKFT_OK);
  if (!m0 || !m1) return;
  vkft_model_memory a, b;
  vkft_model_memory_plan(m0, &a);
  vkft_model_memory_plan(m1, &b);
  /* per layer the outputs of q, k, v, o, gate, up, down: 32 + 16 + 16 + 32 + 44 + 44 + 32 */
  uint64_t outs = 2 * (32 + 16 + 16 + 32 + 44 + 44 + 32);
  CHECKF(b.trainable - a.trainable == 4 * outs && b.gradients - a.gradients == 4 * outs,
         "plan: trainable +%llu, gradients +%llu (want %llu)",
         (unsigned long long)(b.trainable - a.trainable),
         (unsigned long long)(b.gradients - a.gradients), (unsigned long long)(4 * outs));
  CHECK(b.activations - a.activations == 4 * outs * (2 + 23));
  vkft_model_free(m0), vkft_model_free(m1);
}

int main(void) {
  vkft_device *dev;
  vkft_backend *vk, *ref;
  if (!open_backends("test_dora", &dev, &vk, &ref)) return 1;
  vkft_remove_tree(TMP);
  vkft_mkdirs(TMP);
  CHECKF(vkft_model_write_random(TMP "/base", CONFIG, VKFT_BF16, 12345) == VKFT_OK, "%s",
         vkft_error_message());
  by_hand(ref);
  by_hand(vk);
  finite_differences(ref, 0.0);
  finite_differences(ref, 0.2);
  backends_agree(vk, ref);
  init_is_lora(ref);
  init_is_lora(vk);
  save_load_merge(vk);
  plan_counts();
  CHECKF(vkft_device_validation_errors(dev) == 0, "%d validation messages",
         vkft_device_validation_errors(dev));
  vkft_backend_destroy(vk);
  vkft_backend_destroy(ref);
  vkft_device_destroy(dev);
  vkft_remove_tree(TMP);
  return check_summary();
}
