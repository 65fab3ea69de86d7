/* Loading a Hugging Face tokenizer.json (+ tokenizer_config.json) into vkft_tokenizer: the BPE
 * model, added tokens and config (tokenizer_pipeline.c parses the pipeline stages), the
 * getters of the public API, and the small UTF-8 / Unicode helpers the other tokenizer files
 * share. Everything the file asks for that we do not implement is refused here, at load time,
 * with one message naming the file and the unsupported piece. */
#include "internal.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "vkft/error.h"
#include "vkft/gguf.h"

/* ---- shared helpers ---- */

/* Rust char::is_whitespace (the Unicode White_Space property). */
int tok_is_whitespace(uint32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
         cp == 0x205F || cp == 0x3000;
}

/* Rust char::is_numeric: general categories Nd, Nl, No. */
int tok_is_numeric(uint32_t cp) {
  utf8proc_category_t c = utf8proc_category((utf8proc_int32_t)cp);
  return c == UTF8PROC_CATEGORY_ND || c == UTF8PROC_CATEGORY_NL || c == UTF8PROC_CATEGORY_NO;
}

/* Rust char::is_alphanumeric, approximated by the letter and number categories. */
int tok_is_alphanumeric(uint32_t cp) {
  utf8proc_category_t c = utf8proc_category((utf8proc_int32_t)cp);
  return (c >= UTF8PROC_CATEGORY_LU && c <= UTF8PROC_CATEGORY_LO) || tok_is_numeric(cp);
}

static int oom(const char *path) {
  return vkft_error_with(VKFT_ERR_NOMEM, "%s: out of host memory", path);
}

/* ---- model ---- */

static int parse_vocab(const char *path, const cJSON *vocab, tok_strmap *map, int32_t *max_id) {
  if (!cJSON_IsObject(vocab)) return vkft_error("%s: model.vocab must be an object", path);
  if (tok_strmap_init(map, (size_t)cJSON_GetArraySize(vocab)) != VKFT_OK) return oom(path);
  const cJSON *entry;
  cJSON_ArrayForEach(entry, vocab) {
    int32_t id;
    if (!tok_json_id(entry, &id))
      return vkft_error("%s: model.vocab[\"%s\"] is not a valid id", path, entry->string);
    if (tok_strmap_put(map, entry->string, strlen(entry->string), id) != VKFT_OK)
      return vkft_error_prefix("%s", path);
    if (id > *max_id) *max_id = id;
  }
  return VKFT_OK;
}

static int parse_merges(const char *path, vkft_tokenizer *tok, const cJSON *merges) {
  if (!cJSON_IsArray(merges)) return vkft_error("%s: model.merges must be a list", path);
  if (tok_pairmap_init(&tok->merges, (size_t)cJSON_GetArraySize(merges)) != VKFT_OK)
    return oom(path);
  size_t prefix_len = tok->subword_prefix ? strlen(tok->subword_prefix) : 0;
  char *joined = NULL;
  size_t joined_cap = 0;
  int32_t rank = 0;
  int status = VKFT_OK;
  const cJSON *merge;
  cJSON_ArrayForEach(merge, merges) {
    const char *a, *b;
    size_t a_len, b_len;
    if (cJSON_IsString(merge)) { /* "a b", split at the first space as HF does */
      const char *space = strchr(merge->valuestring, ' ');
      if (!space) {
        status = vkft_error("%s: model.merges[%d] \"%s\" is not \"a b\"", path, (int)rank,
                            merge->valuestring);
        break;
      }
      a = merge->valuestring;
      a_len = (size_t)(space - a);
      b = space + 1;
      b_len = strlen(b);
    } else if (cJSON_IsArray(merge) && cJSON_GetArraySize(merge) == 2 &&
               cJSON_IsString(cJSON_GetArrayItem(merge, 0)) &&
               cJSON_IsString(cJSON_GetArrayItem(merge, 1))) {
      a = cJSON_GetArrayItem(merge, 0)->valuestring;
      b = cJSON_GetArrayItem(merge, 1)->valuestring;
      a_len = strlen(a);
      b_len = strlen(b);
    } else {
      status =
          vkft_error("%s: model.merges[%d] is neither \"a b\" nor [\"a\", \"b\"]", path, (int)rank);
      break;
    }
    int32_t a_id = tok_strmap_get(&tok->vocab, a, a_len);
    int32_t b_id = tok_strmap_get(&tok->vocab, b, b_len);
    /* the merged token drops the right part's continuing-subword prefix ("##") */
    size_t skip = prefix_len <= b_len ? prefix_len : b_len;
    if (vkft_grow((void **)&joined, &joined_cap, a_len + b_len + 1, 1) != VKFT_OK) {
      status = oom(path);
      break;
    }
    memcpy(joined, a, a_len);
    memcpy(joined + a_len, b + skip, b_len - skip);
    int32_t new_id = tok_strmap_get(&tok->vocab, joined, a_len + b_len - skip);
    if (a_id < 0 || b_id < 0 || new_id < 0) {
      status =
          vkft_error("%s: model.merges[%d] uses a token missing from the vocab", path, (int)rank);
      break;
    }
    if (tok_pairmap_put(&tok->merges, a_id, b_id, rank, new_id) != VKFT_OK) {
      status = oom(path);
      break;
    }
    rank++;
  }
  free(joined);
  return status;
}

static int set_affix(const char *path, const cJSON *model, const char *key, char **out) {
  const char *s = tok_json_str(model, key);
  *out = NULL;
  if (!s || !*s) return VKFT_OK; /* "" behaves as absent */
  if (strlen(s) > 32) return vkft_error("%s: model.%s longer than 32 bytes", path, key);
  if (!(*out = tok_strdup(s, strlen(s)))) return oom(path);
  return VKFT_OK;
}

static int parse_model(const char *path, vkft_tokenizer *tok, const cJSON *model, int32_t *max_id) {
  if (!cJSON_IsObject(model)) return vkft_error("%s: missing \"model\"", path);
  const char *type = tok_json_str(model, "type");
  if (type && strcmp(type, "BPE") != 0)
    return vkft_error_with(VKFT_ERR_UNSUPPORTED,
                           "%s: model type \"%s\" is not supported (only BPE)", path, type);
  if (!type && !cJSON_GetObjectItemCaseSensitive(model, "merges"))
    return vkft_error("%s: model has no \"type\" and no merges (only BPE is supported)", path);
  const cJSON *dropout = cJSON_GetObjectItemCaseSensitive(model, "dropout");
  if (cJSON_IsNumber(dropout) && dropout->valuedouble > 0)
    return vkft_error("%s: BPE dropout is not supported", path);
  if (set_affix(path, model, "continuing_subword_prefix", &tok->subword_prefix) != VKFT_OK ||
      set_affix(path, model, "end_of_word_suffix", &tok->word_suffix) != VKFT_OK)
    return VKFT_ERR;
  tok->fuse_unk = tok_json_bool(model, "fuse_unk", 0);
  tok->byte_fallback = tok_json_bool(model, "byte_fallback", 0);
  tok->ignore_merges = tok_json_bool(model, "ignore_merges", 0);
  if (parse_vocab(path, cJSON_GetObjectItemCaseSensitive(model, "vocab"), &tok->vocab, max_id) !=
      VKFT_OK)
    return VKFT_ERR;
  if (parse_merges(path, tok, cJSON_GetObjectItemCaseSensitive(model, "merges")) != VKFT_OK)
    return VKFT_ERR;
  const char *unk = tok_json_str(model, "unk_token");
  tok->unk_id = unk ? tok_strmap_get(&tok->vocab, unk, strlen(unk)) : -1;
  for (int b = 0; b < 256; b++) {
    char name[8];
    snprintf(name, sizeof name, "<0x%02X>", b);
    tok->byte_fallback_id[b] = tok_strmap_get(&tok->vocab, name, strlen(name));
  }
  return VKFT_OK;
}

/* 1 if no vocabulary token has a "▁" (U+2581) right after a character other than "▁": then
 * a merge never joins anything to such a "▁" and words can be cut there. Not with
 * ignore_merges (its whole-word lookup needs the whole word), word prefixes/suffixes (they mark
 * word ends), nor byte-level models. */
static int check_metaspace_words(const vkft_tokenizer *tok) {
  /* "▁" itself must be a token, or it could fuse into one unk with its neighbours */
  if (tok->ignore_merges || tok->bytelevel || tok->subword_prefix || tok->word_suffix ||
      tok_strmap_get(&tok->vocab, "\xE2\x96\x81", 3) < 0)
    return 0;
  const tok_strmap *v = &tok->vocab;
  for (size_t i = 0; i < v->cap; i++) {
    if (!v->slots[i].hash) continue;
    const char *t = v->arena + v->slots[i].key_off;
    uint32_t len = v->slots[i].key_len;
    for (uint32_t k = 3; k + 3 <= len; k++)
      if (!memcmp(t + k, "\xE2\x96\x81", 3) && memcmp(t + k - 3, "\xE2\x96\x81", 3)) return 0;
  }
  return 1;
}

/* GPT-2 bytes_to_unicode: printable Latin-1 bytes stand for themselves, the other 68 bytes get
 * the code points 256, 257, ... in byte order, so every byte is a visible character. */
static void build_byte_chars(vkft_tokenizer *tok) {
  uint32_t next = 256;
  for (int i = 0; i < 324; i++) tok->char_byte[i] = -1;
  for (int b = 0; b < 256; b++) {
    int printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
    uint32_t cp = printable ? (uint32_t)b : next++;
    tok->byte_char_len[b] = (uint8_t)vkft_utf8_encode(cp, tok->byte_char[b]);
    tok->byte_token[b] = tok_strmap_get(&tok->vocab, tok->byte_char[b], tok->byte_char_len[b]);
    tok->char_byte[cp] = (int16_t)b;
  }
}

/* ---- added tokens and the id -> string table ---- */

static int add_string(vkft_tokenizer *tok, const char *s, size_t len, int64_t *off) {
  if (vkft_grow((void **)&tok->strings, &tok->strings_cap, tok->strings_len + len + 1, 1) !=
      VKFT_OK)
    return VKFT_ERR;
  memcpy(tok->strings + tok->strings_len, s, len);
  tok->strings[tok->strings_len + len] = 0;
  *off = (int64_t)tok->strings_len;
  tok->strings_len += len + 1;
  return VKFT_OK;
}

static int grow_ids(vkft_tokenizer *tok, size_t size) {
  if (size <= tok->vocab_size) return VKFT_OK;
  int64_t *id_str = realloc(tok->id_str, size * sizeof *id_str);
  if (!id_str) return vkft_error_with(VKFT_ERR_NOMEM, "tokenizer: out of host memory");
  tok->id_str = id_str;
  uint8_t *special = realloc(tok->id_special, size);
  if (!special) return vkft_error_with(VKFT_ERR_NOMEM, "tokenizer: out of host memory");
  tok->id_special = special;
  for (size_t i = tok->vocab_size; i < size; i++) {
    tok->id_str[i] = -1;
    tok->id_special[i] = 0;
  }
  tok->vocab_size = size;
  return VKFT_OK;
}

/* Registers added token content with id; normalized tokens are matched against the normalized
 * text, so HF stores them in their normalized form. */
static int register_added(vkft_tokenizer *tok, const char *content, int32_t id, int special,
                          int lstrip, int rstrip, int single_word, int normalized) {
  size_t len = strlen(content);
  if (len == 0) return vkft_error("tokenizer: added token with empty content");
  int32_t existing = tok_strmap_get(&tok->added_map, content, len);
  if (existing >= 0) { /* HF keeps one entry per content; the last one wins */
    tok_added *a = &tok->added[existing];
    a->id = id;
    a->special = (uint8_t)special;
    a->lstrip = (uint8_t)lstrip, a->rstrip = (uint8_t)rstrip;
    a->single_word = (uint8_t)single_word;
  } else {
    if (vkft_grow((void **)&tok->added, &tok->added_cap, tok->n_added + 1, sizeof *tok->added) !=
        VKFT_OK)
      return VKFT_ERR;
    tok_added *a = &tok->added[tok->n_added];
    memset(a, 0, sizeof *a);
    a->content = tok_strdup(content, len);
    if (!a->content) return vkft_error_with(VKFT_ERR_NOMEM, "tokenizer: out of host memory");
    a->content_len = len;
    a->id = id;
    a->special = (uint8_t)special;
    a->lstrip = (uint8_t)lstrip, a->rstrip = (uint8_t)rstrip;
    a->single_word = (uint8_t)single_word;
    a->normalized = (uint8_t)normalized;
    if (normalized && tok->normalizer) {
      if (tok_normalize(tok->normalizer, content, len, &a->match, &a->match_len) != VKFT_OK) {
        free(a->content);
        return VKFT_ERR;
      }
    } else {
      a->match = tok_strdup(content, len);
      a->match_len = len;
      if (!a->match) {
        free(a->content);
        return vkft_error_with(VKFT_ERR_NOMEM, "tokenizer: out of host memory");
      }
    }
    if (tok_strmap_put(&tok->added_map, content, len, (int32_t)tok->n_added) != VKFT_OK)
      return VKFT_ERR;
    tok->n_added++;
  }
  if (grow_ids(tok, (size_t)id + 1) != VKFT_OK) return VKFT_ERR;
  if (add_string(tok, content, len, &tok->id_str[id]) != VKFT_OK) return VKFT_ERR;
  tok->id_special[id] = (uint8_t)special;
  return VKFT_OK;
}

static int parse_added(const char *path, vkft_tokenizer *tok, const cJSON *list) {
  if (!list || cJSON_IsNull(list)) return VKFT_OK;
  if (!cJSON_IsArray(list)) return vkft_error("%s: \"added_tokens\" must be a list", path);
  const cJSON *item;
  int index = 0;
  cJSON_ArrayForEach(item, list) {
    const char *content = tok_json_str(item, "content");
    int32_t id;
    if (!content || !*content || !tok_json_id(cJSON_GetObjectItemCaseSensitive(item, "id"), &id))
      return vkft_error("%s: added_tokens[%d] needs \"id\" and non-empty \"content\"", path, index);
    int special = tok_json_bool(item, "special", 0);
    if (register_added(tok, content, id, special, tok_json_bool(item, "lstrip", 0),
                       tok_json_bool(item, "rstrip", 0), tok_json_bool(item, "single_word", 0),
                       tok_json_bool(item, "normalized", !special)) != VKFT_OK)
      return vkft_error_prefix("%s: added_tokens[%d]", path, index);
    index++;
  }
  return VKFT_OK;
}

static int build_id_strings(const char *path, vkft_tokenizer *tok) {
  const tok_strmap *v = &tok->vocab;
  for (size_t i = 0; i < v->cap; i++) {
    const tok_strmap_slot *slot = &v->slots[i];
    if (!slot->hash || tok->id_str[slot->value] >= 0) continue; /* added tokens win */
    if (add_string(tok, v->arena + slot->key_off, slot->key_len, &tok->id_str[slot->value]) !=
        VKFT_OK)
      return oom(path);
  }
  return VKFT_OK;
}

/* ---- tokenizer_config.json ---- */

static const char *token_name(const cJSON *item) {
  if (cJSON_IsString(item)) return item->valuestring;
  return tok_json_str(item, "content"); /* serialized AddedToken */
}

/* transformers' LlamaTokenizerFast and GemmaTokenizerFast rebuild the post-processor from
 * add_bos_token / add_eos_token (update_post_processor), so for those classes the config's
 * flags decide what add_special adds: [bos] sequence [eos]. Other classes keep the
 * tokenizer.json post-processor, as the Rust library does. */
static int apply_add_bos_eos(vkft_tokenizer *tok, const cJSON *root, const char *config_path) {
  static const char *const classes[] = {"LlamaTokenizer",     "LlamaTokenizerFast",
                                        "CodeLlamaTokenizer", "CodeLlamaTokenizerFast",
                                        "GemmaTokenizer",     "GemmaTokenizerFast"};
  const char *cls = tok_json_str(root, "tokenizer_class");
  const cJSON *add_bos = cJSON_GetObjectItemCaseSensitive(root, "add_bos_token");
  const cJSON *add_eos = cJSON_GetObjectItemCaseSensitive(root, "add_eos_token");
  int known = 0;
  for (size_t i = 0; cls && i < sizeof classes / sizeof *classes; i++)
    known |= !strcmp(cls, classes[i]);
  if (!known || (!cJSON_IsBool(add_bos) && !cJSON_IsBool(add_eos))) return VKFT_OK;
  /* transformers' defaults for these classes: add_bos_token=True, add_eos_token=False */
  int want_bos = cJSON_IsBool(add_bos) ? cJSON_IsTrue(add_bos) : 1;
  int want_eos = cJSON_IsBool(add_eos) ? cJSON_IsTrue(add_eos) : 0;
  int32_t bos = tok->bos_str ? vkft_tokenizer_token_id(tok, tok->bos_str) : -1;
  int32_t eos = tok->eos_str ? vkft_tokenizer_token_id(tok, tok->eos_str) : -1;
  if ((want_bos && bos < 0) || (want_eos && eos < 0))
    return vkft_error("%s: add_bos_token/add_eos_token need bos_token/eos_token in the vocab",
                      config_path);
  tok->n_post_prefix = tok->n_post_suffix = 0;
  if (want_bos) {
    int32_t *p = realloc(tok->post_prefix, sizeof *p);
    if (!p) return oom(config_path);
    tok->post_prefix = p;
    p[tok->n_post_prefix++] = bos;
  }
  if (want_eos) {
    int32_t *p = realloc(tok->post_suffix, sizeof *p);
    if (!p) return oom(config_path);
    tok->post_suffix = p;
    p[tok->n_post_suffix++] = eos;
  }
  return VKFT_OK;
}

static int load_config(vkft_tokenizer *tok, const char *config_path) {
  if (!vkft_file_exists(config_path)) return VKFT_OK;
  char *data;
  size_t size;
  if (vkft_file_read(config_path, &data, &size) != VKFT_OK) return VKFT_ERR;
  cJSON *root = cJSON_ParseWithLength(data, size);
  free(data);
  if (!cJSON_IsObject(root)) {
    cJSON_Delete(root);
    return vkft_error("%s: malformed JSON", config_path);
  }
  int status = VKFT_OK;
  const char *bos = token_name(cJSON_GetObjectItemCaseSensitive(root, "bos_token"));
  const char *eos = token_name(cJSON_GetObjectItemCaseSensitive(root, "eos_token"));
  const cJSON *tmpl = cJSON_GetObjectItemCaseSensitive(root, "chat_template");
  const char *chat = NULL;
  if (cJSON_IsString(tmpl)) {
    chat = tmpl->valuestring;
  } else if (cJSON_IsArray(tmpl)) { /* [{"name": "default", "template": ...}, ...] */
    const cJSON *entry;
    cJSON_ArrayForEach(entry, tmpl) {
      const char *name = tok_json_str(entry, "name");
      if (name && !strcmp(name, "default")) chat = tok_json_str(entry, "template");
    }
    /* transformers refuses to pick one: "multiple chat templates with no default" */
    if (!chat)
      snprintf(tok->chat_template_problem, sizeof tok->chat_template_problem,
               "%s: \"chat_template\" lists templates but none named \"default\" (choose one "
               "with data.template)",
               config_path);
  } else if (tmpl && !cJSON_IsNull(tmpl)) {
    snprintf(tok->chat_template_problem, sizeof tok->chat_template_problem,
             "%s: \"chat_template\" must be a string or a list of {\"name\", \"template\"}",
             config_path);
  }
  if ((bos && !(tok->bos_str = tok_strdup(bos, strlen(bos)))) ||
      (eos && !(tok->eos_str = tok_strdup(eos, strlen(eos)))) ||
      (chat && !(tok->chat_template = tok_strdup(chat, strlen(chat)))))
    status = vkft_error_with(VKFT_ERR_NOMEM, "%s: out of host memory", config_path);
  if (status == VKFT_OK) status = apply_add_bos_eos(tok, root, config_path);
  cJSON_Delete(root);
  return status;
}

/* ---- load / free ---- */

int tok_load_json(vkft_tokenizer *tok, const cJSON *root) {
  if (!cJSON_IsObject(root)) return vkft_error("%s: not a JSON object", tok->path);
  const cJSON *item;
  int32_t max_id = -1;
  if (parse_model(tok->path, tok, cJSON_GetObjectItemCaseSensitive(root, "model"), &max_id) !=
      VKFT_OK)
    return VKFT_ERR;
  if ((item = cJSON_GetObjectItemCaseSensitive(root, "normalizer")) && !cJSON_IsNull(item)) {
    if (!(tok->normalizer = malloc(sizeof *tok->normalizer))) return oom(tok->path);
    if (tok_parse_normalizer(tok->path, item, tok->normalizer) != VKFT_OK) return VKFT_ERR;
  }
  if ((item = cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer")) && !cJSON_IsNull(item)) {
    if (!(tok->pretok = malloc(sizeof *tok->pretok))) return oom(tok->path);
    if (tok_parse_pretok(tok->path, item, tok->pretok) != VKFT_OK) return VKFT_ERR;
    int last_ok = 1;
    tok->bytelevel = tok_pretok_bytelevel(tok->pretok, 1, &last_ok);
    if (!last_ok)
      return vkft_error("%s: a ByteLevel pre_tokenizer that is not the last step is not "
                        "supported",
                        tok->path);
  }
  if ((item = cJSON_GetObjectItemCaseSensitive(root, "decoder")) && !cJSON_IsNull(item)) {
    if (!(tok->decoder = malloc(sizeof *tok->decoder))) return oom(tok->path);
    if (tok_parse_decoder(tok->path, item, tok->decoder) != VKFT_OK) return VKFT_ERR;
  }
  if ((item = cJSON_GetObjectItemCaseSensitive(root, "post_processor")) && !cJSON_IsNull(item)) {
    if (tok_parse_post(tok->path, tok, item) != VKFT_OK) return VKFT_ERR;
  }
  build_byte_chars(tok);
  tok->bytelevel_fast = tok->bytelevel && !tok->subword_prefix && !tok->word_suffix;
  for (int b = 0; b < 256; b++)
    if (tok->byte_token[b] < 0) tok->bytelevel_fast = 0;
  tok->metaspace_words = check_metaspace_words(tok);

  if (tok_strmap_init(&tok->added_map, 64) != VKFT_OK) return oom(tok->path);
  if (grow_ids(tok, (size_t)max_id + 1) != VKFT_OK) return oom(tok->path);
  if (parse_added(tok->path, tok, cJSON_GetObjectItemCaseSensitive(root, "added_tokens")) !=
      VKFT_OK)
    return VKFT_ERR;
  if (build_id_strings(tok->path, tok) != VKFT_OK) return VKFT_ERR;
  for (size_t i = 0; i < tok->n_post_prefix; i++)
    if ((size_t)tok->post_prefix[i] >= tok->vocab_size)
      return vkft_error("%s: post_processor uses id %d outside the vocabulary", tok->path,
                        (int)tok->post_prefix[i]);
  for (size_t i = 0; i < tok->n_post_suffix; i++)
    if ((size_t)tok->post_suffix[i] >= tok->vocab_size)
      return vkft_error("%s: post_processor uses id %d outside the vocabulary", tok->path,
                        (int)tok->post_suffix[i]);
  if (tok_trie_build(tok) != VKFT_OK) return oom(tok->path);
  return VKFT_OK;
}

int vkft_tokenizer_load(const char *path, vkft_tokenizer **out) {
  *out = NULL;
  size_t plen = strlen(path);
  int is_dir = vkft_is_dir(path);
  vkft_tokenizer *tok = calloc(1, sizeof *tok);
  char *config_path = malloc(plen + 32);
  if (!tok || !config_path || !(tok->path = malloc(plen + 32))) {
    free(tok);
    free(config_path);
    return vkft_error_with(VKFT_ERR_NOMEM, "%s: out of host memory", path);
  }
  tok->unk_id = -1;
  if (vkft_gguf_is_file(path)) { /* the tokenizer of a GGUF file's metadata (gguf.c) */
    memcpy(tok->path, path, plen + 1);
    free(config_path);
    int status = tok_load_gguf(tok, path);
    if (status == VKFT_OK && !(tok->pool_lock = vkft_mutex_create()))
      status = vkft_error("%s: cannot create a mutex", tok->path);
    if (status != VKFT_OK) {
      vkft_tokenizer_free(tok);
      return VKFT_ERR;
    }
    *out = tok;
    return VKFT_OK;
  }
  if (is_dir) {
    const char *sep = plen && path[plen - 1] == '/' ? "" : "/";
    snprintf(tok->path, plen + 32, "%s%stokenizer.json", path, sep);
    snprintf(config_path, plen + 32, "%s%stokenizer_config.json", path, sep);
  } else {
    memcpy(tok->path, path, plen + 1);
    const char *slash = strrchr(path, '/');
#ifdef _WIN32
    const char *backslash = strrchr(path, '\\');
    if (backslash && (!slash || backslash > slash)) slash = backslash;
#endif
    size_t dir_len = slash ? (size_t)(slash - path) + 1 : 0;
    memcpy(config_path, path, dir_len);
    memcpy(config_path + dir_len, "tokenizer_config.json", 22);
  }
  char *data = NULL;
  size_t size = 0;
  int status = vkft_file_read(tok->path, &data, &size);
  if (status != VKFT_OK && !vkft_file_exists(tok->path))
    status = vkft_error("%s: no such file", tok->path);
  if (status == VKFT_OK) {
    cJSON *root = cJSON_ParseWithLength(data, size);
    free(data);
    if (!root) {
      status = vkft_error("%s: malformed JSON", tok->path);
    } else {
      status = tok_load_json(tok, root);
      cJSON_Delete(root);
    }
  }
  if (status == VKFT_OK) status = load_config(tok, config_path);
  if (status == VKFT_OK && !(tok->pool_lock = vkft_mutex_create()))
    status = vkft_error("%s: cannot create a mutex", tok->path);
  free(config_path);
  if (status != VKFT_OK) {
    vkft_tokenizer_free(tok);
    return VKFT_ERR;
  }
  *out = tok;
  return VKFT_OK;
}

void vkft_tokenizer_free(vkft_tokenizer *tok) {
  if (!tok) return;
  while (tok->pool) {
    tok_scratch *next = tok->pool->next_free;
    tok_scratch_free(tok->pool);
    tok->pool = next;
  }
  if (tok->pool_lock) vkft_mutex_destroy(tok->pool_lock);
  free(tok->path);
  free(tok->strings);
  free(tok->id_str);
  free(tok->id_special);
  tok_strmap_free(&tok->vocab);
  tok_pairmap_free(&tok->merges);
  free(tok->subword_prefix);
  free(tok->word_suffix);
  tok_normalizer_free(tok->normalizer);
  tok_pretok_free(tok->pretok);
  tok_decoder_free(tok->decoder);
  free(tok->post_prefix);
  free(tok->post_suffix);
  for (size_t i = 0; i < tok->n_added; i++) {
    free(tok->added[i].content);
    free(tok->added[i].match);
  }
  free(tok->added);
  tok_strmap_free(&tok->added_map);
  free(tok->trie_raw.nodes);
  free(tok->trie_normalized.nodes);
  free(tok->bos_str);
  free(tok->eos_str);
  free(tok->chat_template);
  free(tok);
}

/* ---- getters ---- */

int32_t vkft_tokenizer_token_id(const vkft_tokenizer *tok, const char *token) {
  size_t len = strlen(token);
  int32_t added = tok_strmap_get(&tok->added_map, token, len);
  if (added >= 0) return tok->added[added].id;
  return tok_strmap_get(&tok->vocab, token, len);
}

const char *vkft_tokenizer_token_str(const vkft_tokenizer *tok, int32_t id) {
  if (id < 0 || (size_t)id >= tok->vocab_size || tok->id_str[id] < 0) return NULL;
  return tok->strings + tok->id_str[id];
}

size_t vkft_tokenizer_vocab_size(const vkft_tokenizer *tok) {
  return tok->vocab_size;
}

int32_t vkft_tokenizer_bos_id(const vkft_tokenizer *tok) {
  if (tok->bos_str) return vkft_tokenizer_token_id(tok, tok->bos_str);
  return tok->n_post_prefix ? tok->post_prefix[0] : -1;
}

int32_t vkft_tokenizer_eos_id(const vkft_tokenizer *tok) {
  return tok->eos_str ? vkft_tokenizer_token_id(tok, tok->eos_str) : -1;
}

const char *vkft_tokenizer_bos_str(const vkft_tokenizer *tok) {
  if (tok->bos_str) return tok->bos_str;
  return tok->n_post_prefix ? vkft_tokenizer_token_str(tok, tok->post_prefix[0]) : NULL;
}

const char *vkft_tokenizer_eos_str(const vkft_tokenizer *tok) {
  return tok->eos_str;
}

int vkft_tokenizer_is_special(const vkft_tokenizer *tok, int32_t id) {
  return id >= 0 && (size_t)id < tok->vocab_size && tok->id_special[id];
}

const char *vkft_tokenizer_chat_template_problem(const vkft_tokenizer *tok) {
  return tok->chat_template_problem[0] ? tok->chat_template_problem : NULL;
}

const char *vkft_tokenizer_chat_template(const vkft_tokenizer *tok) {
  return tok->chat_template;
}

int vkft_tokenizer_add_special(vkft_tokenizer *tok, const char *token, int32_t *id) {
  int32_t new_id = vkft_tokenizer_token_id(tok, token);
  if (new_id < 0) new_id = (int32_t)tok->vocab_size;
  /* special tokens are matched in the raw text (HF: normalized = !special) */
  if (register_added(tok, token, new_id, 1, 0, 0, 0, 0) != VKFT_OK ||
      tok_trie_build(tok) != VKFT_OK)
    return vkft_error_prefix("%s: adding special token \"%s\"", tok->path, token);
  if (id) *id = new_id;
  return VKFT_OK;
}
