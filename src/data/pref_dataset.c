/* Loading a preference dataset: reads each file, detects its format, turns the records into
 * pairs of ids on the shared worker pool (parse, render, tokenize, truncate), keeping input
 * order and listing every bad record with its file and line; also the names of the formats and
 * styles, the train/eval split and the statistics `vkft data stats` prints. */
#include "pref_internal.h"

#include "vkft/error.h"
#include "vkft/platform.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct vkft_pref_impl {
  int *file_is_array;
  int own_tokenizer;
  data_builder base;
};

static const char *const format_names[VKFT_PREF_FORMAT_COUNT] = {"auto",
                                                                 "trl_standard",
                                                                 "trl_conversational",
                                                                 "trl_implicit_prompt",
                                                                 "sharegpt_ranking",
                                                                 "alpaca_ranking",
                                                                 "trl_tokenized"};

const char *vkft_pref_format_name(vkft_pref_format format) {
  return (unsigned)format < VKFT_PREF_FORMAT_COUNT ? format_names[format] : "?";
}

int vkft_pref_format_parse(const char *name, vkft_pref_format *out) {
  for (int i = 0; i < VKFT_PREF_FORMAT_COUNT; i++)
    if (!strcmp(name, format_names[i])) return *out = (vkft_pref_format)i, VKFT_OK;
  return vkft_error("unknown preference format \"%s\" (auto, trl_standard, trl_conversational, "
                    "trl_implicit_prompt, sharegpt_ranking, alpaca_ranking, trl_tokenized)",
                    name);
}

const char *vkft_pref_style_name(vkft_pref_style style) {
  return style == VKFT_PREF_ORPO ? "orpo" : style == VKFT_PREF_DPO ? "dpo" : "?";
}

int vkft_pref_style_parse(const char *name, vkft_pref_style *out) {
  if (!strcmp(name, "dpo")) return *out = VKFT_PREF_DPO, VKFT_OK;
  if (!strcmp(name, "orpo")) return *out = VKFT_PREF_ORPO, VKFT_OK;
  return vkft_error("unknown preference style \"%s\" (dpo, orpo)", name);
}

static int detect(const cJSON *record) {
  return (int)pref_detect_format(record);
}

int vkft_pref_detect_file(const char *path, vkft_pref_format *out) {
  *out = VKFT_PREF_FORMAT_AUTO;
  char *data;
  size_t size, n;
  data_span *spans;
  int is_array;
  if (data_read_file(path, &data, &size, &spans, &n, &is_array)) return VKFT_ERR;
  *out = (vkft_pref_format)data_detect_first(data, spans, n, detect);
  free(spans);
  free(data);
  return VKFT_OK;
}

/* ---- one record ---- */

typedef struct job {
  vkft_pref_dataset *ds;
  const vkft_pref_desc *desc;
  pref_builder builder;
  char **data;              /* per file: its bytes */
  data_span **spans;        /* per file: its records */
  size_t *first;            /* per file: the index of its first example */
  const char **split_error; /* per example, or NULL */
  char **issue;             /* per example: NULL or a malloc'd message */
} job;

static void process_one(void *ctx, size_t i, data_pool *pool) {
  job *j = ctx;
  vkft_pref_dataset *ds = j->ds;
  vkft_pref_example *ex = &ds->examples[i];
  const char *path = ds->file_paths[ex->file];
  int is_array = ds->impl->file_is_array[ex->file];
  if (j->split_error[i]) {
    j->issue[i] = data_issue_text(path, is_array, ex->line, ex->index, j->split_error[i]);
    return;
  }
  const data_span *span = &j->spans[ex->file][i - j->first[ex->file]];
  cJSON *json;
  pref_sample s;
  int rc = data_parse_record(j->data[ex->file] + span->off, span->len, &json);
  if (rc == VKFT_OK) {
    rc = pref_sample_from_json(json, ex->format, &s);
    if (rc == VKFT_OK) {
      if (ds->impl->base.fallback_template) rc = pref_sample_flatten(&s);
      if (rc == VKFT_OK) rc = pref_build_example(&j->builder, &s, ex);
      pref_sample_free(&s);
    }
    cJSON_Delete(json);
  }
  if (rc) {
    data_pool_fail_if_fatal(pool, path, ex->line);
    ex->status = VKFT_EXAMPLE_BAD;
    j->issue[i] = data_issue_text(path, is_array, ex->line, ex->index, vkft_error_message());
    vkft_error_clear();
  }
}

/* ---- loading ---- */

static size_t issue_location_len(const void *ctx, size_t i) {
  const vkft_pref_dataset *ds = ctx;
  const vkft_pref_example *ex = &ds->examples[i];
  return (size_t)data_issue_location(ds->file_paths[ex->file], ds->impl->file_is_array[ex->file],
                                     ex->line, ex->index, NULL, 0);
}

static int read_file(job *j, size_t f) {
  vkft_pref_dataset *ds = j->ds;
  const vkft_pref_desc *d = j->desc;
  const char *path = d->files[f].path;
  if (!path) return vkft_error("data file %zu: no path", f);
  size_t size, n;
  if (data_read_file(path, &j->data[f], &size, &j->spans[f], &n, &ds->impl->file_is_array[f]))
    return VKFT_ERR;
  vkft_pref_format fmt = d->format;
  if (fmt == VKFT_PREF_FORMAT_AUTO)
    fmt = (vkft_pref_format)data_detect_first(j->data[f], j->spans[f], n, detect);
  if (fmt == VKFT_PREF_FORMAT_AUTO && n > 0)
    return vkft_error("%s: cannot tell the records' preference format from their fields "
                      "(expected \"chosen\" and \"rejected\" with \"prompt\", \"conversations\" "
                      "or \"instruction\", or alone; or \"chosen_input_ids\")",
                      path);
  ds->file_formats[f] = fmt;
  vkft_pref_example *p = realloc(ds->examples, (ds->n_examples + n + 1) * sizeof *p);
  if (!p) return vkft_error_nomem();
  ds->examples = p;
  const char **e = realloc(j->split_error, (ds->n_examples + n + 1) * sizeof *e);
  if (!e) return vkft_error_nomem();
  j->split_error = e;
  j->first[f] = ds->n_examples;
  for (size_t i = 0; i < n; i++) {
    const data_span *sp = &j->spans[f][i];
    e[ds->n_examples] = sp->error;
    ds->examples[ds->n_examples++] =
        (vkft_pref_example){.file = (uint32_t)f,
                            .line = sp->line,
                            .index = sp->index,
                            .format = fmt,
                            .status = sp->error ? VKFT_EXAMPLE_BAD : VKFT_EXAMPLE_OK};
  }
  return VKFT_OK;
}

/* The tokenizer, unless every file is pre-tokenized; then the builder. */
static int init_builder(job *j) {
  vkft_pref_dataset *ds = j->ds;
  const vkft_pref_desc *d = j->desc;
  size_t text_file = d->n_files;
  for (size_t f = 0; f < d->n_files && text_file == d->n_files; f++)
    if (ds->file_formats[f] != VKFT_PREF_FORMAT_TOKENIZED) text_file = f;
  if (d->tokenizer) {
    ds->tokenizer = d->tokenizer;
  } else if (text_file < d->n_files) {
    if (!d->model_dir)
      return vkft_error("a model folder (its tokenizer) is needed to tokenize the data");
    ds->impl->own_tokenizer = 1;
    if (data_load_tokenizer(d->model_dir, ds->file_paths[text_file],
                            vkft_pref_format_name(ds->file_formats[text_file]), &ds->tokenizer))
      return VKFT_ERR;
  }
  vkft_dataset_desc sft = {.model_dir = d->model_dir,
                           .template_name = d->template_name,
                           .max_len = d->max_len,
                           .enable_thinking = d->enable_thinking,
                           .vocab_size = d->vocab_size};
  if (data_builder_init(&ds->impl->base, &sft, ds->tokenizer)) return VKFT_ERR;
  j->builder = (pref_builder){.base = &ds->impl->base,
                              .style = d->style,
                              .max_prompt_len = d->max_prompt_len,
                              .max_completion_len = d->max_completion_len};
  ds->max_len = ds->impl->base.max_len;
  return VKFT_OK;
}

static int check_desc(const vkft_pref_desc *d) {
  if (!d || d->n_files == 0 || !d->files) return vkft_error("no data files given");
  if (d->style != VKFT_PREF_DPO && d->style != VKFT_PREF_ORPO)
    return vkft_error("unknown preference style %d", (int)d->style);
  if ((unsigned)d->format >= VKFT_PREF_FORMAT_COUNT)
    return vkft_error("unknown preference format %d", (int)d->format);
  if (d->max_len < 0 || d->max_prompt_len < 0 || d->max_completion_len < 0)
    return vkft_error("max_len, max_prompt_len and max_completion_len must be >= 0");
  return VKFT_OK;
}

static int load_all(job *j) {
  vkft_pref_dataset *ds = j->ds;
  const vkft_pref_desc *d = j->desc;
  for (size_t f = 0; f < d->n_files; f++) {
    const char *path = d->files[f].path ? d->files[f].path : "";
    ds->file_paths[f] = malloc(strlen(path) + 1);
    if (!ds->file_paths[f]) return vkft_error_nomem();
    strcpy(ds->file_paths[f], path);
    double w = d->files[f].weight;
    if (w < 0 || w != w) return vkft_error("%s: the weight must be >= 0", path);
    ds->file_weights[f] = w == 0 ? 1.0 : w;
  }
  for (size_t f = 0; f < d->n_files; f++)
    if (read_file(j, f)) return VKFT_ERR;
  if (init_builder(j)) return VKFT_ERR;
  if (ds->n_examples) {
    j->issue = calloc(ds->n_examples, sizeof *j->issue);
    if (!j->issue) return vkft_error_nomem();
  }
  int rc = data_pool_run(ds->n_examples, d->threads, process_one, j);
  data_issues list = {&ds->issues, &ds->n_issues, &ds->n_issues_total,
                      d->max_issues > 0 ? (size_t)d->max_issues : 1000};
  if (rc == VKFT_OK && j->issue)
    rc = data_add_record_issues(&list, j->issue, ds->n_examples, issue_location_len, ds);
  for (size_t i = 0; j->issue && i < ds->n_examples; i++) free(j->issue[i]);
  if (rc == VKFT_OK && d->strict && ds->n_issues_total)
    rc = vkft_error("%s (--strict: bad records are fatal; %zu in all)", ds->issues[0],
                    ds->n_issues_total);
  return rc;
}

int vkft_pref_load(const vkft_pref_desc *d, vkft_pref_dataset **out) {
  *out = NULL;
  if (check_desc(d)) return VKFT_ERR;
  vkft_pref_dataset *ds = calloc(1, sizeof *ds);
  job j = {.ds = ds, .desc = d};
  if (ds) {
    ds->impl = calloc(1, sizeof *ds->impl);
    ds->n_files = d->n_files;
    ds->file_formats = calloc(d->n_files, sizeof *ds->file_formats);
    ds->file_weights = calloc(d->n_files, sizeof *ds->file_weights);
    ds->file_paths = calloc(d->n_files, sizeof *ds->file_paths);
    if (ds->impl) ds->impl->file_is_array = calloc(d->n_files, sizeof *ds->impl->file_is_array);
  }
  j.data = calloc(d->n_files, sizeof *j.data);
  j.spans = calloc(d->n_files, sizeof *j.spans);
  j.first = calloc(d->n_files, sizeof *j.first);
  int rc = ds && ds->impl && ds->file_formats && ds->file_weights && ds->file_paths &&
                   ds->impl->file_is_array && j.data && j.spans && j.first
               ? load_all(&j)
               : vkft_error_nomem();
  for (size_t f = 0; f < d->n_files; f++) {
    if (j.data) free(j.data[f]);
    if (j.spans) free(j.spans[f]);
  }
  free(j.data), free(j.spans), free(j.first), free(j.split_error), free(j.issue);
  if (rc) {
    vkft_pref_free(ds);
    return VKFT_ERR;
  }
  ds->style = d->style;
  ds->max_prompt_len = d->max_prompt_len;
  ds->max_completion_len = d->max_completion_len;
  if (ds->tokenizer) ds->pad_id = data_pad_id(ds->tokenizer);
  for (size_t i = 0; i < ds->n_examples; i++) {
    const vkft_pref_example *ex = &ds->examples[i];
    ds->n_ok += ex->status == VKFT_EXAMPLE_OK;
    ds->n_bad += ex->status == VKFT_EXAMPLE_BAD;
    ds->n_empty += ex->status == VKFT_EXAMPLE_EMPTY;
    ds->n_prompt_mismatch += ex->status != VKFT_EXAMPLE_BAD && ex->prompt_mismatch;
    if (ex->status == VKFT_EXAMPLE_OK) {
      ds->n_truncated += ex->truncated != 0;
      ds->n_tokens += 2 * (size_t)ex->prompt_len + ex->chosen_len + ex->rejected_len;
      ds->n_trained += (size_t)ex->chosen_trained + ex->rejected_trained;
    }
  }
  *out = ds;
  return VKFT_OK;
}

void vkft_pref_free(vkft_pref_dataset *ds) {
  if (!ds) return;
  for (size_t i = 0; i < ds->n_examples; i++) {
    free(ds->examples[i].prompt_ids);
    free(ds->examples[i].chosen_ids);
    free(ds->examples[i].rejected_ids);
  }
  free(ds->examples);
  for (size_t i = 0; i < ds->n_issues; i++) free(ds->issues[i]);
  free(ds->issues);
  for (size_t f = 0; ds->file_paths && f < ds->n_files; f++) free(ds->file_paths[f]);
  free(ds->file_paths);
  free(ds->file_formats);
  free(ds->file_weights);
  if (ds->impl) {
    free(ds->impl->file_is_array);
    data_builder_free(&ds->impl->base);
    if (ds->impl->own_tokenizer) vkft_tokenizer_free(ds->tokenizer);
  }
  free(ds->impl);
  free(ds);
}

int vkft_pref_split(const vkft_pref_dataset *ds, double eval_fraction, uint64_t seed,
                    uint32_t **train, size_t *n_train, uint32_t **eval, size_t *n_eval) {
  *train = *eval = NULL;
  *n_train = *n_eval = 0;
  uint32_t *ok = malloc((ds->n_ok + 1) * sizeof *ok);
  if (!ok) return vkft_error_nomem();
  size_t n = 0;
  for (size_t i = 0; i < ds->n_examples; i++)
    if (ds->examples[i].status == VKFT_EXAMPLE_OK) ok[n++] = (uint32_t)i;
  int rc = data_split_ids(ok, n, eval_fraction, seed, train, n_train, eval, n_eval);
  free(ok);
  return rc;
}

/* ---- stats ---- */

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

static void len_stats(uint32_t *v, size_t n, vkft_pref_len_stats *out) {
  memset(out, 0, sizeof *out);
  if (n == 0) return;
  qsort(v, n, sizeof *v, cmp_u32);
  double sum = 0;
  for (size_t i = 0; i < n; i++) sum += v[i];
  out->min = v[0];
  out->max = v[n - 1];
  out->mean = sum / (double)n;
  out->p50 = v[(size_t)(0.5 * (double)(n - 1) + 0.5)];
  out->p90 = v[(size_t)(0.9 * (double)(n - 1) + 0.5)];
}

int vkft_pref_stats_compute(const vkft_pref_dataset *ds, vkft_pref_stats *st) {
  memset(st, 0, sizeof *st);
  st->records = ds->n_examples;
  st->ok = ds->n_ok;
  st->bad = ds->n_bad;
  st->empty = ds->n_empty;
  st->truncated = ds->n_truncated;
  st->prompt_mismatch = ds->n_prompt_mismatch;
  st->tokens = ds->n_tokens;
  st->trained = ds->n_trained;
  uint32_t *v[4];
  for (int k = 0; k < 4; k++) v[k] = malloc((ds->n_examples + 1) * sizeof *v[k]);
  if (!v[0] || !v[1] || !v[2] || !v[3]) {
    for (int k = 0; k < 4; k++) free(v[k]);
    return vkft_error_nomem();
  }
  size_t n = 0;
  for (size_t i = 0; i < ds->n_examples; i++) {
    const vkft_pref_example *ex = &ds->examples[i];
    if (ex->status == VKFT_EXAMPLE_BAD) continue;
    st->format_counts[ex->format]++;
    uint32_t longer =
        ex->chosen_full_len > ex->rejected_full_len ? ex->chosen_full_len : ex->rejected_full_len;
    v[0][n] = ex->prompt_full_len;
    v[1][n] = ex->chosen_full_len;
    v[2][n] = ex->rejected_full_len;
    v[3][n] = ex->prompt_full_len + longer;
    st->over_max_len += v[3][n] > (uint32_t)ds->max_len;
    n++;
  }
  len_stats(v[0], n, &st->prompt);
  len_stats(v[1], n, &st->chosen);
  len_stats(v[2], n, &st->rejected);
  len_stats(v[3], n, &st->longest);
  for (int k = 0; k < 4; k++) free(v[k]);
  return VKFT_OK;
}
