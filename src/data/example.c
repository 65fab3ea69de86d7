/* Samples to examples: renders chats through the chat template, finds the assistant spans in
 * the render from prefix renders (or by locating the reply where a template rewrites earlier
 * turns), tokenizes the render once and labels the tokens whose first byte lies in a span;
 * text and prompt/completion records get the post-processor's BOS and a trained EOS; then
 * right truncation to max_len. The rules are stated in include/vkft/dataset.h. */
#include "internal.h"

#include "vkft/error.h"
#include "vkft/platform.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static int template_index(const data_builder *b, const data_sample *s) {
  return b->fallback_template && s->format == VKFT_FORMAT_ALPACA;
}

int data_render_messages(const data_builder *b, const data_sample *s, const cJSON *messages,
                         const cJSON *kwargs, int gen, char **out, size_t *len) {
  if (b->template_problem) return vkft_error("%s", b->template_problem);
  cJSON *ctx = NULL;
  vkft_chat_inputs in = {.messages = messages,
                         .tools = s->tools,
                         .add_generation_prompt = gen,
                         .special_tokens = b->context,
                         .kwargs = kwargs};
  int rc = vkft_chat_template_context(&in, &ctx);
  if (rc == VKFT_OK) rc = vkft_chat_template_render(b->tmpl[template_index(b, s)], ctx, out, len);
  cJSON_Delete(ctx);
  return rc;
}

/* Renders messages[:k] (references, no copies) with the builder's special tokens, as
 * apply_chat_template does (vkft_chat_template_context). */
static int render_prefix(const data_builder *b, const data_sample *s, size_t k, int gen, char **out,
                         size_t *len) {
  cJSON *msgs = cJSON_CreateArray();
  int rc = msgs ? VKFT_OK : vkft_error_nomem();
  size_t i = 0;
  for (cJSON *m = s->messages->child; rc == VKFT_OK && m && i < k; m = m->next, i++)
    if (!cJSON_AddItemReferenceToArray(msgs, m)) rc = vkft_error_nomem();
  if (rc == VKFT_OK) rc = data_render_messages(b, s, msgs, NULL, gen, out, len);
  cJSON_Delete(msgs);
  return rc;
}

static int is_prefix(const char *p, size_t plen, const char *full, size_t len) {
  return plen <= len && memcmp(p, full, plen) == 0;
}

static size_t find(const char *hay, size_t len, size_t from, const char *needle, size_t n) {
  if (n == 0 || from > len || len - from < n) return SIZE_MAX;
  for (size_t i = from; i + n <= len; i++)
    if (hay[i] == needle[0] && memcmp(hay + i, needle, n) == 0) return i;
  return SIZE_MAX;
}

/* Finds the reply text c in render from `from`, stripped of surrounding whitespace (templates
 * often strip replies); failing that, the part after its last "</think>" (templates that move
 * or drop reasoning). Sets *at and *n. */
static int find_content(const char *render, size_t len, size_t from, const char *c, size_t *at,
                        size_t *n) {
  for (int pass = 0; pass < 2; pass++) {
    const char *p = c;
    if (pass == 1) {
      const char *think = NULL;
      for (const char *q = strstr(c, "</think>"); q; q = strstr(q + 1, "</think>")) think = q;
      if (!think) return VKFT_ERR;
      p = think + 8;
    }
    while (is_space(*p)) p++;
    size_t k = strlen(p);
    while (k && is_space(p[k - 1])) k--;
    if (k == 0) continue;
    *at = find(render, len, from, p, k);
    *n = k;
    if (*at != SIZE_MAX) return VKFT_OK;
  }
  return VKFT_ERR;
}

/* Where a reply lies when prefix renders do not give it: its content after the previous span
 * (or after its known start), then on to the end-of-turn text that follows. */
static int locate_reply(const char *eot, const cJSON *msg, const char *render, size_t len,
                        size_t from, size_t *start, size_t *end) {
  const cJSON *content = cJSON_GetObjectItemCaseSensitive(msg, "content");
  const char *c = cJSON_IsString(content) ? content->valuestring : "";
  size_t content_end = *start != SIZE_MAX ? *start : from, at, n;
  if (find_content(render, len, content_end, c, &at, &n) == VKFT_OK) {
    if (*start == SIZE_MAX) *start = at;
    content_end = at + n;
  } else if (*start == SIZE_MAX) {
    return VKFT_ERR;
  }
  size_t eot_n = strlen(eot);
  at = eot_n ? find(render, len, content_end, eot, eot_n) : SIZE_MAX;
  *end = at != SIZE_MAX ? at + eot_n : content_end;
  return *end > *start ? VKFT_OK : VKFT_ERR;
}

int data_chat_spans(const data_builder *b, const data_sample *s, char **render, size_t *len,
                    size_t **spans, size_t *n_spans) {
  *render = NULL;
  *spans = NULL;
  *n_spans = 0;
  if (render_prefix(b, s, s->n_messages, 0, render, len)) return VKFT_ERR;
  const char *full = *render;
  size_t n_trained = 0;
  for (size_t i = 0; i < s->n_messages; i++) n_trained += s->trained[i];
  if (b->train_on == VKFT_TRAIN_ON_ALL || n_trained == 0) return VKFT_OK;
  size_t *sp = malloc(2 * n_trained * sizeof *sp);
  if (!sp) return vkft_error_nomem();
  size_t prev_end = 0, ns = 0, i = 0;
  for (const cJSON *msg = s->messages->child; msg; msg = msg->next, i++) {
    if (!s->trained[i]) continue;
    size_t start = SIZE_MAX, end = SIZE_MAX;
    char *p = NULL;
    size_t plen = 0;
    /* messages[:i] + generation prompt: the reply starts where that render ends. */
    if (render_prefix(b, s, i, 1, &p, &plen) == VKFT_OK && is_prefix(p, plen, full, *len) &&
        plen >= prev_end)
      start = plen;
    free(p);
    p = NULL;
    /* messages[:i+1]: the reply ends where that render ends, less trailing whitespace. */
    if (start != SIZE_MAX && render_prefix(b, s, i + 1, 0, &p, &plen) == VKFT_OK &&
        is_prefix(p, plen, full, *len) && plen > start) {
      end = plen;
      while (end > start + 1 && is_space(full[end - 1])) end--;
    }
    free(p);
    vkft_error_clear();
    if (end == SIZE_MAX &&
        locate_reply(b->eot_text[template_index(b, s)], msg, full, *len, prev_end, &start, &end)) {
      free(sp);
      free(*render);
      *render = NULL;
      return vkft_error("cannot find assistant message %zu in the chat template's render", i);
    }
    sp[2 * ns] = start;
    sp[2 * ns + 1] = end;
    ns++;
    prev_end = end;
  }
  *spans = sp;
  *n_spans = ns;
  return VKFT_OK;
}

/* Labels, truncation and counts, shared by every path. */
static void finish(const data_builder *b, vkft_example *ex, size_t n) {
  ex->full_len = (uint32_t)n;
  if (n > 0) ex->labels[0] = VKFT_LABEL_IGNORE; /* never a target; keeps packed rows apart */
  ex->len = (uint32_t)(n > (size_t)b->max_len ? (size_t)b->max_len : n);
  ex->n_trained = 0;
  for (uint32_t i = 0; i < ex->len; i++) ex->n_trained += ex->labels[i] != VKFT_LABEL_IGNORE;
  ex->status = ex->n_trained ? VKFT_EXAMPLE_OK : VKFT_EXAMPLE_EMPTY;
}

static int alloc_example(vkft_example *ex, size_t n) {
  ex->input_ids = malloc((n ? n : 1) * sizeof *ex->input_ids);
  ex->labels = malloc((n ? n : 1) * sizeof *ex->labels);
  if (!ex->input_ids || !ex->labels) return vkft_error_nomem();
  return VKFT_OK;
}

static int build_chat(const data_builder *b, const data_sample *s, vkft_example *ex) {
  char *render;
  size_t len, *spans, n_spans;
  if (b->template_problem) return vkft_error("%s", b->template_problem);
  if (data_chat_spans(b, s, &render, &len, &spans, &n_spans)) return VKFT_ERR;
  int32_t *body = NULL;
  size_t n_body = 0;
  int rc = vkft_tokenizer_encode(b->tok, render, len, 0, &body, &n_body);
  size_t pre = b->fallback_template ? b->n_prefix : 0;
  size_t n = pre + n_body;
  uint32_t *offsets = rc ? NULL : malloc((n_body ? n_body : 1) * sizeof *offsets);
  if (rc == VKFT_OK && !offsets) rc = vkft_error_nomem();
  if (rc == VKFT_OK) rc = alloc_example(ex, n);
  if (rc == VKFT_OK) {
    data_token_offsets(b->tok, render, len, body, n_body, offsets);
    memcpy(ex->input_ids, b->prefix_ids, pre * sizeof *ex->input_ids);
    memcpy(ex->input_ids + pre, body, n_body * sizeof *body);
    for (size_t i = 0; i < pre; i++) ex->labels[i] = VKFT_LABEL_IGNORE;
    size_t k = 0;
    for (size_t t = 0; t < n_body; t++) {
      int trained = b->train_on == VKFT_TRAIN_ON_ALL;
      while (k < n_spans && spans[2 * k + 1] <= offsets[t]) k++;
      if (k < n_spans && offsets[t] >= spans[2 * k]) trained = 1;
      ex->labels[pre + t] = trained ? body[t] : VKFT_LABEL_IGNORE;
    }
    finish(b, ex, n);
  }
  free(offsets);
  free(body);
  free(spans);
  free(render);
  return rc;
}

/* text and prompt/completion strings: prefix + encode(prompt + completion) + suffix + EOS. */
static int build_text(const data_builder *b, const data_sample *s, vkft_example *ex) {
  size_t len = s->prompt_len + s->completion_len;
  char *text = malloc(len + 1);
  if (!text) return vkft_error_nomem();
  memcpy(text, s->prompt, s->prompt_len);
  memcpy(text + s->prompt_len, s->completion, s->completion_len);
  text[len] = 0;
  int32_t *body = NULL;
  size_t n_body = 0;
  int rc = vkft_tokenizer_encode(b->tok, text, len, 0, &body, &n_body);
  int add_eos = b->eos_id >= 0 && !(b->n_suffix && b->suffix_ids[b->n_suffix - 1] == b->eos_id);
  size_t n = b->n_prefix + n_body + b->n_suffix + (size_t)add_eos;
  uint32_t *offsets = rc ? NULL : malloc((n_body ? n_body : 1) * sizeof *offsets);
  if (rc == VKFT_OK && !offsets) rc = vkft_error_nomem();
  if (rc == VKFT_OK) rc = alloc_example(ex, n);
  if (rc == VKFT_OK) {
    int all = b->train_on == VKFT_TRAIN_ON_ALL || s->format == VKFT_FORMAT_TEXT;
    if (!all) data_token_offsets(b->tok, text, len, body, n_body, offsets);
    size_t t = 0;
    for (size_t i = 0; i < b->n_prefix; i++, t++) {
      ex->input_ids[t] = b->prefix_ids[i];
      ex->labels[t] = all ? b->prefix_ids[i] : VKFT_LABEL_IGNORE;
    }
    for (size_t i = 0; i < n_body; i++, t++) {
      ex->input_ids[t] = body[i];
      ex->labels[t] = all || offsets[i] >= s->prompt_len ? body[i] : VKFT_LABEL_IGNORE;
    }
    for (size_t i = 0; i < b->n_suffix; i++, t++)
      ex->input_ids[t] = ex->labels[t] = b->suffix_ids[i];
    if (add_eos) ex->input_ids[t] = ex->labels[t] = b->eos_id;
    finish(b, ex, n);
  }
  free(offsets);
  free(body);
  free(text);
  return rc;
}

static int build_tokens(const data_builder *b, const data_sample *s, vkft_example *ex) {
  /* the model's embedding rows when given (they may outnumber the tokenizer's tokens) */
  size_t vocab = b->vocab_size > 0 ? (size_t)b->vocab_size
                 : b->tok          ? vkft_tokenizer_vocab_size(b->tok)
                                   : (size_t)INT32_MAX;
  for (size_t i = 0; i < s->n_ids; i++) {
    if ((size_t)s->ids[i] >= vocab)
      return vkft_error("\"input_ids\"[%zu] = %d is outside the vocabulary (%zu ids)", i, s->ids[i],
                        vocab);
    if (s->labels && s->labels[i] != VKFT_LABEL_IGNORE && (size_t)s->labels[i] >= vocab)
      return vkft_error("\"labels\"[%zu] = %d is outside the vocabulary (%zu ids)", i, s->labels[i],
                        vocab);
  }
  if (alloc_example(ex, s->n_ids)) return VKFT_ERR;
  memcpy(ex->input_ids, s->ids, s->n_ids * sizeof *s->ids);
  int all = b->train_on == VKFT_TRAIN_ON_ALL || !s->labels;
  for (size_t i = 0; i < s->n_ids; i++) ex->labels[i] = all ? s->ids[i] : s->labels[i];
  finish(b, ex, s->n_ids);
  return VKFT_OK;
}

int data_build_example(const data_builder *b, const data_sample *s, vkft_example *ex) {
  int rc;
  if (s->format == VKFT_FORMAT_TOKENS)
    rc = build_tokens(b, s, ex);
  else if (s->chat)
    rc = build_chat(b, s, ex);
  else
    rc = build_text(b, s, ex);
  if (rc) {
    free(ex->input_ids);
    free(ex->labels);
    ex->input_ids = ex->labels = NULL;
    ex->len = ex->full_len = ex->n_trained = 0;
    ex->status = VKFT_EXAMPLE_BAD;
  }
  return rc;
}

/* ---- the builder ---- */

static int file_in(const char *dir, const char *name, char *path, size_t cap) {
  snprintf(path, cap, "%s/%s", dir, name);
  return vkft_file_exists(path);
}

/* An integer field of config.json (or of its text_config), or 0. */
static int64_t model_config_int(const char *model_dir, const char *key) {
  char path[1024];
  if (!model_dir || !vkft_is_dir(model_dir) ||
      !file_in(model_dir, "config.json", path, sizeof path))
    return 0;
  char *data;
  size_t size;
  if (vkft_file_read(path, &data, &size)) return 0;
  cJSON *cfg = cJSON_ParseWithLength(data, size);
  free(data);
  const cJSON *m = cJSON_GetObjectItemCaseSensitive(cfg, key);
  const cJSON *text = cJSON_GetObjectItemCaseSensitive(cfg, "text_config");
  if (!m && text) m = cJSON_GetObjectItemCaseSensitive(text, key);
  int64_t v = cJSON_IsNumber(m) && m->valuedouble > 0 && m->valuedouble < 2147483648.0
                  ? (int64_t)m->valuedouble
                  : 0;
  cJSON_Delete(cfg);
  return v;
}

static int load_template(data_builder *b, const vkft_dataset_desc *d) {
  const char *name = d->template_name;
  if (name && *name) {
    const char *src = vkft_chat_template_builtin(name);
    if (src) return vkft_chat_template_parse(src, name, &b->tmpl[0]);
    if (vkft_file_exists(name) || vkft_is_dir(name))
      return vkft_chat_template_load(name, NULL, &b->tmpl[0]);
    return vkft_error("template \"%s\": not a built-in name (chatml, llama2, llama3, "
                      "mistral-v1, mistral-v3, gemma, zephyr, phi3, alpaca), a .jinja file or a "
                      "model folder",
                      name);
  }
  char path[1024];
  /* a chat_template that is there but unusable fails every chat record (never a silent ChatML
   * fallback); text records do not need it */
  b->template_problem = vkft_tokenizer_chat_template_problem(b->tok);
  if (b->template_problem) return VKFT_OK;
  int has_own = vkft_tokenizer_chat_template(b->tok) != NULL ||
                (d->model_dir && vkft_is_dir(d->model_dir) &&
                 file_in(d->model_dir, "chat_template.jinja", path, sizeof path));
  if (has_own && vkft_is_dir(d->model_dir))
    return vkft_chat_template_load(d->model_dir, NULL, &b->tmpl[0]);
  if (has_own)
    return vkft_chat_template_parse(vkft_tokenizer_chat_template(b->tok), "chat_template",
                                    &b->tmpl[0]);
  b->fallback_template = 1;
  if (vkft_chat_template_parse(vkft_chat_template_builtin("chatml"), "chatml", &b->tmpl[0]))
    return VKFT_ERR;
  return vkft_chat_template_parse(vkft_chat_template_builtin("alpaca"), "alpaca", &b->tmpl[1]);
}

/* The render context: the special tokens transformers passes, and options. */
static int build_context(data_builder *b, const vkft_dataset_desc *d) {
  char path[1024];
  if (d->model_dir && vkft_is_dir(d->model_dir) &&
      file_in(d->model_dir, "tokenizer_config.json", path, sizeof path)) {
    if (vkft_chat_template_special_tokens(d->model_dir, &b->context)) return VKFT_ERR;
  } else {
    b->context = cJSON_CreateObject();
    if (!b->context) return vkft_error_nomem();
  }
  const char *bos = vkft_tokenizer_bos_str(b->tok), *eos = vkft_tokenizer_eos_str(b->tok);
  if (bos && !cJSON_GetObjectItemCaseSensitive(b->context, "bos_token"))
    cJSON_AddStringToObject(b->context, "bos_token", bos);
  if (eos && !cJSON_GetObjectItemCaseSensitive(b->context, "eos_token"))
    cJSON_AddStringToObject(b->context, "eos_token", eos);
  if (d->enable_thinking)
    cJSON_AddBoolToObject(b->context, "enable_thinking", strcmp(d->enable_thinking, "false") != 0);
  return VKFT_OK;
}

/* What the post-processor puts around a text: encode "a" with and without special tokens. */
static int probe_post_processor(data_builder *b) {
  int32_t *with = NULL, *without = NULL;
  size_t n_with = 0, n_without = 0;
  int rc = vkft_tokenizer_encode(b->tok, "a", 1, 1, &with, &n_with);
  if (rc == VKFT_OK) rc = vkft_tokenizer_encode(b->tok, "a", 1, 0, &without, &n_without);
  size_t at = SIZE_MAX;
  for (size_t i = 0; rc == VKFT_OK && i + n_without <= n_with && at == SIZE_MAX; i++)
    if (memcmp(with + i, without, n_without * sizeof *with) == 0) at = i;
  if (rc == VKFT_OK && at != SIZE_MAX) {
    b->n_prefix = at;
    b->n_suffix = n_with - at - n_without;
    b->prefix_ids = malloc((b->n_prefix + 1) * sizeof *b->prefix_ids);
    b->suffix_ids = malloc((b->n_suffix + 1) * sizeof *b->suffix_ids);
    if (!b->prefix_ids || !b->suffix_ids)
      rc = vkft_error_nomem();
    else {
      memcpy(b->prefix_ids, with, b->n_prefix * sizeof *with);
      memcpy(b->suffix_ids, with + at + n_without, b->n_suffix * sizeof *with);
    }
  } else if (rc == VKFT_OK) {
    b->prefix_ids = malloc(sizeof *b->prefix_ids);
    b->suffix_ids = malloc(sizeof *b->suffix_ids);
    if (!b->prefix_ids || !b->suffix_ids) rc = vkft_error_nomem();
  }
  free(with);
  free(without);
  return rc;
}

/* The text that closes an assistant turn, from a probe render: what follows the reply,
 * trimmed ("<|im_end|>\n" -> "<|im_end|>"). */
static void probe_end_of_turn(data_builder *b, int which) {
  static const char reply[] = "vkftProbeReply";
  const char *eos = vkft_tokenizer_eos_str(b->tok);
  char *eot_text = b->eot_text[which];
  snprintf(eot_text, sizeof b->eot_text[which], "%s", eos ? eos : "");
  cJSON *msgs = cJSON_CreateArray();
  cJSON *u = cJSON_CreateObject(), *a = cJSON_CreateObject();
  cJSON_AddStringToObject(u, "role", "user");
  cJSON_AddStringToObject(u, "content", "vkftProbeQuery");
  cJSON_AddStringToObject(a, "role", "assistant");
  cJSON_AddStringToObject(a, "content", reply);
  cJSON_AddItemToArray(msgs, u);
  cJSON_AddItemToArray(msgs, a);
  unsigned char trained[2] = {0, 1};
  data_sample s = {.chat = 1,
                   .messages = msgs,
                   .trained = trained,
                   .n_messages = 2,
                   .format = which ? VKFT_FORMAT_ALPACA : VKFT_FORMAT_MESSAGES};
  char *out = NULL;
  size_t len = 0;
  if (render_prefix(b, &s, 2, 0, &out, &len) == VKFT_OK) {
    const char *at = strstr(out, reply);
    if (at) {
      const char *p = at + strlen(reply);
      while (is_space(*p)) p++;
      size_t n = strlen(p);
      while (n && is_space(p[n - 1])) n--;
      if (n < sizeof b->eot_text[which]) {
        memcpy(eot_text, p, n);
        eot_text[n] = 0;
      }
    }
  }
  vkft_error_clear();
  free(out);
  cJSON_Delete(msgs);
}

int data_builder_init(data_builder *b, const vkft_dataset_desc *d, vkft_tokenizer *tok) {
  memset(b, 0, sizeof *b);
  b->tok = tok;
  b->vocab_size = d->vocab_size;
  b->train_on = d->train_on;
  b->eos_id = tok ? vkft_tokenizer_eos_id(tok) : -1;
  /* pre-tokenized ids index the embedding rows: config.json's vocab_size unless given */
  if (!b->vocab_size) b->vocab_size = model_config_int(d->model_dir, "vocab_size");
  int64_t positions = model_config_int(d->model_dir, "max_position_embeddings");
  b->max_len = d->max_len > 0                      ? d->max_len
               : positions > 0 && positions < 2048 ? (int)positions
                                                   : 2048;
  if (!tok) return VKFT_OK;
  if (load_template(b, d) || build_context(b, d) || probe_post_processor(b)) {
    data_builder_free(b);
    return VKFT_ERR;
  }
  if (b->tmpl[0]) probe_end_of_turn(b, 0);
  if (b->tmpl[1]) probe_end_of_turn(b, 1);
  return VKFT_OK;
}

void data_builder_free(data_builder *b) {
  vkft_chat_template_free(b->tmpl[0]);
  vkft_chat_template_free(b->tmpl[1]);
  cJSON_Delete(b->context);
  free(b->prefix_ids);
  free(b->suffix_ids);
  memset(b, 0, sizeof *b);
}
