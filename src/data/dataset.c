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

/* ---- the worker pool ---- */

typedef struct job {
  vkft_dataset *ds;
  const vkft_dataset_desc *desc;
  char **issue; /* per example: NULL or a malloc'd message */
  size_t next;
  vkft_mutex *mutex;
  /* a failure that is not the record's fault (out of memory) fails the whole load: dropping
   * the record would silently train on other data */
  vkft_errcode fatal_code;
  char fatal[512];
} job;

/* "file:line: " or "file:line: record N: " (records of a JSON array file) */
static int issue_location(const vkft_dataset *ds, const vkft_example *ex, char *out, size_t n) {
  const char *path = ds->file_paths[ex->file];
  if (ds->impl->file_is_array[ex->file])
    return snprintf(out, n, "%s:%u: record %u: ", path, ex->line, ex->index);
  return snprintf(out, n, "%s:%u: ", path, ex->line);
}

static char *issue_text(const vkft_dataset *ds, const vkft_example *ex, const char *msg) {
  size_t at = (size_t)issue_location(ds, ex, NULL, 0), n = at + strlen(msg) + 1;
  char *s = malloc(n);
  if (!s) return NULL;
  issue_location(ds, ex, s, n);
  memcpy(s + at, msg, n - at);
  return s;
}

static void process_one(job *j, size_t i) {
  vkft_dataset *ds = j->ds;
  vkft_example *ex = &ds->examples[i];
  if (ds->impl->split_error[i]) {
    j->issue[i] = issue_text(ds, ex, ds->impl->split_error[i]);
    return;
  }
  /* the whole record must be one JSON value: "{...} {...}" on a line is an error, not the first
   * object with the rest dropped */
  const char *end = NULL;
  cJSON *json = cJSON_ParseWithLengthOpts(ex->raw, ex->raw_len, &end, 0);
  while (json && end && end < ex->raw + ex->raw_len && strchr(" \t\r\n", *end)) end++;
  data_sample s;
  int rc;
  if (!json) {
    rc = vkft_error("not valid JSON");
  } else if (end && end < ex->raw + ex->raw_len) {
    rc = vkft_error("text after the record's JSON value (one record per line)");
  } else {
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
  }
  cJSON_Delete(json);
  if (rc && vkft_error_code() == VKFT_ERR_NOMEM) {
    vkft_mutex_lock(j->mutex);
    if (!j->fatal_code) {
      j->fatal_code = VKFT_ERR_NOMEM;
      snprintf(j->fatal, sizeof j->fatal, "%s:%u: %s", ds->file_paths[ex->file], ex->line,
               vkft_error_message());
    }
    vkft_mutex_unlock(j->mutex);
  }
  if (rc) {
    ex->status = VKFT_EXAMPLE_BAD;
    j->issue[i] = issue_text(ds, ex, vkft_error_message());
    vkft_error_clear();
  }
}

static void worker(void *arg) {
  job *j = arg;
  enum { CHUNK = 8 };
  for (;;) {
    vkft_mutex_lock(j->mutex);
    size_t from = j->next;
    j->next += CHUNK;
    vkft_mutex_unlock(j->mutex);
    if (from >= j->ds->n_examples) return;
    size_t to = from + CHUNK < j->ds->n_examples ? from + CHUNK : j->ds->n_examples;
    for (size_t i = from; i < to; i++) process_one(j, i);
  }
}

static int run_pool(job *j, int threads) {
  j->mutex = vkft_mutex_create();
  if (!j->mutex) return vkft_error("cannot create a mutex");
  if (threads <= 0) threads = vkft_cpu_count();
  if (threads < 1) threads = 1;
  if ((size_t)threads > j->ds->n_examples / 8 + 1) threads = (int)(j->ds->n_examples / 8 + 1);
  vkft_thread *th[64];
  int started = 0;
  for (int t = 1; t < threads && t < 64; t++) {
    th[started] = vkft_thread_start(worker, j);
    if (th[started]) started++;
  }
  worker(j); /* this thread works too */
  for (int t = 0; t < started; t++) vkft_thread_join(th[t]);
  vkft_mutex_destroy(j->mutex);
  if (j->fatal_code) return vkft_error_with(j->fatal_code, "%s", j->fatal);
  return VKFT_OK;
}

/* ---- loading ---- */

static int add_issue(vkft_dataset *ds, char *msg, int max) {
  ds->n_issues_total++;
  if (!msg) return VKFT_OK;
  if (ds->n_issues >= (size_t)max) {
    free(msg);
    return VKFT_OK;
  }
  char **p = realloc(ds->issues, (ds->n_issues + 1) * sizeof *p);
  if (!p) {
    free(msg);
    return vkft_error_nomem();
  }
  ds->issues = p;
  ds->issues[ds->n_issues++] = msg;
  return VKFT_OK;
}

static uint64_t fnv1a(const char *s) {
  uint64_t h = 1469598103934665603ull;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return h;
}

/* The per-record issues in record order, one line per distinct message: when many records fail
 * the same way (a chat template that raises for every record) the first is reported with the
 * count of the others. Takes the strings it keeps (sets them NULL in issue). */
static int add_record_issues(vkft_dataset *ds, char **issue, int max_issues) {
  size_t first = ds->n_issues, distinct = 0;
  uint64_t *hash = malloc((size_t)max_issues * sizeof *hash);
  size_t *more = calloc((size_t)max_issues, sizeof *more),
         *msg_at = malloc(max_issues * sizeof *msg_at);
  int rc = hash && more && msg_at ? VKFT_OK : vkft_error_nomem();
  for (size_t i = 0; rc == VKFT_OK && i < ds->n_examples; i++) {
    if (!issue[i]) continue;
    size_t at = (size_t)issue_location(ds, &ds->examples[i], NULL, 0), k = 0;
    uint64_t h = fnv1a(issue[i] + at);
    while (k < distinct &&
           (hash[k] != h || strcmp(ds->issues[first + k] + msg_at[k], issue[i] + at)))
      k++;
    if (k < distinct) {
      more[k]++;
      ds->n_issues_total++;
      continue;
    }
    if (ds->n_issues < (size_t)max_issues && distinct < (size_t)max_issues) {
      hash[distinct] = h;
      msg_at[distinct++] = at;
    }
    rc = add_issue(ds, issue[i], max_issues);
    issue[i] = NULL;
  }
  for (size_t k = 0; rc == VKFT_OK && k < distinct; k++) {
    if (!more[k]) continue;
    char **text = &ds->issues[first + k], tail[96];
    int n = snprintf(tail, sizeof tail, " (and %zu more records with this error)", more[k]);
    char *p = realloc(*text, strlen(*text) + (size_t)n + 1);
    if (!p)
      rc = vkft_error_nomem();
    else
      strcat(*text = p, tail);
  }
  free(hash);
  free(more);
  free(msg_at);
  return rc;
}

static int read_file(vkft_dataset *ds, const vkft_dataset_desc *d, size_t f) {
  const char *path = d->files[f].path;
  if (!path) return vkft_error("data file %zu: no path", f);
  char *data;
  size_t size;
  if (vkft_file_read(path, &data, &size)) return VKFT_ERR;
  ds->impl->file_data[f] = data;
  ds->impl->file_size[f] = size;
  data_span *spans;
  size_t n;
  if (data_split_records(path, data, size, &spans, &n, &ds->impl->file_is_array[f]))
    return VKFT_ERR;
  vkft_data_format fmt = d->format;
  for (size_t i = 0; i < n && i < 16 && fmt == VKFT_FORMAT_AUTO; i++) {
    if (spans[i].error) continue;
    cJSON *json = cJSON_ParseWithLength(data + spans[i].off, spans[i].len);
    fmt = data_detect_format(json);
    cJSON_Delete(json);
  }
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
    char path[2048];
    snprintf(path, sizeof path, "%s/tokenizer.json", d->model_dir);
    if (vkft_is_dir(d->model_dir) && !vkft_file_exists(path))
      rc =
          vkft_error("%s: missing; it is needed to tokenize %s (%s records)", path,
                     ds->file_paths[text_file], vkft_data_format_name(ds->file_formats[text_file]));
    else
      rc = vkft_tokenizer_load(d->model_dir, &ds->tokenizer);
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
    rc = run_pool(&j, d->threads);
  }
  if (rc == VKFT_OK && issue) rc = add_record_issues(ds, issue, max_issues);
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
  if (ds->tokenizer) {
    const char *pad_names[] = {"<|finetune_right_pad_id|>", "<pad>", "[PAD]", "<|endoftext|>"};
    ds->pad_id = -1;
    for (int k = 0; k < 4 && ds->pad_id < 0; k++)
      ds->pad_id = vkft_tokenizer_token_id(ds->tokenizer, pad_names[k]);
    if (ds->pad_id < 0) ds->pad_id = vkft_tokenizer_eos_id(ds->tokenizer);
    if (ds->pad_id < 0) ds->pad_id = 0;
  }
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
  if (!(eval_fraction >= 0 && eval_fraction < 1))
    return vkft_error("eval_fraction must be in [0, 1), not %g", eval_fraction);
  uint32_t *ids = malloc((ds->n_ok + 1) * sizeof *ids);
  uint32_t *ev = malloc((ds->n_ok + 1) * sizeof *ev);
  if (!ids || !ev) {
    free(ids), free(ev);
    return vkft_error_nomem();
  }
  size_t n = 0;
  for (size_t i = 0; i < ds->n_examples; i++)
    if (ds->examples[i].status == VKFT_EXAMPLE_OK) ids[n++] = (uint32_t)i;
  size_t k = (size_t)(eval_fraction * (double)n + 0.5);
  if (eval_fraction > 0 && k == 0 && n >= 2) k = 1;
  if (k >= n && n > 0) k = n - 1;
  /* A seeded choice of k eval examples; both lists stay in input order. */
  uint32_t *order = malloc((n + 1) * sizeof *order);
  unsigned char *is_eval = calloc(n + 1, 1);
  if (!order || !is_eval) {
    free(ids), free(ev), free(order), free(is_eval);
    return vkft_error_nomem();
  }
  for (size_t i = 0; i < n; i++) order[i] = (uint32_t)i;
  uint64_t state = seed ^ 0x5EED5EED5EEDull;
  data_shuffle_u32(order, n, &state);
  for (size_t i = 0; i < k; i++) is_eval[order[i]] = 1;
  size_t nt = 0, ne = 0;
  for (size_t i = 0; i < n; i++) {
    if (is_eval[i])
      ev[ne++] = ids[i];
    else
      ids[nt++] = ids[i];
  }
  free(order);
  free(is_eval);
  *train = ids;
  *n_train = nt;
  *eval = ev;
  *n_eval = ne;
  return VKFT_OK;
}
