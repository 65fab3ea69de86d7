/* Chat templates: the public API over the Jinja interpreter (parse, render with a JSON
 * context, load from a model folder or a GGUF file) and vkft's built-in templates for models
 * that ship none. */
#include "vkft/chat_template.h"

#include "internal.h"
#include "vkft/error.h"
#include "vkft/gguf.h"
#include "vkft/platform.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct vkft_chat_template {
  jinja_template tpl;
  char *source;
};

int vkft_chat_template_parse(const char *source, const char *name, vkft_chat_template **out) {
  *out = NULL;
  if (!source) return vkft_error("chat template: no source");
  vkft_chat_template *t = calloc(1, sizeof *t);
  if (!t) return vkft_error_nomem();
  t->source = malloc(strlen(source) + 1);
  t->tpl.name = malloc(strlen(name ? name : "chat_template") + 1);
  if (!t->source || !t->tpl.name) {
    vkft_chat_template_free(t);
    return vkft_error_nomem();
  }
  strcpy(t->source, source);
  strcpy(t->tpl.name, name ? name : "chat_template");
  jinja_tokens tokens = {0};
  int rc = jinja_lex(source, t->tpl.name, &t->tpl.arena, &tokens);
  if (rc == VKFT_OK) rc = jinja_parse(&tokens, t->tpl.name, &t->tpl.arena, &t->tpl.root);
  free(tokens.items);
  if (rc) {
    vkft_chat_template_free(t);
    return VKFT_ERR;
  }
  *out = t;
  return VKFT_OK;
}

void vkft_chat_template_free(vkft_chat_template *t) {
  if (!t) return;
  jinja_arena_free(&t->tpl.arena);
  free(t->tpl.name);
  free(t->source);
  free(t);
}

const char *vkft_chat_template_source(const vkft_chat_template *t) {
  return t->source;
}

static int days_in_month(int year, int month) {
  static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  int leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  return days[month - 1] + (month == 2 && leap);
}

int vkft_chat_template_parse_date(const char *text, vkft_chat_template_options *options) {
  int year, month, day, used = 0;
  if (sscanf(text, "%4d-%2d-%2d%n", &year, &month, &day, &used) != 3 || text[used] || year < 1 ||
      month < 1 || month > 12 || day < 1 || day > days_in_month(year, month))
    return vkft_error("\"%s\" is not a date YYYY-MM-DD", text);
  options->year = year;
  options->month = month;
  options->day = day;
  return VKFT_OK;
}

int vkft_chat_template_render_opts(const vkft_chat_template *t, const cJSON *context,
                                   const vkft_chat_template_options *options, char **out,
                                   size_t *out_len) {
  *out = NULL;
  if (out_len) *out_len = 0;
  if (context && !cJSON_IsObject(context))
    return vkft_error("%s: render context must be a JSON object", t->tpl.name);
  vkft_chat_template_options o = options ? *options : (vkft_chat_template_options){0};
  if (o.year == 0) o.year = 2024, o.month = 7, o.day = 26;
  if (o.max_output == 0) o.max_output = JINJA_MAX_OUTPUT;
  if (o.year < 1 || o.year > 9999 || o.month < 1 || o.month > 12 || o.day < 1 ||
      o.day > days_in_month(o.year, o.month))
    return vkft_error("%s: invalid strftime_now date %d-%d-%d", t->tpl.name, o.year, o.month,
                      o.day);
  vkft_strbuf buf = {.limit = o.max_output};
  jinja_state st = {.name = t->tpl.name,
                    .out = &buf,
                    .now_year = o.year,
                    .now_month = o.month,
                    .now_day = o.day,
                    .max_output = o.max_output,
                    .max_steps = o.max_steps ? o.max_steps : JINJA_MAX_STEPS};
  jv globals;
  int rc = jv_new_dict(&st, JD_DICT, &globals);
  for (const cJSON *item = context ? context->child : NULL; item && rc == VKFT_OK;
       item = item->next) {
    jv key, value;
    rc = jv_str_copy(&st, item->string, strlen(item->string), &key);
    if (rc == VKFT_OK) rc = jv_from_cjson(&st, item, &value);
    if (rc == VKFT_OK) rc = jv_dict_set(&st, globals.u.dict, key, value);
  }
  if (rc == VKFT_OK) {
    st.globals = globals.u.dict;
    rc = jinja_render_root(&st, t->tpl.root);
  }
  jinja_arena_free(&st.arena);
  if (rc) {
    vkft_strbuf_free(&buf);
    return VKFT_ERR;
  }
  if (!buf.data && vkft_strbuf_add(&buf, "", 0)) return VKFT_ERR; /* empty render: "" */
  *out = buf.data;
  if (out_len) *out_len = buf.len;
  return VKFT_OK;
}

int vkft_chat_template_render(const vkft_chat_template *t, const cJSON *context, char **out,
                              size_t *out_len) {
  return vkft_chat_template_render_opts(t, context, NULL, out, out_len);
}

/* ---- the render context apply_chat_template builds ---- */

static int add_ref(cJSON *ctx, const char *key, const cJSON *item) {
  if (item && !cJSON_IsNull(item))
    return cJSON_AddItemReferenceToObject(ctx, key, (cJSON *)item) ? VKFT_OK : VKFT_ERR;
  return cJSON_AddNullToObject(ctx, key) ? VKFT_OK : VKFT_ERR;
}

int vkft_chat_template_context(const vkft_chat_inputs *in, cJSON **out) {
  static const char *const own_keys[] = {"messages", "tools", "documents", "add_generation_prompt",
                                         NULL};
  *out = NULL;
  if (!cJSON_IsArray(in->messages)) return vkft_error("chat: \"messages\" must be a list");
  if (in->tools && !cJSON_IsNull(in->tools) && !cJSON_IsArray(in->tools))
    return vkft_error("chat: \"tools\" must be a list");
  if (in->documents && !cJSON_IsNull(in->documents) && !cJSON_IsArray(in->documents))
    return vkft_error("chat: \"documents\" must be a list");
  cJSON *ctx = cJSON_CreateObject();
  int rc = ctx ? VKFT_OK : VKFT_ERR;
  /* transformers: render(messages=, tools=, documents=, add_generation_prompt=,
   * **{**special_tokens_map, **kwargs}) — kwargs override special tokens */
  const cJSON *groups[2] = {in->special_tokens, in->kwargs};
  for (int g = 0; g < 2 && rc == VKFT_OK; g++)
    for (const cJSON *item = groups[g] ? groups[g]->child : NULL; item && rc == VKFT_OK;
         item = item->next) {
      int own = 0;
      for (int k = 0; own_keys[k]; k++) own |= strcmp(item->string, own_keys[k]) == 0;
      if (own) continue;
      cJSON_DeleteItemFromObjectCaseSensitive(ctx, item->string);
      rc = add_ref(ctx, item->string, item);
    }
  if (rc == VKFT_OK) rc = add_ref(ctx, "messages", in->messages);
  if (rc == VKFT_OK) rc = add_ref(ctx, "tools", in->tools);
  if (rc == VKFT_OK) rc = add_ref(ctx, "documents", in->documents);
  if (rc == VKFT_OK &&
      !cJSON_AddBoolToObject(ctx, "add_generation_prompt", in->add_generation_prompt))
    rc = VKFT_ERR;
  if (rc) {
    cJSON_Delete(ctx);
    return vkft_error_nomem();
  }
  *out = ctx;
  return VKFT_OK;
}

/* ---- loading ---- */

static int parse_file(const char *path, vkft_chat_template **out) {
  char *data;
  size_t size;
  if (vkft_file_read(path, &data, &size)) return vkft_error_prefix("chat template");
  if (strlen(data) != size) {
    free(data);
    return vkft_error("%s: chat template contains a NUL byte", path);
  }
  int rc = vkft_chat_template_parse(data, path, out);
  free(data);
  return rc;
}

static int read_tokenizer_config(const char *model_dir, char *path, size_t path_size,
                                 cJSON **json) {
  char *data;
  size_t size;
  snprintf(path, path_size, "%s/tokenizer_config.json", model_dir);
  if (vkft_file_read(path, &data, &size)) return VKFT_ERR;
  *json = cJSON_ParseWithLength(data, size);
  free(data);
  if (!*json) return vkft_error("%s: invalid JSON", path);
  return VKFT_OK;
}

/* A GGUF file's template: tokenizer.chat_template, or tokenizer.chat_template.<variant> (how
 * llama.cpp's converter stores tokenizer_config.json's named templates). */
static int load_gguf(const char *path, const char *variant, vkft_chat_template **out) {
  vkft_gguf *g;
  if (vkft_gguf_open(path, &g) != VKFT_OK) return VKFT_ERR;
  char key[256], name[2300];
  if (variant && strcmp(variant, "default"))
    snprintf(key, sizeof key, "tokenizer.chat_template.%s", variant);
  else
    snprintf(key, sizeof key, "tokenizer.chat_template");
  const char *text;
  uint64_t len;
  char *source = NULL;
  int rc = vkft_gguf_find_key(g, key) < 0
               ? vkft_error("%s: no %s (pass a .jinja file or a built-in template)", path, key)
               : vkft_gguf_get_str(g, key, &text, &len);
  if (rc == VKFT_OK && memchr(text, 0, (size_t)len))
    rc = vkft_error("%s: %s contains a NUL byte", path, key);
  if (rc == VKFT_OK && !(source = malloc((size_t)len + 1))) rc = vkft_error_nomem();
  if (rc == VKFT_OK) {
    memcpy(source, text, (size_t)len);
    source[len] = 0;
    snprintf(name, sizeof name, "%s:%s", path, key);
    rc = vkft_chat_template_parse(source, name, out);
  }
  free(source);
  vkft_gguf_close(g);
  return rc;
}

int vkft_chat_template_load(const char *path, const char *variant, vkft_chat_template **out) {
  *out = NULL;
  size_t n = strlen(path);
  if (n > 6 && strcmp(path + n - 6, ".jinja") == 0) return parse_file(path, out);
  if (vkft_gguf_is_file(path)) return load_gguf(path, variant, out);
  if (!vkft_is_dir(path)) return vkft_error("%s: not a .jinja file or a model folder", path);
  char file[2048];
  /* transformers >= 4.47 saves the template as chat_template.jinja, which takes precedence */
  snprintf(file, sizeof file, "%s/chat_template.jinja", path);
  if (vkft_file_exists(file)) return parse_file(file, out);
  cJSON *config;
  if (read_tokenizer_config(path, file, sizeof file, &config)) return VKFT_ERR;
  const cJSON *ct = cJSON_GetObjectItemCaseSensitive(config, "chat_template");
  const char *source = NULL, *want = variant ? variant : "default";
  if (cJSON_IsString(ct)) {
    if (variant && strcmp(variant, "default") != 0) {
      cJSON_Delete(config);
      return vkft_error("%s: has one chat template, not a variant \"%s\"", file, variant);
    }
    source = ct->valuestring;
  } else if (cJSON_IsArray(ct)) {
    for (const cJSON *entry = ct->child; entry; entry = entry->next) {
      const cJSON *name = cJSON_GetObjectItemCaseSensitive(entry, "name");
      const cJSON *text = cJSON_GetObjectItemCaseSensitive(entry, "template");
      if (cJSON_IsString(name) && cJSON_IsString(text) && strcmp(name->valuestring, want) == 0)
        source = text->valuestring;
    }
    if (!source) {
      cJSON_Delete(config);
      return vkft_error("%s: no chat template named \"%s\"", file, want);
    }
  } else {
    cJSON_Delete(config);
    return vkft_error("%s: no \"chat_template\" (pass a .jinja file or a built-in template)", file);
  }
  char name[2100];
  snprintf(name, sizeof name, "%s:chat_template", file);
  int rc = vkft_chat_template_parse(source, name, out);
  cJSON_Delete(config);
  return rc;
}

/* A GGUF file's special tokens: the token text of each tokenizer.ggml.<x>_token_id. */
static int gguf_special_tokens(const char *path, cJSON **out) {
  static const char *const keys[][2] = {{"bos_token", "tokenizer.ggml.bos_token_id"},
                                        {"eos_token", "tokenizer.ggml.eos_token_id"},
                                        {"unk_token", "tokenizer.ggml.unknown_token_id"},
                                        {"sep_token", "tokenizer.ggml.seperator_token_id"},
                                        {"pad_token", "tokenizer.ggml.padding_token_id"},
                                        {"cls_token", "tokenizer.ggml.cls_token_id"},
                                        {"mask_token", "tokenizer.ggml.mask_token_id"}};
  vkft_gguf *g;
  if (vkft_gguf_open(path, &g) != VKFT_OK) return VKFT_ERR;
  cJSON *tokens = cJSON_CreateObject();
  vkft_gguf_value list, e;
  int rc = tokens ? vkft_gguf_get_array(g, "tokenizer.ggml.tokens", &list) : vkft_error_nomem();
  for (size_t k = 0; rc == VKFT_OK && k < sizeof keys / sizeof keys[0]; k++) {
    int64_t id;
    if (vkft_gguf_find_key(g, keys[k][1]) < 0 || vkft_gguf_get_int(g, keys[k][1], &id) != VKFT_OK ||
        id < 0 || (uint64_t)id >= list.count || list.elem_type != VKFT_GGUF_STRING)
      continue; /* absent, or "none" */
    vkft_gguf_iter it;
    vkft_gguf_array_begin(&list, &it);
    for (int64_t i = 0; i <= id; i++) vkft_gguf_array_next(&it, &e);
    const char *s;
    uint64_t len;
    char text[1024];
    vkft_gguf_value_str(&e, &s, &len);
    snprintf(text, sizeof text, "%.*s", (int)(len < 1023 ? len : 1023), s);
    if (!cJSON_AddStringToObject(tokens, keys[k][0], text)) rc = vkft_error_nomem();
  }
  vkft_gguf_close(g);
  if (rc != VKFT_OK) {
    cJSON_Delete(tokens);
    return VKFT_ERR;
  }
  *out = tokens;
  return VKFT_OK;
}

int vkft_chat_template_special_tokens(const char *model_dir, cJSON **out) {
  static const char *const keys[] = {"bos_token", "eos_token", "unk_token",  "sep_token",
                                     "pad_token", "cls_token", "mask_token", NULL};
  char path[2048];
  cJSON *config;
  *out = NULL;
  if (vkft_gguf_is_file(model_dir)) return gguf_special_tokens(model_dir, out);
  if (read_tokenizer_config(model_dir, path, sizeof path, &config)) return VKFT_ERR;
  cJSON *tokens = cJSON_CreateObject();
  int rc = tokens ? VKFT_OK : vkft_error_nomem();
  for (int i = 0; keys[i] && rc == VKFT_OK; i++) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(config, keys[i]);
    if (cJSON_IsObject(v)) v = cJSON_GetObjectItemCaseSensitive(v, "content"); /* AddedToken */
    if (cJSON_IsString(v) && v->valuestring[0] &&
        !cJSON_AddStringToObject(tokens, keys[i], v->valuestring))
      rc = vkft_error_nomem();
  }
  const cJSON *extra = cJSON_GetObjectItemCaseSensitive(config, "additional_special_tokens");
  if (rc == VKFT_OK && cJSON_IsArray(extra) && cJSON_GetArraySize(extra) > 0) {
    cJSON *list = cJSON_AddArrayToObject(tokens, "additional_special_tokens");
    if (!list) rc = vkft_error_nomem();
    for (const cJSON *e = extra->child; e && rc == VKFT_OK; e = e->next) {
      const cJSON *s = cJSON_IsObject(e) ? cJSON_GetObjectItemCaseSensitive(e, "content") : e;
      cJSON *copy = cJSON_IsString(s) ? cJSON_CreateString(s->valuestring) : NULL;
      if (!copy || !cJSON_AddItemToArray(list, copy)) {
        cJSON_Delete(copy);
        rc = vkft_error("%s: additional_special_tokens must be strings", path);
      }
    }
  }
  cJSON_Delete(config);
  if (rc) {
    cJSON_Delete(tokens);
    return VKFT_ERR;
  }
  *out = tokens;
  return VKFT_OK;
}

/* ---- built-in templates ----
 * Written for vkft from each format's documented turn layout. They take bos_token/eos_token
 * from the context (empty when absent), put a system message where the format wants it, and
 * reject roles the format has no place for instead of dropping them. */

#define ROLE_ERROR(fmt)                                                                            \
  "{%- else -%}{{- raise_exception('" fmt " template: unsupported role ' ~ message.role) -}}"

static const char chatml[] =
    "{%- for message in messages -%}"
    "{{- '<|im_start|>' ~ message.role ~ '\\n' ~ message.content ~ '<|im_end|>\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}";

static const char llama2[] =
    "{%- set system = messages[0].content if messages and messages[0].role == 'system' else none "
    "-%}"
    "{%- for message in (messages[1:] if system is not none else messages) -%}"
    "{%- if message.role == 'user' -%}"
    "{{- (bos_token or '') ~ '[INST] ' -}}"
    "{%- if loop.first and system is not none -%}"
    "{{- '<<SYS>>\\n' ~ system ~ '\\n<</SYS>>\\n\\n' -}}{%- endif -%}"
    "{{- message.content | trim ~ ' [/INST]' -}}"
    "{%- elif message.role == 'assistant' -%}"
    "{{- ' ' ~ message.content | trim ~ ' ' ~ (eos_token or '') -}}" ROLE_ERROR(
        "llama2") "{%- endif -%}{%- endfor -%}";

static const char llama3[] =
    "{{- bos_token or '' -}}"
    "{%- for message in messages -%}"
    "{{- '<|start_header_id|>' ~ message.role ~ '<|end_header_id|>\\n\\n' ~ message.content | trim"
    " ~ '<|eot_id|>' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}"
    "{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' -}}{%- endif -%}";

/* Mistral v1 puts a space before [INST]; v3 drops it and the one before [/INST]. The system
 * message goes in front of the first user message. */
#define MISTRAL(name, inst, close)                                                                 \
  "{%- set system = messages[0].content if messages and messages[0].role == 'system' else none "   \
  "-%}"                                                                                            \
  "{{- bos_token or '' -}}"                                                                        \
  "{%- for message in (messages[1:] if system is not none else messages) -%}"                      \
  "{%- if message.role == 'user' -%}"                                                              \
  "{{- '" inst "' -}}"                                                                             \
  "{%- if loop.first and system is not none -%}{{- system ~ '\\n\\n' -}}{%- endif -%}"             \
  "{{- message.content ~ '" close "' -}}"                                                          \
  "{%- elif message.role == 'assistant' -%}"                                                       \
  "{{- ' ' ~ message.content ~ (eos_token or '') -}}" ROLE_ERROR(                                  \
      name) "{%- endif -%}{%- endfor -%}"

static const char mistral_v1[] = MISTRAL("mistral-v1", " [INST] ", " [/INST]");
static const char mistral_v3[] = MISTRAL("mistral-v3", "[INST] ", "[/INST]");

static const char gemma[] =
    "{%- set system = messages[0].content if messages and messages[0].role == 'system' else none "
    "-%}"
    "{{- bos_token or '' -}}"
    "{%- for message in (messages[1:] if system is not none else messages) -%}"
    "{%- if message.role == 'user' -%}"
    "{{- '<start_of_turn>user\\n' -}}"
    "{%- if loop.first and system is not none -%}{{- system ~ '\\n\\n' -}}{%- endif -%}"
    "{{- message.content | trim ~ '<end_of_turn>\\n' -}}"
    "{%- elif message.role == 'assistant' -%}"
    "{{- '<start_of_turn>model\\n' ~ message.content | trim ~ '<end_of_turn>\\n' -}}" ROLE_ERROR(
        "gemma") "{%- endif -%}{%- endfor -%}"
                 "{%- if add_generation_prompt -%}{{- '<start_of_turn>model\\n' -}}{%- endif -%}";

/* Zephyr and Phi-3 share the <|role|> layout and differ in the end-of-turn marker. */
#define ROLE_TAGS(name, end)                                                                       \
  "{%- for message in messages -%}"                                                                \
  "{%- if message.role in ['system', 'user', 'assistant'] -%}"                                     \
  "{{- '<|' ~ message.role ~ '|>\\n' ~ message.content ~ " end " ~ '\\n' -}}" ROLE_ERROR(          \
      name) "{%- endif -%}{%- endfor -%}"                                                          \
            "{%- if add_generation_prompt -%}{{- '<|assistant|>\\n' -}}{%- endif -%}"

static const char zephyr[] = ROLE_TAGS("zephyr", "(eos_token or '</s>')");
static const char phi3[] = ROLE_TAGS("phi3", "'<|end|>'");

/* Alpaca: the user turn already ends with the response header, so the generation prompt adds
 * nothing and the prompt stays a prefix of the full render. */
static const char alpaca[] =
    "{%- for message in messages -%}"
    "{%- if message.role == 'system' -%}{{- message.content ~ '\\n\\n' -}}"
    "{%- elif message.role == 'user' -%}"
    "{{- '### Instruction:\\n' ~ message.content ~ '\\n\\n### Response:\\n' -}}"
    "{%- elif message.role == 'assistant' -%}"
    "{{- message.content ~ (eos_token or '') ~ '\\n\\n' -}}" ROLE_ERROR(
        "alpaca") "{%- endif -%}{%- endfor -%}";

static const char *const builtin_names[] = {"chatml",     "llama2", "llama3", "mistral-v1",
                                            "mistral-v3", "gemma",  "zephyr", "phi3",
                                            "alpaca",     NULL};
static const char *const builtin_sources[] = {chatml, llama2, llama3, mistral_v1, mistral_v3,
                                              gemma,  zephyr, phi3,   alpaca};

const char *vkft_chat_template_builtin(const char *name) {
  for (int i = 0; builtin_names[i]; i++)
    if (strcmp(name, builtin_names[i]) == 0) return builtin_sources[i];
  return NULL;
}

const char *const *vkft_chat_template_builtin_names(void) {
  return builtin_names;
}
