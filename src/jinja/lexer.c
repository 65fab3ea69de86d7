/* Jinja lexer: splits template source into text and tag tokens, applying whitespace control
 * exactly as Jinja2's lexer does with transformers' settings (trim_blocks=True,
 * lstrip_blocks=True, keep_trailing_newline=False), and tokenizes the expressions in tags. */
#include "internal.h"

#include "vkft/buf.h"
#include "vkft/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct lexer {
  const char *src; /* newline-normalized copy */
  size_t len, pos;
  int line;
  const char *name;
  jinja_arena *arena;
  jinja_tokens *tokens;
} lexer;

static int lex_fail(const lexer *lx, int line, const char *msg) {
  return vkft_error("%s:%d: %s", lx->name, line, msg);
}

static int emit(lexer *lx, jinja_token_type type, int line, const char *text, size_t len,
                jinja_token **out) {
  jinja_tokens *t = lx->tokens;
  if (vkft_grow((void **)&t->items, &t->cap, t->len + 1, sizeof *t->items)) return VKFT_ERR;
  jinja_token *tok = &t->items[t->len++];
  memset(tok, 0, sizeof *tok);
  tok->type = type;
  tok->line = line;
  tok->text = text;
  tok->len = len;
  if (out) *out = tok;
  return VKFT_OK;
}

static int is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static int count_lines(const char *p, size_t n) {
  int lines = 0;
  for (size_t i = 0; i < n; i++) lines += p[i] == '\n';
  return lines;
}

static int emit_text(lexer *lx, const char *p, size_t n, int line) {
  if (n == 0) return VKFT_OK;
  return emit(lx, JT_TEXT, line, p, n, NULL);
}

/* Jinja's OptionalLStrip: "-" strips all whitespace before the tag; otherwise, for blocks and
 * comments (not {{ }}), lstrip_blocks removes spaces and tabs back to the start of the line
 * when nothing else precedes the tag on that line. */
static size_t strip_before_tag(const char *text, size_t n, char sign, int is_variable,
                               int line_starting) {
  if (sign == '-') {
    while (n > 0 && is_space(text[n - 1])) n--;
    return n;
  }
  if (sign == '+' || is_variable) return n;
  size_t l_pos = n;
  while (l_pos > 0 && text[l_pos - 1] != '\n') l_pos--;
  if (l_pos == 0 && !line_starting) return n;
  for (size_t i = l_pos; i < n; i++)
    if (text[i] != ' ' && text[i] != '\t') return n;
  return l_pos;
}

/* Decodes a string literal body the way Jinja does (Python "unicode-escape" after
 * backslash-replacing non-ASCII): known escapes are translated, unknown ones kept verbatim. */
static int decode_string(lexer *lx, const char *p, size_t n, const char **out, size_t *out_len) {
  char *dst = jinja_arena_alloc(lx->arena, n + 1);
  if (!dst) return vkft_error_nomem();
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    if (p[i] != '\\' || i + 1 >= n) {
      dst[o++] = p[i];
      continue;
    }
    char c = p[++i];
    switch (c) {
    case '\n':
      break; /* line continuation */
    case '\\':
      dst[o++] = '\\';
      break;
    case '\'':
      dst[o++] = '\'';
      break;
    case '"':
      dst[o++] = '"';
      break;
    case 'n':
      dst[o++] = '\n';
      break;
    case 't':
      dst[o++] = '\t';
      break;
    case 'r':
      dst[o++] = '\r';
      break;
    case 'a':
      dst[o++] = '\a';
      break;
    case 'b':
      dst[o++] = '\b';
      break;
    case 'f':
      dst[o++] = '\f';
      break;
    case 'v':
      dst[o++] = '\v';
      break;
    case 'x':
    case 'u':
    case 'U': {
      int digits = c == 'x' ? 2 : c == 'u' ? 4 : 8;
      uint32_t cp = 0;
      for (int k = 0; k < digits; k++) {
        char h = i + 1 + (size_t)k < n ? p[i + 1 + k] : 0;
        int d = h >= '0' && h <= '9'   ? h - '0'
                : h >= 'a' && h <= 'f' ? h - 'a' + 10
                : h >= 'A' && h <= 'F' ? h - 'A' + 10
                                       : -1;
        if (d < 0)
          return vkft_error("%s:%d: truncated \\%c escape in string", lx->name, lx->line, c);
        cp = cp * 16 + (uint32_t)d;
      }
      if (cp > 0x10FFFF) return vkft_error("%s:%d: invalid \\U escape", lx->name, lx->line);
      i += (size_t)digits;
      o += vkft_utf8_encode(cp, dst + o); /* encoded length <= escape length */
      break;
    }
    default:
      if (c >= '0' && c <= '7') {
        uint32_t cp = 0;
        int k = 0;
        while (k < 3 && i < n && p[i] >= '0' && p[i] <= '7')
          cp = cp * 8 + (uint32_t)(p[i++] - '0'), k++;
        i--;
        o += vkft_utf8_encode(cp, dst + o);
      } else {
        dst[o++] = '\\';
        dst[o++] = c;
      }
    }
  }
  dst[o] = 0;
  *out = dst;
  *out_len = o;
  return VKFT_OK;
}

/* Operators, longest first so "**" wins over "*" and "//" over "/". */
static const char *const operators[] = {"//", "**", "==", "!=", "<=", ">=", "+", "-", "/",
                                        "*",  "%",  "~",  "[",  "]",  "(",  ")", "{", "}",
                                        "<",  ">",  "=",  ".",  ":",  "|",  ",", ";"};

static int is_digit(char c) {
  return c >= '0' && c <= '9';
}
static int is_name_start(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

/* One expression token at lx->pos (whitespace already skipped). */
static int lex_expr_token(lexer *lx) {
  const char *s = lx->src + lx->pos;
  size_t rest = lx->len - lx->pos;
  char c = s[0];
  if (is_name_start(c)) {
    size_t n = 1;
    while (n < rest && (is_name_start(s[n]) || is_digit(s[n]))) n++;
    lx->pos += n;
    return emit(lx, JT_NAME, lx->line, s, n, NULL);
  }
  if (is_digit(c)) {
    /* Jinja: integers with optional "_" separators; floats need a fraction or exponent. */
    size_t n = 0;
    int is_float = 0;
    while (n < rest && (is_digit(s[n]) || (s[n] == '_' && n + 1 < rest && is_digit(s[n + 1])))) n++;
    if (n + 1 < rest && s[n] == '.' && is_digit(s[n + 1])) {
      is_float = 1;
      n++;
      while (n < rest && (is_digit(s[n]) || s[n] == '_')) n++;
    }
    if (n < rest && (s[n] == 'e' || s[n] == 'E')) {
      size_t m = n + 1;
      if (m < rest && (s[m] == '+' || s[m] == '-')) m++;
      if (m < rest && is_digit(s[m])) {
        is_float = 1;
        n = m;
        while (n < rest && is_digit(s[n])) n++;
      }
    }
    char buf[64];
    size_t k = 0;
    for (size_t i = 0; i < n && k < sizeof buf - 1; i++)
      if (s[i] != '_') buf[k++] = s[i];
    buf[k] = 0;
    jinja_token *tok = NULL;
    if (emit(lx, is_float ? JT_FLOAT : JT_INT, lx->line, s, n, &tok)) return VKFT_ERR;
    if (is_float)
      tok->float_value = strtod(buf, NULL);
    else {
      uint64_t v = 0;
      for (size_t i = 0; i < k; i++) {
        if (v > ((uint64_t)INT64_MAX - (uint64_t)(buf[i] - '0')) / 10)
          return lex_fail(lx, lx->line, "integer literal too large");
        v = v * 10 + (uint64_t)(buf[i] - '0');
      }
      tok->int_value = (int64_t)v;
    }
    lx->pos += n;
    return VKFT_OK;
  }
  if (c == '\'' || c == '"') {
    size_t n = 1;
    while (n < rest && s[n] != c) n += s[n] == '\\' ? 2 : 1;
    if (n >= rest) return lex_fail(lx, lx->line, "unterminated string literal");
    jinja_token *tok = NULL;
    const char *text = NULL;
    size_t text_len = 0;
    if (decode_string(lx, s + 1, n - 1, &text, &text_len)) return VKFT_ERR;
    if (emit(lx, JT_STRING, lx->line, text, text_len, &tok)) return VKFT_ERR;
    lx->line += count_lines(s, n + 1);
    lx->pos += n + 1;
    return VKFT_OK;
  }
  for (size_t i = 0; i < sizeof operators / sizeof operators[0]; i++) {
    size_t n = strlen(operators[i]);
    if (n <= rest && memcmp(s, operators[i], n) == 0) {
      lx->pos += n;
      return emit(lx, JT_OP, lx->line, operators[i], n, NULL);
    }
  }
  char msg[64];
  snprintf(msg, sizeof msg, "unexpected character '%c'", c);
  return lex_fail(lx, lx->line, msg);
}

/* Tokens of one {{ }} or {% %} tag up to its end delimiter; returns whether the match ended
 * in a newline (Jinja's line_starting). Like Jinja, the end delimiter only counts outside
 * brackets, so `{{ {'a': {}} }}` works. */
static int lex_tag(lexer *lx, int is_block, int *line_starting) {
  int begin_line = lx->line, depth = 0;
  char open[JINJA_MAX_NESTING];
  for (;;) {
    while (lx->pos < lx->len && is_space(lx->src[lx->pos])) {
      if (lx->src[lx->pos] == '\n') lx->line++;
      lx->pos++;
    }
    if (lx->pos >= lx->len)
      return lex_fail(lx, begin_line,
                      is_block ? "unexpected end of template: '%}' missing"
                               : "unexpected end of template: '}}' missing");
    const char *s = lx->src + lx->pos;
    size_t rest = lx->len - lx->pos;
    char close = is_block ? '%' : '}';
    if (depth > 0) {
      /* inside brackets: no end delimiter check */
    } else if (rest >= 3 && s[0] == '-' && s[1] == close && s[2] == '}') {
      lx->pos += 3;
      if (emit(lx, is_block ? JT_BLOCK_END : JT_VAR_END, lx->line, NULL, 0, NULL)) return VKFT_ERR;
      *line_starting = 0;
      while (lx->pos < lx->len && is_space(lx->src[lx->pos])) {
        *line_starting = lx->src[lx->pos] == '\n';
        lx->line += lx->src[lx->pos] == '\n';
        lx->pos++;
      }
      return VKFT_OK;
    }
    if (depth == 0 && is_block && rest >= 3 && s[0] == '+' && s[1] == '%' && s[2] == '}') {
      lx->pos += 3;
      *line_starting = 0;
      return emit(lx, JT_BLOCK_END, lx->line, NULL, 0, NULL);
    }
    if (depth == 0 && rest >= 2 && s[0] == close && s[1] == '}') {
      lx->pos += 2;
      if (emit(lx, is_block ? JT_BLOCK_END : JT_VAR_END, lx->line, NULL, 0, NULL)) return VKFT_ERR;
      *line_starting = 0;
      if (is_block && lx->pos < lx->len && lx->src[lx->pos] == '\n') { /* trim_blocks */
        lx->pos++;
        lx->line++;
        *line_starting = 1;
      }
      return VKFT_OK;
    }
    if (lex_expr_token(lx)) return VKFT_ERR;
    const jinja_token *t = &lx->tokens->items[lx->tokens->len - 1];
    if (t->type != JT_OP || t->len != 1) continue;
    char c = t->text[0];
    if (c == '(' || c == '[' || c == '{') {
      if (depth == JINJA_MAX_NESTING) return lex_fail(lx, lx->line, "brackets nested too deeply");
      open[depth++] = c;
    } else if (c == ')' || c == ']' || c == '}') {
      char want = c == ')' ? '(' : c == ']' ? '[' : '{';
      if (depth == 0 || open[depth - 1] != want) {
        char msg[32];
        snprintf(msg, sizeof msg, "unexpected '%c'", c);
        return lex_fail(lx, t->line, msg);
      }
      depth--;
    }
  }
}

/* {% raw %}: if the block at pos is a raw begin, returns the position after it. */
static size_t match_keyword_tag(const lexer *lx, size_t pos, const char *word, int *strip_after) {
  const char *s = lx->src;
  size_t i = pos + 2;
  if (i < lx->len && (s[i] == '-' || s[i] == '+')) i++;
  while (i < lx->len && is_space(s[i])) i++;
  size_t wl = strlen(word);
  if (i + wl > lx->len || memcmp(s + i, word, wl) != 0) return 0;
  i += wl;
  while (i < lx->len && is_space(s[i])) i++;
  *strip_after = 0;
  if (i + 3 <= lx->len && s[i] == '-' && s[i + 1] == '%' && s[i + 2] == '}') {
    *strip_after = 1;
    return i + 3;
  }
  if (i + 3 <= lx->len && s[i] == '+' && s[i + 1] == '%' && s[i + 2] == '}') {
    *strip_after = 2;
    return i + 3;
  }
  if (i + 2 <= lx->len && s[i] == '%' && s[i + 1] == '}') return i + 2;
  return 0;
}

static int lex_raw(lexer *lx, int *line_starting) {
  size_t start = lx->pos;
  for (size_t i = start; i + 1 < lx->len; i++) {
    if (lx->src[i] != '{' || lx->src[i + 1] != '%') continue;
    int strip_after;
    size_t end = match_keyword_tag(lx, i, "endraw", &strip_after);
    if (!end) continue;
    char sign = lx->src[i + 2] == '-' || lx->src[i + 2] == '+' ? lx->src[i + 2] : 0;
    size_t n = strip_before_tag(lx->src + start, i - start, sign, 0, *line_starting);
    if (emit_text(lx, lx->src + start, n, lx->line)) return VKFT_ERR;
    lx->line += count_lines(lx->src + start, end - start);
    lx->pos = end;
    *line_starting = 0;
    if (strip_after == 1) {
      while (lx->pos < lx->len && is_space(lx->src[lx->pos])) {
        *line_starting = lx->src[lx->pos] == '\n';
        lx->line += lx->src[lx->pos] == '\n';
        lx->pos++;
      }
    } else if (strip_after == 0 && lx->pos < lx->len && lx->src[lx->pos] == '\n') {
      lx->pos++;
      lx->line++;
      *line_starting = 1;
    }
    return VKFT_OK;
  }
  return lex_fail(lx, lx->line, "missing end of raw directive ({% endraw %})");
}

/* Jinja normalizes \r\n and \r to \n and drops one trailing newline before lexing. */
static char *normalize_source(const char *source, size_t *len) {
  size_t n = strlen(source);
  char *dst = malloc(n + 1);
  if (!dst) return NULL;
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    if (source[i] == '\r') {
      dst[o++] = '\n';
      if (i + 1 < n && source[i + 1] == '\n') i++;
    } else
      dst[o++] = source[i];
  }
  if (o > 0 && dst[o - 1] == '\n') o--;
  dst[o] = 0;
  *len = o;
  return dst;
}

int jinja_lex(const char *source, const char *name, jinja_arena *arena, jinja_tokens *tokens) {
  size_t len;
  char *norm = normalize_source(source, &len);
  if (!norm) return vkft_error_nomem();
  /* Token texts point into the source: keep the normalized copy in the arena. */
  char *src = jinja_arena_alloc(arena, len + 1);
  if (!src) {
    free(norm);
    return vkft_error_nomem();
  }
  memcpy(src, norm, len + 1);
  free(norm);
  lexer lx = {.src = src, .len = len, .line = 1, .name = name, .arena = arena, .tokens = tokens};
  int line_starting = 1;
  while (lx.pos < lx.len) {
    /* next tag start */
    size_t tag = lx.pos;
    char kind = 0;
    for (; tag + 1 < lx.len; tag++)
      if (src[tag] == '{' && (src[tag + 1] == '{' || src[tag + 1] == '%' || src[tag + 1] == '#')) {
        kind = src[tag + 1];
        break;
      }
    if (!kind) {
      if (emit_text(&lx, src + lx.pos, lx.len - lx.pos, lx.line)) return VKFT_ERR;
      break;
    }
    char sign = tag + 2 < lx.len && (src[tag + 2] == '-' || src[tag + 2] == '+') ? src[tag + 2] : 0;
    int raw_strip = 0;
    size_t raw_end = kind == '%' ? match_keyword_tag(&lx, tag, "raw", &raw_strip) : 0;
    size_t text_len =
        strip_before_tag(src + lx.pos, tag - lx.pos, sign, kind == '{', line_starting);
    if (emit_text(&lx, src + lx.pos, text_len, lx.line)) return VKFT_ERR;
    lx.line += count_lines(src + lx.pos, tag - lx.pos);
    lx.pos = tag + 2 + (sign ? 1 : 0);
    if (raw_end) {
      /* raw begin: "-%}" strips following whitespace; no trim_blocks newline (as Jinja) */
      lx.line += count_lines(src + tag, raw_end - tag);
      lx.pos = raw_end;
      if (raw_strip == 1)
        while (lx.pos < lx.len && is_space(src[lx.pos])) lx.line += src[lx.pos++] == '\n';
      line_starting = src[lx.pos - 1] == '\n';
      if (lex_raw(&lx, &line_starting)) return VKFT_ERR;
    } else if (kind == '#') {
      int begin_line = lx.line;
      size_t end = lx.pos;
      while (end + 1 < lx.len && !(src[end] == '#' && src[end + 1] == '}')) end++;
      if (end + 1 >= lx.len) return lex_fail(&lx, begin_line, "missing end of comment tag");
      char end_sign =
          end > lx.pos && (src[end - 1] == '-' || src[end - 1] == '+') ? src[end - 1] : 0;
      lx.line += count_lines(src + lx.pos, end - lx.pos);
      lx.pos = end + 2;
      line_starting = 0;
      if (end_sign == '-') {
        while (lx.pos < lx.len && is_space(src[lx.pos])) {
          line_starting = src[lx.pos] == '\n';
          lx.line += src[lx.pos++] == '\n';
        }
      } else if (end_sign != '+' && lx.pos < lx.len && src[lx.pos] == '\n') {
        lx.pos++;
        lx.line++;
        line_starting = 1;
      }
    } else {
      int is_block = kind == '%';
      if (emit(&lx, is_block ? JT_BLOCK_BEGIN : JT_VAR_BEGIN, lx.line, NULL, 0, NULL))
        return VKFT_ERR;
      if (lex_tag(&lx, is_block, &line_starting)) return VKFT_ERR;
    }
  }
  return emit(&lx, JT_EOF, lx.line, NULL, 0, NULL);
}
