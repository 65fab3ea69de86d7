/* The pure pieces of `vkft data judge` (LLM-as-judge): the grammar a 1-10 score is read from in
 * the judge's text, and the instruction and reply of a record in any SFT format
 * (vkft/datagen.h). */
#include "internal.h"

#include "vkft/datagen.h"
#include "vkft/error.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the score grammar ---- */

/* A number at p: [-]digits[.digits]; its end, or NULL when p holds none. */
static const char *number_at(const char *p, double *v) {
  const char *q = p;
  if (*q == '-') q++;
  if (!isdigit((unsigned char)*q)) return NULL;
  const char *digits = q;
  while (isdigit((unsigned char)*q)) q++;
  if (q - digits > 6) return NULL; /* not a score */
  if (*q == '.' && isdigit((unsigned char)q[1])) {
    q++;
    while (isdigit((unsigned char)*q)) q++;
  }
  *v = strtod(p, NULL);
  return q;
}

static int word_is(const char *p, const char *word) {
  size_t n = strlen(word);
  for (size_t i = 0; i < n; i++)
    if (tolower((unsigned char)p[i]) != word[i]) return 0;
  return !isalnum((unsigned char)p[n]);
}

static int word_start(const char *text, const char *p) {
  return p == text || !isalnum((unsigned char)p[-1]);
}

/* The scale after a number: "/D" or "out of D" (spaces allowed); 0 when there is none. */
static double scale_after(const char *p) {
  while (*p == ' ') p++;
  double d = 0;
  if (*p == '/') {
    p++;
    while (*p == ' ') p++;
    return number_at(p, &d) ? d : 0;
  }
  if (word_is(p, "out")) {
    p += 3;
    while (*p == ' ') p++;
    if (!word_is(p, "of")) return 0;
    p += 2;
    while (*p == ' ') p++;
    return number_at(p, &d) ? d : 0;
  }
  return 0;
}

/* The keywords of tier 2, the most telling first: "the error rate is 5%" must not hide a later
 * "Score: 8". */
static const char *const keywords[] = {"score", "rating", "grade", "rated", "rate"};
enum { N_KEYWORDS = sizeof keywords / sizeof keywords[0] };

/* Tier 2: keyword k, separators, then the number; the number's start or NULL. */
static const char *after_keyword(const char *text, const char *p, int k) {
  static const char *const fillers[] = {"is", "of", "a",     "an",   "it",   "this", "as",
                                        "at", "be", "would", "will", "give", "i",    NULL};
  if (!word_start(text, p) || !word_is(p, keywords[k])) return NULL;
  const char *q = p + strlen(keywords[k]), *limit = q + 24;
  while (*q && q < limit) {
    if (strchr(" \t*:=\"'([,", *q)) {
      q++;
    } else if (*q == '-' && q[1] == ' ') {
      q += 2;
    } else {
      int f = 0;
      while (fillers[f] && !word_is(q, fillers[f])) f++;
      if (!fillers[f]) break;
      q += strlen(fillers[f]);
    }
  }
  double v;
  return number_at(q, &v) ? q : NULL;
}

/* The tiers: [[N]], one per keyword, N/10, **N**. */
enum { TIER_BRACKETS, TIER_KEYWORD, TIER_FRACTION = TIER_KEYWORD + N_KEYWORDS, TIER_BOLD };

/* The start of the first number of a tier, or NULL. */
static const char *find_tier(const char *text, int tier) {
  for (const char *p = text; *p; p++) {
    double v;
    const char *end, *n;
    if (tier == TIER_BRACKETS) {
      if (p[0] == '[' && p[1] == '[' && (end = number_at(p + 2, &v)) && end[0] == ']' &&
          end[1] == ']')
        return p + 2;
    } else if (tier < TIER_FRACTION) {
      if ((n = after_keyword(text, p, tier - TIER_KEYWORD))) return n;
    } else if (tier == TIER_FRACTION) {
      if (word_start(text, p) && (end = number_at(p, &v)) && scale_after(end) == 10) return p;
    } else {
      if (p[0] == '*' && p[1] == '*' && (end = number_at(p + 2, &v)) &&
          (!strncmp(end, "**", 2) || scale_after(end) == 10))
        return p + 2;
    }
  }
  return NULL;
}

int vkft_judge_parse_score(const char *text, double *score, char *error, size_t error_size) {
  const char *at = NULL;
  for (int tier = TIER_BRACKETS; tier <= TIER_BOLD && !at; tier++) at = find_tier(text, tier);
  if (!at) {
    snprintf(error, error_size, "no score found");
    return 0;
  }
  double v = 0; /* set: a tier only returns where a number starts */
  const char *end = number_at(at, &v);
  double scale = scale_after(end);
  int len = (int)(end - at);
  if (scale != 0 && scale != 10) {
    snprintf(error, error_size, "score %.*s/%g not on the 1-10 scale", len, at, scale);
    return 0;
  }
  if (!(v >= 1 && v <= 10)) {
    snprintf(error, error_size, "score %.*s out of range 1-10", len, at);
    return 0;
  }
  *score = v;
  if (error_size) error[0] = 0;
  return 1;
}

/* ---- a record's last exchange ---- */

static char *copy(const char *s) {
  size_t n = strlen(s) + 1;
  char *t = malloc(n);
  if (t) memcpy(t, s, n);
  return t;
}

int vkft_judge_record_turn(const cJSON *record, char **instruction, char **response) {
  *instruction = *response = NULL;
  vkft_data_format fmt = data_detect_format(record);
  if (fmt == VKFT_FORMAT_TEXT || fmt == VKFT_FORMAT_TOKENS)
    return vkft_error_with(VKFT_ERR_INPUT, "a %s record has no instruction and response to judge",
                           vkft_data_format_name(fmt));
  if (fmt == VKFT_FORMAT_AUTO)
    return vkft_error_with(VKFT_ERR_INPUT,
                           "no fields to judge: needs alpaca's \"instruction\" and \"output\", "
                           "\"messages\", \"conversations\" or \"prompt\" and \"completion\"");
  data_sample s;
  if (data_sample_from_json(record, fmt, &s) != VKFT_OK) return VKFT_ERR;
  if (!s.chat) { /* a prompt_completion record of strings */
    int status = (*instruction = copy(s.prompt)) && (*response = copy(s.completion))
                     ? VKFT_OK
                     : vkft_error_nomem();
    if (status != VKFT_OK) free(*instruction), *instruction = NULL;
    data_sample_free(&s);
    return status;
  }
  const cJSON *reply = NULL, *user = NULL;
  size_t i = 0;
  for (const cJSON *m = s.messages->child; m; m = m->next, i++)
    if (s.trained[i]) reply = m;
  for (const cJSON *m = s.messages->child; m && m != reply; m = m->next) {
    const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
    if (cJSON_IsString(role) && !strcmp(role->valuestring, "user")) user = m;
  }
  const cJSON *rc = cJSON_GetObjectItemCaseSensitive(reply, "content");
  const cJSON *uc = cJSON_GetObjectItemCaseSensitive(user, "content");
  int status = VKFT_OK;
  if (!reply)
    status = vkft_error_with(VKFT_ERR_INPUT, "no assistant reply to judge");
  else if (!user)
    status = vkft_error_with(VKFT_ERR_INPUT, "no user message before the last assistant reply");
  else if (!cJSON_IsString(rc) || !cJSON_IsString(uc))
    status = vkft_error_with(VKFT_ERR_INPUT, "the judged messages' \"content\" must be strings");
  else if (!(*instruction = copy(uc->valuestring)) || !(*response = copy(rc->valuestring)))
    status = vkft_error_nomem();
  if (status != VKFT_OK) {
    free(*instruction);
    *instruction = NULL;
  }
  data_sample_free(&s);
  return status;
}
