/* `vkft tokenize`: JSON Lines on stdin to JSON Lines on stdout, one output line per input line
 * and in order. Encode: {"text": "..."} -> {"ids": [...]} (no special tokens unless
 * --add-special). Decode (--decode): {"ids": [...]} -> {"text": "..."} (special tokens kept
 * unless --skip-special). Chat (--chat): {"messages": [...], "tools"?: [...], ...} -> {"text":
 * rendered, "ids": [...]} through the model's chat template (or --chat-template NAME|FILE),
 * encoded like HF's apply_chat_template (no added special tokens: the template writes them). */
#include "commands_tokenize.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vkft/chat_template.h"
#include "vkft/error.h"
#include "vkft/gguf.h"
#include "vkft/platform.h"
#include "vkft/tokenizer.h"
#include "vkft/utf8.h"

enum mode {
  MODE_ENCODE,
  MODE_DECODE,
  MODE_CHAT,
};

static int usage(void) {
  fprintf(
      stderr,
      "usage: vkft tokenize --tokenizer PATH [--add-special] < in.jsonl > out.jsonl\n"
      "       vkft tokenize --tokenizer PATH --decode [--skip-special] < ids.jsonl\n"
      "       vkft tokenize --tokenizer PATH --chat [--chat-template NAME|FILE] [--date Y-M-D]\n"
      "  --chat reads {\"messages\": [...], \"tools\"?: [...], \"documents\"?: [...],\n"
      "  \"add_generation_prompt\"?: bool, other template variables...} and writes {\"text\":\n"
      "  rendered, \"ids\": [...]}; tools and documents are None when absent, as in\n"
      "  transformers. strftime_now() renders --date (default 2024-07-26), never the clock. The\n"
      "  template is the model's own unless --chat-template names a built-in (chatml, llama2,\n"
      "  llama3, mistral-v1, mistral-v3, gemma, zephyr, phi3, alpaca) or a .jinja file.\n"
      "  PATH is a model folder with tokenizer.json, the tokenizer.json file, or a GGUF file.\n"
      "  Encode reads {\"text\": \"...\"} lines and writes {\"ids\": [...]}; --decode reads\n"
      "  {\"ids\": [...]} and writes {\"text\": \"...\"}. Blank lines are skipped.\n");
  return 2;
}

/* Reads one line of any length (without its '\n'); returns 1, 0 at end of input, -1 on error. */
static int read_line(FILE *in, char **line, size_t *cap, size_t *len) {
  *len = 0;
  for (;;) {
    if (*cap - *len < 2) {
      size_t new_cap = *cap ? *cap * 2 : 65536;
      char *p = realloc(*line, new_cap);
      if (!p) return vkft_error_nomem(), -1;
      *line = p;
      *cap = new_cap;
    }
    if (!fgets(*line + *len, (int)(*cap - *len < INT32_MAX ? *cap - *len : INT32_MAX), in)) {
      if (ferror(in)) return vkft_error("cannot read the input"), -1;
      if (*len == 0) return 0;
      break;
    }
    *len += strlen(*line + *len);
    if (*len && (*line)[*len - 1] == '\n') {
      (*line)[--*len] = 0;
      break;
    }
  }
  if (*len && (*line)[*len - 1] == '\r') (*line)[--*len] = 0; /* CRLF input */
  return 1;
}

/* JSON string output with raw UTF-8 (like json.dumps(ensure_ascii=False)); keeps NUL bytes. */
static void write_json_string(FILE *out, const char *s, size_t len) {
  fputc('"', out);
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    switch (c) {
    case '"':
      fputs("\\\"", out);
      break;
    case '\\':
      fputs("\\\\", out);
      break;
    case '\n':
      fputs("\\n", out);
      break;
    case '\r':
      fputs("\\r", out);
      break;
    case '\t':
      fputs("\\t", out);
      break;
    default:
      if (c < 0x20)
        fprintf(out, "\\u%04x", c);
      else
        fputc(c, out);
    }
  }
  fputc('"', out);
}

/* cJSON ends strings at the first NUL, so a "text" holding \u0000 is decoded here instead.
 * The key search is safe: inside a JSON string every quote is escaped, so `"text":` followed
 * by a quote only occurs as a real key. Returns a malloc'd string or NULL. */
static char *text_with_nuls(const char *line, size_t *len) {
  const char *p = strstr(line, "\"text\"");
  if (!p) return NULL;
  p += 6;
  while (*p == ' ' || *p == '\t') p++;
  if (*p++ != ':') return NULL;
  while (*p == ' ' || *p == '\t') p++;
  if (*p++ != '"') return NULL;
  char *out = malloc(strlen(p) + 1);
  if (!out) return NULL;
  size_t n = 0;
  while (*p && *p != '"') {
    if (*p != '\\') {
      out[n++] = *p++;
      continue;
    }
    char c = p[1];
    p += 2;
    char simple = c == 'b'                            ? '\b'
                  : c == 'f'                          ? '\f'
                  : c == 'n'                          ? '\n'
                  : c == 'r'                          ? '\r'
                  : c == 't'                          ? '\t'
                  : c == '"' || c == '\\' || c == '/' ? c
                                                      : 0;
    if (simple) {
      out[n++] = simple;
      continue;
    }
    if (c != 'u') return free(out), NULL;
    unsigned long cp = 0;
    for (int k = 0; k < 4; k++) {
      char h = *p++;
      int d = h >= '0' && h <= '9'   ? h - '0'
              : h >= 'a' && h <= 'f' ? h - 'a' + 10
              : h >= 'A' && h <= 'F' ? h - 'A' + 10
                                     : -1;
      if (d < 0) return free(out), NULL;
      cp = cp * 16 + (unsigned long)d;
    }
    if (cp >= 0xD800 && cp < 0xDC00 && p[0] == '\\' && p[1] == 'u') {
      unsigned long lo = strtoul((char[]){p[2], p[3], p[4], p[5], 0}, NULL, 16);
      if (lo < 0xDC00 || lo > 0xDFFF) return free(out), NULL;
      cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
      p += 6;
    }
    n += vkft_utf8_encode((uint32_t)cp, out + n);
  }
  if (*p != '"') return free(out), NULL;
  *len = n;
  return out;
}

static int encode_line(const vkft_tokenizer *tok, const char *line, const cJSON *json,
                       int add_special, FILE *out, int32_t **ids) {
  const cJSON *text = cJSON_GetObjectItemCaseSensitive(json, "text");
  if (!cJSON_IsString(text)) return vkft_error("expected {\"text\": \"...\"}");
  char *owned = NULL;
  const char *s = text->valuestring;
  size_t len = strlen(s);
  if (strstr(line, "\\u0000")) { /* the text may hold NULs that cJSON cut off */
    owned = text_with_nuls(line, &len);
    if (!owned) return vkft_error("cannot read \"text\"");
    s = owned;
  }
  size_t n = 0;
  int status = vkft_tokenizer_encode(tok, s, len, add_special, ids, &n);
  free(owned);
  if (status != VKFT_OK) return VKFT_ERR;
  fputs("{\"ids\":[", out);
  for (size_t i = 0; i < n; i++) fprintf(out, i ? ",%ld" : "%ld", (long)(*ids)[i]);
  fputs("]}\n", out);
  return VKFT_OK;
}

/* The render context as apply_chat_template builds it: messages, tools and documents (None
 * when absent), add_generation_prompt (false when absent), the model's special tokens, and
 * every other key of the input line as a template variable. */
static int chat_line(const vkft_tokenizer *tok, const vkft_chat_template *t, const cJSON *special,
                     const vkft_chat_template_options *options, const cJSON *json, FILE *out,
                     int32_t **ids) {
  vkft_chat_inputs in = {
      .messages = cJSON_GetObjectItemCaseSensitive(json, "messages"),
      .tools = cJSON_GetObjectItemCaseSensitive(json, "tools"),
      .documents = cJSON_GetObjectItemCaseSensitive(json, "documents"),
      .add_generation_prompt =
          cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(json, "add_generation_prompt")),
      .special_tokens = special,
      .kwargs = json,
  };
  cJSON *ctx;
  if (vkft_chat_template_context(&in, &ctx)) return VKFT_ERR;
  char *text;
  size_t len, n = 0;
  int status = vkft_chat_template_render_opts(t, ctx, options, &text, &len);
  cJSON_Delete(ctx);
  if (status != VKFT_OK) return VKFT_ERR;
  status = vkft_tokenizer_encode(tok, text, len, 0, ids, &n);
  if (status == VKFT_OK) {
    fputs("{\"text\":", out);
    write_json_string(out, text, len);
    fputs(",\"ids\":[", out);
    for (size_t i = 0; i < n; i++) fprintf(out, i ? ",%ld" : "%ld", (long)(*ids)[i]);
    fputs("]}\n", out);
  }
  free(text);
  return status;
}

/* The chat template: a built-in name, a .jinja file or folder, else the tokenizer's folder. */
static int open_template(const char *path, const char *name, vkft_chat_template **t,
                         cJSON **special) {
  char dir[4096];
  snprintf(dir, sizeof dir, "%s", path);
  if (vkft_gguf_is_file(path)) { /* a GGUF file holds both */
    if (vkft_chat_template_special_tokens(path, special) != VKFT_OK) return VKFT_ERR;
    if (name && vkft_chat_template_builtin(name))
      return vkft_chat_template_parse(vkft_chat_template_builtin(name), name, t);
    return vkft_chat_template_load(name ? name : path, NULL, t);
  }
  if (!vkft_is_dir(dir)) { /* a tokenizer.json path: its folder */
    char *slash = strrchr(dir, '/');
    if (slash)
      *slash = 0;
    else
      snprintf(dir, sizeof dir, ".");
  }
  *special = NULL;
  char cfg[4200];
  snprintf(cfg, sizeof cfg, "%s/tokenizer_config.json", dir);
  if (vkft_file_exists(cfg) && vkft_chat_template_special_tokens(dir, special) != VKFT_OK)
    return VKFT_ERR;
  if (name && vkft_chat_template_builtin(name))
    return vkft_chat_template_parse(vkft_chat_template_builtin(name), name, t);
  return vkft_chat_template_load(name ? name : dir, NULL, t);
}

static int decode_line(const vkft_tokenizer *tok, const cJSON *json, int skip_special, FILE *out,
                       int32_t **ids, size_t *ids_cap) {
  const cJSON *list = cJSON_GetObjectItemCaseSensitive(json, "ids");
  if (!cJSON_IsArray(list)) return vkft_error("expected {\"ids\": [...]}");
  size_t n = 0;
  const cJSON *item;
  cJSON_ArrayForEach(item, list) {
    double v = cJSON_IsNumber(item) ? item->valuedouble : -1.0;
    if (v < 0 || v > INT32_MAX || v != (double)(int32_t)v)
      return vkft_error("\"ids\"[%zu] is not a token id", n);
    if (n == *ids_cap) {
      size_t cap = *ids_cap ? *ids_cap * 2 : 1024;
      int32_t *p = realloc(*ids, cap * sizeof *p);
      if (!p) return vkft_error_nomem();
      *ids = p;
      *ids_cap = cap;
    }
    (*ids)[n++] = (int32_t)v;
  }
  char *text;
  size_t len;
  if (vkft_tokenizer_decode(tok, *ids, n, skip_special, &text, &len) != VKFT_OK) return VKFT_ERR;
  fputs("{\"text\":", out);
  write_json_string(out, text, len);
  fputs("}\n", out);
  free(text);
  return VKFT_OK;
}

int vkft_cmd_tokenize(int argc, char **argv) {
  const char *path = NULL;
  int add_special = 0, skip_special = 0;
  const char *template_name = NULL;
  vkft_chat_template_options options = {0};
  enum mode mode = MODE_ENCODE;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--tokenizer") && i + 1 < argc)
      path = argv[++i];
    else if (!strcmp(argv[i], "--add-special"))
      add_special = 1;
    else if (!strcmp(argv[i], "--decode"))
      mode = MODE_DECODE;
    else if (!strcmp(argv[i], "--skip-special"))
      skip_special = 1;
    else if (!strcmp(argv[i], "--chat"))
      mode = MODE_CHAT;
    else if (!strcmp(argv[i], "--chat-template") && i + 1 < argc)
      template_name = argv[++i];
    else if (!strcmp(argv[i], "--date") && i + 1 < argc) {
      if (vkft_chat_template_parse_date(argv[++i], &options) != VKFT_OK) {
        fprintf(stderr, "vkft: tokenize: --date: %s\n", vkft_error_message());
        return 2;
      }
    } else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
      return usage(), 0;
    else {
      fprintf(stderr, "vkft: tokenize: unknown option \"%s\"\n", argv[i]);
      return usage();
    }
  }
  if (!path) {
    fprintf(stderr, "vkft: tokenize: --tokenizer PATH is required\n");
    return usage();
  }
  vkft_tokenizer *tok;
  if (vkft_tokenizer_load(path, &tok) != VKFT_OK) {
    fprintf(stderr, "vkft: %s\n", vkft_error_message());
    return 1;
  }
  vkft_chat_template *tmpl = NULL;
  cJSON *special = NULL;
  if (mode == MODE_CHAT && open_template(path, template_name, &tmpl, &special) != VKFT_OK) {
    fprintf(stderr, "vkft: %s\n", vkft_error_message());
    vkft_tokenizer_free(tok);
    return 1;
  }
  char *line = NULL;
  size_t line_cap = 0, line_len, line_no = 0, ids_cap = 0;
  int32_t *ids = NULL;
  int status = 0, r;
  while ((r = read_line(stdin, &line, &line_cap, &line_len)) == 1) {
    line_no++;
    if (strspn(line, " \t") == line_len) continue;
    cJSON *json = cJSON_ParseWithLength(line, line_len);
    int ok;
    if (!json)
      ok = vkft_error("invalid JSON");
    else if (!cJSON_IsObject(json))
      ok = vkft_error("not a JSON object");
    else if (mode == MODE_DECODE)
      ok = decode_line(tok, json, skip_special, stdout, &ids, &ids_cap);
    else if (mode == MODE_CHAT)
      ok = chat_line(tok, tmpl, special, &options, json, stdout, &ids);
    else
      ok = encode_line(tok, line, json, add_special, stdout, &ids);
    cJSON_Delete(json);
    if (ok != VKFT_OK) {
      fflush(stdout);
      fprintf(stderr, "vkft: stdin line %zu: %s\n", line_no, vkft_error_message());
      status = 1;
      break;
    }
  }
  if (r < 0) {
    fprintf(stderr, "vkft: stdin line %zu: %s\n", line_no + 1, vkft_error_message());
    status = 1;
  }
  if (fflush(stdout) != 0 || ferror(stdout)) {
    fprintf(stderr, "vkft: tokenize: cannot write the output\n");
    status = 1;
  }
  free(line);
  free(ids);
  vkft_chat_template_free(tmpl);
  cJSON_Delete(special);
  vkft_tokenizer_free(tok);
  return status;
}
