/* `vkft data explore`: a map of a dataset under a model.
 *   data explore --model DIR [--adapter DIR] --data FILE --out map.html [--k K | --k-max K]
 *                [--json map.json] [--select C[,C..] --select-out FILE] [--batch N] [--seed S]
 *                [--sample N] [--threshold J] [--threads N] [--format F] [--template T]
 *                [--max-len N] [--train-on assistant|all]
 * Each record is read as training reads it (the rendered chat or instruction format) and goes
 * through the training forward (`data score`'s path: --batch records per submission, one
 * micro-batch slot each); its embedding is the mean over its tokens of the final hidden state
 * after the final norm, L2-normalised. Then: k-means (k given, or chosen by silhouette over
 * 2..min(k-max, sqrt(n))), a 2-D PCA picture, c-TF-IDF terms per cluster, MinHash near-duplicate
 * groups (`data dedup`'s), and the page (src/report/explore_page.c). docs/DATA.md has the
 * method and its sources. */
#include "cmd_data.h"
#include "commands.h"
#include "gen_session.h"

#include "vkft/error.h"
#include "vkft/explore.h"
#include "vkft/model.h"
#include "vkft/platform.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_GROUP = 64, MAX_FIELDS = 8, TOP_TERMS = 8, EXAMPLES = 3, MAX_SELECT = 256 };

typedef struct explore_opts {
  cli_eval_opts eo;
  const char *out, *json, *select, *select_out;
  int64_t k, k_max, group, sample, threads;
  int64_t seed;
  double threshold;
} explore_opts;

/* ---- embeddings ---- */

typedef struct embed_run {
  gen_session *s;
  const vkft_dataset *ds;
  const size_t *ids; /* the OK examples */
  size_t n;
  int64_t C, maxT;
  vkft_tensor weights, out; /* (group, maxT) pooling weights; (group, C) pooled states */
  float *host_w;            /* (group, maxT) */
  int32_t *pos, *seq;
  float *emb; /* (n, C) */
  size_t tokens;
} embed_run;

static int embed_group(embed_run *r, size_t first, size_t end) {
  vkft_model *m = r->s->model;
  vkft_backend *be = r->s->be;
  int G = (int)(end - first), status = VKFT_OK;
  memset(r->host_w, 0, (size_t)G * (size_t)r->maxT * sizeof *r->host_w);
  for (int g = 0; g < G && status == VKFT_OK; g++) {
    const vkft_example *ex = &r->ds->examples[r->ids[first + (size_t)g]];
    int64_t T = ex->len;
    for (int64_t t = 0; t < T; t++) {
      r->pos[t] = (int32_t)t;
      r->seq[t] = 0;
      r->host_w[(size_t)g * (size_t)r->maxT + (size_t)t] = 1.0f / (float)T;
    }
    vkft_model_batch mb = {T, ex->input_ids, ex->labels, r->pos, r->seq};
    status = vkft_model_set_batch(m, g, &mb);
    r->tokens += (size_t)T;
  }
  vkft_tensor w = vkft_tensor_view(&r->weights, 0, G * r->maxT);
  if (status == VKFT_OK) status = vkft_tensor_write(be, &w, r->host_w);
  int begun = status == VKFT_OK && (status = vkft_begin(be)) == VKFT_OK;
  for (int g = 0; g < G && status == VKFT_OK; g++) {
    vkft_tensor wg = vkft_tensor_view(&r->weights, g * r->maxT, r->maxT);
    vkft_tensor og = vkft_tensor_view(&r->out, g * r->C, r->C);
    status = vkft_model_forward_pooled(m, g, &wg, &og);
  }
  if (begun && vkft_end(be) != VKFT_OK) status = VKFT_ERR; /* (a failure before: its error) */
  vkft_tensor o = vkft_tensor_view(&r->out, 0, G * r->C);
  float *dst = r->emb + first * (size_t)r->C;
  if (status == VKFT_OK) status = vkft_tensor_read(be, &o, dst);
  for (int g = 0; g < G && status == VKFT_OK; g++) { /* L2-normalise */
    float *v = dst + (size_t)g * (size_t)r->C;
    double s = 0;
    for (int64_t c = 0; c < r->C; c++) s += (double)v[c] * v[c];
    float inv = s > 0 ? (float)(1 / sqrt(s)) : 0;
    for (int64_t c = 0; c < r->C; c++) v[c] *= inv;
  }
  return status;
}

static int embed_all(embed_run *r, int64_t group, double *seconds) {
  vkft_backend *be = r->s->be;
  r->C = r->s->cfg.hidden_size;
  r->maxT = r->ds->max_len;
  r->host_w = malloc((size_t)group * (size_t)r->maxT * sizeof *r->host_w);
  r->pos = malloc((size_t)r->maxT * sizeof *r->pos);
  r->seq = malloc((size_t)r->maxT * sizeof *r->seq);
  r->emb = malloc(r->n * (size_t)r->C * sizeof *r->emb + 1);
  if (!r->host_w || !r->pos || !r->seq || !r->emb) return vkft_error_nomem();
  if (vkft_tensor_alloc(be, VKFT_F32, group * r->maxT, &r->weights) ||
      vkft_tensor_alloc(be, VKFT_F32, group * r->C, &r->out))
    return VKFT_ERR;
  double t0 = vkft_time_s();
  int status = VKFT_OK;
  for (size_t i = 0; i < r->n && status == VKFT_OK; i += (size_t)group) {
    size_t end = i + (size_t)group < r->n ? i + (size_t)group : r->n;
    status = embed_group(r, i, end);
    if (status == VKFT_OK && vkft_console_is_tty(stderr))
      fprintf(stderr, "\r\033[Kembed %zu/%zu", end, r->n);
  }
  if (vkft_console_is_tty(stderr)) fputc('\n', stderr);
  *seconds = vkft_time_s() - t0;
  return status;
}

static void embed_free(embed_run *r) {
  if (r->s && r->s->be) {
    if (r->weights.n) vkft_tensor_free(r->s->be, &r->weights);
    if (r->out.n) vkft_tensor_free(r->s->be, &r->out);
  }
  free(r->host_w);
  free(r->pos);
  free(r->seq);
  free(r->emb);
}

/* ---- what the page shows beside the clusters ---- */

typedef struct records_info {
  size_t n;
  char **texts, **lines, **where;
  char fields[MAX_FIELDS][64];
  int n_fields;
  double *values; /* (n, MAX_FIELDS) */
} records_info;

/* the numeric scores a record carries: the members of "scores" (`data score`), and the
 * top-level loss, ppl, ifd, judge_score, score */
static void score_fields(records_info *ri, size_t i, const cJSON *r) {
  static const char *const top[] = {"loss", "ppl", "ifd", "judge_score", "score"};
  const cJSON *scores = cJSON_GetObjectItemCaseSensitive(r, "scores");
  const cJSON *items[64];
  const char *names[64];
  int n = 0;
  for (const cJSON *e = cJSON_IsObject(scores) ? scores->child : NULL; e && n < 64; e = e->next)
    if (cJSON_IsNumber(e) && e->string) items[n] = e, names[n++] = e->string;
  for (int t = 0; t < 5 && n < 64; t++) {
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(r, top[t]);
    if (cJSON_IsNumber(e)) items[n] = e, names[n++] = top[t];
  }
  for (int q = 0; q < n; q++) {
    int f = 0;
    while (f < ri->n_fields && strcmp(ri->fields[f], names[q])) f++;
    if (f == ri->n_fields) {
      if (f == MAX_FIELDS || strlen(names[q]) >= sizeof ri->fields[0]) continue;
      snprintf(ri->fields[f], sizeof ri->fields[f], "%s", names[q]);
      ri->n_fields++;
    }
    ri->values[i * MAX_FIELDS + (size_t)f] = items[q]->valuedouble;
  }
}

static char *copy_bytes(const char *s, size_t len) {
  char *c = malloc(len + 1);
  if (c) memcpy(c, s, len), c[len] = 0;
  return c;
}

static int records_info_make(const vkft_dataset *ds, const size_t *ids, size_t n,
                             records_info *ri) {
  *ri = (records_info){.n = n};
  ri->texts = calloc(n + 1, sizeof *ri->texts);
  ri->lines = calloc(n + 1, sizeof *ri->lines);
  ri->where = calloc(n + 1, sizeof *ri->where);
  ri->values = malloc((n + 1) * MAX_FIELDS * sizeof *ri->values);
  if (!ri->texts || !ri->lines || !ri->where || !ri->values) return vkft_error_nomem();
  for (size_t q = 0; q < (n + 1) * MAX_FIELDS; q++) ri->values[q] = NAN;
  for (size_t i = 0; i < n; i++) {
    const vkft_example *ex = &ds->examples[ids[i]];
    const char *p = ex->prompt_text ? ex->prompt_text : "",
               *a = ex->reply_text ? ex->reply_text : "";
    size_t lp = strlen(p), la = strlen(a);
    ri->texts[i] = malloc(lp + la + 2);
    char where[1100];
    snprintf(where, sizeof where, "%s:%u", ds->file_paths[ex->file], ex->line);
    ri->where[i] = copy_bytes(where, strlen(where));
    if (!ri->texts[i] || !ri->where[i]) return vkft_error_nomem();
    memcpy(ri->texts[i], p, lp);
    ri->texts[i][lp] = lp && la ? '\n' : 0;
    memcpy(ri->texts[i] + lp + (lp && la), a, la + 1);
    /* the record as one line: its bytes (JSON Lines), else printed again (a JSON array) */
    cJSON *r = cJSON_ParseWithLength(ex->raw, ex->raw_len);
    if (r) score_fields(ri, i, r);
    ri->lines[i] = memchr(ex->raw, '\n', ex->raw_len) && r ? cJSON_PrintUnformatted(r)
                                                           : copy_bytes(ex->raw, ex->raw_len);
    cJSON_Delete(r);
    if (!ri->lines[i]) return vkft_error_nomem();
  }
  return VKFT_OK;
}

static void records_info_free(records_info *ri) {
  for (size_t i = 0; i < ri->n; i++) {
    if (ri->texts) free(ri->texts[i]);
    if (ri->lines) free(ri->lines[i]);
    if (ri->where) free(ri->where[i]);
  }
  free(ri->texts);
  free(ri->lines);
  free(ri->where);
  free(ri->values);
}

static int cmp_pair(const void *a, const void *b) {
  const vkft_dedup_pair *x = a, *y = b;
  if (x->kept != y->kept) return x->kept < y->kept ? -1 : 1;
  return x->removed < y->removed ? -1 : x->removed > y->removed;
}

/* near-duplicate groups from `data dedup`'s pairs: each kept record with those removed for it */
static int dup_groups(const records_info *ri, const explore_opts *o, size_t **start,
                      uint32_t **members, size_t *n_groups) {
  size_t n = ri->n, n_pairs = 0;
  uint32_t **seqs = calloc(n + 1, sizeof *seqs);
  size_t *lens = calloc(n + 1, sizeof *lens);
  unsigned char *keep = malloc(n + 1);
  vkft_dedup_pair *pairs = NULL;
  int status = seqs && lens && keep ? VKFT_OK : vkft_error_nomem();
  for (size_t i = 0; i < n && status == VKFT_OK; i++)
    status = vkft_utf8_codepoints(ri->texts[i], strlen(ri->texts[i]), &seqs[i], &lens[i]);
  vkft_dedup_desc dd = {
      .threshold = o->threshold, .threads = (int)o->threads, .seed = (uint64_t)o->seed};
  if (status == VKFT_OK)
    status = vkft_dedup((const uint32_t *const *)seqs, lens, n, &dd, keep, &pairs, &n_pairs);
  *start = malloc((n_pairs + 2) * sizeof **start);
  *members = malloc((2 * n_pairs + 1) * sizeof **members);
  *n_groups = 0;
  if (status == VKFT_OK && (!*start || !*members)) status = vkft_error_nomem();
  /* groups in the order of their kept record; members in input order */
  if (status == VKFT_OK && n_pairs) qsort(pairs, n_pairs, sizeof *pairs, cmp_pair);
  size_t at = 0;
  for (size_t p = 0; status == VKFT_OK && p < n_pairs; p++) {
    if (p == 0 || pairs[p].kept != pairs[p - 1].kept) {
      (*start)[(*n_groups)++] = at;
      (*members)[at++] = (uint32_t)pairs[p].kept;
    }
    (*members)[at++] = (uint32_t)pairs[p].removed;
  }
  if (status == VKFT_OK) (*start)[*n_groups] = at;
  for (size_t i = 0; i < n; i++)
    if (seqs) free(seqs[i]);
  free(seqs);
  free(lens);
  free(keep);
  free(pairs);
  return status;
}

/* the EXAMPLES records nearest each cluster's centroid */
static int nearest_examples(const float *emb, size_t n, size_t C, const int32_t *cluster,
                            const float *centroids, int k, uint32_t *examples) {
  for (size_t q = 0; q < (size_t)k * EXAMPLES; q++) examples[q] = UINT32_MAX;
  float *best = malloc((size_t)k * EXAMPLES * sizeof *best);
  if (!best) return vkft_error_nomem();
  for (size_t i = 0; i < n; i++) {
    int c = cluster[i];
    const float *x = emb + i * C, *m = centroids + (size_t)c * C;
    float d2 = 0;
    for (size_t t = 0; t < C; t++) d2 += (x[t] - m[t]) * (x[t] - m[t]);
    uint32_t *ex = examples + (size_t)c * EXAMPLES;
    float *bd = best + (size_t)c * EXAMPLES;
    int slot = EXAMPLES;
    while (slot > 0 && (ex[slot - 1] == UINT32_MAX || d2 < bd[slot - 1])) slot--;
    if (slot == EXAMPLES) continue;
    for (int s = EXAMPLES - 1; s > slot; s--) ex[s] = ex[s - 1], bd[s] = bd[s - 1];
    ex[slot] = (uint32_t)i;
    bd[slot] = d2;
  }
  free(best);
  return VKFT_OK;
}

/* ---- outputs ---- */

typedef struct explore_result {
  size_t n;
  int k;
  int32_t *cluster;
  float *xy, *centroids;
  vkft_topic_terms terms;
  double *silhouette; /* when k was chosen */
  int k_lo, k_hi;
  size_t *dup_start, n_dup_groups;
  uint32_t *dup_members;
} explore_result;

static int write_json(const char *path, const records_info *ri, const explore_result *x) {
  cJSON *root = cJSON_CreateObject(), *recs = cJSON_AddArrayToObject(root, "records");
  cJSON *clusters = cJSON_AddArrayToObject(root, "clusters");
  cJSON_AddNumberToObject(root, "k", x->k);
  for (size_t i = 0; recs && i < x->n; i++) {
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "where", ri->where[i]);
    cJSON_AddNumberToObject(r, "cluster", x->cluster[i]);
    cJSON_AddNumberToObject(r, "x", x->xy[2 * i]);
    cJSON_AddNumberToObject(r, "y", x->xy[2 * i + 1]);
    cJSON_AddItemToArray(recs, r);
  }
  for (int c = 0; clusters && c < x->k; c++) {
    cJSON *cl = cJSON_CreateObject(), *terms = cJSON_AddArrayToObject(cl, "terms");
    size_t size = 0;
    for (size_t i = 0; i < x->n; i++) size += x->cluster[i] == c;
    cJSON_AddNumberToObject(cl, "cluster", c);
    cJSON_AddNumberToObject(cl, "size", (double)size);
    for (int t = 0; t < x->terms.top; t++) {
      const char *w = x->terms.terms[(size_t)c * (size_t)x->terms.top + (size_t)t];
      if (w) cJSON_AddItemToArray(terms, cJSON_CreateString(w));
    }
    cJSON_AddItemToArray(clusters, cl);
  }
  if (x->silhouette) {
    cJSON *s = cJSON_AddObjectToObject(root, "silhouette");
    for (int k = x->k_lo; k <= x->k_hi; k++) {
      char key[16];
      snprintf(key, sizeof key, "%d", k);
      cJSON_AddNumberToObject(s, key, x->silhouette[k - x->k_lo]);
    }
  }
  cJSON *groups = cJSON_AddArrayToObject(root, "duplicate_groups");
  for (size_t g = 0; groups && g < x->n_dup_groups; g++) {
    cJSON *members = cJSON_CreateArray();
    for (size_t q = x->dup_start[g]; q < x->dup_start[g + 1]; q++)
      cJSON_AddItemToArray(members, cJSON_CreateString(ri->where[x->dup_members[q]]));
    cJSON_AddItemToArray(groups, members);
  }
  char *text = cJSON_Print(root);
  cJSON_Delete(root);
  if (!text) return vkft_error_nomem();
  cli_out of;
  int status = cli_out_open(&of, path);
  if (status == VKFT_OK) {
    fputs(text, of.f);
    fputc('\n', of.f);
    status = cli_out_close(&of, !ferror(of.f));
  }
  free(text);
  return status;
}

/* --select C[,C..]: which clusters (want[c]); an unknown one is an error */
static int parse_select(const char *list, int k, unsigned char *want) {
  memset(want, 0, (size_t)k);
  for (const char *p = list; *p;) {
    char *end;
    long c = strtol(p, &end, 10);
    if (end == p || (*end && *end != ',') || c < 0 || c >= k)
      return vkft_error_with(VKFT_ERR_INPUT, "--select: \"%s\" names a cluster outside 0..%d", list,
                             k - 1);
    want[c] = 1;
    p = *end ? end + 1 : end;
  }
  return VKFT_OK;
}

static int write_select(const explore_opts *o, const records_info *ri, const explore_result *x,
                        const unsigned char *want, size_t *written) {
  cli_out of;
  if (cli_out_open(&of, o->select_out)) return VKFT_ERR;
  *written = 0;
  for (size_t i = 0; i < x->n; i++)
    if (want[x->cluster[i]]) {
      fputs(ri->lines[i], of.f);
      fputc('\n', of.f);
      ++*written;
    }
  return cli_out_close(&of, !ferror(of.f));
}

static int analyse(const explore_opts *o, const float *emb, size_t n, size_t C,
                   const records_info *ri, explore_result *x) {
  x->n = n;
  x->cluster = malloc(n * sizeof *x->cluster);
  x->xy = malloc(2 * n * sizeof *x->xy);
  int k_hi = (int)floor(sqrt((double)n));
  if (k_hi > o->k_max) k_hi = (int)o->k_max;
  int max_k = o->k ? (int)o->k : k_hi < 2 ? 2 : k_hi;
  x->centroids = malloc((size_t)max_k * C * sizeof *x->centroids);
  if (!x->cluster || !x->xy || !x->centroids) return vkft_error_nomem();
  vkft_kmeans_desc kd = {.k = (int)o->k, .seed = (uint64_t)o->seed, .threads = (int)o->threads};
  if (o->k && (size_t)o->k > n)
    return vkft_error_with(VKFT_ERR_INPUT, "--k %lld: only %zu records", (long long)o->k, n);
  if (o->k) {
    x->k = (int)o->k;
    if (vkft_kmeans(emb, n, C, &kd, x->cluster, x->centroids, NULL)) return VKFT_ERR;
  } else if (k_hi < 2) { /* too few records to compare: one cluster */
    x->k = 1;
    kd.k = 1;
    if (vkft_kmeans(emb, n, C, &kd, x->cluster, x->centroids, NULL)) return VKFT_ERR;
  } else {
    x->k_lo = 2, x->k_hi = k_hi;
    x->silhouette = malloc((size_t)(k_hi - 1) * sizeof *x->silhouette);
    if (!x->silhouette) return vkft_error_nomem();
    if (vkft_kmeans_choose_k(emb, n, C, 2, k_hi, &kd, (size_t)o->sample, x->cluster, x->centroids,
                             &x->k, x->silhouette))
      return VKFT_ERR;
  }
  if (vkft_pca2(emb, n, C, (uint64_t)o->seed, x->xy, NULL)) return VKFT_ERR;
  if (vkft_topic_terms_compute((const char *const *)ri->texts, x->cluster, n, x->k, TOP_TERMS,
                               &x->terms))
    return VKFT_ERR;
  return dup_groups(ri, o, &x->dup_start, &x->dup_members, &x->n_dup_groups);
}

static void result_free(explore_result *x) {
  free(x->cluster);
  free(x->xy);
  free(x->centroids);
  vkft_topic_terms_free(&x->terms);
  free(x->silhouette);
  free(x->dup_start);
  free(x->dup_members);
}

static int write_outputs(const explore_opts *o, const float *emb, size_t C, const records_info *ri,
                         const explore_result *x, const char *method) {
  uint32_t *examples = malloc((size_t)x->k * EXAMPLES * sizeof *examples);
  if (!examples) return vkft_error_nomem();
  if (nearest_examples(emb, x->n, C, x->cluster, x->centroids, x->k, examples) != VKFT_OK) {
    free(examples);
    return VKFT_ERR;
  }
  const char *field_names[MAX_FIELDS];
  for (int f = 0; f < ri->n_fields; f++) field_names[f] = ri->fields[f];
  vkft_explore_map map = {.title = o->eo.data,
                          .model = o->eo.adapter ? o->eo.adapter : o->eo.model,
                          .n = x->n,
                          .k = x->k,
                          .texts = (const char *const *)ri->texts,
                          .records = (const char *const *)ri->lines,
                          .where = (const char *const *)ri->where,
                          .cluster = x->cluster,
                          .xy = x->xy,
                          .terms = &x->terms,
                          .n_fields = ri->n_fields,
                          .fields = field_names,
                          .field_values = ri->values,
                          .examples = examples,
                          .n_examples = EXAMPLES,
                          .n_dup_groups = x->n_dup_groups,
                          .dup_start = x->dup_start,
                          .dup_members = x->dup_members,
                          .silhouette = x->silhouette,
                          .k_lo = x->k_lo,
                          .k_hi = x->k_hi,
                          .method = method};
  /* the field values are stored MAX_FIELDS wide: the page reads n_fields of each row */
  double *values = malloc((x->n + 1) * (size_t)(ri->n_fields + 1) * sizeof *values);
  int status = values ? VKFT_OK : vkft_error_nomem();
  for (size_t i = 0; values && i < x->n; i++)
    for (int f = 0; f < ri->n_fields; f++)
      values[i * (size_t)ri->n_fields + (size_t)f] = ri->values[i * MAX_FIELDS + (size_t)f];
  map.field_values = values;
  if (status == VKFT_OK) status = vkft_explore_write_html(o->out, &map);
  if (status == VKFT_OK && o->json) status = write_json(o->json, ri, x);
  free(values);
  free(examples);
  return status;
}

static int usage(void) {
  fprintf(stderr,
          "usage: vkft data explore --model DIR [--adapter DIR] --data FILE --out map.html\n"
          "         [--k K | --k-max K (20)] [--json map.json] [--select C[,C..] --select-out "
          "FILE]\n"
          "         [--batch N (16)] [--seed S] [--sample N (1000)] [--threshold J (0.8)] "
          "[--threads N]\n"
          "         [--format F] [--template T] [--max-len N] [--train-on assistant|all]\n");
  return CLI_EXIT_USAGE;
}

static int parse(int argc, char **argv, explore_opts *o) {
  *o = (explore_opts){.k_max = 20, .group = 16, .sample = 1000, .threshold = 0.8};
  o->eo.keep_text = 1;
  for (int i = 1; i < argc; i++) {
    int taken = cli_eval_take_opt(&o->eo, argc, argv, &i);
    if (taken < 0) return cli_usage_error();
    if (taken) continue;
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    int bad = 0;
    if (!v) return usage();
    if (!strcmp(a, "--out"))
      o->out = v;
    else if (!strcmp(a, "--json"))
      o->json = v;
    else if (!strcmp(a, "--select"))
      o->select = v;
    else if (!strcmp(a, "--select-out"))
      o->select_out = v;
    else if (!strcmp(a, "--k"))
      bad = cli_int_option(a, v, 1, 4096, &o->k);
    else if (!strcmp(a, "--k-max"))
      bad = cli_int_option(a, v, 2, 4096, &o->k_max);
    else if (!strcmp(a, "--batch"))
      bad = cli_int_option(a, v, 1, MAX_GROUP, &o->group);
    else if (!strcmp(a, "--seed"))
      bad = cli_int_option(a, v, 0, INT64_MAX, &o->seed);
    else if (!strcmp(a, "--sample"))
      bad = cli_int_option(a, v, 2, 16384, &o->sample); /* its distances: sample^2 floats, 1 GiB */
    else if (!strcmp(a, "--threads"))
      bad = cli_int_option(a, v, 0, 64, &o->threads);
    else if (!strcmp(a, "--threshold"))
      bad = cli_double_option(a, v, 0, 1, &o->threshold);
    else
      return usage();
    if (bad) return cli_usage_error();
    i++;
  }
  if (!o->eo.model || !o->eo.data || !o->out) {
    fprintf(stderr, "vkft data explore: needs --model, --data and --out\n");
    return usage();
  }
  if (!o->select != !o->select_out) {
    fprintf(stderr, "vkft data explore: --select and --select-out go together\n");
    return usage();
  }
  return 0;
}

int cli_data_explore(int argc, char **argv) {
  cli_device_opts dev_opts;
  if (cli_take_device_opts(&argc, argv, &dev_opts) != VKFT_OK) return cli_fail();
  explore_opts o;
  int rc = parse(argc, argv, &o);
  if (rc) return rc;
  gen_session gs;
  vkft_dataset *ds;
  int status = cli_eval_open(&o.eo, &dev_opts, 1, (int)o.group, &gs, &ds);
  for (size_t i = 0; ds && i < ds->n_issues; i++)
    fprintf(stderr, "vkft: data: %s\n", ds->issues[i]);
  size_t *ids = ds ? malloc((ds->n_examples + 1) * sizeof *ids) : NULL, n = 0;
  if (status == VKFT_OK && !ids) status = vkft_error_nomem();
  for (size_t i = 0; status == VKFT_OK && i < ds->n_examples; i++)
    if (ds->examples[i].status == VKFT_EXAMPLE_OK) ids[n++] = i;
  if (status == VKFT_OK && n < 2)
    status = vkft_error_with(VKFT_ERR_INPUT, "%s: %zu usable records; a map needs 2 or more",
                             o.eo.data, n);
  embed_run er = {.s = &gs, .ds = ds, .ids = ids, .n = n};
  records_info ri = {0};
  explore_result x = {0};
  double embed_s = 0, t_analysis = 0, analysis_s = 0;
  size_t selected = 0;
  if (status == VKFT_OK) status = embed_all(&er, o.group, &embed_s);
  if (status == VKFT_OK) status = records_info_make(ds, ids, n, &ri);
  if (status == VKFT_OK) {
    t_analysis = vkft_time_s();
    status = analyse(&o, er.emb, n, (size_t)er.C, &ri, &x);
    analysis_s = vkft_time_s() - t_analysis;
  }
  char method[600];
  snprintf(
      method, sizeof method,
      "Written by vkft data explore. Embeddings: the mean over each record's rendered tokens of "
      "the model's final hidden state after its final norm, L2-normalised (%zu records, %zu "
      "tokens, %.0f tokens/s). Clusters: k-means (k-means++ seeding, seed %lld)%s. Picture: "
      "the first two principal components. Terms: c-TF-IDF.",
      n, er.tokens, embed_s > 0 ? (double)er.tokens / embed_s : 0.0, (long long)o.seed,
      x.silhouette ? ", k chosen by the mean silhouette" : "");
  unsigned char want[4096]; /* --select, checked before anything is written */
  if (status == VKFT_OK && o.select) status = parse_select(o.select, x.k, want);
  if (status == VKFT_OK) status = write_outputs(&o, er.emb, (size_t)er.C, &ri, &x, method);
  if (status == VKFT_OK && o.select) status = write_select(&o, &ri, &x, want, &selected);
  size_t left_out = ds ? ds->n_examples - n : 0;
  embed_free(&er);
  free(ids);
  records_info_free(&ri);
  vkft_dataset_free(ds); /* before the session: it borrows the session's tokenizer */
  gen_session_close(&gs);
  if (status != VKFT_OK) {
    result_free(&x);
    return cli_fail();
  }
  fprintf(stderr,
          "explore: %zu records embedded (%zu tokens) in %.2f s (%.0f tokens/s); k = %d%s; "
          "analysis %.2f s; %zu near-duplicate groups; %zu left out -> %s\n",
          n, er.tokens, embed_s, embed_s > 0 ? (double)er.tokens / embed_s : 0.0, x.k,
          x.silhouette ? " (by silhouette)" : "", analysis_s, x.n_dup_groups, left_out, o.out);
  if (o.select)
    fprintf(stderr, "explore: %zu records of clusters %s -> %s\n", selected, o.select,
            o.select_out);
  result_free(&x);
  return 0;
}
