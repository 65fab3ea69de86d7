/* The tokenizer as GGUF metadata, as convert_hf_to_gguf.py writes it from tokenizer.json and
 * tokenizer_config.json (gguf-py's SpecialVocab for the special ids, add_bos/add_eos and the
 * chat template):
 *   - byte-level BPE (Llama 3, Qwen2/3): tokenizer.ggml.model "gpt2", the pre-tokenizer name
 *     llama.cpp splits text with, tokens, token types and merges (_set_vocab_gpt2);
 *   - SentencePiece-style BPE with byte fallback (Llama 2, Mistral, stories260K) from a
 *     tokenizer.json alone: tokenizer.ggml.model "llama", tokens, scores and types
 *     (_set_vocab_llama_hf). The converter writes -1000 for every score there, which makes
 *     llama.cpp's SentencePiece tokenizer merge left to right; vkft writes the BPE merge ranks
 *     as scores (a merge's product scores higher the earlier the merge), which is what a
 *     SentencePiece model carries and what makes llama.cpp tokenize as Hugging Face does.
 * The pre-tokenizer is recognised by its split regex (the converter hashes the token ids of a
 * probe text; for the supported families both give llama-bpe, qwen2 or gpt-2). */
#include "internal.h"

#include "vkft/error.h"
#include "vkft/json.h"
#include "vkft/platform.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* llama_token_type / gguf-py TokenType */
enum {
  TOKEN_NORMAL = 1,
  TOKEN_CONTROL = 3,
  TOKEN_USER_DEFINED = 4,
  TOKEN_UNUSED = 5,
  TOKEN_BYTE = 6
};

/* split regexes of the pre-tokenizers llama.cpp implements, by its name for them */
static const struct {
  const char *regex, *pre;
} known_pre[] = {
    {"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
     "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
     "llama-bpe"},
    {"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
     "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
     "qwen2"},
};

typedef struct vocab {
  const char *path;
  cJSON *tokenizer, *config, *model_config;
  int64_t n;   /* tokens written: the embedding's rows */
  char **text; /* owned copies */
  int32_t *type;
  float *score;
  int llama; /* SentencePiece-style ("llama") rather than byte-level ("gpt2") */
} vocab;

static const cJSON *get(const cJSON *o, const char *key) {
  return cJSON_GetObjectItemCaseSensitive(o, key);
}

static char *dup_str(const char *s) {
  char *d = malloc(strlen(s) + 1);
  if (d) strcpy(d, s);
  return d;
}

/* does_token_look_special of the converter: added tokens some models forget to mark special */
static int looks_special(const char *t) {
  size_t n = strlen(t);
  if (!strcmp(t, "<pad>") || !strcmp(t, "<mask>") || !strcmp(t, "<2mass>") || !strcmp(t, "[@BOS@]"))
    return 1;
  if (n >= 4 && !strncmp(t, "<|", 2) && !strcmp(t + n - 2, "|>")) return 1;
  if (n >= 6 && !strncmp(t, "<\xef\xbd\x9c", 4) && !strcmp(t + n - 4, "\xef\xbd\x9c>")) return 1;
  return n >= 8 && !strncmp(t, "<unused", 7) && t[n - 1] == '>';
}

static int is_byte_token(const char *t) {
  return strlen(t) == 6 && !strncmp(t, "<0x", 3) && t[5] == '>' &&
         strchr("0123456789ABCDEFabcdef", t[3]) && strchr("0123456789ABCDEFabcdef", t[4]) && t[3] &&
         t[4];
}

/* the token text of the special token named by tokenizer_config's `typ`_token (a string or an
 * AddedToken object) */
static const char *config_token(const cJSON *config, const char *typ) {
  char key[32];
  snprintf(key, sizeof key, "%s_token", typ);
  const cJSON *e = get(config, key);
  if (cJSON_IsObject(e)) e = get(e, "content");
  return cJSON_IsString(e) ? e->valuestring : NULL;
}

static int has_ancestor_type(const cJSON *node, const char *type) {
  if (!node) return 0;
  const cJSON *t = get(node, "type");
  if (cJSON_IsString(t) && !strcmp(t->valuestring, type)) return 1;
  for (const cJSON *c = node->child; c; c = c->next)
    if ((cJSON_IsObject(c) || cJSON_IsArray(c)) && has_ancestor_type(c, type)) return 1;
  return 0;
}

static const char *pre_tokenizer_name(const vocab *v) {
  const cJSON *pre = get(v->tokenizer, "pre_tokenizer");
  const cJSON *list = get(pre, "pretokenizers");
  const cJSON *items = cJSON_IsArray(list) ? list->child : pre;
  for (const cJSON *p = items; p; p = cJSON_IsArray(list) ? p->next : NULL) {
    const cJSON *type = get(p, "type"), *pattern = get(get(p, "pattern"), "Regex");
    if (cJSON_IsString(type) && !strcmp(type->valuestring, "Split") && cJSON_IsString(pattern)) {
      for (size_t i = 0; i < sizeof known_pre / sizeof known_pre[0]; i++)
        if (!strcmp(pattern->valuestring, known_pre[i].regex)) return known_pre[i].pre;
      return NULL;
    }
  }
  /* a bare ByteLevel pre-tokenizer with its own regex is GPT-2's */
  const cJSON *use_regex = get(pre, "use_regex");
  if (cJSON_IsString(get(pre, "type")) && !strcmp(get(pre, "type")->valuestring, "ByteLevel") &&
      !cJSON_IsFalse(use_regex))
    return "gpt-2";
  return NULL;
}

/* ---- token strings, types and scores ---- */

static int set_token(vocab *v, int64_t id, const char *text) {
  if (id < 0 || id >= v->n)
    return vkft_error("%s: token id %lld of \"%.40s\" is outside the model's %lld embedding rows",
                      v->path, (long long)id, text, (long long)v->n);
  free(v->text[id]);
  v->text[id] = dup_str(text);
  return v->text[id] ? VKFT_OK : vkft_error_nomem();
}

/* HF's all_special_tokens: the named special tokens and additional_special_tokens */
static int is_named_special(const vocab *v, const char *text) {
  static const char *const typs[] = {"bos", "eos", "unk", "sep", "pad", "cls", "mask"};
  for (size_t i = 0; i < sizeof typs / sizeof typs[0]; i++) {
    const char *t = config_token(v->config, typs[i]);
    if (t && !strcmp(t, text)) return 1;
  }
  const cJSON *extra = get(v->config, "additional_special_tokens");
  for (const cJSON *e = cJSON_IsArray(extra) ? extra->child : NULL; e; e = e->next) {
    const cJSON *c = cJSON_IsObject(e) ? get(e, "content") : e;
    if (cJSON_IsString(c) && !strcmp(c->valuestring, text)) return 1;
  }
  return 0;
}

typedef struct str_map {
  const char **keys;
  int64_t *ids;
  uint64_t cap;
} str_map;

static uint64_t str_hash(const char *s, size_t n) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
  return h;
}

static int64_t map_find(const str_map *m, const char *s, size_t n) {
  for (uint64_t i = str_hash(s, n) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
    if (!m->keys[i]) return -1;
    if (strlen(m->keys[i]) == n && !memcmp(m->keys[i], s, n)) return m->ids[i];
  }
}

/* scores from the merge ranks: the product of merge k scores -k (earliest merge highest);
 * tokens no merge produces score -1e9 (SentencePiece tokenization never forms them first) */
static int merge_scores(vocab *v, const cJSON *merges) {
  str_map m = {0};
  for (m.cap = 16; m.cap < 2 * (uint64_t)v->n; m.cap *= 2) {
  }
  m.keys = calloc(m.cap, sizeof *m.keys);
  m.ids = calloc(m.cap, sizeof *m.ids);
  if (!m.keys || !m.ids) {
    free(m.keys), free(m.ids);
    return vkft_error_nomem();
  }
  for (int64_t id = 0; id < v->n; id++) {
    v->score[id] = -1e9f;
    if (!v->text[id]) continue;
    uint64_t i = str_hash(v->text[id], strlen(v->text[id])) & (m.cap - 1);
    while (m.keys[i]) i = (i + 1) & (m.cap - 1);
    m.keys[i] = v->text[id], m.ids[i] = id;
  }
  int64_t rank = 0;
  char buf[1024];
  for (const cJSON *e = cJSON_IsArray(merges) ? merges->child : NULL; e; e = e->next, rank++) {
    const char *a = NULL, *b = NULL;
    if (cJSON_IsString(e)) { /* "a b" */
      const char *space = strchr(e->valuestring, ' ');
      if (!space) continue;
      snprintf(buf, sizeof buf, "%.*s%s", (int)(space - e->valuestring), e->valuestring, space + 1);
    } else if (cJSON_IsArray(e) && cJSON_GetArraySize(e) == 2) {
      a = cJSON_GetArrayItem(e, 0)->valuestring, b = cJSON_GetArrayItem(e, 1)->valuestring;
      if (!a || !b) continue;
      snprintf(buf, sizeof buf, "%s%s", a, b);
    } else {
      continue;
    }
    int64_t id = map_find(&m, buf, strlen(buf));
    if (id >= 0 && v->score[id] == -1e9f) v->score[id] = -(float)rank;
  }
  free(m.keys), free(m.ids);
  return VKFT_OK;
}

static int build_tokens(vocab *v) {
  const cJSON *model = get(v->tokenizer, "model"), *vocab_json = get(model, "vocab");
  const cJSON *added = get(v->tokenizer, "added_tokens");
  if (!cJSON_IsObject(vocab_json)) return vkft_error("%s: model.vocab is not an object", v->path);
  int64_t base_size = cJSON_GetArraySize(vocab_json);
  for (const cJSON *e = vocab_json->child; e; e = e->next)
    if (!cJSON_IsNumber(e) || set_token(v, (int64_t)e->valuedouble, e->string) != VKFT_OK)
      return cJSON_IsNumber(e) ? VKFT_ERR
                               : vkft_error("%s: vocab[\"%s\"] is not an id", v->path, e->string);
  for (int64_t id = 0; id < v->n; id++) v->type[id] = TOKEN_NORMAL;
  for (const cJSON *a = cJSON_IsArray(added) ? added->child : NULL; a; a = a->next) {
    const cJSON *id = get(a, "id"), *content = get(a, "content");
    if (!cJSON_IsNumber(id) || !cJSON_IsString(content))
      return vkft_error("%s: an added_tokens entry needs an id and a content", v->path);
    int64_t i = (int64_t)id->valuedouble;
    int special = cJSON_IsTrue(get(a, "special"));
    if (v->llama && i < base_size) continue; /* LlamaHfVocab takes those from the vocab */
    if (set_token(v, i, content->valuestring) != VKFT_OK) return VKFT_ERR;
    if (special || looks_special(content->valuestring) ||
        (v->llama && is_named_special(v, content->valuestring))) {
      v->type[i] = TOKEN_CONTROL;
    } else {
      v->type[i] = TOKEN_USER_DEFINED;
      if (!v->llama) { /* the converter pre-normalizes user-defined spaces: "\u2581" -> " " */
        char *t = v->text[i], *p;
        while ((p = strstr(t, "\xe2\x96\x81"))) {
          *p = ' ';
          memmove(p + 1, p + 3, strlen(p + 3) + 1);
        }
      }
    }
  }
  for (int64_t id = 0; id < v->n; id++) {
    if (!v->text[id]) { /* ids nothing names: [PAD<id>], unused */
      char pad[32];
      snprintf(pad, sizeof pad, "[PAD%lld]", (long long)id);
      if (set_token(v, id, pad) != VKFT_OK) return VKFT_ERR;
      v->type[id] = TOKEN_UNUSED;
    } else if (v->llama && id < base_size) {
      v->type[id] = is_byte_token(v->text[id]) ? TOKEN_BYTE
                    : is_named_special(v, v->text[id]) || v->type[id] == TOKEN_CONTROL
                        ? TOKEN_CONTROL
                        : TOKEN_NORMAL;
    }
  }
  return v->llama ? merge_scores(v, get(model, "merges")) : VKFT_OK;
}

/* ---- writing ---- */

static int write_merges(vkft_gguf_writer *w, const vocab *v) {
  const cJSON *merges = get(get(v->tokenizer, "model"), "merges");
  int64_t n = cJSON_GetArraySize(merges);
  char **strs = calloc((size_t)(n ? n : 1), sizeof *strs);
  if (!strs) return vkft_error_nomem();
  int64_t i = 0;
  int status = VKFT_OK;
  for (const cJSON *e = merges ? merges->child : NULL; e && status == VKFT_OK; e = e->next, i++) {
    if (cJSON_IsString(e)) {
      strs[i] = dup_str(e->valuestring);
    } else if (cJSON_IsArray(e) && cJSON_GetArraySize(e) == 2) {
      /* pairs (transformers >= 4.45): joined by a space, spaces inside encoded as U+0120 */
      const char *parts[2] = {cJSON_GetArrayItem(e, 0)->valuestring,
                              cJSON_GetArrayItem(e, 1)->valuestring};
      if (!parts[0] || !parts[1]) {
        status = vkft_error("%s: merge #%lld is not two strings", v->path, (long long)i);
        break;
      }
      size_t len = 3 * (strlen(parts[0]) + strlen(parts[1])) + 2, k = 0;
      strs[i] = malloc(len);
      for (int p = 0; strs[i] && p < 2; p++) {
        if (p) strs[i][k++] = ' ';
        for (const char *c = parts[p]; *c; c++)
          if (*c == ' ')
            strs[i][k++] = '\xc4', strs[i][k++] = '\xa0';
          else
            strs[i][k++] = *c;
      }
      if (strs[i]) strs[i][k] = 0;
    } else {
      status = vkft_error("%s: merge #%lld has an unknown format", v->path, (long long)i);
    }
    if (status == VKFT_OK && !strs[i]) status = vkft_error_nomem();
  }
  if (status == VKFT_OK)
    status = vkft_gguf_set_str_array(w, "tokenizer.ggml.merges", (const char *const *)strs, NULL,
                                     (uint64_t)n);
  for (int64_t k = 0; k < n; k++) free(strs[k]);
  free(strs);
  return status;
}

static const char *const special_types[] = {"bos", "eos", "unk", "sep", "pad", "cls", "mask"};
static const char *const special_keys[] = {
    "tokenizer.ggml.bos_token_id",     "tokenizer.ggml.eos_token_id",
    "tokenizer.ggml.unknown_token_id", "tokenizer.ggml.seperator_token_id",
    "tokenizer.ggml.padding_token_id", "tokenizer.ggml.cls_token_id",
    "tokenizer.ggml.mask_token_id"};
#define N_SPECIAL 7

/* gguf-py's SpecialVocab: ids (first found wins: tokenizer_config's names looked up in
 * added_tokens, then config.json's *_token_id) and add_* flags (TemplateProcessing first,
 * then tokenizer_config's add_*_token), each written in the order it was found */
static int write_specials(vkft_gguf_writer *w, const vocab *v) {
  int64_t ids[N_SPECIAL];
  int id_order[2 * N_SPECIAL], n_ids = 0, flag_order[N_SPECIAL], n_flags = 0, flags[N_SPECIAL];
  for (int t = 0; t < N_SPECIAL; t++) ids[t] = -1, flags[t] = -1;
  const char *bos = config_token(v->config, "bos"), *eos = config_token(v->config, "eos");
  const cJSON *post = get(v->tokenizer, "post_processor"), *procs = get(post, "processors");
  for (const cJSON *p = cJSON_IsArray(procs) ? procs->child : post; p;
       p = cJSON_IsArray(procs) ? p->next : NULL) {
    const cJSON *type = get(p, "type"), *single = get(p, "single");
    if (!cJSON_IsString(type) || strcmp(type->valuestring, "TemplateProcessing") ||
        cJSON_GetArraySize(single) < 2)
      continue;
    const cJSON *first = get(get(cJSON_GetArrayItem(single, 0), "SpecialToken"), "id");
    const cJSON *last =
        get(get(cJSON_GetArrayItem(single, cJSON_GetArraySize(single) - 1), "SpecialToken"), "id");
    if (cJSON_IsString(first)) {
      if (!v->config) bos = first->valuestring;
      flags[0] = bos && !strcmp(first->valuestring, bos);
      flag_order[n_flags++] = 0;
    }
    if (cJSON_IsString(last)) { /* a template ending in the EOS adds it */
      if (!v->config) eos = last->valuestring;
      flags[1] = eos && !strcmp(last->valuestring, eos);
      flag_order[n_flags++] = 1;
    }
  }
  for (int t = 0; v->config && t < N_SPECIAL; t++) {
    char key[32];
    snprintf(key, sizeof key, "add_%s_token", special_types[t]);
    const cJSON *add = get(v->config, key);
    if (cJSON_IsBool(add)) {
      int seen = 0;
      for (int k = 0; k < n_flags; k++) seen |= flag_order[k] == t;
      if (!seen) flag_order[n_flags++] = t;
      flags[t] = cJSON_IsTrue(add);
    }
    const char *content = config_token(v->config, special_types[t]);
    const cJSON *added = get(v->tokenizer, "added_tokens");
    for (const cJSON *a = content && cJSON_IsArray(added) ? added->child : NULL; a; a = a->next) {
      const cJSON *c = get(a, "content"), *id = get(a, "id");
      if (cJSON_IsString(c) && !strcmp(c->valuestring, content) && cJSON_IsNumber(id)) {
        if (ids[t] < 0 && id->valuedouble >= 0 && (!v->llama || id->valuedouble < v->n))
          ids[t] = (int64_t)id->valuedouble, id_order[n_ids++] = t;
        break;
      }
    }
  }
  for (int t = 0; v->model_config && t < N_SPECIAL; t++) {
    char key[32];
    snprintf(key, sizeof key, "%s_token_id", special_types[t]);
    const cJSON *id = get(v->model_config, key);
    if (cJSON_IsNumber(id) && ids[t] < 0 && id->valuedouble >= 0 &&
        (!v->llama || id->valuedouble < v->n))
      ids[t] = (int64_t)id->valuedouble, id_order[n_ids++] = t;
  }
  int st = 0;
  for (int k = 0; k < n_ids; k++)
    st |= vkft_gguf_set_u32(w, special_keys[id_order[k]], (uint32_t)ids[id_order[k]]);
  for (int k = 0; k < n_flags; k++) {
    char key[48];
    int t = flag_order[k];
    if (t > 3) continue; /* gguf-py has no add_pad/add_cls/add_mask keys */
    snprintf(key, sizeof key, "tokenizer.ggml.add_%s_token", special_types[t]);
    st |= vkft_gguf_set_bool(w, key, flags[t]);
  }
  return st ? VKFT_ERR : VKFT_OK;
}

/* tokenizer_config's chat_template (a string, or a list of named templates: the "default" one
 * as tokenizer.chat_template, the others as tokenizer.chat_template.<name>); else
 * chat_template.jinja beside it */
static int write_chat_template(vkft_gguf_writer *w, const vocab *v, const char *dir) {
  const cJSON *t = get(v->config, "chat_template");
  if (cJSON_IsString(t)) return vkft_gguf_set_str(w, "tokenizer.chat_template", t->valuestring);
  if (cJSON_IsArray(t)) {
    int st = 0;
    for (const cJSON *e = t->child; e; e = e->next) {
      const cJSON *name = get(e, "name"), *tmpl = get(e, "template");
      if (!cJSON_IsString(name) || !cJSON_IsString(tmpl)) continue;
      char key[256];
      if (!strcmp(name->valuestring, "default"))
        snprintf(key, sizeof key, "tokenizer.chat_template");
      else
        snprintf(key, sizeof key, "tokenizer.chat_template.%s", name->valuestring);
      st |= vkft_gguf_set_str(w, key, tmpl->valuestring);
    }
    return st ? VKFT_ERR : VKFT_OK;
  }
  char path[2048], *text;
  snprintf(path, sizeof path, "%s/chat_template.jinja", dir);
  if (!vkft_file_exists(path)) return VKFT_OK;
  if (vkft_file_read(path, &text, NULL) != VKFT_OK) return VKFT_ERR;
  int st = vkft_gguf_set_str(w, "tokenizer.chat_template", text);
  free(text);
  return st;
}

static int write_vocab(vkft_gguf_writer *w, vocab *v, const char *dir) {
  const cJSON *model = get(v->tokenizer, "model"), *type = get(model, "type");
  if (!cJSON_IsString(type) || strcmp(type->valuestring, "BPE"))
    return vkft_error("%s: only BPE tokenizers can be written to GGUF (model.type is %s)", v->path,
                      cJSON_IsString(type) ? type->valuestring : "missing");
  v->llama = cJSON_IsTrue(get(model, "byte_fallback"));
  const char *pre = "default";
  if (!v->llama) {
    if (!has_ancestor_type(get(v->tokenizer, "pre_tokenizer"), "ByteLevel"))
      return vkft_error("%s: a BPE tokenizer that is neither byte-level nor SentencePiece-style "
                        "(byte_fallback) has no GGUF form llama.cpp reads",
                        v->path);
    if (!(pre = pre_tokenizer_name(v)))
      return vkft_error("%s: the pre-tokenizer's split pattern is not one llama.cpp knows "
                        "(known: Llama 3's llama-bpe, Qwen2's qwen2, GPT-2's)",
                        v->path);
  }
  if (build_tokens(v) != VKFT_OK) return VKFT_ERR;
  int st = vkft_gguf_set_str(w, "tokenizer.ggml.model", v->llama ? "llama" : "gpt2");
  st |= vkft_gguf_set_str(w, "tokenizer.ggml.pre", pre);
  st |= vkft_gguf_set_str_array(w, "tokenizer.ggml.tokens", (const char *const *)v->text, NULL,
                                (uint64_t)v->n);
  if (v->llama)
    st |= vkft_gguf_set_array(w, "tokenizer.ggml.scores", VKFT_GGUF_FLOAT32, v->score,
                              (uint64_t)v->n);
  st |=
      vkft_gguf_set_array(w, "tokenizer.ggml.token_type", VKFT_GGUF_INT32, v->type, (uint64_t)v->n);
  if (st) return VKFT_ERR;
  if (!v->llama && write_merges(w, v) != VKFT_OK) return VKFT_ERR;
  if (write_specials(w, v) != VKFT_OK) return VKFT_ERR;
  return v->config ? write_chat_template(w, v, dir) : VKFT_OK;
}

int export_gguf_vocab(vkft_gguf_writer *w, const char *dir, const char *model_dir,
                      int64_t vocab_rows) {
  char path[2048], config_path[2048], model_config[2048];
  snprintf(path, sizeof path, "%s/tokenizer.json", dir);
  snprintf(config_path, sizeof config_path, "%s/tokenizer_config.json", dir);
  snprintf(model_config, sizeof model_config, "%s/config.json", model_dir);
  vocab v = {.path = path, .n = vocab_rows};
  v.tokenizer = vkft_json_read_file(path);
  if (!v.tokenizer) return vkft_error_prefix("GGUF needs the tokenizer");
  if (vkft_file_exists(config_path) && !(v.config = vkft_json_read_file(config_path))) {
    cJSON_Delete(v.tokenizer);
    return VKFT_ERR;
  }
  v.model_config = vkft_json_read_file(model_config);
  v.text = calloc((size_t)vocab_rows, sizeof *v.text);
  v.type = calloc((size_t)vocab_rows, sizeof *v.type);
  v.score = calloc((size_t)vocab_rows, sizeof *v.score);
  int status = v.text && v.type && v.score ? write_vocab(w, &v, dir) : vkft_error_nomem();
  for (int64_t i = 0; v.text && i < vocab_rows; i++) free(v.text[i]);
  free(v.text), free(v.type), free(v.score);
  cJSON_Delete(v.tokenizer), cJSON_Delete(v.config), cJSON_Delete(v.model_config);
  return status;
}
