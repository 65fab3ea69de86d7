/* Options, templates and batched replies for the model-written data tools (see datagen.h). */
#include "datagen.h"

#include "commands.h"

#include "vkft/error.h"
#include "vkft/platform.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

datagen_opts datagen_opts_default(void) {
  datagen_opts g = {.sampling = vkft_sampling_default(), .max_batch = 32};
  g.sampling.max_new_tokens = 256;
  return g;
}

int datagen_parse_option(datagen_opts *g, const char *opt, const char *v) {
  int64_t seed = 0;
  int status;
  if (!strcmp(opt, "--model")) {
    g->model = v;
    return 1;
  } else if (!strcmp(opt, "--adapter")) {
    g->adapter = v;
    return 1;
  } else if (!strcmp(opt, "--chat-template")) {
    g->chat_template = v;
    return 1;
  } else if (!strcmp(opt, "--temperature")) {
    status = cli_double_option(opt, v, 0, 100, &g->sampling.temperature);
  } else if (!strcmp(opt, "--top-p")) {
    status = cli_double_option(opt, v, 1e-9, 1, &g->sampling.top_p);
  } else if (!strcmp(opt, "--max-new-tokens")) {
    status = cli_int_option(opt, v, 1, 1 << 20, &g->sampling.max_new_tokens);
  } else if (!strcmp(opt, "--seed")) {
    status = cli_int_option(opt, v, 0, INT64_MAX, &seed);
    g->sampling.seed = (uint64_t)seed;
  } else if (!strcmp(opt, "--max-batch")) {
    status = cli_int_option(opt, v, 1, 4096, &g->max_batch);
  } else {
    return 0;
  }
  return status == VKFT_OK ? 1 : VKFT_ERR;
}

int datagen_load_template(const char *file, const char *builtin, const char *option,
                          const char *const *names, size_t n_names, size_t n_required,
                          char **text) {
  *text = NULL;
  char *t;
  size_t len;
  const char *where = file ? file : builtin;
  if (file) {
    if (vkft_file_read(file, &t, &len) != VKFT_OK) return vkft_error_prefix("%s", option);
  } else {
    const char *b = vkft_template_builtin(builtin);
    if (!b) return vkft_error("the shipped template %s is missing from this build", builtin);
    len = strlen(b);
    if (!(t = malloc(len + 1))) return vkft_error_nomem();
    memcpy(t, b, len + 1);
  }
  if (len && t[len - 1] == '\n') t[--len] = 0;
  if (len && t[len - 1] == '\r') t[--len] = 0;
  /* rendered with every name standing for itself: unknown names fail, uses are counted */
  enum { MAX_NAMES = 8 };
  vkft_template_var vars[MAX_NAMES];
  size_t used[MAX_NAMES];
  for (size_t k = 0; k < n_names && k < MAX_NAMES; k++) vars[k] = (vkft_template_var){names[k], ""};
  char *check;
  if (vkft_template_render(t, where, vars, n_names, &check, used) != VKFT_OK) {
    free(t);
    return VKFT_ERR;
  }
  free(check);
  for (size_t k = 0; k < n_required; k++)
    if (!used[k]) {
      free(t);
      return vkft_error_with(VKFT_ERR_INPUT, "%s: the template has no {{%s}}", where, names[k]);
    }
  *text = t;
  return VKFT_OK;
}

/* The prompt record of a text: one user message for a chat model, a plain prompt otherwise. */
static cJSON *prompt_record(const gen_session *s, const datagen_prompt *p) {
  cJSON *rec = cJSON_CreateObject();
  if (!rec) return NULL;
  int ok;
  if (s->tmpl) {
    cJSON *msgs = cJSON_AddArrayToObject(rec, "messages"), *m = cJSON_CreateObject();
    ok = msgs && m && cJSON_AddStringToObject(m, "role", "user") &&
         cJSON_AddStringToObject(m, "content", p->text);
    if (ok) ok = cJSON_AddItemToArray(msgs, m);
    if (!ok) cJSON_Delete(m); /* not in the array */
  } else {
    ok = cJSON_AddStringToObject(rec, "prompt", p->text) != NULL;
  }
  ok = ok && cJSON_AddNumberToObject(rec, "seed", (double)p->seed) &&
       cJSON_AddNumberToObject(rec, "max_new_tokens", (double)p->max_new_tokens);
  if (!ok) {
    cJSON_Delete(rec);
    return NULL;
  }
  return rec;
}

/* The requests of prompts (their records freed after). */
static int build_requests(const gen_session *s, const vkft_sampling *defaults,
                          const datagen_prompt *prompts, size_t n, vkft_prompt_set *ps) {
  vkft_records recs = {.items = calloc(n ? n : 1, sizeof(cJSON *)),
                       .lines = calloc(n ? n : 1, sizeof(uint32_t))};
  int status = recs.items && recs.lines ? VKFT_OK : vkft_error_nomem();
  for (size_t i = 0; i < n && status == VKFT_OK; i++) {
    recs.lines[i] = (uint32_t)(i + 1);
    if (!(recs.items[i] = prompt_record(s, &prompts[i]))) status = vkft_error_nomem();
    recs.n = i + 1;
  }
  vkft_prompt_desc pd = gen_session_prompts(s, defaults);
  if (status == VKFT_OK) status = vkft_prompt_set_build(&pd, &recs, "prompt", ps);
  vkft_records_free(&recs);
  return status;
}

int datagen_prompt_tokens(const gen_session *s, const char *text, int64_t *n) {
  vkft_sampling sampling = vkft_sampling_default();
  datagen_prompt p = {.text = text, .max_new_tokens = 1};
  vkft_prompt_set ps;
  if (build_requests(s, &sampling, &p, 1, &ps) != VKFT_OK) return VKFT_ERR;
  *n = ps.requests[0].prompt_len;
  vkft_prompt_set_free(&ps);
  return VKFT_OK;
}

typedef struct collect {
  const size_t *which; /* request -> prompt */
  datagen_reply *replies;
} collect;

static int collect_reply(void *ctx, const vkft_gen_result *r) {
  collect *c = ctx;
  datagen_reply *out = &c->replies[c->which[r->request]];
  if (!(out->text = malloc(r->text_len + 1))) return vkft_error_nomem();
  memcpy(out->text, r->text, r->text_len + 1);
  out->finish = r->finish;
  out->completion_tokens = r->n_ids;
  return VKFT_OK;
}

int datagen_generate(gen_session *s, const vkft_sampling *defaults, const datagen_prompt *prompts,
                     size_t n, int64_t max_batch, int64_t min_ctx, datagen_reply *replies,
                     vkft_gen_stats *stats) {
  memset(replies, 0, n * sizeof *replies);
  if (n == 0) return VKFT_OK;
  vkft_prompt_set ps;
  if (build_requests(s, defaults, prompts, n, &ps) != VKFT_OK) return VKFT_ERR;
  int status = VKFT_OK;
  if (!s->model) {
    int64_t ctx = ps.longest > min_ctx ? ps.longest : min_ctx;
    status = gen_session_open_generator(s, (int64_t)n < max_batch ? (int64_t)n : max_batch, ctx);
  }
  /* the prompts that leave room for a new token, in order */
  vkft_gen_request *requests = calloc(n, sizeof *requests);
  size_t *which = calloc(n, sizeof *which), m = 0;
  if (status == VKFT_OK && (!requests || !which)) status = vkft_error_nomem();
  for (size_t i = 0; status == VKFT_OK && i < n; i++) {
    replies[i].prompt_tokens = ps.requests[i].prompt_len;
    if (ps.requests[i].prompt_len >= s->plan.ctx) continue;
    which[m] = i;
    requests[m++] = ps.requests[i];
  }
  vkft_gen_stats st = {0};
  collect c = {.which = which, .replies = replies};
  if (status == VKFT_OK && m) {
    vkft_gen_desc gd = {.model = s->model,
                        .plan = &s->plan,
                        .tokenizer = s->tok,
                        .eos_ids = s->eos,
                        .n_eos = s->n_eos};
    status = vkft_gen_run(&gd, requests, m, collect_reply, &c, &st);
  }
  stats->steps += st.steps;
  stats->prompt_tokens += st.prompt_tokens;
  stats->generated_tokens += st.generated_tokens;
  stats->seconds += st.seconds;
  stats->device_seconds += st.device_seconds;
  free(requests);
  free(which);
  vkft_prompt_set_free(&ps);
  if (status != VKFT_OK) datagen_replies_free(replies, n);
  return status;
}

void datagen_replies_free(datagen_reply *replies, size_t n) {
  for (size_t i = 0; replies && i < n; i++) {
    free(replies[i].text);
    replies[i].text = NULL;
  }
}
