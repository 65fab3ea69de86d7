/* Preference samples to pairs of ids, as TRL makes them: DPO (TRL 1.9.0 DPOTrainer: the prompt
 * and prompt + completion tokenized whole, the completion being what follows the prompt's ids)
 * or ORPO (TRL 1.9.0 ORPOTrainer: chats rendered to text and split at their common start, then
 * prompt and prompt + completion tokenized without special tokens, merges at the boundary given
 * to the completion, BOS and EOS added when missing); then the truncation rules. The rules and
 * their sources are in include/vkft/pref.h and docs/PREFERENCE.md. */
#include "pref_internal.h"

#include "vkft/error.h"

#include <stdlib.h>
#include <string.h>

typedef struct idbuf {
  int32_t *p;
  size_t n;
} idbuf;

/* A pair before truncation: the shared prompt, the two completions and how many of each
 * completion's first tokens are the prompt's (ORPO). */
typedef struct pair {
  idbuf prompt, comp[2];
  uint32_t masked[2];
  int mismatch;
} pair;

static void pair_free(pair *p) {
  free(p->prompt.p);
  free(p->comp[0].p);
  free(p->comp[1].p);
}

static int encode(const pref_builder *b, const char *text, size_t len, int special, idbuf *out) {
  return vkft_tokenizer_encode(b->base->tok, text, len, special, &out->p, &out->n);
}

/* a + b (+ c) as one malloc'd string. */
static char *concat(const char *a, size_t na, const char *b, size_t nb, const char *c, size_t nc,
                    size_t *len) {
  char *s = malloc(na + nb + nc + 1);
  if (!s) return NULL;
  memcpy(s, a, na);
  memcpy(s + na, b, nb);
  memcpy(s + na + nb, c, nc);
  s[na + nb + nc] = 0;
  *len = na + nb + nc;
  return s;
}

/* ids[from, to) as a new buffer, with room for two more ids (ORPO's BOS and EOS). */
static int slice(const int32_t *ids, size_t from, size_t to, idbuf *out) {
  size_t n = to > from ? to - from : 0;
  out->p = malloc((n + 2) * sizeof *out->p);
  if (!out->p) return vkft_error_nomem();
  if (n) memcpy(out->p, ids + from, n * sizeof *ids);
  out->n = n;
  return VKFT_OK;
}

static void push_front(idbuf *x, int32_t id) {
  memmove(x->p + 1, x->p, x->n * sizeof *x->p);
  x->p[0] = id;
  x->n++;
}

static int starts_with(const idbuf *x, const idbuf *prefix) {
  return prefix->n == 0 ||
         (x->n >= prefix->n && !memcmp(x->p, prefix->p, prefix->n * sizeof *x->p));
}

/* ---- DPO ---- */

/* TRL's tokenize_fn: the completion is prompt + completion's ids after len(prompt_ids), whether
 * or not they start with prompt_ids (TRL only warns). Takes ids[0..2]. */
static int dpo_split(idbuf ids[3], pair *out) {
  out->prompt = ids[0];
  ids[0].p = NULL;
  for (int k = 0; k < 2; k++) {
    out->mismatch |= !starts_with(&ids[1 + k], &out->prompt);
    if (slice(ids[1 + k].p, out->prompt.n, ids[1 + k].n, &out->comp[k])) return VKFT_ERR;
  }
  return VKFT_OK;
}

/* Renders the prompt (k = PREF_PROMPT) or the prompt followed by completion k. */
static int render(const pref_builder *b, const pref_sample *s, int k, int gen, char **out,
                  size_t *len) {
  cJSON *msgs = cJSON_CreateArray();
  if (!msgs) return vkft_error_nomem();
  for (cJSON *m = s->part[PREF_PROMPT].messages->child; m; m = m->next)
    cJSON_AddItemReferenceToArray(msgs, m);
  for (cJSON *m = k ? s->part[k].messages->child : NULL; m; m = m->next)
    cJSON_AddItemReferenceToArray(msgs, m);
  int rc = data_render_messages(b->base, &s->part[PREF_PROMPT], msgs, s->kwargs, gen, out, len);
  cJSON_Delete(msgs);
  return rc;
}

static int dpo_chat(const pref_builder *b, const pref_sample *s, pair *out) {
  idbuf ids[3] = {{0}};
  int rc = VKFT_OK;
  for (int k = 0; k < 3 && rc == VKFT_OK; k++) {
    char *text = NULL;
    size_t len = 0;
    rc = render(b, s, k, k == PREF_PROMPT, &text, &len);
    if (rc == VKFT_OK) rc = encode(b, text, len, 0, &ids[k]);
    free(text);
    /* a model without a template: the fallback template's render gets the BOS, as for SFT */
    size_t pre = b->base->fallback_template ? b->base->n_prefix : 0;
    int32_t *p = rc == VKFT_OK ? realloc(ids[k].p, (ids[k].n + pre + 1) * sizeof *p) : NULL;
    if (rc == VKFT_OK && !p) rc = vkft_error_nomem();
    if (rc == VKFT_OK) {
      ids[k].p = p;
      memmove(p + pre, p, ids[k].n * sizeof *p);
      memcpy(p, b->base->prefix_ids, pre * sizeof *p);
      ids[k].n += pre;
    }
  }
  if (rc == VKFT_OK) rc = dpo_split(ids, out);
  for (int k = 0; k < 3; k++) free(ids[k].p);
  return rc;
}

static int ends_with(const char *s, size_t n, const char *suffix) {
  size_t k = strlen(suffix);
  return n >= k && memcmp(s + n - k, suffix, k) == 0;
}

static int dpo_text(const pref_builder *b, const pref_sample *s, pair *out) {
  const char *eos = vkft_tokenizer_eos_str(b->base->tok);
  if (!eos)
    return vkft_error("the tokenizer has no EOS token (DPO appends its text to chosen and "
                      "rejected)");
  idbuf ids[3] = {{0}};
  int rc = encode(b, s->text[PREF_PROMPT], s->len[PREF_PROMPT], 1, &ids[0]);
  for (int k = PREF_CHOSEN; k <= PREF_REJECTED && rc == VKFT_OK; k++) {
    size_t len;
    const char *tail = ends_with(s->text[k], s->len[k], eos) ? "" : eos;
    char *text = concat(s->text[PREF_PROMPT], s->len[PREF_PROMPT], s->text[k], s->len[k], tail,
                        strlen(tail), &len);
    rc = text ? encode(b, text, len, 1, &ids[k]) : vkft_error_nomem();
    free(text);
  }
  if (rc == VKFT_OK) rc = dpo_split(ids, out);
  for (int k = 0; k < 3; k++) free(ids[k].p);
  return rc;
}

/* ---- ORPO ---- */

/* TRL's ORPO tokenize_row on text: build_tokenized_answer for each completion, the check that
 * the two prompts differ at most in their last token, BOS and EOS when missing; the shared
 * prompt is the two prompts' common start, the rest of each is masked in its completion. */
static int orpo_tokens(const pref_builder *b, const char *const text[3], const size_t len[3],
                       pair *out) {
  int32_t bos = vkft_tokenizer_bos_id(b->base->tok), eos = vkft_tokenizer_eos_id(b->base->tok);
  if (eos < 0)
    return vkft_error("the tokenizer has no EOS token (ORPO ends each completion with it)");
  idbuf prompt = {0}, full = {0}, part[2] = {{0}}, answer[2] = {{0}};
  int rc = encode(b, text[0], len[0], 0, &prompt);
  for (int k = 0; k < 2 && rc == VKFT_OK; k++) {
    size_t n;
    char *t = concat(text[0], len[0], text[1 + k], len[1 + k], "", 0, &n);
    rc = t ? encode(b, t, n, 0, &full) : vkft_error_nomem();
    free(t);
    if (rc == VKFT_OK && full.n < prompt.n)
      rc = vkft_error("\"%s\": prompt + completion has fewer tokens than the prompt",
                      k ? "rejected" : "chosen");
    if (rc) break;
    /* a prompt token merged with the completion's start belongs to the completion */
    size_t start = prompt.n - (starts_with(&full, &prompt) ? 0 : 1);
    rc = slice(full.p, 0, start, &part[k]);
    if (rc == VKFT_OK) rc = slice(full.p, start, full.n, &answer[k]);
  }
  if (rc == VKFT_OK) {
    size_t diff = 0, n = part[0].n < part[1].n ? part[0].n : part[1].n;
    for (size_t i = 0; i < n; i++) diff += part[0].p[i] != part[1].p[i];
    if (diff > 1 || part[0].n > n + 1 || part[1].n > n + 1)
      rc = vkft_error("the chosen and rejected prompts tokenize differently beyond their last "
                      "token");
  }
  for (int k = 0; k < 2 && rc == VKFT_OK; k++) {
    if (bos >= 0 && (part[k].n == 0 || part[k].p[0] != bos)) push_front(&part[k], bos);
    if (answer[k].n == 0 || answer[k].p[answer[k].n - 1] != eos) answer[k].p[answer[k].n++] = eos;
  }
  if (rc == VKFT_OK) {
    size_t shared = 0;
    while (shared < part[0].n && shared < part[1].n && part[0].p[shared] == part[1].p[shared])
      shared++;
    rc = slice(part[0].p, 0, shared, &out->prompt);
    for (int k = 0; k < 2 && rc == VKFT_OK; k++) {
      out->masked[k] = (uint32_t)(part[k].n - shared);
      out->comp[k].p = malloc((out->masked[k] + answer[k].n + 1) * sizeof *out->comp[k].p);
      if (!out->comp[k].p) {
        rc = vkft_error_nomem();
        break;
      }
      memcpy(out->comp[k].p, part[k].p + shared, out->masked[k] * sizeof *part[k].p);
      memcpy(out->comp[k].p + out->masked[k], answer[k].p, answer[k].n * sizeof *answer[k].p);
      out->comp[k].n = out->masked[k] + answer[k].n;
    }
  }
  free(prompt.p), free(full.p);
  for (int k = 0; k < 2; k++) free(part[k].p), free(answer[k].p);
  return rc;
}

static int is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* The common start of two texts, never ending inside a UTF-8 character (TRL compares Python
 * characters). */
static size_t common_prefix(const char *a, size_t na, const char *b, size_t nb) {
  size_t n = 0;
  while (n < na && n < nb && a[n] == b[n]) n++;
  while (n > 0 && ((n < na && ((unsigned char)a[n] & 0xC0) == 0x80) ||
                   (n < nb && ((unsigned char)b[n] & 0xC0) == 0x80)))
    n--;
  return n;
}

/* transformers' continue_final_message: the render is cut after the last occurrence of the
 * final message's whitespace-stripped content, keeping the content's trailing whitespace when
 * the render has the content exactly. */
static int continue_final(char *text, size_t *len, const char *content) {
  const char *lstrip = content;
  while (is_space(*lstrip)) lstrip++;
  size_t n = strlen(lstrip);
  while (n && is_space(lstrip[n - 1])) n--;
  size_t at = SIZE_MAX;
  for (size_t i = *len + 1; i-- > 0;)
    if (i + n <= *len && memcmp(text + i, lstrip, n) == 0) {
      at = i;
      break;
    }
  if (at == SIZE_MAX)
    return vkft_error("the prompt's final assistant message does not appear in the chat "
                      "template's render (continue_final_message)");
  size_t full = strlen(content);
  int exact = lstrip == content && at + full <= *len && memcmp(text + at, content, full) == 0;
  size_t cut = at + (exact ? full : n);
  *len = cut < *len ? cut : *len;
  text[*len] = 0;
  return VKFT_OK;
}

/* TRL's apply_chat_template for a preference example, then orpo_tokens on the texts. */
static int orpo_chat(const pref_builder *b, const pref_sample *s, pair *out) {
  const cJSON *last = NULL;
  for (const cJSON *m = s->part[PREF_PROMPT].messages->child; m; m = m->next) last = m;
  if (!last) return vkft_error("the prompt has no message");
  const char *role = cJSON_GetObjectItemCaseSensitive(last, "role")->valuestring;
  int cont = !strcmp(role, "assistant");
  if (!cont && strcmp(role, "user") && strcmp(role, "tool"))
    return vkft_error("the prompt's last message is a \"%s\" message (ORPO: user, tool or "
                      "assistant)",
                      role);
  char *text[3] = {0};
  size_t len[3] = {0};
  int rc = VKFT_OK;
  for (int k = 0; k < 3 && rc == VKFT_OK; k++)
    rc = render(b, s, k, k == 0 && !cont, &text[k], &len[k]);
  if (rc == VKFT_OK && cont) {
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(last, "content");
    rc = continue_final(text[0], &len[0], cJSON_IsString(content) ? content->valuestring : "");
  }
  if (rc == VKFT_OK) {
    /* some templates (DeepSeek-R1) write more after the generation prompt than the completion
     * starts with: the prompt text is what all three renders share */
    size_t p = common_prefix(text[0], len[0], text[1], len[1]);
    p = common_prefix(text[0], p, text[2], len[2]);
    const char *parts[3] = {text[0], text[1] + p, text[2] + p};
    size_t lens[3] = {p, len[1] - p, len[2] - p};
    rc = orpo_tokens(b, parts, lens, out);
  }
  for (int k = 0; k < 3; k++) free(text[k]);
  return rc;
}

/* ---- pre-tokenized ---- */

static int tokenized(const pref_builder *b, const pref_sample *s, pair *out) {
  /* the model's embedding rows when given (they may outnumber the tokenizer's tokens) */
  size_t vocab = b->base->vocab_size > 0 ? (size_t)b->base->vocab_size
                 : b->base->tok          ? vkft_tokenizer_vocab_size(b->base->tok)
                                         : (size_t)INT32_MAX;
  static const char *const names[3] = {"prompt", "chosen", "rejected"};
  for (int k = 0; k < 3; k++)
    for (size_t i = 0; i < s->n_ids[k]; i++)
      if ((size_t)s->ids[k][i] >= vocab)
        return vkft_error("%s ids[%zu] = %d is outside the vocabulary (%zu ids)", names[k], i,
                          s->ids[k][i], vocab);
  if (slice(s->ids[0], 0, s->n_ids[0], &out->prompt)) return VKFT_ERR;
  for (int k = 0; k < 2; k++) {
    if (slice(s->ids[1 + k], 0, s->n_ids[1 + k], &out->comp[k])) return VKFT_ERR;
    out->masked[k] = s->masked[1 + k];
  }
  return VKFT_OK;
}

/* ---- truncation ---- */

/* Completion tokens whose label the batch keeps: not masked, and not the sequence's first
 * token (never a target after the shift). */
static uint32_t trained_count(uint32_t prompt_len, uint32_t len, uint32_t masked) {
  if (len <= masked) return 0;
  return len - masked - (prompt_len + masked == 0 ? 1 : 0);
}

static int finish(const pref_builder *b, pair *pr, vkft_pref_example *ex) {
  ex->prompt_full_len = (uint32_t)pr->prompt.n;
  ex->chosen_full_len = (uint32_t)pr->comp[0].n;
  ex->rejected_full_len = (uint32_t)pr->comp[1].n;
  ex->prompt_mismatch = pr->mismatch;
  size_t max_len = (size_t)b->base->max_len;
  /* TRL <= 0.28: the prompt keeps its end, each completion its start */
  size_t skip = 0, np = pr->prompt.n, nc[2] = {pr->comp[0].n, pr->comp[1].n};
  if (b->max_prompt_len > 0 && np > (size_t)b->max_prompt_len) {
    skip = np - (size_t)b->max_prompt_len;
    np = (size_t)b->max_prompt_len;
  }
  for (int k = 0; k < 2; k++)
    if (b->max_completion_len > 0 && nc[k] > (size_t)b->max_completion_len)
      nc[k] = (size_t)b->max_completion_len;
  /* TRL >= 0.29: each sequence keeps its first max_len tokens */
  size_t room = np < max_len ? max_len - np : 0;
  for (int k = 0; k < 2; k++)
    if (nc[k] > room) nc[k] = room;
  ex->truncated = np < pr->prompt.n || nc[0] < pr->comp[0].n || nc[1] < pr->comp[1].n;
  ex->prompt_ids = malloc((np + 1) * sizeof *ex->prompt_ids);
  ex->chosen_ids = malloc((nc[0] + 1) * sizeof *ex->chosen_ids);
  ex->rejected_ids = malloc((nc[1] + 1) * sizeof *ex->rejected_ids);
  if (!ex->prompt_ids || !ex->chosen_ids || !ex->rejected_ids) return vkft_error_nomem();
  /* (an empty prompt may have no buffer at all) */
  if (np) memcpy(ex->prompt_ids, pr->prompt.p + skip, np * sizeof *ex->prompt_ids);
  if (nc[0]) memcpy(ex->chosen_ids, pr->comp[0].p, nc[0] * sizeof *ex->chosen_ids);
  if (nc[1]) memcpy(ex->rejected_ids, pr->comp[1].p, nc[1] * sizeof *ex->rejected_ids);
  ex->prompt_len = (uint32_t)np;
  ex->chosen_len = (uint32_t)nc[0];
  ex->rejected_len = (uint32_t)nc[1];
  ex->chosen_masked = pr->masked[0] < nc[0] ? pr->masked[0] : (uint32_t)nc[0];
  ex->rejected_masked = pr->masked[1] < nc[1] ? pr->masked[1] : (uint32_t)nc[1];
  ex->chosen_trained = trained_count(ex->prompt_len, ex->chosen_len, ex->chosen_masked);
  ex->rejected_trained = trained_count(ex->prompt_len, ex->rejected_len, ex->rejected_masked);
  /* TRL 1.9.0 drops a pair whose prompt fills max_len; one with no trained token left in a
   * completion would give a log-ratio of 0 for it */
  ex->status = np < max_len && ex->chosen_trained && ex->rejected_trained ? VKFT_EXAMPLE_OK
                                                                          : VKFT_EXAMPLE_EMPTY;
  return VKFT_OK;
}

int pref_build_example(const pref_builder *b, const pref_sample *s, vkft_pref_example *ex) {
  pair pr = {0};
  int rc;
  if (s->format == VKFT_PREF_FORMAT_TOKENIZED)
    rc = tokenized(b, s, &pr);
  else if (b->style == VKFT_PREF_ORPO && s->chat)
    rc = orpo_chat(b, s, &pr);
  else if (b->style == VKFT_PREF_ORPO)
    rc = orpo_tokens(b, s->text, s->len, &pr);
  else if (s->chat)
    rc = dpo_chat(b, s, &pr);
  else
    rc = dpo_text(b, s, &pr);
  if (rc == VKFT_OK) rc = finish(b, &pr, ex);
  pair_free(&pr);
  if (rc) {
    free(ex->prompt_ids), free(ex->chosen_ids), free(ex->rejected_ids);
    ex->prompt_ids = ex->chosen_ids = ex->rejected_ids = NULL;
    ex->prompt_len = ex->chosen_len = ex->rejected_len = 0;
    ex->status = VKFT_EXAMPLE_BAD;
  }
  return rc;
}

uint32_t vkft_pref_sequence(const vkft_pref_example *ex, int which, int32_t *ids, int32_t *labels) {
  const int32_t *comp = which ? ex->rejected_ids : ex->chosen_ids;
  uint32_t n = which ? ex->rejected_len : ex->chosen_len;
  uint32_t masked = which ? ex->rejected_masked : ex->chosen_masked;
  uint32_t np = ex->prompt_len, len = np + n;
  for (uint32_t t = 0; t < len; t++) {
    int32_t id = t < np ? ex->prompt_ids[t] : comp[t - np];
    if (ids) ids[t] = id;
    if (labels) labels[t] = t == 0 || t < np + masked ? VKFT_LABEL_IGNORE : id;
  }
  return len;
}
