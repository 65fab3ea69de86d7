/* Loading a dataset: reads each file, splits it into records, detects its format, then turns
 * the records into examples on a pool of threads (parse, render, tokenize, mask), keeping input
 * order, and lists every bad record with its file and line. Also the seeded train/eval split. */
#include "internal.h"

#include "vkft/error.h"
#include "vkft/platform.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct vkft_dataset_impl {
  char **file_data; /* the files' bytes (examples' raw points into them) */
  size_t *file_size;
  int *file_is_array;
  const char **split_error; /* per example: why the splitter could not delimit it, or NULL */
  int own_tokenizer;
  data_builder builder;
};

static const char *const format_names[VKFT_FORMAT_COUNT] = {
    "auto", "alpaca", "sharegpt", "messages", "prompt_completion", "text", "tokens"};

const char *vkft_data_format_name(vkft_data_format format) {
  return (unsigned)format < VKFT_FORMAT_COUNT ? format_names[format] : "?";
}

int vkft_data_format_parse(const char *name, vkft_data_format *out) {
  for (int i = 0; i < VKFT_FORMAT_COUNT; i++)
    if (!strcmp(name, format_names[i])) return *out = (vkft_data_format)i, VKFT_OK;
  if (!strcmp(name, "openai") || !strcmp(name, "chatml")) return *out = VKFT_FORMAT_MESSAGES, 0;
  return vkft_error("unknown data format \"%s\" (auto, alpaca, sharegpt, messages, "
                    "prompt_completion, text, tokens)",
                    name);
}

/* ---- one record ---- */

typedef struct job {
  vkft_dataset *ds;
  const vkft_dataset_desc *desc;
  char **issue; /* per example: NULL or a malloc'd message */
} job;

static char *issue_text(const vkft_dataset *ds, const vkft_example *ex, const char *msg) {
  return data_issue_text(ds->file_paths[ex->file], ds->impl->file_is_array[ex->file], ex->line,
                         ex->index, msg);
}

static void process_one(void *ctx, size_t i, data_pool *pool) {
  job *j = ctx;
  vkft_dataset *ds = j->ds;
  vkft_example *ex = &ds->examples[i];
  if (ds->impl->split_error[i]) {
    j->issue[i] = issue_text(ds, ex, ds->impl->split_error[i]);
    return;
  }
  cJSON *json;
  data_sample s;
  int rc = data_parse_record(ex->raw, ex->raw_len, &json);
  if (rc == VKFT_OK) {
    rc = data_sample_from_json(json, ex->format, &s);
    if (rc == VKFT_OK) {
      if (j->desc->keep_text)
        rc = data_sample_text(&s, &ex->roles, &ex->prompt_text, &ex->reply_text);
      if (rc == VKFT_OK && ds->impl->builder.fallback_template) rc = data_sample_flatten(&s);
      if (rc == VKFT_OK && !j->desc->no_tokenize)
        rc = data_build_example(&ds->impl->builder, &s, ex);
      else if (rc == VKFT_OK)
        ex->status = VKFT_EXAMPLE_OK;
      data_sample_free(&s);
    }
    cJSON_Delete(json);
  }
  if (rc) {
    data_pool_fail_if_fatal(pool, ds->file_paths[ex->file], ex->line);
    ex->status = VKFT_EXAMPLE_BAD;
    j->issue[i] = issue_text(ds, ex, vkft_error_message());
    vkft_error_clear();
  }
}

/* ---- loading ---- */

static int detect_sft(const cJSON *record) {
  return (int)data_detect_format(record);
}

static size_t issue_location_len(const void *ctx, size_t i) {
  const vkft_dataset *ds = ctx;
  const vkft_example *ex = &ds->examples[i];
  return (size_t)data_issue_location(ds->file_paths[ex->file], ds->impl->file_is_array[ex->file],
                                     ex->line, ex->index, NULL, 0);
}

static int read_file(vkft_dataset *ds, const vkft_dataset_desc *d, size_t f) {
  const char *path = d->files[f].path;
  if (!path) return vkft_error("data file %zu: no path", f);
  char *data;
  size_t size;
  data_span *spans;
  size_t n;
  if (data_read_file(path, &data, &size, &spans, &n, &ds->impl->file_is_array[f])) return VKFT_ERR;
  ds->impl->file_data[f] = data;
  ds->impl->file_size[f] = size;
  vkft_data_format fmt = d->format;
  if (fmt == VKFT_FORMAT_AUTO)
    fmt = (vkft_data_format)data_detect_first(data, spans, n, detect_sft);
  if (fmt == VKFT_FORMAT_AUTO && n > 0) {
    free(spans);
    return vkft_error("%s: cannot tell the records' format from their fields (expected those of "
                      "alpaca, sharegpt, messages, prompt_completion, text or tokens; or pass "
                      "a format)",
                      path);
  }
  ds->file_formats[f] = fmt;
  vkft_example *p = realloc(ds->examples, (ds->n_examples + n + 1) * sizeof *p);
  if (!p) {
    free(spans);
    return vkft_error_nomem();
  }
  ds->examples = p;
  const char **e = realloc(ds->impl->split_error, (ds->n_examples + n + 1) * sizeof *e);
  if (!e) {
    free(spans);
    return vkft_error_nomem();
  }
  ds->impl->split_error = e;
  for (size_t i = 0; i < n; i++) {
    e[ds->n_examples] = spans[i].error;
    vkft_example *ex = &ds->examples[ds->n_examples++];
    *ex = (vkft_example){.file = (uint32_t)f,
                         .line = spans[i].line,
                         .index = spans[i].index,
                         .format = fmt,
                         .status = spans[i].error ? VKFT_EXAMPLE_BAD : VKFT_EXAMPLE_OK,
                         .raw = data + spans[i].off,
                         .raw_len = spans[i].len};
  }
  free(spans);
  return VKFT_OK;
}

int vkft_dataset_load(const vkft_dataset_desc *d, vkft_dataset **out) {
  *out = NULL;
  if (!d || d->n_files == 0 || !d->files) return vkft_error("no data files given");
  if (!d->no_tokenize && !d->model_dir)
    return vkft_error("a model folder (its tokenizer) is needed to tokenize the data");
  vkft_dataset *ds = calloc(1, sizeof *ds);
  if (!ds) return vkft_error_nomem();
  ds->impl = calloc(1, sizeof *ds->impl);
  ds->n_files = d->n_files;
  ds->file_formats = calloc(d->n_files, sizeof *ds->file_formats);
  ds->file_weights = calloc(d->n_files, sizeof *ds->file_weights);
  ds->file_paths = calloc(d->n_files, sizeof *ds->file_paths);
  int rc = VKFT_OK;
  if (ds->impl) {
    ds->impl->file_data = calloc(d->n_files, sizeof *ds->impl->file_data);
    ds->impl->file_size = calloc(d->n_files, sizeof *ds->impl->file_size);
    ds->impl->file_is_array = calloc(d->n_files, sizeof *ds->impl->file_is_array);
  }
  if (!ds->impl || !ds->file_formats || !ds->file_weights || !ds->file_paths ||
      !ds->impl->file_data || !ds->impl->file_size || !ds->impl->file_is_array)
    rc = vkft_error_nomem();
  for (size_t f = 0; rc == VKFT_OK && f < d->n_files; f++) {
    const char *path = d->files[f].path ? d->files[f].path : "";
    ds->file_paths[f] = malloc(strlen(path) + 1);
    if (!ds->file_paths[f])
      rc = vkft_error_nomem();
    else
      strcpy(ds->file_paths[f], path);
    double w = d->files[f].weight;
    if (w < 0 || w != w) rc = vkft_error("%s: the weight must be >= 0", path);
    ds->file_weights[f] = w == 0 ? 1.0 : w;
  }
  int max_issues = d->max_issues > 0 ? d->max_issues : 1000;
  for (size_t f = 0; rc == VKFT_OK && f < d->n_files; f++) rc = read_file(ds, d, f);
  /* the tokenizer is needed only when some file holds text to tokenize */
  size_t text_file = d->n_files;
  for (size_t f = 0; rc == VKFT_OK && f < d->n_files && text_file == d->n_files; f++)
    if (ds->file_formats[f] != VKFT_FORMAT_TOKENS) text_file = f;
  if (rc == VKFT_OK && !d->no_tokenize && d->tokenizer) {
    ds->tokenizer = d->tokenizer;
  } else if (rc == VKFT_OK && !d->no_tokenize && text_file < d->n_files) {
    rc = data_load_tokenizer(d->model_dir, ds->file_paths[text_file],
                             vkft_data_format_name(ds->file_formats[text_file]), &ds->tokenizer);
    ds->impl->own_tokenizer = 1;
  }
  if (rc == VKFT_OK) rc = data_builder_init(&ds->impl->builder, d, ds->tokenizer);
  ds->max_len = ds->impl ? ds->impl->builder.max_len : 0;
  char **issue = NULL;
  if (rc == VKFT_OK && ds->n_examples) {
    issue = calloc(ds->n_examples, sizeof *issue);
    if (!issue) rc = vkft_error_nomem();
  }
  if (rc == VKFT_OK && ds->n_examples) {
    job j = {.ds = ds, .desc = d, .issue = issue};
    rc = data_pool_run(ds->n_examples, d->threads, process_one, &j);
  }
  if (rc == VKFT_OK && issue) {
    data_issues list = {&ds->issues, &ds->n_issues, &ds->n_issues_total, (size_t)max_issues};
    rc = data_add_record_issues(&list, issue, ds->n_examples, issue_location_len, ds);
  }
  for (size_t i = 0; issue && i < ds->n_examples; i++) free(issue[i]);
  free(issue);
  if (rc == VKFT_OK && d->strict && ds->n_issues_total) {
    rc = vkft_error("%s (--strict: bad records are fatal; %zu in all)", ds->issues[0],
                    ds->n_issues_total);
  }
  if (rc) {
    vkft_dataset_free(ds);
    return VKFT_ERR;
  }
  if (ds->tokenizer) ds->pad_id = data_pad_id(ds->tokenizer);
  for (size_t i = 0; i < ds->n_examples; i++) {
    vkft_example *ex = &ds->examples[i];
    ds->n_ok += ex->status == VKFT_EXAMPLE_OK;
    ds->n_bad += ex->status == VKFT_EXAMPLE_BAD;
    ds->n_empty += ex->status == VKFT_EXAMPLE_EMPTY;
    if (ex->status == VKFT_EXAMPLE_OK) {
      ds->n_truncated += ex->full_len > ex->len;
      ds->n_tokens += ex->len;
      ds->n_trained += ex->n_trained;
    }
    if (!d->keep_raw) ex->raw = NULL, ex->raw_len = 0;
  }
  if (!d->keep_raw)
    for (size_t f = 0; f < d->n_files; f++) {
      free(ds->impl->file_data[f]);
      ds->impl->file_data[f] = NULL;
    }
  *out = ds;
  return VKFT_OK;
}

void vkft_dataset_free(vkft_dataset *ds) {
  if (!ds) return;
  for (size_t i = 0; i < ds->n_examples; i++) {
    vkft_example *ex = &ds->examples[i];
    free(ex->input_ids);
    free(ex->labels);
    free(ex->roles);
    free(ex->prompt_text);
    free(ex->reply_text);
  }
  free(ds->examples);
  for (size_t i = 0; i < ds->n_issues; i++) free(ds->issues[i]);
  free(ds->issues);
  for (size_t f = 0; ds->file_paths && f < ds->n_files; f++) free(ds->file_paths[f]);
  if (ds->impl) {
    for (size_t f = 0; ds->impl->file_data && f < ds->n_files; f++) free(ds->impl->file_data[f]);
    free(ds->impl->file_data);
    free(ds->impl->file_size);
    free(ds->impl->file_is_array);
    free(ds->impl->split_error);
    data_builder_free(&ds->impl->builder);
  }
  free(ds->file_paths);
  free(ds->file_formats);
  free(ds->file_weights);
  if (ds->impl && ds->impl->own_tokenizer) vkft_tokenizer_free(ds->tokenizer);
  free(ds->impl);
  free(ds);
}

int vkft_dataset_split(const vkft_dataset *ds, double eval_fraction, uint64_t seed,
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
