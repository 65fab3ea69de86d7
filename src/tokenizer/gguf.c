/* A tokenizer from a GGUF file's metadata (tokenizer.ggml.*): the tokenizer.json Hugging Face
 * has for that model is rebuilt as a JSON tree and loaded by tokenizer.c like any other, so
 * there is one tokenizer, and a GGUF base tokenizes exactly as its Hugging Face folder does.
 *   - "gpt2" (byte-level BPE: Llama 3, Qwen2/3, GPT-2): tokens, merges, and the pre-tokenizer
 *     named by tokenizer.ggml.pre, as the Split regex + ByteLevel pipeline of the model family's
 *     tokenizer.json (Qwen2's also normalizes to NFC, as its tokenizer.json does; llama.cpp
 *     does not). An unknown name is refused: its regex lives in llama.cpp's code, not the file.
 *   - "llama" (SentencePiece BPE with byte fallback: Llama 2, Mistral, stories260K): the legacy
 *     LlamaTokenizerFast pipeline (prepend and replace with U+2581, byte fallback, fused unk).
 *     The file has scores, not merges: the merges are derived from them the way transformers'
 *     SentencePieceExtractor does for its slow->fast conversion (every split of a token into
 *     two tokens, pieces by score, highest first; splits of one piece by the ids of their
 *     halves), which reproduces the merges of the shipped tokenizer.json files.
 * Control and unknown tokens become special added tokens, user-defined ones non-special added
 * tokens (both matched in the raw text, as transformers does); add_bos/add_eos, the special
 * ids and the chat template come from their keys. docs/GGUF.md ("GGUF bases") cites sources. */
#include "internal.h"

#include "vkft/error.h"
#include "vkft/gguf.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* llama_token_type (llama.cpp's llama-vocab.h, gguf-py's TokenType) */
enum { TYPE_NORMAL = 1, TYPE_UNKNOWN = 2, TYPE_CONTROL = 3, TYPE_USER = 4, TYPE_UNUSED = 5 };

/* the Split regexes of the tokenizer.json files llama.cpp's names stand for */
static const char *const llama3_regex =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char *const qwen2_regex =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

typedef enum { PRE_LLAMA3, PRE_QWEN2, PRE_GPT2 } pre_family;

/* tokenizer.ggml.pre names (llama.cpp's llama-vocab.cpp) of the three families vkft knows */
static const struct {
  const char *name;
  pre_family family;
} pre_names[] = {{"llama-bpe", PRE_LLAMA3},
                 {"llama3", PRE_LLAMA3},
                 {"llama-v3", PRE_LLAMA3},
                 {"qwen2", PRE_QWEN2},
                 {"gpt-2", PRE_GPT2}};

typedef struct gguf_vocab {
  const vkft_gguf *g;
  const char *path;
  int64_t n;
  char **text; /* NUL-terminated copies */
  int32_t *type;
  float *score; /* SentencePiece models */
  int spm;      /* tokenizer.ggml.model "llama" */
  pre_family pre;
} gguf_vocab;

static uint32_t le32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* a string key's value as a NUL-terminated copy (NULL with an error) */
static char *key_str(const vkft_gguf *g, const char *key) {
  const char *s;
  uint64_t len;
  if (vkft_gguf_get_str(g, key, &s, &len) != VKFT_OK) return NULL;
  if (memchr(s, 0, (size_t)len)) {
    vkft_error("%s: key \"%s\" holds a NUL byte", vkft_gguf_path(g), key);
    return NULL;
  }
  char *copy = tok_strdup(s, (size_t)len);
  if (!copy) vkft_error_nomem();
  return copy;
}

/* a bool key; fallback when absent */
static int key_bool(const vkft_gguf *g, const char *key, int fallback, int *out) {
  int64_t v;
  if (vkft_gguf_find_key(g, key) < 0) return *out = fallback, VKFT_OK;
  if (vkft_gguf_get_int(g, key, &v) != VKFT_OK) return VKFT_ERR;
  *out = v != 0;
  return VKFT_OK;
}

/* tokenizer.ggml.<which>_token_id inside the vocabulary; -1 when absent or "none" */
static int32_t special_id(const gguf_vocab *v, const char *which) {
  char key[64];
  int64_t id;
  snprintf(key, sizeof key, "tokenizer.ggml.%s_token_id", which);
  if (vkft_gguf_find_key(v->g, key) < 0 || vkft_gguf_get_int(v->g, key, &id) != VKFT_OK) return -1;
  return id >= 0 && id < v->n ? (int32_t)id : -1;
}

/* tokens, token types and scores (the arrays must cover every token) */
static int read_arrays(gguf_vocab *v) {
  vkft_gguf_value arr, e;
  vkft_gguf_iter it;
  if (vkft_gguf_get_array(v->g, "tokenizer.ggml.tokens", &arr) != VKFT_OK) return VKFT_ERR;
  if (arr.elem_type != VKFT_GGUF_STRING || arr.count == 0 || arr.count > 2147483647u)
    return vkft_error("%s: tokenizer.ggml.tokens is not a list of strings", v->path);
  v->n = (int64_t)arr.count;
  v->text = calloc((size_t)v->n, sizeof *v->text);
  v->type = malloc((size_t)v->n * sizeof *v->type);
  v->score = calloc((size_t)v->n, sizeof *v->score);
  if (!v->text || !v->type || !v->score) return vkft_error_nomem();
  vkft_gguf_array_begin(&arr, &it);
  for (int64_t i = 0; vkft_gguf_array_next(&it, &e); i++) {
    const char *s;
    uint64_t len;
    vkft_gguf_value_str(&e, &s, &len);
    if (len == 0 || memchr(s, 0, (size_t)len))
      return vkft_error("%s: token %lld is empty or holds a NUL byte", v->path, (long long)i);
    if (!(v->text[i] = tok_strdup(s, (size_t)len))) return vkft_error_nomem();
    v->type[i] = TYPE_NORMAL;
  }
  static const char *const keys[2] = {"tokenizer.ggml.token_type", "tokenizer.ggml.scores"};
  for (int k = 0; k < 2; k++) {
    if (vkft_gguf_find_key(v->g, keys[k]) < 0) continue; /* all normal / all 0 */
    if (vkft_gguf_get_array(v->g, keys[k], &arr) != VKFT_OK) return VKFT_ERR;
    vkft_gguf_type want = k ? VKFT_GGUF_FLOAT32 : VKFT_GGUF_INT32;
    if (arr.elem_type != want || arr.count < (uint64_t)v->n)
      return vkft_error("%s: %s is not %lld %s values", v->path, keys[k], (long long)v->n,
                        vkft_gguf_type_name(want));
    for (int64_t i = 0; i < v->n; i++) {
      uint32_t bits = le32(arr.data + 4 * i);
      if (k)
        memcpy(&v->score[i], &bits, 4);
      else
        v->type[i] = (int32_t)bits;
    }
  }
  return VKFT_OK;
}

/* ---- the pieces of tokenizer.json ---- */

static cJSON *typed(const char *type) {
  cJSON *o = cJSON_CreateObject();
  if (o && !cJSON_AddStringToObject(o, "type", type)) {
    cJSON_Delete(o);
    return NULL;
  }
  return o;
}

/* {"type": "Replace", "pattern": {"String": from}, "content": to} */
static cJSON *replace(const char *from, const char *to) {
  cJSON *o = typed("Replace"), *pattern = cJSON_AddObjectToObject(o, "pattern");
  if (!pattern || !cJSON_AddStringToObject(pattern, "String", from) ||
      !cJSON_AddStringToObject(o, "content", to)) {
    cJSON_Delete(o);
    return NULL;
  }
  return o;
}

/* a {"type": "Sequence", key: [items...]} (NULL items make it fail) */
static cJSON *sequence(const char *key, cJSON **items, int n) {
  cJSON *o = typed("Sequence"), *list = cJSON_AddArrayToObject(o, key);
  int ok = list != NULL;
  for (int i = 0; i < n; i++)
    if (!items[i] || !ok || !cJSON_AddItemToArray(list, items[i])) ok = 0, cJSON_Delete(items[i]);
  if (!ok) cJSON_Delete(o);
  return ok ? o : NULL;
}

static cJSON *byte_level(int use_regex) {
  cJSON *o = typed("ByteLevel");
  if (o && (!cJSON_AddBoolToObject(o, "add_prefix_space", 0) ||
            !cJSON_AddBoolToObject(o, "trim_offsets", 1) ||
            !cJSON_AddBoolToObject(o, "use_regex", use_regex))) {
    cJSON_Delete(o);
    return NULL;
  }
  return o;
}

static cJSON *pre_tokenizer(const gguf_vocab *v) {
  if (v->spm) return cJSON_CreateNull();
  if (v->pre == PRE_GPT2) return byte_level(1);
  cJSON *split = typed("Split"), *pattern = cJSON_AddObjectToObject(split, "pattern");
  if (!pattern ||
      !cJSON_AddStringToObject(pattern, "Regex",
                               v->pre == PRE_QWEN2 ? qwen2_regex : llama3_regex) ||
      !cJSON_AddStringToObject(split, "behavior", "Isolated") ||
      !cJSON_AddBoolToObject(split, "invert", 0)) {
    cJSON_Delete(split);
    split = NULL;
  }
  cJSON *items[2] = {split, byte_level(0)};
  return sequence("pretokenizers", items, 2);
}

static cJSON *normalizer(const gguf_vocab *v, int space_prefix) {
  if (!v->spm) return v->pre == PRE_QWEN2 ? typed("NFC") : cJSON_CreateNull();
  cJSON *prepend = typed("Prepend");
  if (prepend && !cJSON_AddStringToObject(prepend, "prepend", "\xe2\x96\x81")) {
    cJSON_Delete(prepend);
    prepend = NULL;
  }
  cJSON *items[2] = {prepend, replace(" ", "\xe2\x96\x81")};
  return space_prefix ? sequence("normalizers", items, 2) : (cJSON_Delete(items[0]), items[1]);
}

static cJSON *decoder(const gguf_vocab *v, int space_prefix) {
  if (!v->spm) return byte_level(1);
  cJSON *strip = typed("Strip");
  if (strip && (!cJSON_AddStringToObject(strip, "content", " ") ||
                !cJSON_AddNumberToObject(strip, "start", space_prefix ? 1 : 0) ||
                !cJSON_AddNumberToObject(strip, "stop", 0))) {
    cJSON_Delete(strip);
    strip = NULL;
  }
  cJSON *items[4] = {replace("\xe2\x96\x81", " "), typed("ByteFallback"), typed("Fuse"), strip};
  return sequence("decoders", items, 4);
}

/* ---- SentencePiece merges from scores (transformers' SentencePieceExtractor) ---- */

typedef struct spm_merge {
  int32_t left, right;
  float score;
  int64_t order; /* position before sorting: the sort is stable */
} spm_merge;

static int by_score(const void *pa, const void *pb) {
  const spm_merge *a = pa, *b = pb;
  if (a->score != b->score) return a->score > b->score ? -1 : 1;
  return a->order < b->order ? -1 : a->order > b->order;
}

static int add_pair(cJSON *merges, const char *left, const char *right) {
  cJSON *pair = cJSON_CreateArray();
  if (!pair || !cJSON_AddItemToArray(merges, pair)) return cJSON_Delete(pair), VKFT_ERR;
  cJSON *l = cJSON_CreateString(left), *r = cJSON_CreateString(right);
  if (!cJSON_AddItemToArray(pair, l)) return cJSON_Delete(l), cJSON_Delete(r), VKFT_ERR;
  if (!cJSON_AddItemToArray(pair, r)) return cJSON_Delete(r), VKFT_ERR;
  return VKFT_OK;
}

/* For each token (in id order) every split into two tokens at a character boundary, ordered
 * by the halves' ids; then all of them by the token's score, highest first. */
static int spm_merges(const gguf_vocab *v, const tok_strmap *ids, cJSON *merges) {
  spm_merge *list = NULL;
  size_t n = 0, cap = 0;
  int status = VKFT_OK;
  for (int64_t id = 0; status == VKFT_OK && id < v->n; id++) {
    if (v->type[id] == TYPE_UNUSED) continue;
    const char *t = v->text[id];
    size_t len = strlen(t), first = n;
    for (size_t at = 1; at < len; at++) {
      if (((unsigned char)t[at] & 0xC0) == 0x80) continue; /* inside a character */
      int32_t l = tok_strmap_get(ids, t, at), r = tok_strmap_get(ids, t + at, len - at);
      if (l < 0 || r < 0) continue;
      if (vkft_grow((void **)&list, &cap, n + 1, sizeof *list) != VKFT_OK) {
        status = VKFT_ERR;
        break;
      }
      list[n++] = (spm_merge){l, r, v->score[id], 0};
    }
    /* this token's splits by (left id, right id): a few, insertion sort */
    for (size_t i = first + 1; i < n; i++)
      for (size_t j = i;
           j > first && (list[j].left < list[j - 1].left ||
                         (list[j].left == list[j - 1].left && list[j].right < list[j - 1].right));
           j--) {
        spm_merge tmp = list[j];
        list[j] = list[j - 1], list[j - 1] = tmp;
      }
  }
  for (size_t i = 0; i < n; i++) list[i].order = (int64_t)i;
  if (status == VKFT_OK && n) qsort(list, n, sizeof *list, by_score);
  for (size_t i = 0; status == VKFT_OK && i < n; i++)
    if (add_pair(merges, v->text[list[i].left], v->text[list[i].right]) != VKFT_OK)
      status = vkft_error_nomem();
  free(list);
  return status;
}

/* ---- the model: vocabulary, merges, added tokens ---- */

static int in_model_vocab(const gguf_vocab *v, int64_t id) {
  int32_t t = v->type[id];
  if (t == TYPE_UNUSED) return 0;
  /* SentencePiece pieces are all in the model (transformers' converter keeps the special ones
   * there too); byte-level models keep their added tokens out of it */
  return v->spm || !(t == TYPE_CONTROL || t == TYPE_USER || t == TYPE_UNKNOWN);
}

static int build_model(const gguf_vocab *v, cJSON *root) {
  cJSON *model = cJSON_AddObjectToObject(root, "model");
  cJSON *vocab = model ? cJSON_AddObjectToObject(model, "vocab") : NULL;
  cJSON *merges = model ? cJSON_AddArrayToObject(model, "merges") : NULL;
  if (!vocab || !merges || !cJSON_AddStringToObject(model, "type", "BPE"))
    return vkft_error_nomem();
  tok_strmap ids = {0};
  if (tok_strmap_init(&ids, (size_t)v->n) != VKFT_OK) return vkft_error_nomem();
  int status = VKFT_OK;
  for (int64_t id = 0; status == VKFT_OK && id < v->n; id++) {
    if (!in_model_vocab(v, id)) continue;
    size_t before = ids.count, len = strlen(v->text[id]);
    if (tok_strmap_put(&ids, v->text[id], len, (int32_t)id) != VKFT_OK)
      status = vkft_error_nomem();
    else if (ids.count == before)
      status = vkft_error("%s: token %lld \"%.40s\" is in the vocabulary twice", v->path,
                          (long long)id, v->text[id]);
    else if (!cJSON_AddNumberToObject(vocab, v->text[id], (double)id))
      status = vkft_error_nomem();
  }
  if (status == VKFT_OK && v->spm) {
    int32_t unk = special_id(v, "unknown");
    for (int64_t id = 0; unk < 0 && id < v->n; id++)
      if (v->type[id] == TYPE_UNKNOWN) unk = (int32_t)id;
    if ((unk >= 0 && !cJSON_AddStringToObject(model, "unk_token", v->text[unk])) ||
        !cJSON_AddBoolToObject(model, "byte_fallback", 1) ||
        !cJSON_AddBoolToObject(model, "fuse_unk", 1))
      status = vkft_error_nomem();
    if (status == VKFT_OK) status = spm_merges(v, &ids, merges);
  } else if (status == VKFT_OK) {
    /* llama.cpp's llama3 pre-tokenizers look a whole word up before merging, as Llama 3's
     * tokenizer.json asks with ignore_merges */
    if (!cJSON_AddBoolToObject(model, "ignore_merges", v->pre == PRE_LLAMA3))
      status = vkft_error_nomem();
    vkft_gguf_value arr, e;
    vkft_gguf_iter it;
    if (status == VKFT_OK && vkft_gguf_get_array(v->g, "tokenizer.ggml.merges", &arr) != VKFT_OK)
      status = vkft_error_prefix("a gpt2 tokenizer needs its merges");
    if (status == VKFT_OK && arr.elem_type != VKFT_GGUF_STRING)
      status = vkft_error("%s: tokenizer.ggml.merges is not a list of strings", v->path);
    vkft_gguf_array_begin(&arr, &it);
    for (int64_t i = 0; status == VKFT_OK && vkft_gguf_array_next(&it, &e); i++) {
      const char *s;
      uint64_t len;
      vkft_gguf_value_str(&e, &s, &len);
      /* "a b", split at the first space after the first byte (llama.cpp's reading) */
      const char *space = len > 1 ? memchr(s + 1, ' ', (size_t)len - 1) : NULL;
      if (!space || memchr(s, 0, (size_t)len)) {
        status =
            vkft_error("%s: tokenizer.ggml.merges[%lld] is not \"a b\"", v->path, (long long)i);
        break;
      }
      char *left = tok_strdup(s, (size_t)(space - s));
      char *right = tok_strdup(space + 1, (size_t)(len - (uint64_t)(space + 1 - s)));
      if (!left || !right || add_pair(merges, left, right) != VKFT_OK) status = vkft_error_nomem();
      free(left), free(right);
    }
  }
  tok_strmap_free(&ids);
  return status;
}

static int build_added(const gguf_vocab *v, cJSON *root) {
  cJSON *added = cJSON_AddArrayToObject(root, "added_tokens");
  if (!added) return vkft_error_nomem();
  for (int64_t id = 0; id < v->n; id++) {
    int32_t t = v->type[id];
    if (t != TYPE_CONTROL && t != TYPE_USER && t != TYPE_UNKNOWN) continue;
    cJSON *e = cJSON_CreateObject();
    if (!e || !cJSON_AddItemToArray(added, e) || !cJSON_AddNumberToObject(e, "id", (double)id) ||
        !cJSON_AddStringToObject(e, "content", v->text[id]) ||
        !cJSON_AddBoolToObject(e, "special", t != TYPE_USER) ||
        !cJSON_AddBoolToObject(e, "normalized", 0))
      return vkft_error_nomem();
  }
  return VKFT_OK;
}

static int parse_pre(gguf_vocab *v) {
  if (v->spm) return VKFT_OK; /* SentencePiece models have no pre-tokenizer */
  char *pre = vkft_gguf_find_key(v->g, "tokenizer.ggml.pre") >= 0
                  ? key_str(v->g, "tokenizer.ggml.pre")
                  : NULL;
  int found = 0;
  for (size_t i = 0; pre && i < sizeof pre_names / sizeof pre_names[0]; i++)
    if (!strcmp(pre, pre_names[i].name)) v->pre = pre_names[i].family, found = 1;
  int status = found ? VKFT_OK
                     : vkft_error_with(VKFT_ERR_UNSUPPORTED,
                                       "%s: tokenizer.ggml.pre \"%s\" is not a pre-tokenizer vkft "
                                       "knows (llama-bpe/llama3/llama-v3, qwen2, gpt-2)",
                                       v->path, pre ? pre : "(missing)");
  free(pre);
  return status;
}

/* BOS/EOS and what add_special adds: the keys, else llama.cpp's defaults (SentencePiece and
 * Llama 3 models add a BOS) */
static int set_specials(const gguf_vocab *v, vkft_tokenizer *tok) {
  int add_bos, add_eos;
  if (key_bool(v->g, "tokenizer.ggml.add_bos_token", v->spm || v->pre == PRE_LLAMA3, &add_bos) ||
      key_bool(v->g, "tokenizer.ggml.add_eos_token", 0, &add_eos))
    return VKFT_ERR;
  int32_t bos = special_id(v, "bos"), eos = special_id(v, "eos");
  if ((add_bos && bos < 0) || (add_eos && eos < 0))
    return vkft_error("%s: tokenizer.ggml.add_%s_token without a %s token id", v->path,
                      add_bos && bos < 0 ? "bos" : "eos", add_bos && bos < 0 ? "bos" : "eos");
  if ((bos >= 0 && !(tok->bos_str = tok_strdup(v->text[bos], strlen(v->text[bos])))) ||
      (eos >= 0 && !(tok->eos_str = tok_strdup(v->text[eos], strlen(v->text[eos])))))
    return vkft_error_nomem();
  tok->n_post_prefix = tok->n_post_suffix = 0;
  if (add_bos) {
    if (!(tok->post_prefix = malloc(sizeof *tok->post_prefix))) return vkft_error_nomem();
    tok->post_prefix[tok->n_post_prefix++] = bos;
  }
  if (add_eos) {
    if (!(tok->post_suffix = malloc(sizeof *tok->post_suffix))) return vkft_error_nomem();
    tok->post_suffix[tok->n_post_suffix++] = eos;
  }
  if (vkft_gguf_find_key(v->g, "tokenizer.chat_template") >= 0 &&
      !(tok->chat_template = key_str(v->g, "tokenizer.chat_template")))
    return VKFT_ERR;
  return VKFT_OK;
}

static int build(gguf_vocab *v, vkft_tokenizer *tok) {
  char *model = key_str(v->g, "tokenizer.ggml.model");
  if (!model) return vkft_error_prefix("GGUF tokenizer");
  v->spm = !strcmp(model, "llama");
  int status = v->spm || !strcmp(model, "gpt2")
                   ? VKFT_OK
                   : vkft_error_with(VKFT_ERR_UNSUPPORTED,
                                     "%s: tokenizer.ggml.model \"%s\" is not supported (llama: "
                                     "SentencePiece BPE, gpt2: byte-level BPE)",
                                     v->path, model);
  free(model);
  int space_prefix = 1;
  if (status == VKFT_OK) status = parse_pre(v);
  if (status == VKFT_OK) status = read_arrays(v);
  if (status == VKFT_OK)
    status = key_bool(v->g, "tokenizer.ggml.add_space_prefix", 1, &space_prefix);
  cJSON *root = status == VKFT_OK ? cJSON_CreateObject() : NULL;
  if (status == VKFT_OK && !root) status = vkft_error_nomem();
  if (status == VKFT_OK) status = build_model(v, root);
  if (status == VKFT_OK) status = build_added(v, root);
  cJSON *parts[3] = {status == VKFT_OK ? normalizer(v, space_prefix) : NULL,
                     status == VKFT_OK ? pre_tokenizer(v) : NULL,
                     status == VKFT_OK ? decoder(v, space_prefix) : NULL};
  static const char *const names[3] = {"normalizer", "pre_tokenizer", "decoder"};
  for (int i = 0; i < 3; i++)
    if (status == VKFT_OK && (!parts[i] || !cJSON_AddItemToObject(root, names[i], parts[i]))) {
      status = vkft_error_nomem();
      for (int k = i + 1; k < 3; k++) cJSON_Delete(parts[k]);
      if (parts[i]) cJSON_Delete(parts[i]);
      break;
    }
  if (status == VKFT_OK) status = tok_load_json(tok, root);
  cJSON_Delete(root);
  if (status == VKFT_OK) status = set_specials(v, tok);
  return status;
}

int tok_load_gguf(vkft_tokenizer *tok, const char *path) {
  vkft_gguf *g;
  if (vkft_gguf_open(path, &g) != VKFT_OK) return VKFT_ERR;
  gguf_vocab v = {.g = g, .path = vkft_gguf_path(g)};
  int status = build(&v, tok);
  for (int64_t i = 0; v.text && i < v.n; i++) free(v.text[i]);
  free(v.text), free(v.type), free(v.score);
  vkft_gguf_close(g);
  return status;
}
