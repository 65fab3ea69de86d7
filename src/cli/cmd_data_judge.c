/* `vkft data judge`: LLM-as-judge. Every record's last exchange (instruction and reply, any SFT
 * format) goes into the rubric (a shipped default, or --rubric FILE with {{instruction}} and
 * {{response}}); the model's verdict is generated (greedy by default, in batches by src/gen) and
 * its 1-10 score read by the grammar of vkft_judge_parse_score. Each output line is the input
 * record with "scores": {"judge_score": N or null} (added to the record's "scores" when it has
 * them), "judge_rationale" (the verdict's text), "judge_model" and, when the score is null,
 * "judge_error". A record without an instruction and a reply stops the run before any
 * generation, naming file:line and the field. */
#include "cmd_data.h"
#include "commands.h"
#include "datagen.h"

#include "vkft/datagen.h"
#include "vkft/error.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct judge_opts {
  datagen_opts gen;
  const char *data, *out, *rubric;
  int json;
} judge_opts;

#define JUDGE_USAGE                                                                                \
  "usage: vkft data judge --model DIR [--adapter DIR] --data FILE --out FILE [--rubric FILE]\n"    \
  "       [--max-new-tokens 256] [--temperature 0] [--top-p 1] [--seed S] [--max-batch 32]\n"      \
  "       [--chat-template NAME|FILE] [--json]\n"

static int parse_opts(int argc, char **argv, judge_opts *o) {
  *o = (judge_opts){.gen = datagen_opts_default()};
  for (int i = 1; i < argc; i++) {
    const char *opt = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(opt, "--json")) {
      o->json = 1;
      continue;
    }
    if (!v) return vkft_error("%s needs a value", opt);
    int known = datagen_parse_option(&o->gen, opt, v);
    if (known == VKFT_ERR) return VKFT_ERR;
    if (known) {
      i++;
      continue;
    }
    if (!strcmp(opt, "--data")) {
      o->data = v;
    } else if (!strcmp(opt, "--out")) {
      o->out = v;
    } else if (!strcmp(opt, "--rubric")) {
      o->rubric = v;
    } else {
      return vkft_error("unknown option %s", opt);
    }
    i++;
  }
  if (!o->gen.model || !o->data || !o->out) return vkft_error("needs --model, --data and --out");
  return VKFT_OK;
}

/* The rubric prompt of every record; errors name file:line. */
static int render_prompts(const judge_opts *o, const vkft_records *recs, const char *rubric,
                          char **texts) {
  for (size_t i = 0; i < recs->n; i++) {
    char *instruction, *response;
    if (vkft_judge_record_turn(recs->items[i], &instruction, &response) != VKFT_OK)
      return vkft_error_prefix("%s:%u", o->data, recs->lines[i]);
    vkft_template_var vars[] = {{"instruction", instruction}, {"response", response}};
    int status = vkft_template_render(rubric, "rubric", vars, 2, &texts[i], NULL);
    free(instruction);
    free(response);
    if (status != VKFT_OK) return VKFT_ERR;
  }
  return VKFT_OK;
}

typedef struct judge_counts {
  size_t scored, no_score, out_of_range, prompt_too_long;
} judge_counts;

/* The record with the verdict's fields, as one JSON line. */
static char *judged_line(const judge_opts *o, const cJSON *record, const datagen_reply *reply,
                         judge_counts *counts) {
  cJSON *r = cJSON_Duplicate(record, 1);
  if (!r) return NULL;
  double score = 0;
  char error[128];
  int ok = 0;
  if (!reply->text) {
    snprintf(error, sizeof error, "prompt too long for the model's context (%lld tokens)",
             (long long)reply->prompt_tokens);
    counts->prompt_too_long++;
  } else if ((ok = vkft_judge_parse_score(reply->text, &score, error, sizeof error))) {
    counts->scored++;
  } else {
    (*(strstr(error, "no score") ? &counts->no_score : &counts->out_of_range))++;
  }
  cJSON *scores = cJSON_GetObjectItemCaseSensitive(r, "scores");
  if (!cJSON_IsObject(scores)) {
    cJSON_DeleteItemFromObjectCaseSensitive(r, "scores");
    scores = cJSON_AddObjectToObject(r, "scores");
  }
  cJSON_DeleteItemFromObjectCaseSensitive(scores, "judge_score");
  if (ok)
    cJSON_AddNumberToObject(scores, "judge_score", score);
  else
    cJSON_AddNullToObject(scores, "judge_score");
  static const char *const fields[] = {"judge_rationale", "judge_model", "judge_error"};
  for (int f = 0; f < 3; f++) cJSON_DeleteItemFromObjectCaseSensitive(r, fields[f]);
  cJSON_AddStringToObject(r, "judge_rationale", reply->text ? reply->text : "");
  cJSON_AddStringToObject(r, "judge_model", o->gen.model);
  if (!ok) cJSON_AddStringToObject(r, "judge_error", error);
  char *line = cJSON_PrintUnformatted(r);
  cJSON_Delete(r);
  return line;
}

static void print_summary(const judge_opts *o, size_t n, const judge_counts *c,
                          const vkft_gen_stats *st) {
  double tps = st->seconds > 0 ? st->generated_tokens / st->seconds : 0;
  if (o->json) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "records", (double)n);
    cJSON_AddNumberToObject(j, "scored", (double)c->scored);
    cJSON_AddNumberToObject(j, "no_score", (double)c->no_score);
    cJSON_AddNumberToObject(j, "out_of_range", (double)c->out_of_range);
    cJSON_AddNumberToObject(j, "prompt_too_long", (double)c->prompt_too_long);
    cJSON_AddNumberToObject(j, "generated_tokens", (double)st->generated_tokens);
    cJSON_AddNumberToObject(j, "seconds", st->seconds);
    cJSON_AddNumberToObject(j, "tokens_per_s", tps);
    cJSON_AddStringToObject(j, "out", o->out);
    cli_data_print_json(j);
    return;
  }
  fprintf(stderr,
          "judge: %zu records, %zu scored; judge_score null: %zu no score found, %zu out of "
          "range or scale, %zu prompt too long; %lld tokens generated in %.2f s (%.1f "
          "tokens/s) -> %s\n",
          n, c->scored, c->no_score, c->out_of_range, c->prompt_too_long,
          (long long)st->generated_tokens, st->seconds, tps, o->out);
}

static int run_judge(const judge_opts *o, gen_session *s, const cli_device_opts *dev_opts) {
  static const char *const names[] = {"instruction", "response"};
  vkft_records recs = {0};
  char *rubric = NULL, **texts = NULL;
  datagen_prompt *prompts = NULL;
  datagen_reply *replies = NULL;
  int status =
      datagen_load_template(o->rubric, "judge-rubric.txt", "--rubric", names, 2, 2, &rubric);
  if (status == VKFT_OK) status = vkft_records_read(o->data, &recs);
  if (status == VKFT_OK && recs.n == 0)
    status = vkft_error_with(VKFT_ERR_INPUT, "%s: no records", o->data);
  size_t n = recs.n;
  if (status == VKFT_OK) {
    texts = calloc(n, sizeof *texts);
    prompts = calloc(n, sizeof *prompts);
    replies = calloc(n, sizeof *replies);
    if (!texts || !prompts || !replies) status = vkft_error_nomem();
  }
  if (status == VKFT_OK) status = render_prompts(o, &recs, rubric, texts);
  if (status == VKFT_OK)
    status = gen_session_open_text(s, dev_opts, o->gen.model, o->gen.adapter, o->gen.chat_template);
  vkft_gen_stats st = {0};
  for (size_t i = 0; status == VKFT_OK && i < n; i++)
    prompts[i] = (datagen_prompt){texts[i], o->gen.sampling.seed, o->gen.sampling.max_new_tokens};
  if (status == VKFT_OK)
    status = datagen_generate(s, &o->gen.sampling, prompts, n, o->gen.max_batch, 0, replies, &st);
  cli_out of = {0};
  judge_counts counts = {0};
  if (status == VKFT_OK) status = cli_out_open(&of, o->out);
  if (status == VKFT_OK) {
    for (size_t i = 0; i < n && status == VKFT_OK; i++) {
      char *line = judged_line(o, recs.items[i], &replies[i], &counts);
      if (!line) status = vkft_error_nomem();
      if (line) fprintf(of.f, "%s\n", line);
      free(line);
    }
    if (status == VKFT_OK && ferror(of.f))
      status = vkft_error_with(VKFT_ERR_IO, "%s: write failed", o->out);
    status = cli_out_close(&of, status == VKFT_OK) || status;
  }
  if (status == VKFT_OK) print_summary(o, n, &counts, &st);
  if (replies) datagen_replies_free(replies, n);
  for (size_t i = 0; texts && i < n; i++) free(texts[i]);
  free(texts), free(prompts), free(replies), free(rubric);
  vkft_records_free(&recs);
  return status ? VKFT_ERR : VKFT_OK;
}

int cli_data_judge(int argc, char **argv) {
  cli_device_opts dev_opts;
  if (cli_take_device_opts(&argc, argv, &dev_opts) != VKFT_OK) return cli_usage_error();
  if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
    fputs(JUDGE_USAGE, stdout);
    return 0;
  }
  judge_opts o;
  if (parse_opts(argc, argv, &o) != VKFT_OK) {
    fprintf(stderr, "vkft data judge: %s\n" JUDGE_USAGE, vkft_error_message());
    return CLI_EXIT_USAGE;
  }
  gen_session s = {0};
  int status = run_judge(&o, &s, &dev_opts);
  gen_session_close(&s);
  return status == VKFT_OK ? 0 : cli_fail();
}
