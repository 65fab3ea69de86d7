/* Dataset formats: detects a record's format from its keys and converts alpaca, sharegpt,
 * messages, prompt_completion, text and tokens records into one sample shape: OpenAI-form
 * messages (role, content, reasoning_content, tool_calls) for chats, strings for text, ids for
 * pre-tokenized records. The rules follow LLaMA-Factory (alpaca, sharegpt) and TRL
 * (messages, prompt_completion); see include/vkft/dataset.h. */
#include "internal.h"

#include "vkft/buf.h"
#include "vkft/error.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const cJSON *get(const cJSON *obj, const char *key) {
  return cJSON_GetObjectItemCaseSensitive(obj, key);
}

vkft_data_format data_detect_format(const cJSON *r) {
  if (!cJSON_IsObject(r)) return VKFT_FORMAT_AUTO;
  if (get(r, "messages")) return VKFT_FORMAT_MESSAGES;
  if (get(r, "conversations")) return VKFT_FORMAT_SHAREGPT;
  if (get(r, "instruction") && get(r, "output")) return VKFT_FORMAT_ALPACA;
  if (get(r, "prompt") && get(r, "completion")) return VKFT_FORMAT_PROMPT_COMPLETION;
  if (get(r, "input_ids")) return VKFT_FORMAT_TOKENS;
  if (get(r, "text")) return VKFT_FORMAT_TEXT;
  return VKFT_FORMAT_AUTO;
}

/* ---- messages ---- */

/* A tool call in OpenAI form from {"name", "arguments"} (or an already wrapped call). */
static int add_tool_call(cJSON *calls, const cJSON *v, size_t msg) {
  if (!cJSON_IsObject(v))
    return vkft_error("message %zu: a tool call must be a JSON object with \"name\"", msg);
  cJSON *call;
  if (get(v, "function")) {
    call = cJSON_Duplicate(v, 1);
  } else {
    const cJSON *name = get(v, "name");
    if (!cJSON_IsString(name))
      return vkft_error("message %zu: a tool call has no \"name\" string", msg);
    const cJSON *args = get(v, "arguments");
    call = cJSON_CreateObject();
    cJSON *fn = cJSON_CreateObject();
    if (call && fn) {
      cJSON_AddStringToObject(call, "type", "function");
      cJSON_AddStringToObject(fn, "name", name->valuestring);
      cJSON_AddItemToObject(fn, "arguments",
                            args ? cJSON_Duplicate(args, 1) : cJSON_CreateObject());
      cJSON_AddItemToObject(call, "function", fn);
      fn = NULL;
    }
    cJSON_Delete(fn);
  }
  if (!call) return vkft_error_nomem();
  cJSON_AddItemToArray(calls, call);
  return VKFT_OK;
}

/* A tool call given as JSON text (sharegpt function_call values, typed tool_call parts): one
 * call object or a list of them. */
static int add_tool_calls_text(cJSON *calls, const char *text, size_t msg) {
  cJSON *v = cJSON_Parse(text);
  if (!v) return vkft_error("message %zu: the tool call is not valid JSON", msg);
  int rc = VKFT_OK;
  if (cJSON_IsArray(v)) {
    for (const cJSON *c = v->child; c && rc == VKFT_OK; c = c->next)
      rc = add_tool_call(calls, c, msg);
  } else {
    rc = add_tool_call(calls, v, msg);
  }
  cJSON_Delete(v);
  return rc;
}

/* Canonical role: user, assistant, system, tool (others pass through). */
static const char *canonical_role(const char *role, int *is_call) {
  *is_call = 0;
  if (!strcmp(role, "human") || !strcmp(role, "user")) return "user";
  if (!strcmp(role, "gpt") || !strcmp(role, "assistant") || !strcmp(role, "model") ||
      !strcmp(role, "bot"))
    return "assistant";
  if (!strcmp(role, "function_call")) return *is_call = 1, "assistant";
  if (!strcmp(role, "observation") || !strcmp(role, "tool") || !strcmp(role, "function") ||
      !strcmp(role, "ipython"))
    return "tool";
  return role;
}

/* Appends the OpenAI form of message m (role/content or from/value keys) to out. */
static int convert_message(const cJSON *m, size_t i, cJSON *out, unsigned char *trained) {
  if (!cJSON_IsObject(m)) return vkft_error("message %zu is not a JSON object", i);
  const cJSON *role = get(m, "role");
  if (!role) role = get(m, "from");
  if (!cJSON_IsString(role)) return vkft_error("message %zu has no \"role\" (or \"from\")", i);
  const cJSON *content = get(m, "content");
  if (!content) content = get(m, "value");
  int is_call;
  const char *r = canonical_role(role->valuestring, &is_call);
  cJSON *msg = cJSON_CreateObject();
  if (!msg) return vkft_error_nomem();
  /* Other keys (tool_calls, reasoning_content, name, tool_call_id...) pass through. */
  for (const cJSON *k = m->child; k; k = k->next) {
    if (!strcmp(k->string, "role") || !strcmp(k->string, "from") || !strcmp(k->string, "content") ||
        !strcmp(k->string, "value") || !strcmp(k->string, "loss_weight") ||
        !strcmp(k->string, "weight"))
      continue;
    cJSON_AddItemToObject(msg, k->string, cJSON_Duplicate(k, 1));
  }
  cJSON_AddStringToObject(msg, "role", r);
  vkft_strbuf text = {0}, reasoning = {0};
  cJSON *calls = cJSON_CreateArray();
  int rc = calls ? VKFT_OK : vkft_error_nomem();
  if (rc == VKFT_OK && is_call) {
    if (!cJSON_IsString(content))
      rc = vkft_error("message %zu: a function_call value must be a JSON string", i);
    else
      rc = add_tool_calls_text(calls, content->valuestring, i);
  } else if (rc == VKFT_OK && cJSON_IsString(content)) {
    rc = vkft_strbuf_puts(&text, content->valuestring);
  } else if (rc == VKFT_OK && cJSON_IsArray(content)) {
    for (const cJSON *part = content->child; part && rc == VKFT_OK; part = part->next) {
      const cJSON *type = get(part, "type");
      const cJSON *value = get(part, "value");
      if (!value) value = get(part, "text");
      if (!cJSON_IsString(type) || !cJSON_IsString(value)) {
        rc = vkft_error("message %zu: a content part needs \"type\" and a string \"value\"", i);
      } else if (!strcmp(type->valuestring, "text")) {
        rc = vkft_strbuf_puts(&text, value->valuestring);
      } else if (!strcmp(type->valuestring, "reasoning") ||
                 !strcmp(type->valuestring, "thinking")) {
        rc = vkft_strbuf_puts(&reasoning, value->valuestring);
      } else if (!strcmp(type->valuestring, "tool_call")) {
        rc = add_tool_calls_text(calls, value->valuestring, i);
      } else {
        rc = vkft_error("message %zu: unsupported content part type \"%s\"", i, type->valuestring);
      }
    }
  } else if (rc == VKFT_OK && content && !cJSON_IsNull(content)) {
    rc = vkft_error("message %zu: \"content\" must be a string or a list of parts", i);
  }
  if (rc == VKFT_OK) {
    cJSON_AddStringToObject(msg, "content", text.data ? text.data : "");
    if (reasoning.data) cJSON_AddStringToObject(msg, "reasoning_content", reasoning.data);
    if (cJSON_GetArraySize(calls) > 0) {
      cJSON_DeleteItemFromObjectCaseSensitive(msg, "tool_calls");
      cJSON_AddItemToObject(msg, "tool_calls", calls);
      calls = NULL;
    }
    const cJSON *w = get(m, "loss_weight");
    if (!w) w = get(m, "weight");
    if (w && !cJSON_IsNumber(w) && !cJSON_IsBool(w))
      rc = vkft_error("message %zu: \"loss_weight\" must be a number", i);
    int weight_zero = w && (cJSON_IsNumber(w) ? w->valuedouble == 0 : cJSON_IsFalse(w));
    *trained = !strcmp(r, "assistant") && !weight_zero;
  }
  free(text.data);
  free(reasoning.data);
  cJSON_Delete(calls);
  if (rc) {
    cJSON_Delete(msg);
    return VKFT_ERR;
  }
  cJSON_AddItemToArray(out, msg);
  return VKFT_OK;
}

static int grow_trained(data_sample *s, size_t n) {
  unsigned char *p = realloc(s->trained, n ? n : 1);
  if (!p) return vkft_error_nomem();
  s->trained = p;
  return VKFT_OK;
}

int data_sample_add_messages(data_sample *s, const cJSON *list, const char *key,
                             int force_untrained) {
  if (!cJSON_IsArray(list)) return vkft_error("\"%s\" must be a list of messages", key);
  size_t n = (size_t)cJSON_GetArraySize(list);
  if (grow_trained(s, s->n_messages + n)) return VKFT_ERR;
  size_t i = 0;
  for (const cJSON *m = list->child; m; m = m->next, i++) {
    if (convert_message(m, s->n_messages, s->messages, &s->trained[s->n_messages]))
      return vkft_error_prefix("\"%s\"", key);
    if (force_untrained) s->trained[s->n_messages] = 0;
    s->n_messages++;
  }
  return VKFT_OK;
}

int data_sample_add_message(data_sample *s, const char *role, const char *content, int trained) {
  if (grow_trained(s, s->n_messages + 1)) return VKFT_ERR;
  cJSON *m = cJSON_CreateObject();
  if (!m) return vkft_error_nomem();
  cJSON_AddStringToObject(m, "role", role);
  cJSON_AddStringToObject(m, "content", content);
  cJSON_AddItemToArray(s->messages, m);
  s->trained[s->n_messages++] = (unsigned char)trained;
  return VKFT_OK;
}

int data_sample_add_tools(data_sample *s, const cJSON *tools) {
  if (!tools || cJSON_IsNull(tools)) return VKFT_OK;
  cJSON *list = NULL;
  if (cJSON_IsString(tools)) {
    if (tools->valuestring[0] == 0) return VKFT_OK;
    list = cJSON_Parse(tools->valuestring);
    if (!list) return vkft_error("\"tools\" is not valid JSON");
  } else {
    list = cJSON_Duplicate(tools, 1);
  }
  if (cJSON_IsObject(list)) {
    cJSON *arr = cJSON_CreateArray();
    cJSON_AddItemToArray(arr, list);
    list = arr;
  }
  if (!cJSON_IsArray(list)) {
    cJSON_Delete(list);
    return vkft_error("\"tools\" must be a list of function schemas");
  }
  if (cJSON_GetArraySize(list) == 0) {
    cJSON_Delete(list);
    return VKFT_OK;
  }
  for (int k = 0; k < cJSON_GetArraySize(list); k++) {
    cJSON *t = cJSON_GetArrayItem(list, k);
    if (!cJSON_IsObject(t)) {
      cJSON_Delete(list);
      return vkft_error("\"tools\" item %d is not a JSON object", k);
    }
    if (!get(t, "function")) {
      cJSON *wrap = cJSON_CreateObject();
      cJSON_AddStringToObject(wrap, "type", "function");
      cJSON_AddItemToObject(wrap, "function", cJSON_Duplicate(t, 1));
      cJSON_ReplaceItemInArray(list, k, wrap);
    }
  }
  s->tools = list;
  return VKFT_OK;
}

static const char *opt_string(const cJSON *r, const char *key, int *bad) {
  const cJSON *v = get(r, key);
  if (!v || cJSON_IsNull(v)) return NULL;
  if (!cJSON_IsString(v)) {
    *bad = 1;
    return NULL;
  }
  return v->valuestring;
}

int data_sample_alpaca_prompt(const cJSON *r, data_sample *s) {
  int bad = 0;
  const char *instruction = opt_string(r, "instruction", &bad);
  const char *input = opt_string(r, "input", &bad);
  const char *system = opt_string(r, "system", &bad);
  if (bad) return vkft_error("alpaca fields instruction/input/output/system must be strings");
  if (!instruction && !input) return vkft_error("missing field \"instruction\"");
  if (system && *system && data_sample_add_message(s, "system", system, 0)) return VKFT_ERR;
  const cJSON *history = get(r, "history");
  if (history && !cJSON_IsNull(history)) {
    if (!cJSON_IsArray(history)) return vkft_error("\"history\" must be a list of [query, reply]");
    for (const cJSON *h = history->child; h; h = h->next) {
      const cJSON *q = cJSON_GetArrayItem(h, 0), *a = cJSON_GetArrayItem(h, 1);
      if (!cJSON_IsArray(h) || !cJSON_IsString(q) || !cJSON_IsString(a))
        return vkft_error("\"history\" items must be [query, reply] string pairs");
      if (data_sample_add_message(s, "user", q->valuestring, 0) ||
          data_sample_add_message(s, "assistant", a->valuestring, 1))
        return VKFT_ERR;
    }
  }
  /* LLaMA-Factory: the user turn is instruction and input joined by "\n", empty parts left out. */
  vkft_strbuf user = {0};
  int rc = VKFT_OK;
  if (instruction && *instruction) rc = vkft_strbuf_puts(&user, instruction);
  if (rc == VKFT_OK && input && *input) {
    if (user.len) rc = vkft_strbuf_puts(&user, "\n");
    if (rc == VKFT_OK) rc = vkft_strbuf_puts(&user, input);
  }
  if (rc == VKFT_OK) rc = data_sample_add_message(s, "user", user.data ? user.data : "", 0);
  free(user.data);
  return rc;
}

static int from_alpaca(const cJSON *r, data_sample *s) {
  int bad = 0;
  const char *output = opt_string(r, "output", &bad);
  if (bad) return vkft_error("alpaca fields instruction/input/output/system must be strings");
  if (data_sample_alpaca_prompt(r, s)) return VKFT_ERR;
  if (!output) return vkft_error("missing field \"output\"");
  return data_sample_add_message(s, "assistant", output, 1);
}

static int from_chat(const cJSON *r, data_sample *s, const char *key) {
  const cJSON *list = get(r, key);
  if (!list) return vkft_error("missing field \"%s\"", key);
  int bad = 0;
  const char *system = opt_string(r, "system", &bad);
  if (bad) return vkft_error("\"system\" must be a string");
  if (system && *system && data_sample_add_message(s, "system", system, 0)) return VKFT_ERR;
  if (data_sample_add_messages(s, list, key, 0)) return VKFT_ERR;
  if (s->n_messages == 0) return vkft_error("\"%s\" is empty", key);
  return data_sample_add_tools(s, get(r, "tools"));
}

static int from_prompt_completion(const cJSON *r, data_sample *s) {
  const cJSON *p = get(r, "prompt"), *c = get(r, "completion");
  if (!p) return vkft_error("missing field \"prompt\"");
  if (!c) return vkft_error("missing field \"completion\"");
  if (cJSON_IsString(p) && cJSON_IsString(c)) {
    s->chat = 0;
    s->prompt = p->valuestring;
    s->completion = c->valuestring;
    s->prompt_len = strlen(s->prompt);
    s->completion_len = strlen(s->completion);
    return VKFT_OK;
  }
  if (!cJSON_IsArray(p))
    return vkft_error("\"prompt\" must be a string or a list of messages (with \"completion\" "
                      "of the same kind)");
  if (data_sample_add_messages(s, p, "prompt", 1)) return VKFT_ERR;
  if (cJSON_IsString(c)) {
    if (data_sample_add_message(s, "assistant", c->valuestring, 1)) return VKFT_ERR;
  } else if (data_sample_add_messages(s, c, "completion", 0)) {
    return VKFT_ERR;
  }
  return data_sample_add_tools(s, get(r, "tools"));
}

static int from_tokens(const cJSON *r, data_sample *s) {
  const cJSON *ids = get(r, "input_ids"), *labels = get(r, "labels");
  if (!cJSON_IsArray(ids)) return vkft_error("\"input_ids\" must be a list of token ids");
  size_t n = (size_t)cJSON_GetArraySize(ids);
  if (labels && !cJSON_IsNull(labels)) {
    if (!cJSON_IsArray(labels) || (size_t)cJSON_GetArraySize(labels) != n)
      return vkft_error("\"labels\" must be a list as long as \"input_ids\" (%zu)", n);
  } else {
    labels = NULL;
  }
  s->ids = malloc((n ? n : 1) * sizeof *s->ids);
  if (labels) s->labels = malloc((n ? n : 1) * sizeof *s->labels);
  if (!s->ids || (labels && !s->labels)) return vkft_error_nomem();
  const cJSON *a = ids->child, *b = labels ? labels->child : NULL;
  for (size_t i = 0; i < n; i++, a = a->next) {
    if (!cJSON_IsNumber(a) || a->valuedouble != floor(a->valuedouble) || a->valuedouble < 0 ||
        a->valuedouble > INT32_MAX)
      return vkft_error("\"input_ids\"[%zu] is not a token id", i);
    s->ids[i] = (int32_t)a->valuedouble;
    if (b) {
      if (!cJSON_IsNumber(b) || b->valuedouble != floor(b->valuedouble) ||
          (b->valuedouble < 0 && b->valuedouble != VKFT_LABEL_IGNORE) || b->valuedouble > INT32_MAX)
        return vkft_error("\"labels\"[%zu] is neither a token id nor -100", i);
      s->labels[i] = (int32_t)b->valuedouble;
      b = b->next;
    }
  }
  s->n_ids = n;
  return VKFT_OK;
}

int data_sample_from_json(const cJSON *record, vkft_data_format fmt, data_sample *s) {
  memset(s, 0, sizeof *s);
  s->format = fmt;
  if (!cJSON_IsObject(record)) return vkft_error("the record is not a JSON object");
  int rc;
  switch (fmt) {
  case VKFT_FORMAT_ALPACA:
  case VKFT_FORMAT_SHAREGPT:
  case VKFT_FORMAT_MESSAGES:
  case VKFT_FORMAT_PROMPT_COMPLETION:
    s->chat = 1;
    s->messages = cJSON_CreateArray();
    if (!s->messages) return vkft_error_nomem();
    rc = fmt == VKFT_FORMAT_ALPACA     ? from_alpaca(record, s)
         : fmt == VKFT_FORMAT_SHAREGPT ? from_chat(record, s, "conversations")
         : fmt == VKFT_FORMAT_MESSAGES ? from_chat(record, s, "messages")
                                       : from_prompt_completion(record, s);
    break;
  case VKFT_FORMAT_TEXT: {
    const cJSON *t = get(record, "text");
    if (!cJSON_IsString(t)) {
      rc = vkft_error("%s", t ? "\"text\" must be a string" : "missing field \"text\"");
      break;
    }
    s->prompt = "";
    s->completion = t->valuestring;
    s->completion_len = strlen(t->valuestring);
    rc = VKFT_OK;
    break;
  }
  case VKFT_FORMAT_TOKENS:
    rc = from_tokens(record, s);
    break;
  default:
    rc = vkft_error("unknown record format (expected the fields of alpaca, sharegpt, messages, "
                    "prompt_completion, text or tokens)");
  }
  if (rc) data_sample_free(s);
  return rc;
}

void data_sample_free(data_sample *s) {
  cJSON_Delete(s->messages);
  cJSON_Delete(s->tools);
  free(s->trained);
  free(s->ids);
  free(s->labels);
  memset(s, 0, sizeof *s);
}

int data_sample_flatten(data_sample *s) {
  if (!s->chat) return VKFT_OK;
  for (cJSON *m = s->messages->child; m; m = m->next) {
    const cJSON *content = get(m, "content"), *reasoning = get(m, "reasoning_content");
    const cJSON *calls = get(m, "tool_calls");
    int has_reasoning = cJSON_IsString(reasoning) && reasoning->valuestring[0];
    int has_calls = cJSON_IsArray(calls) && cJSON_GetArraySize(calls) > 0;
    if (!has_reasoning && !has_calls) continue;
    vkft_strbuf b = {0};
    int rc = VKFT_OK;
    if (has_reasoning) {
      rc = vkft_strbuf_puts(&b, "<think>\n");
      if (rc == VKFT_OK) rc = vkft_strbuf_puts(&b, reasoning->valuestring);
      if (rc == VKFT_OK) rc = vkft_strbuf_puts(&b, "\n</think>\n\n");
    }
    if (rc == VKFT_OK && cJSON_IsString(content)) rc = vkft_strbuf_puts(&b, content->valuestring);
    for (const cJSON *c = has_calls ? calls->child : NULL; c && rc == VKFT_OK; c = c->next) {
      const cJSON *fn = get(c, "function");
      char *json = cJSON_PrintUnformatted(fn ? fn : c);
      if (!json) rc = vkft_error_nomem();
      if (rc == VKFT_OK && b.len) rc = vkft_strbuf_puts(&b, "\n");
      if (rc == VKFT_OK) rc = vkft_strbuf_puts(&b, json);
      free(json);
    }
    if (rc == VKFT_OK) {
      cJSON *text = cJSON_CreateString(b.data ? b.data : "");
      if (!text)
        rc = vkft_error_nomem();
      else
        cJSON_ReplaceItemInObjectCaseSensitive(m, "content", text);
      cJSON_DeleteItemFromObjectCaseSensitive(m, "reasoning_content");
      cJSON_DeleteItemFromObjectCaseSensitive(m, "tool_calls");
    }
    free(b.data);
    if (rc) return VKFT_ERR;
  }
  return VKFT_OK;
}

int data_sample_text(const data_sample *s, char **roles, char **prompt_text, char **reply_text) {
  vkft_strbuf r = {0}, p = {0}, a = {0};
  int rc = vkft_strbuf_add(&r, "", 0) || vkft_strbuf_add(&p, "", 0) || vkft_strbuf_add(&a, "", 0);
  if (rc == VKFT_OK && s->chat) {
    size_t i = 0;
    for (const cJSON *m = s->messages->child; m && rc == VKFT_OK; m = m->next, i++) {
      const cJSON *role = get(m, "role"), *content = get(m, "content");
      const cJSON *calls = get(m, "tool_calls");
      vkft_strbuf *dst = s->trained[i] ? &a : &p;
      if (i) rc = vkft_strbuf_puts(&r, ",");
      if (rc == VKFT_OK) rc = vkft_strbuf_puts(&r, cJSON_IsString(role) ? role->valuestring : "?");
      if (rc == VKFT_OK && dst->len) rc = vkft_strbuf_puts(dst, "\n");
      if (rc == VKFT_OK && cJSON_IsString(content))
        rc = vkft_strbuf_puts(dst, content->valuestring);
      if (rc == VKFT_OK && cJSON_IsArray(calls) && cJSON_GetArraySize(calls) > 0) {
        char *json = cJSON_PrintUnformatted(calls);
        rc = json ? vkft_strbuf_puts(dst, json) : vkft_error_nomem();
        free(json);
      }
    }
  } else if (rc == VKFT_OK && s->completion) {
    rc = vkft_strbuf_puts(&r, s->format == VKFT_FORMAT_TEXT ? "text" : "prompt,completion");
    if (rc == VKFT_OK) rc = vkft_strbuf_add(&p, s->prompt, s->prompt_len);
    if (rc == VKFT_OK) rc = vkft_strbuf_add(&a, s->completion, s->completion_len);
  } else if (rc == VKFT_OK) {
    rc = vkft_strbuf_puts(&r, "tokens");
  }
  if (rc) {
    free(r.data), free(p.data), free(a.data);
    return VKFT_ERR;
  }
  *roles = r.data;
  *prompt_text = p.data;
  *reply_text = a.data;
  return VKFT_OK;
}
