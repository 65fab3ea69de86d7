/* Tokenizer against the reference vectors of HF tokenizers 0.22 (shared/data/vectors): for each
 * tokenizer every string's ids, ids with special tokens, decode, decode without special tokens
 * and per-token decode must match exactly; also llama.cpp's upstream vectors, the chat renders'
 * ids, the threaded batch encoder, and the load errors. The same vectors against the tokenizers
 * rebuilt from GGUF files (vkft export's, and llama.cpp's own stories260K.gguf), and the GGUF
 * tokenizer's refusals. Mismatches print the string and the first differing position. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "vkft/error.h"
#include "vkft/export.h"
#include "vkft/gguf.h"
#include "vkft/model.h"
#include "vkft/platform.h"
#include "vkft/tokenizer.h"
#include "vkft/utf8.h"

/* One row per tokenizer: where it is and which vector files apply to it (in the shared data). */
static const struct {
  const char *name, *path, *vectors, *llama_cpp, *chat;
} cases[] = {
    {"llama3", "tokenizers/llama3", "vectors/llama3.jsonl",
     "vectors/llama.cpp/ggml-vocab-llama-bpe.gguf", "vectors/llama3.chat.jsonl"},
    {"qwen3", "tokenizers/qwen3", "vectors/qwen3.jsonl", "vectors/llama.cpp/ggml-vocab-qwen2.gguf",
     "vectors/qwen3.chat.jsonl"},
    {"mistral", "tokenizers/mistral", "vectors/mistral.jsonl", NULL, NULL},
    {"gpt2", "tokenizers/gpt2/tokenizer.json", "vectors/gpt2.jsonl",
     "vectors/llama.cpp/ggml-vocab-gpt-2.gguf", NULL},
    {"stories260K", "models/stories260K", "vectors/stories260K.jsonl", NULL, NULL},
};

/* ---- JSON strings with embedded NULs (cJSON stops at the first NUL) ---- */

typedef struct str {
  char *data;
  size_t len;
} str;

/* Decodes the JSON string literal starting at *p (the opening quote); advances *p past it. */
static str json_literal(const char **p) {
  const char *s = *p + 1;
  str out = {malloc(strlen(s) + 1), 0};
  if (!out.data) abort();
  while (*s && *s != '"') {
    if (*s != '\\') {
      out.data[out.len++] = *s++;
      continue;
    }
    s++;
    char c = *s++;
    switch (c) {
    case 'n':
      out.data[out.len++] = '\n';
      break;
    case 't':
      out.data[out.len++] = '\t';
      break;
    case 'r':
      out.data[out.len++] = '\r';
      break;
    case 'b':
      out.data[out.len++] = '\b';
      break;
    case 'f':
      out.data[out.len++] = '\f';
      break;
    case 'u': {
      unsigned long cp = strtoul((char[]){s[0], s[1], s[2], s[3], 0}, NULL, 16);
      s += 4;
      if (cp >= 0xD800 && cp < 0xDC00 && s[0] == '\\' && s[1] == 'u') {
        unsigned long lo = strtoul((char[]){s[2], s[3], s[4], s[5], 0}, NULL, 16);
        s += 6;
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
      }
      out.len += vkft_utf8_encode((uint32_t)cp, out.data + out.len);
      break;
    }
    default:
      out.data[out.len++] = c;
      break; /* \" \\ \/ */
    }
  }
  *p = *s ? s + 1 : s;
  out.data[out.len] = 0;
  return out;
}

/* The string value of "key" in a JSON line (keys cannot occur inside string values because
 * the quotes there are escaped). */
static int json_field(const char *line, const char *key, str *out) {
  char pattern[64];
  snprintf(pattern, sizeof pattern, "\"%s\":", key);
  const char *p = strstr(line, pattern);
  if (!p) return 0;
  p += strlen(pattern);
  while (*p == ' ') p++;
  if (*p != '"') return 0;
  *out = json_literal(&p);
  return 1;
}

/* The list of strings of "key"; returns the count, *out malloc'd. */
static size_t json_field_list(const char *line, const char *key, str **out) {
  char pattern[64];
  snprintf(pattern, sizeof pattern, "\"%s\":", key);
  const char *p = strstr(line, pattern);
  *out = NULL;
  if (!p) return 0;
  p += strlen(pattern);
  size_t n = 0, cap = 0;
  while (*p && *p != '"' && *p != ']') p++;
  while (*p == '"') {
    if (n == cap) {
      cap = cap ? cap * 2 : 16;
      *out = realloc(*out, cap * sizeof **out);
      if (!*out) abort();
    }
    (*out)[n++] = json_literal(&p);
    while (*p == ',' || *p == ' ') p++;
  }
  return n;
}

static size_t ids_from_json(const cJSON *array, int32_t **ids) {
  size_t n = (size_t)cJSON_GetArraySize(array), i = 0;
  *ids = malloc((n ? n : 1) * sizeof **ids);
  if (!*ids) abort();
  const cJSON *item;
  cJSON_ArrayForEach(item, array)(*ids)[i++] = (int32_t)item->valuedouble;
  return n;
}

/* ---- comparison with reporting ---- */

/* Up to 120 bytes of s as a quoted C-style string, into out (at least 500 bytes). */
static const char *escaped(const char *s, size_t len, char *out) {
  size_t n = 0;
  out[n++] = '"';
  for (size_t i = 0; i < len && i < 120; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\')
      n += (size_t)sprintf(out + n, "\\%c", c);
    else if (c < 0x20 || c == 0x7F)
      n += (size_t)sprintf(out + n, "\\x%02x", c);
    else
      out[n++] = (char)c;
  }
  strcpy(out + n, len > 120 ? "\"..." : "\"");
  return out;
}

/* Every mismatch is one FAIL line with the text and where the result first differs. */
static void check_ids(const char *name, const char *what, const str *text, const int32_t *got,
                      size_t n_got, const int32_t *want, size_t n_want) {
  size_t i = 0;
  while (i < n_got && i < n_want && got[i] == want[i]) i++;
  char buf[500];
  CHECKF(n_got == n_want && i == n_got,
         "%s %s of %s: first difference at id %zu: got %ld, want %ld (lengths %zu / %zu)", name,
         what, escaped(text->data, text->len, buf), i, i < n_got ? (long)got[i] : -1L,
         i < n_want ? (long)want[i] : -1L, n_got, n_want);
}

static void check_text(const char *name, const char *what, const str *text, const char *got,
                       size_t n_got, const str *want) {
  size_t i = 0;
  while (i < n_got && i < want->len && got[i] == want->data[i]) i++;
  char buf[3][500];
  CHECKF(n_got == want->len && i == n_got,
         "%s %s of %s: first difference at byte %zu: got %s, want %s", name, what,
         escaped(text->data, text->len, buf[0]), i, escaped(got + i, n_got - i, buf[1]),
         escaped(want->data + i, want->len - i, buf[2]));
}

/* ---- the vector files ---- */

static char **read_lines(const char *path, size_t *n) {
  char *data;
  size_t size;
  *n = 0;
  if (vkft_file_read(path, &data, &size) != VKFT_OK) return NULL;
  size_t cap = 64;
  char **lines = malloc(cap * sizeof *lines);
  if (!lines) abort();
  for (char *line = data; line < data + size;) {
    char *end = memchr(line, '\n', (size_t)(data + size - line));
    if (!end) end = data + size;
    if (end > line) {
      if (*n == cap && !(lines = realloc(lines, (cap *= 2) * sizeof *lines))) abort();
      if (!(lines[*n] = malloc((size_t)(end - line) + 1))) abort();
      memcpy(lines[*n], line, (size_t)(end - line));
      lines[(*n)++][end - line] = 0;
    }
    line = end + 1;
  }
  free(data);
  return lines;
}

static void free_lines(char **lines, size_t n) {
  for (size_t i = 0; i < n; i++) free(lines[i]);
  free(lines);
}

/* vectors/<name>.jsonl: every field of every line. special_differs (NULL: none) marks ids whose
 * "special" flag the tokenizer cannot know: decoded_skip_special is not checked for lines
 * holding one (see test_gguf). */
static void test_vectors_but(const vkft_tokenizer *tok, const char *name, const char *path,
                             const uint8_t *special_differs) {
  size_t n_lines;
  char **lines = read_lines(path, &n_lines);
  CHECKF(lines && n_lines > 400, "%s: cannot read vectors", path);
  int before = check_failed, checked = 0, skipped = 0;
  for (size_t l = 0; l < n_lines; l++) {
    cJSON *json = cJSON_Parse(lines[l]);
    str text = {0}, decoded = {0}, decoded_skip = {0}, *each = NULL;
    int ok = json && json_field(lines[l], "text", &text) &&
             json_field(lines[l], "decoded", &decoded) &&
             json_field(lines[l], "decoded_skip_special", &decoded_skip);
    CHECKF(ok, "%s line %zu: missing fields", path, l + 1);
    if (!ok) {
      cJSON_Delete(json);
      free(text.data), free(decoded.data), free(decoded_skip.data);
      continue;
    }
    size_t n_each = json_field_list(lines[l], "decoded_each", &each);
    int32_t *want, *want_special, *got = NULL;
    size_t n_want = ids_from_json(cJSON_GetObjectItem(json, "ids"), &want);
    size_t n_want_special =
        ids_from_json(cJSON_GetObjectItem(json, "ids_with_special"), &want_special);
    size_t n_got = 0;

    int rc = vkft_tokenizer_encode(tok, text.data, text.len, 0, &got, &n_got);
    CHECKF(rc == VKFT_OK, "%s: encode failed: %s", name, vkft_error_message());
    check_ids(name, "ids", &text, got, n_got, want, n_want);
    rc = vkft_tokenizer_encode(tok, text.data, text.len, 1, &got, &n_got);
    CHECKF(rc == VKFT_OK, "%s: encode failed: %s", name, vkft_error_message());
    check_ids(name, "ids_with_special", &text, got, n_got, want_special, n_want_special);

    /* decoding is checked on the reference ids, independent of our encoder */
    char *out;
    size_t out_len;
    rc = vkft_tokenizer_decode(tok, want, n_want, 0, &out, &out_len);
    CHECKF(rc == VKFT_OK, "%s: decode failed: %s", name, vkft_error_message());
    if (rc == VKFT_OK) check_text(name, "decoded", &text, out, out_len, &decoded);
    free(out);
    int unknowable = 0;
    for (size_t i = 0; special_differs && i < n_want; i++) unknowable |= special_differs[want[i]];
    rc = vkft_tokenizer_decode(tok, want, n_want, 1, &out, &out_len);
    CHECKF(rc == VKFT_OK, "%s: decode failed: %s", name, vkft_error_message());
    if (rc == VKFT_OK && !unknowable)
      check_text(name, "decoded_skip_special", &text, out, out_len, &decoded_skip);
    skipped += unknowable;
    free(out);
    CHECKF(n_each == n_want, "%s: decoded_each has %zu entries for %zu ids", name, n_each, n_want);
    for (size_t i = 0; i < n_each && i < n_want; i++) {
      rc = vkft_tokenizer_decode(tok, &want[i], 1, 0, &out, &out_len);
      CHECKF(rc == VKFT_OK, "%s: decode failed: %s", name, vkft_error_message());
      if (rc == VKFT_OK) check_text(name, "decoded_each", &text, out, out_len, &each[i]);
      free(out);
    }
    checked++;
    for (size_t i = 0; i < n_each; i++) free(each[i].data);
    free(each);
    free(got);
    free(want);
    free(want_special);
    free(text.data), free(decoded.data), free(decoded_skip.data);
    cJSON_Delete(json);
  }
  printf("%-12s vectors:   %d strings, %d failed checks", name, checked, check_failed - before);
  printf(skipped ? " (%d without decoded_skip_special)\n" : "\n", skipped);
  free_lines(lines, n_lines);
}

static void test_vectors(const vkft_tokenizer *tok, const char *name, const char *path) {
  test_vectors_but(tok, name, path, NULL);
}

/* llama.cpp's <vocab>.inp (strings separated by "\n__ggml_vocab_test__\n") and .out (one line
 * of space-separated ids per string). */
static void test_llama_cpp(const vkft_tokenizer *tok, const char *name, const char *base) {
  char inp_path[1024], out_path[1024];
  snprintf(inp_path, sizeof inp_path, "%s.inp", base);
  snprintf(out_path, sizeof out_path, "%s.out", base);
  char *inp, *out;
  size_t inp_size, out_size;
  int ok = vkft_file_read(inp_path, &inp, &inp_size) == VKFT_OK;
  CHECKF(ok, "%s: %s", inp_path, vkft_error_message());
  if (!ok) return;
  ok = vkft_file_read(out_path, &out, &out_size) == VKFT_OK;
  CHECKF(ok, "%s: %s", out_path, vkft_error_message());
  if (!ok) return free(inp);
  static const char sep[] = "\n__ggml_vocab_test__\n";
  int before = check_failed, count = 0;
  char *p = inp, *line = out;
  for (char *end; (end = strstr(p, sep)) != NULL; p = end + strlen(sep)) {
    str text = {p, (size_t)(end - p)};
    char *eol = strchr(line, '\n');
    if (eol) *eol = 0;
    int32_t want[4096];
    size_t n_want = 0;
    for (char *q = line, *next; n_want < 4096; q = next) {
      long v = strtol(q, &next, 10);
      if (next == q) break;
      want[n_want++] = (int32_t)v;
    }
    line = eol ? eol + 1 : line + strlen(line);
    int32_t *got = NULL;
    size_t n_got = 0;
    CHECK(vkft_tokenizer_encode(tok, text.data, text.len, 0, &got, &n_got) == VKFT_OK);
    check_ids(name, "llama.cpp ids", &text, got, n_got, want, n_want);
    free(got);
    count++;
  }
  CHECKF(count == 46, "%s: %d strings", inp_path, count);
  printf("%-12s llama.cpp: %d strings, %d failed checks\n", name, count, check_failed - before);
  free(inp);
  free(out);
}

/* Chat renders: `rendered` encoded without special tokens gives `ids` (specials in the text are
 * matched as tokens); the same for the prompt-only render. */
static void test_chat(const vkft_tokenizer *tok, const char *name, const char *path) {
  size_t n_lines;
  char **lines = read_lines(path, &n_lines);
  CHECKF(lines && n_lines > 0, "%s: cannot read", path);
  int before = check_failed, count = 0;
  static const char *const fields[][2] = {{"rendered", "ids"}, {"prompt_rendered", "prompt_ids"}};
  for (size_t l = 0; l < n_lines; l++) {
    cJSON *json = cJSON_Parse(lines[l]);
    for (int f = 0; f < 2; f++) {
      str text;
      const cJSON *ids = cJSON_GetObjectItem(json, fields[f][1]);
      if (!cJSON_IsArray(ids) || !json_field(lines[l], fields[f][0], &text)) continue;
      int32_t *want, *got = NULL;
      size_t n_want = ids_from_json(ids, &want), n_got = 0;
      CHECK(vkft_tokenizer_encode(tok, text.data, text.len, 0, &got, &n_got) == VKFT_OK);
      check_ids(name, fields[f][0], &text, got, n_got, want, n_want);
      free(got);
      free(want);
      free(text.data);
      count++;
    }
    cJSON_Delete(json);
  }
  printf("%-12s chat:      %d renders, %d failed checks\n", name, count, check_failed - before);
  free_lines(lines, n_lines);
}

/* The threaded batch encoder gives the same ids as one-by-one encoding. */
static void test_batch(const vkft_tokenizer *tok, const char *name, const char *vectors) {
  size_t n;
  char **lines = read_lines(vectors, &n);
  if (!lines) return;
  str *texts = calloc(n, sizeof *texts);
  const char **ptrs = calloc(n, sizeof *ptrs);
  size_t *lens = calloc(n, sizeof *lens), *n_ids = calloc(n, sizeof *n_ids);
  int32_t **ids = calloc(n, sizeof *ids);
  if (!texts || !ptrs || !lens || !n_ids || !ids) abort();
  for (size_t i = 0; i < n; i++) {
    json_field(lines[i], "text", &texts[i]);
    ptrs[i] = texts[i].data ? texts[i].data : "";
    lens[i] = texts[i].len;
  }
  int rc = vkft_tokenizer_encode_batch(tok, ptrs, lens, n, 1, 2, ids, n_ids);
  CHECKF(rc == VKFT_OK, "%s batch: %s", name, vkft_error_message());
  int same = 1;
  for (size_t i = 0; rc == VKFT_OK && i < n; i++) {
    int32_t *one = NULL;
    size_t n_one = 0;
    vkft_tokenizer_encode(tok, ptrs[i], lens[i], 1, &one, &n_one);
    if (n_one != n_ids[i] || (n_one && memcmp(one, ids[i], n_one * sizeof *one))) same = 0;
    free(one);
  }
  CHECKF(same, "%s: batch encode differs from single encode", name);
  for (size_t i = 0; i < n; i++) free(ids[i]), free(texts[i].data);
  free(texts), free(ptrs), free(lens), free(n_ids), free(ids);
  free_lines(lines, n);
}

/* ---- load errors ---- */

static void write_file(const char *path, const char *content) {
  FILE *f = vkft_fopen(path, "wb");
  if (!f) abort();
  fputs(content, f);
  fclose(f);
}

static void expect_load_error(const char *path, vkft_errcode code, const char *must_contain) {
  vkft_tokenizer *tok = NULL;
  vkft_error_clear();
  int rc = vkft_tokenizer_load(path, &tok);
  CHECKF(rc == VKFT_ERR && tok == NULL, "loading %s should fail", path);
  CHECKF(vkft_error_code() == code, "loading %s: error code %s, wanted %s", path,
         vkft_errcode_name(vkft_error_code()), vkft_errcode_name(code));
  CHECKF(strstr(vkft_error_message(), path) != NULL, "message \"%s\" does not name %s",
         vkft_error_message(), path);
  CHECKF(strstr(vkft_error_message(), must_contain) != NULL, "message \"%s\" lacks \"%s\"",
         vkft_error_message(), must_contain);
  vkft_tokenizer_free(tok);
}

static void test_errors(void) {
  /* a path the user gave that does not exist: their input (exit 1), as for every input file */
  expect_load_error("no_such_folder_for_test_tokenizer/tokenizer.json", VKFT_ERR_INPUT,
                    "no such file");
  const char *bad_json = "test_tokenizer_malformed.json";
  write_file(bad_json, "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0,");
  expect_load_error(bad_json, VKFT_ERR_INPUT, "malformed JSON");
  const char *unigram = "test_tokenizer_unigram.json";
  write_file(unigram, "{\"version\": \"1.0\", \"added_tokens\": [], \"normalizer\": null,"
                      " \"pre_tokenizer\": null, \"post_processor\": null, \"decoder\": null,"
                      " \"model\": {\"type\": \"Unigram\", \"unk_id\": 0,"
                      " \"vocab\": [[\"<unk>\", 0.0], [\"a\", -1.0]]}}");
  expect_load_error(unigram, VKFT_ERR_UNSUPPORTED, "Unigram");
  const char *bad_merge = "test_tokenizer_badmerge.json";
  write_file(bad_merge, "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1},"
                        " \"merges\": [\"a b\"]}}");
  expect_load_error(bad_merge, VKFT_ERR_INPUT, "merges[0]");
  remove(bad_json);
  remove(unigram);
  remove(bad_merge);
}

/* A tiny SentencePiece-style tokenizer with a Metaspace pre-tokenizer, fused unk and no byte
 * fallback, to exercise the paths the shipped tokenizers do not use. Expected values follow
 * the HF rules (Metaspace prepend "first", split; unknown chars fused into one <unk>). */
static void test_small(void) {
  const char *path = "test_tokenizer_small";
  CHECK(vkft_mkdirs(path) == VKFT_OK);
  /* a Llama-class config: its add_bos_token/add_eos_token decide what add_special adds */
  write_file("test_tokenizer_small/tokenizer_config.json",
             "{\"tokenizer_class\": \"LlamaTokenizerFast\", \"add_bos_token\": true,"
             " \"add_eos_token\": true, \"bos_token\": {\"content\": \"<s>\"},"
             " \"eos_token\": \"</s>\", \"chat_template\": [{\"name\": \"tool_use\","
             " \"template\": \"U\"}, {\"name\": \"default\", \"template\": \"T\"}]}");
  write_file(
      "test_tokenizer_small/tokenizer.json",
      "{\"added_tokens\": [{\"id\": 8, \"content\": \"<s>\", \"special\": true},"
      " {\"id\": 9, \"content\": \"</s>\", \"special\": true},"
      " {\"id\": 0, \"content\": \"<unk>\", \"special\": true,"
      " \"single_word\": false, \"lstrip\": false, \"rstrip\": false, \"normalized\": false},"
      " {\"id\": 7, \"content\": \"<sep>\", \"special\": true, \"single_word\": false,"
      " \"lstrip\": true, \"rstrip\": true, \"normalized\": false}],"
      " \"normalizer\": null,"
      " \"pre_tokenizer\": {\"type\": \"Metaspace\", \"replacement\": \"\\u2581\","
      " \"prepend_scheme\": \"first\", \"split\": true},"
      " \"post_processor\": null,"
      " \"decoder\": {\"type\": \"Metaspace\", \"replacement\": \"\\u2581\","
      " \"prepend_scheme\": \"first\", \"split\": true},"
      " \"model\": {\"type\": \"BPE\", \"unk_token\": \"<unk>\", \"fuse_unk\": true,"
      " \"byte_fallback\": false, \"vocab\": {\"<unk>\": 0, \"\\u2581\": 1, \"a\": 2,"
      " \"b\": 3, \"\\u2581a\": 4, \"ab\": 5, \"\\u2581ab\": 6},"
      " \"merges\": [\"\\u2581 a\", \"a b\", \"\\u2581a b\"]}}");
  vkft_tokenizer *tok;
  int rc = vkft_tokenizer_load(path, &tok);
  CHECKF(rc == VKFT_OK, "%s", vkft_error_message());
  if (rc != VKFT_OK) return;
  static const struct {
    const char *text;
    int32_t ids[8];
    size_t n;
    const char *decoded;
  } rows[] = {
      {"ab ab", {6, 6}, 2, "ab ab"},
      {"ab xyz b", {6, 1, 0, 1, 3}, 5, "ab <unk> b"},
      /* lstrip/rstrip: the spaces around <sep> belong to it; "ab" after it is not first */
      {"ab <sep> ab", {6, 7, 5}, 3, "ab<sep>ab"},
  };
  for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
    int32_t *ids = NULL;
    size_t n = 0;
    str text = {(char *)rows[r].text, strlen(rows[r].text)};
    CHECK(vkft_tokenizer_encode(tok, text.data, text.len, 0, &ids, &n) == VKFT_OK);
    check_ids("small", "ids", &text, ids, n, rows[r].ids, rows[r].n);
    char *out;
    size_t out_len;
    CHECK(vkft_tokenizer_decode(tok, rows[r].ids, rows[r].n, 0, &out, &out_len) == VKFT_OK);
    str want = {(char *)rows[r].decoded, strlen(rows[r].decoded)};
    check_text("small", "decoded", &text, out, out_len, &want);
    free(out);
    free(ids);
  }
  int32_t *ids = NULL;
  size_t n = 0;
  CHECK(vkft_tokenizer_encode(tok, "ab", 2, 1, &ids, &n) == VKFT_OK && n == 3 && ids[0] == 8 &&
        ids[1] == 6 && ids[2] == 9);
  CHECK(!strcmp(vkft_tokenizer_bos_str(tok), "<s>") && vkft_tokenizer_eos_id(tok) == 9);
  CHECK(vkft_tokenizer_chat_template(tok) && !strcmp(vkft_tokenizer_chat_template(tok), "T"));
  int32_t id = -1;
  CHECK(vkft_tokenizer_add_special(tok, "<new>", &id) == VKFT_OK && id == 10);
  CHECK(vkft_tokenizer_vocab_size(tok) == 11 && vkft_tokenizer_is_special(tok, 10));
  CHECK(vkft_tokenizer_encode(tok, "a<new>", 6, 0, &ids, &n) == VKFT_OK && n == 2 && ids[1] == 10);
  free(ids);
  CHECK(vkft_tokenizer_encode(tok, "\xC3\x28", 2, 0, &ids, &n) == VKFT_ERR);
  vkft_tokenizer_free(tok);
  vkft_remove_tree(path);
}

static void test_getters(const vkft_tokenizer *tok, const char *name) {
  if (!strcmp(name, "llama3")) {
    CHECK(vkft_tokenizer_bos_id(tok) == 128000 && vkft_tokenizer_eos_id(tok) == 128009);
    CHECK(vkft_tokenizer_vocab_size(tok) == 128256);
    CHECK(vkft_tokenizer_chat_template(tok) != NULL);
    CHECK(vkft_tokenizer_is_special(tok, 128009) && !vkft_tokenizer_is_special(tok, 9906));
    CHECK(vkft_tokenizer_token_id(tok, "Hello") == 9906);
    CHECK(!strcmp(vkft_tokenizer_token_str(tok, 1917), "\xC4\xA0world"));
  } else if (!strcmp(name, "qwen3")) {
    CHECK(vkft_tokenizer_bos_id(tok) == -1 && vkft_tokenizer_eos_id(tok) == 151645);
    CHECK(vkft_tokenizer_vocab_size(tok) == 151669);
    CHECK(!vkft_tokenizer_is_special(tok, 151667)); /* <think> is not special */
  } else if (!strcmp(name, "mistral")) {
    CHECK(vkft_tokenizer_bos_id(tok) == 1 && vkft_tokenizer_eos_id(tok) == 2);
    CHECK(!strcmp(vkft_tokenizer_bos_str(tok), "<s>"));
    CHECK(vkft_tokenizer_chat_template(tok) == NULL);
  }
}

/* ---- GGUF files ----
 * The tokenizer rebuilt from a GGUF's metadata must be the Hugging Face one: a GGUF that vkft
 * export writes from a small random model carrying each tokenizer (so the file holds what
 * llama.cpp's converter would write), and the stories260K GGUF that llama.cpp's own tools
 * made from the llama2.c model (real SentencePiece scores), on every vector and chat render
 * (the template comes from the GGUF too). */

#define GGUF_TMP "test_tokenizer_gguf.tmp"

/* DIR/NAME.gguf exported from a one-layer random ARCH model with the tokenizer of tok_dir */
static const char *gguf_of(const char *name, const char *tok_dir, const char *arch) {
  static char out[512];
  char dir[512], config[1024], from[2048], to[1024];
  vkft_tokenizer *tok;
  if (vkft_tokenizer_load(tok_dir, &tok) != VKFT_OK) return NULL;
  snprintf(config, sizeof config,
           "{\"architectures\": [\"%s\"], \"vocab_size\": %zu, \"hidden_size\": 16, "
           "\"intermediate_size\": 32, \"num_hidden_layers\": 1, \"num_attention_heads\": 2, "
           "\"num_key_value_heads\": 1, \"rms_norm_eps\": 1e-05, \"tie_word_embeddings\": true}",
           arch, vkft_tokenizer_vocab_size(tok));
  vkft_tokenizer_free(tok);
  snprintf(dir, sizeof dir, GGUF_TMP "/%s", name);
  snprintf(out, sizeof out, GGUF_TMP "/%s.gguf", name);
  if (vkft_model_write_random(dir, config, VKFT_F32, 5) != VKFT_OK) return NULL;
  static const char *const files[] = {"tokenizer.json", "tokenizer_config.json"};
  for (int i = 0; i < 2; i++) {
    char *data;
    size_t n;
    snprintf(from, sizeof from, "%s/%s", tok_dir, files[i]);
    snprintf(to, sizeof to, "%s/%s", dir, files[i]);
    if (vkft_file_read(from, &data, &n) != VKFT_OK) return NULL;
    int st = vkft_file_write_atomic(to, data, n);
    free(data);
    if (st != VKFT_OK) return NULL;
  }
  vkft_export_desc d = {
      .target = VKFT_EXPORT_GGUF, .model_dir = dir, .out = out, .type = "f32", .no_modelfile = 1};
  vkft_export_report r;
  return vkft_export(&d, &r) == VKFT_OK ? out : NULL;
}

/* A copy of a GGUF's metadata (no tensors) with key `key` set to the string `value` (or left
 * out when value is NULL), for the refusals. */
static const char *gguf_with(const char *src, const char *key, const char *value) {
  static char out[512];
  vkft_gguf *g;
  vkft_gguf_writer *w;
  snprintf(out, sizeof out, GGUF_TMP "/edited.gguf");
  if (vkft_gguf_open(src, &g) != VKFT_OK) return NULL;
  int st = vkft_gguf_writer_create(&w);
  for (int64_t i = 0; st == VKFT_OK && i < vkft_gguf_kv_count(g); i++)
    if (strcmp(vkft_gguf_kv_key(g, i), key))
      st = vkft_gguf_set_value(w, vkft_gguf_kv_key(g, i), vkft_gguf_kv_value(g, i));
  if (st == VKFT_OK && value) st = vkft_gguf_set_str(w, key, value);
  if (st == VKFT_OK) st = vkft_gguf_writer_save(w, out, NULL, NULL);
  vkft_gguf_writer_free(w);
  vkft_gguf_close(g);
  return st == VKFT_OK ? out : NULL;
}

static void expect_gguf_error(const char *path, vkft_errcode code, const char *must_contain) {
  vkft_tokenizer *tok = NULL;
  CHECKF(path && vkft_tokenizer_load(path, &tok) == VKFT_ERR && !tok, "loading %s should fail",
         path ? path : "(not written)");
  CHECKF(vkft_error_code() == code && strstr(vkft_error_message(), must_contain),
         "message \"%s\" (%s) lacks \"%s\"", vkft_error_message(),
         vkft_errcode_name(vkft_error_code()), must_contain);
  vkft_tokenizer_free(tok);
}

static void test_gguf(void) {
  static const struct {
    const char *name, *dir, *arch;
    int case_index; /* into cases[] */
  } ggufs[] = {{"stories260K", "models/stories260K", "LlamaForCausalLM", 4},
               {"llama3", "tokenizers/llama3", "LlamaForCausalLM", 0},
               {"mistral", "tokenizers/mistral", "MistralForCausalLM", 2},
               {"qwen3", "tokenizers/qwen3", "Qwen3ForCausalLM", 1}};
  vkft_remove_tree(GGUF_TMP);
  vkft_mkdirs(GGUF_TMP);
  const char *llama3_gguf = NULL;
  for (size_t k = 0; k < sizeof ggufs / sizeof ggufs[0]; k++) {
    const char *path = gguf_of(ggufs[k].name, check_path(ggufs[k].dir), ggufs[k].arch);
    CHECKF(path != NULL, "%s: %s", ggufs[k].name, vkft_error_message());
    vkft_tokenizer *tok = NULL, *hf = NULL;
    double t0 = vkft_time_s();
    if (!path || vkft_tokenizer_load(path, &tok) != VKFT_OK) {
      CHECKF(0, "%s: %s", ggufs[k].name, vkft_error_message());
      continue;
    }
    char name[64];
    snprintf(name, sizeof name, "%s.gguf", ggufs[k].name);
    printf("%-12s loaded in %.2f s\n", name, vkft_time_s() - t0);
    CHECK(vkft_tokenizer_load(check_path(ggufs[k].dir), &hf) == VKFT_OK);
    /* The converter writes an added token that "looks special" (<|...|>) as a control token
     * even when Hugging Face does not mark it special (Qwen's <|fim_prefix|>, <|repo_name|>,
     * ...): the GGUF cannot say, so those, and only those, may differ in that flag, which
     * only decoding with skip_special sees. */
    size_t V = vkft_tokenizer_vocab_size(tok), n_differ = 0, unexplained = 0;
    uint8_t *differs = calloc(V ? V : 1, 1);
    for (size_t id = 0; hf && differs && id < V; id++) {
      const char *t = vkft_tokenizer_token_str(tok, (int32_t)id);
      size_t len = t ? strlen(t) : 0;
      differs[id] =
          vkft_tokenizer_is_special(tok, (int32_t)id) != vkft_tokenizer_is_special(hf, (int32_t)id);
      n_differ += differs[id];
      if (differs[id] && !(!vkft_tokenizer_is_special(hf, (int32_t)id) && len >= 4 &&
                           !strncmp(t, "<|", 2) && !strcmp(t + len - 2, "|>"))) {
        fprintf(stderr, "%s: token %zu \"%s\" is special in one tokenizer only\n", name, id,
                t ? t : "");
        unexplained++;
      }
    }
    CHECKF(!unexplained, "%s: %zu tokens differ in their special flag", name, unexplained);
    if (n_differ)
      printf("%-12s %zu non-special <|...|> tokens are control tokens\n", name, n_differ);
    test_vectors_but(tok, name, check_path(cases[ggufs[k].case_index].vectors), differs);
    free(differs);
    if (cases[ggufs[k].case_index].chat)
      test_chat(tok, name, check_path(cases[ggufs[k].case_index].chat));
    /* the special tokens and the template are the Hugging Face folder's (Qwen3's BOS aside:
     * tokenizer_config.json has none, the converter takes config.json's bos_token_id) */
    if (hf) {
      CHECKF(vkft_tokenizer_eos_id(tok) == vkft_tokenizer_eos_id(hf) &&
                 (!strcmp(ggufs[k].name, "qwen3") ||
                  vkft_tokenizer_bos_id(tok) == vkft_tokenizer_bos_id(hf)) &&
                 vkft_tokenizer_vocab_size(tok) == vkft_tokenizer_vocab_size(hf),
             "%s: bos %d/%d eos %d/%d vocab %zu/%zu", name, vkft_tokenizer_bos_id(tok),
             vkft_tokenizer_bos_id(hf), vkft_tokenizer_eos_id(tok), vkft_tokenizer_eos_id(hf),
             vkft_tokenizer_vocab_size(tok), vkft_tokenizer_vocab_size(hf));
      const char *a = vkft_tokenizer_chat_template(tok), *b = vkft_tokenizer_chat_template(hf);
      CHECKF((!a && !b) || (a && b && !strcmp(a, b)), "%s: the chat template differs", name);
      vkft_tokenizer_free(hf);
    }
    vkft_tokenizer_free(tok);
    if (k == 1) llama3_gguf = path;
  }
  /* llama.cpp's own GGUF of stories260K */
  vkft_tokenizer *tok = NULL;
  const char *original = check_path("models/stories260K/original/stories260K.gguf");
  CHECKF(vkft_tokenizer_load(original, &tok) == VKFT_OK, "%s", vkft_error_message());
  if (tok) test_vectors(tok, "stories260K (llama.cpp's GGUF)", check_path(cases[4].vectors));
  vkft_tokenizer_free(tok);
  /* refusals: one line naming the file and what is unknown */
  if (llama3_gguf) {
    char path[512];
    snprintf(path, sizeof path, "%s", llama3_gguf);
    expect_gguf_error(gguf_with(path, "tokenizer.ggml.pre", "falcon"), VKFT_ERR_UNSUPPORTED,
                      "tokenizer.ggml.pre \"falcon\" is not a pre-tokenizer vkft knows");
    expect_gguf_error(gguf_with(path, "tokenizer.ggml.pre", NULL), VKFT_ERR_UNSUPPORTED,
                      "tokenizer.ggml.pre \"(missing)\"");
    expect_gguf_error(gguf_with(path, "tokenizer.ggml.model", "bert"), VKFT_ERR_UNSUPPORTED,
                      "tokenizer.ggml.model \"bert\" is not supported");
    expect_gguf_error(gguf_with(path, "tokenizer.ggml.merges", NULL), VKFT_ERR_INPUT,
                      "a gpt2 tokenizer needs its merges");
    expect_gguf_error(gguf_with(path, "tokenizer.ggml.tokens", NULL), VKFT_ERR_INPUT,
                      "tokenizer.ggml.tokens");
  }
  vkft_remove_tree(GGUF_TMP);
}

/* The one UTF-8 decoder (vkft/utf8.h): what it accepts is what Python's and Rust's accept. */
static void test_utf8(void) {
  static const struct {
    const char *bytes;
    size_t len, used; /* used 0: malformed */
    uint32_t cp;
  } cases[] = {
      {"A", 1, 1, 'A'},
      {"\xc3\xa9", 2, 2, 0xE9},
      {"\xe2\x82\xac", 3, 3, 0x20AC},
      {"\xf0\x9f\x98\x80", 4, 4, 0x1F600},
      {"\xf4\x8f\xbf\xbf", 4, 4, 0x10FFFF},
      {"\xc0\x80", 2, 0, 0},         /* overlong NUL */
      {"\xe0\x80\xaf", 3, 0, 0},     /* overlong '/' */
      {"\xed\xa0\x80", 3, 0, 0},     /* a surrogate */
      {"\xf4\x90\x80\x80", 4, 0, 0}, /* above U+10FFFF */
      {"\x80", 1, 0, 0},             /* a stray continuation byte */
      {"\xe2\x82", 2, 0, 0},         /* cut short by the length */
      {"\xe2\x82\xac", 2, 0, 0},     /* ... even with the byte behind it */
      {"\xe2(\xac", 3, 0, 0},        /* cut short by a non-continuation byte */
      {"\xff", 1, 0, 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    uint32_t cp = 0;
    size_t used = vkft_utf8_decode(cases[i].bytes, cases[i].len, &cp);
    CHECKF(used == cases[i].used && (!used || cp == cases[i].cp), "case %zu: %zu bytes, U+%X", i,
           used, cp);
    used = vkft_utf8_decode_lenient(cases[i].bytes, cases[i].len, &cp);
    CHECKF(cases[i].used ? used == cases[i].used && cp == cases[i].cp
                         : used == 1 && cp == VKFT_UTF8_BAD,
           "lenient case %zu: %zu bytes, U+%X", i, used, cp);
  }
  /* the NUL-terminated walk never passes the NUL */
  const unsigned char *s = (const unsigned char *)"\xe2\x82";
  CHECK(vkft_utf8_next(&s) == VKFT_UTF8_BAD && vkft_utf8_next(&s) == VKFT_UTF8_BAD && *s == 0);
  char out[4];
  CHECK(vkft_utf8_encode(0x1F600, out) == 4 && !memcmp(out, "\xf0\x9f\x98\x80", 4));
}

int main(void) {
  test_utf8();
  int have_data = check_need_data("test_tokenizer: the reference vectors");
  for (size_t c = 0; have_data && c < sizeof cases / sizeof cases[0]; c++) {
    vkft_tokenizer *tok = NULL;
    double t0 = vkft_time_s();
    int rc = vkft_tokenizer_load(check_path(cases[c].path), &tok);
    CHECKF(rc == VKFT_OK, "%s", vkft_error_message());
    if (rc != VKFT_OK) continue;
    printf("%-12s loaded in %.2f s\n", cases[c].name, vkft_time_s() - t0);
    test_getters(tok, cases[c].name);
    test_vectors(tok, cases[c].name, check_path(cases[c].vectors));
    if (cases[c].llama_cpp) test_llama_cpp(tok, cases[c].name, check_path(cases[c].llama_cpp));
    if (cases[c].chat) test_chat(tok, cases[c].name, check_path(cases[c].chat));
    test_batch(tok, cases[c].name, check_path(cases[c].vectors));
    vkft_tokenizer_free(tok);
  }
  if (have_data) test_gguf();
  test_errors();
  test_small();
  return check_summary();
}
