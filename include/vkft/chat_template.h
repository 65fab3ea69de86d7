/* Chat templates: renders a model's own Jinja `chat_template` byte-identically to
 * transformers' `apply_chat_template` (Jinja2 with trim_blocks, lstrip_blocks and the
 * loopcontrols extension, transformers' `tojson`, `raise_exception` and `strftime_now`).
 *
 *   vkft_chat_template *t;
 *   if (vkft_chat_template_load("models/qwen3", NULL, &t)) return VKFT_ERR;
 *   cJSON *ctx = ...;  // {"messages": [...], "add_generation_prompt": false, "eos_token": ...}
 *   char *text; size_t len;
 *   int rc = vkft_chat_template_render(t, ctx, &text, &len);
 *   ...; free(text); vkft_chat_template_free(t);
 *
 * Supported: {{ }}, {% %}, {# #}, whitespace control (-, +), if/elif/else, for (loop.*, else,
 * `for x in y if c`, unpacking), break/continue, set (namespace attributes, block set),
 * macro/call, filter blocks, raw, transformers' {% generation %} (rendered as is), Python
 * expressions, the common filters, tests, str/dict/list methods and the globals range,
 * namespace, dict, raise_exception and strftime_now. Anything else (an unknown filter, test,
 * statement or method) fails with a message naming it and the template line; rendering never
 * guesses. Jinja2's quirks are transformers' too and are kept: map/select/... return one-pass
 * generators (truthy, no length, refused by tojson), |safe makes a Markup that HTML-escapes
 * what `+` adds to it, and the sandbox refuses list/dict mutators (append, pop, update, ...).
 * A template that raises in transformers fails here. Renders are bounded: nesting depth, a
 * work budget (max_steps) and an output size (max_output) end a runaway template with an
 * error. Errors are values: functions return VKFT_OK or VKFT_ERR with vkft_error_message(). */
#ifndef VKFT_CHAT_TEMPLATE_H
#define VKFT_CHAT_TEMPLATE_H

#include <stddef.h>

#include <cjson/cJSON.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct vkft_chat_template vkft_chat_template;

/* Parses Jinja source; name (e.g. a file path) prefixes error messages: "name:line: ...". */
int vkft_chat_template_parse(const char *source, const char *name, vkft_chat_template **out);
void vkft_chat_template_free(vkft_chat_template *t);
/* The source the template was parsed from. */
const char *vkft_chat_template_source(const vkft_chat_template *t);

typedef struct vkft_chat_template_options {
  /* The date strftime_now() renders (at 00:00:00); 0 = 26 Jul 2024, the date transformers'
   * Llama 3.1 template falls back to. transformers formats datetime.now(); vkft never reads
   * the wall clock, so renders repeat (`vkft tokenize --date`, `vkft generate --date`). */
  int year, month, day;
  size_t max_output; /* 0 = 64 MiB; larger renders fail */
  /* Work budget: loop iterations + macro calls + items made by range() and filters; 0 = one
   * million. A template past it (e.g. a `range(10000000)` loop) fails with an error instead
   * of running on. */
  unsigned long max_steps;
} vkft_chat_template_options;

/* Sets options' date from "YYYY-MM-DD" (a real calendar date). */
int vkft_chat_template_parse_date(const char *text, vkft_chat_template_options *options);

/* What apply_chat_template renders with, as transformers builds it (render_jinja_template in
 * transformers/utils/chat_template_utils.py): messages; tools and documents, which a template
 * sees as None when absent; add_generation_prompt; the tokenizer's special tokens and extra
 * keyword arguments (enable_thinking, reasoning_effort, ...). Every vkft command renders
 * through this, so a template that fails in transformers fails in vkft too. */
typedef struct vkft_chat_inputs {
  const cJSON *messages;  /* array */
  const cJSON *tools;     /* array, or NULL / JSON null: None */
  const cJSON *documents; /* array, or NULL / JSON null: None */
  int add_generation_prompt;
  const cJSON *special_tokens; /* object (vkft_chat_template_special_tokens) or NULL */
  const cJSON *kwargs;         /* object of extra variables or NULL; its messages, tools,
                                * documents and add_generation_prompt keys are ignored */
} vkft_chat_inputs;

/* Builds the render context for in. The new object refers to the inputs' items without
 * copying them: keep them alive until cJSON_Delete(*out). */
int vkft_chat_template_context(const vkft_chat_inputs *in, cJSON **out);

/* Renders with every key of the JSON object context as a template variable (messages, tools,
 * add_generation_prompt, bos_token, eos_token, enable_thinking, date_string, ...). Numbers
 * with an integral value become ints (cJSON keeps no int/float distinction). *out is malloc'd
 * and NUL-terminated; *out_len (may be NULL) excludes the NUL. options may be NULL. */
int vkft_chat_template_render_opts(const vkft_chat_template *t, const cJSON *context,
                                   const vkft_chat_template_options *options, char **out,
                                   size_t *out_len);
int vkft_chat_template_render(const vkft_chat_template *t, const cJSON *context, char **out,
                              size_t *out_len);

/* Built-in templates under llama.cpp's names: chatml, llama2, llama3, mistral-v1, mistral-v3,
 * gemma, zephyr, phi3, and alpaca. Each renders "prompt + answer" so that the render of
 * messages[:-1] with add_generation_prompt is a prefix of the full render. NULL if unknown. */
const char *vkft_chat_template_builtin(const char *name);
/* NULL-terminated list of the built-in names. */
const char *const *vkft_chat_template_builtin_names(void);

/* Loads a template from a path: a ".jinja" file; or a model folder, whose chat_template.jinja
 * wins over tokenizer_config.json's "chat_template" (a string, or a list of {name, template}
 * where variant picks the entry, NULL = "default"). */
int vkft_chat_template_load(const char *path, const char *variant, vkft_chat_template **out);

/* The special tokens transformers passes to the template, read from a model folder's
 * tokenizer_config.json: bos/eos/unk/sep/pad/cls/mask_token (strings or {"content": ...}
 * objects; null ones left out) and additional_special_tokens. *out is a new cJSON object the
 * caller frees (add its items to the render context). */
int vkft_chat_template_special_tokens(const char *model_dir, cJSON **out);

#ifdef __cplusplus
}
#endif
#endif
