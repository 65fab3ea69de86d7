/* Batched generation (src/gen) on the bundled stories260K, on the Vulkan device and the C
 * reference backend: every request's output, greedy and sampled, is the same token for token
 * whether the requests run 5 at a time or one at a time (with different step budgets, so
 * prompts also arrive in different pieces), with and without a LoRA adapter; each greedy token
 * is the argmax of the full forward (no cache) over the sequence so far; EOS ids, stop strings,
 * max_new_tokens and the context end sequences as documented. Plus the sampler's rules on
 * hand-made logits. About 10 s. */
#include "backends.h"
#include "check.h"

#include "vkft/error.h"
#include "vkft/gen.h"
#include "vkft/model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STORIES VKFT_SOURCE_DIR "/models/stories260K"

enum { REQUESTS = 7, MAX_SAMPLES = 2, CTX = 48, MAX_NEW = 16 };

/* ---- the sampler on hand-made logits ---- */

static void sampler_rules(void) {
  enum { V = 6 };
  vkft_sampler_scratch *w;
  CHECK(vkft_sampler_scratch_new(V, &w) == VKFT_OK);
  vkft_sampling s = vkft_sampling_default();
  float logits[V] = {1, 3, 3, -2, 0.5f, 2};
  uint64_t rng = 1;
  CHECKF(vkft_sample(&s, logits, V, NULL, 0, &rng, w) == 1, "greedy: the first of tied maxima");
  CHECKF(rng == 1, "greedy draws nothing");
  /* repetition penalty: positive logits divided, negative multiplied, once per distinct id */
  float pen[V] = {1, 3, 3, -2, 0.5f, 2};
  int32_t history[] = {1, 1, 3, 2};
  s.repetition_penalty = 2;
  CHECKF(vkft_sample(&s, pen, V, history, 4, &rng, w) == 5, "penalty moves the argmax to id 5");
  CHECKF(pen[1] == 1.5f && pen[2] == 1.5f && pen[3] == -4 && pen[5] == 2, "penalised logits");
  /* top_k = 2 with a temperature: only the two most probable ids are ever drawn; min_p and
   * top_p keep only the top one here; the same seed draws the same sequence */
  s = vkft_sampling_default();
  s.temperature = 1;
  s.top_k = 2;
  float base[V] = {0, 2, 1.9f, -1, 1.8f, 0};
  int seen[V] = {0};
  uint64_t a = 7, b = 7;
  for (int i = 0; i < 400; i++) {
    float l1[V], l2[V];
    memcpy(l1, base, sizeof l1), memcpy(l2, base, sizeof l2);
    int32_t x = vkft_sample(&s, l1, V, NULL, 0, &a, w), y = vkft_sample(&s, l2, V, NULL, 0, &b, w);
    CHECK(x == y);
    seen[x]++;
  }
  CHECKF(seen[1] > 100 && seen[2] > 100 && seen[1] + seen[2] == 400, "top_k 2: %d %d", seen[1],
         seen[2]);
  s.top_k = 0;
  s.min_p = 0.95; /* p(2)/p(1) = e^-0.1 = 0.905 < 0.95 */
  for (int i = 0; i < 50; i++) {
    float l[V];
    memcpy(l, base, sizeof l);
    CHECK(vkft_sample(&s, l, V, NULL, 0, &a, w) == 1);
  }
  s.min_p = 0;
  s.top_p = 0.3; /* p(1) ~ 0.33 >= 0.3: only id 1 */
  for (int i = 0; i < 50; i++) {
    float l[V];
    memcpy(l, base, sizeof l);
    CHECK(vkft_sample(&s, l, V, NULL, 0, &a, w) == 1);
  }
  CHECK(vkft_sampler_stream(5, 0) == 5 && vkft_sampler_stream(5, 1) != vkft_sampler_stream(5, 2));
  s = vkft_sampling_default();
  s.top_p = 0;
  CHECK(vkft_sampling_check(&s, "t") == VKFT_ERR);
  vkft_sampler_scratch_free(w);
}

/* ---- the engine ---- */

typedef struct outputs {
  int32_t ids[REQUESTS][MAX_SAMPLES][CTX];
  int64_t n[REQUESTS][MAX_SAMPLES];
  char text[REQUESTS][MAX_SAMPLES][512];
  vkft_finish finish[REQUESTS][MAX_SAMPLES];
  int count;
} outputs;

static int collect(void *ctx, const vkft_gen_result *r) {
  outputs *o = ctx;
  memcpy(o->ids[r->request][r->sample], r->ids, (size_t)r->n_ids * sizeof *r->ids);
  o->n[r->request][r->sample] = r->n_ids;
  snprintf(o->text[r->request][r->sample], sizeof o->text[0][0], "%s", r->text);
  o->finish[r->request][r->sample] = r->finish;
  o->count++;
  return VKFT_OK;
}

typedef struct setup {
  int32_t prompts[REQUESTS][32];
  vkft_gen_request req[REQUESTS];
  vkft_tokenizer *tok;
  int64_t V;
} setup;

/* Prompts of 1 to 25 tokens; requests 2 and 5 draw two samples at temperature 0.9. */
static void make_requests(setup *su) {
  static const int lens[REQUESTS] = {1, 25, 7, 13, 3, 19, 9};
  uint64_t state = 3;
  for (int r = 0; r < REQUESTS; r++) {
    for (int i = 0; i < lens[r]; i++) {
      state = state * 6364136223846793005ull + 1442695040888963407ull;
      su->prompts[r][i] = (int32_t)(3 + (state >> 33) % (uint64_t)(su->V - 3));
    }
    su->prompts[r][0] = 1; /* BOS */
    vkft_sampling s = vkft_sampling_default();
    s.max_new_tokens = MAX_NEW;
    if (r == 2 || r == 5) s.temperature = 0.9, s.n = 2, s.seed = 11 + (uint64_t)r;
    su->req[r] = (vkft_gen_request){su->prompts[r], lens[r], s};
  }
}

/* LoRA B matrices set to seeded values (A is seeded at load): a visible adapter. */
static int set_lora(vkft_backend *be, vkft_model *m) {
  vkft_param *params;
  int count;
  vkft_model_params(m, &params, &count);
  uint64_t state = 99;
  for (int i = 0; i < count; i++) {
    if (!strstr(params[i].name, "lora_B")) continue;
    int64_t n = params[i].value->n;
    float *v = malloc((size_t)n * sizeof *v);
    for (int64_t k = 0; k < n; k++) {
      state = state * 6364136223846793005ull + 1442695040888963407ull;
      v[k] = ((float)(state >> 40) / 16777216.0f - 0.5f) * 0.2f;
    }
    int status = vkft_tensor_write(be, params[i].value, v);
    free(v);
    if (status != VKFT_OK) return VKFT_ERR;
  }
  return VKFT_OK;
}

/* Runs every request with `slots` sequences at once and `step` tokens per step. */
static int generate(vkft_backend *be, setup *su, int64_t slots, int64_t step, int lora,
                    const int32_t *eos, int n_eos, outputs *out) {
  vkft_gen_plan_desc pd = {
      .model = {.dir = STORIES}, .slots = slots, .ctx = CTX, .step_tokens = step};
  if (lora) {
    pd.model.training = 1;
    pd.model.lora_r = 4;
    pd.model.lora_scale = 2.0;
    pd.model.lora_targets = 0x7f; /* every projection */
    pd.model.seed = 5;
  }
  vkft_gen_plan plan;
  vkft_model *m;
  if (vkft_gen_plan_cache(&pd, &plan) != VKFT_OK || vkft_model_load(be, &plan.model, &m) != VKFT_OK)
    return VKFT_ERR;
  memset(out, 0, sizeof *out);
  vkft_gen_desc gd = {
      .model = m, .plan = &plan, .tokenizer = su->tok, .eos_ids = eos, .n_eos = n_eos};
  int status = (lora ? set_lora(be, m) : VKFT_OK) ||
               vkft_gen_run(&gd, su->req, REQUESTS, collect, out, NULL);
  vkft_model_free(m);
  return status ? VKFT_ERR : VKFT_OK;
}

/* Token for token, every sample of every request. */
static int same_outputs(const outputs *a, const outputs *b) {
  for (int r = 0; r < REQUESTS; r++)
    for (int s = 0; s < MAX_SAMPLES; s++)
      if (a->n[r][s] != b->n[r][s] ||
          memcmp(a->ids[r][s], b->ids[r][s], (size_t)a->n[r][s] * sizeof(int32_t)))
        return 0;
  return 1;
}

/* Each greedy token is the argmax of the full forward (training attention, no cache) over the
 * prompt and the tokens before it: the logit it got is the largest within a tie margin. */
static double greedy_vs_full_forward(vkft_backend *be, setup *su, const outputs *o) {
  vkft_model_desc md = {.dir = STORIES, .max_tokens = CTX, .micro_batches = 1};
  vkft_model *m;
  if (vkft_model_load(be, &md, &m) != VKFT_OK) return INFINITY;
  float *logits = malloc((size_t)(CTX * su->V) * sizeof *logits);
  double worst = 0; /* max over tokens of (max logit - chosen logit) */
  for (int r = 0; r < REQUESTS; r++) {
    if (su->req[r].sampling.temperature > 0) continue;
    int32_t ids[CTX], labels[CTX], pos[CTX], seq[CTX];
    int64_t P = su->req[r].prompt_len, T = P + o->n[r][0];
    for (int64_t t = 0; t < T; t++) {
      ids[t] = t < P ? su->prompts[r][t] : o->ids[r][0][t - P];
      labels[t] = -100, pos[t] = (int32_t)t, seq[t] = 0;
    }
    vkft_model_batch b = {T, ids, labels, pos, seq};
    if (vkft_model_set_batch(m, 0, &b) || vkft_model_logits(m, 0, logits)) {
      worst = INFINITY;
      break;
    }
    for (int64_t t = P - 1; t < T - 1; t++) {
      const float *row = logits + t * su->V;
      float max = row[0];
      for (int64_t v = 1; v < su->V; v++) max = fmaxf(max, row[v]);
      worst = fmax(worst, (double)max - row[ids[t + 1]]);
    }
  }
  free(logits);
  vkft_model_free(m);
  return worst;
}

static void engine_checks(vkft_backend *be, setup *su) {
  const char *name = vkft_backend_name(be);
  static outputs batched, single, other, lora5, lora1;
  int32_t eos = 2;
  int ok = generate(be, su, 5, 16, 0, &eos, 1, &batched) == VKFT_OK &&
           generate(be, su, 1, 7, 0, &eos, 1, &single) == VKFT_OK &&
           generate(be, su, 3, 5, 0, &eos, 1, &other) == VKFT_OK;
  CHECKF(ok, "%s: generate: %s", name, vkft_error_message());
  if (!ok) return;
  CHECKF(batched.count == REQUESTS + 2, "%s: %d results", name, batched.count);
  CHECKF(same_outputs(&batched, &single), "%s: 5 at a time differs from one at a time", name);
  CHECKF(same_outputs(&batched, &other), "%s: 3 at a time differs from one at a time", name);
  CHECKF(batched.n[2][0] != batched.n[2][1] ||
             memcmp(batched.ids[2][0], batched.ids[2][1], sizeof batched.ids[2][0]),
         "%s: two samples of one request are the same", name);
  double margin = greedy_vs_full_forward(be, su, &batched);
  printf("%s: batched greedy vs full-forward argmax: largest (max - chosen) logit %.2e\n", name,
         margin);
  CHECKF(margin < 1e-4, "%s: a greedy token is not the full forward's argmax (%.2e)", name, margin);
  for (int r = 0; r < REQUESTS; r++) { /* no EOS id in these: every request runs to its end */
    int64_t want = MAX_NEW < CTX - su->req[r].prompt_len ? MAX_NEW : CTX - su->req[r].prompt_len;
    CHECKF(batched.finish[r][0] != VKFT_FINISH_LENGTH || batched.n[r][0] == want,
           "%s: request %d: %lld tokens, want %lld", name, r, (long long)batched.n[r][0],
           (long long)want);
  }
  /* a LoRA adapter: batched and single still agree, and the adapter changes the output */
  ok = generate(be, su, 5, 16, 1, &eos, 1, &lora5) == VKFT_OK &&
       generate(be, su, 1, 9, 1, &eos, 1, &lora1) == VKFT_OK;
  CHECKF(ok, "%s: generate with LoRA: %s", name, vkft_error_message());
  CHECKF(ok && same_outputs(&lora5, &lora1), "%s: LoRA: batched differs from one at a time", name);
  CHECKF(ok && !same_outputs(&lora5, &batched), "%s: the LoRA adapter changed nothing", name);
  /* an EOS id: request 3 ends before its third token (which is not returned) */
  int32_t eos2[2] = {2, batched.ids[3][0][2]};
  int first = 0;
  while (batched.ids[3][0][first] != eos2[1]) first++;
  ok = generate(be, su, 5, 16, 0, eos2, 2, &other) == VKFT_OK;
  CHECKF(ok && other.finish[3][0] == VKFT_FINISH_EOS && other.n[3][0] == first,
         "%s: EOS: finish %d after %lld tokens (want %d)", name, other.finish[3][0],
         (long long)other.n[3][0], first);
  /* a stop string: the text ends before it */
  const char *text = batched.text[1][0];
  size_t len = strlen(text);
  if (len > 12) {
    char stop[8];
    memcpy(stop, text + len / 2, 5);
    stop[5] = '\0';
    const char *stops[1] = {stop};
    su->req[1].sampling.stop = stops;
    su->req[1].sampling.n_stop = 1;
    ok = generate(be, su, 5, 16, 0, &eos, 1, &other) == VKFT_OK;
    size_t at = (size_t)(strstr(text, stop) - text);
    CHECKF(ok && other.finish[1][0] == VKFT_FINISH_STOP && strlen(other.text[1][0]) == at &&
               !strncmp(other.text[1][0], text, at),
           "%s: stop \"%s\": \"%s\"", name, stop, other.text[1][0]);
    su->req[1].sampling.stop = NULL;
    su->req[1].sampling.n_stop = 0;
  }
}

int main(void) {
  sampler_rules();
  setup su = {0};
  if (vkft_tokenizer_load(STORIES, &su.tok) != VKFT_OK) {
    fprintf(stderr, "test_gen: %s\n", vkft_error_message());
    return 1;
  }
  su.V = (int64_t)vkft_tokenizer_vocab_size(su.tok);
  make_requests(&su);
  vkft_device *dev;
  vkft_backend *vk, *ref;
  if (!open_backends("test_gen", &dev, &vk, &ref)) return 1;
  engine_checks(vk, &su);
  engine_checks(ref, &su);
  CHECKF(vkft_device_validation_errors(dev) == 0, "%d validation messages",
         vkft_device_validation_errors(dev));
  vkft_backend_destroy(vk);
  vkft_backend_destroy(ref);
  vkft_device_destroy(dev);
  vkft_tokenizer_free(su.tok);
  return check_summary();
}
