/* Jinja filters and tests: the subset Hugging Face chat templates use, each matching Jinja2's
 * filters.py/tests.py (and transformers' own `tojson`). An unknown filter or test is an error
 * naming it, never a silent pass-through. */
#include "internal.h"

#include "vkft/error.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int need_str(jinja_state *st, jv v, jv *out) {
  return jv_to_str(st, v, out);
}

/* Jinja's make_attrgetter: "a.b.0" walks attributes/items. */
int jinja_get_path(jinja_state *st, int line, jv obj, jv path, jv *out) {
  if (path.type == JV_INT) return jinja_getitem(st, line, obj, path, out);
  if (path.type != JV_STR) return jinja_fail(st, line, "attribute name must be a string");
  size_t start = 0;
  for (size_t i = 0; i <= path.u.s.n; i++) {
    if (i < path.u.s.n && path.u.s.p[i] != '.') continue;
    char name[128];
    size_t len = i - start < sizeof name - 1 ? i - start : sizeof name - 1;
    memcpy(name, path.u.s.p + start, len);
    name[len] = 0;
    char *end;
    long long index = strtoll(name, &end, 10);
    jv key;
    if (len && *end == 0)
      key = jv_int(index);
    else if (jv_str_copy(st, name, len, &key))
      return VKFT_ERR;
    if (obj.type == JV_UNDEFINED) return *out = obj, VKFT_OK;
    if (jinja_getitem(st, line, obj, key, &obj)) return VKFT_ERR;
    start = i + 1;
  }
  *out = obj;
  return VKFT_OK;
}

static int length_of(jinja_state *st, int line, jv v, int64_t *len) {
  switch (v.type) {
  case JV_STR:
    *len = (int64_t)utf8_length(v.u.s.p, v.u.s.n);
    return VKFT_OK;
  case JV_LIST:
    *len = (int64_t)v.u.list->len;
    return VKFT_OK;
  case JV_DICT:
    *len = (int64_t)v.u.dict->len;
    return VKFT_OK;
  case JV_UNDEFINED:
    *len = 0;
    return VKFT_OK;
  default: /* including generators */
    return jinja_fail(st, line, "object of type '%s' has no len()", jv_type_name(v));
  }
}

/* Sort key for sort/unique/min/max: strings lowercased unless case_sensitive. */
static int sort_key(jinja_state *st, int line, jv item, jv attribute, int case_sensitive, jv *key) {
  if (attribute.type != JV_UNDEFINED && attribute.type != JV_NONE) {
    if (jinja_get_path(st, line, item, attribute, &item)) return VKFT_ERR;
  }
  if (item.type == JV_STR && !case_sensitive) return jinja_str_case(st, item, JCASE_LOWER, key);
  *key = item;
  return VKFT_OK;
}

/* Stable insertion sort (Python's sorted() is stable) of items by keys. */
static int sort_items(jinja_state *st, int line, jv *items, jv *keys, size_t n, int reverse) {
  for (size_t i = 1; i < n; i++) {
    jv item = items[i], key = keys[i];
    size_t k = i;
    while (k > 0) {
      int c;
      if (jv_compare(st, line, reverse ? keys[k - 1] : key, reverse ? key : keys[k - 1], &c))
        return VKFT_ERR;
      if (c >= 0) break;
      items[k] = items[k - 1];
      keys[k] = keys[k - 1];
      k--;
    }
    items[k] = item;
    keys[k] = key;
  }
  return VKFT_OK;
}

static int copy_list(jinja_state *st, int line, jv v, jv *out) {
  jv items;
  if (jinja_iterate(st, line, v, &items) || jv_new_list(st, items.u.list->len, out))
    return VKFT_ERR;
  if (items.u.list->len) /* an empty list may have no items array */
    memcpy(out->u.list->items, items.u.list->items, items.u.list->len * sizeof(jv));
  out->u.list->len = items.u.list->len;
  return VKFT_OK;
}

static int bool_arg(const jinja_args *args, size_t index, const char *name, int fallback) {
  jv v;
  return jinja_arg(args, index, name, &v) ? jv_truthy(v) : fallback;
}

/* Python int(str, base) / float(str); returns 0 when the text is not a number. */
static int parse_int(const char *p, size_t n, int base, int64_t *out) {
  char buf[80];
  size_t k = 0;
  while (n && jinja_is_space((unsigned char)*p)) p++, n--;
  while (n && jinja_is_space((unsigned char)p[n - 1])) n--;
  if (n == 0 || n >= sizeof buf) return 0;
  for (size_t i = 0; i < n; i++)
    if (p[i] != '_') buf[k++] = p[i];
  buf[k] = 0;
  char *end;
  long long v = strtoll(buf, &end, base);
  if (*end || end == buf) return 0;
  *out = v;
  return 1;
}

static int parse_float(const char *p, size_t n, double *out) {
  char buf[80];
  while (n && jinja_is_space((unsigned char)*p)) p++, n--;
  while (n && jinja_is_space((unsigned char)p[n - 1])) n--;
  if (n == 0 || n >= sizeof buf) return 0;
  memcpy(buf, p, n);
  buf[n] = 0;
  if (buf[0] == '0' && (buf[1] == 'x' || buf[1] == 'X')) return 0; /* not Python float syntax */
  char *end;
  double v = strtod(buf, &end);
  if (*end) return 0;
  *out = v;
  return 1;
}

static int filter_indent(jinja_state *st, int line, jv s, const jinja_args *args, jv *out) {
  jv width = jv_int(4);
  jinja_arg(args, 0, "width", &width);
  int first = bool_arg(args, 1, "first", 0), blank = bool_arg(args, 2, "blank", 0);
  jv pad;
  if (width.type == JV_STR)
    pad = width;
  else if (width.type == JV_INT && width.u.i >= 0 && width.u.i < 4096) {
    char *spaces = jinja_arena_alloc(&st->arena, (size_t)width.u.i + 1);
    if (!spaces) return jinja_fail(st, line, "out of memory");
    memset(spaces, ' ', (size_t)width.u.i);
    pad = jv_str_ref(spaces, (size_t)width.u.i);
  } else
    return jinja_fail(st, line, "indent: width must be an int or a string");
  /* Jinja appends "\n" and splits with str.splitlines(); lines after the first get the pad
   * (empty ones only with blank=True) and the result ends without the added newline. */
  vkft_strbuf buf = {.limit = st->max_output};
  int rc = VKFT_OK, line_no = 0;
  size_t i = 0, n = s.u.s.n;
  const char *p = s.u.s.p;
  if (first) rc = vkft_strbuf_add(&buf, pad.u.s.p, pad.u.s.n);
  while (rc == VKFT_OK && i <= n) {
    size_t end = i, used = 0, brk = 0;
    while (end < n) {
      uint32_t c = utf8_decode(p + end, n - end, &used);
      if (c == '\n' || c == '\r' || c == 0x0B || c == 0x0C || (c >= 0x1C && c <= 0x1E) ||
          c == 0x85 || c == 0x2028 || c == 0x2029) {
        brk = (c == '\r' && end + 1 < n && p[end + 1] == '\n') ? 2 : used;
        break;
      }
      end += used;
    }
    if (line_no > 0) {
      rc = vkft_strbuf_putc(&buf, '\n');
      if (rc == VKFT_OK && (blank || end > i)) rc = vkft_strbuf_add(&buf, pad.u.s.p, pad.u.s.n);
    }
    if (rc == VKFT_OK) rc = vkft_strbuf_add(&buf, p + i, end - i);
    line_no++;
    if (end >= n) break;
    i = end + brk;
  }
  if (rc) {
    vkft_strbuf_free(&buf);
    return jinja_fail(st, line, "%s", vkft_error_message());
  }
  return jv_str_from_buf(st, &buf, out);
}

static int filter_tojson(jinja_state *st, int line, jv v, const jinja_args *args, jv *out) {
  /* transformers: tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False) */
  jinja_json_style style = {.indent = -1, .item_sep = ", ", .key_sep = ": "};
  jv arg;
  style.ensure_ascii = bool_arg(args, 0, "ensure_ascii", 0);
  if (jinja_arg(args, 1, "indent", &arg) && arg.type != JV_NONE) {
    /* json.dumps: an int is that many spaces (negative: none), a str is used as is */
    if (arg.type == JV_STR) {
      style.indent_text = arg;
    } else if (arg.type == JV_INT || arg.type == JV_BOOL) {
      int64_t n = arg.u.i < 0 ? 0 : arg.u.i;
      if (n > 1024) return jinja_fail(st, line, "tojson: indent %lld is too large", (long long)n);
      char *spaces = jinja_arena_alloc(&st->arena, (size_t)n + 1);
      if (!spaces) return jinja_fail(st, line, "out of memory");
      memset(spaces, ' ', (size_t)n);
      style.indent_text = jv_str_ref(spaces, (size_t)n);
    } else
      return jinja_fail(st, line, "tojson: indent must be an int or a str, not %s",
                        jv_type_name(arg));
    style.indent = 0;
    style.item_sep = ",";
  }
  if (jinja_arg(args, 2, "separators", &arg) && arg.type != JV_NONE) {
    if (arg.type != JV_LIST || arg.u.list->len != 2 || arg.u.list->items[0].type != JV_STR ||
        arg.u.list->items[1].type != JV_STR)
      return jinja_fail(st, line, "tojson: separators must be a pair of strings");
    char *seps[2];
    for (int k = 0; k < 2; k++) {
      jv s = arg.u.list->items[k];
      if (!(seps[k] = jinja_arena_alloc(&st->arena, s.u.s.n + 1)))
        return jinja_fail(st, line, "out of memory");
      memcpy(seps[k], s.u.s.p, s.u.s.n);
    }
    style.item_sep = seps[0];
    style.key_sep = seps[1];
  }
  style.sort_keys = bool_arg(args, 3, "sort_keys", 0);
  vkft_strbuf buf = {.limit = st->max_output};
  if (jv_write_json(st, line, &buf, v, &style, 0)) {
    vkft_strbuf_free(&buf);
    return VKFT_ERR;
  }
  return jv_str_from_buf(st, &buf, out);
}

static int filter_round(jinja_state *st, int line, jv v, const jinja_args *args, jv *out) {
  jv precision = jv_int(0), method = jv_str_ref("common", 6);
  jinja_arg(args, 0, "precision", &precision);
  jinja_arg(args, 1, "method", &method);
  if (!jv_is_number(v) || precision.type != JV_INT || method.type != JV_STR)
    return jinja_fail(st, line, "round: expects a number and an int precision");
  int64_t digits = precision.u.i < -300 ? -300 : precision.u.i > 300 ? 300 : precision.u.i;
  if (method.u.s.n == 6 && memcmp(method.u.s.p, "common", 6) == 0) {
    if (v.type != JV_FLOAT) return *out = jv_int(v.u.i), VKFT_OK; /* round(int) stays int */
    /* Python's round() is correctly rounded (ties to even on the exact binary value), which
     * is what printf's %.*f does. */
    if (digits >= 0 && isfinite(v.u.f)) {
      char buf[400];
      snprintf(buf, sizeof buf, "%.*f", (int)digits, v.u.f);
      return *out = jv_float(strtod(buf, NULL)), VKFT_OK;
    }
    double scale = pow(10.0, (double)-digits);
    return *out = jv_float(nearbyint(v.u.f / scale) * scale), VKFT_OK;
  }
  int is_floor = method.u.s.n == 5 && memcmp(method.u.s.p, "floor", 5) == 0;
  int is_ceil = method.u.s.n == 4 && memcmp(method.u.s.p, "ceil", 4) == 0;
  if (!is_floor && !is_ceil)
    return jinja_fail(st, line, "round: method must be common, ceil or floor");
  double scale = pow(10.0, (double)digits), x = jv_as_double(v) * scale;
  return *out = jv_float((is_floor ? floor(x) : ceil(x)) / scale), VKFT_OK;
}

int jinja_sort_unique(jinja_state *st, int line, jv v, const jinja_args *args, int unique,
                      jv *out) {
  jv attribute = jv_undefined(NULL);
  int reverse = 0, case_sensitive;
  if (unique) {
    case_sensitive = bool_arg(args, 0, "case_sensitive", 0);
    jinja_arg(args, 1, "attribute", &attribute);
  } else {
    reverse = bool_arg(args, 0, "reverse", 0);
    case_sensitive = bool_arg(args, 1, "case_sensitive", 0);
    jinja_arg(args, 2, "attribute", &attribute);
  }
  if (copy_list(st, line, v, out)) return VKFT_ERR;
  jv_list *l = out->u.list;
  jv *keys = jinja_arena_alloc(&st->arena, (l->len + 1) * sizeof(jv));
  if (!keys) return jinja_fail(st, line, "out of memory");
  for (size_t i = 0; i < l->len; i++)
    if (sort_key(st, line, l->items[i], attribute, case_sensitive, &keys[i])) return VKFT_ERR;
  if (!unique) return sort_items(st, line, l->items, keys, l->len, reverse);
  size_t kept = 0;
  for (size_t i = 0; i < l->len; i++) {
    size_t k = 0;
    while (k < kept && !jv_equal(keys[k], keys[i])) k++;
    if (k < kept) continue;
    keys[kept] = keys[i];
    l->items[kept++] = l->items[i];
  }
  l->len = kept;
  return VKFT_OK;
}

static int filter_minmax(jinja_state *st, int line, jv v, const jinja_args *args, int is_max,
                         jv *out) {
  jv items, attribute = jv_undefined(NULL);
  int case_sensitive = bool_arg(args, 0, "case_sensitive", 0);
  jinja_arg(args, 1, "attribute", &attribute);
  if (jinja_iterate(st, line, v, &items)) return VKFT_ERR;
  *out = jv_undefined(NULL);
  jv best_key;
  for (size_t i = 0; i < items.u.list->len; i++) {
    jv key;
    int c = 0;
    if (sort_key(st, line, items.u.list->items[i], attribute, case_sensitive, &key))
      return VKFT_ERR;
    if (i > 0 && jv_compare(st, line, key, best_key, &c)) return VKFT_ERR;
    if (i == 0 || (is_max ? c > 0 : c < 0)) {
      best_key = key;
      *out = items.u.list->items[i];
    }
  }
  return VKFT_OK;
}

static int filter_join(jinja_state *st, int line, jv v, const jinja_args *args, jv *out) {
  jv items, sep = jv_str_ref("", 0), attribute = jv_undefined(NULL);
  jinja_arg(args, 0, "d", &sep);
  jinja_arg(args, 1, "attribute", &attribute);
  if (need_str(st, sep, &sep) || jinja_iterate(st, line, v, &items)) return VKFT_ERR;
  vkft_strbuf buf = {.limit = st->max_output};
  for (size_t i = 0; i < items.u.list->len; i++) {
    jv item = items.u.list->items[i];
    if (attribute.type != JV_UNDEFINED && jinja_get_path(st, line, item, attribute, &item))
      goto fail;
    if ((i && vkft_strbuf_add(&buf, sep.u.s.p, sep.u.s.n)) || jv_write_str(&buf, item, 0))
      goto fail;
  }
  return jv_str_from_buf(st, &buf, out);
fail:
  vkft_strbuf_free(&buf);
  return VKFT_ERR;
}

int jinja_escape(jinja_state *st, jv v, jv *out) {
  jv s;
  if (need_str(st, v, &s)) return VKFT_ERR;
  vkft_strbuf buf = {.limit = st->max_output};
  for (size_t i = 0; i < s.u.s.n; i++) {
    char c = s.u.s.p[i];
    const char *e = c == '&'    ? "&amp;"
                    : c == '<'  ? "&lt;"
                    : c == '>'  ? "&gt;"
                    : c == '"'  ? "&#34;"
                    : c == '\'' ? "&#39;"
                                : NULL;
    if (e ? vkft_strbuf_puts(&buf, e) : vkft_strbuf_putc(&buf, c)) {
      vkft_strbuf_free(&buf);
      return VKFT_ERR;
    }
  }
  if (jv_str_from_buf(st, &buf, out)) return VKFT_ERR;
  out->markup = 1;
  return VKFT_OK;
}

/* Filters that run a str method on soft_str(value) keep a Markup a Markup. */
static int keep_markup(int rc, jv from, jv *out) {
  if (rc == VKFT_OK && from.type == JV_STR && out->type == JV_STR) out->markup = from.markup;
  return rc;
}

static int name_is(const char *name, const char *a, const char *b) {
  return strcmp(name, a) == 0 || (b && strcmp(name, b) == 0);
}

int jinja_filter(jinja_state *st, int line, const char *name, jv v, const jinja_args *args,
                 jv *out) {
  jv s, arg;
  int64_t len = 0;
  if (name_is(name, "trim", NULL)) {
    int has_chars = jinja_arg(args, 0, "chars", &arg) && arg.type != JV_NONE;
    if (need_str(st, v, &s) || (has_chars && need_str(st, arg, &arg))) return VKFT_ERR;
    return keep_markup(jinja_str_strip(st, s, has_chars ? &arg : NULL, 1, 1, out), s, out);
  }
  if (name_is(name, "tojson", NULL)) return filter_tojson(st, line, v, args, out);
  if (name_is(name, "length", "count")) {
    if (length_of(st, line, v, &len)) return VKFT_ERR;
    return *out = jv_int(len), VKFT_OK;
  }
  if (name_is(name, "string", NULL)) return jv_to_str(st, v, out);
  if (name_is(name, "upper", "lower") || name_is(name, "title", "capitalize")) {
    int mode = name[0] == 'u'   ? JCASE_UPPER
               : name[0] == 'l' ? JCASE_LOWER
               : name[0] == 't' ? JCASE_TITLE_FILTER
                                : JCASE_CAPITALIZE;
    if (need_str(st, v, &s)) return VKFT_ERR;
    /* Jinja2's title filter joins plain str pieces; the others are str methods */
    int rc = jinja_str_case(st, s, mode, out);
    return mode == JCASE_TITLE_FILTER ? rc : keep_markup(rc, s, out);
  }
  if (name_is(name, "items", NULL)) return jv_new_iter(st, JI_ITEMS, line, v, args, out);
  if (name_is(name, "join", NULL)) return filter_join(st, line, v, args, out);
  if (name_is(name, "first", "last")) {
    jv items;
    if (v.type == JV_ITER && name[0] == 'l')
      return jinja_fail(st, line, "'%s' object is not reversible", jv_type_name(v));
    if (v.type == JV_ITER) { /* next(iter(seq)): reads one item */
      if (jinja_iter_rest(st, v.u.iter, 0, &items)) return VKFT_ERR;
      *out = items.u.list->len ? items.u.list->items[0] : jv_undefined(NULL);
      v.u.iter->pos += items.u.list->len > 0;
      return VKFT_OK;
    }
    if (jinja_iterate(st, line, v, &items)) return VKFT_ERR;
    size_t n = items.u.list->len;
    *out = n ? items.u.list->items[name[0] == 'f' ? 0 : n - 1] : jv_undefined(NULL);
    return VKFT_OK;
  }
  if (name_is(name, "default", "d")) {
    jv fallback = jv_str_ref("", 0);
    jinja_arg(args, 0, "default_value", &fallback);
    int boolean = bool_arg(args, 1, "boolean", 0);
    *out = v.type == JV_UNDEFINED || (boolean && !jv_truthy(v)) ? fallback : v;
    return VKFT_OK;
  }
  if (name_is(name, "list", NULL)) return copy_list(st, line, v, out);
  if (name_is(name, "int", NULL)) {
    jv fallback = jv_int(0), base = jv_int(10);
    jinja_arg(args, 0, "default", &fallback);
    jinja_arg(args, 1, "base", &base);
    int64_t i;
    double f;
    if (v.type == JV_INT || v.type == JV_BOOL) return *out = jv_int(v.u.i), VKFT_OK;
    if (v.type == JV_FLOAT && isfinite(v.u.f) && fabs(v.u.f) < 9.2e18)
      return *out = jv_int((int64_t)v.u.f), VKFT_OK;
    if (v.type == JV_STR && base.type == JV_INT && parse_int(v.u.s.p, v.u.s.n, (int)base.u.i, &i))
      return *out = jv_int(i), VKFT_OK;
    if (v.type == JV_STR && parse_float(v.u.s.p, v.u.s.n, &f) && isfinite(f) && fabs(f) < 9.2e18)
      return *out = jv_int((int64_t)f), VKFT_OK;
    return *out = fallback, VKFT_OK;
  }
  if (name_is(name, "float", NULL)) {
    jv fallback = jv_float(0.0);
    jinja_arg(args, 0, "default", &fallback);
    double f;
    if (jv_is_number(v)) return *out = jv_float(jv_as_double(v)), VKFT_OK;
    if (v.type == JV_STR && parse_float(v.u.s.p, v.u.s.n, &f)) return *out = jv_float(f), VKFT_OK;
    return *out = fallback, VKFT_OK;
  }
  if (name_is(name, "abs", NULL)) {
    if (!jv_is_number(v))
      return jinja_fail(st, line, "bad operand type for abs(): '%s'", jv_type_name(v));
    if (v.type == JV_FLOAT) return *out = jv_float(fabs(v.u.f)), VKFT_OK;
    if (v.u.i == INT64_MIN) return jinja_fail(st, line, "integer result does not fit in 64 bits");
    return *out = jv_int(v.u.i < 0 ? -v.u.i : v.u.i), VKFT_OK;
  }
  if (name_is(name, "replace", NULL)) {
    jv old, replacement, count = jv_none();
    if (!jinja_arg(args, 0, "old", &old) || !jinja_arg(args, 1, "new", &replacement))
      return jinja_fail(st, line, "replace: needs old and new");
    jinja_arg(args, 2, "count", &count);
    if (need_str(st, v, &s) || need_str(st, old, &old) || need_str(st, replacement, &replacement))
      return VKFT_ERR;
    return jinja_str_replace(st, line, s, old, replacement, count.type == JV_INT ? count.u.i : -1,
                             out);
  }
  if (name_is(name, "safe", NULL)) { /* Markup(value): str(value), marked safe */
    if (jv_to_str(st, v, out)) return VKFT_ERR;
    out->markup = 1;
    return VKFT_OK;
  }
  if (name_is(name, "escape", "e")) /* a Markup is already escaped */
    return v.type == JV_STR && v.markup ? (*out = v, VKFT_OK) : jinja_escape(st, v, out);
  if (name_is(name, "forceescape", NULL)) {
    if (jv_to_str(st, v, &s)) return VKFT_ERR;
    s.markup = 0;
    return jinja_escape(st, s, out);
  }
  if (name_is(name, "map", NULL)) return jv_new_iter(st, JI_MAP, line, v, args, out);
  if (name_is(name, "select", "reject"))
    return jv_new_iter(st, name[0] == 's' ? JI_SELECT : JI_REJECT, line, v, args, out);
  if (name_is(name, "selectattr", "rejectattr"))
    return jv_new_iter(st, name[0] == 's' ? JI_SELECTATTR : JI_REJECTATTR, line, v, args, out);
  if (name_is(name, "unique", NULL)) return jv_new_iter(st, JI_UNIQUE, line, v, args, out);
  if (name_is(name, "sort", NULL)) return jinja_sort_unique(st, line, v, args, 0, out);
  if (name_is(name, "min", "max")) return filter_minmax(st, line, v, args, name[1] == 'a', out);
  if (name_is(name, "round", NULL)) return filter_round(st, line, v, args, out);
  if (name_is(name, "indent", NULL)) {
    if (need_str(st, v, &s)) return VKFT_ERR;
    return keep_markup(filter_indent(st, line, s, args, out), s, out);
  }
  if (name_is(name, "wordcount", NULL)) {
    if (need_str(st, v, &s)) return VKFT_ERR;
    int64_t words = 0;
    int in_word = 0;
    for (size_t i = 0; i < s.u.s.n; i++) { /* \w+: letters, digits, "_", non-ASCII */
      unsigned char c = (unsigned char)s.u.s.p[i];
      int w =
          c >= 0x80 || c == '_' || (c >= '0' && c <= '9') || ((c | 32) >= 'a' && (c | 32) <= 'z');
      words += w && !in_word;
      in_word = w;
    }
    return *out = jv_int(words), VKFT_OK;
  }
  if (name_is(name, "reverse", NULL)) {
    if (v.type == JV_STR) {
      jv chars;
      if (jinja_iterate(st, line, v, &chars)) return VKFT_ERR;
      vkft_strbuf buf = {.limit = st->max_output};
      for (size_t i = chars.u.list->len; i-- > 0;)
        if (vkft_strbuf_add(&buf, chars.u.list->items[i].u.s.p, chars.u.list->items[i].u.s.n)) {
          vkft_strbuf_free(&buf);
          return VKFT_ERR;
        }
      return keep_markup(jv_str_from_buf(st, &buf, out), v, out);
    }
    /* reversed(): lazy for lists, tuples and dicts; anything else becomes a reversed list */
    if (v.type == JV_LIST || v.type == JV_DICT)
      return jv_new_iter(st, JI_REVERSE, line, v, args, out);
    if (copy_list(st, line, v, out)) return VKFT_ERR;
    for (size_t i = 0, n = out->u.list->len; i < n / 2; i++) {
      jv t = out->u.list->items[i];
      out->u.list->items[i] = out->u.list->items[n - 1 - i];
      out->u.list->items[n - 1 - i] = t;
    }
    return VKFT_OK;
  }
  if (name_is(name, "sum", NULL)) {
    jv items, attribute = jv_undefined(NULL), total = jv_int(0);
    jinja_arg(args, 0, "attribute", &attribute);
    jinja_arg(args, 1, "start", &total);
    if (jinja_iterate(st, line, v, &items)) return VKFT_ERR;
    for (size_t i = 0; i < items.u.list->len; i++) {
      jv item = items.u.list->items[i];
      if (attribute.type != JV_UNDEFINED && jinja_get_path(st, line, item, attribute, &item))
        return VKFT_ERR;
      if (!jv_is_number(item) || !jv_is_number(total))
        return jinja_fail(st, line, "sum: unsupported operand types");
      if (item.type == JV_FLOAT || total.type == JV_FLOAT)
        total = jv_float(jv_as_double(total) + jv_as_double(item));
      else
        total = jv_int(total.u.i + item.u.i);
    }
    return *out = total, VKFT_OK;
  }
  if (name_is(name, "dictsort", NULL)) {
    if (v.type != JV_DICT) return jinja_fail(st, line, "dictsort: expects a mapping");
    int case_sensitive = bool_arg(args, 0, "case_sensitive", 0),
        reverse = bool_arg(args, 2, "reverse", 0);
    jv by = jv_str_ref("key", 3);
    jinja_arg(args, 1, "by", &by);
    int by_value = by.type == JV_STR && by.u.s.n == 5 && memcmp(by.u.s.p, "value", 5) == 0;
    if (jinja_dict_items(st, line, v, out)) return VKFT_ERR;
    jv_list *l = out->u.list;
    jv *keys = jinja_arena_alloc(&st->arena, (l->len + 1) * sizeof(jv));
    if (!keys) return jinja_fail(st, line, "out of memory");
    for (size_t i = 0; i < l->len; i++)
      if (sort_key(st, line, l->items[i].u.list->items[by_value], jv_undefined(NULL),
                   case_sensitive, &keys[i]))
        return VKFT_ERR;
    return sort_items(st, line, l->items, keys, l->len, reverse);
  }
  if (name_is(name, "attr", NULL)) {
    if (!jinja_arg(args, 0, "name", &arg) || arg.type != JV_STR)
      return jinja_fail(st, line, "attr: needs an attribute name");
    char key[128];
    snprintf(key, sizeof key, "%.*s", (int)arg.u.s.n, arg.u.s.p);
    /* attr() is getattr only: a plain dict's keys are not attributes */
    if (v.type == JV_DICT && v.u.dict->kind == JD_DICT) return *out = jv_undefined(NULL), VKFT_OK;
    return jinja_getattr(st, line, v, key, out);
  }
  return jinja_fail(st, line, "unknown filter '%s'", name);
}

/* ---- tests ---- */

int jinja_test(jinja_state *st, int line, const char *name, jv v, const jinja_args *args,
               int *result) {
  jv arg = jv_undefined(NULL);
  int has_arg = jinja_arg(args, 0, NULL, &arg);
  if (name_is(name, "defined", NULL)) return *result = v.type != JV_UNDEFINED, VKFT_OK;
  if (name_is(name, "undefined", NULL)) return *result = v.type == JV_UNDEFINED, VKFT_OK;
  if (name_is(name, "none", NULL)) return *result = v.type == JV_NONE, VKFT_OK;
  if (name_is(name, "string", NULL)) return *result = v.type == JV_STR, VKFT_OK;
  if (name_is(name, "mapping", NULL))
    return *result = v.type == JV_DICT && v.u.dict->kind == JD_DICT, VKFT_OK;
  /* Undefined iterates as empty, so Jinja calls it iterable; dicts are sequences (len+getitem) */
  if (name_is(name, "iterable", NULL))
    return *result = v.type == JV_STR || v.type == JV_LIST || v.type == JV_DICT ||
                     v.type == JV_UNDEFINED || v.type == JV_ITER,
           VKFT_OK;
  if (name_is(name, "sequence", NULL))
    return *result = v.type == JV_STR || v.type == JV_LIST ||
                     (v.type == JV_DICT && v.u.dict->kind == JD_DICT),
           VKFT_OK;
  if (name_is(name, "number", NULL)) return *result = jv_is_number(v), VKFT_OK;
  if (name_is(name, "integer", NULL)) return *result = v.type == JV_INT, VKFT_OK;
  if (name_is(name, "float", NULL)) return *result = v.type == JV_FLOAT, VKFT_OK;
  if (name_is(name, "boolean", NULL)) return *result = v.type == JV_BOOL, VKFT_OK;
  if (name_is(name, "true", NULL)) return *result = v.type == JV_BOOL && v.u.i, VKFT_OK;
  if (name_is(name, "false", NULL)) return *result = v.type == JV_BOOL && !v.u.i, VKFT_OK;
  /* Undefined defines __call__ (to raise), so Python's callable() is true for it */
  if (name_is(name, "callable", NULL))
    return *result = v.type == JV_FUNC || v.type == JV_UNDEFINED, VKFT_OK;
  if (name_is(name, "odd", "even") || name_is(name, "divisibleby", NULL)) {
    jv divisor = name[0] == 'd' ? arg : jv_int(2);
    if (name[0] == 'd' && !has_arg) return jinja_fail(st, line, "divisibleby: needs a number");
    if (!jv_is_number(v) || !jv_is_number(divisor))
      return jinja_fail(st, line, "test '%s' needs numbers, got '%s'", name, jv_type_name(v));
    if (v.type == JV_FLOAT || divisor.type == JV_FLOAT) {
      double d = jv_as_double(divisor);
      if (d == 0) return jinja_fail(st, line, "division by zero");
      double r = fmod(jv_as_double(v), d);
      if (r != 0 && ((r < 0) != (d < 0))) r += d;
      *result = name[0] == 'o' ? r == 1 : r == 0;
    } else {
      if (divisor.u.i == 0) return jinja_fail(st, line, "integer division or modulo by zero");
      int64_t r = divisor.u.i == -1 ? 0 : v.u.i % divisor.u.i;
      if (r != 0 && ((r < 0) != (divisor.u.i < 0))) r += divisor.u.i;
      *result = name[0] == 'o' ? r == 1 : r == 0;
    }
    return VKFT_OK;
  }
  if (name_is(name, "equalto", "eq") || name_is(name, "==", "sameas"))
    return *result = jv_equal(v, arg), VKFT_OK;
  if (name_is(name, "ne", "!=")) return *result = !jv_equal(v, arg), VKFT_OK;
  if (name_is(name, "lt", "lessthan") || name_is(name, "le", NULL) ||
      name_is(name, "gt", "greaterthan") || name_is(name, "ge", NULL)) {
    int c;
    if (jv_compare(st, line, v, arg, &c)) return VKFT_ERR;
    *result =
        name[0] == 'l' ? (name[1] == 'e' ? c <= 0 : c < 0) : (name[1] == 'e' ? c >= 0 : c > 0);
    return VKFT_OK;
  }
  if (name_is(name, "in", NULL)) {
    if (arg.type == JV_STR && v.type == JV_STR)
      return *result = jinja_str_find(arg, v, 0) >= 0, VKFT_OK;
    if (arg.type == JV_LIST) {
      *result = 0;
      for (size_t i = 0; i < arg.u.list->len; i++) *result |= jv_equal(arg.u.list->items[i], v);
      return VKFT_OK;
    }
    if (arg.type == JV_DICT) return *result = jv_dict_get(arg.u.dict, v) != NULL, VKFT_OK;
    return jinja_fail(st, line, "test 'in' needs a container");
  }
  if (name_is(name, "lower", "upper")) {
    jv mapped;
    if (v.type != JV_STR) return *result = 0, VKFT_OK;
    if (jinja_str_case(st, v, name[0] == 'l' ? JCASE_LOWER : JCASE_UPPER, &mapped)) return VKFT_ERR;
    return *result = jv_equal(mapped, v), VKFT_OK;
  }
  return jinja_fail(st, line, "unknown test '%s'", name);
}
