/* `vkft generate`: one prompt, or a file of prompts generated in batches (src/gen).
 *   generate --model DIR [--adapter DIR] (--prompt TEXT | --chat TEXT) [sampling]
 *   generate --model DIR [--adapter DIR] --batch PROMPTS.jsonl --out OUT.jsonl
 *            [--as-dataset messages] [--max-batch N] [sampling]
 * sampling: --max-new-tokens N --temperature T --top-k K --top-p P --min-p P
 *           --repetition-penalty R --seed S --n N --stop STR (repeatable); in a batch every
 *           record may override them (vkft/gen.h). Output lines keep the input record's fields
 *           and add "generation", "finish_reason", "prompt_tokens", "completion_tokens" (and
 *           "sample" when n > 1), one line per sample in input order; --as-dataset messages
 *           writes SFT records instead: the prompt's messages plus the assistant reply. */
#include "commands.h"
#include "gen_session.h"

#include "vkft/error.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_STOPS = 16 };

typedef struct gen_opts {
  const char *model, *adapter, *prompt, *chat, *batch, *out, *as_dataset, *chat_template;
  vkft_sampling sampling;
  const char *stops[MAX_STOPS];
  int64_t max_batch;
  vkft_chat_template_options chat_options;
} gen_opts;

#define GENERATE_USAGE                                                                             \
  "usage: vkft generate --model DIR [--adapter DIR] (--prompt TEXT | --chat TEXT | --batch "       \
  "FILE --out FILE [--as-dataset messages] [--max-batch N])\n"                                     \
  "       [--chat-template NAME|FILE] [--max-new-tokens N] [--temperature T] [--top-k K]\n"        \
  "       [--top-p P] [--min-p P] [--repetition-penalty R] [--seed S] [--n N] [--stop STR]...\n"   \
  "       [--date YYYY-MM-DD (what the chat template's strftime_now() sees)]\n"

static int parse_opts(int argc, char **argv, gen_opts *o) {
  *o = (gen_opts){.sampling = vkft_sampling_default(), .max_batch = 32};
  vkft_sampling *s = &o->sampling;
  for (int i = 1; i < argc; i++) {
    const char *opt = argv[i], *value = i + 1 < argc ? argv[i + 1] : NULL;
    int64_t v = 0;
    int status = VKFT_OK;
    if (!value) {
      return vkft_error("%s needs a value", opt);
    } else if (!strcmp(opt, "--model")) {
      o->model = value;
    } else if (!strcmp(opt, "--adapter")) {
      o->adapter = value;
    } else if (!strcmp(opt, "--prompt")) {
      o->prompt = value;
    } else if (!strcmp(opt, "--chat")) {
      o->chat = value;
    } else if (!strcmp(opt, "--batch")) {
      o->batch = value;
    } else if (!strcmp(opt, "--out")) {
      o->out = value;
    } else if (!strcmp(opt, "--as-dataset")) {
      if (strcmp(value, "messages")) return vkft_error("--as-dataset: only \"messages\" is known");
      o->as_dataset = value;
    } else if (!strcmp(opt, "--chat-template")) {
      o->chat_template = value;
    } else if (!strcmp(opt, "--date")) {
      if (vkft_chat_template_parse_date(value, &o->chat_options))
        status = vkft_error_prefix("%s", opt);
    } else if (!strcmp(opt, "--max-new-tokens")) {
      status = cli_int_option(opt, value, 1, 1 << 24, &s->max_new_tokens);
    } else if (!strcmp(opt, "--temperature")) { /* 0: greedy */
      status = cli_double_option(opt, value, 0, 100, &s->temperature);
    } else if (!strcmp(opt, "--top-k")) { /* 0: no limit */
      status = cli_int_option(opt, value, 0, INT32_MAX, &s->top_k);
    } else if (!strcmp(opt, "--top-p")) {
      status = cli_double_option(opt, value, 1e-9, 1, &s->top_p);
    } else if (!strcmp(opt, "--min-p")) {
      status = cli_double_option(opt, value, 0, 0.999999, &s->min_p);
    } else if (!strcmp(opt, "--repetition-penalty")) {
      status = cli_double_option(opt, value, 1e-6, 100, &s->repetition_penalty);
    } else if (!strcmp(opt, "--seed")) {
      status = cli_int_option(opt, value, 0, INT64_MAX, &v);
      s->seed = (uint64_t)v;
    } else if (!strcmp(opt, "--n")) {
      status = cli_int_option(opt, value, 1, 1024, &v);
      s->n = (int)v;
    } else if (!strcmp(opt, "--stop")) {
      if (s->n_stop == MAX_STOPS) return vkft_error("--stop: at most %d strings", MAX_STOPS);
      if (!*value) return vkft_error("--stop: an empty string");
      o->stops[s->n_stop++] = value;
    } else if (!strcmp(opt, "--max-batch")) {
      status = cli_int_option(opt, value, 1, 4096, &o->max_batch);
    } else {
      return vkft_error("unknown option %s", opt);
    }
    if (status != VKFT_OK) return VKFT_ERR;
    i++;
  }
  s->stop = o->stops;
  if (!o->model || (!!o->prompt + !!o->chat + !!o->batch) != 1)
    return vkft_error("needs --model and one of --prompt, --chat or --batch");
  if (!o->batch != !o->out) return vkft_error("--batch and --out go together");
  if (o->as_dataset && !o->batch) return vkft_error("--as-dataset goes with --batch");
  return VKFT_OK;
}

/* ---- one prompt: the text printed ---- */

typedef struct single_out {
  const vkft_tokenizer *tok;
  const vkft_gen_request *request;
  int with_prompt; /* --prompt: the prompt and its continuation */
} single_out;

static int print_single(void *ctx, const vkft_gen_result *r) {
  const single_out *so = ctx;
  if (!so->with_prompt) {
    printf("%s\n", r->text);
    return VKFT_OK;
  }
  /* decode prompt and continuation together: a SentencePiece decoder strips the leading space
   * of the first token it sees, which would glue the continuation to the prompt */
  int64_t n = so->request->prompt_len + r->n_ids;
  int32_t *ids = malloc((size_t)n * sizeof *ids);
  if (!ids) return vkft_error_nomem();
  memcpy(ids, so->request->prompt, (size_t)so->request->prompt_len * sizeof *ids);
  memcpy(ids + so->request->prompt_len, r->ids, (size_t)r->n_ids * sizeof *ids);
  char *text;
  size_t len;
  int status = vkft_tokenizer_decode(so->tok, ids, (size_t)n, 1, &text, &len);
  free(ids);
  if (status != VKFT_OK) return VKFT_ERR;
  /* a stop string cuts the continuation: keep the prompt's text and the cut reply */
  if (r->finish == VKFT_FINISH_STOP) {
    char *reply = strstr(text, r->text);
    if (reply) reply[r->text_len] = '\0';
  }
  printf("%s\n", text);
  free(text);
  return VKFT_OK;
}

static int run_single(gen_session *s, const gen_opts *o) {
  cJSON *rec = cJSON_CreateObject(), *msgs = NULL;
  if (!rec) return vkft_error_nomem();
  if (o->prompt) {
    cJSON_AddStringToObject(rec, "prompt", o->prompt);
  } else {
    cJSON *m = cJSON_CreateObject();
    msgs = cJSON_AddArrayToObject(rec, "messages");
    cJSON_AddStringToObject(m, "role", "user");
    cJSON_AddStringToObject(m, "content", o->chat);
    cJSON_AddItemToArray(msgs, m);
  }
  vkft_records recs = {.items = &rec, .lines = (uint32_t[]){1}, .n = 1};
  vkft_prompt_desc pd = gen_session_prompts(s, &o->sampling);
  vkft_prompt_set ps;
  int status = vkft_prompt_set_build(&pd, &recs, o->prompt ? "--prompt" : "--chat", &ps);
  cJSON_Delete(rec);
  if (status != VKFT_OK) return VKFT_ERR;
  single_out so = {.tok = s->tok, .request = &ps.requests[0], .with_prompt = o->prompt != NULL};
  status = gen_session_open_generator(s, o->sampling.n, ps.longest);
  if (status == VKFT_OK) {
    vkft_gen_desc gd = {.model = s->model,
                        .plan = &s->plan,
                        .tokenizer = s->tok,
                        .eos_ids = s->eos,
                        .n_eos = s->n_eos};
    status = vkft_gen_run(&gd, ps.requests, 1, print_single, &so, NULL);
  }
  vkft_prompt_set_free(&ps);
  return status;
}

/* ---- a batch: output lines in input order ---- */

typedef struct batch_out {
  FILE *f;
  const vkft_records *recs;
  const vkft_prompt_set *ps;
  int as_messages;
  char ***lines; /* lines[record][sample] until the record's samples are all written */
  int *done;
  size_t next; /* first record not written yet */
  int64_t completion_tokens;
} batch_out;

/* The SFT record of a generation: the prompt's messages (a text prompt as one user message)
 * and the reply, beside the record's other fields. */
static int as_messages(const batch_out *b, size_t i, const vkft_gen_result *r, cJSON *out) {
  static const char *const prompt_keys[] = {"messages", "prompt", "instruction", "input", NULL};
  for (int k = 0; prompt_keys[k]; k++) cJSON_DeleteItemFromObjectCaseSensitive(out, prompt_keys[k]);
  cJSON *msgs = b->ps->messages[i] ? cJSON_Duplicate(b->ps->messages[i], 1) : cJSON_CreateArray();
  cJSON *reply = cJSON_CreateObject();
  if (!msgs || !reply || !cJSON_AddItemToObject(out, "messages", msgs)) {
    cJSON_Delete(msgs), cJSON_Delete(reply);
    return vkft_error_nomem();
  }
  const char *prompt = vkft_record_string(b->recs->items[i], "prompt");
  if (!b->ps->messages[i] && prompt) {
    cJSON *user = cJSON_CreateObject();
    cJSON_AddStringToObject(user, "role", "user");
    cJSON_AddStringToObject(user, "content", prompt);
    cJSON_AddItemToArray(msgs, user);
  }
  cJSON_DeleteItemFromObjectCaseSensitive(out, "system"); /* now inside the messages */
  cJSON_AddStringToObject(reply, "role", "assistant");
  cJSON_AddStringToObject(reply, "content", r->text);
  cJSON_AddItemToArray(msgs, reply);
  return VKFT_OK;
}

static int batch_emit(void *ctx, const vkft_gen_result *r) {
  batch_out *b = ctx;
  size_t i = r->request;
  const vkft_gen_request *req = &b->ps->requests[i];
  cJSON *out = cJSON_Duplicate(b->recs->items[i], 1);
  if (!out) return vkft_error_nomem();
  int status = VKFT_OK;
  if (b->as_messages) {
    status = as_messages(b, i, r, out);
    if (req->sampling.n > 1) cJSON_AddNumberToObject(out, "sample", r->sample);
  } else {
    cJSON_DeleteItemFromObjectCaseSensitive(out, "generation");
    cJSON_AddStringToObject(out, "generation", r->text);
    cJSON_AddStringToObject(out, "finish_reason", vkft_finish_name(r->finish));
    cJSON_AddNumberToObject(out, "prompt_tokens", (double)req->prompt_len);
    cJSON_AddNumberToObject(out, "completion_tokens", (double)r->n_ids);
    if (req->sampling.n > 1) cJSON_AddNumberToObject(out, "sample", r->sample);
  }
  char *line = status == VKFT_OK ? cJSON_PrintUnformatted(out) : NULL;
  cJSON_Delete(out);
  if (!line) return status == VKFT_OK ? vkft_error_nomem() : status;
  b->completion_tokens += r->n_ids;
  if (!b->lines[i] && !(b->lines[i] = calloc((size_t)req->sampling.n, sizeof *b->lines[i]))) {
    free(line);
    return vkft_error_nomem();
  }
  b->lines[i][r->sample] = line;
  b->done[i]++;
  for (; b->next < b->recs->n && b->done[b->next] == b->ps->requests[b->next].sampling.n;
       b->next++) {
    for (int j = 0; j < b->done[b->next]; j++) {
      fputs(b->lines[b->next][j], b->f);
      fputc('\n', b->f);
      free(b->lines[b->next][j]);
    }
    free(b->lines[b->next]);
    b->lines[b->next] = NULL;
  }
  return ferror(b->f) ? vkft_error_with(VKFT_ERR_IO, "writing the output failed") : VKFT_OK;
}

static int run_batch(gen_session *s, const gen_opts *o) {
  vkft_records recs;
  if (vkft_records_read(o->batch, &recs) != VKFT_OK) return VKFT_ERR;
  vkft_prompt_desc pd = gen_session_prompts(s, &o->sampling);
  vkft_prompt_set ps;
  if (vkft_prompt_set_build(&pd, &recs, o->batch, &ps) != VKFT_OK) {
    vkft_records_free(&recs);
    return VKFT_ERR;
  }
  int64_t jobs = 0;
  for (size_t i = 0; i < ps.n; i++) jobs += ps.requests[i].sampling.n;
  batch_out b = {.recs = &recs, .ps = &ps, .as_messages = o->as_dataset != NULL};
  b.lines = calloc(recs.n + 1, sizeof *b.lines);
  b.done = calloc(recs.n + 1, sizeof *b.done);
  int status = b.lines && b.done ? VKFT_OK : vkft_error_nomem();
  if (status == VKFT_OK && jobs > 0)
    status = gen_session_open_generator(s, jobs < o->max_batch ? jobs : o->max_batch, ps.longest);
  cli_out of = {0};
  if (status == VKFT_OK) status = cli_out_open(&of, o->out);
  vkft_gen_stats st = {0};
  if (status == VKFT_OK) {
    b.f = of.f;
    if (jobs > 0)
      fprintf(stderr,
              "generate: %zu prompts, %lld sequences; %lld at once of up to %lld "
              "positions (KV cache %.1f MiB)\n",
              recs.n, (long long)jobs, (long long)s->plan.slots, (long long)s->plan.ctx,
              s->plan.cache_bytes / 1048576.0);
    vkft_gen_desc gd = {.model = s->model,
                        .plan = &s->plan,
                        .tokenizer = s->tok,
                        .eos_ids = s->eos,
                        .n_eos = s->n_eos};
    if (jobs > 0) status = vkft_gen_run(&gd, ps.requests, ps.n, batch_emit, &b, &st);
    status = cli_out_close(&of, status == VKFT_OK) || status;
  }
  if (status == VKFT_OK)
    fprintf(stderr,
            "generate: %lld tokens generated in %.2f s (%.1f tokens/s; %lld prompt tokens, "
            "%lld steps) -> %s\n",
            (long long)st.generated_tokens, st.seconds,
            st.seconds > 0 ? st.generated_tokens / st.seconds : 0.0, (long long)st.prompt_tokens,
            (long long)st.steps, o->out);
  for (size_t i = 0; b.lines && i < recs.n; i++) {
    for (int j = 0; b.lines[i] && j < ps.requests[i].sampling.n; j++) free(b.lines[i][j]);
    free(b.lines[i]);
  }
  free(b.lines);
  free(b.done);
  vkft_prompt_set_free(&ps);
  vkft_records_free(&recs);
  return status ? VKFT_ERR : VKFT_OK;
}

int vkft_cmd_generate(int argc, char **argv) {
  cli_device_opts dev_opts;
  if (cli_take_device_opts(&argc, argv, &dev_opts) != VKFT_OK) return cli_usage_error();
  gen_opts o;
  if (parse_opts(argc, argv, &o) != VKFT_OK) {
    fprintf(stderr, "vkft generate: %s\n" GENERATE_USAGE, vkft_error_message());
    return CLI_EXIT_USAGE;
  }
  gen_session s;
  int status = gen_session_open_text(&s, &dev_opts, o.model, o.adapter, o.chat_template);
  s.chat_options = o.chat_options;
  if (status == VKFT_OK) status = o.batch ? run_batch(&s, &o) : run_single(&s, &o);
  gen_session_close(&s);
  return status == VKFT_OK ? 0 : cli_fail();
}
