/* Values of the Jinja interpreter: the arena they live in, lists and dicts, and the Python
 * semantics templates depend on (truthiness, ==, <, str() and repr(), float repr). */
#include "internal.h"
#include "vkft/utf8.h"

#include "vkft/error.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- arena ---- */

struct jinja_block {
  jinja_block *next;
  size_t used, size;
  _Alignas(16) unsigned char data[];
};

void *jinja_arena_alloc(jinja_arena *arena, size_t size) {
  size = (size + 15) & ~(size_t)15;
  if (size == 0) size = 16;
  jinja_block *b = arena->head;
  if (!b || b->size - b->used < size) {
    size_t block_size = size > 65536 ? size : 65536;
    size_t limit = arena->limit ? arena->limit : JINJA_MAX_MEMORY;
    if (arena->total + block_size > limit) return NULL;
    b = malloc(sizeof *b + block_size);
    if (!b) return NULL;
    b->used = 0;
    b->size = block_size;
    b->next = arena->head;
    arena->head = b;
    arena->total += block_size;
  }
  void *p = b->data + b->used;
  b->used += size;
  memset(p, 0, size);
  return p;
}

void jinja_arena_free(jinja_arena *arena) {
  jinja_block *b = arena->head;
  while (b) {
    jinja_block *next = b->next;
    free(b);
    b = next;
  }
  arena->head = NULL;
  arena->total = 0;
}

/* ---- errors ---- */

int jinja_fail(const jinja_state *st, int line, const char *fmt, ...) {
  char msg[768];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return vkft_error("%s:%d: %s", st && st->name ? st->name : "template", line, msg);
}

/* ---- constructors ---- */

jv jv_undefined(const char *name) {
  jv v = {.type = JV_UNDEFINED};
  v.u.s.p = name;
  v.u.s.n = name ? strlen(name) : 0;
  return v;
}
jv jv_none(void) {
  return (jv){.type = JV_NONE};
}
jv jv_bool(int b) {
  jv v = {.type = JV_BOOL};
  v.u.i = b != 0;
  return v;
}
jv jv_int(int64_t i) {
  jv v = {.type = JV_INT};
  v.u.i = i;
  return v;
}
jv jv_float(double f) {
  jv v = {.type = JV_FLOAT};
  v.u.f = f;
  return v;
}
jv jv_str_ref(const char *p, size_t n) {
  jv v = {.type = JV_STR};
  v.u.s.p = p ? p : "";
  v.u.s.n = n;
  return v;
}

static int oom(const jinja_state *st) {
  return jinja_fail(st, 0, "out of memory (render arena)");
}

int jv_str_copy(jinja_state *st, const char *p, size_t n, jv *out) {
  if (n == 0) {
    *out = jv_str_ref("", 0);
    return VKFT_OK;
  }
  char *copy = jinja_arena_alloc(&st->arena, n + 1);
  if (!copy) return oom(st);
  memcpy(copy, p, n);
  *out = jv_str_ref(copy, n);
  return VKFT_OK;
}

int jv_str_from_buf(jinja_state *st, vkft_strbuf *buf, jv *out) {
  int rc = jv_str_copy(st, buf->data ? buf->data : "", buf->len, out);
  vkft_strbuf_free(buf);
  return rc;
}

int jv_new_list(jinja_state *st, size_t cap, jv *out) {
  jv_list *list = jinja_arena_alloc(&st->arena, sizeof *list);
  if (!list) return oom(st);
  if (cap) {
    list->items = jinja_arena_alloc(&st->arena, cap * sizeof(jv));
    if (!list->items) return oom(st);
    list->cap = cap;
  }
  out->type = JV_LIST;
  out->u.list = list;
  return VKFT_OK;
}

int jv_new_dict(jinja_state *st, int kind, jv *out) {
  jv_dict *dict = jinja_arena_alloc(&st->arena, sizeof *dict);
  if (!dict) return oom(st);
  dict->kind = kind;
  out->type = JV_DICT;
  out->u.dict = dict;
  return VKFT_OK;
}

/* Arrays grow inside the arena; the old copy stays there until the render ends. */
static int grow(jinja_state *st, jv **items, size_t len, size_t *cap) {
  size_t new_cap = *cap ? *cap * 2 : 4;
  jv *p = jinja_arena_alloc(&st->arena, new_cap * sizeof(jv));
  if (!p) return oom(st);
  if (len) memcpy(p, *items, len * sizeof(jv));
  *items = p;
  *cap = new_cap;
  return VKFT_OK;
}

int jv_list_push(jinja_state *st, jv_list *list, jv item) {
  if (list->len == list->cap && grow(st, &list->items, list->len, &list->cap)) return VKFT_ERR;
  list->items[list->len++] = item;
  return VKFT_OK;
}

const jv *jv_dict_get(const jv_dict *dict, jv key) {
  for (size_t i = 0; i < dict->len; i++)
    if (jv_equal(dict->keys[i], key)) return &dict->values[i];
  return NULL;
}

const jv *jv_dict_get_str(const jv_dict *dict, const char *key) {
  return jv_dict_get(dict, jv_str_ref(key, strlen(key)));
}

int jv_dict_set(jinja_state *st, jv_dict *dict, jv key, jv value) {
  for (size_t i = 0; i < dict->len; i++)
    if (jv_equal(dict->keys[i], key)) {
      dict->values[i] = value;
      return VKFT_OK;
    }
  if (dict->len == dict->cap) {
    size_t cap = dict->cap;
    if (grow(st, &dict->keys, dict->len, &cap)) return VKFT_ERR;
    size_t cap2 = dict->cap;
    if (grow(st, &dict->values, dict->len, &cap2)) return VKFT_ERR;
    dict->cap = cap;
  }
  dict->keys[dict->len] = key;
  dict->values[dict->len] = value;
  dict->len++;
  return VKFT_OK;
}

/* ---- Python semantics ---- */

int jv_truthy(jv v) {
  switch (v.type) {
  case JV_UNDEFINED:
  case JV_NONE:
    return 0;
  case JV_BOOL:
  case JV_INT:
    return v.u.i != 0;
  case JV_FLOAT:
    return v.u.f != 0.0;
  case JV_STR:
    return v.u.s.n != 0;
  case JV_LIST:
    return v.u.list->len != 0;
  case JV_DICT:
    return v.u.dict->kind != JD_DICT || v.u.dict->len != 0;
  case JV_FUNC:
  case JV_ITER: /* a generator is truthy even when it would yield nothing */
    return 1;
  }
  return 0;
}

int jv_is_number(jv v) {
  return v.type == JV_INT || v.type == JV_FLOAT || v.type == JV_BOOL;
}
double jv_as_double(jv v) {
  return v.type == JV_FLOAT ? v.u.f : (double)v.u.i;
}

static int equal_at(jv a, jv b, int depth);

/* Python ==: 1 == 1.0 == True, containers compare element-wise, Undefined equals Undefined.
 * Containers nested past JINJA_MAX_VALUE_DEPTH compare unequal (Python raises RecursionError
 * there; == has no error to give). */
int jv_equal(jv a, jv b) {
  return equal_at(a, b, 0);
}

static int equal_at(jv a, jv b, int depth) {
  if (depth > JINJA_MAX_VALUE_DEPTH) return 0;
  if (jv_is_number(a) && jv_is_number(b)) {
    if (a.type != JV_FLOAT && b.type != JV_FLOAT) return a.u.i == b.u.i;
    return jv_as_double(a) == jv_as_double(b);
  }
  if (a.type != b.type) return 0;
  switch (a.type) {
  case JV_UNDEFINED:
  case JV_NONE:
    return 1;
  case JV_STR:
    return a.u.s.n == b.u.s.n && memcmp(a.u.s.p, b.u.s.p, a.u.s.n) == 0;
  case JV_LIST:
    if (a.u.list->len != b.u.list->len || a.u.list->is_tuple != b.u.list->is_tuple) return 0;
    for (size_t i = 0; i < a.u.list->len; i++)
      if (!equal_at(a.u.list->items[i], b.u.list->items[i], depth + 1)) return 0;
    return 1;
  case JV_DICT:
    if (a.u.dict == b.u.dict) return 1;
    if (a.u.dict->kind != JD_DICT || b.u.dict->kind != JD_DICT) return 0;
    if (a.u.dict->len != b.u.dict->len) return 0;
    for (size_t i = 0; i < a.u.dict->len; i++) {
      const jv *other = jv_dict_get(b.u.dict, a.u.dict->keys[i]);
      if (!other || !equal_at(a.u.dict->values[i], *other, depth + 1)) return 0;
    }
    return 1;
  case JV_FUNC:
    return a.u.func == b.u.func;
  case JV_ITER:
    return a.u.iter == b.u.iter;
  default:
    return 0;
  }
}

const char *jv_type_name(jv v) {
  switch (v.type) {
  case JV_UNDEFINED:
    return "Undefined";
  case JV_NONE:
    return "NoneType";
  case JV_BOOL:
    return "bool";
  case JV_INT:
    return "int";
  case JV_FLOAT:
    return "float";
  case JV_STR:
    return v.markup ? "Markup" : "str";
  case JV_LIST:
    return v.u.list->is_tuple ? "tuple" : "list";
  case JV_DICT:
    return v.u.dict->kind == JD_NAMESPACE ? "Namespace" : "dict";
  case JV_FUNC:
    return "function";
  case JV_ITER:
    return jinja_iter_type_name(v.u.iter);
  }
  return "?";
}

int jv_compare(const jinja_state *st, int line, jv a, jv b, int *result) {
  /* lists compare at their first unequal items: descend there (a loop, not recursion) */
  for (int depth = 0; depth <= JINJA_MAX_VALUE_DEPTH; depth++) {
    if (jv_is_number(a) && jv_is_number(b)) {
      if (a.type != JV_FLOAT && b.type != JV_FLOAT)
        *result = a.u.i < b.u.i ? -1 : a.u.i > b.u.i;
      else {
        double x = jv_as_double(a), y = jv_as_double(b);
        *result = x < y ? -1 : x > y;
      }
      return VKFT_OK;
    }
    if (a.type == JV_STR && b.type == JV_STR) {
      /* UTF-8 byte order is code point order, which is how Python orders str. */
      size_t n = a.u.s.n < b.u.s.n ? a.u.s.n : b.u.s.n;
      int c = memcmp(a.u.s.p, b.u.s.p, n);
      *result = c < 0 ? -1 : c > 0 ? 1 : a.u.s.n < b.u.s.n ? -1 : a.u.s.n > b.u.s.n;
      return VKFT_OK;
    }
    if (a.type != JV_LIST || b.type != JV_LIST || a.u.list->is_tuple != b.u.list->is_tuple)
      return jinja_fail(st, line, "'<' not supported between instances of '%s' and '%s'",
                        jv_type_name(a), jv_type_name(b));
    size_t n = a.u.list->len < b.u.list->len ? a.u.list->len : b.u.list->len, i = 0;
    while (i < n && jv_equal(a.u.list->items[i], b.u.list->items[i])) i++;
    if (i == n) {
      *result = a.u.list->len < b.u.list->len ? -1 : a.u.list->len > b.u.list->len;
      return VKFT_OK;
    }
    a = a.u.list->items[i];
    b = b.u.list->items[i];
  }
  return jinja_fail(st, line, "cannot compare values nested deeper than %d levels",
                    JINJA_MAX_VALUE_DEPTH);
}

/* ---- UTF-8 ---- */

uint32_t utf8_decode(const char *p, size_t n, size_t *used) {
  if (n == 0) {
    *used = 0;
    return 0;
  }
  uint32_t cp;
  *used = vkft_utf8_decode_lenient(p, n, &cp);
  return cp == VKFT_UTF8_BAD ? (unsigned char)p[0] : cp; /* a malformed byte stands for itself */
}

size_t utf8_length(const char *p, size_t n) {
  size_t count = 0, used;
  for (size_t i = 0; i < n; i += used) {
    utf8_decode(p + i, n - i, &used);
    count++;
  }
  return count;
}

size_t utf8_offset(const char *p, size_t n, size_t index) {
  size_t i = 0, used;
  while (index > 0 && i < n) {
    utf8_decode(p + i, n - i, &used);
    i += used;
    index--;
  }
  return i;
}

/* ---- str() and repr() ---- */

/* Python's repr(float): the shortest digits that round-trip, fixed notation for exponents
 * -4..15, scientific ("1e+16", "1e-05") outside, and ".0" on integral values. */
void jinja_float_repr(double f, char out[40]) {
  if (isnan(f)) {
    strcpy(out, "nan");
    return;
  }
  if (isinf(f)) {
    strcpy(out, f < 0 ? "-inf" : "inf");
    return;
  }
  char tmp[40];
  int prec;
  for (prec = 1; prec <= 17; prec++) {
    snprintf(tmp, sizeof tmp, "%.*e", prec - 1, f);
    if (strtod(tmp, NULL) == f) break;
  }
  /* tmp is [-]d[.ddd]e[+-]xx */
  const char *s = tmp;
  int neg = 0;
  if (*s == '-') {
    neg = 1;
    s++;
  }
  char digits[24];
  int nd = 0;
  for (; *s && *s != 'e'; s++)
    if (*s != '.') digits[nd++] = *s;
  int exp = atoi(s + 1);
  while (nd > 1 && digits[nd - 1] == '0') nd--;
  char *o = out;
  if (neg) *o++ = '-';
  if (exp >= -4 && exp < 16) {
    if (exp >= 0) {
      for (int i = 0; i <= exp; i++) *o++ = i < nd ? digits[i] : '0';
      *o++ = '.';
      if (nd > exp + 1)
        for (int i = exp + 1; i < nd; i++) *o++ = digits[i];
      else
        *o++ = '0';
    } else {
      *o++ = '0';
      *o++ = '.';
      for (int i = 0; i < -exp - 1; i++) *o++ = '0';
      for (int i = 0; i < nd; i++) *o++ = digits[i];
    }
    *o = 0;
  } else {
    *o++ = digits[0];
    if (nd > 1) {
      *o++ = '.';
      for (int i = 1; i < nd; i++) *o++ = digits[i];
    }
    sprintf(o, "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
  }
}

/* repr(str): single quotes unless the text has ' and no ", escapes like Python's. */
static int write_str_repr(vkft_strbuf *buf, const char *p, size_t n) {
  int has_single = memchr(p, '\'', n) != NULL, has_double = memchr(p, '"', n) != NULL;
  char quote = has_single && !has_double ? '"' : '\'';
  if (vkft_strbuf_putc(buf, quote)) return VKFT_ERR;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)p[i];
    char esc[8];
    const char *e = NULL;
    if (c == '\\')
      e = "\\\\";
    else if (c == '\n')
      e = "\\n";
    else if (c == '\r')
      e = "\\r";
    else if (c == '\t')
      e = "\\t";
    else if (c == (unsigned char)quote)
      e = quote == '\'' ? "\\'" : "\\\"";
    else if (c < 0x20 || c == 0x7F) {
      snprintf(esc, sizeof esc, "\\x%02x", c);
      e = esc;
    }
    if (e ? vkft_strbuf_puts(buf, e) : vkft_strbuf_putc(buf, (char)c)) return VKFT_ERR;
  }
  return vkft_strbuf_putc(buf, quote);
}

static int write_value(vkft_strbuf *buf, jv v, int repr, int depth);

int jv_write_str(vkft_strbuf *buf, jv v, int repr) {
  return write_value(buf, v, repr, 0);
}

static int write_value(vkft_strbuf *buf, jv v, int repr, int depth) {
  char num[48];
  if (depth > JINJA_MAX_VALUE_DEPTH)
    return vkft_error("cannot print a value nested deeper than %d levels", JINJA_MAX_VALUE_DEPTH);
  switch (v.type) {
  case JV_UNDEFINED:
    return VKFT_OK;
  case JV_NONE:
    return vkft_strbuf_puts(buf, "None");
  case JV_BOOL:
    return vkft_strbuf_puts(buf, v.u.i ? "True" : "False");
  case JV_INT:
    snprintf(num, sizeof num, "%lld", (long long)v.u.i);
    return vkft_strbuf_puts(buf, num);
  case JV_FLOAT:
    jinja_float_repr(v.u.f, num);
    return vkft_strbuf_puts(buf, num);
  case JV_STR:
    return repr ? write_str_repr(buf, v.u.s.p, v.u.s.n) : vkft_strbuf_add(buf, v.u.s.p, v.u.s.n);
  case JV_LIST: {
    const jv_list *l = v.u.list;
    if (vkft_strbuf_putc(buf, l->is_tuple ? '(' : '[')) return VKFT_ERR;
    for (size_t i = 0; i < l->len; i++) {
      if (i && vkft_strbuf_puts(buf, ", ")) return VKFT_ERR;
      if (write_value(buf, l->items[i], 1, depth + 1)) return VKFT_ERR;
    }
    if (l->is_tuple && l->len == 1 && vkft_strbuf_putc(buf, ',')) return VKFT_ERR;
    return vkft_strbuf_putc(buf, l->is_tuple ? ')' : ']');
  }
  case JV_DICT: {
    const jv_dict *d = v.u.dict;
    if (d->kind == JD_NAMESPACE && vkft_strbuf_puts(buf, "<Namespace ")) return VKFT_ERR;
    if (vkft_strbuf_putc(buf, '{')) return VKFT_ERR;
    for (size_t i = 0; i < d->len; i++) {
      if (i && vkft_strbuf_puts(buf, ", ")) return VKFT_ERR;
      if (write_value(buf, d->keys[i], 1, depth + 1) || vkft_strbuf_puts(buf, ": ") ||
          write_value(buf, d->values[i], 1, depth + 1))
        return VKFT_ERR;
    }
    if (vkft_strbuf_putc(buf, '}')) return VKFT_ERR;
    return d->kind == JD_NAMESPACE ? vkft_strbuf_putc(buf, '>') : VKFT_OK;
  }
  case JV_FUNC:
    return vkft_strbuf_puts(buf, "<function>");
  case JV_ITER: /* Python prints "<generator object ... at 0x7f...>": an address, never text
                 * a template can mean */
    return vkft_error("cannot print a %s (Jinja2 prints its memory address); use |list",
                      jinja_iter_type_name(v.u.iter));
  }
  return VKFT_OK;
}

int jv_to_str(jinja_state *st, jv v, jv *out) {
  if (v.type == JV_STR) {
    *out = v;
    return VKFT_OK;
  }
  if (v.type == JV_UNDEFINED) {
    *out = jv_str_ref("", 0);
    return VKFT_OK;
  }
  vkft_strbuf buf = {.limit = st->max_output};
  if (jv_write_str(&buf, v, 0)) {
    vkft_strbuf_free(&buf);
    return VKFT_ERR;
  }
  return jv_str_from_buf(st, &buf, out);
}
