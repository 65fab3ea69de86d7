/* The pure pieces of `vkft data synth` (self-instruct, Wang et al. 2022, in the variant of
 * Stanford Alpaca): {{name}} templates, seeded sampling of the seed tasks shown in a prompt, and
 * the clean-up and checks of a generated instruction (vkft/datagen.h). */
#include "vkft/buf.h"
#include "vkft/datagen.h"
#include "vkft/error.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

/* ---- templates ---- */

static int is_name_char(char c) {
  return isalnum((unsigned char)c) || c == '_';
}

/* {{ name }} at p: the name's span, and the end of the placeholder; 0 when p holds none. */
static int placeholder_at(const char *p, const char **name, size_t *len, const char **end) {
  if (p[0] != '{' || p[1] != '{') return 0;
  const char *a = p + 2;
  while (*a == ' ') a++;
  const char *b = a;
  while (is_name_char(*b)) b++;
  const char *c = b;
  while (*c == ' ') c++;
  if (b == a || c[0] != '}' || c[1] != '}') return 0;
  *name = a;
  *len = (size_t)(b - a);
  *end = c + 2;
  return 1;
}

int vkft_template_render(const char *text, const char *where, const vkft_template_var *vars,
                         size_t n_vars, char **out, size_t *used) {
  vkft_strbuf b = {0};
  *out = NULL;
  for (size_t k = 0; used && k < n_vars; k++) used[k] = 0;
  int status = vkft_strbuf_add(&b, "", 0);
  for (const char *p = text; *p && status == VKFT_OK;) {
    const char *name, *end;
    size_t len;
    if (!placeholder_at(p, &name, &len, &end)) {
      const char *next = strstr(p + 1, "{{");
      size_t run = next ? (size_t)(next - p) : strlen(p);
      status = vkft_strbuf_add(&b, p, run);
      p += run;
      continue;
    }
    size_t k = 0;
    while (k < n_vars && !(strlen(vars[k].name) == len && !strncmp(vars[k].name, name, len))) k++;
    if (k == n_vars) {
      status = vkft_error_with(VKFT_ERR_INPUT, "%s: unknown placeholder {{%.*s}}", where, (int)len,
                               name);
      break;
    }
    if (used) used[k]++;
    status = vkft_strbuf_add(&b, vars[k].value, strlen(vars[k].value));
    p = end;
  }
  if (status != VKFT_OK) {
    free(b.data);
    return VKFT_ERR;
  }
  *out = b.data;
  return VKFT_OK;
}

/* ---- seeded choices ---- */

static uint64_t splitmix64(uint64_t *state) {
  uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

uint64_t vkft_synth_request_seed(uint64_t seed, uint32_t stage, uint64_t index) {
  uint64_t s = seed ^ ((uint64_t)stage << 56);
  splitmix64(&s);
  s ^= index * 0xD1B54A32D192ED03ull;
  return splitmix64(&s) >> 11; /* below 2^53: exact as a JSON number */
}

/* Uniform in [0, bound) without modulo bias. */
static uint64_t draw_below(uint64_t *state, uint64_t bound) {
  uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
  for (;;) {
    uint64_t x = splitmix64(state);
    if (x < limit) return x % bound;
  }
}

void vkft_synth_sample_seeds(uint64_t seed, uint64_t prompt, size_t n, size_t k, size_t *out) {
  uint64_t state = vkft_synth_request_seed(seed, 0xFF, prompt);
  if (k > n) k = n;
  /* Floyd's algorithm: k distinct values, each k-subset equally likely ... */
  size_t m = 0;
  for (size_t j = n - k; j < n; j++) {
    size_t t = (size_t)draw_below(&state, j + 1);
    int seen = 0;
    for (size_t i = 0; i < m && !seen; i++) seen = out[i] == t;
    out[m++] = seen ? j : t;
  }
  /* ... then in a random order (Floyd's order is not uniform) */
  for (size_t i = k; i > 1; i--) {
    size_t j = (size_t)draw_below(&state, i);
    size_t t = out[i - 1];
    out[i - 1] = out[j];
    out[j] = t;
  }
}

/* ---- a generated instruction ---- */

const char *vkft_synth_reject_name(vkft_synth_reject r) {
  static const char *const names[] = {"ok",        "empty",    "truncated",
                                      "too short", "too long", "starts with punctuation"};
  return (unsigned)r < sizeof names / sizeof names[0] ? names[r] : "?";
}

static int starts_with_word(const char *s, size_t n, const char *word) {
  size_t w = strlen(word);
  if (n < w) return 0;
  for (size_t i = 0; i < w; i++)
    if (tolower((unsigned char)s[i]) != word[i]) return 0;
  return n == w || !is_name_char(s[w]);
}

/* One list marker or numbering at the start of [*s, *s + *n): removed; 1 when there was one. */
static int strip_marker(const char **s, size_t *n) {
  const char *p = *s, *end = *s + *n;
  if (p < end && (*p == '*' || *p == '#' || *p == '-' || *p == '>')) {
    while (p < end && (*p == '*' || *p == '#' || *p == '-' || *p == '>')) p++;
  } else if (end - p >= 3 && !memcmp(p, "\xE2\x80\xA2", 3)) { /* U+2022, a bullet */
    p += 3;
  } else {
    static const char *const words[] = {"new instruction", "instruction", "new task", "task", NULL};
    const char *q = p;
    for (int w = 0; words[w]; w++)
      if (starts_with_word(p, (size_t)(end - p), words[w])) {
        q = p + strlen(words[w]);
        break;
      }
    while (q < end && *q == ' ') q++;
    const char *digits = q;
    while (q < end && isdigit((unsigned char)*q)) q++;
    /* a separator after a number or a word: "4." "4)" "4:" "Task:" "Task 4:", but not "3.5" */
    int has_prefix = q > p;
    if (!has_prefix || q >= end || !(*q == '.' || *q == ')' || *q == ':')) return 0;
    if (q == digits && *q != ':') return 0; /* "Task." is not a label */
    if (q + 1 < end && isdigit((unsigned char)q[1])) return 0;
    p = q + 1;
  }
  while (p < end && isspace((unsigned char)*p)) p++;
  *s = p;
  *n = (size_t)(end - p);
  return 1;
}

int vkft_synth_parse_instruction(const char *generation, int truncated,
                                 const vkft_synth_limits *limits, char **out) {
  *out = NULL;
  const char *line = generation, *s = NULL;
  size_t n = 0;
  int last_line = 0;
  while (*line) {
    const char *nl = strchr(line, '\n');
    const char *end = nl ? nl : line + strlen(line);
    s = line;
    n = (size_t)(end - line);
    while (n && isspace((unsigned char)*s)) s++, n--;
    while (n && isspace((unsigned char)s[n - 1])) n--;
    for (int k = 0; k < 3 && n && strip_marker(&s, &n); k++) {
    }
    while (n && (s[n - 1] == '*' || isspace((unsigned char)s[n - 1]))) n--; /* "**" closing */
    if (n >= 2 && s[0] == '"' && s[n - 1] == '"') s++, n -= 2;
    if (n) {
      last_line = nl == NULL;
      break;
    }
    line = nl ? nl + 1 : end;
  }
  if (!n) return VKFT_SYNTH_EMPTY;
  if (truncated && last_line) return VKFT_SYNTH_TRUNCATED;
  if (ispunct((unsigned char)s[0])) return VKFT_SYNTH_PUNCTUATION;
  char *text = malloc(n + 1);
  if (!text) return vkft_error_nomem();
  size_t m = 0;
  int words = 0;
  for (size_t i = 0; i < n; i++) {
    if (isspace((unsigned char)s[i])) {
      if (m && text[m - 1] != ' ') text[m++] = ' ';
    } else {
      words += !m || text[m - 1] == ' ';
      text[m++] = s[i];
    }
  }
  text[m] = 0;
  int min_words = limits && limits->min_words > 0 ? limits->min_words : 1;
  int max_words = limits && limits->max_words > 0 ? limits->max_words : 1 << 30;
  if (words < min_words || words > max_words) {
    free(text);
    return words < min_words ? VKFT_SYNTH_TOO_SHORT : VKFT_SYNTH_TOO_LONG;
  }
  *out = text;
  return VKFT_SYNTH_OK;
}

/* s with white space runs made one space and trimmed; lower: ASCII letters lower-cased. */
static char *squeeze(const char *s, int lower) {
  size_t n = strlen(s), m = 0;
  char *t = malloc(n + 1);
  if (!t) return NULL;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (isspace(c)) {
      if (m && t[m - 1] != ' ') t[m++] = ' ';
    } else {
      t[m++] = lower && c < 0x80 ? (char)tolower(c) : (char)c;
    }
  }
  while (m && t[m - 1] == ' ') m--;
  t[m] = 0;
  return t;
}

char *vkft_synth_one_line(const char *s) {
  return squeeze(s, 0);
}

char *vkft_synth_dedup_text(const char *s) {
  return squeeze(s, 1);
}
