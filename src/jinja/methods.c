/* Python methods templates call on values (str.split, dict.items, list.append, loop.cycle, ...)
 * and the global functions transformers provides (raise_exception, strftime_now) plus Jinja's
 * range, namespace and dict. Anything else is an error naming the method. */
#include "internal.h"

#include "vkft/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int is(const char *name, const char *want) {
  return strcmp(name, want) == 0;
}

static int str_arg(jinja_state *st, int line, const jinja_args *args, size_t index,
                   const char *name, const char *method, jv *out) {
  if (!jinja_arg(args, index, name, out))
    return jinja_fail(st, line, "%s() missing argument '%s'", method, name);
  if (out->type != JV_STR)
    return jinja_fail(st, line, "%s() argument must be str, not %s", method, jv_type_name(*out));
  return VKFT_OK;
}

static int int_arg(const jinja_args *args, size_t index, const char *name, int64_t fallback) {
  jv v;
  if (!jinja_arg(args, index, name, &v) || (v.type != JV_INT && v.type != JV_BOOL))
    return (int)fallback;
  return (int)(v.u.i < -1 ? -1 : v.u.i > 0x7fffffff ? 0x7fffffff : v.u.i);
}

/* startswith/endswith accept a str or a tuple of str */
static int affix(jinja_state *st, int line, jv s, jv what, int at_end, int *result) {
  if (what.type == JV_LIST) {
    *result = 0;
    for (size_t i = 0; i < what.u.list->len && !*result; i++)
      if (affix(st, line, s, what.u.list->items[i], at_end, result)) return VKFT_ERR;
    return VKFT_OK;
  }
  if (what.type != JV_STR)
    return jinja_fail(st, line, "%s first arg must be str or a tuple of str, not %s",
                      at_end ? "endswith" : "startswith", jv_type_name(what));
  *result = what.u.s.n <= s.u.s.n &&
            memcmp(s.u.s.p + (at_end ? s.u.s.n - what.u.s.n : 0), what.u.s.p, what.u.s.n) == 0;
  return VKFT_OK;
}

/* str.format with "{}", "{0}" and "{name}" fields and "{{"/"}}" escapes (no format specs). */
static int str_format(jinja_state *st, int line, jv s, const jinja_args *args, jv *out) {
  vkft_strbuf buf = {.limit = st->max_output};
  size_t auto_index = 0;
  for (size_t i = 0; i < s.u.s.n; i++) {
    char c = s.u.s.p[i];
    int rc;
    if ((c == '{' || c == '}') && i + 1 < s.u.s.n && s.u.s.p[i + 1] == c) {
      rc = vkft_strbuf_putc(&buf, c);
      i++;
    } else if (c == '{') {
      size_t end = i + 1;
      while (end < s.u.s.n && s.u.s.p[end] != '}') end++;
      if (end >= s.u.s.n) goto bad;
      char field[64];
      size_t n = end - i - 1;
      if (n >= sizeof field || memchr(s.u.s.p + i + 1, ':', n) || memchr(s.u.s.p + i + 1, '!', n))
        goto bad;
      memcpy(field, s.u.s.p + i + 1, n);
      field[n] = 0;
      jv value;
      int found;
      if (n == 0)
        found = jinja_arg(args, auto_index++, NULL, &value);
      else if (field[0] >= '0' && field[0] <= '9')
        found = jinja_arg(args, (size_t)atoi(field), NULL, &value);
      else
        found = jinja_arg(args, (size_t)-1, field, &value);
      if (!found) {
        vkft_strbuf_free(&buf);
        return jinja_fail(st, line, "format(): no argument for field '{%s}'", field);
      }
      rc = jv_write_str(&buf, value, 0);
      i = end;
    } else
      rc = vkft_strbuf_putc(&buf, c);
    if (rc) {
      vkft_strbuf_free(&buf);
      return VKFT_ERR;
    }
  }
  return jv_str_from_buf(st, &buf, out);
bad:
  vkft_strbuf_free(&buf);
  return jinja_fail(st, line, "format(): only plain {} / {0} / {name} fields are supported");
}

static int str_method(jinja_state *st, int line, jv s, const char *name, const jinja_args *args,
                      jv *out) {
  jv a, b;
  int result;
  if (is(name, "startswith") || is(name, "endswith")) {
    if (!jinja_arg(args, 0, NULL, &a)) return jinja_fail(st, line, "%s() takes an argument", name);
    if (affix(st, line, s, a, name[0] == 'e', &result)) return VKFT_ERR;
    return *out = jv_bool(result), VKFT_OK;
  }
  if (is(name, "strip") || is(name, "lstrip") || is(name, "rstrip")) {
    int has_chars = jinja_arg(args, 0, "chars", &a) && a.type != JV_NONE;
    if (has_chars && a.type != JV_STR)
      return jinja_fail(st, line, "%s arg must be None or str", name);
    return jinja_str_strip(st, s, has_chars ? &a : NULL, name[0] != 'r', name[0] != 'l', out);
  }
  if (is(name, "split") || is(name, "rsplit")) {
    int has_sep = jinja_arg(args, 0, "sep", &a) && a.type != JV_NONE;
    if (has_sep && a.type != JV_STR)
      return jinja_fail(st, line, "must be str or None, not %s", jv_type_name(a));
    return jinja_str_split(st, line, s, has_sep ? &a : NULL, int_arg(args, 1, "maxsplit", -1),
                           name[0] == 'r', out);
  }
  if (is(name, "upper")) return jinja_str_case(st, s, JCASE_UPPER, out);
  if (is(name, "lower")) return jinja_str_case(st, s, JCASE_LOWER, out);
  if (is(name, "title")) return jinja_str_case(st, s, JCASE_TITLE_METHOD, out);
  if (is(name, "capitalize")) return jinja_str_case(st, s, JCASE_CAPITALIZE, out);
  if (is(name, "replace")) {
    if (str_arg(st, line, args, 0, "old", name, &a) || str_arg(st, line, args, 1, "new", name, &b))
      return VKFT_ERR;
    return jinja_str_replace(st, line, s, a, b, int_arg(args, 2, "count", -1), out);
  }
  if (is(name, "find") || is(name, "rfind") || is(name, "index") || is(name, "rindex")) {
    if (str_arg(st, line, args, 0, "sub", name, &a)) return VKFT_ERR;
    int64_t at = jinja_str_find(s, a, name[0] == 'r');
    if (at < 0 && (is(name, "index") || is(name, "rindex")))
      return jinja_fail(st, line, "substring not found");
    return *out = jv_int(at), VKFT_OK;
  }
  if (is(name, "count")) {
    if (str_arg(st, line, args, 0, "sub", name, &a)) return VKFT_ERR;
    int64_t count = 0;
    if (a.u.s.n == 0)
      count = (int64_t)utf8_length(s.u.s.p, s.u.s.n) + 1;
    else
      for (size_t i = 0; i + a.u.s.n <= s.u.s.n;)
        if (memcmp(s.u.s.p + i, a.u.s.p, a.u.s.n) == 0) {
          count++;
          i += a.u.s.n;
        } else
          i++;
    return *out = jv_int(count), VKFT_OK;
  }
  if (is(name, "join")) {
    jv items;
    if (!jinja_arg(args, 0, NULL, &a) || jinja_iterate(st, line, a, &items)) return VKFT_ERR;
    vkft_strbuf buf = {.limit = st->max_output};
    for (size_t i = 0; i < items.u.list->len; i++) {
      jv item = items.u.list->items[i];
      if (item.type != JV_STR) {
        vkft_strbuf_free(&buf);
        return jinja_fail(st, line, "sequence item %zu: expected str instance, %s found", i,
                          jv_type_name(item));
      }
      if ((i && vkft_strbuf_add(&buf, s.u.s.p, s.u.s.n)) ||
          vkft_strbuf_add(&buf, item.u.s.p, item.u.s.n)) {
        vkft_strbuf_free(&buf);
        return VKFT_ERR;
      }
    }
    return jv_str_from_buf(st, &buf, out);
  }
  if (is(name, "format")) return str_format(st, line, s, args, out);
  if (is(name, "isdigit") || is(name, "isspace") || is(name, "isalpha") || is(name, "isalnum")) {
    /* ASCII classes; non-ASCII characters count as letters */
    result = s.u.s.n > 0;
    size_t used;
    for (size_t i = 0; i < s.u.s.n && result; i += used) {
      uint32_t c = utf8_decode(s.u.s.p + i, s.u.s.n - i, &used);
      int digit = c >= '0' && c <= '9',
          alpha = c >= 0x80 ? !jinja_is_space(c) : ((c | 32) >= 'a' && (c | 32) <= 'z');
      if (name[2] == 'd')
        result = digit;
      else if (name[2] == 's')
        result = jinja_is_space(c);
      else if (is(name, "isalpha"))
        result = alpha;
      else
        result = alpha || digit;
    }
    return *out = jv_bool(result), VKFT_OK;
  }
  return jinja_fail(st, line, "unsupported method 'str.%s'", name);
}

/* transformers renders in Jinja2's ImmutableSandboxedEnvironment, which refuses the methods
 * that change a list or dict in place (Jinja2 sandbox.py, _mutable_spec); llama.cpp's minja
 * allows them, but a template that uses them fails in transformers, so it fails here too. */
static const char *const list_mutators[] = {"append", "clear",   "extend", "insert", "pop",
                                            "remove", "reverse", "sort",   NULL};
static const char *const dict_mutators[] = {"clear",      "pop",    "popitem",
                                            "setdefault", "update", NULL};

static int in_names(const char *name, const char *const *mutators) {
  for (int i = 0; mutators[i]; i++)
    if (is(name, mutators[i])) return 1;
  return 0;
}

static int refuse_mutation(jinja_state *st, int line, jv self, const char *name) {
  return jinja_fail(st, line, "SecurityError: access to attribute '%s' of '%s' object is unsafe",
                    name, jv_type_name(self));
}

static int dict_method(jinja_state *st, int line, jv d, const char *name, const jinja_args *args,
                       jv *out) {
  jv_dict *dict = d.u.dict;
  if (dict->kind == JD_LOOP && is(name, "cycle")) {
    const jv *index0 = jv_dict_get_str(dict, "index0");
    if (args->npos == 0) return jinja_fail(st, line, "loop.cycle() needs at least one value");
    *out = args->pos[(size_t)index0->u.i % args->npos];
    return VKFT_OK;
  }
  if (dict->kind != JD_DICT)
    return jinja_fail(st, line, "unsupported method '%s' on %s", name, jv_type_name(d));
  if (in_names(name, dict_mutators)) return refuse_mutation(st, line, d, name);
  if (is(name, "get")) {
    jv key, fallback = jv_none();
    if (!jinja_arg(args, 0, "key", &key)) return jinja_fail(st, line, "get() needs a key");
    jinja_arg(args, 1, "default", &fallback);
    const jv *v = jv_dict_get(dict, key);
    *out = v ? *v : fallback;
    return VKFT_OK;
  }
  if (is(name, "items")) return jinja_dict_items(st, line, d, out);
  if (is(name, "keys") || is(name, "values")) {
    if (jv_new_list(st, dict->len, out)) return VKFT_ERR;
    for (size_t i = 0; i < dict->len; i++)
      out->u.list->items[i] = name[0] == 'k' ? dict->keys[i] : dict->values[i];
    out->u.list->len = dict->len;
    return VKFT_OK;
  }
  return jinja_fail(st, line, "unsupported method 'dict.%s'", name);
}

static int list_method(jinja_state *st, int line, jv l, const char *name, const jinja_args *args,
                       jv *out) {
  jv a;
  if (!l.u.list->is_tuple && in_names(name, list_mutators))
    return refuse_mutation(st, line, l, name);
  if (is(name, "index") || is(name, "count")) {
    if (!jinja_arg(args, 0, NULL, &a)) return jinja_fail(st, line, "%s() takes one argument", name);
    int64_t count = 0;
    for (size_t i = 0; i < l.u.list->len; i++)
      if (jv_equal(l.u.list->items[i], a)) {
        if (name[0] == 'i') return *out = jv_int((int64_t)i), VKFT_OK;
        count++;
      }
    if (name[0] == 'i') return jinja_fail(st, line, "index(): value is not in list");
    return *out = jv_int(count), VKFT_OK;
  }
  return jinja_fail(st, line, "unsupported method '%s.%s'", jv_type_name(l), name);
}

/* markupsafe.Markup's methods: the ones it wraps escape their str arguments (join: the items)
 * and return Markup (split: a list of Markup); the rest (startswith, find, ...) are str's. */
static int markup_method(jinja_state *st, int line, jv s, const char *name, const jinja_args *args,
                         jv *out) {
  static const char *const wrapped[] = {"strip",  "lstrip",     "rstrip",  "upper", "lower",
                                        "title",  "capitalize", "replace", "split", "rsplit",
                                        "format", "join",       NULL};
  if (!in_names(name, wrapped)) return str_method(st, line, s, name, args, out);
  jinja_args esc = *args;
  size_t n = args->npos + args->nkw;
  jv *values = jinja_arena_alloc(&st->arena, (n + 1) * sizeof *values);
  if (!values) return jinja_fail(st, line, "out of memory");
  for (size_t i = 0; i < n; i++) {
    jv v = i < args->npos ? args->pos[i] : args->kw[i - args->npos];
    if (v.type == JV_STR && !v.markup && jinja_escape(st, v, &v)) return VKFT_ERR;
    if (v.type == JV_LIST && is(name, "join")) {
      jv items;
      if (jv_new_list(st, v.u.list->len, &items)) return VKFT_ERR;
      for (size_t k = 0; k < v.u.list->len; k++) {
        jv item = v.u.list->items[k];
        if (item.type == JV_STR && !item.markup && jinja_escape(st, item, &item)) return VKFT_ERR;
        items.u.list->items[items.u.list->len++] = item;
      }
      v = items;
    }
    values[i] = v;
  }
  esc.pos = values;
  esc.kw = values + args->npos;
  if (str_method(st, line, s, name, &esc, out)) return VKFT_ERR;
  if (out->type == JV_STR) out->markup = 1;
  for (size_t k = 0; out->type == JV_LIST && k < out->u.list->len; k++)
    out->u.list->items[k].markup = 1;
  return VKFT_OK;
}

int jinja_method(jinja_state *st, int line, jv self, const char *name, const jinja_args *args,
                 jv *out) {
  switch (self.type) {
  case JV_STR:
    if (self.markup) return markup_method(st, line, self, name, args, out);
    return str_method(st, line, self, name, args, out);
  case JV_DICT:
    return dict_method(st, line, self, name, args, out);
  case JV_LIST:
    return list_method(st, line, self, name, args, out);
  default:
    return jinja_fail(st, line, "'%s' object has no method '%s'", jv_type_name(self), name);
  }
}

/* ---- globals ---- */

enum { G_RANGE, G_NAMESPACE, G_DICT, G_RAISE, G_STRFTIME, G_COUNT };
static const char *const global_names[G_COUNT] = {"range", "namespace", "dict", "raise_exception",
                                                  "strftime_now"};
static jv_func global_funcs[G_COUNT] = {
    {.kind = JF_GLOBAL, .global_id = G_RANGE},    {.kind = JF_GLOBAL, .global_id = G_NAMESPACE},
    {.kind = JF_GLOBAL, .global_id = G_DICT},     {.kind = JF_GLOBAL, .global_id = G_RAISE},
    {.kind = JF_GLOBAL, .global_id = G_STRFTIME},
};

int jinja_global_lookup(const char *name, jv *out) {
  for (int i = 0; i < G_COUNT; i++)
    if (is(name, global_names[i])) {
      out->type = JV_FUNC;
      out->u.func = &global_funcs[i];
      return 1;
    }
  return 0;
}

static const char *const month_names[12] = {"January",   "February", "March",    "April",
                                            "May",       "June",     "July",     "August",
                                            "September", "October",  "November", "December"};
static const char *const day_names[7] = {"Monday", "Tuesday",  "Wednesday", "Thursday",
                                         "Friday", "Saturday", "Sunday"};

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil). */
static long days_from_civil(long y, long m, long d) {
  y -= m <= 2;
  long era = (y >= 0 ? y : y - 399) / 400;
  long yoe = y - era * 400;
  long doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

/* datetime.strftime for a fixed date at 00:00:00 (transformers calls datetime.now(); vkft
 * renders reproducibly with the date the caller chose). */
static int strftime_fixed(jinja_state *st, int line, jv fmt, jv *out) {
  int y = st->now_year, m = st->now_month, d = st->now_day;
  int weekday = (int)(((days_from_civil(y, m, d) % 7) + 7 + 3) % 7); /* 1970-01-01: Thursday */
  int yday = (int)(days_from_civil(y, m, d) - days_from_civil(y, 1, 1)) + 1;
  vkft_strbuf buf = {.limit = st->max_output};
  for (size_t i = 0; i < fmt.u.s.n; i++) {
    char c = fmt.u.s.p[i], piece[64];
    if (c != '%' || i + 1 >= fmt.u.s.n) {
      if (vkft_strbuf_putc(&buf, c)) goto fail;
      continue;
    }
    c = fmt.u.s.p[++i];
    int no_pad = 0;
    if (c == '-' && i + 1 < fmt.u.s.n) { /* glibc's "%-d": no zero padding */
      no_pad = 1;
      c = fmt.u.s.p[++i];
    }
    int number = -1, width = 2;
    piece[0] = 0;
    switch (c) {
    case 'd':
      number = d;
      break;
    case 'e':
      snprintf(piece, sizeof piece, "%*d", no_pad ? 1 : 2, d);
      break;
    case 'm':
      number = m;
      break;
    case 'y':
      number = y % 100;
      break;
    case 'Y':
      snprintf(piece, sizeof piece, "%d", y);
      break;
    case 'H':
    case 'M':
    case 'S':
      number = 0;
      break;
    case 'I':
      number = 12;
      break;
    case 'p':
      strcpy(piece, "AM");
      break;
    case 'j':
      number = yday;
      width = 3;
      break;
    case 'b':
    case 'h':
      snprintf(piece, sizeof piece, "%.3s", month_names[m - 1]);
      break;
    case 'B':
      strcpy(piece, month_names[m - 1]);
      break;
    case 'a':
      snprintf(piece, sizeof piece, "%.3s", day_names[weekday]);
      break;
    case 'A':
      strcpy(piece, day_names[weekday]);
      break;
    case 'u':
      number = weekday + 1;
      width = 1;
      break;
    case 'w':
      number = (weekday + 1) % 7;
      width = 1;
      break;
    case 'F':
      snprintf(piece, sizeof piece, "%d-%02d-%02d", y, m, d);
      break;
    case '%':
      strcpy(piece, "%");
      break;
    default:
      vkft_strbuf_free(&buf);
      return jinja_fail(st, line, "strftime_now: unsupported directive '%%%c'", c);
    }
    if (number >= 0 && no_pad)
      snprintf(piece, sizeof piece, "%d", number);
    else if (number >= 0)
      snprintf(piece, sizeof piece, "%0*d", width, number);
    if (vkft_strbuf_puts(&buf, piece)) goto fail;
  }
  return jv_str_from_buf(st, &buf, out);
fail:
  vkft_strbuf_free(&buf);
  return VKFT_ERR;
}

int jinja_call_global(jinja_state *st, int line, int id, const jinja_args *args, jv *out) {
  jv a;
  switch (id) {
  case G_RANGE: {
    int64_t bounds[3] = {0, 0, 1};
    if (args->npos < 1 || args->npos > 3 || args->nkw)
      return jinja_fail(st, line, "range() takes 1 to 3 int arguments");
    for (size_t i = 0; i < args->npos; i++) {
      if (args->pos[i].type != JV_INT && args->pos[i].type != JV_BOOL)
        return jinja_fail(st, line, "range() arguments must be int, not %s",
                          jv_type_name(args->pos[i]));
    }
    if (args->npos == 1)
      bounds[1] = args->pos[0].u.i;
    else {
      bounds[0] = args->pos[0].u.i;
      bounds[1] = args->pos[1].u.i;
      if (args->npos == 3) bounds[2] = args->pos[2].u.i;
    }
    if (bounds[2] == 0) return jinja_fail(st, line, "range() arg 3 must not be zero");
    double count = ((double)bounds[1] - (double)bounds[0]) / (double)bounds[2];
    if (count > JINJA_MAX_RANGE)
      return jinja_fail(st, line, "range() longer than %d items", JINJA_MAX_RANGE);
    if (count > 0 && jinja_count_steps(st, line, (uint64_t)count)) return VKFT_ERR;
    if (jv_new_list(st, 0, out)) return VKFT_ERR;
    for (int64_t i = bounds[0]; bounds[2] > 0 ? i < bounds[1] : i > bounds[1]; i += bounds[2])
      if (jv_list_push(st, out->u.list, jv_int(i))) return VKFT_ERR;
    return VKFT_OK;
  }
  case G_NAMESPACE:
  case G_DICT:
    if (jv_new_dict(st, id == G_NAMESPACE ? JD_NAMESPACE : JD_DICT, out)) return VKFT_ERR;
    if (args->npos > 1)
      return jinja_fail(st, line, "%s() takes at most one positional argument", global_names[id]);
    if (args->npos == 1) {
      a = args->pos[0];
      if (a.type != JV_DICT)
        return jinja_fail(st, line, "%s() positional argument must be a dict", global_names[id]);
      for (size_t i = 0; i < a.u.dict->len; i++)
        if (jv_dict_set(st, out->u.dict, a.u.dict->keys[i], a.u.dict->values[i])) return VKFT_ERR;
    }
    for (size_t i = 0; i < args->nkw; i++)
      if (jv_dict_set(st, out->u.dict, jv_str_ref(args->kw_names[i], strlen(args->kw_names[i])),
                      args->kw[i]))
        return VKFT_ERR;
    return VKFT_OK;
  case G_RAISE: {
    jv msg = jv_str_ref("", 0);
    jinja_arg(args, 0, "message", &msg);
    if (jv_to_str(st, msg, &msg)) return VKFT_ERR;
    return jinja_fail(st, line, "raise_exception: %.*s", (int)msg.u.s.n, msg.u.s.p);
  }
  case G_STRFTIME:
    if (!jinja_arg(args, 0, "format", &a) || a.type != JV_STR)
      return jinja_fail(st, line, "strftime_now() needs a format string");
    return strftime_fixed(st, line, a, out);
  }
  return jinja_fail(st, line, "unknown global function");
}
