/* Jinja evaluator: runs a parsed template against a context. Expressions follow Python
 * semantics (int/float arithmetic, `and`/`or` returning operands, negative indices, slices);
 * scoping follows Jinja2 (a for loop body gets a fresh scope per iteration, `if` gets none,
 * namespace() objects are the way to carry values out of a loop). */
#include "internal.h"

#include "vkft/error.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { JX_BREAK = 1, JX_CONTINUE = 2 };

static int eval(jinja_state *st, const jinja_node *n, jv *out);
static int exec_node(jinja_state *st, const jinja_node *n);

static int oom(const jinja_state *st, int line) {
  return jinja_fail(st, line, "out of memory");
}

static int undefined_error(const jinja_state *st, int line, jv v) {
  return jinja_undefined_error(st, line, v);
}

static int push_scope(jinja_state *st, jinja_scope *parent, jinja_scope **out) {
  jinja_scope *scope = jinja_arena_alloc(&st->arena, sizeof *scope);
  jv vars;
  if (!scope || jv_new_dict(st, JD_DICT, &vars)) return oom(st, 0);
  scope->parent = parent;
  scope->vars = vars.u.dict;
  *out = scope;
  return VKFT_OK;
}

static int set_var(jinja_state *st, const char *name, jv value) {
  return jv_dict_set(st, st->scope->vars, jv_str_ref(name, strlen(name)), value);
}

static void lookup(const jinja_state *st, const char *name, jv *out) {
  jv key = jv_str_ref(name, strlen(name));
  for (const jinja_scope *s = st->scope; s; s = s->parent) {
    const jv *v = jv_dict_get(s->vars, key);
    if (v) {
      *out = *v;
      return;
    }
  }
  const jv *v = st->globals ? jv_dict_get(st->globals, key) : NULL;
  if (v)
    *out = *v;
  else if (!jinja_global_lookup(name, out))
    *out = jv_undefined(name);
}

int jinja_count_steps(jinja_state *st, int line, uint64_t n) {
  if (n > st->max_steps || st->steps > st->max_steps - n)
    return jinja_fail(st, line,
                      "template runs too long: more than %llu steps (loop iterations, macro "
                      "calls, items made by range and filters) in one render",
                      (unsigned long long)st->max_steps);
  st->steps += n;
  return VKFT_OK;
}

static int count_step(jinja_state *st, int line) {
  return jinja_count_steps(st, line, 1);
}

/* Python slice semantics (negative indices, omitted bounds, negative steps). */
static int slice(jinja_state *st, int line, jv obj, const jv bounds[3], int has[3], jv *out) {
  int64_t step = 1;
  if (has[2]) {
    if (bounds[2].type != JV_INT && bounds[2].type != JV_BOOL)
      return jinja_fail(st, line, "slice indices must be integers or None");
    step = bounds[2].u.i;
    if (step == 0) return jinja_fail(st, line, "slice step cannot be zero");
  }
  int is_str = obj.type == JV_STR;
  if (!is_str && obj.type != JV_LIST) {
    if (obj.type == JV_UNDEFINED) return undefined_error(st, line, obj);
    *out = jv_undefined(NULL);
    return VKFT_OK;
  }
  int64_t len = is_str ? (int64_t)utf8_length(obj.u.s.p, obj.u.s.n) : (int64_t)obj.u.list->len;
  int64_t idx[2];
  for (int k = 0; k < 2; k++) {
    if (!has[k]) {
      idx[k] = k == 0 ? (step < 0 ? len - 1 : 0) : (step < 0 ? -1 : len);
      continue;
    }
    if (bounds[k].type != JV_INT && bounds[k].type != JV_BOOL)
      return jinja_fail(st, line, "slice indices must be integers or None");
    int64_t i = bounds[k].u.i;
    if (i < 0) {
      i += len;
      if (i < 0) i = step < 0 ? -1 : 0;
    } else if (i >= len)
      i = step < 0 ? len - 1 : len;
    idx[k] = i;
  }
  vkft_strbuf buf = {.limit = st->max_output};
  jv list;
  if (!is_str && jv_new_list(st, 0, &list)) return VKFT_ERR;
  if (!is_str) list.u.list->is_tuple = obj.u.list->is_tuple;
  for (int64_t i = idx[0]; step > 0 ? i < idx[1] : i > idx[1]; i += step) {
    if (is_str) {
      size_t at = utf8_offset(obj.u.s.p, obj.u.s.n, (size_t)i), used;
      utf8_decode(obj.u.s.p + at, obj.u.s.n - at, &used);
      if (vkft_strbuf_add(&buf, obj.u.s.p + at, used)) {
        vkft_strbuf_free(&buf);
        return jinja_fail(st, line, "%s", vkft_error_message());
      }
    } else if (jv_list_push(st, list.u.list, obj.u.list->items[i]))
      return VKFT_ERR;
  }
  if (is_str) {
    if (jv_str_from_buf(st, &buf, out)) return VKFT_ERR;
    out->markup = obj.markup;
    return VKFT_OK;
  }
  *out = list;
  return VKFT_OK;
}

/* ---- arithmetic ---- */

static int int_overflow(const jinja_state *st, int line) {
  return jinja_fail(st, line, "integer result does not fit in 64 bits");
}

static int repeat(jinja_state *st, int line, jv seq, int64_t times, jv *out) {
  if (times < 0) times = 0;
  if (seq.type == JV_STR) {
    if (seq.u.s.n && (uint64_t)times > JINJA_MAX_OUTPUT / seq.u.s.n)
      return jinja_fail(st, line, "string repetition too large");
    vkft_strbuf buf = {.limit = st->max_output};
    for (int64_t i = 0; i < times; i++)
      if (vkft_strbuf_add(&buf, seq.u.s.p, seq.u.s.n)) {
        vkft_strbuf_free(&buf);
        return jinja_fail(st, line, "%s", vkft_error_message());
      }
    unsigned char markup = seq.markup;
    if (jv_str_from_buf(st, &buf, out)) return VKFT_ERR;
    out->markup = markup;
    return VKFT_OK;
  }
  if (seq.u.list->len && (uint64_t)times > JINJA_MAX_RANGE / seq.u.list->len)
    return jinja_fail(st, line, "list repetition too large");
  if (jinja_count_steps(st, line, (uint64_t)times * seq.u.list->len)) return VKFT_ERR;
  if (jv_new_list(st, 0, out)) return VKFT_ERR;
  out->u.list->is_tuple = seq.u.list->is_tuple;
  for (int64_t i = 0; i < times; i++)
    for (size_t k = 0; k < seq.u.list->len; k++)
      if (jv_list_push(st, out->u.list, seq.u.list->items[k])) return VKFT_ERR;
  return VKFT_OK;
}

static const char *op_symbol(int op) {
  static const char *const symbols[] = {"?",  "+",  "-", "*",  "/", "//", "%",  "**",    "~",
                                        "==", "!=", "<", "<=", ">", ">=", "in", "not in"};
  return op > 0 && op <= JOP_NOTIN ? symbols[op] : "?";
}

static int arith(jinja_state *st, int line, int op, jv a, jv b, jv *out) {
  if (op == JOP_CONCAT) {
    jv sa, sb;
    if (jv_to_str(st, a, &sa) || jv_to_str(st, b, &sb)) return VKFT_ERR;
    vkft_strbuf buf = {.limit = st->max_output};
    if (vkft_strbuf_add(&buf, sa.u.s.p, sa.u.s.n) || vkft_strbuf_add(&buf, sb.u.s.p, sb.u.s.n)) {
      vkft_strbuf_free(&buf);
      return jinja_fail(st, line, "%s", vkft_error_message());
    }
    return jv_str_from_buf(st, &buf, out);
  }
  if (a.type == JV_UNDEFINED) return undefined_error(st, line, a);
  if (b.type == JV_UNDEFINED) return undefined_error(st, line, b);
  if (jv_is_number(a) && jv_is_number(b)) {
    int ints = a.type != JV_FLOAT && b.type != JV_FLOAT;
    int64_t x = a.u.i, y = b.u.i;
    double fx = jv_as_double(a), fy = jv_as_double(b);
    switch (op) {
    case JOP_ADD:
      if (!ints) return *out = jv_float(fx + fy), VKFT_OK;
      if ((y > 0 && x > INT64_MAX - y) || (y < 0 && x < INT64_MIN - y))
        return int_overflow(st, line);
      return *out = jv_int(x + y), VKFT_OK;
    case JOP_SUB:
      if (!ints) return *out = jv_float(fx - fy), VKFT_OK;
      if ((y < 0 && x > INT64_MAX + y) || (y > 0 && x < INT64_MIN + y))
        return int_overflow(st, line);
      return *out = jv_int(x - y), VKFT_OK;
    case JOP_MUL:
      if (!ints) return *out = jv_float(fx * fy), VKFT_OK;
      if (x != 0 && y != 0) {
        int64_t r = (int64_t)((uint64_t)x * (uint64_t)y);
        if ((x == -1 && y == INT64_MIN) || (y == -1 && x == INT64_MIN) || r / y != x)
          return int_overflow(st, line);
      }
      return *out = jv_int(x * y), VKFT_OK;
    case JOP_DIV:
      if (fy == 0) return jinja_fail(st, line, "division by zero");
      return *out = jv_float(fx / fy), VKFT_OK;
    case JOP_FLOORDIV:
    case JOP_MOD:
      if (ints ? y == 0 : fy == 0)
        return jinja_fail(st, line, "integer division or modulo by zero");
      if (ints) {
        if (x == INT64_MIN && y == -1) return int_overflow(st, line);
        int64_t q = x / y, r = x % y;
        if (r != 0 && ((r < 0) != (y < 0))) { /* Python floors toward negative infinity */
          q -= 1;
          r += y;
        }
        return *out = jv_int(op == JOP_MOD ? r : q), VKFT_OK;
      } else {
        /* CPython's float_divmod: floor division consistent with the sign-corrected modulo */
        double mod = fmod(fx, fy), div = (fx - mod) / fy;
        if (mod != 0 && ((fy < 0) != (mod < 0))) {
          mod += fy;
          div -= 1.0;
        }
        double floordiv = floor(div);
        if (div - floordiv > 0.5) floordiv += 1.0;
        return *out = jv_float(op == JOP_MOD ? mod : floordiv), VKFT_OK;
      }
    case JOP_POW:
      if (ints && y >= 0) {
        int64_t r = 1;
        if (x == 0 || x == 1)
          r = y == 0 ? 1 : x;
        else if (x == -1)
          r = y % 2 ? -1 : 1;
        else
          for (int64_t i = 0; i < y; i++) {
            if (x == INT64_MIN || llabs(r) > INT64_MAX / llabs(x)) return int_overflow(st, line);
            r *= x;
          }
        return *out = jv_int(r), VKFT_OK;
      }
      return *out = jv_float(pow(fx, fy)), VKFT_OK;
    default:
      break;
    }
  }
  if (op == JOP_ADD && a.type == JV_STR && b.type == JV_STR) {
    /* Markup + str and str + Markup escape the plain side and stay Markup (markupsafe) */
    int markup = a.markup || b.markup;
    if (markup && !a.markup && jinja_escape(st, a, &a)) return VKFT_ERR;
    if (markup && !b.markup && jinja_escape(st, b, &b)) return VKFT_ERR;
    if (arith(st, line, JOP_CONCAT, a, b, out)) return VKFT_ERR;
    out->markup = (unsigned char)markup;
    return VKFT_OK;
  }
  if (op == JOP_ADD && a.type == JV_LIST && b.type == JV_LIST &&
      a.u.list->is_tuple == b.u.list->is_tuple) {
    if (jv_new_list(st, a.u.list->len + b.u.list->len, out)) return VKFT_ERR;
    out->u.list->is_tuple = a.u.list->is_tuple;
    for (size_t i = 0; i < a.u.list->len; i++)
      out->u.list->items[out->u.list->len++] = a.u.list->items[i];
    for (size_t i = 0; i < b.u.list->len; i++)
      out->u.list->items[out->u.list->len++] = b.u.list->items[i];
    return VKFT_OK;
  }
  if (op == JOP_MUL && (a.type == JV_STR || a.type == JV_LIST) &&
      (b.type == JV_INT || b.type == JV_BOOL))
    return repeat(st, line, a, b.u.i, out);
  if (op == JOP_MUL && (b.type == JV_STR || b.type == JV_LIST) &&
      (a.type == JV_INT || a.type == JV_BOOL))
    return repeat(st, line, b, a.u.i, out);
  if (op == JOP_MOD && a.type == JV_STR)
    return jinja_fail(st, line,
                      "printf-style string formatting ('%%' on a string) is not supported");
  return jinja_fail(st, line, "unsupported operand type(s) for %s: '%s' and '%s'", op_symbol(op),
                    jv_type_name(a), jv_type_name(b));
}

static int contains(jinja_state *st, int line, jv item, jv container, int *result) {
  *result = 0;
  switch (container.type) {
  case JV_STR:
    if (item.type != JV_STR)
      return jinja_fail(st, line, "'in <string>' requires string as left operand, not %s",
                        jv_type_name(item));
    if (item.u.s.n == 0) return *result = 1, VKFT_OK;
    for (size_t i = 0; i + item.u.s.n <= container.u.s.n; i++)
      if (memcmp(container.u.s.p + i, item.u.s.p, item.u.s.n) == 0) return *result = 1, VKFT_OK;
    return VKFT_OK;
  case JV_LIST:
    for (size_t i = 0; i < container.u.list->len; i++)
      if (jv_equal(container.u.list->items[i], item)) return *result = 1, VKFT_OK;
    return VKFT_OK;
  case JV_DICT:
    *result = jv_dict_get(container.u.dict, item) != NULL;
    return VKFT_OK;
  case JV_UNDEFINED:
    return VKFT_OK; /* iterates as empty */
  case JV_ITER: {   /* `in` consumes a generator up to the match */
    jv rest;
    if (jinja_iter_rest(st, container.u.iter, 0, &rest)) return VKFT_ERR;
    size_t i = 0;
    while (i < rest.u.list->len && !jv_equal(rest.u.list->items[i], item)) i++;
    *result = i < rest.u.list->len;
    container.u.iter->pos += i + (size_t)*result;
    return VKFT_OK;
  }
  default:
    return jinja_fail(st, line, "argument of type '%s' is not iterable", jv_type_name(container));
  }
}

static int compare(jinja_state *st, int line, int op, jv a, jv b, int *result) {
  int c;
  switch (op) {
  case JOP_EQ:
    *result = jv_equal(a, b);
    return VKFT_OK;
  case JOP_NE:
    *result = !jv_equal(a, b);
    return VKFT_OK;
  case JOP_IN:
    return contains(st, line, a, b, result);
  case JOP_NOTIN:
    if (contains(st, line, a, b, result)) return VKFT_ERR;
    *result = !*result;
    return VKFT_OK;
  default:
    if (a.type == JV_UNDEFINED) return undefined_error(st, line, a);
    if (b.type == JV_UNDEFINED) return undefined_error(st, line, b);
    if (jv_compare(st, line, a, b, &c)) return VKFT_ERR;
    *result = op == JOP_LT ? c < 0 : op == JOP_LE ? c <= 0 : op == JOP_GT ? c > 0 : c >= 0;
    return VKFT_OK;
  }
}

/* ---- calls ---- */

static int eval_args(jinja_state *st, const jinja_node *n, jinja_args *args) {
  memset(args, 0, sizeof *args);
  if (n->nkids) {
    args->pos = jinja_arena_alloc(&st->arena, n->nkids * sizeof(jv));
    if (!args->pos) return oom(st, n->line);
    for (size_t i = 0; i < n->nkids; i++)
      if (eval(st, n->kids[i], &args->pos[i])) return VKFT_ERR;
    args->npos = n->nkids;
  }
  if (n->nkw) {
    args->kw = jinja_arena_alloc(&st->arena, n->nkw * sizeof(jv));
    if (!args->kw) return oom(st, n->line);
    for (size_t i = 0; i < n->nkw; i++)
      if (eval(st, n->kw_values[i], &args->kw[i])) return VKFT_ERR;
    args->kw_names = n->kw_names;
    args->nkw = n->nkw;
  }
  return VKFT_OK;
}

int jinja_arg(const jinja_args *args, size_t index, const char *name, jv *out) {
  if (index < args->npos) {
    *out = args->pos[index];
    return 1;
  }
  for (size_t i = 0; name && i < args->nkw; i++)
    if (strcmp(args->kw_names[i], name) == 0) {
      *out = args->kw[i];
      return 1;
    }
  return 0;
}

/* Renders body into a string (set blocks, macros, filter blocks). */
static int capture(jinja_state *st, const jinja_node *body, jv *out) {
  vkft_strbuf buf = {.limit = st->max_output}, *saved = st->out;
  st->out = &buf;
  int rc = exec_node(st, body);
  st->out = saved;
  if (rc < 0) {
    vkft_strbuf_free(&buf);
    return VKFT_ERR;
  }
  return jv_str_from_buf(st, &buf, out);
}

static int call_macro(jinja_state *st, int line, const jv_func *fn, const jinja_args *args,
                      const jv_func *caller, jv *out) {
  const jinja_node *m = fn->node;
  if (st->call_depth >= JINJA_MAX_CALL_DEPTH)
    return jinja_fail(st, line, "macro calls nested deeper than %d", JINJA_MAX_CALL_DEPTH);
  if (count_step(st, line)) return VKFT_ERR;
  if (fn->kind == JF_MACRO && args->npos > m->nkw)
    return jinja_fail(st, line, "macro '%s' takes not more than %zu argument(s)", m->name, m->nkw);
  for (size_t i = 0; fn->kind == JF_MACRO && i < args->nkw; i++) {
    size_t k = 0;
    while (k < m->nkw && strcmp(m->kw_names[k], args->kw_names[i]) != 0) k++;
    if (k == m->nkw)
      return jinja_fail(st, line, "macro '%s' has no parameter '%s'", m->name, args->kw_names[i]);
  }
  jinja_scope *saved = st->scope, *scope = NULL;
  if (push_scope(st, fn->scope, &scope)) return VKFT_ERR;
  st->scope = scope;
  st->call_depth++;
  int rc = VKFT_OK;
  if (fn->kind == JF_MACRO) {
    for (size_t k = 0; k < m->nkw && rc == VKFT_OK; k++) {
      jv value;
      if (!jinja_arg(args, k, m->kw_names[k], &value)) {
        if (m->kw_values[k])
          rc = eval(st, m->kw_values[k], &value);
        else
          value = jv_undefined(m->kw_names[k]);
      }
      if (rc == VKFT_OK) rc = set_var(st, m->kw_names[k], value);
    }
    if (rc == VKFT_OK && caller) {
      jv c = {.type = JV_FUNC};
      c.u.func = (jv_func *)caller;
      rc = set_var(st, "caller", c);
    }
  }
  if (rc == VKFT_OK) rc = capture(st, m->body, out);
  st->call_depth--;
  st->scope = saved;
  return rc;
}

static int call_value(jinja_state *st, int line, jv callee, const jinja_args *args,
                      const jv_func *caller, jv *out) {
  if (callee.type == JV_UNDEFINED) return undefined_error(st, line, callee);
  if (callee.type != JV_FUNC)
    return jinja_fail(st, line, "'%s' object is not callable", jv_type_name(callee));
  if (callee.u.func->kind == JF_GLOBAL)
    return jinja_call_global(st, line, callee.u.func->global_id, args, out);
  return call_macro(st, line, callee.u.func, args, caller, out);
}

static int eval_call(jinja_state *st, const jinja_node *n, const jv_func *caller, jv *out) {
  jinja_args args;
  const jinja_node *callee = n->a;
  if (callee->kind == JN_ATTR) {
    /* obj.method(...): Python methods of str/dict/list, or a callable stored in a dict */
    jv obj;
    if (eval(st, callee->a, &obj)) return VKFT_ERR;
    if (obj.type == JV_UNDEFINED) return undefined_error(st, n->line, obj);
    const jv *stored = obj.type == JV_DICT ? jv_dict_get_str(obj.u.dict, callee->name) : NULL;
    if (eval_args(st, n, &args)) return VKFT_ERR;
    if (stored && stored->type == JV_FUNC)
      return call_value(st, n->line, *stored, &args, caller, out);
    return jinja_method(st, n->line, obj, callee->name, &args, out);
  }
  jv fn;
  if (eval(st, callee, &fn) || eval_args(st, n, &args)) return VKFT_ERR;
  return call_value(st, n->line, fn, &args, caller, out);
}

/* A filter node; input_node NULL means "use *input" (filter blocks and block sets). */
static int eval_filter(jinja_state *st, const jinja_node *n, jv input, jv *out) {
  jv value = input;
  if (n->a && eval(st, n->a, &value)) return VKFT_ERR;
  jinja_args args;
  if (eval_args(st, n, &args)) return VKFT_ERR;
  return jinja_filter(st, n->line, n->name, value, &args, out);
}

/* ---- expressions ---- */

static int eval_node(jinja_state *st, const jinja_node *n, jv *out);

/* Every nested evaluation (an operand, a filter's input, a macro body) goes through enter():
 * chains like `x|f|f|f...` or `a and b and c...` parse as deep left-leaning trees, and the
 * limit keeps their evaluation within the C stack of a worker thread (1 MiB on Windows). */
static int enter(jinja_state *st, int line) {
  if (st->depth >= JINJA_MAX_EVAL_DEPTH)
    return jinja_fail(st, line,
                      "expression or call chain nested deeper than %d levels (a chain of "
                      "filters, operators or attributes this long fails in Jinja2 too)",
                      JINJA_MAX_EVAL_DEPTH);
  st->depth++;
  return VKFT_OK;
}

static int eval(jinja_state *st, const jinja_node *n, jv *out) {
  if (enter(st, n->line)) return VKFT_ERR;
  int rc = eval_node(st, n, out);
  st->depth--;
  return rc;
}

static int eval_node(jinja_state *st, const jinja_node *n, jv *out) {
  jv a, b;
  switch (n->kind) {
  case JN_LITERAL:
    *out = n->value;
    return VKFT_OK;
  case JN_NAME:
    lookup(st, n->name, out);
    return VKFT_OK;
  case JN_LIST:
  case JN_TUPLE:
    if (jv_new_list(st, n->nkids, out)) return VKFT_ERR;
    out->u.list->is_tuple = n->kind == JN_TUPLE;
    for (size_t i = 0; i < n->nkids; i++)
      if (eval(st, n->kids[i], &out->u.list->items[out->u.list->len++])) return VKFT_ERR;
    return VKFT_OK;
  case JN_DICT:
    if (jv_new_dict(st, JD_DICT, out)) return VKFT_ERR;
    for (size_t i = 0; i + 1 < n->nkids; i += 2)
      if (eval(st, n->kids[i], &a) || eval(st, n->kids[i + 1], &b) ||
          jv_dict_set(st, out->u.dict, a, b))
        return VKFT_ERR;
    return VKFT_OK;
  case JN_ATTR:
    if (eval(st, n->a, &a)) return VKFT_ERR;
    return jinja_getattr(st, n->line, a, n->name, out);
  case JN_ITEM:
    if (eval(st, n->a, &a) || eval(st, n->b, &b)) return VKFT_ERR;
    return jinja_getitem(st, n->line, a, b, out);
  case JN_SLICE: {
    jv bounds[3];
    int has[3] = {0, 0, 0};
    const jinja_node *parts[3] = {n->b, n->c, n->d};
    if (eval(st, n->a, &a)) return VKFT_ERR;
    for (int k = 0; k < 3; k++) {
      if (!parts[k]) continue;
      if (eval(st, parts[k], &bounds[k])) return VKFT_ERR;
      has[k] = bounds[k].type != JV_NONE && bounds[k].type != JV_UNDEFINED;
    }
    return slice(st, n->line, a, bounds, has, out);
  }
  case JN_CALL:
    return eval_call(st, n, NULL, out);
  case JN_FILTER:
    return eval_filter(st, n, jv_undefined(NULL), out);
  case JN_TEST: {
    jinja_args args;
    int result;
    if (eval(st, n->a, &a) || eval_args(st, n, &args) ||
        jinja_test(st, n->line, n->name, a, &args, &result))
      return VKFT_ERR;
    *out = jv_bool(n->op ? !result : result);
    return VKFT_OK;
  }
  case JN_NEG:
  case JN_POS:
    if (eval(st, n->a, &a)) return VKFT_ERR;
    if (a.type == JV_UNDEFINED) return undefined_error(st, n->line, a);
    if (!jv_is_number(a))
      return jinja_fail(st, n->line, "bad operand type for unary %s: '%s'",
                        n->kind == JN_NEG ? "-" : "+", jv_type_name(a));
    if (n->kind == JN_POS)
      *out = a.type == JV_BOOL ? jv_int(a.u.i) : a;
    else if (a.type == JV_FLOAT)
      *out = jv_float(-a.u.f);
    else if (a.u.i == INT64_MIN)
      return int_overflow(st, n->line);
    else
      *out = jv_int(-a.u.i);
    return VKFT_OK;
  case JN_NOT:
    if (eval(st, n->a, &a)) return VKFT_ERR;
    *out = jv_bool(!jv_truthy(a));
    return VKFT_OK;
  case JN_AND:
  case JN_OR:
    if (eval(st, n->a, &a)) return VKFT_ERR;
    if (jv_truthy(a) == (n->kind == JN_OR)) return *out = a, VKFT_OK;
    return eval(st, n->b, out);
  case JN_BINARY:
    if (eval(st, n->a, &a) || eval(st, n->b, &b)) return VKFT_ERR;
    return arith(st, n->line, n->op, a, b, out);
  case JN_COMPARE: {
    if (eval(st, n->kids[0], &a)) return VKFT_ERR;
    for (size_t i = 1; i < n->nkids; i++) {
      int result;
      if (eval(st, n->kids[i], &b) || compare(st, n->line, n->ops[i], a, b, &result))
        return VKFT_ERR;
      if (!result) return *out = jv_bool(0), VKFT_OK;
      a = b;
    }
    *out = jv_bool(1);
    return VKFT_OK;
  }
  case JN_COND:
    if (eval(st, n->a, &a)) return VKFT_ERR;
    if (jv_truthy(a)) return eval(st, n->b, out);
    if (n->c) return eval(st, n->c, out);
    *out = jv_undefined(NULL);
    return VKFT_OK;
  default:
    return jinja_fail(st, n->line, "statement used as an expression");
  }
}

/* ---- statements ---- */

static int assign(jinja_state *st, const jinja_node *target, jv value) {
  if (target->kind == JN_NAME) return set_var(st, target->name, value);
  if (target->kind == JN_ATTR) {
    jv ns;
    if (eval(st, target->a, &ns)) return VKFT_ERR;
    if (ns.type != JV_DICT || ns.u.dict->kind != JD_NAMESPACE)
      return jinja_fail(st, target->line, "cannot assign attribute on non-namespace object");
    return jv_dict_set(st, ns.u.dict, jv_str_ref(target->name, strlen(target->name)), value);
  }
  /* tuple unpacking */
  jv items;
  if (jinja_iterate(st, target->line, value, &items)) return VKFT_ERR;
  if (items.u.list->len != target->nkids)
    return jinja_fail(st, target->line, "cannot unpack %zu values into %zu names",
                      items.u.list->len, target->nkids);
  for (size_t i = 0; i < target->nkids; i++)
    if (assign(st, target->kids[i], items.u.list->items[i])) return VKFT_ERR;
  return VKFT_OK;
}

static int set_loop_key(jinja_state *st, jv_dict *loop, const char *key, jv value) {
  return jv_dict_set(st, loop, jv_str_ref(key, strlen(key)), value);
}

static int exec_for(jinja_state *st, const jinja_node *n) {
  jv iterable, items;
  if (eval(st, n->b, &iterable) || jinja_iterate(st, n->line, iterable, &items)) return VKFT_ERR;
  jinja_scope *outer = st->scope;
  int rc = VKFT_OK;
  if (n->c) { /* `for x in y if cond`: filter first, so loop.length counts kept items */
    jv kept;
    if (jv_new_list(st, 0, &kept)) return VKFT_ERR;
    for (size_t i = 0; i < items.u.list->len && rc == VKFT_OK; i++) {
      jv keep;
      rc = count_step(st, n->line);
      if (rc == VKFT_OK) rc = push_scope(st, outer, &st->scope);
      if (rc == VKFT_OK) rc = assign(st, n->a, items.u.list->items[i]);
      if (rc == VKFT_OK) rc = eval(st, n->c, &keep);
      if (rc == VKFT_OK && jv_truthy(keep))
        rc = jv_list_push(st, kept.u.list, items.u.list->items[i]);
      st->scope = outer;
    }
    if (rc) return rc;
    items = kept;
  }
  /* One loop object advanced in place (as Jinja2's LoopContext is); one scope per iteration,
   * reused unless a macro defined in the body kept it: a long loop allocates almost nothing. */
  size_t len = items.u.list->len;
  jv loop;
  jinja_scope *scope = NULL;
  if (jv_new_dict(st, JD_LOOP, &loop)) return VKFT_ERR;
  jv_dict *l = loop.u.dict;
  const jv *item = items.u.list->items;
  for (size_t i = 0; i < len; i++) {
    if (count_step(st, n->line)) return VKFT_ERR;
    if (scope && !scope->captured)
      scope->vars->len = 0;
    else if (push_scope(st, outer, &scope))
      return VKFT_ERR;
    st->scope = scope;
    rc = (set_loop_key(st, l, "index", jv_int((int64_t)i + 1)) ||
          set_loop_key(st, l, "index0", jv_int((int64_t)i)) ||
          set_loop_key(st, l, "revindex", jv_int((int64_t)(len - i))) ||
          set_loop_key(st, l, "revindex0", jv_int((int64_t)(len - i - 1))) ||
          set_loop_key(st, l, "first", jv_bool(i == 0)) ||
          set_loop_key(st, l, "last", jv_bool(i + 1 == len)) ||
          set_loop_key(st, l, "length", jv_int((int64_t)len)) ||
          set_loop_key(st, l, "depth", jv_int(1)) || set_loop_key(st, l, "depth0", jv_int(0)) ||
          set_loop_key(st, l, "previtem", i > 0 ? item[i - 1] : jv_undefined(NULL)) ||
          set_loop_key(st, l, "nextitem", i + 1 < len ? item[i + 1] : jv_undefined(NULL)) ||
          set_var(st, "loop", loop) || assign(st, n->a, item[i]))
             ? VKFT_ERR
             : VKFT_OK;
    if (rc == VKFT_OK) rc = exec_node(st, n->body);
    st->scope = outer;
    if (rc == JX_BREAK) break;
    if (rc == JX_CONTINUE) rc = VKFT_OK;
    if (rc) return rc;
  }
  if (len == 0 && n->else_body) return exec_node(st, n->else_body);
  return VKFT_OK;
}

/* Applies a {% filter %} / {% set x | f %} chain (innermost filter has a NULL input). */
static int apply_chain(jinja_state *st, const jinja_node *chain, jv input, jv *out) {
  if (chain->a) {
    jv inner;
    if (enter(st, chain->line)) return VKFT_ERR;
    int rc = apply_chain(st, chain->a, input, &inner);
    st->depth--;
    if (rc) return VKFT_ERR;
    input = inner;
  }
  jinja_args args;
  if (eval_args(st, chain, &args)) return VKFT_ERR;
  return jinja_filter(st, chain->line, chain->name, input, &args, out);
}

static int exec_statement(jinja_state *st, const jinja_node *n);

static int exec_node(jinja_state *st, const jinja_node *n) {
  if (enter(st, n->line)) return VKFT_ERR;
  int rc = exec_statement(st, n);
  st->depth--;
  return rc;
}

static int exec_statement(jinja_state *st, const jinja_node *n) {
  jv v;
  switch (n->kind) {
  case JN_BODY:
    for (size_t i = 0; i < n->nkids; i++) {
      int rc = exec_node(st, n->kids[i]);
      if (rc) return rc;
    }
    return VKFT_OK;
  case JN_TEXT:
    if (vkft_strbuf_add(st->out, n->value.u.s.p, n->value.u.s.n))
      return jinja_fail(st, n->line, "%s", vkft_error_message());
    return VKFT_OK;
  case JN_OUTPUT:
    if (eval(st, n->a, &v)) return VKFT_ERR;
    if (jv_write_str(st->out, v, 0)) return jinja_fail(st, n->line, "%s", vkft_error_message());
    return VKFT_OK;
  case JN_IF:
    if (eval(st, n->a, &v)) return VKFT_ERR;
    if (jv_truthy(v)) return exec_node(st, n->body);
    return n->else_body ? exec_node(st, n->else_body) : VKFT_OK;
  case JN_FOR:
    return exec_for(st, n);
  case JN_SET:
    if (eval(st, n->b, &v)) return VKFT_ERR;
    return assign(st, n->a, v);
  case JN_SETBLOCK:
    if (capture(st, n->body, &v)) return VKFT_ERR;
    if (n->c && apply_chain(st, n->c, v, &v)) return VKFT_ERR;
    return assign(st, n->a, v);
  case JN_FILTERBLOCK:
    if (capture(st, n->body, &v) || apply_chain(st, n->c, v, &v)) return VKFT_ERR;
    if (jv_write_str(st->out, v, 0)) return jinja_fail(st, n->line, "%s", vkft_error_message());
    return VKFT_OK;
  case JN_MACRO: {
    jv_func *fn = jinja_arena_alloc(&st->arena, sizeof *fn);
    if (!fn) return oom(st, n->line);
    fn->kind = JF_MACRO;
    fn->node = n;
    fn->scope = st->scope;
    st->scope->captured = 1;
    v.type = JV_FUNC;
    v.u.func = fn;
    return set_var(st, n->name, v);
  }
  case JN_CALLBLOCK: {
    jv_func *caller = jinja_arena_alloc(&st->arena, sizeof *caller);
    if (!caller) return oom(st, n->line);
    caller->kind = JF_CALLER;
    caller->node = n;
    caller->scope = st->scope;
    st->scope->captured = 1;
    if (eval_call(st, n->a, caller, &v)) return VKFT_ERR;
    if (jv_write_str(st->out, v, 0)) return jinja_fail(st, n->line, "%s", vkft_error_message());
    return VKFT_OK;
  }
  case JN_BREAK:
    return JX_BREAK;
  case JN_CONTINUE:
    return JX_CONTINUE;
  default:
    if (eval(st, n, &v)) return VKFT_ERR;
    return VKFT_OK;
  }
}

int jinja_render_root(jinja_state *st, const jinja_node *root) {
  if (push_scope(st, NULL, &st->scope)) return VKFT_ERR;
  int rc = exec_node(st, root);
  return rc < 0 ? VKFT_ERR : VKFT_OK;
}
