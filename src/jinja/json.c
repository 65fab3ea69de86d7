/* JSON for the Jinja interpreter: context values from cJSON, and the `tojson` filter written
 * the way transformers' tojson does it, i.e. Python json.dumps(ensure_ascii=False) with
 * separators ", " / ": " (or "," / ": " with indent), insertion key order, and Python float
 * repr. */
#include "internal.h"

#include "vkft/error.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* cJSON keeps no int/float distinction: integral numbers become Python ints (json.loads
 * would make "1.0" a float; such a value renders as "1" here). */
int jv_from_cjson(jinja_state *st, const cJSON *json, jv *out) {
  if (cJSON_IsNull(json))
    *out = jv_none();
  else if (cJSON_IsTrue(json))
    *out = jv_bool(1);
  else if (cJSON_IsFalse(json))
    *out = jv_bool(0);
  else if (cJSON_IsNumber(json)) {
    double d = json->valuedouble;
    if (d == floor(d) && fabs(d) < 9007199254740992.0)
      *out = jv_int((int64_t)d);
    else
      *out = jv_float(d);
  } else if (cJSON_IsString(json)) {
    return jv_str_copy(st, json->valuestring, strlen(json->valuestring), out);
  } else if (cJSON_IsArray(json)) {
    if (jv_new_list(st, (size_t)cJSON_GetArraySize(json), out)) return VKFT_ERR;
    for (const cJSON *item = json->child; item; item = item->next) {
      jv v;
      if (jv_from_cjson(st, item, &v) || jv_list_push(st, out->u.list, v)) return VKFT_ERR;
    }
  } else if (cJSON_IsObject(json)) {
    if (jv_new_dict(st, JD_DICT, out)) return VKFT_ERR;
    for (const cJSON *item = json->child; item; item = item->next) {
      jv key, v;
      if (jv_str_copy(st, item->string, strlen(item->string), &key) ||
          jv_from_cjson(st, item, &v) || jv_dict_set(st, out->u.dict, key, v))
        return VKFT_ERR;
    }
  } else {
    *out = jv_none();
  }
  return VKFT_OK;
}

/* json.dumps string escaping: \" \\ \n \r \t \b \f, other controls as \u00XX; non-ASCII kept
 * unless ensure_ascii (then \uXXXX with surrogate pairs). */
static int write_json_string(vkft_strbuf *buf, const char *p, size_t n, int ensure_ascii) {
  if (vkft_strbuf_putc(buf, '"')) return VKFT_ERR;
  size_t used;
  for (size_t i = 0; i < n; i += used) {
    unsigned char c = (unsigned char)p[i];
    char esc[16];
    used = 1;
    const char *e = NULL;
    switch (c) {
    case '"':
      e = "\\\"";
      break;
    case '\\':
      e = "\\\\";
      break;
    case '\n':
      e = "\\n";
      break;
    case '\r':
      e = "\\r";
      break;
    case '\t':
      e = "\\t";
      break;
    case '\b':
      e = "\\b";
      break;
    case '\f':
      e = "\\f";
      break;
    default:
      if (c < 0x20) {
        snprintf(esc, sizeof esc, "\\u%04x", c);
        e = esc;
      } else if (c >= 0x80 && ensure_ascii) {
        uint32_t cp = utf8_decode(p + i, n - i, &used);
        if (cp >= 0x10000) {
          cp -= 0x10000;
          snprintf(esc, sizeof esc, "\\u%04x\\u%04x", 0xD800 + (cp >> 10), 0xDC00 + (cp & 0x3FF));
        } else
          snprintf(esc, sizeof esc, "\\u%04x", cp);
        e = esc;
      }
    }
    if (e ? vkft_strbuf_puts(buf, e) : vkft_strbuf_putc(buf, (char)c)) return VKFT_ERR;
  }
  return vkft_strbuf_putc(buf, '"');
}

static int newline_indent(vkft_strbuf *buf, const jinja_json_style *style, int depth) {
  if (style->indent < 0) return VKFT_OK;
  if (vkft_strbuf_putc(buf, '\n')) return VKFT_ERR;
  for (int i = 0; i < depth; i++)
    if (vkft_strbuf_add(buf, style->indent_text.u.s.p, style->indent_text.u.s.n)) return VKFT_ERR;
  return VKFT_OK;
}

/* json.dumps turns non-string keys into strings: ints as digits, True as "true", None as
 * "null", floats by repr. */
static int write_key(jinja_state *st, int line, vkft_strbuf *buf, jv key, int ensure_ascii) {
  char num[48];
  switch (key.type) {
  case JV_STR:
    return write_json_string(buf, key.u.s.p, key.u.s.n, ensure_ascii);
  case JV_INT:
    snprintf(num, sizeof num, "\"%lld\"", (long long)key.u.i);
    return vkft_strbuf_puts(buf, num);
  case JV_BOOL:
    return vkft_strbuf_puts(buf, key.u.i ? "\"true\"" : "\"false\"");
  case JV_NONE:
    return vkft_strbuf_puts(buf, "\"null\"");
  case JV_FLOAT:
    jinja_float_repr(key.u.f, num);
    if (vkft_strbuf_putc(buf, '"') || vkft_strbuf_puts(buf, num) || vkft_strbuf_putc(buf, '"'))
      return VKFT_ERR;
    return VKFT_OK;
  default:
    return jinja_fail(st, line, "tojson: keys must be str, int, float, bool or None, not %s",
                      jv_type_name(key));
  }
}

static int key_less(jv a, jv b) {
  int c = 0;
  if (jv_compare(NULL, 0, a, b, &c)) {
    vkft_error_clear();
    return 0;
  }
  return c < 0;
}

int jv_write_json(jinja_state *st, int line, vkft_strbuf *buf, jv v, const jinja_json_style *style,
                  int depth) {
  char num[48];
  if (depth > JINJA_MAX_NESTING) return jinja_fail(st, line, "tojson: value nested too deeply");
  switch (v.type) {
  case JV_UNDEFINED:
    return jinja_fail(st, line, "tojson: Object of type Undefined is not JSON serializable");
  case JV_NONE:
    return vkft_strbuf_puts(buf, "null");
  case JV_BOOL:
    return vkft_strbuf_puts(buf, v.u.i ? "true" : "false");
  case JV_INT:
    snprintf(num, sizeof num, "%lld", (long long)v.u.i);
    return vkft_strbuf_puts(buf, num);
  case JV_FLOAT:
    /* json.dumps: float repr, but NaN/Infinity spelled the JavaScript way */
    if (isnan(v.u.f)) return vkft_strbuf_puts(buf, "NaN");
    if (isinf(v.u.f)) return vkft_strbuf_puts(buf, v.u.f < 0 ? "-Infinity" : "Infinity");
    jinja_float_repr(v.u.f, num);
    return vkft_strbuf_puts(buf, num);
  case JV_STR:
    return write_json_string(buf, v.u.s.p, v.u.s.n, style->ensure_ascii);
  case JV_LIST: {
    const jv_list *l = v.u.list;
    if (l->len == 0) return vkft_strbuf_puts(buf, "[]");
    if (vkft_strbuf_putc(buf, '[')) return VKFT_ERR;
    for (size_t i = 0; i < l->len; i++) {
      if (i && vkft_strbuf_puts(buf, style->item_sep)) return VKFT_ERR;
      if (newline_indent(buf, style, depth + 1) ||
          jv_write_json(st, line, buf, l->items[i], style, depth + 1))
        return VKFT_ERR;
    }
    if (newline_indent(buf, style, depth)) return VKFT_ERR;
    return vkft_strbuf_putc(buf, ']');
  }
  case JV_DICT: {
    const jv_dict *d = v.u.dict;
    if (d->kind != JD_DICT)
      return jinja_fail(st, line, "tojson: Object of type %s is not JSON serializable",
                        jv_type_name(v));
    if (d->len == 0) return vkft_strbuf_puts(buf, "{}");
    /* order: insertion, or sorted keys (a small insertion sort over indices) */
    size_t order_small[64], *order = order_small;
    if (d->len > 64) {
      order = jinja_arena_alloc(&st->arena, d->len * sizeof *order);
      if (!order) return jinja_fail(st, line, "out of memory");
    }
    for (size_t i = 0; i < d->len; i++) {
      size_t k = i;
      if (style->sort_keys)
        while (k > 0 && key_less(d->keys[i], d->keys[order[k - 1]])) {
          order[k] = order[k - 1];
          k--;
        }
      order[k] = i;
    }
    if (vkft_strbuf_putc(buf, '{')) return VKFT_ERR;
    for (size_t j = 0; j < d->len; j++) {
      size_t i = order[j];
      if (j && vkft_strbuf_puts(buf, style->item_sep)) return VKFT_ERR;
      if (newline_indent(buf, style, depth + 1) ||
          write_key(st, line, buf, d->keys[i], style->ensure_ascii) ||
          vkft_strbuf_puts(buf, style->key_sep) ||
          jv_write_json(st, line, buf, d->values[i], style, depth + 1))
        return VKFT_ERR;
    }
    if (newline_indent(buf, style, depth)) return VKFT_ERR;
    return vkft_strbuf_putc(buf, '}');
  }
  case JV_FUNC:
  case JV_ITER:
    return jinja_fail(st, line, "tojson: Object of type %s is not JSON serializable",
                      jv_type_name(v));
  }
  return VKFT_OK;
}
