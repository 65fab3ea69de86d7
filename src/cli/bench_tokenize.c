/* `vkft bench tokenize`: encoding speed of a tokenizer (Llama 3 by default) on a few MiB of
 * mixed text, on one thread and with the threaded batch encoder, in MB/s (10^6 bytes of UTF-8
 * input per second). The text is the shared corpus (Shakespeare, Wikipedia, C4) when it is
 * found, else a generated mix of English, code, numbers, CJK and emoji. */
#include "commands_tokenize.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vkft/error.h"
#include "vkft/platform.h"
#include "vkft/tokenizer.h"

/* Looked up relative to the current folder (the repository root or the build folder). */
static const char *const default_tokenizers[] = {"../shared/data/tokenizers/llama3",
                                                 "../../shared/data/tokenizers/llama3"};
static const char *const default_corpora[] = {"../shared/data/corpus", "../../shared/data/corpus"};

typedef struct texts {
  char **s;
  size_t *len;
  size_t n, cap, bytes;
} texts;

static int add_text(texts *t, const char *s, size_t len) {
  if (len == 0) return VKFT_OK;
  if (t->n == t->cap) {
    size_t cap = t->cap ? t->cap * 2 : 1024;
    char **ns = realloc(t->s, cap * sizeof *ns);
    if (ns) t->s = ns;
    size_t *nl = realloc(t->len, cap * sizeof *nl);
    if (nl) t->len = nl;
    if (!ns || !nl) return vkft_error_nomem();
    t->cap = cap;
  }
  char *copy = malloc(len + 1);
  if (!copy) return vkft_error_nomem();
  memcpy(copy, s, len);
  copy[len] = 0;
  t->s[t->n] = copy;
  t->len[t->n++] = len;
  t->bytes += len;
  return VKFT_OK;
}

static void free_texts(texts *t) {
  for (size_t i = 0; i < t->n; i++) free(t->s[i]);
  free(t->s);
  free(t->len);
}

/* Splits a file into documents at `sep` (a blank line for Shakespeare, a newline for the one
 * article per line of wiki_demo), or takes the "text" of each JSON line (c4_demo.jsonl). */
static int load_file(texts *t, const char *dir, const char *name, const char *sep, int jsonl) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  if (!vkft_file_exists(path)) return VKFT_OK;
  char *data;
  size_t size;
  if (vkft_file_read(path, &data, &size) != VKFT_OK) return VKFT_ERR;
  int status = VKFT_OK;
  size_t sep_len = strlen(sep);
  for (char *p = data; status == VKFT_OK && p < data + size;) {
    char *end = strstr(p, sep);
    if (!end) end = data + size;
    if (jsonl) {
      *end = 0;
      cJSON *json = cJSON_Parse(p);
      const cJSON *text = cJSON_GetObjectItemCaseSensitive(json, "text");
      if (cJSON_IsString(text)) status = add_text(t, text->valuestring, strlen(text->valuestring));
      cJSON_Delete(json);
    } else {
      status = add_text(t, p, (size_t)(end - p));
    }
    p = end + sep_len;
  }
  free(data);
  return status;
}

/* About 3 MB of varied text when the corpus is not around. */
static int synthetic(texts *t) {
  static const char *const parts[] = {
      "The quick brown fox jumps over the lazy dog. It's 3:45 PM and we've got 1,234,567 "
      "things to do before 2024-06-30, so let's get going! ",
      "int main(int argc, char **argv) {\n    for (int i = 0; i < argc; i++) printf(\"%s\\n\", "
      "argv[i]);\n    return 0;\n}\n",
      "\xe4\xbb\x8a\xe5\xa4\xa9\xe5\xa4\xa9\xe6\xb0\x94\xe5\xbe\x88\xe5\xa5\xbd\xef\xbc\x8c"
      "\xe6\x88\x91\xe4\xbb\xac\xe5\x8e\xbb\xe5\x85\xac\xe5\x9b\xad\xe5\x90\xa7\xe3\x80\x82 ",
      "Caf\xc3\xa9 na\xc3\xafve r\xc3\xa9sum\xc3\xa9 \xf0\x9f\x98\x80\xf0\x9f\x91\x8d "
      "\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82 \xce\xb3\xce\xb5\xce\xb9\xce\xb1 ",
      "    def forward(self, x):\n        return self.linear(x) * 0.5 + 1e-6\n\n"};
  char doc[4096];
  for (int d = 0; d < 1200; d++) {
    size_t len = 0;
    for (int k = 0; len + 300 < sizeof doc; k++) {
      const char *part = parts[(d + k * 3) % 5];
      size_t n = strlen(part);
      memcpy(doc + len, part, n);
      len += n;
      len += (size_t)snprintf(doc + len, sizeof doc - len, "%d ", d * 31 + k);
    }
    if (add_text(t, doc, len) != VKFT_OK) return VKFT_ERR;
  }
  return VKFT_OK;
}

/* MB/s of wall time; cpu_s (process CPU time, all threads) shows how much of the wall time the
 * machine actually gave us when other work shares the cores. */
static void report(int json, const char *path, const char *what, int threads, size_t bytes,
                   size_t tokens, double seconds, double cpu_s) {
  double mb_per_s = seconds > 0 ? (double)bytes / 1e6 / seconds : 0;
  if (json) {
    printf("{\"bench\":\"tokenize\",\"tokenizer\":\"");
    for (const char *c = path; *c; c++) /* a path is JSON-safe once quotes and \\ are escaped */
      printf((*c == '"' || *c == '\\') ? "\\%c" : "%c", *c);
    printf("\",\"mode\":\"%s\",\"threads\":%d,\"mb_per_s\":%.2f,\"bytes\":%zu,\"tokens\":%zu,"
           "\"seconds\":%.4f,\"cpu_seconds\":%.4f}\n",
           what, threads, mb_per_s, bytes, tokens, seconds, cpu_s);
  } else {
    printf("  %-8s %2d thread%s %8.2f MB/s  (%zu bytes, %zu tokens, %.3f s, %.3f s CPU)\n", what,
           threads, threads == 1 ? " " : "s", mb_per_s, bytes, tokens, seconds, cpu_s);
  }
}

static double cpu_seconds(void) {
  return (double)clock() / CLOCKS_PER_SEC;
}

int vkft_bench_tokenize(int argc, char **argv) {
  const char *path = NULL, *corpus = NULL;
  int json = 0, threads = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--tokenizer") && i + 1 < argc)
      path = argv[++i];
    else if (!strcmp(argv[i], "--corpus") && i + 1 < argc)
      corpus = argv[++i];
    else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
      threads = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--json"))
      json = 1;
    else {
      fprintf(stderr, "usage: vkft bench tokenize [--tokenizer PATH] [--corpus DIR] "
                      "[--threads N] [--json]\n");
      return 2;
    }
  }
  for (size_t i = 0; !path && i < sizeof default_tokenizers / sizeof *default_tokenizers; i++)
    if (vkft_is_dir(default_tokenizers[i])) path = default_tokenizers[i];
  if (!path) {
    fprintf(stderr,
            "vkft: bench tokenize: no Llama 3 tokenizer at ../shared/data/tokenizers/llama3;"
            " pass --tokenizer PATH\n");
    return 2;
  }
  for (size_t i = 0; !corpus && i < sizeof default_corpora / sizeof *default_corpora; i++)
    if (vkft_is_dir(default_corpora[i])) corpus = default_corpora[i];
  if (threads <= 0) threads = vkft_cpu_count();
  if (threads < 1) threads = 1;

  double t0 = vkft_time_s();
  vkft_tokenizer *tok;
  if (vkft_tokenizer_load(path, &tok) != VKFT_OK) {
    fprintf(stderr, "vkft: %s\n", vkft_error_message());
    return 1;
  }
  double load_s = vkft_time_s() - t0;
  texts t = {0};
  int status = VKFT_OK;
  if (corpus) {
    status = load_file(&t, corpus, "tinyshakespeare.txt", "\n\n", 0);
    if (status == VKFT_OK) status = load_file(&t, corpus, "wiki_demo.txt", "\n", 0);
    if (status == VKFT_OK) status = load_file(&t, corpus, "c4_demo.jsonl", "\n", 1);
  }
  if (status == VKFT_OK && t.n == 0) {
    corpus = NULL; /* nothing found there */
    status = synthetic(&t);
  }
  int32_t **ids = calloc(t.n ? t.n : 1, sizeof *ids);
  size_t *n_ids = calloc(t.n ? t.n : 1, sizeof *n_ids);
  if (status == VKFT_OK && (!ids || !n_ids)) status = vkft_error_nomem();
  if (status != VKFT_OK) {
    fprintf(stderr, "vkft: %s\n", vkft_error_message());
    free(ids), free(n_ids), free_texts(&t), vkft_tokenizer_free(tok);
    return 1;
  }
  if (!json)
    printf("tokenize %s: loaded in %.2f s; %zu texts, %.2f MB from %s\n", path, load_s, t.n,
           (double)t.bytes / 1e6, corpus ? corpus : "generated text");

  /* one thread, every text through vkft_tokenizer_encode; whole passes over the texts are
   * repeated until half a second has passed so the figure is stable (the first pass runs with
   * a cold word cache, later ones warm, as a long training run would be) */
  int32_t *buf = NULL;
  size_t tokens = 0, passes = 0;
  t0 = vkft_time_s();
  double cpu0 = cpu_seconds(), single_s = 0;
  while (status == VKFT_OK && (passes == 0 || single_s < 0.5)) {
    tokens = 0;
    for (size_t i = 0; status == VKFT_OK && i < t.n; i++) {
      size_t n = 0;
      status = vkft_tokenizer_encode(tok, t.s[i], t.len[i], 0, &buf, &n);
      tokens += n;
    }
    passes++;
    single_s = vkft_time_s() - t0;
  }
  free(buf);
  if (status == VKFT_OK)
    report(json, path, "single", 1, t.bytes * passes, tokens * passes, single_s,
           cpu_seconds() - cpu0);

  /* all threads through the batch encoder, the same way */
  double batch_s = 0;
  size_t batch_passes = 0;
  t0 = vkft_time_s();
  cpu0 = cpu_seconds();
  while (status == VKFT_OK && (batch_passes == 0 || batch_s < 0.5)) {
    status = vkft_tokenizer_encode_batch(tok, (const char *const *)t.s, t.len, t.n, 0, threads, ids,
                                         n_ids);
    size_t batch_tokens = 0;
    for (size_t i = 0; i < t.n; i++) batch_tokens += n_ids[i], free(ids[i]);
    if (status == VKFT_OK && batch_tokens != tokens)
      status = vkft_error("batch encode gave %zu tokens, single-thread %zu", batch_tokens, tokens);
    batch_passes++;
    batch_s = vkft_time_s() - t0;
  }
  if (status == VKFT_OK)
    report(json, path, "batch", threads, t.bytes * batch_passes, tokens * batch_passes, batch_s,
           cpu_seconds() - cpu0);
  if (status != VKFT_OK) fprintf(stderr, "vkft: %s\n", vkft_error_message());
  free(ids);
  free(n_ids);
  free_texts(&t);
  vkft_tokenizer_free(tok);
  return status == VKFT_OK ? 0 : 1;
}
