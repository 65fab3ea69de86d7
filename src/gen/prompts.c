/* Prompt records -> generation requests: chat messages rendered with the chat template and its
 * generation prompt, alpaca instructions as one user message, plain text prompts, and the
 * per-record sampling keys (see vkft/gen.h). */
#include "vkft/error.h"
#include "vkft/gen.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int vkft_prompt_render_chat(const vkft_prompt_desc *d, const cJSON *messages, char **text,
                            size_t *len) {
  if (!d->chat_template)
    return vkft_error_with(VKFT_ERR_INPUT, "chat messages need a chat template (the model has "
                                           "none: pass --chat-template, e.g. chatml)");
  vkft_chat_inputs in = {
      .messages = messages, .add_generation_prompt = 1, .special_tokens = d->special_tokens};
  cJSON *ctx;
  if (vkft_chat_template_context(&in, &ctx) != VKFT_OK) return VKFT_ERR;
  int status = vkft_chat_template_render_opts(d->chat_template, ctx, d->options, text, len);
  cJSON_Delete(ctx);
  return status;
}

/* The record's messages: its own "messages", or one user message made from an alpaca
 * instruction (and a system message); NULL (no error) for a text prompt. */
static int record_messages(const cJSON *rec, cJSON **out) {
  *out = NULL;
  const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(rec, "messages");
  if (msgs) {
    if (!cJSON_IsArray(msgs) || cJSON_GetArraySize(msgs) == 0)
      return vkft_error_with(VKFT_ERR_INPUT, "\"messages\" is not a non-empty list");
    const cJSON *m;
    cJSON_ArrayForEach(m, msgs) {
      if (!vkft_record_string(m, "role") || !cJSON_GetObjectItemCaseSensitive(m, "content"))
        return vkft_error_with(VKFT_ERR_INPUT, "a message lacks \"role\" or \"content\"");
    }
    return (*out = cJSON_Duplicate(msgs, 1)) ? VKFT_OK : vkft_error_nomem();
  }
  const char *instruction = vkft_record_string(rec, "instruction");
  if (!instruction) return VKFT_OK;
  const char *input = vkft_record_string(rec, "input"), *system = vkft_record_string(rec, "system");
  size_t len = strlen(instruction) + (input ? strlen(input) : 0) + 2;
  char *user = malloc(len);
  cJSON *arr = cJSON_CreateArray(), *sys = system ? cJSON_CreateObject() : NULL,
        *u = cJSON_CreateObject();
  int ok = user && arr && u && (!system || sys);
  if (ok) {
    /* LLaMA-Factory's rule (and the dataset loader's): instruction + "\n" + input */
    snprintf(user, len, "%s%s%s", instruction, input && *input ? "\n" : "",
             input && *input ? input : "");
    ok = (!sys ||
          (cJSON_AddStringToObject(sys, "role", "system") &&
           cJSON_AddStringToObject(sys, "content", system) && cJSON_AddItemToArray(arr, sys))) &&
         cJSON_AddStringToObject(u, "role", "user") &&
         cJSON_AddStringToObject(u, "content", user) && cJSON_AddItemToArray(arr, u);
  }
  free(user);
  if (!ok) {
    cJSON_Delete(arr);
    return vkft_error_nomem();
  }
  *out = arr;
  return VKFT_OK;
}

/* A number field within [lo, hi] (absent: *v unchanged). */
static int number_field(const cJSON *rec, const char *key, double lo, double hi, double *v) {
  const cJSON *f = cJSON_GetObjectItemCaseSensitive(rec, key);
  if (!f) return VKFT_OK;
  if (!cJSON_IsNumber(f) || !(f->valuedouble >= lo && f->valuedouble <= hi))
    return vkft_error_with(VKFT_ERR_INPUT, "\"%s\" is not a number in [%g, %g]", key, lo, hi);
  *v = f->valuedouble;
  return VKFT_OK;
}

static int integer_field(const cJSON *rec, const char *key, double lo, double hi, int64_t *v) {
  double x = (double)*v;
  if (number_field(rec, key, lo, hi, &x) != VKFT_OK) return VKFT_ERR;
  if (x != floor(x)) return vkft_error_with(VKFT_ERR_INPUT, "\"%s\" is not an integer", key);
  *v = (int64_t)x;
  return VKFT_OK;
}

/* "stop": a string or a list of strings (the record owns them; *stops holds pointers). */
static int stop_field(const cJSON *rec, vkft_sampling *s, const char ***stops) {
  const cJSON *f = cJSON_GetObjectItemCaseSensitive(rec, "stop");
  if (!f) return VKFT_OK;
  int n = cJSON_IsString(f) ? 1 : cJSON_IsArray(f) ? cJSON_GetArraySize(f) : -1;
  if (n < 0) return vkft_error_with(VKFT_ERR_INPUT, "\"stop\" is not a string or a list");
  *stops = calloc((size_t)(n ? n : 1), sizeof **stops);
  if (!*stops) return vkft_error_nomem();
  const cJSON *item;
  int k = 0;
  if (cJSON_IsString(f))
    (*stops)[k++] = f->valuestring;
  else
    cJSON_ArrayForEach(item, f) {
      if (!cJSON_IsString(item))
        return vkft_error_with(VKFT_ERR_INPUT, "\"stop\" holds something not a string");
      (*stops)[k++] = item->valuestring;
    }
  s->stop = *stops;
  s->n_stop = k;
  return VKFT_OK;
}

static int record_sampling(const cJSON *rec, vkft_sampling *s, const char ***stops) {
  int64_t n = s->n, seed = (int64_t)s->seed;
  int status = number_field(rec, "temperature", 0, 100, &s->temperature) ||
               integer_field(rec, "top_k", 0, 2147483647.0, &s->top_k) ||
               number_field(rec, "top_p", 1e-9, 1, &s->top_p) ||
               number_field(rec, "min_p", 0, 0.999999, &s->min_p) ||
               number_field(rec, "repetition_penalty", 1e-6, 100, &s->repetition_penalty) ||
               integer_field(rec, "seed", 0, 9007199254740992.0, &seed) ||
               integer_field(rec, "max_new_tokens", 1, 1 << 24, &s->max_new_tokens) ||
               integer_field(rec, "n", 1, 1024, &n) || stop_field(rec, s, stops);
  s->n = (int)n;
  s->seed = (uint64_t)seed;
  return status ? VKFT_ERR : VKFT_OK;
}

/* Record i: its messages (or text prompt), its ids and its sampling. */
static int build_one(const vkft_prompt_desc *d, const cJSON *rec, vkft_prompt_set *p, size_t i) {
  vkft_gen_request *r = &p->requests[i];
  r->sampling = d->defaults;
  if (record_sampling(rec, &r->sampling, &p->stops[i]) != VKFT_OK) return VKFT_ERR;
  if (record_messages(rec, &p->messages[i]) != VKFT_OK) return VKFT_ERR;
  size_t n = 0;
  int status;
  if (p->messages[i]) {
    char *text;
    size_t len;
    status = vkft_prompt_render_chat(d, p->messages[i], &text, &len);
    if (status == VKFT_OK) {
      /* the template writes every special token itself (BOS included) */
      status = vkft_tokenizer_encode(d->tokenizer, text, len, 0, &p->ids[i], &n);
      free(text);
    }
  } else {
    const char *prompt = vkft_record_string(rec, "prompt");
    if (!prompt)
      return vkft_error_with(VKFT_ERR_INPUT, "no \"messages\", \"instruction\" or \"prompt\" "
                                             "string");
    status = vkft_tokenizer_encode(d->tokenizer, prompt, strlen(prompt), 1, &p->ids[i], &n);
  }
  if (status != VKFT_OK) return VKFT_ERR;
  if (n == 0) return vkft_error_with(VKFT_ERR_INPUT, "the prompt has no tokens");
  r->prompt = p->ids[i];
  r->prompt_len = (int64_t)n;
  int64_t need = r->prompt_len + r->sampling.max_new_tokens;
  if (need > p->longest) p->longest = need;
  return vkft_sampling_check(&r->sampling, "sampling");
}

int vkft_prompt_set_build(const vkft_prompt_desc *d, const vkft_records *records, const char *path,
                          vkft_prompt_set *out) {
  *out = (vkft_prompt_set){0};
  size_t n = records->n ? records->n : 1;
  out->requests = calloc(n, sizeof *out->requests);
  out->messages = calloc(n, sizeof *out->messages);
  out->ids = calloc(n, sizeof *out->ids);
  out->stops = calloc(n, sizeof *out->stops);
  if (!out->requests || !out->messages || !out->ids || !out->stops) {
    vkft_prompt_set_free(out);
    return vkft_error_nomem();
  }
  out->n = records->n;
  for (size_t i = 0; i < records->n; i++)
    if (build_one(d, records->items[i], out, i) != VKFT_OK) {
      vkft_error_prefix("%s:%u", path, records->lines[i]);
      vkft_prompt_set_free(out);
      return VKFT_ERR;
    }
  return VKFT_OK;
}

void vkft_prompt_set_free(vkft_prompt_set *p) {
  for (size_t i = 0; i < p->n; i++) {
    cJSON_Delete(p->messages[i]);
    free(p->ids[i]);
    free(p->stops[i]);
  }
  free(p->requests);
  free(p->messages);
  free(p->ids);
  free(p->stops);
  *p = (vkft_prompt_set){0};
}
