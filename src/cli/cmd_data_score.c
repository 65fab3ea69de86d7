/* `vkft data score`: quality scores of every record under a model, written beside the record.
 *   data score --model DIR [--adapter DIR] --data FILE --out FILE.jsonl [--format F]
 *              [--template T] [--max-len N] [--train-on assistant|all] [--batch N] [--json]
 * Each output line is the input record with "scores": {"loss", "ppl", "ifd", "tokens",
 * "response_tokens"} added (into an existing "scores" object: other scores stay):
 *   loss  mean cross-entropy of the trained tokens (the response) given all before them: the
 *         forward of training, so it equals `vkft eval` on the record alone;
 *   ppl   exp(loss);
 *   ifd   instruction-following difficulty, Li et al., "From Quantity to Quality" (NAACL 2024,
 *         arXiv 2308.12032): loss of the response given the prompt / loss of the response
 *         alone. "Alone" is the trained tokens in order behind the tokenizer's BOS (without a
 *         BOS, the first of them is context, not scored); null when that leaves no token;
 *   tokens, response_tokens: the example's tokens (after truncation) and its trained ones.
 * Forward only, no generation. Records go through the device --batch at a time (default 8):
 * two micro-batch slots each (with and without the prompt), one submission per group; a slot is
 * computed as if alone, so the scores do not depend on the grouping. Records that do not parse
 * or keep no trained token are listed on stderr and left out of the output (counted). */
#include "cmd_data.h"
#include "commands.h"
#include "gen_session.h"

#include "vkft/dataset.h"
#include "vkft/error.h"
#include "vkft/model.h"
#include "vkft/platform.h"
#include "vkft/tokenizer.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_GROUP = 32 }; /* records per submission: two slots each, 64 slots at most */

/* Host copies of one sequence, uploaded with vkft_model_set_batch (which copies them). */
typedef struct seq_buf {
  int32_t *ids, *labels, *pos, *seq;
} seq_buf;

static int upload(vkft_model *m, int slot, seq_buf *b, int64_t T) {
  for (int64_t t = 0; t < T; t++) {
    b->pos[t] = (int32_t)t;
    b->seq[t] = 0;
  }
  vkft_model_batch mb = {T, b->ids, b->labels, b->pos, b->seq};
  return vkft_model_set_batch(m, slot, &mb);
}

/* The response alone: BOS (when there is one, not scored) then the trained tokens, all scored
 * but the first position. Returns its length; 0 when no token would be scored. */
static int64_t response_alone(const vkft_example *ex, int32_t bos, seq_buf *b) {
  int64_t T = 0;
  if (bos >= 0) {
    b->ids[0] = bos;
    b->labels[0] = VKFT_LABEL_IGNORE;
    T = 1;
  }
  for (uint32_t t = 0; t < ex->len; t++)
    if (ex->labels[t] != VKFT_LABEL_IGNORE) {
      b->ids[T] = ex->input_ids[t];
      b->labels[T] = T ? ex->input_ids[t] : VKFT_LABEL_IGNORE;
      T++;
    }
  return T >= 2 ? T : 0;
}

/* Sets key to a number (NaN: null) in obj, replacing what was there. */
static void put_number(cJSON *obj, const char *key, double v) {
  cJSON_DeleteItemFromObjectCaseSensitive(obj, key);
  if (isnan(v))
    cJSON_AddNullToObject(obj, key);
  else
    cJSON_AddNumberToObject(obj, key, v);
}

/* The record's line with its scores (merged into a "scores" object it has: a judge's score or
 * another tool's stays); NULL when out of memory or the bytes are not JSON. */
static char *scored_line(const vkft_example *ex, double loss, double alone_loss) {
  cJSON *r = cJSON_ParseWithLength(ex->raw, ex->raw_len);
  char *line = NULL;
  if (cJSON_IsObject(r)) {
    cJSON *s = cJSON_GetObjectItemCaseSensitive(r, "scores");
    if (!cJSON_IsObject(s)) {
      cJSON_DeleteItemFromObjectCaseSensitive(r, "scores");
      s = cJSON_AddObjectToObject(r, "scores");
    }
    if (s) {
      put_number(s, "loss", loss);
      put_number(s, "ppl", exp(loss));
      put_number(s, "ifd", alone_loss > 0 ? loss / alone_loss : NAN);
      put_number(s, "tokens", (double)ex->len);
      put_number(s, "response_tokens", (double)ex->n_trained);
      line = cJSON_PrintUnformatted(r);
    }
  }
  cJSON_Delete(r);
  return line;
}

typedef struct score_run {
  gen_session *s;
  const vkft_dataset *ds;
  FILE *out;
  int32_t bos;
  seq_buf buf;
  size_t scored, tokens;
} score_run;

/* Records first .. end-1 (the OK ones) in one submission, written in order. */
static int score_group(score_run *r, size_t first, size_t end) {
  vkft_model *m = r->s->model;
  int has_alone[MAX_GROUP] = {0};
  int status = VKFT_OK;
  for (size_t i = first; i < end && status == VKFT_OK; i++) {
    vkft_example *ex = &r->ds->examples[i];
    int slot = 2 * (int)(i - first);
    if (ex->status != VKFT_EXAMPLE_OK) continue;
    memcpy(r->buf.ids, ex->input_ids, ex->len * sizeof *r->buf.ids);
    memcpy(r->buf.labels, ex->labels, ex->len * sizeof *r->buf.labels);
    status = upload(m, slot, &r->buf, ex->len);
    int64_t T = response_alone(ex, r->bos, &r->buf);
    has_alone[i - first] = T > 0;
    if (status == VKFT_OK && T > 0) status = upload(m, slot + 1, &r->buf, T);
  }
  if (status == VKFT_OK) status = vkft_begin(r->s->be);
  for (size_t i = first; i < end && status == VKFT_OK; i++) {
    int slot = 2 * (int)(i - first);
    if (r->ds->examples[i].status != VKFT_EXAMPLE_OK) continue;
    status = vkft_model_forward_backward(m, slot, 0.0f, 0);
    if (status == VKFT_OK && has_alone[i - first])
      status = vkft_model_forward_backward(m, slot + 1, 0.0f, 0);
  }
  if (vkft_end(r->s->be) != VKFT_OK) status = VKFT_ERR;
  for (size_t i = first; i < end && status == VKFT_OK; i++) {
    const vkft_example *ex = &r->ds->examples[i];
    int slot = 2 * (int)(i - first);
    if (ex->status != VKFT_EXAMPLE_OK) continue;
    double sum, count, alone_sum = 0, alone_count = 0;
    status = vkft_model_read_loss(m, slot, &sum, &count);
    if (status == VKFT_OK && has_alone[i - first])
      status = vkft_model_read_loss(m, slot + 1, &alone_sum, &alone_count);
    if (status != VKFT_OK) break;
    char *line = scored_line(ex, sum / count, alone_count > 0 ? alone_sum / alone_count : 0);
    if (!line) return vkft_error_nomem();
    fputs(line, r->out);
    fputc('\n', r->out);
    free(line);
    r->scored++;
    r->tokens += ex->len;
  }
  return status;
}

static int usage(void) {
  fprintf(stderr, "usage: vkft data score --model DIR [--adapter DIR] --data FILE --out FILE "
                  "[--format F] [--template T] [--max-len N] [--train-on assistant|all] "
                  "[--batch N] [--json]\n");
  return CLI_EXIT_USAGE;
}

int cli_data_score(int argc, char **argv) {
  cli_device_opts dev_opts;
  if (cli_take_device_opts(&argc, argv, &dev_opts) != VKFT_OK) return cli_fail();
  cli_eval_opts eo = {0};
  const char *out = NULL;
  int64_t group = 8;
  int json = 0;
  for (int i = 1; i < argc; i++) {
    int taken = cli_eval_take_opt(&eo, argc, argv, &i);
    if (taken < 0) return cli_usage_error();
    if (taken) continue;
    if (!strcmp(argv[i], "--out") && i + 1 < argc) {
      out = argv[++i];
    } else if (!strcmp(argv[i], "--batch") && i + 1 < argc) {
      if (cli_int_option("--batch", argv[++i], 1, MAX_GROUP, &group)) return cli_usage_error();
    } else if (!strcmp(argv[i], "--json")) {
      json = 1;
    } else {
      return usage();
    }
  }
  if (!eo.model || !eo.data || !out) {
    fprintf(stderr, "vkft data score: needs --model, --data and --out\n");
    return usage();
  }
  gen_session gs;
  vkft_dataset *ds;
  int status = cli_eval_open(&eo, &dev_opts, 1, 2 * (int)group, &gs, &ds);
  for (size_t i = 0; ds && i < ds->n_issues; i++)
    fprintf(stderr, "vkft: data: %s\n", ds->issues[i]);
  score_run r = {.s = &gs, .ds = ds, .bos = gs.tok ? vkft_tokenizer_bos_id(gs.tok) : -1};
  size_t T = ds ? (size_t)ds->max_len + 1 : 1;
  r.buf = (seq_buf){malloc(T * 4), malloc(T * 4), malloc(T * 4), malloc(T * 4)};
  if (status == VKFT_OK && !(r.buf.ids && r.buf.labels && r.buf.pos && r.buf.seq))
    status = vkft_error_nomem();
  cli_out of = {0};
  if (status == VKFT_OK) status = cli_out_open(&of, out);
  double t0 = vkft_time_s();
  if (status == VKFT_OK) {
    r.out = of.f;
    for (size_t i = 0; i < ds->n_examples && status == VKFT_OK; i += (size_t)group) {
      size_t end = i + (size_t)group < ds->n_examples ? i + (size_t)group : ds->n_examples;
      status = score_group(&r, i, end);
      if (status == VKFT_OK && vkft_console_is_tty(stderr))
        fprintf(stderr, "\r\033[Kscore %zu/%zu", end, ds->n_examples);
    }
    if (vkft_console_is_tty(stderr)) fputc('\n', stderr);
    if (status == VKFT_OK && ferror(of.f))
      status = vkft_error_with(VKFT_ERR_IO, "%s: write failed", out);
    status = cli_out_close(&of, status == VKFT_OK) || status;
  }
  double seconds = vkft_time_s() - t0;
  size_t left_out = ds ? ds->n_examples - r.scored : 0;
  free(r.buf.ids);
  free(r.buf.labels);
  free(r.buf.pos);
  free(r.buf.seq);
  vkft_dataset_free(ds); /* before the session: it borrows the session's tokenizer */
  gen_session_close(&gs);
  if (status != VKFT_OK) return cli_fail();
  if (json)
    printf("{\"scored\": %zu, \"left_out\": %zu, \"tokens\": %zu, \"seconds\": %.3f, "
           "\"tokens_per_s\": %.1f}\n",
           r.scored, left_out, r.tokens, seconds, seconds > 0 ? r.tokens / seconds : 0.0);
  else
    fprintf(stderr,
            "score: %zu records scored (%zu tokens, each record twice: with and without its "
            "prompt) in %.2f s (%.0f tokens/s); %zu left out -> %s\n",
            r.scored, r.tokens, seconds, seconds > 0 ? r.tokens / seconds : 0.0, left_out, out);
  return 0;
}
