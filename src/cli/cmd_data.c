/* `vkft data prepare|stats|dedup|filter|preview|score`: the dataset tools (preference pairs are
 * handed to cmd_data_pref.c). prepare writes the examples as they will be trained
 * ({"input_ids", "labels"} per record, in input order, before packing; bad records and examples
 * left with no trained token are reported and left out); stats describes a dataset; dedup and
 * filter write the kept records plus a report of the removed ones; preview shows a rendered
 * example with its trained tokens highlighted; score (cmd_data_score.c) adds a model's scores.
 * Tools that write data print a one-line summary (--json: the summary as a JSON object). */
#include "cmd_data.h"
#include "commands.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vkft/dataset.h"
#include "vkft/error.h"
#include "vkft/platform.h"
#include "vkft/tokenizer.h"

static int usage(void) {
  fprintf(stderr,
          "usage: vkft data prepare --model DIR --data FILE --out FILE.jsonl [options]\n"
          "       vkft data stats   --model DIR --data FILE [--json]\n"
          "       vkft data dedup   --data FILE --out FILE [--threshold 0.8] [--model DIR "
          "--tokens]\n"
          "       vkft data filter  --data FILE --out FILE [rules] [--model DIR]\n"
          "       vkft data preview --model DIR --data FILE [--index N] [--count N]\n"
          "       vkft data score   --model DIR [--adapter DIR] --data FILE --out FILE "
          "[--batch N]\n"
          "       vkft data synth   --model DIR --seed-tasks FILE --out FILE [--n N] "
          "(vkft data synth --help)\n"
          "       vkft data judge   --model DIR --data FILE --out FILE [--rubric FILE] "
          "(vkft data judge --help)\n"
          "       vkft data explore --model DIR --data FILE --out map.html [--k K] [--json F]\n"
          "options: --format auto|alpaca|sharegpt|messages|prompt_completion|text|tokens\n"
          "         or, for preference pairs (detected by their \"chosen\"/\"rejected\"): "
          "trl_standard|\n"
          "         trl_conversational|trl_implicit_prompt|sharegpt_ranking|alpaca_ranking|"
          "trl_tokenized\n"
          "         --template NAME|FILE.jinja|DIR  --max-len N  --train-on assistant|all\n"
          "         --enable-thinking true|false  --strict  --threads N  --json\n"
          "         --report FILE (dedup/filter; default OUT.report.jsonl)\n"
          "dedup:   --threshold J (MinHash Jaccard, default 0.8; 1 = exact only) --num-perm N\n"
          "         --shingle N (default 5 characters, 3 with --tokens) --tokens (token "
          "shingles)\n"
          "filter:  --min-reply-chars N --max-reply-chars N --min-tokens N --max-tokens N\n"
          "         --min FIELD=V --max FIELD=V (numbers in the \"scores\" of `data score`)\n"
          "         --keep-empty --keep-refusals --script latin|cjk|cyrillic|greek|arabic|hebrew|"
          "devanagari\n"
          "         --min-script-ratio R (0.5) --max-repeated-lines R (0.5; 1 = off)\n"
          "preview: --color / --no-color (default: colour on a terminal, [[brackets]] "
          "otherwise)\n"
          "pairs:   --style dpo|orpo (TRL's tokenization for each; default dpo)\n"
          "         --max-prompt-len N (keeps the prompt's end) --max-completion-len N\n"
          "DIR may hold only tokenizer files. Several --data files may be given.\n");
  return 2;
}

static int parse_num(const char *flag, const char *s, double lo, double hi, double *out) {
  char *end;
  double v = strtod(s, &end);
  if (!*s || *end || !(v >= lo && v <= hi))
    return vkft_error("%s: \"%s\" is not a number in [%g, %g]", flag, s, lo, hi);
  *out = v;
  return VKFT_OK;
}

/* filter --min/--max FIELD=V: a bound on a number of the records' "scores" */
static int add_bound(data_opts *o, const char *flag, const char *v) {
  const char *eq = strchr(v, '=');
  size_t n = eq ? (size_t)(eq - v) : 0;
  if (o->filter.n_bounds == MAX_BOUNDS) return vkft_error("at most %d --min/--max", MAX_BOUNDS);
  if (!n || n >= sizeof o->bound_fields[0])
    return vkft_error("%s: \"%s\" is not FIELD=NUMBER (a field of \"scores\", such as ppl=20)",
                      flag, v);
  vkft_score_bound *b = &o->bounds[o->filter.n_bounds];
  if (parse_num(flag, eq + 1, -1e300, 1e300, &b->value)) return VKFT_ERR;
  memcpy(o->bound_fields[o->filter.n_bounds], v, n);
  o->bound_fields[o->filter.n_bounds][n] = 0;
  b->field = o->bound_fields[o->filter.n_bounds];
  b->is_max = !strcmp(flag, "--max");
  o->filter.bounds = o->bounds;
  o->filter.n_bounds++;
  return VKFT_OK;
}

static int parse_opts(int argc, char **argv, data_opts *o) {
  memset(o, 0, sizeof *o);
  o->color = -1;
  o->count = 1;
  static const char *const with_value[] = {"--model",
                                           "--data",
                                           "--out",
                                           "--report",
                                           "--template",
                                           "--format",
                                           "--train-on",
                                           "--enable-thinking",
                                           "--max-len",
                                           "--threads",
                                           "--index",
                                           "--count",
                                           "--threshold",
                                           "--num-perm",
                                           "--shingle",
                                           "--min-reply-chars",
                                           "--max-reply-chars",
                                           "--min-tokens",
                                           "--max-tokens",
                                           "--min-script-ratio",
                                           "--max-repeated-lines",
                                           "--script",
                                           "--style",
                                           "--max-prompt-len",
                                           "--max-completion-len",
                                           "--min",
                                           "--max",
                                           NULL};
  for (int i = 2; i < argc; i++) {
    const char *a = argv[i], *v = NULL;
    for (int k = 0; with_value[k]; k++)
      if (!strcmp(a, with_value[k])) {
        if (i + 1 >= argc) return vkft_error("%s needs a value", a);
        v = argv[++i];
      }
    double num = 0;
    /* numeric options: name, lower and upper bound */
    static const struct {
      const char *name;
      double lo, hi;
    } numeric[] = {{"--max-len", 1, 1 << 24},
                   {"--max-prompt-len", 1, 1 << 24},
                   {"--max-completion-len", 1, 1 << 24},
                   {"--threads", 1, 64},
                   {"--index", 0, 2e9},
                   {"--count", 1, 1e6},
                   {"--threshold", 0.01, 1},
                   {"--num-perm", 8, 1024},
                   {"--shingle", 1, 64},
                   {"--min-reply-chars", 0, 1e12},
                   {"--max-reply-chars", 0, 1e12},
                   {"--min-tokens", 0, 1e12},
                   {"--max-tokens", 0, 1e12},
                   {"--min-script-ratio", 0, 1},
                   {"--max-repeated-lines", 0, 1}};
    for (size_t k = 0; k < sizeof numeric / sizeof numeric[0]; k++)
      if (!strcmp(a, numeric[k].name) && parse_num(a, v, numeric[k].lo, numeric[k].hi, &num))
        return VKFT_ERR;
    if (!strcmp(a, "--model")) {
      o->model = v;
    } else if (!strcmp(a, "--data")) {
      if (o->n_files == MAX_FILES) return vkft_error("at most %d --data files", MAX_FILES);
      o->files[o->n_files++] = (vkft_data_file_desc){.path = v};
    } else if (!strcmp(a, "--out")) {
      o->out = v;
    } else if (!strcmp(a, "--report")) {
      o->report = v;
    } else if (!strcmp(a, "--template")) {
      o->tmpl = v;
    } else if (!strcmp(a, "--format")) {
      if (vkft_data_format_parse(v, &o->format) && vkft_pref_format_parse(v, &o->pref_format))
        return vkft_error("--format: unknown format \"%s\" (SFT: alpaca, sharegpt, messages, "
                          "prompt_completion, text, tokens; preference pairs: trl_standard, "
                          "trl_conversational, trl_implicit_prompt, sharegpt_ranking, "
                          "alpaca_ranking, trl_tokenized)",
                          v);
      vkft_error_clear();
    } else if (!strcmp(a, "--style")) {
      if (vkft_pref_style_parse(v, &o->style)) return VKFT_ERR;
    } else if (!strcmp(a, "--train-on")) {
      if (!strcmp(v, "assistant"))
        o->train_on = VKFT_TRAIN_ON_ASSISTANT;
      else if (!strcmp(v, "all"))
        o->train_on = VKFT_TRAIN_ON_ALL;
      else
        return vkft_error("--train-on: \"%s\" is not assistant or all", v);
    } else if (!strcmp(a, "--enable-thinking")) {
      if (strcmp(v, "true") && strcmp(v, "false"))
        return vkft_error("--enable-thinking: true or false");
      o->enable_thinking = v;
    } else if (!strcmp(a, "--script")) {
      if (!vkft_filter_script_known(v)) return vkft_error("--script: unknown script \"%s\"", v);
      o->filter.script = v;
    } else if (!strcmp(a, "--max-len"))
      o->max_len = (int)num;
    else if (!strcmp(a, "--max-prompt-len"))
      o->max_prompt_len = (int)num;
    else if (!strcmp(a, "--max-completion-len"))
      o->max_completion_len = (int)num;
    else if (!strcmp(a, "--threads"))
      o->threads = (int)num;
    else if (!strcmp(a, "--index"))
      o->index = (int)num;
    else if (!strcmp(a, "--count"))
      o->count = (int)num;
    else if (!strcmp(a, "--threshold"))
      o->dedup.threshold = num;
    else if (!strcmp(a, "--num-perm"))
      o->dedup.num_perm = (int)num;
    else if (!strcmp(a, "--shingle"))
      o->dedup.shingle = (int)num;
    else if (!strcmp(a, "--min-reply-chars"))
      o->filter.min_reply_chars = (size_t)num;
    else if (!strcmp(a, "--max-reply-chars"))
      o->filter.max_reply_chars = (size_t)num;
    else if (!strcmp(a, "--min-tokens"))
      o->filter.min_tokens = (size_t)num;
    else if (!strcmp(a, "--max-tokens"))
      o->filter.max_tokens = (size_t)num;
    else if (!strcmp(a, "--min-script-ratio"))
      o->filter.min_script_ratio = num;
    else if (!strcmp(a, "--max-repeated-lines"))
      o->filter.max_repeated_lines = num;
    else if (!strcmp(a, "--min") || !strcmp(a, "--max")) {
      if (add_bound(o, a, v)) return VKFT_ERR;
    } else if (!strcmp(a, "--keep-empty"))
      o->filter.keep_empty = 1;
    else if (!strcmp(a, "--keep-refusals"))
      o->filter.keep_refusals = 1;
    else if (!strcmp(a, "--tokens"))
      o->tokens = 1;
    else if (!strcmp(a, "--strict"))
      o->strict = 1;
    else if (!strcmp(a, "--json"))
      o->json = 1;
    else if (!strcmp(a, "--color"))
      o->color = 1;
    else if (!strcmp(a, "--no-color"))
      o->color = 0;
    else
      return vkft_error("unknown option \"%s\" (see `vkft data --help`)", a);
  }
  if (o->n_files == 0) return vkft_error("--data FILE is required");
  if (o->filter.max_repeated_lines == 0) o->filter.max_repeated_lines = 0.5;
  return VKFT_OK;
}

static int load(const data_opts *o, int keep_text, int keep_raw, int tokenize, vkft_dataset **ds) {
  if (tokenize && !o->model) return vkft_error("--model DIR is required (its tokenizer)");
  vkft_dataset_desc d = {.model_dir = o->model,
                         .files = o->files,
                         .n_files = o->n_files,
                         .format = o->format,
                         .template_name = o->tmpl,
                         .max_len = o->max_len,
                         .train_on = o->train_on,
                         .strict = o->strict,
                         .threads = o->threads,
                         .keep_text = keep_text,
                         .keep_raw = keep_raw,
                         .no_tokenize = !tokenize,
                         .enable_thinking = o->enable_thinking};
  if (vkft_dataset_load(&d, ds)) return VKFT_ERR;
  for (size_t i = 0; i < (*ds)->n_issues && i < 20; i++)
    fprintf(stderr, "vkft: skipped %s\n", (*ds)->issues[i]);
  if ((*ds)->n_issues_total > 20)
    fprintf(stderr, "vkft: ... and %zu more bad records\n", (*ds)->n_issues_total - 20);
  return VKFT_OK;
}

void cli_data_write_ids(FILE *f, const int32_t *ids, uint32_t n) {
  fputc('[', f);
  for (uint32_t i = 0; i < n; i++) fprintf(f, i ? ", %d" : "%d", ids[i]);
  fputc(']', f);
}

void cli_data_print_json(cJSON *obj) {
  char *s = cJSON_PrintUnformatted(obj);
  if (s) puts(s);
  free(s);
  cJSON_Delete(obj);
}

static const char *location(const vkft_dataset *ds, const vkft_example *ex, char *buf, size_t cap) {
  snprintf(buf, cap, "%s:%u", ds->file_paths[ex->file], ex->line);
  return buf;
}

/* ---- prepare ---- */

static int cmd_prepare(const data_opts *o) {
  if (!o->out) return vkft_error("--out FILE.jsonl is required");
  vkft_dataset *ds;
  double t0 = vkft_time_s();
  if (load(o, 0, 0, 1, &ds)) return VKFT_ERR;
  double t1 = vkft_time_s();
  cli_out of;
  if (cli_out_open(&of, o->out)) {
    vkft_dataset_free(ds);
    return VKFT_ERR;
  }
  size_t written = 0;
  for (size_t i = 0; i < ds->n_examples; i++) {
    const vkft_example *ex = &ds->examples[i];
    if (ex->status != VKFT_EXAMPLE_OK) continue;
    fputs("{\"input_ids\": ", of.f);
    cli_data_write_ids(of.f, ex->input_ids, ex->len);
    fputs(", \"labels\": ", of.f);
    cli_data_write_ids(of.f, ex->labels, ex->len);
    fputs("}\n", of.f);
    written++;
  }
  int ok = !ferror(of.f);
  if (cli_out_close(&of, ok) || !ok) {
    vkft_dataset_free(ds);
    return ok ? VKFT_ERR : vkft_error("%s: write failed", o->out);
  }
  if (o->json) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "records", (double)ds->n_examples);
    cJSON_AddNumberToObject(j, "examples", (double)written);
    cJSON_AddNumberToObject(j, "bad", (double)ds->n_bad);
    cJSON_AddNumberToObject(j, "dropped_no_trained_token", (double)ds->n_empty);
    cJSON_AddNumberToObject(j, "truncated", (double)ds->n_truncated);
    cJSON_AddNumberToObject(j, "max_len", ds->max_len);
    cJSON_AddNumberToObject(j, "tokens", (double)ds->n_tokens);
    cJSON_AddNumberToObject(j, "trained_tokens", (double)ds->n_trained);
    cJSON_AddNumberToObject(j, "seconds", t1 - t0);
    cJSON_AddStringToObject(j, "out", o->out);
    cli_data_print_json(j);
  } else {
    fprintf(of.is_stdout ? stderr : stdout,
            "prepared %zu examples from %zu records (%zu bad, %zu dropped with no trained "
            "token, %zu truncated to %d): %zu tokens, %zu trained, in %.2f s -> %s\n",
            written, ds->n_examples, ds->n_bad, ds->n_empty, ds->n_truncated, ds->max_len,
            ds->n_tokens, ds->n_trained, t1 - t0, o->out);
  }
  vkft_dataset_free(ds);
  return VKFT_OK;
}

/* ---- stats ---- */

static int cmd_stats(const data_opts *o) {
  vkft_dataset *ds;
  if (load(o, 1, 0, 1, &ds)) return VKFT_ERR;
  vkft_data_stats st;
  if (vkft_data_stats_compute(ds, &st)) {
    vkft_dataset_free(ds);
    return VKFT_ERR;
  }
  static const char *const pnames[5] = {"p50", "p90", "p95", "p99", "max"};
  if (o->json) {
    cJSON *j = cJSON_CreateObject(), *f = cJSON_CreateObject(), *r = cJSON_CreateObject();
    cJSON *len = cJSON_CreateObject(), *hist = cJSON_CreateArray();
    cJSON_AddNumberToObject(j, "records", (double)st.records);
    cJSON_AddNumberToObject(j, "ok", (double)st.ok);
    cJSON_AddNumberToObject(j, "bad", (double)st.bad);
    cJSON_AddNumberToObject(j, "no_trained_token", (double)st.empty);
    for (int k = 1; k < VKFT_FORMAT_COUNT; k++)
      if (st.format_counts[k])
        cJSON_AddNumberToObject(f, vkft_data_format_name((vkft_data_format)k),
                                (double)st.format_counts[k]);
    cJSON_AddItemToObject(j, "formats", f);
    for (size_t k = 0; k < st.n_roles; k++)
      cJSON_AddNumberToObject(r, st.role_names[k], (double)st.role_counts[k]);
    cJSON_AddItemToObject(j, "messages_by_role", r);
    cJSON_AddNumberToObject(len, "min", (double)st.len_min);
    cJSON_AddNumberToObject(len, "mean", st.len_mean);
    for (int k = 0; k < 5; k++) cJSON_AddNumberToObject(len, pnames[k], (double)st.len_p[k]);
    cJSON_AddItemToObject(j, "tokens_per_record", len);
    for (int k = 0; k < 10; k++) {
      cJSON *b = cJSON_CreateObject();
      cJSON_AddNumberToObject(b, "from", (double)st.hist_edges[k]);
      cJSON_AddNumberToObject(b, "to", (double)st.hist_edges[k + 1]);
      cJSON_AddNumberToObject(b, "count", (double)st.hist_counts[k]);
      cJSON_AddItemToArray(hist, b);
    }
    cJSON_AddItemToObject(j, "histogram", hist);
    cJSON_AddNumberToObject(j, "tokens", (double)st.tokens);
    cJSON_AddNumberToObject(j, "trained_tokens", (double)st.trained);
    cJSON_AddNumberToObject(j, "masked_tokens", (double)st.masked);
    cJSON_AddNumberToObject(j, "max_len", ds->max_len);
    cJSON_AddNumberToObject(j, "over_max_len", (double)st.over_max_len);
    cli_data_print_json(j);
  } else {
    printf("records      %zu (%zu ok, %zu bad, %zu with no trained token)\n", st.records, st.ok,
           st.bad, st.empty);
    printf("formats     ");
    for (int k = 1; k < VKFT_FORMAT_COUNT; k++)
      if (st.format_counts[k])
        printf(" %s %zu", vkft_data_format_name((vkft_data_format)k), st.format_counts[k]);
    printf("\nmessages    ");
    for (size_t k = 0; k < st.n_roles; k++) printf(" %s %zu", st.role_names[k], st.role_counts[k]);
    printf("\ntokens       min %zu, mean %.1f", st.len_min, st.len_mean);
    for (int k = 0; k < 5; k++) printf(", %s %zu", pnames[k], st.len_p[k]);
    printf("\ntrained      %zu of %zu tokens (%.1f%%), %zu masked\n", st.trained, st.tokens,
           st.tokens ? 100.0 * (double)st.trained / (double)st.tokens : 0.0, st.masked);
    printf("max_len      %d: %zu records longer (truncated)\n", ds->max_len, st.over_max_len);
    size_t peak = 1;
    for (int k = 0; k < 10; k++) peak = st.hist_counts[k] > peak ? st.hist_counts[k] : peak;
    printf("length histogram (tokens per record):\n");
    for (int k = 0; k < 10; k++) {
      int bar = (int)(40.0 * (double)st.hist_counts[k] / (double)peak + 0.5);
      printf("  %6zu-%-6zu %6zu |", st.hist_edges[k], st.hist_edges[k + 1], st.hist_counts[k]);
      for (int b = 0; b < bar; b++) fputs("#", stdout);
      putchar('\n');
    }
  }
  vkft_dataset_free(ds);
  return VKFT_OK;
}

/* ---- writing kept records (dedup, filter) ---- */

/* A JSON Lines output gets each record on one line: whitespace outside strings is dropped
 * (inside a valid JSON string there is no raw newline, so nothing else changes). A .json
 * output is an array of the records' original bytes. */
static void write_record(FILE *f, const char *raw, size_t len, int array, size_t k) {
  if (array) {
    fputs(k ? ",\n" : "[\n", f);
    fwrite(raw, 1, len, f);
    return;
  }
  int in_string = 0;
  for (size_t i = 0; i < len; i++) {
    char c = raw[i];
    if (in_string) {
      fputc(c, f);
      if (c == '\\' && i + 1 < len)
        fputc(raw[++i], f);
      else if (c == '"')
        in_string = 0;
    } else if (c == '"') {
      in_string = 1;
      fputc(c, f);
    } else if (c != ' ' && c != '\n' && c != '\r' && c != '\t') {
      fputc(c, f);
    }
  }
  fputc('\n', f);
}

static int ends_with(const char *s, const char *suffix) {
  size_t a = strlen(s), b = strlen(suffix);
  return a >= b && !strcmp(s + a - b, suffix);
}

static int write_kept(const data_opts *o, const vkft_dataset *ds, const unsigned char *keep,
                      size_t *kept) {
  cli_out of;
  if (cli_out_open(&of, o->out)) return VKFT_ERR;
  int array = ends_with(o->out, ".json");
  *kept = 0;
  for (size_t i = 0; i < ds->n_examples; i++)
    if (keep[i]) write_record(of.f, ds->examples[i].raw, ds->examples[i].raw_len, array, (*kept)++);
  if (array) fputs(*kept ? "\n]\n" : "[]\n", of.f);
  int ok = !ferror(of.f);
  if (cli_out_close(&of, ok) || !ok) return ok ? VKFT_ERR : vkft_error("%s: write failed", o->out);
  return VKFT_OK;
}

static void report_path(const data_opts *o, char *buf, size_t cap) {
  if (o->report)
    snprintf(buf, cap, "%s", o->report);
  else
    snprintf(buf, cap, "%s.report.jsonl", strcmp(o->out, "-") ? o->out : "data");
}

/* ---- dedup ---- */

static int cmd_dedup(const data_opts *o) {
  if (!o->out) return vkft_error("--out FILE is required");
  if (o->tokens && !o->model) return vkft_error("--tokens needs --model DIR");
  vkft_dataset *ds;
  if (load(o, 1, 1, o->tokens, &ds)) return VKFT_ERR;
  size_t n = 0;
  uint32_t **seqs = calloc(ds->n_examples + 1, sizeof *seqs);
  size_t *lens = calloc(ds->n_examples + 1, sizeof *lens);
  size_t *which = calloc(ds->n_examples + 1, sizeof *which);
  unsigned char *keep = calloc(ds->n_examples + 1, 1), *kept_seq = calloc(ds->n_examples + 1, 1);
  int rc = seqs && lens && which && keep && kept_seq ? VKFT_OK : vkft_error_nomem();
  for (size_t i = 0; rc == VKFT_OK && i < ds->n_examples; i++) {
    const vkft_example *ex = &ds->examples[i];
    if (ex->status == VKFT_EXAMPLE_BAD) continue;
    if (o->tokens) {
      seqs[n] = malloc((ex->full_len + 1) * sizeof **seqs);
      if (!seqs[n])
        rc = vkft_error_nomem();
      else
        for (uint32_t t = 0; t < ex->len; t++) seqs[n][t] = (uint32_t)ex->input_ids[t];
      lens[n] = ex->len;
    } else {
      size_t a = strlen(ex->prompt_text), b = strlen(ex->reply_text);
      char *text = malloc(a + b + 2);
      if (!text)
        rc = vkft_error_nomem();
      else {
        memcpy(text, ex->prompt_text, a);
        text[a] = '\n';
        memcpy(text + a + 1, ex->reply_text, b + 1);
        rc = vkft_utf8_codepoints(text, a + b + 1, &seqs[n], &lens[n]);
        free(text);
      }
    }
    which[n++] = i;
  }
  vkft_dedup_pair *pairs = NULL;
  size_t n_pairs = 0;
  vkft_dedup_desc dd = o->dedup;
  if (o->tokens && !dd.shingle) dd.shingle = 3;
  dd.threads = o->threads;
  double t0 = vkft_time_s();
  if (rc == VKFT_OK)
    rc = vkft_dedup((const uint32_t *const *)seqs, lens, n, &dd, kept_seq, &pairs, &n_pairs);
  double t1 = vkft_time_s();
  for (size_t k = 0; rc == VKFT_OK && k < n; k++) keep[which[k]] = kept_seq[k];
  size_t kept = 0, exact = 0;
  if (rc == VKFT_OK) rc = write_kept(o, ds, keep, &kept);
  char rpath[1024];
  report_path(o, rpath, sizeof rpath);
  if (rc == VKFT_OK) {
    cli_out rf;
    rc = cli_out_open(&rf, rpath);
    for (size_t p = 0; rc == VKFT_OK && p < n_pairs; p++) {
      char a[1100], b[1100];
      const vkft_example *x = &ds->examples[which[pairs[p].removed]];
      const vkft_example *y = &ds->examples[which[pairs[p].kept]];
      cJSON *j = cJSON_CreateObject();
      cJSON_AddStringToObject(j, "removed", location(ds, x, a, sizeof a));
      cJSON_AddStringToObject(j, "duplicate_of", location(ds, y, b, sizeof b));
      cJSON_AddBoolToObject(j, "exact", pairs[p].exact);
      cJSON_AddNumberToObject(j, "similarity", (double)(int)(pairs[p].similarity * 1000) / 1000);
      char *s = cJSON_PrintUnformatted(j);
      if (s) fprintf(rf.f, "%s\n", s);
      free(s);
      cJSON_Delete(j);
      exact += pairs[p].exact;
    }
    if (rc == VKFT_OK) rc = cli_out_close(&rf, !ferror(rf.f));
  }
  if (rc == VKFT_OK) {
    if (o->json) {
      cJSON *j = cJSON_CreateObject();
      cJSON_AddNumberToObject(j, "records", (double)ds->n_examples);
      cJSON_AddNumberToObject(j, "bad", (double)ds->n_bad);
      cJSON_AddNumberToObject(j, "kept", (double)kept);
      cJSON_AddNumberToObject(j, "exact_duplicates", (double)exact);
      cJSON_AddNumberToObject(j, "near_duplicates", (double)(n_pairs - exact));
      cJSON_AddNumberToObject(j, "threshold", dd.threshold > 0 ? dd.threshold : 0.8);
      cJSON_AddNumberToObject(j, "seconds", t1 - t0);
      cJSON_AddStringToObject(j, "out", o->out);
      cJSON_AddStringToObject(j, "report", rpath);
      cli_data_print_json(j);
    } else {
      printf("kept %zu of %zu records: removed %zu exact and %zu near duplicates (Jaccard >= "
             "%.2f, %s shingles), %zu bad skipped, in %.2f s -> %s (report %s)\n",
             kept, ds->n_examples, exact, n_pairs - exact, dd.threshold > 0 ? dd.threshold : 0.8,
             o->tokens ? "token" : "character", ds->n_bad, t1 - t0, o->out, rpath);
    }
  }
  for (size_t k = 0; seqs && k < n; k++) free(seqs[k]);
  free(seqs), free(lens), free(which), free(keep), free(kept_seq), free(pairs);
  vkft_dataset_free(ds);
  return rc;
}

/* ---- filter ---- */

static int cmd_filter(const data_opts *o) {
  if (!o->out) return vkft_error("--out FILE is required");
  if ((o->filter.min_tokens || o->filter.max_tokens) && !o->model)
    return vkft_error("--min-tokens/--max-tokens need --model DIR");
  vkft_dataset *ds;
  if (load(o, 1, 1, o->model != NULL, &ds)) return VKFT_ERR;
  unsigned char *keep = calloc(ds->n_examples + 1, 1);
  const char **reason = calloc(ds->n_examples + 1, sizeof *reason);
  int rc = keep && reason ? VKFT_OK : vkft_error_nomem();
  static const char *const names[] = {"empty reply",    "reply too short", "reply too long",
                                      "too few tokens", "too many tokens", "refusal",
                                      "other script",   "repeated lines",  "bad record",
                                      "no score",       "score below min", "score above max"};
  enum { N_REASONS = sizeof names / sizeof names[0] };
  size_t counts[N_REASONS] = {0};
  for (size_t i = 0; rc == VKFT_OK && i < ds->n_examples; i++) {
    keep[i] = (unsigned char)vkft_filter_example(&o->filter, &ds->examples[i], &reason[i]);
    for (int k = 0; !keep[i] && k < N_REASONS; k++) counts[k] += !strcmp(reason[i], names[k]);
  }
  size_t kept = 0;
  if (rc == VKFT_OK) rc = write_kept(o, ds, keep, &kept);
  char rpath[1024];
  report_path(o, rpath, sizeof rpath);
  if (rc == VKFT_OK) {
    cli_out rf;
    rc = cli_out_open(&rf, rpath);
    for (size_t i = 0; rc == VKFT_OK && i < ds->n_examples; i++) {
      if (keep[i]) continue;
      char loc[1100];
      cJSON *j = cJSON_CreateObject();
      cJSON_AddStringToObject(j, "removed", location(ds, &ds->examples[i], loc, sizeof loc));
      cJSON_AddStringToObject(j, "reason", reason[i]);
      char *s = cJSON_PrintUnformatted(j);
      if (s) fprintf(rf.f, "%s\n", s);
      free(s);
      cJSON_Delete(j);
    }
    if (rc == VKFT_OK) rc = cli_out_close(&rf, !ferror(rf.f));
  }
  if (rc == VKFT_OK) {
    if (o->json) {
      cJSON *j = cJSON_CreateObject(), *r = cJSON_CreateObject();
      cJSON_AddNumberToObject(j, "records", (double)ds->n_examples);
      cJSON_AddNumberToObject(j, "kept", (double)kept);
      for (int k = 0; k < N_REASONS; k++)
        if (counts[k]) cJSON_AddNumberToObject(r, names[k], (double)counts[k]);
      cJSON_AddItemToObject(j, "removed", r);
      cJSON_AddStringToObject(j, "out", o->out);
      cJSON_AddStringToObject(j, "report", rpath);
      cli_data_print_json(j);
    } else {
      printf("kept %zu of %zu records; removed:", kept, ds->n_examples);
      int any = 0;
      for (int k = 0; k < N_REASONS; k++)
        if (counts[k]) printf("%s %zu %s", any++ ? "," : "", counts[k], names[k]);
      printf("%s -> %s (report %s)\n", any ? "" : " none", o->out, rpath);
    }
  }
  free(keep);
  free(reason);
  vkft_dataset_free(ds);
  return rc;
}

/* ---- preview ---- */

static void print_visible(const char *s, size_t n) {
  fwrite(s, 1, n, stdout);
}

static int cmd_preview(const data_opts *o) {
  vkft_dataset *ds;
  if (load(o, 0, 0, 1, &ds)) return VKFT_ERR;
  int color = o->color >= 0 ? o->color : vkft_console_is_tty(stdout);
  const char *on = color ? "\x1b[42;30m" : "[[", *off = color ? "\x1b[0m" : "]]";
  int rc = VKFT_OK, shown = 0;
  for (size_t i = (size_t)o->index; i < ds->n_examples && shown < o->count && rc == VKFT_OK;
       i++, shown++) {
    const vkft_example *ex = &ds->examples[i];
    char loc[1100];
    printf("=== record %zu (%s, %s): %u tokens, %u trained%s%s\n", i,
           location(ds, ex, loc, sizeof loc), vkft_data_format_name(ex->format), ex->len,
           ex->n_trained, ex->full_len > ex->len ? ", truncated" : "",
           ex->status == VKFT_EXAMPLE_BAD     ? ", BAD (skipped)"
           : ex->status == VKFT_EXAMPLE_EMPTY ? ", no trained token (dropped)"
                                              : "");
    for (uint32_t t = 0; t < ex->len;) {
      int trained = ex->labels[t] != VKFT_LABEL_IGNORE;
      uint32_t u = t;
      while (u < ex->len && (ex->labels[u] != VKFT_LABEL_IGNORE) == trained) u++;
      char *text = NULL;
      size_t len = 0;
      rc = vkft_tokenizer_decode(ds->tokenizer, ex->input_ids + t, u - t, 0, &text, &len);
      if (rc) break;
      if (trained) fputs(on, stdout);
      print_visible(text, len);
      if (trained) fputs(off, stdout);
      free(text);
      t = u;
    }
    printf("\n");
  }
  if (rc == VKFT_OK && !color) printf("(trained tokens are between [[ and ]])\n");
  vkft_dataset_free(ds);
  return rc;
}

int vkft_cmd_data(int argc, char **argv) {
  if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) return usage();
  if (!strcmp(argv[1], "score")) return cli_data_score(argc - 1, argv + 1);
  if (!strcmp(argv[1], "synth")) return cli_data_synth(argc - 1, argv + 1);
  if (!strcmp(argv[1], "judge")) return cli_data_judge(argc - 1, argv + 1);
  if (!strcmp(argv[1], "explore")) return cli_data_explore(argc - 1, argv + 1);
  static const char *const tools[] = {"prepare", "stats", "dedup", "filter", "preview"};
  int tool = 0;
  while (tool < 5 && strcmp(argv[1], tools[tool])) tool++;
  if (tool == 5) return usage();
  data_opts o;
  int pref = 0;
  if (parse_opts(argc, argv, &o) || cli_data_is_pref(&o, &pref)) return cli_fail();
  if (pref && (tool == 2 || tool == 3)) {
    vkft_error("%s holds preference pairs: `vkft data %s` takes SFT records", o.files[0].path,
               tools[tool]);
    return cli_fail();
  }
  int rc;
  switch (tool) {
  case 0:
    rc = pref ? cli_data_pref_prepare(&o) : cmd_prepare(&o);
    break;
  case 1:
    rc = pref ? cli_data_pref_stats(&o) : cmd_stats(&o);
    break;
  case 2:
    rc = cmd_dedup(&o);
    break;
  case 3:
    rc = cmd_filter(&o);
    break;
  default:
    rc = pref ? cli_data_pref_preview(&o) : cmd_preview(&o);
  }
  return rc ? cli_fail() : 0;
}
