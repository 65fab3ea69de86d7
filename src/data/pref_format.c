/* Preference formats: detects a record's format from its keys and converts TRL's standard,
 * conversational, implicit-prompt and tokenized records and LLaMA-Factory's sharegpt and alpaca
 * ranking records into one sample: prompt / chosen / rejected as OpenAI-form messages, as
 * strings or as ids. Implicit prompts are extracted as TRL's extract_prompt does; the sources of
 * every rule are in docs/PREFERENCE.md. */
#include "pref_internal.h"

#include "vkft/error.h"
#include "vkft/utf8.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const part_names[3] = {"prompt", "chosen", "rejected"};

/* The tokenized columns: TRL <= 0.28 tokenize_row's names, then TRL >= 0.29 tokenize_fn's. */
static const char *const ids_keys[2][3] = {
    {"prompt_input_ids", "chosen_input_ids", "rejected_input_ids"},
    {"prompt_ids", "chosen_ids", "rejected_ids"}};

static const cJSON *get(const cJSON *obj, const char *key) {
  return cJSON_GetObjectItemCaseSensitive(obj, key);
}

vkft_pref_format pref_detect_format(const cJSON *r) {
  if (!cJSON_IsObject(r)) return VKFT_PREF_FORMAT_AUTO;
  if (get(r, ids_keys[0][PREF_CHOSEN]) || get(r, ids_keys[1][PREF_CHOSEN]))
    return VKFT_PREF_FORMAT_TOKENIZED;
  const cJSON *chosen = get(r, "chosen");
  if (!chosen || !get(r, "rejected")) return VKFT_PREF_FORMAT_AUTO;
  if (get(r, "conversations")) return VKFT_PREF_FORMAT_SHAREGPT;
  if (get(r, "instruction")) return VKFT_PREF_FORMAT_ALPACA;
  if (get(r, "prompt"))
    return cJSON_IsArray(chosen) ? VKFT_PREF_FORMAT_CONVERSATIONAL : VKFT_PREF_FORMAT_STANDARD;
  return VKFT_PREF_FORMAT_IMPLICIT;
}

/* ---- parts ---- */

static int init_chat(pref_sample *s) {
  s->chat = 1;
  for (int k = 0; k < 3; k++) {
    s->part[k].format = VKFT_FORMAT_MESSAGES;
    s->part[k].chat = 1;
    s->part[k].messages = cJSON_CreateArray();
    if (!s->part[k].messages) return vkft_error_nomem();
  }
  return VKFT_OK;
}

/* Messages [from, to) of a JSON list, converted into part k. */
static int add_range(pref_sample *s, int k, const cJSON *list, size_t from, size_t to,
                     const char *key) {
  cJSON *refs = cJSON_CreateArray();
  if (!refs) return vkft_error_nomem();
  size_t i = 0;
  for (const cJSON *m = list->child; m && i < to; m = m->next, i++)
    if (i >= from) cJSON_AddItemReferenceToArray(refs, (cJSON *)m);
  int rc = data_sample_add_messages(&s->part[k], refs, key, k == PREF_PROMPT);
  cJSON_Delete(refs);
  return rc;
}

static int message_list(const cJSON *r, const char *key, const cJSON **out) {
  *out = get(r, key);
  if (!*out) return vkft_error("missing field \"%s\"", key);
  if (!cJSON_IsArray(*out)) return vkft_error("\"%s\" must be a list of messages", key);
  return VKFT_OK;
}

static int chat_extras(const cJSON *r, pref_sample *s) {
  const cJSON *kwargs = get(r, "chat_template_kwargs");
  if (kwargs && !cJSON_IsNull(kwargs)) {
    if (!cJSON_IsObject(kwargs)) return vkft_error("\"chat_template_kwargs\" must be an object");
    s->kwargs = kwargs;
  }
  return data_sample_add_tools(&s->part[PREF_PROMPT], get(r, "tools"));
}

static int text_field(const cJSON *r, const char *key, pref_sample *s, int k) {
  const cJSON *v = get(r, key);
  if (!v) return vkft_error("missing field \"%s\"", key);
  if (!cJSON_IsString(v)) return vkft_error("\"%s\" must be a string", key);
  s->text[k] = v->valuestring;
  s->len[k] = strlen(v->valuestring);
  return VKFT_OK;
}

/* ---- TRL formats ---- */

static int from_standard(const cJSON *r, pref_sample *s) {
  for (int k = 0; k < 3; k++)
    if (text_field(r, part_names[k], s, k)) return VKFT_ERR;
  return VKFT_OK;
}

static int from_conversational(const cJSON *r, pref_sample *s) {
  const cJSON *lists[3];
  for (int k = 0; k < 3; k++) {
    if (message_list(r, part_names[k], &lists[k])) return VKFT_ERR;
    if (k != PREF_PROMPT && cJSON_GetArraySize(lists[k]) == 0)
      return vkft_error("\"%s\" is empty", part_names[k]);
  }
  if (init_chat(s)) return VKFT_ERR;
  for (int k = 0; k < 3; k++)
    if (add_range(s, k, lists[k], 0, SIZE_MAX, part_names[k])) return VKFT_ERR;
  return chat_extras(r, s);
}

/* TRL's extract_prompt on strings, character by character (Python indexes code points): the
 * prompt ends at the first character where chosen and rejected differ, or one character earlier
 * when that is a space (the space goes to the completions). When one is a prefix of the other
 * Python's loop ends on its last index without a break: the prompt is all but the shorter
 * one's last character. Returns the prompt's length in bytes. */
static int extract_text_prompt(const char *a, const char *b, size_t *prompt_len) {
  const unsigned char *p = (const unsigned char *)a, *q = (const unsigned char *)b;
  size_t last = 0; /* byte offset of the last common character */
  int n_chars = 0;
  while (*p && *q) {
    const unsigned char *p0 = p, *q0 = q;
    vkft_utf8_next(&p);
    vkft_utf8_next(&q);
    if (p - p0 != q - q0 || memcmp(p0, q0, (size_t)(p - p0)) != 0) {
      size_t at = (size_t)(p0 - (const unsigned char *)a);
      /* the character before the difference; at the first character Python would read
       * chosen[-1], the last one, which is an accident we do not copy */
      *prompt_len = at > 0 && a[at - 1] == ' ' ? at - 1 : at;
      return VKFT_OK;
    }
    last = (size_t)(p0 - (const unsigned char *)a);
    n_chars++;
  }
  if (n_chars == 0) return vkft_error("\"chosen\" or \"rejected\" is empty: no prompt to extract");
  *prompt_len = last;
  return VKFT_OK;
}

/* The same on message lists: the longest run of equal leading messages (equal as JSON values,
 * as Python compares dicts), with the same no-difference rule. */
static size_t extract_message_prompt(const cJSON *a, const cJSON *b) {
  size_t i = 0;
  for (const cJSON *x = a->child, *y = b->child; x && y; x = x->next, y = y->next, i++)
    if (!cJSON_Compare(x, y, 1)) return i;
  return i - 1; /* both lists are not empty */
}

static int from_implicit(const cJSON *r, pref_sample *s) {
  const cJSON *c = get(r, "chosen"), *j = get(r, "rejected");
  if (!c || !j) return vkft_error("missing field \"%s\"", c ? "rejected" : "chosen");
  if (cJSON_IsString(c) && cJSON_IsString(j)) {
    size_t at = 0;
    if (extract_text_prompt(c->valuestring, j->valuestring, &at)) return VKFT_ERR;
    s->text[PREF_PROMPT] = c->valuestring;
    s->len[PREF_PROMPT] = at;
    s->text[PREF_CHOSEN] = c->valuestring + at;
    s->len[PREF_CHOSEN] = strlen(c->valuestring) - at;
    s->text[PREF_REJECTED] = j->valuestring + at;
    s->len[PREF_REJECTED] = strlen(j->valuestring) - at;
    return VKFT_OK;
  }
  if (!cJSON_IsArray(c) || !cJSON_IsArray(j))
    return vkft_error("\"chosen\" and \"rejected\" must both be strings or both be lists of "
                      "messages");
  if (cJSON_GetArraySize(c) == 0 || cJSON_GetArraySize(j) == 0)
    return vkft_error("\"chosen\" or \"rejected\" is empty: no prompt to extract");
  size_t at = extract_message_prompt(c, j);
  if (init_chat(s) || add_range(s, PREF_PROMPT, c, 0, at, "chosen") ||
      add_range(s, PREF_CHOSEN, c, at, SIZE_MAX, "chosen") ||
      add_range(s, PREF_REJECTED, j, at, SIZE_MAX, "rejected"))
    return VKFT_ERR;
  return chat_extras(r, s);
}

static int from_tokenized(const cJSON *r, pref_sample *s) {
  int naming = get(r, ids_keys[0][PREF_CHOSEN]) ? 0 : 1;
  for (int k = 0; k < 3; k++) {
    const char *key = ids_keys[naming][k];
    const cJSON *list = get(r, key);
    if (!list) return vkft_error("missing field \"%s\"", key);
    if (!cJSON_IsArray(list)) return vkft_error("\"%s\" must be a list of token ids", key);
    size_t n = (size_t)cJSON_GetArraySize(list), i = 0;
    s->ids[k] = malloc((n ? n : 1) * sizeof *s->ids[k]);
    if (!s->ids[k]) return vkft_error_nomem();
    for (const cJSON *v = list->child; v; v = v->next, i++) {
      if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < 0 ||
          v->valuedouble > INT32_MAX)
        return vkft_error("\"%s\"[%zu] is not a token id", key, i);
      s->ids[k][i] = (int32_t)v->valuedouble;
    }
    s->n_ids[k] = n;
  }
  /* vkft's own addition, written by `vkft data prepare` only when not 0 (ORPO) */
  static const char *const masked_keys[3] = {NULL, "chosen_masked", "rejected_masked"};
  for (int k = PREF_CHOSEN; k <= PREF_REJECTED; k++) {
    const cJSON *v = get(r, masked_keys[k]);
    if (!v) continue;
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < 0 ||
        v->valuedouble > (double)s->n_ids[k])
      return vkft_error("\"%s\" must be a token count within \"%s\"", masked_keys[k],
                        ids_keys[naming][k]);
    s->masked[k] = (uint32_t)v->valuedouble;
  }
  return VKFT_OK;
}

/* ---- LLaMA-Factory ranking formats ---- */

static int assistant_message(const cJSON *r, const char *key, pref_sample *s, int k) {
  const cJSON *m = get(r, key);
  if (!m) return vkft_error("missing field \"%s\"", key);
  if (!cJSON_IsObject(m))
    return vkft_error("\"%s\" must be one message {\"from\": \"gpt\", \"value\": ...}", key);
  cJSON *list = cJSON_CreateArray();
  if (!list) return vkft_error_nomem();
  cJSON_AddItemReferenceToArray(list, (cJSON *)m);
  int rc = data_sample_add_messages(&s->part[k], list, key, 0);
  cJSON_Delete(list);
  if (rc) return VKFT_ERR;
  const cJSON *role = get(s->part[k].messages->child, "role");
  if (!cJSON_IsString(role) || strcmp(role->valuestring, "assistant") != 0)
    return vkft_error("\"%s\" must be an assistant message (from gpt or function_call)", key);
  return VKFT_OK;
}

/* LLaMA-Factory's SharegptDatasetConverter: an optional leading system turn, then turns that
 * alternate user/observation and assistant/function_call, an odd number of them. */
static int from_sharegpt(const cJSON *r, pref_sample *s) {
  const cJSON *turns;
  if (message_list(r, "conversations", &turns) || init_chat(s)) return VKFT_ERR;
  size_t first = 0;
  const cJSON *t0 = turns->child, *from = t0 ? get(t0, "from") : NULL;
  if (!from && t0) from = get(t0, "role");
  if (cJSON_IsString(from) && !strcmp(from->valuestring, "system")) {
    first = 1;
  } else {
    const cJSON *system = get(r, "system");
    if (system && !cJSON_IsNull(system) && !cJSON_IsString(system))
      return vkft_error("\"system\" must be a string");
    if (cJSON_IsString(system) && system->valuestring[0] &&
        data_sample_add_message(&s->part[PREF_PROMPT], "system", system->valuestring, 0))
      return VKFT_ERR;
  }
  size_t n_system = s->part[PREF_PROMPT].n_messages;
  if (add_range(s, PREF_PROMPT, turns, 0, SIZE_MAX, "conversations")) return VKFT_ERR;
  size_t n = s->part[PREF_PROMPT].n_messages - n_system - first, i = 0;
  if (n % 2 == 0)
    return vkft_error("\"conversations\" must have an odd number of turns (after a system turn) "
                      "ending with the user's; it has %zu",
                      n);
  for (const cJSON *m = cJSON_GetArrayItem(s->part[PREF_PROMPT].messages, (int)(n_system + first));
       m; m = m->next, i++) {
    const char *role = get(m, "role")->valuestring;
    int ok =
        i % 2 == 0 ? !strcmp(role, "user") || !strcmp(role, "tool") : !strcmp(role, "assistant");
    if (!ok)
      return vkft_error("\"conversations\" turn %zu is \"%s\": turns must alternate user (or "
                        "observation) and assistant (or function_call)",
                        first + i, role);
  }
  if (assistant_message(r, "chosen", s, PREF_CHOSEN) ||
      assistant_message(r, "rejected", s, PREF_REJECTED))
    return VKFT_ERR;
  return chat_extras(r, s);
}

static int from_alpaca(const cJSON *r, pref_sample *s) {
  if (init_chat(s)) return VKFT_ERR;
  s->part[PREF_PROMPT].format = VKFT_FORMAT_ALPACA;
  if (data_sample_alpaca_prompt(r, &s->part[PREF_PROMPT])) return VKFT_ERR;
  for (int k = PREF_CHOSEN; k <= PREF_REJECTED; k++) {
    const cJSON *v = get(r, part_names[k]);
    if (!v) return vkft_error("missing field \"%s\"", part_names[k]);
    if (!cJSON_IsString(v)) return vkft_error("\"%s\" must be a string", part_names[k]);
    if (data_sample_add_message(&s->part[k], "assistant", v->valuestring, 1)) return VKFT_ERR;
  }
  return chat_extras(r, s);
}

int pref_sample_from_json(const cJSON *record, vkft_pref_format fmt, pref_sample *s) {
  memset(s, 0, sizeof *s);
  s->format = fmt;
  if (!cJSON_IsObject(record)) return vkft_error("the record is not a JSON object");
  int rc;
  switch (fmt) {
  case VKFT_PREF_FORMAT_STANDARD:
    rc = from_standard(record, s);
    break;
  case VKFT_PREF_FORMAT_CONVERSATIONAL:
    rc = from_conversational(record, s);
    break;
  case VKFT_PREF_FORMAT_IMPLICIT:
    rc = from_implicit(record, s);
    break;
  case VKFT_PREF_FORMAT_SHAREGPT:
    rc = from_sharegpt(record, s);
    break;
  case VKFT_PREF_FORMAT_ALPACA:
    rc = from_alpaca(record, s);
    break;
  case VKFT_PREF_FORMAT_TOKENIZED:
    rc = from_tokenized(record, s);
    break;
  default:
    rc = vkft_error("unknown preference format (expected the fields of trl_standard, "
                    "trl_conversational, trl_implicit_prompt, sharegpt_ranking, alpaca_ranking "
                    "or trl_tokenized)");
  }
  if (rc) pref_sample_free(s);
  return rc;
}

void pref_sample_free(pref_sample *s) {
  for (int k = 0; k < 3; k++) {
    data_sample_free(&s->part[k]);
    free(s->ids[k]);
  }
  memset(s, 0, sizeof *s);
}

int pref_sample_flatten(pref_sample *s) {
  for (int k = 0; s->chat && k < 3; k++)
    if (data_sample_flatten(&s->part[k])) return VKFT_ERR;
  return VKFT_OK;
}
