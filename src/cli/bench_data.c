/* `vkft bench data`: the data pipeline's speed. prepare (parse, render through the chat
 * template, tokenize, mask) on the largest shared SFT dataset, on one thread and on all, in
 * records/s and tokens/s (the tokenizer is loaded once, outside the timing); and dedup of 100k
 * synthetic records (10% near and 5% exact duplicates injected): exact hashing as the
 * baseline, then MinHash + LSH on one thread and on all, with the recall of the injected
 * near-duplicates. */
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

/* Looked up relative to the current folder (the repository root or the build folder). */
static const char *const shared_dirs[] = {"../shared/data", "../../shared/data"};

static int usage(void) {
  fprintf(stderr, "usage: vkft bench data [--model DIR] [--data FILE] [--records N] [--json]\n"
                  "  defaults: the qwen3 tokenizer and sft/alpaca_en_demo.json of the shared "
                  "data; 100000 dedup records\n");
  return 2;
}

static uint64_t rng(uint64_t *s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

typedef struct prep_result {
  double seconds;
  size_t records, tokens;
} prep_result;

static int time_prepare(const char *model, const char *data, vkft_tokenizer *tok, int threads,
                        prep_result *r) {
  vkft_data_file_desc file = {.path = data};
  vkft_dataset_desc d = {.model_dir = model,
                         .files = &file,
                         .n_files = 1,
                         .threads = threads,
                         .tokenizer = tok,
                         .max_len = 1 << 20};
  vkft_dataset *ds;
  double t0 = vkft_time_s();
  if (vkft_dataset_load(&d, &ds)) return VKFT_ERR;
  r->seconds = vkft_time_s() - t0;
  r->records = ds->n_examples;
  r->tokens = 0;
  for (size_t i = 0; i < ds->n_examples; i++) r->tokens += ds->examples[i].full_len;
  vkft_dataset_free(ds);
  return VKFT_OK;
}

/* n records of 20-60 words over a 5000-word vocabulary; every 10th is a copy of an earlier
 * one with 1-2 words changed, every 20th an exact copy. */
static int synth(size_t n, uint32_t ***seqs, size_t **lens, size_t *n_near) {
  uint32_t **s = calloc(n, sizeof *s);
  size_t *l = calloc(n, sizeof *l);
  if (!s || !l) return free(s), free(l), vkft_error_nomem();
  uint64_t state = 42;
  *n_near = 0;
  for (size_t i = 0; i < n; i++) {
    char text[1024];
    size_t len = 0;
    uint64_t r = rng(&state);
    size_t src = i > 0 ? (size_t)(rng(&state) % i) : 0;
    if (i > 0 && r % 20 == 0) { /* exact */
      s[i] = malloc(l[src] * sizeof **s + 4);
      if (!s[i]) return vkft_error_nomem();
      memcpy(s[i], s[src], l[src] * sizeof **s);
      l[i] = l[src];
      continue;
    }
    if (i > 0 && r % 10 == 1) { /* near: change one or two words (characters here) */
      s[i] = malloc(l[src] * sizeof **s + 4);
      if (!s[i]) return vkft_error_nomem();
      memcpy(s[i], s[src], l[src] * sizeof **s);
      l[i] = l[src];
      for (int k = 0; k < 1 + (int)(r >> 8) % 2; k++) s[i][rng(&state) % l[i]] = 'A' + (uint32_t)k;
      (*n_near)++;
      continue;
    }
    int words = 20 + (int)(rng(&state) % 41);
    for (int w = 0; w < words && len < sizeof text - 16; w++) {
      uint64_t word = rng(&state) % 5000;
      len += (size_t)snprintf(text + len, sizeof text - len, "%sw%llx", w ? " " : "",
                              (unsigned long long)(word * 2654435761u % 1000003));
    }
    if (vkft_utf8_codepoints(text, len, &s[i], &l[i])) return VKFT_ERR;
  }
  *seqs = s;
  *lens = l;
  return VKFT_OK;
}

int vkft_bench_data(int argc, char **argv) {
  const char *model = NULL, *data = NULL;
  size_t records = 100000;
  int json = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--model") && i + 1 < argc)
      model = argv[++i];
    else if (!strcmp(argv[i], "--data") && i + 1 < argc)
      data = argv[++i];
    else if (!strcmp(argv[i], "--records") && i + 1 < argc)
      records = strtoul(argv[++i], NULL, 10);
    else if (!strcmp(argv[i], "--json"))
      json = 1;
    else
      return usage();
  }
  static char model_buf[1024], data_buf[1024];
  for (size_t k = 0; k < 2 && (!model || !data); k++) {
    snprintf(model_buf, sizeof model_buf, "%s/tokenizers/qwen3", shared_dirs[k]);
    snprintf(data_buf, sizeof data_buf, "%s/sft/alpaca_en_demo.json", shared_dirs[k]);
    if (vkft_is_dir(model_buf) && vkft_file_exists(data_buf)) {
      if (!model) model = model_buf;
      if (!data) data = data_buf;
    }
  }
  if (!model || !data) {
    fprintf(stderr, "vkft: bench data: no shared data found; pass --model DIR --data FILE\n");
    return 2;
  }
  if (records < 100) records = 100;
  vkft_tokenizer *tok;
  if (vkft_tokenizer_load(model, &tok)) return cli_fail();
  int cpus = vkft_cpu_count();
  prep_result one, all;
  if (time_prepare(model, data, tok, 1, &one) || time_prepare(model, data, tok, 0, &all)) {
    vkft_tokenizer_free(tok);
    return cli_fail();
  }
  vkft_tokenizer_free(tok);
  uint32_t **seqs = NULL;
  size_t *lens = NULL, n_near = 0;
  if (synth(records, &seqs, &lens, &n_near)) return cli_fail();
  unsigned char *keep = malloc(records);
  vkft_dedup_pair *pairs = NULL;
  size_t n_pairs = 0, n_exact = 0, n_found_1 = 0, n_found_n = 0;
  double t0 = vkft_time_s();
  int rc =
      keep ? vkft_dedup_exact((const uint32_t *const *)seqs, lens, records, keep, &pairs, &n_exact)
           : vkft_error_nomem();
  double t_exact = vkft_time_s() - t0;
  free(pairs);
  double t_one = 0, t_all = 0;
  for (int pass = 0; rc == VKFT_OK && pass < 2; pass++) {
    vkft_dedup_desc dd = {.threshold = 0.8, .threads = pass == 0 ? 1 : 0};
    t0 = vkft_time_s();
    rc = vkft_dedup((const uint32_t *const *)seqs, lens, records, &dd, keep, &pairs, &n_pairs);
    double t = vkft_time_s() - t0;
    size_t near = 0;
    for (size_t p = 0; p < n_pairs; p++) near += !pairs[p].exact;
    if (pass == 0)
      t_one = t, n_found_1 = near;
    else
      t_all = t, n_found_n = near;
    free(pairs);
  }
  for (size_t i = 0; i < records; i++) free(seqs[i]);
  free(seqs), free(lens), free(keep);
  if (rc) return cli_fail();
  if (json) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "data", data);
    cJSON_AddStringToObject(j, "model", model);
    cJSON_AddNumberToObject(j, "records", (double)one.records);
    cJSON_AddNumberToObject(j, "tokens", (double)one.tokens);
    cJSON_AddNumberToObject(j, "prepare_records_per_s_1_thread", (double)one.records / one.seconds);
    cJSON_AddNumberToObject(j, "prepare_tokens_per_s_1_thread", (double)one.tokens / one.seconds);
    cJSON_AddNumberToObject(j, "threads", cpus);
    cJSON_AddNumberToObject(j, "prepare_records_per_s", (double)all.records / all.seconds);
    cJSON_AddNumberToObject(j, "prepare_tokens_per_s", (double)all.tokens / all.seconds);
    cJSON_AddNumberToObject(j, "dedup_records", (double)records);
    cJSON_AddNumberToObject(j, "dedup_exact_s", t_exact);
    cJSON_AddNumberToObject(j, "dedup_minhash_s_1_thread", t_one);
    cJSON_AddNumberToObject(j, "dedup_minhash_s", t_all);
    cJSON_AddNumberToObject(j, "exact_duplicates", (double)n_exact);
    cJSON_AddNumberToObject(j, "near_duplicates_injected", (double)n_near);
    cJSON_AddNumberToObject(j, "near_duplicates_found", (double)n_found_n);
    char *s = cJSON_PrintUnformatted(j);
    if (s) puts(s);
    free(s);
    cJSON_Delete(j);
  } else {
    printf("prepare %s (%zu records, %zu tokens) with %s:\n", data, one.records, one.tokens, model);
    printf("  1 thread   %8.0f records/s %10.0f tokens/s (%.2f s)\n",
           (double)one.records / one.seconds, (double)one.tokens / one.seconds, one.seconds);
    printf("  %d threads %8.0f records/s %10.0f tokens/s (%.2f s)\n", cpus,
           (double)all.records / all.seconds, (double)all.tokens / all.seconds, all.seconds);
    printf("dedup %zu synthetic records (%zu near duplicates injected):\n", records, n_near);
    printf("  exact hash (baseline)      %.3f s, %zu exact duplicates\n", t_exact, n_exact);
    printf("  MinHash+LSH 1 thread       %.3f s, %zu near duplicates found\n", t_one, n_found_1);
    printf("  MinHash+LSH %d threads      %.3f s, %zu near duplicates found\n", cpus, t_all,
           n_found_n);
  }
  if (n_found_1 != n_found_n) {
    fprintf(stderr, "vkft: bench data: dedup differs between 1 and %d threads\n", cpus);
    return 1;
  }
  return 0;
}
