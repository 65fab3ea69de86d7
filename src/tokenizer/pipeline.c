/* Parsing the pipeline stages of tokenizer.json into the trees the encoder and decoder walk:
 * normalizer, pre_tokenizer, decoder and post_processor (the last reduced to the ids it puts
 * before and after the sequence). Anything we do not implement is refused with a message
 * naming the file and the stage type. Also the small cJSON helpers of the loader. */
#include "internal.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "vkft/error.h"

/* ---- JSON helpers ---- */

const char *tok_json_str(const cJSON *obj, const char *key) {
  const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
  return cJSON_IsString(item) ? item->valuestring : NULL;
}

int tok_json_bool(const cJSON *obj, const char *key, int fallback) {
  const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
  if (cJSON_IsBool(item)) return cJSON_IsTrue(item);
  return fallback;
}

int tok_json_id(const cJSON *item, int32_t *id) {
  if (!cJSON_IsNumber(item)) return 0;
  double v = item->valuedouble;
  if (v < 0 || v > INT32_MAX - 1 || v != (double)(int32_t)v) return 0;
  *id = (int32_t)v;
  return 1;
}

char *tok_strdup(const char *s, size_t len) {
  char *p = malloc(len + 1);
  if (!p) return NULL;
  memcpy(p, s, len);
  p[len] = 0;
  return p;
}

static int oom(const char *path) {
  return vkft_error_with(VKFT_ERR_NOMEM, "%s: out of host memory", path);
}

/* A Split/Replace pattern: {"String": s} or {"Regex": r}. */
static int parse_pattern(const char *path, const cJSON *obj, const char *where, const char **string,
                         const char **regex) {
  const cJSON *pattern = cJSON_GetObjectItemCaseSensitive(obj, "pattern");
  *string = tok_json_str(pattern, "String");
  *regex = tok_json_str(pattern, "Regex");
  if (!*string && !*regex)
    return vkft_error("%s: %s: \"pattern\" must be {\"String\": ...} or {\"Regex\": ...}", path,
                      where);
  return VKFT_OK;
}

static int compile_regex(const char *path, const char *pattern, pcre2_code **out) {
  int code;
  PCRE2_SIZE offset;
  *out = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP, &code,
                       &offset, NULL);
  if (!*out) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(code, msg, sizeof msg);
    return vkft_error("%s: pre_tokenizer regex does not compile at offset %zu: %s", path,
                      (size_t)offset, (const char *)msg);
  }
  /* JIT is a speed-up only: without it (unsupported CPU) the interpreter gives the same result */
  (void)pcre2_jit_compile(*out, PCRE2_JIT_COMPLETE);
  return VKFT_OK;
}

/* ---- normalizer ---- */

static void normalizer_free_fields(tok_normalizer *n) {
  free(n->a);
  free(n->b);
  for (size_t i = 0; i < n->n_children; i++) normalizer_free_fields(&n->children[i]);
  free(n->children);
}

void tok_normalizer_free(tok_normalizer *n) {
  if (!n) return;
  normalizer_free_fields(n);
  free(n);
}

int tok_parse_normalizer(const char *path, const cJSON *obj, tok_normalizer *n) {
  memset(n, 0, sizeof *n);
  const char *type = tok_json_str(obj, "type");
  if (!type) return vkft_error("%s: normalizer without \"type\"", path);
  if (!strcmp(type, "Sequence")) {
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(obj, "normalizers");
    if (!cJSON_IsArray(list))
      return vkft_error("%s: normalizer Sequence without \"normalizers\"", path);
    n->type = TOK_NORM_SEQUENCE;
    size_t count = (size_t)cJSON_GetArraySize(list);
    n->children = calloc(count ? count : 1, sizeof *n->children);
    if (!n->children) return oom(path);
    const cJSON *child;
    cJSON_ArrayForEach(child, list) {
      if (tok_parse_normalizer(path, child, &n->children[n->n_children++]) != VKFT_OK)
        return VKFT_ERR;
    }
  } else if (!strcmp(type, "NFC")) {
    n->type = TOK_NORM_NFC;
  } else if (!strcmp(type, "NFD")) {
    n->type = TOK_NORM_NFD;
  } else if (!strcmp(type, "NFKC")) {
    n->type = TOK_NORM_NFKC;
  } else if (!strcmp(type, "NFKD")) {
    n->type = TOK_NORM_NFKD;
  } else if (!strcmp(type, "Lowercase")) {
    n->type = TOK_NORM_LOWERCASE;
  } else if (!strcmp(type, "Prepend")) {
    const char *prepend = tok_json_str(obj, "prepend");
    if (!prepend) return vkft_error("%s: normalizer Prepend without \"prepend\"", path);
    n->type = TOK_NORM_PREPEND;
    n->a_len = strlen(prepend);
    if (!(n->a = tok_strdup(prepend, n->a_len))) return oom(path);
  } else if (!strcmp(type, "Replace")) {
    const char *string, *regex, *content = tok_json_str(obj, "content");
    if (parse_pattern(path, obj, "normalizer Replace", &string, &regex) != VKFT_OK) return VKFT_ERR;
    if (!string)
      return vkft_error_with(VKFT_ERR_UNSUPPORTED,
                             "%s: normalizer Replace with a Regex pattern is not supported", path);
    if (!content) return vkft_error("%s: normalizer Replace without \"content\"", path);
    n->type = TOK_NORM_REPLACE;
    n->a_len = strlen(string);
    n->b_len = strlen(content);
    if (!(n->a = tok_strdup(string, n->a_len)) || !(n->b = tok_strdup(content, n->b_len)))
      return oom(path);
  } else if (!strcmp(type, "Strip")) {
    n->type = TOK_NORM_STRIP;
    n->strip_left = tok_json_bool(obj, "strip_left", 1);
    n->strip_right = tok_json_bool(obj, "strip_right", 1);
  } else {
    return vkft_error_with(VKFT_ERR_UNSUPPORTED, "%s: normalizer type \"%s\" is not supported",
                           path, type);
  }
  return VKFT_OK;
}

/* ---- pre-tokenizer ---- */

/* The regex ByteLevel uses when use_regex is true (GPT-2's). */
static const char gpt2_regex[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

static void pretok_free_fields(tok_pretok *p) {
  pcre2_code_free(p->regex);
  free(p->literal);
  for (size_t i = 0; i < p->n_children; i++) pretok_free_fields(&p->children[i]);
  free(p->children);
}

void tok_pretok_free(tok_pretok *p) {
  if (!p) return;
  pretok_free_fields(p);
  free(p);
}

static int parse_prepend_scheme(const char *path, const cJSON *obj, int *scheme) {
  const char *s = tok_json_str(obj, "prepend_scheme");
  if (!s) {
    /* files older than tokenizers 0.14 have add_prefix_space instead */
    *scheme = tok_json_bool(obj, "add_prefix_space", 1) ? TOK_PREPEND_ALWAYS : TOK_PREPEND_NEVER;
  } else if (!strcmp(s, "always")) {
    *scheme = TOK_PREPEND_ALWAYS;
  } else if (!strcmp(s, "first")) {
    *scheme = TOK_PREPEND_FIRST;
  } else if (!strcmp(s, "never")) {
    *scheme = TOK_PREPEND_NEVER;
  } else {
    return vkft_error_with(VKFT_ERR_UNSUPPORTED,
                           "%s: Metaspace prepend_scheme \"%s\" is not supported", path, s);
  }
  return VKFT_OK;
}

static int parse_replacement(const char *path, const cJSON *obj, char *out, size_t *len) {
  const char *r = tok_json_str(obj, "replacement");
  if (!r) r = "\xE2\x96\x81"; /* U+2581 */
  uint32_t cp;
  size_t n = strlen(r);
  if (n == 0 || n > 4 || (int)vkft_utf8_decode(r, n, &cp) != (int)n)
    return vkft_error("%s: Metaspace replacement must be one character", path);
  memcpy(out, r, n);
  out[n] = 0;
  *len = n;
  return VKFT_OK;
}

int tok_parse_pretok(const char *path, const cJSON *obj, tok_pretok *p) {
  memset(p, 0, sizeof *p);
  const char *type = tok_json_str(obj, "type");
  if (!type) return vkft_error("%s: pre_tokenizer without \"type\"", path);
  if (!strcmp(type, "Sequence")) {
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(obj, "pretokenizers");
    if (!cJSON_IsArray(list))
      return vkft_error("%s: pre_tokenizer Sequence without \"pretokenizers\"", path);
    p->type = TOK_PRE_SEQUENCE;
    size_t count = (size_t)cJSON_GetArraySize(list);
    p->children = calloc(count ? count : 1, sizeof *p->children);
    if (!p->children) return oom(path);
    const cJSON *child;
    cJSON_ArrayForEach(child, list) {
      if (tok_parse_pretok(path, child, &p->children[p->n_children++]) != VKFT_OK) return VKFT_ERR;
    }
  } else if (!strcmp(type, "ByteLevel")) {
    p->type = TOK_PRE_BYTELEVEL;
    p->add_prefix_space = tok_json_bool(obj, "add_prefix_space", 1);
    p->use_regex = tok_json_bool(obj, "use_regex", 1);
    p->pattern_kind = TOK_PAT_REGEX;
    p->behavior = TOK_SPLIT_ISOLATED;
    if (p->use_regex && compile_regex(path, gpt2_regex, &p->regex) != VKFT_OK) return VKFT_ERR;
  } else if (!strcmp(type, "Split")) {
    const char *string, *regex, *behavior = tok_json_str(obj, "behavior");
    if (parse_pattern(path, obj, "pre_tokenizer Split", &string, &regex) != VKFT_OK)
      return VKFT_ERR;
    p->type = TOK_PRE_SPLIT;
    p->invert = tok_json_bool(obj, "invert", 0);
    if (!behavior) behavior = "";
    if (!strcmp(behavior, "Removed"))
      p->behavior = TOK_SPLIT_REMOVED;
    else if (!strcmp(behavior, "Isolated"))
      p->behavior = TOK_SPLIT_ISOLATED;
    else if (!strcmp(behavior, "MergedWithPrevious"))
      p->behavior = TOK_SPLIT_MERGED_PREV;
    else if (!strcmp(behavior, "MergedWithNext"))
      p->behavior = TOK_SPLIT_MERGED_NEXT;
    else if (!strcmp(behavior, "Contiguous"))
      p->behavior = TOK_SPLIT_CONTIGUOUS;
    else
      return vkft_error_with(VKFT_ERR_UNSUPPORTED, "%s: Split behavior \"%s\" is not supported",
                             path, behavior);
    if (regex) {
      p->pattern_kind = TOK_PAT_REGEX;
      if (compile_regex(path, regex, &p->regex) != VKFT_OK) return VKFT_ERR;
    } else {
      p->pattern_kind = TOK_PAT_STRING;
      p->literal_len = strlen(string);
      if (!(p->literal = tok_strdup(string, p->literal_len))) return oom(path);
    }
  } else if (!strcmp(type, "Metaspace")) {
    p->type = TOK_PRE_METASPACE;
    if (parse_replacement(path, obj, p->replacement, &p->replacement_len) != VKFT_OK ||
        parse_prepend_scheme(path, obj, &p->prepend_scheme) != VKFT_OK)
      return VKFT_ERR;
    p->split = tok_json_bool(obj, "split", 1);
  } else if (!strcmp(type, "Digits")) {
    p->type = TOK_PRE_DIGITS;
    p->pattern_kind = TOK_PAT_NUMERIC;
    p->behavior =
        tok_json_bool(obj, "individual_digits", 0) ? TOK_SPLIT_ISOLATED : TOK_SPLIT_CONTIGUOUS;
  } else {
    return vkft_error_with(VKFT_ERR_UNSUPPORTED, "%s: pre_tokenizer type \"%s\" is not supported",
                           path, type);
  }
  return VKFT_OK;
}

/* 1 if the tree contains a ByteLevel step; *last_ok is cleared if one is not the final step.
 * The model maps bytes to byte-level chars itself (so the word cache is keyed by raw bytes),
 * which is only right when nothing runs after ByteLevel. */
int tok_pretok_bytelevel(const tok_pretok *p, int is_last, int *last_ok) {
  if (p->type == TOK_PRE_BYTELEVEL) {
    if (!is_last) *last_ok = 0;
    return 1;
  }
  int found = 0;
  for (size_t i = 0; i < p->n_children; i++)
    found |= tok_pretok_bytelevel(&p->children[i], is_last && i + 1 == p->n_children, last_ok);
  return found;
}

/* ---- decoder ---- */

static void decoder_free_fields(tok_decoder *d) {
  free(d->a);
  free(d->b);
  for (size_t i = 0; i < d->n_children; i++) decoder_free_fields(&d->children[i]);
  free(d->children);
}

void tok_decoder_free(tok_decoder *d) {
  if (!d) return;
  decoder_free_fields(d);
  free(d);
}

int tok_parse_decoder(const char *path, const cJSON *obj, tok_decoder *d) {
  memset(d, 0, sizeof *d);
  const char *type = tok_json_str(obj, "type");
  if (!type) return vkft_error("%s: decoder without \"type\"", path);
  if (!strcmp(type, "Sequence")) {
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(obj, "decoders");
    if (!cJSON_IsArray(list)) return vkft_error("%s: decoder Sequence without \"decoders\"", path);
    d->type = TOK_DEC_SEQUENCE;
    size_t count = (size_t)cJSON_GetArraySize(list);
    d->children = calloc(count ? count : 1, sizeof *d->children);
    if (!d->children) return oom(path);
    const cJSON *child;
    cJSON_ArrayForEach(child, list) {
      if (tok_parse_decoder(path, child, &d->children[d->n_children++]) != VKFT_OK) return VKFT_ERR;
    }
  } else if (!strcmp(type, "ByteLevel")) {
    d->type = TOK_DEC_BYTELEVEL;
  } else if (!strcmp(type, "Metaspace")) {
    char replacement[8];
    size_t len;
    d->type = TOK_DEC_METASPACE;
    if (parse_replacement(path, obj, replacement, &len) != VKFT_OK ||
        parse_prepend_scheme(path, obj, &d->prepend_scheme) != VKFT_OK)
      return VKFT_ERR;
    d->a_len = len;
    if (!(d->a = tok_strdup(replacement, len))) return oom(path);
  } else if (!strcmp(type, "Replace")) {
    const char *string, *regex, *content = tok_json_str(obj, "content");
    if (parse_pattern(path, obj, "decoder Replace", &string, &regex) != VKFT_OK) return VKFT_ERR;
    if (!string)
      return vkft_error_with(VKFT_ERR_UNSUPPORTED,
                             "%s: decoder Replace with a Regex pattern is not supported", path);
    if (!content) return vkft_error("%s: decoder Replace without \"content\"", path);
    d->type = TOK_DEC_REPLACE;
    d->a_len = strlen(string);
    d->b_len = strlen(content);
    if (!(d->a = tok_strdup(string, d->a_len)) || !(d->b = tok_strdup(content, d->b_len)))
      return oom(path);
  } else if (!strcmp(type, "ByteFallback")) {
    d->type = TOK_DEC_BYTEFALLBACK;
  } else if (!strcmp(type, "Fuse")) {
    d->type = TOK_DEC_FUSE;
  } else if (!strcmp(type, "Strip")) {
    const char *content = tok_json_str(obj, "content");
    const cJSON *start = cJSON_GetObjectItemCaseSensitive(obj, "start");
    const cJSON *stop = cJSON_GetObjectItemCaseSensitive(obj, "stop");
    uint32_t cp;
    if (!content || !*content ||
        (int)vkft_utf8_decode(content, strlen(content), &cp) != (int)strlen(content) ||
        !cJSON_IsNumber(start) || !cJSON_IsNumber(stop) || start->valueint < 0 ||
        stop->valueint < 0)
      return vkft_error("%s: decoder Strip needs a one-character \"content\", \"start\" and "
                        "\"stop\"",
                        path);
    d->type = TOK_DEC_STRIP;
    d->a_len = strlen(content);
    if (!(d->a = tok_strdup(content, d->a_len))) return oom(path);
    d->start = start->valueint;
    d->stop = stop->valueint;
  } else {
    return vkft_error_with(VKFT_ERR_UNSUPPORTED, "%s: decoder type \"%s\" is not supported", path,
                           type);
  }
  return VKFT_OK;
}

/* ---- post-processor: reduced to prefix ids + sequence + suffix ids ---- */

static int append_ids(const char *path, int32_t **ids, size_t *n, const int32_t *add, size_t count,
                      int at_front) {
  if (count == 0) return VKFT_OK;
  int32_t *p = realloc(*ids, (*n + count + 1) * sizeof *p);
  if (!p) return oom(path);
  if (at_front) {
    memmove(p + count, p, *n * sizeof *p);
    memcpy(p, add, count * sizeof *p);
  } else {
    memcpy(p + *n, add, count * sizeof *p);
  }
  *ids = p;
  *n += count;
  return VKFT_OK;
}

/* Wrapping an already-processed sequence X in prefix P and suffix S gives P + X + S, so the
 * processors of a Sequence accumulate outward. */
static int wrap_post(const char *path, vkft_tokenizer *tok, const int32_t *prefix, size_t n_prefix,
                     const int32_t *suffix, size_t n_suffix) {
  if (append_ids(path, &tok->post_prefix, &tok->n_post_prefix, prefix, n_prefix, 1) != VKFT_OK)
    return VKFT_ERR;
  return append_ids(path, &tok->post_suffix, &tok->n_post_suffix, suffix, n_suffix, 0);
}

static int parse_template(const char *path, vkft_tokenizer *tok, const cJSON *obj) {
  const cJSON *single = cJSON_GetObjectItemCaseSensitive(obj, "single");
  const cJSON *specials = cJSON_GetObjectItemCaseSensitive(obj, "special_tokens");
  if (!cJSON_IsArray(single))
    return vkft_error("%s: TemplateProcessing without a \"single\" list", path);
  int32_t *prefix = NULL, *suffix = NULL;
  size_t n_prefix = 0, n_suffix = 0;
  int seen_sequence = 0, status = VKFT_OK;
  const cJSON *item;
  cJSON_ArrayForEach(item, single) {
    const cJSON *special = cJSON_GetObjectItemCaseSensitive(item, "SpecialToken");
    if (cJSON_GetObjectItemCaseSensitive(item, "Sequence")) {
      if (seen_sequence) {
        status = vkft_error("%s: TemplateProcessing repeats the sequence", path);
        break;
      }
      seen_sequence = 1;
      continue;
    }
    const char *name = tok_json_str(special, "id");
    const cJSON *entry = name ? cJSON_GetObjectItemCaseSensitive(specials, name) : NULL;
    const cJSON *ids = cJSON_GetObjectItemCaseSensitive(entry, "ids");
    if (!cJSON_IsArray(ids)) {
      status = vkft_error("%s: TemplateProcessing special token \"%s\" has no ids", path,
                          name ? name : "?");
      break;
    }
    const cJSON *id_item;
    cJSON_ArrayForEach(id_item, ids) {
      int32_t id;
      if (!tok_json_id(id_item, &id)) {
        status = vkft_error("%s: TemplateProcessing special token \"%s\": bad id", path, name);
        break;
      }
      status = seen_sequence ? append_ids(path, &suffix, &n_suffix, &id, 1, 0)
                             : append_ids(path, &prefix, &n_prefix, &id, 1, 0);
      if (status != VKFT_OK) break;
    }
    if (status != VKFT_OK) break;
  }
  if (status == VKFT_OK) status = wrap_post(path, tok, prefix, n_prefix, suffix, n_suffix);
  free(prefix);
  free(suffix);
  return status;
}

int tok_parse_post(const char *path, vkft_tokenizer *tok, const cJSON *obj) {
  const char *type = tok_json_str(obj, "type");
  if (!type) return vkft_error("%s: post_processor without \"type\"", path);
  if (!strcmp(type, "Sequence")) {
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(obj, "processors"), *child;
    if (!cJSON_IsArray(list))
      return vkft_error("%s: post_processor Sequence without \"processors\"", path);
    cJSON_ArrayForEach(child, list) {
      if (tok_parse_post(path, tok, child) != VKFT_OK) return VKFT_ERR;
    }
    return VKFT_OK;
  }
  if (!strcmp(type, "ByteLevel")) return VKFT_OK; /* only trims offsets */
  if (!strcmp(type, "TemplateProcessing")) return parse_template(path, tok, obj);
  if (!strcmp(type, "RobertaProcessing") || !strcmp(type, "BertProcessing")) {
    const cJSON *cls = cJSON_GetObjectItemCaseSensitive(obj, "cls");
    const cJSON *sep = cJSON_GetObjectItemCaseSensitive(obj, "sep");
    int32_t cls_id, sep_id;
    if (!tok_json_id(cJSON_GetArrayItem(cls, 1), &cls_id) ||
        !tok_json_id(cJSON_GetArrayItem(sep, 1), &sep_id))
      return vkft_error("%s: %s needs \"cls\" and \"sep\" as [token, id]", path, type);
    return wrap_post(path, tok, &cls_id, 1, &sep_id, 1);
  }
  return vkft_error_with(VKFT_ERR_UNSUPPORTED, "%s: post_processor type \"%s\" is not supported",
                         path, type);
}
