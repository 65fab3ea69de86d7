/* The batched generation engine: continuous batching over the model's slotted KV cache. Each
 * (request, sample) is a job; a job holds one slot of the cache from its first prompt token to
 * its end, and a freed slot takes the next job before the next step. A step runs, in one
 * forward (vkft_model_decode_step), the last sampled token of every generating sequence and as
 * much of the starting sequences' prompts as the step's token budget leaves; the logits of
 * each sequence whose pending tokens all ran are sampled on the host. */
#include "vkft/error.h"
#include "vkft/gen.h"
#include "vkft/platform.h"

#include <stdlib.h>
#include <string.h>

typedef struct seq {
  int active;
  size_t request;
  int sample;
  const vkft_sampling *s;
  int32_t *ids;   /* prompt, then generated ids */
  int64_t len;    /* ids held */
  int64_t prompt; /* prompt_len */
  int64_t cached; /* positions whose keys and values are in the cache */
  int64_t limit;  /* len at which the sequence ends: prompt + max_new_tokens, or ctx */
  uint64_t rng;
  char *text; /* decoded generated ids (stop strings), NULL until needed */
  size_t text_len;
} seq;

typedef struct engine {
  const vkft_gen_desc *desc;
  const vkft_gen_request *requests;
  size_t n_requests, next_request;
  int next_sample;
  seq *seqs;
  int64_t S, T, V, ctx;
  /* one step: ids, slots, positions, the logits rows and which sequence each belongs to */
  int32_t *ids, *slot, *pos, *out, *out_seq;
  float *logits;
  vkft_sampler_scratch *scratch;
} engine;

const char *vkft_finish_name(vkft_finish f) {
  return f == VKFT_FINISH_LENGTH ? "length" : "stop";
}

/* The next job into a free slot; 0 when none is left. */
static int admit(engine *e, seq *q) {
  while (e->next_request < e->n_requests &&
         e->next_sample >= e->requests[e->next_request].sampling.n) {
    e->next_request++;
    e->next_sample = 0;
  }
  if (e->next_request >= e->n_requests) return 0;
  const vkft_gen_request *r = &e->requests[e->next_request];
  free(q->text);
  *q = (seq){.active = 1,
             .request = e->next_request,
             .sample = e->next_sample++,
             .s = &r->sampling,
             .ids = q->ids,
             .len = r->prompt_len,
             .prompt = r->prompt_len};
  q->limit = r->prompt_len + r->sampling.max_new_tokens;
  if (q->limit > e->ctx) q->limit = e->ctx;
  q->rng = vkft_sampler_stream(r->sampling.seed, q->sample);
  memcpy(q->ids, r->prompt, (size_t)r->prompt_len * sizeof *q->ids);
  return 1;
}

/* The decoded generated ids into q->text (ids after the prompt, an EOS excluded). */
static int decode_text(engine *e, seq *q, int64_t n_gen) {
  char *text;
  size_t len;
  if (vkft_tokenizer_decode(e->desc->tokenizer, q->ids + q->prompt, (size_t)n_gen, 1, &text,
                            &len) != VKFT_OK)
    return VKFT_ERR;
  free(q->text);
  q->text = text;
  q->text_len = len;
  return VKFT_OK;
}

/* Cuts the text before the first stop string it holds; 1 when one was found. */
static int cut_at_stop(seq *q) {
  const char *first = NULL;
  for (int i = 0; i < q->s->n_stop; i++) {
    const char *at = strstr(q->text, q->s->stop[i]);
    if (at && (!first || at < first)) first = at;
  }
  if (!first) return 0;
  q->text_len = (size_t)(first - q->text);
  q->text[q->text_len] = '\0';
  return 1;
}

static int is_eos(const engine *e, int32_t id) {
  for (int i = 0; i < e->desc->n_eos; i++)
    if (e->desc->eos_ids[i] == id) return 1;
  return 0;
}

/* The sequence sampled `id`: appends it and ends the sequence when it is done (emitting it). */
static int advance(engine *e, seq *q, int32_t id, vkft_gen_emit emit, void *ctx,
                   vkft_gen_stats *st) {
  int eos = is_eos(e, id);
  if (!eos) q->ids[q->len++] = id, st->generated_tokens++;
  int64_t n_gen = q->len - q->prompt;
  int stop = 0;
  if (!eos && q->s->n_stop > 0) {
    if (decode_text(e, q, n_gen) != VKFT_OK) return VKFT_ERR;
    stop = cut_at_stop(q);
  }
  if (!eos && !stop && q->len < q->limit) return VKFT_OK;
  if (!q->text && decode_text(e, q, n_gen) != VKFT_OK) return VKFT_ERR;
  vkft_gen_result r = {.request = q->request,
                       .sample = q->sample,
                       .ids = q->ids + q->prompt,
                       .n_ids = n_gen,
                       .text = q->text,
                       .text_len = q->text_len,
                       .finish = eos    ? VKFT_FINISH_EOS
                                 : stop ? VKFT_FINISH_STOP
                                        : VKFT_FINISH_LENGTH};
  q->active = 0;
  int status = emit(ctx, &r);
  free(q->text);
  q->text = NULL;
  return status;
}

/* Fills the step: every generating sequence's one pending token first (the budget always
 * holds them: slots <= step tokens), then prompt pieces in slot order. Returns the tokens. */
static int64_t build_step(engine *e, int64_t *n_out) {
  int64_t n = 0;
  *n_out = 0;
  for (int pass = 0; pass < 2; pass++)
    for (int64_t s = 0; s < e->S; s++) {
      seq *q = &e->seqs[s];
      int64_t pending = q->active ? q->len - q->cached : 0;
      if (pending <= 0 || (pass == 0) != (pending == 1) || n == e->T) continue;
      int64_t take = pending < e->T - n ? pending : e->T - n;
      for (int64_t i = 0; i < take; i++, n++) {
        e->ids[n] = q->ids[q->cached + i];
        e->slot[n] = (int32_t)s;
        e->pos[n] = (int32_t)(q->cached + i);
      }
      q->cached += take;
      if (q->cached == q->len) { /* its last token ran: its logits are wanted */
        e->out[*n_out] = (int32_t)(n - 1);
        e->out_seq[(*n_out)++] = (int32_t)s;
      }
    }
  return n;
}

static int run(engine *e, vkft_gen_emit emit, void *ctx, vkft_gen_stats *st) {
  for (;;) {
    int64_t active = 0;
    for (int64_t s = 0; s < e->S; s++) {
      if (!e->seqs[s].active && admit(e, &e->seqs[s])) st->prompt_tokens += e->seqs[s].prompt;
      active += e->seqs[s].active;
    }
    if (!active) return VKFT_OK;
    if (active > st->max_active) st->max_active = active;
    int64_t n_out;
    int64_t n = build_step(e, &n_out);
    vkft_decode_step step = {
        .n = n, .ids = e->ids, .slot = e->slot, .pos = e->pos, .n_out = n_out, .out = e->out};
    double t0 = vkft_time_s();
    if (vkft_model_decode_step(e->desc->model, &step, e->logits) != VKFT_OK) return VKFT_ERR;
    st->device_seconds += vkft_time_s() - t0;
    st->steps++;
    for (int64_t i = 0; i < n_out; i++) {
      seq *q = &e->seqs[e->out_seq[i]];
      int32_t id =
          vkft_sample(q->s, e->logits + i * e->V, e->V, q->ids, q->len, &q->rng, e->scratch);
      if (advance(e, q, id, emit, ctx, st) != VKFT_OK) return VKFT_ERR;
    }
  }
}

static void engine_free(engine *e) {
  for (int64_t s = 0; e->seqs && s < e->S; s++) {
    free(e->seqs[s].ids);
    free(e->seqs[s].text);
  }
  free(e->seqs);
  free(e->ids), free(e->slot), free(e->pos), free(e->out), free(e->out_seq);
  free(e->logits);
  vkft_sampler_scratch_free(e->scratch);
}

int vkft_gen_run(const vkft_gen_desc *desc, const vkft_gen_request *requests, size_t n,
                 vkft_gen_emit emit, void *ctx, vkft_gen_stats *stats) {
  const vkft_gen_plan *plan = desc->plan;
  engine e = {.desc = desc,
              .requests = requests,
              .n_requests = n,
              .S = plan->slots,
              .T = plan->step_tokens,
              .ctx = plan->ctx,
              .V = vkft_model_get_config(desc->model)->vocab_size};
  vkft_gen_stats st = {0};
  for (size_t r = 0; r < n; r++) {
    char where[64];
    snprintf(where, sizeof where, "request %zu", r);
    if (vkft_sampling_check(&requests[r].sampling, where) != VKFT_OK) return VKFT_ERR;
    if (requests[r].prompt_len < 1 || requests[r].prompt_len >= e.ctx)
      return vkft_error_with(VKFT_ERR_INPUT,
                             "request %zu: a prompt of %lld tokens leaves no room in a context "
                             "of %lld",
                             r, (long long)requests[r].prompt_len, (long long)e.ctx);
  }
  e.seqs = calloc((size_t)e.S, sizeof *e.seqs);
  e.ids = malloc((size_t)e.T * sizeof *e.ids);
  e.slot = malloc((size_t)e.T * sizeof *e.slot);
  e.pos = malloc((size_t)e.T * sizeof *e.pos);
  e.out = malloc((size_t)e.S * sizeof *e.out);
  e.out_seq = malloc((size_t)e.S * sizeof *e.out_seq);
  e.logits = malloc((size_t)(e.S * e.V) * sizeof *e.logits);
  int status = e.seqs && e.ids && e.slot && e.pos && e.out && e.out_seq && e.logits
                   ? vkft_sampler_scratch_new(e.V, &e.scratch)
                   : vkft_error_nomem();
  for (int64_t s = 0; status == VKFT_OK && s < e.S; s++)
    if (!(e.seqs[s].ids = malloc((size_t)e.ctx * sizeof *e.seqs[s].ids)))
      status = vkft_error_nomem();
  double t0 = vkft_time_s();
  if (status == VKFT_OK) status = run(&e, emit, ctx, &st);
  st.seconds = vkft_time_s() - t0;
  if (stats) *stats = st;
  engine_free(&e);
  return status;
}
