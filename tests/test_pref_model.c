/* Preference objectives through the whole model (src/model/pref.c) on tiny random models:
 *   - a LoRA adapter that is still zero makes the policy the reference: the same log-probs
 *     bit for bit (the adapter adds exact zeros), so DPO's loss is log 2 and the rewards 0;
 *   - the Vulkan and the C reference backend agree on the sequence values and on every gradient,
 *     for each objective (DPO sigmoid, robust, hinge, IPO and ORPO), LoRA and full;
 *   - DPO's in-step reference (adapter off) and the same log-probs given beforehand (as the
 *     trainer precomputes them) give the same gradients, bit for bit;
 *   - the gradient of the step's loss w.r.t. a few LoRA weights matches central differences of
 *     the loss (fp32 forward on the reference backend). */
#include "backends.h"
#include "check.h"

#include "vkft/error.h"
#include "vkft/model.h"
#include "vkft/platform.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TMP "test_pref_model.tmp"
#define N 2                     /* pairs */
#define LEN 6                   /* tokens per sequence */
#define T_ALL (2 * N * LEN + 3) /* packed in one row, 3 padding tokens at the end */

static const char *const configs[2] = {
    "{\"architectures\": [\"LlamaForCausalLM\"], \"vocab_size\": 53, \"hidden_size\": 16, "
    "\"intermediate_size\": 24, \"num_hidden_layers\": 2, \"num_attention_heads\": 4, "
    "\"num_key_value_heads\": 2, \"rms_norm_eps\": 1e-5, \"tie_word_embeddings\": false}",
    "{\"architectures\": [\"Qwen3ForCausalLM\"], \"vocab_size\": 47, \"hidden_size\": 16, "
    "\"intermediate_size\": 20, \"num_hidden_layers\": 2, \"num_attention_heads\": 2, "
    "\"num_key_value_heads\": 1, \"head_dim\": 8, \"tie_word_embeddings\": true}"};

typedef struct run {
  float seq[4 * N + 2], ref[2 * N];
  double loss;
  int n;
  float *grads[256];
  int64_t sizes[256];
} run;

typedef struct options {
  vkft_pref_loss_kind kind;
  int full, nonzero_b, give_ref, backward;
  const float *ref; /* given reference log-probs (give_ref) */
  int perturb;      /* index of the LoRA weight to move by delta (-1: none) */
  double delta;
} options;

static uint64_t rng = 5;
static float rnd(void) {
  rng = rng * 6364136223846793005ull + 1442695040888963407ull;
  return (float)((rng >> 40) / (double)(1 << 24)) * 2 - 1;
}

/* the step loss from the sequence values, as the trainer computes it */
static double step_loss(const vkft_pref_objective *o, const float *seq, const float *ref) {
  double loss = 0;
  for (int i = 0; i < N; i++)
    loss += o->pair_scale * vkft_ref_pref_pair_loss_f64(o, seq[i], seq[N + i], ref ? ref[i] : 0,
                                                        ref ? ref[N + i] : 0, seq[2 * N + i],
                                                        seq[3 * N + i]);
  if (o->kind == VKFT_PREF_LOSS_ORPO) loss += o->nll_scale * seq[4 * N];
  return loss;
}

static int run_pairs(vkft_backend *be, const char *dir, const options *op, run *out) {
  const int orpo = op->kind == VKFT_PREF_LOSS_ORPO;
  vkft_model_desc desc = {.dir = dir,
                          .max_tokens = T_ALL,
                          .micro_batches = 1,
                          .training = 1,
                          .full = op->full,
                          .lora_r = 2,
                          .lora_scale = 2.0,
                          .lora_targets = 0x7f,
                          .seed = 3,
                          .pref_pairs = N};
  vkft_model *m;
  if (vkft_model_load(be, &desc, &m) != VKFT_OK) return VKFT_ERR;
  vkft_param *params;
  int n;
  vkft_model_params(m, &params, &n);
  int lora_index = 0;
  rng = 5;
  for (int i = 0; i < n; i++) {
    if (!params[i].grad) continue;
    int is_b = strstr(params[i].name, "lora_B") != NULL;
    float *v = malloc((size_t)params[i].value->n * sizeof *v);
    vkft_tensor_read_f32(be, params[i].value, v);
    for (int64_t k = 0; k < params[i].value->n; k++) {
      if (is_b && op->nonzero_b) v[k] = 0.3f * rnd();
      if (!op->full && lora_index++ == op->perturb) v[k] = (float)(v[k] + op->delta);
    }
    vkft_tensor_write(be, params[i].value, v);
    free(v);
  }
  const vkft_model_config *c = vkft_model_get_config(m);
  int32_t ids[T_ALL], labels[T_ALL], pos[T_ALL], seq[T_ALL], tok[T_ALL], ranges[4 * N];
  int nll = 0;
  for (int t = 0; t < T_ALL; t++) {
    int s = t / LEN, k = t % LEN, pad = s >= 2 * N;
    ids[t] = (int32_t)((t * 29 + 7) % c->vocab_size);
    pos[t] = pad ? 0 : k;
    seq[t] = pad ? -1 - t : s;
    /* tokens 0..2 the prompt, 3..5 the completion; ORPO trains every chosen target */
    labels[t] = pad ? -100 : k >= 3 || (orpo && s < N && k > 0) ? ids[t] : -100;
    tok[t] = -1;
    if (!pad && k + 1 < LEN) {
      tok[t] = k + 1 >= 3 ? 2 * s + 1 : orpo && s < N ? 2 * s : -1;
      nll += orpo && s < N;
    }
  }
  for (int s = 0; s < 2 * N; s++) ranges[2 * s] = s * LEN, ranges[2 * s + 1] = (s + 1) * LEN;
  vkft_pref_objective o = {.kind = op->kind,
                           .beta = op->kind == VKFT_PREF_LOSS_IPO ? 0.5f : 0.3f,
                           .label_smoothing = op->kind == VKFT_PREF_LOSS_ROBUST ? 0.2f : 0,
                           .pair_scale = 1.0f / N,
                           .nll_scale = orpo ? 1.0f / (float)nll : 0};
  vkft_model_batch b = {T_ALL, ids, labels, pos, seq};
  vkft_model_pref_batch pb = {N, tok, ranges, op->give_ref ? op->ref : NULL};
  int status = vkft_model_set_batch(m, 0, &b) || vkft_model_set_pref(m, 0, &pb) || vkft_begin(be) ||
               vkft_model_zero_grads(m) ||
               vkft_model_pref_forward_backward(m, 0, &o, op->backward) || vkft_end(be) ||
               vkft_model_read_pref(m, 0, out->seq, orpo ? NULL : out->ref);
  if (status == VKFT_OK) {
    out->loss = step_loss(&o, out->seq, orpo ? NULL : out->ref);
    out->n = 0;
    for (int i = 0; i < n && out->n < 256 && op->backward; i++)
      if (params[i].grad) {
        out->grads[out->n] = malloc((size_t)params[i].grad->n * sizeof(float));
        vkft_tensor_read_f32(be, params[i].grad, out->grads[out->n]);
        out->sizes[out->n++] = params[i].grad->n;
      }
  }
  vkft_model_free(m);
  return status ? VKFT_ERR : VKFT_OK;
}

static void free_run(run *r) {
  for (int i = 0; i < r->n; i++) free(r->grads[i]);
  r->n = 0;
}

static double rel_l2(const float *a, const float *b, int64_t n) {
  double num = 0, den = 0;
  for (int64_t i = 0; i < n; i++) {
    double d = (double)a[i] - b[i];
    num += d * d;
    den += (double)b[i] * b[i];
  }
  return den > 0 ? sqrt(num / den) : sqrt(num);
}

static void zero_adapter_is_reference(vkft_backend *be, const char *dir, const char *name) {
  static run r;
  options op = {.kind = VKFT_PREF_LOSS_SIGMOID, .backward = 1, .perturb = -1};
  CHECKF(run_pairs(be, dir, &op, &r) == VKFT_OK, "%s: %s", name, vkft_error_message());
  CHECKF(!memcmp(r.seq, r.ref, sizeof r.ref), "%s: a zero adapter changed the log-probs", name);
  CHECKF(fabs(r.loss - log(2.0)) < 1e-12, "%s: DPO loss %.9f, not log 2", name, r.loss);
  free_run(&r);
}

static void backends_agree(vkft_backend *vk, vkft_backend *ref, const char *dir, const char *name) {
  for (int kind = VKFT_PREF_LOSS_SIGMOID; kind <= VKFT_PREF_LOSS_ORPO; kind++)
    for (int full = 0; full <= 1; full++) {
      static run a, b, given;
      /* full fine-tuning has no adapter to switch off: its reference is given */
      static const float full_ref[2 * N] = {-11.5f, -12.25f, -13.0f, -12.5f};
      options op = {.kind = (vkft_pref_loss_kind)kind,
                    .full = full,
                    .nonzero_b = 1,
                    .backward = 1,
                    .give_ref = full,
                    .ref = full_ref,
                    .perturb = -1};
      int ok = run_pairs(vk, dir, &op, &a) == VKFT_OK && run_pairs(ref, dir, &op, &b) == VKFT_OK;
      CHECKF(ok, "%s kind %d: %s", name, kind, vkft_error_message());
      if (!ok) continue;
      double seq_err = 0, worst = 0;
      for (int i = 0; i < 4 * N + 2; i++)
        seq_err = fmax(seq_err, fabs(a.seq[i] - b.seq[i]) / fmax(1.0, fabs(b.seq[i])));
      for (int i = 0; i < a.n && i < b.n; i++)
        worst = fmax(worst, rel_l2(a.grads[i], b.grads[i], a.sizes[i]));
      printf("%-6s kind %d %-4s loss %.7f (vulkan) %.7f (reference), sequence values %.1e, "
             "worst gradient rel L2 %.2e\n",
             name, kind, full ? "full" : "lora", a.loss, b.loss, seq_err, worst);
      CHECKF(a.n == b.n && a.n > 0, "%s: %d vs %d gradients", name, a.n, b.n);
      CHECKF(seq_err < 1e-5 && worst < 1e-4, "%s kind %d %s: backends differ (%.2e, %.2e)", name,
             kind, full ? "full" : "lora", seq_err, worst);
      /* the same reference log-probs given beforehand: the same bits */
      if (kind != VKFT_PREF_LOSS_ORPO && !full) {
        options g = op;
        g.give_ref = 1;
        g.ref = a.ref;
        CHECK(run_pairs(vk, dir, &g, &given) == VKFT_OK);
        int same = given.n == a.n && !memcmp(given.seq, a.seq, sizeof a.seq);
        for (int i = 0; same && i < a.n; i++)
          same = !memcmp(given.grads[i], a.grads[i], (size_t)a.sizes[i] * sizeof(float));
        CHECKF(same, "%s kind %d %s: a given reference changed the gradients", name, kind,
               full ? "full" : "lora");
        free_run(&given);
      }
      free_run(&a), free_run(&b);
    }
}

/* Central differences of the step loss in LoRA weights 0..K-1 (fp32 forward on the reference
 * backend): with delta 1e-2 the truncation error is O(delta^2 |J'''|) ~ 1e-5, and the loss,
 * computed from fp32 log-probs of magnitude ~20 (error ~1e-6), contributes 1e-6 / delta = 1e-4
 * to the difference quotient: 2e-3 absolute plus 2% covers both with margin. */
static void finite_differences(vkft_backend *ref, const char *dir, const char *name) {
  static const vkft_pref_loss_kind kinds[2] = {VKFT_PREF_LOSS_SIGMOID, VKFT_PREF_LOSS_ORPO};
  for (int q = 0; q < 2; q++) {
    static run base, up, down;
    options op = {.kind = kinds[q], .nonzero_b = 1, .backward = 1, .perturb = -1};
    CHECK(run_pairs(ref, dir, &op, &base) == VKFT_OK);
    /* the LoRA gradients in the order the weights are numbered in run_pairs */
    float *flat = malloc(4096 * sizeof *flat);
    int count = 0;
    for (int i = 0; i < base.n; i++)
      for (int64_t k = 0; k < base.sizes[i] && count < 4096; k++) flat[count++] = base.grads[i][k];
    const double delta = 1e-2;
    double worst = 0;
    for (int w = 0; w < count; w += count / 12 + 1) {
      options o = op;
      o.backward = 0;
      o.perturb = w;
      o.delta = delta;
      CHECK(run_pairs(ref, dir, &o, &up) == VKFT_OK);
      o.delta = -delta;
      CHECK(run_pairs(ref, dir, &o, &down) == VKFT_OK);
      double fd = (up.loss - down.loss) / (2 * delta), err = fabs(fd - flat[w]);
      worst = fmax(worst, err / (2e-3 + 0.02 * fabs(flat[w])));
    }
    printf("%-6s kind %d: finite differences of %d LoRA weights, worst error %.2f of tolerance\n",
           name, (int)kinds[q], count / (count / 12 + 1), worst);
    CHECKF(worst <= 1, "%s kind %d: the gradient disagrees with finite differences", name,
           (int)kinds[q]);
    free(flat);
    free_run(&base);
  }
}

int main(void) {
  vkft_device *dev;
  vkft_backend *vk, *ref;
  if (!open_backends("test_pref_model", &dev, &vk, &ref)) return 1;
  vkft_remove_tree(TMP);
  vkft_mkdirs(TMP);
  static const char *const names[2] = {"llama", "qwen3"};
  for (int a = 0; a < 2; a++) {
    char dir[256];
    snprintf(dir, sizeof dir, TMP "/%s", names[a]);
    CHECKF(vkft_model_write_random(dir, configs[a], VKFT_F32, 77) == VKFT_OK, "%s",
           vkft_error_message());
    zero_adapter_is_reference(vk, dir, names[a]);
    zero_adapter_is_reference(ref, dir, names[a]);
    backends_agree(vk, ref, dir, names[a]);
    finite_differences(ref, dir, names[a]);
  }
  CHECKF(vkft_device_validation_errors(dev) == 0, "%d validation messages",
         vkft_device_validation_errors(dev));
  vkft_backend_destroy(vk);
  vkft_backend_destroy(ref);
  vkft_device_destroy(dev);
  vkft_remove_tree(TMP);
  return check_summary();
}
