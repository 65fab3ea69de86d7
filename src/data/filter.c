/* Rule-based filtering for `vkft data filter`: empty and refusal-like replies, length bounds
 * (characters of the reply, tokens of the example), a script check by character class, the
 * share of repeated lines in a reply, and bounds on the scores `vkft data score` wrote. Each
 * rule names itself as the drop reason. */
#include "vkft/dataset.h"

#include "vkft/utf8.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

/* as U+FFFD where malformed, like a lenient decoder */
static uint32_t next_cp(const unsigned char **s) {
  uint32_t c = vkft_utf8_next(s);
  return c == VKFT_UTF8_BAD ? 0xFFFD : c;
}

static size_t count_cps(const char *s) {
  size_t n = 0;
  for (const unsigned char *p = (const unsigned char *)s; *p; n++) next_cp(&p);
  return n;
}

static int is_blank(const char *s) {
  for (; *s; s++)
    if (!isspace((unsigned char)*s)) return 0;
  return 1;
}

/* Refusal openings (lower case) looked for at the start of a reply: the boilerplate of
 * distilled chat data that fine-tuning guides remove. */
static const char *const refusals[] = {"as an ai language model",
                                       "as an ai,",
                                       "as an ai assistant",
                                       "i'm sorry, but i can",
                                       "i'm sorry, but as an ai",
                                       "i am sorry, but i can",
                                       "i cannot assist",
                                       "i can't assist",
                                       "i cannot help with",
                                       "i can't help with",
                                       "i'm unable to",
                                       "i am unable to",
                                       "i apologize, but i can",
                                       "i cannot fulfill",
                                       "i can't fulfill",
                                       "i'm not able to provide",
                                       "作为一个人工智能",
                                       "作为一个ai",
                                       "作为ai语言模型",
                                       "我无法",
                                       "抱歉，我不能"};

static int is_refusal(const char *reply) {
  char head[301];
  size_t n = 0;
  for (const char *p = reply; *p && n < 300; p++) head[n++] = (char)tolower((unsigned char)*p);
  head[n] = 0;
  for (size_t i = 0; i < sizeof refusals / sizeof refusals[0]; i++)
    if (strstr(head, refusals[i])) return 1;
  return 0;
}

typedef enum script {
  S_NONE,
  S_LATIN,
  S_CYRILLIC,
  S_GREEK,
  S_ARABIC,
  S_HEBREW,
  S_DEVANAGARI,
  S_CJK
} script;

static script script_of(uint32_t c) {
  if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
      (c >= 0xC0 && c <= 0x24F && c != 0xD7 && c != 0xF7))
    return S_LATIN;
  if (c >= 0x400 && c <= 0x4FF) return S_CYRILLIC;
  if (c >= 0x370 && c <= 0x3FF) return S_GREEK;
  if (c >= 0x600 && c <= 0x6FF) return S_ARABIC;
  if (c >= 0x590 && c <= 0x5FF) return S_HEBREW;
  if (c >= 0x900 && c <= 0x97F) return S_DEVANAGARI;
  if ((c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
      (c >= 0x3040 && c <= 0x30FF) || (c >= 0xAC00 && c <= 0xD7AF) ||
      (c >= 0x20000 && c <= 0x2A6DF))
    return S_CJK;
  return S_NONE;
}

static int parse_script(const char *name, script *out) {
  static const char *const names[] = {"",       "latin",  "cyrillic",   "greek",
                                      "arabic", "hebrew", "devanagari", "cjk"};
  for (int i = 1; i < 8; i++)
    if (!strcmp(name, names[i])) return *out = (script)i, 1;
  return 0;
}

/* Share of the letters (of the known scripts) in text that are of script s; -1 if none. */
static double script_ratio(const char *text, script s) {
  size_t letters = 0, match = 0;
  for (const unsigned char *p = (const unsigned char *)text; *p;) {
    script k = script_of(next_cp(&p));
    letters += k != S_NONE;
    match += k == s;
  }
  return letters ? (double)match / (double)letters : -1;
}

/* Share of the non-blank lines of text that repeat an earlier line (after trimming). */
static double repeated_lines(const char *text) {
  enum { MAX_LINES = 2000 };
  const char *start[MAX_LINES];
  size_t len[MAX_LINES], n = 0, repeats = 0;
  for (const char *p = text; *p && n < MAX_LINES;) {
    const char *e = strchr(p, '\n');
    if (!e) e = p + strlen(p);
    const char *a = p, *b = e;
    while (a < b && isspace((unsigned char)*a)) a++;
    while (b > a && isspace((unsigned char)b[-1])) b--;
    if (b > a) {
      for (size_t k = 0; k < n; k++)
        if (len[k] == (size_t)(b - a) && memcmp(start[k], a, len[k]) == 0) {
          repeats++;
          break;
        }
      start[n] = a;
      len[n++] = (size_t)(b - a);
    }
    p = *e ? e + 1 : e;
  }
  return n >= 4 ? (double)repeats / (double)n : 0;
}

/* The score bounds: NULL when the record passes them, else the reason. */
static const char *score_check(const vkft_filter_desc *d, const vkft_example *ex) {
  if (!d->n_bounds) return NULL;
  cJSON *r = ex->raw ? cJSON_ParseWithLength(ex->raw, ex->raw_len) : NULL;
  const cJSON *scores = cJSON_GetObjectItemCaseSensitive(r, "scores");
  const char *why = NULL;
  for (size_t i = 0; i < d->n_bounds && !why; i++) {
    const vkft_score_bound *b = &d->bounds[i];
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(scores, b->field);
    if (!cJSON_IsNumber(v))
      why = "no score";
    else if (b->is_max ? v->valuedouble > b->value : v->valuedouble < b->value)
      why = b->is_max ? "score above max" : "score below min";
  }
  cJSON_Delete(r);
  return why;
}

int vkft_filter_example(const vkft_filter_desc *d, const vkft_example *ex, const char **reason) {
  const char *reply = ex->reply_text ? ex->reply_text : "";
  const char *prompt = ex->prompt_text ? ex->prompt_text : "";
  *reason = NULL;
  if (ex->status == VKFT_EXAMPLE_BAD) return *reason = "bad record", 0;
  if ((*reason = score_check(d, ex)) != NULL) return 0;
  if (!d->keep_empty && is_blank(reply)) return *reason = "empty reply", 0;
  size_t chars = count_cps(reply);
  if (d->min_reply_chars && chars < d->min_reply_chars) return *reason = "reply too short", 0;
  if (d->max_reply_chars && chars > d->max_reply_chars) return *reason = "reply too long", 0;
  if (ex->input_ids) {
    if (d->min_tokens && ex->full_len < d->min_tokens) return *reason = "too few tokens", 0;
    if (d->max_tokens && ex->full_len > d->max_tokens) return *reason = "too many tokens", 0;
  }
  if (!d->keep_refusals && is_refusal(reply)) return *reason = "refusal", 0;
  script s;
  if (d->script && *d->script && parse_script(d->script, &s)) {
    double min = d->min_script_ratio > 0 ? d->min_script_ratio : 0.5;
    double r1 = script_ratio(reply, s), r0 = script_ratio(prompt, s);
    if ((r1 >= 0 && r1 < min) || (r0 >= 0 && r0 < min)) return *reason = "other script", 0;
  }
  double max_rep = d->max_repeated_lines > 0 ? d->max_repeated_lines : 0.5;
  if (max_rep < 1 && repeated_lines(reply) > max_rep) return *reason = "repeated lines", 0;
  return 1;
}

/* Known names for vkft_filter_desc.script, for the CLI's validation. */
int vkft_filter_script_known(const char *name) {
  script s;
  return parse_script(name, &s);
}
