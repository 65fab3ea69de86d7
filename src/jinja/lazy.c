/* One-pass lazy sequences. Jinja2's map, select, reject, selectattr, rejectattr, unique and
 * items filters are generators and reverse of a list is a list_reverseiterator: they compute
 * nothing until consumed (so `none|map(...)` fails only if read, and yields nothing since
 * these filters skip a falsy input), they are truthy even when empty, they have no len(),
 * tojson refuses them ("Object of type generator is not JSON serializable"), and once a loop,
 * |list or |join has read them they are empty. vkft computes the items on first use and
 * keeps a read position. */
#include "internal.h"

#include "vkft/error.h"

#include <stdio.h>
#include <string.h>

int jv_new_iter(jinja_state *st, int op, int line, jv input, const jinja_args *args, jv *out) {
  jv_iter *it = jinja_arena_alloc(&st->arena, sizeof *it);
  jinja_args *copy = jinja_arena_alloc(&st->arena, sizeof *copy);
  if (!it || !copy) return jinja_fail(st, line, "out of memory");
  if (args) *copy = *args; /* the argument arrays already live in the render arena */
  it->op = op;
  it->line = line;
  it->input = input;
  it->args = copy;
  out->type = JV_ITER;
  out->markup = 0;
  out->u.iter = it;
  return VKFT_OK;
}

const char *jinja_iter_type_name(const jv_iter *it) {
  if (it->op != JI_REVERSE) return "generator";
  if (it->input.type == JV_DICT) return "dict_reversekeyiterator";
  return it->input.u.list->is_tuple ? "reversed" : "list_reverseiterator";
}

/* select/reject/selectattr/rejectattr: the items whose test result is want. */
static int select_items(jinja_state *st, int line, jv v, const jinja_args *args, int want,
                        int by_attr, jv *out) {
  jv items, attr = jv_undefined(NULL), test_name = jv_undefined(NULL);
  if (jinja_iterate(st, line, v, &items) || jv_new_list(st, 0, out)) return VKFT_ERR;
  size_t first_test_arg = 0;
  if (by_attr) {
    if (!jinja_arg(args, 0, NULL, &attr))
      return jinja_fail(st, line, "selectattr: missing attribute");
    first_test_arg = 1;
  }
  int has_test = jinja_arg(args, first_test_arg, NULL, &test_name);
  if (has_test && test_name.type != JV_STR)
    return jinja_fail(st, line, "select: test name must be a string");
  char name[64] = "";
  if (has_test) snprintf(name, sizeof name, "%.*s", (int)test_name.u.s.n, test_name.u.s.p);
  jinja_args test_args = {0};
  if (args->npos > first_test_arg + 1) {
    test_args.pos = args->pos + first_test_arg + 1;
    test_args.npos = args->npos - first_test_arg - 1;
  }
  for (size_t i = 0; i < items.u.list->len; i++) {
    jv item = items.u.list->items[i], subject = item;
    int result;
    if (by_attr && jinja_get_path(st, line, item, attr, &subject)) return VKFT_ERR;
    if (has_test) {
      if (jinja_test(st, line, name, subject, &test_args, &result)) return VKFT_ERR;
    } else
      result = jv_truthy(subject);
    if (!result == !want && jv_list_push(st, out->u.list, item)) return VKFT_ERR;
  }
  return VKFT_OK;
}

/* map: a filter applied to each item, or each item's attribute= (default= when undefined). */
static int map_items(jinja_state *st, int line, jv v, const jinja_args *args, jv *out) {
  jv items, attr, fname;
  if (jinja_iterate(st, line, v, &items) || jv_new_list(st, items.u.list->len, out))
    return VKFT_ERR;
  int by_attr = jinja_arg(args, (size_t)-1, "attribute", &attr);
  jv fallback = jv_undefined(NULL);
  int has_default = jinja_arg(args, (size_t)-1, "default", &fallback);
  if (!by_attr && (!jinja_arg(args, 0, NULL, &fname) || fname.type != JV_STR))
    return jinja_fail(st, line, "map: needs a filter name or attribute=");
  char name[64] = "";
  if (!by_attr) snprintf(name, sizeof name, "%.*s", (int)fname.u.s.n, fname.u.s.p);
  jinja_args rest = {0};
  if (!by_attr && args->npos > 1) {
    rest.pos = args->pos + 1;
    rest.npos = args->npos - 1;
  }
  for (size_t i = 0; i < items.u.list->len; i++) {
    jv r;
    if (by_attr) {
      if (jinja_get_path(st, line, items.u.list->items[i], attr, &r)) return VKFT_ERR;
      if (r.type == JV_UNDEFINED && has_default) r = fallback;
    } else if (jinja_filter(st, line, name, items.u.list->items[i], &rest, &r))
      return VKFT_ERR;
    out->u.list->items[out->u.list->len++] = r;
  }
  return VKFT_OK;
}

int jinja_dict_items(jinja_state *st, int line, jv v, jv *out) {
  if (v.type == JV_UNDEFINED) return jv_new_list(st, 0, out);
  if (v.type != JV_DICT) return jinja_fail(st, line, "Can only get item pairs from a mapping.");
  if (jv_new_list(st, v.u.dict->len, out)) return VKFT_ERR;
  for (size_t i = 0; i < v.u.dict->len; i++) {
    jv pair;
    if (jv_new_list(st, 2, &pair)) return VKFT_ERR;
    pair.u.list->is_tuple = 1;
    pair.u.list->items[0] = v.u.dict->keys[i];
    pair.u.list->items[1] = v.u.dict->values[i];
    pair.u.list->len = 2;
    out->u.list->items[out->u.list->len++] = pair;
  }
  return VKFT_OK;
}

/* reversed(list) / reversed(dict): the items (keys) from the last. */
static int reversed_items(jinja_state *st, int line, jv v, jv *out) {
  jv items;
  if (jinja_iterate(st, line, v, &items) || jv_new_list(st, items.u.list->len, out))
    return VKFT_ERR;
  for (size_t i = items.u.list->len; i-- > 0;)
    out->u.list->items[out->u.list->len++] = items.u.list->items[i];
  return VKFT_OK;
}

static int compute(jinja_state *st, jv_iter *it, jv *out) {
  int line = it->line;
  switch (it->op) {
  case JI_SELECT:
  case JI_REJECT:
  case JI_SELECTATTR:
  case JI_REJECTATTR:
    if (!jv_truthy(it->input)) return jv_new_list(st, 0, out); /* Jinja2: `if value:` */
    return select_items(st, line, it->input, it->args,
                        it->op == JI_SELECT || it->op == JI_SELECTATTR,
                        it->op == JI_SELECTATTR || it->op == JI_REJECTATTR, out);
  case JI_MAP:
    if (!jv_truthy(it->input)) return jv_new_list(st, 0, out);
    return map_items(st, line, it->input, it->args, out);
  case JI_UNIQUE:
    return jinja_sort_unique(st, line, it->input, it->args, 1, out);
  case JI_ITEMS:
    return jinja_dict_items(st, line, it->input, out);
  default:
    return reversed_items(st, line, it->input, out);
  }
}

int jinja_iter_rest(jinja_state *st, jv_iter *it, int consume, jv *out_list) {
  if (!it->items) {
    jv items;
    if (compute(st, it, &items)) return VKFT_ERR;
    if (jinja_count_steps(st, it->line, items.u.list->len)) return VKFT_ERR;
    it->items = items.u.list;
  }
  /* a view of the unread items; lists are never changed in place */
  if (jv_new_list(st, 0, out_list)) return VKFT_ERR;
  /* an empty list may have no storage: no pointer arithmetic on NULL */
  out_list->u.list->items = it->items->items ? it->items->items + it->pos : NULL;
  out_list->u.list->len = out_list->u.list->cap = it->items->len - it->pos;
  if (consume) it->pos = it->items->len;
  return VKFT_OK;
}
