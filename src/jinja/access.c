/* Item and attribute access and iteration, as Jinja's environment.getitem / getattr and a for
 * loop see values: a missing key or index is Undefined (an error only when used), strings
 * index and iterate by code point. */
#include "internal.h"

#include "vkft/error.h"

#include <string.h>

int jinja_undefined_error(const jinja_state *st, int line, jv v) {
  if (v.u.s.p) return jinja_fail(st, line, "'%.*s' is undefined", (int)v.u.s.n, v.u.s.p);
  return jinja_fail(st, line, "undefined value used");
}

int jinja_getitem(jinja_state *st, int line, jv obj, jv key, jv *out) {
  if (obj.type == JV_UNDEFINED) return jinja_undefined_error(st, line, obj);
  *out = jv_undefined(NULL);
  if (obj.type == JV_DICT) {
    const jv *v = jv_dict_get(obj.u.dict, key);
    if (v)
      *out = *v;
    else if (key.type == JV_STR) {
      /* keep the key as the undefined name for messages; key text outlives the render */
      out->u.s = key.u.s;
    }
    return VKFT_OK;
  }
  if ((obj.type == JV_LIST || obj.type == JV_STR) && (key.type == JV_INT || key.type == JV_BOOL)) {
    int64_t i = key.u.i;
    if (obj.type == JV_LIST) {
      int64_t len = (int64_t)obj.u.list->len;
      if (i < 0) i += len;
      if (i >= 0 && i < len) *out = obj.u.list->items[i];
      return VKFT_OK;
    }
    int64_t len = (int64_t)utf8_length(obj.u.s.p, obj.u.s.n);
    if (i < 0) i += len;
    if (i < 0 || i >= len) return VKFT_OK;
    size_t at = utf8_offset(obj.u.s.p, obj.u.s.n, (size_t)i), used;
    utf8_decode(obj.u.s.p + at, obj.u.s.n - at, &used);
    *out = jv_str_ref(obj.u.s.p + at, used);
    out->markup = obj.markup; /* Markup.__getitem__ returns Markup */
    return VKFT_OK;
  }
  return VKFT_OK; /* Jinja turns TypeError/LookupError into Undefined */
}

int jinja_getattr(jinja_state *st, int line, jv obj, const char *name, jv *out) {
  if (obj.type == JV_UNDEFINED) return jinja_undefined_error(st, line, obj);
  if (obj.type == JV_DICT) {
    const jv *v = jv_dict_get_str(obj.u.dict, name);
    *out = v ? *v : jv_undefined(name);
    return VKFT_OK;
  }
  *out = jv_undefined(name);
  return VKFT_OK;
}

int jinja_iterate(jinja_state *st, int line, jv v, jv *out) {
  switch (v.type) {
  case JV_LIST:
    *out = v;
    return VKFT_OK;
  case JV_UNDEFINED:
    return jv_new_list(st, 0, out); /* Undefined iterates as empty */
  case JV_DICT: {
    if (jv_new_list(st, v.u.dict->len, out)) return VKFT_ERR;
    for (size_t i = 0; i < v.u.dict->len; i++) out->u.list->items[i] = v.u.dict->keys[i];
    out->u.list->len = v.u.dict->len;
    return VKFT_OK;
  }
  case JV_ITER:
    return jinja_iter_rest(st, v.u.iter, 1, out);
  case JV_STR: {
    size_t used;
    if (jv_new_list(st, 0, out)) return VKFT_ERR;
    for (size_t i = 0; i < v.u.s.n; i += used) {
      utf8_decode(v.u.s.p + i, v.u.s.n - i, &used);
      if (jv_list_push(st, out->u.list, jv_str_ref(v.u.s.p + i, used))) return VKFT_ERR;
    }
    return VKFT_OK;
  }
  default:
    return jinja_fail(st, line, "'%s' object is not iterable", jv_type_name(v));
  }
}
