/* Per-request sampling: the logits processors transformers' generate() applies (repetition
 * penalty, temperature, top-k, top-p, min-p; in that order) and one draw from vkft's own
 * generator, so the same seed gives the same text on every platform. */
#include "vkft/error.h"
#include "vkft/gen.h"

#include <math.h>
#include <stdlib.h>

typedef struct cand {
  int32_t id;
  double p;
} cand;

struct vkft_sampler_scratch {
  int64_t V;
  cand *work;
  uint32_t *mark; /* mark[id] == stamp: id already penalised in this call */
  uint32_t stamp;
};

vkft_sampling vkft_sampling_default(void) {
  return (vkft_sampling){
      .top_p = 1.0, .repetition_penalty = 1.0, .seed = 42, .max_new_tokens = 128, .n = 1};
}

int vkft_sampling_check(const vkft_sampling *s, const char *where) {
  const char *bad = !(s->temperature >= 0 && s->temperature <= 100) ? "temperature in [0, 100]"
                    : s->top_k < 0                                  ? "top_k >= 0"
                    : !(s->top_p > 0 && s->top_p <= 1)              ? "top_p in (0, 1]"
                    : !(s->min_p >= 0 && s->min_p < 1)              ? "min_p in [0, 1)"
                    : !(s->repetition_penalty > 0 && s->repetition_penalty <= 100)
                        ? "repetition_penalty in (0, 100]"
                    : s->max_new_tokens < 1 || s->max_new_tokens > (1 << 24)
                        ? "max_new_tokens in [1, 2^24]"
                    : s->n < 1 || s->n > 1024 ? "n in [1, 1024]"
                                              : NULL;
  for (int i = 0; !bad && i < s->n_stop; i++)
    if (!s->stop[i] || !s->stop[i][0]) bad = "non-empty stop strings";
  return bad ? vkft_error_with(VKFT_ERR_INPUT, "%s: sampling needs %s", where, bad) : VKFT_OK;
}

int vkft_sampler_scratch_new(int64_t V, vkft_sampler_scratch **out) {
  vkft_sampler_scratch *w = calloc(1, sizeof *w);
  if (w) {
    w->V = V;
    w->work = malloc((size_t)V * sizeof *w->work);
    w->mark = calloc((size_t)V, sizeof *w->mark);
  }
  if (!w || !w->work || !w->mark) {
    vkft_sampler_scratch_free(w);
    return vkft_error_nomem();
  }
  *out = w;
  return VKFT_OK;
}

void vkft_sampler_scratch_free(vkft_sampler_scratch *w) {
  if (!w) return;
  free(w->work);
  free(w->mark);
  free(w);
}

/* splitmix64: the generator and the mixer of streams */
static uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static double next_uniform(uint64_t *s) {
  *s += 0x9e3779b97f4a7c15ull;
  return (double)(mix64(*s) >> 11) * (1.0 / 9007199254740992.0);
}

uint64_t vkft_sampler_stream(uint64_t seed, int index) {
  /* sample 0 keeps the seed (`vkft generate --seed S` draws what it always drew); the others
   * start far apart in splitmix64's sequence */
  return index == 0 ? seed : mix64(seed ^ mix64((uint64_t)index * 0x9e3779b97f4a7c15ull));
}

static int by_prob(const void *a, const void *b) {
  double x = ((const cand *)a)->p, y = ((const cand *)b)->p;
  return x < y ? 1 : x > y ? -1 : ((const cand *)a)->id - ((const cand *)b)->id;
}

/* CTRL's penalty as transformers' RepetitionPenaltyLogitsProcessor: once per distinct id of
 * the sequence. */
static void penalise(float *logits, const int32_t *history, int64_t n, double penalty,
                     vkft_sampler_scratch *w) {
  if (++w->stamp == 0) { /* the stamp wrapped: clear the marks once */
    for (int64_t v = 0; v < w->V; v++) w->mark[v] = 0;
    w->stamp = 1;
  }
  for (int64_t i = 0; i < n; i++) {
    int32_t id = history[i];
    if (id < 0 || id >= w->V || w->mark[id] == w->stamp) continue;
    w->mark[id] = w->stamp;
    logits[id] = logits[id] > 0 ? (float)(logits[id] / penalty) : (float)(logits[id] * penalty);
  }
}

int32_t vkft_sample(const vkft_sampling *s, float *logits, int64_t V, const int32_t *history,
                    int64_t n_history, uint64_t *rng, vkft_sampler_scratch *w) {
  if (s->repetition_penalty != 1.0) penalise(logits, history, n_history, s->repetition_penalty, w);
  int32_t best = 0;
  for (int64_t v = 1; v < V; v++)
    if (logits[v] > logits[best]) best = (int32_t)v;
  if (s->temperature <= 0) return best;
  /* probabilities relative to the best (exp of logit differences: no overflow) */
  cand *c = w->work;
  for (int64_t v = 0; v < V; v++) {
    c[v].id = (int32_t)v;
    c[v].p = exp(((double)logits[v] - logits[best]) / s->temperature);
  }
  qsort(c, (size_t)V, sizeof *c, by_prob);
  int64_t keep = s->top_k > 0 && s->top_k < V ? s->top_k : V;
  /* top-p over what top-k kept, renormalised (transformers warps the top-k logits first) */
  double kept = 0;
  for (int64_t i = 0; i < keep; i++) kept += c[i].p;
  if (s->top_p < 1.0) {
    double acc = 0;
    for (int64_t i = 0; i < keep; i++) {
      acc += c[i].p / kept;
      if (acc >= s->top_p) {
        keep = i + 1;
        break;
      }
    }
  }
  /* min-p: relative to the most probable id (c[0]), which is always kept */
  if (s->min_p > 0)
    for (int64_t i = 1; i < keep; i++)
      if (c[i].p < s->min_p * c[0].p) {
        keep = i;
        break;
      }
  double mass = 0;
  for (int64_t i = 0; i < keep; i++) mass += c[i].p;
  double u = next_uniform(rng) * mass;
  for (int64_t i = 0; i < keep; i++) {
    u -= c[i].p;
    if (u <= 0) return c[i].id;
  }
  return c[keep - 1].id;
}
