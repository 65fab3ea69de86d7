/* Jinja expression parser: token helpers shared with jinja_statements.c, and expressions with
 * the operator precedence of Jinja2's parser.py (filters and tests bind tighter than
 * arithmetic, so `x|length - 1` is `(x|length) - 1`). Malformed syntax is an error with a line
 * number. */
#include "parser.h"

#include "vkft/buf.h"
#include "vkft/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const jinja_token *jp_cur(const parser *p) {
  return &p->tok[p->pos];
}
const jinja_token *jp_peek(const parser *p, size_t ahead) {
  size_t i = p->pos + ahead;
  return &p->tok[i < p->count ? i : p->count - 1];
}
void jp_advance(parser *p) {
  if (p->pos + 1 < p->count) p->pos++;
}

int jp_fail(const parser *p, int line, const char *fmt, const char *arg) {
  char msg[256];
  snprintf(msg, sizeof msg, fmt, arg);
  return vkft_error("%s:%d: %s", p->name, line, msg);
}

const char *jp_describe(const jinja_token *t) {
  switch (t->type) {
  case JT_EOF:
    return "end of template";
  case JT_TEXT:
    return "template text";
  case JT_VAR_BEGIN:
    return "'{{'";
  case JT_VAR_END:
    return "'}}'";
  case JT_BLOCK_BEGIN:
    return "'{%'";
  case JT_BLOCK_END:
    return "'%}'";
  case JT_STRING:
    return "a string";
  case JT_INT:
    return "an integer";
  case JT_FLOAT:
    return "a float";
  default:
    return NULL;
  }
}

int jp_unexpected(const parser *p) {
  const jinja_token *t = jp_cur(p);
  const char *d = jp_describe(t);
  if (d) return jp_fail(p, t->line, "unexpected %s", d);
  char spelled[64];
  size_t n = t->len < sizeof spelled - 1 ? t->len : sizeof spelled - 1;
  memcpy(spelled, t->text, n);
  spelled[n] = 0;
  return jp_fail(p, t->line, "unexpected '%s'", spelled);
}

int jp_is_op(const jinja_token *t, const char *op) {
  return t->type == JT_OP && t->len == strlen(op) && memcmp(t->text, op, t->len) == 0;
}
int jp_is_name(const jinja_token *t, const char *name) {
  return t->type == JT_NAME && t->len == strlen(name) && memcmp(t->text, name, t->len) == 0;
}

int jp_expect_op(parser *p, const char *op) {
  if (!jp_is_op(jp_cur(p), op)) {
    char msg[32];
    snprintf(msg, sizeof msg, "expected '%s'", op);
    const char *d = jp_describe(jp_cur(p));
    return vkft_error("%s:%d: %s, got %s", p->name, jp_cur(p)->line, msg, d ? d : "another token");
  }
  jp_advance(p);
  return VKFT_OK;
}

jinja_node *jp_new_node(parser *p, jinja_node_kind kind, int line) {
  jinja_node *n = jinja_arena_alloc(p->arena, sizeof *n);
  if (!n) {
    vkft_error_nomem();
    return NULL;
  }
  n->kind = kind;
  n->line = line;
  return n;
}

char *jp_arena_name(parser *p, const jinja_token *t) {
  char *s = jinja_arena_alloc(p->arena, t->len + 1);
  if (!s) {
    vkft_error_nomem();
    return NULL;
  }
  memcpy(s, t->text, t->len);
  return s;
}

int jp_vec_push(node_vec *v, jinja_node *item, const char *name, jinja_node *value, int op) {
  if (v->len == v->cap) { /* four parallel arrays, grown to the same capacity */
    size_t need = v->len + 1, c1 = v->cap, c2 = v->cap, c3 = v->cap, c4 = v->cap;
    if (vkft_grow((void **)&v->items, &c1, need, sizeof *v->items) ||
        vkft_grow((void **)&v->names, &c2, need, sizeof *v->names) ||
        vkft_grow((void **)&v->values, &c3, need, sizeof *v->values) ||
        vkft_grow((void **)&v->ops, &c4, need, sizeof *v->ops))
      return VKFT_ERR;
    v->cap = c1;
  }
  v->items[v->len] = item;
  v->names[v->len] = name;
  v->values[v->len] = value;
  v->ops[v->len] = op;
  v->len++;
  return VKFT_OK;
}

void jp_vec_free(node_vec *v) {
  free(v->items);
  free(v->names);
  free(v->values);
  free(v->ops);
}

/* Copies the collected items into n->kids (and ops when with_ops). */
int jp_vec_to_kids(parser *p, node_vec *v, jinja_node *n, int with_ops) {
  n->nkids = v->len;
  if (!v->len) return VKFT_OK;
  n->kids = jinja_arena_alloc(p->arena, v->len * sizeof *n->kids);
  if (!n->kids) return vkft_error_nomem();
  memcpy(n->kids, v->items, v->len * sizeof *n->kids);
  if (with_ops) {
    n->ops = jinja_arena_alloc(p->arena, v->len * sizeof *n->ops);
    if (!n->ops) return vkft_error_nomem();
    memcpy(n->ops, v->ops, v->len * sizeof *n->ops);
  }
  return VKFT_OK;
}

int jp_vec_to_kwargs(parser *p, node_vec *v, jinja_node *n) {
  n->nkw = v->len;
  if (!v->len) return VKFT_OK;
  n->kw_names = jinja_arena_alloc(p->arena, v->len * sizeof *n->kw_names);
  n->kw_values = jinja_arena_alloc(p->arena, v->len * sizeof *n->kw_values);
  if (!n->kw_names || !n->kw_values) return vkft_error_nomem();
  memcpy(n->kw_names, v->names, v->len * sizeof *n->kw_names);
  memcpy(n->kw_values, v->values, v->len * sizeof *n->kw_values);
  return VKFT_OK;
}

static jinja_node *parse_unary(parser *p, int with_filter);
static jinja_node *parse_or(parser *p);

int jp_enter(parser *p) {
  if (++p->depth > JINJA_MAX_NESTING)
    return vkft_error("%s:%d: nesting deeper than %d levels", p->name, jp_cur(p)->line,
                      JINJA_MAX_NESTING);
  return VKFT_OK;
}

/* (args..., name=value...) after the '(' has been seen; fills n->kids and n->kw_*. */
static int parse_call_args(parser *p, jinja_node *n) {
  if (jp_expect_op(p, "(")) return VKFT_ERR;
  node_vec args = {0}, kwargs = {0};
  int rc = VKFT_ERR;
  while (!jp_is_op(jp_cur(p), ")")) {
    if (args.len + kwargs.len > 0 && jp_expect_op(p, ",")) goto done;
    if (jp_is_op(jp_cur(p), ")")) break; /* trailing comma */
    if (jp_is_op(jp_cur(p), "*") || jp_is_op(jp_cur(p), "**")) {
      jp_fail(p, jp_cur(p)->line, "%s", "*args and **kwargs in calls are not supported");
      goto done;
    }
    if (jp_cur(p)->type == JT_NAME && jp_is_op(jp_peek(p, 1), "=")) {
      const char *name = jp_arena_name(p, jp_cur(p));
      if (!name) goto done;
      jp_advance(p);
      jp_advance(p);
      jinja_node *value = jp_parse_expression(p, 1);
      if (!value || jp_vec_push(&kwargs, NULL, name, value, 0)) goto done;
    } else {
      if (kwargs.len) {
        jp_fail(p, jp_cur(p)->line, "%s", "positional argument follows keyword argument");
        goto done;
      }
      jinja_node *value = jp_parse_expression(p, 1);
      if (!value || jp_vec_push(&args, value, NULL, NULL, 0)) goto done;
    }
  }
  jp_advance(p);
  rc = jp_vec_to_kids(p, &args, n, 0) || jp_vec_to_kwargs(p, &kwargs, n) ? VKFT_ERR : VKFT_OK;
done:
  jp_vec_free(&args);
  jp_vec_free(&kwargs);
  return rc;
}

/* Parses a sequence "a, b, c" (the tuple rule of {{ }} and set); a lone item stays itself. */
jinja_node *jp_parse_tuple(parser *p, int with_condexpr, int explicit_parens) {
  int line = jp_cur(p)->line;
  node_vec items = {0};
  jinja_node *result = NULL;
  int is_tuple = 0;
  for (;;) {
    if (items.len) {
      if (!jp_is_op(jp_cur(p), ",")) break;
      jp_advance(p);
      is_tuple = 1;
    }
    const jinja_token *t = jp_cur(p);
    if (t->type == JT_VAR_END || t->type == JT_BLOCK_END || t->type == JT_EOF || jp_is_op(t, ")"))
      break;
    jinja_node *item = jp_parse_expression(p, with_condexpr);
    if (!item || jp_vec_push(&items, item, NULL, NULL, 0)) goto done;
  }
  if (!is_tuple && items.len == 1) {
    result = items.items[0];
  } else if (items.len == 0 && !explicit_parens) {
    jp_unexpected(p);
  } else {
    result = jp_new_node(p, JN_TUPLE, line);
    if (result && jp_vec_to_kids(p, &items, result, 0)) result = NULL;
  }
done:
  jp_vec_free(&items);
  return result;
}

static jinja_node *parse_primary(parser *p) {
  const jinja_token *t = jp_cur(p);
  jinja_node *n;
  if (t->type == JT_NAME) {
    if (!(n = jp_new_node(p, JN_LITERAL, t->line))) return NULL;
    if (jp_is_name(t, "true") || jp_is_name(t, "True"))
      n->value = jv_bool(1);
    else if (jp_is_name(t, "false") || jp_is_name(t, "False"))
      n->value = jv_bool(0);
    else if (jp_is_name(t, "none") || jp_is_name(t, "None"))
      n->value = jv_none();
    else {
      n->kind = JN_NAME;
      if (!(n->name = jp_arena_name(p, t))) return NULL;
    }
    jp_advance(p);
    return n;
  }
  if (t->type == JT_STRING) {
    /* adjacent string literals concatenate, as in Python */
    size_t total = 0, i = p->pos;
    while (i < p->count && p->tok[i].type == JT_STRING) total += p->tok[i++].len;
    char *s = jinja_arena_alloc(p->arena, total + 1);
    if (!s || !(n = jp_new_node(p, JN_LITERAL, t->line))) return vkft_error_nomem(), NULL;
    size_t o = 0;
    while (jp_cur(p)->type == JT_STRING) {
      memcpy(s + o, jp_cur(p)->text, jp_cur(p)->len);
      o += jp_cur(p)->len;
      jp_advance(p);
    }
    n->value = jv_str_ref(s, total);
    return n;
  }
  if (t->type == JT_INT || t->type == JT_FLOAT) {
    if (!(n = jp_new_node(p, JN_LITERAL, t->line))) return NULL;
    n->value = t->type == JT_INT ? jv_int(t->int_value) : jv_float(t->float_value);
    jp_advance(p);
    return n;
  }
  if (jp_is_op(t, "(")) {
    jp_advance(p);
    n = jp_parse_tuple(p, 1, 1);
    if (!n || jp_expect_op(p, ")")) return NULL;
    return n;
  }
  if (jp_is_op(t, "[") || jp_is_op(t, "{")) {
    int is_dict = jp_is_op(t, "{");
    const char *close = is_dict ? "}" : "]";
    if (!(n = jp_new_node(p, is_dict ? JN_DICT : JN_LIST, t->line))) return NULL;
    jp_advance(p);
    node_vec items = {0};
    while (!jp_is_op(jp_cur(p), close)) {
      if (items.len && jp_expect_op(p, ",")) goto fail_vec;
      if (jp_is_op(jp_cur(p), close)) break;
      jinja_node *item = jp_parse_expression(p, 1);
      if (!item || jp_vec_push(&items, item, NULL, NULL, 0)) goto fail_vec;
      if (is_dict) {
        if (jp_expect_op(p, ":")) goto fail_vec;
        jinja_node *value = jp_parse_expression(p, 1);
        if (!value || jp_vec_push(&items, value, NULL, NULL, 0)) goto fail_vec;
      }
    }
    jp_advance(p);
    if (jp_vec_to_kids(p, &items, n, 0)) goto fail_vec;
    jp_vec_free(&items);
    return n;
  fail_vec:
    jp_vec_free(&items);
    return NULL;
  }
  jp_unexpected(p);
  return NULL;
}

static jinja_node *parse_subscript(parser *p, jinja_node *target) {
  int line = jp_cur(p)->line;
  jp_advance(p); /* [ */
  jinja_node *parts[3] = {NULL, NULL, NULL};
  int is_slice = 0;
  for (int i = 0; i < 3; i++) {
    if (i > 0) {
      if (!jp_is_op(jp_cur(p), ":")) break;
      jp_advance(p);
      is_slice = 1;
    }
    if (!jp_is_op(jp_cur(p), ":") && !jp_is_op(jp_cur(p), "]"))
      if (!(parts[i] = jp_parse_expression(p, 1))) return NULL;
    if (i == 0 && !jp_is_op(jp_cur(p), ":")) break;
  }
  if (jp_expect_op(p, "]")) return NULL;
  if (!is_slice && !parts[0]) return jp_unexpected(p), NULL;
  jinja_node *n = jp_new_node(p, is_slice ? JN_SLICE : JN_ITEM, line);
  if (!n) return NULL;
  n->a = target;
  n->b = parts[0];
  n->c = parts[1];
  n->d = parts[2];
  return n;
}

static jinja_node *parse_postfix(parser *p, jinja_node *n) {
  for (;;) {
    const jinja_token *t = jp_cur(p);
    if (jp_is_op(t, ".")) {
      jp_advance(p);
      const jinja_token *attr = jp_cur(p);
      jinja_node *m = jp_new_node(p, JN_ATTR, attr->line);
      if (!m) return NULL;
      m->a = n;
      if (attr->type == JT_NAME) {
        if (!(m->name = jp_arena_name(p, attr))) return NULL;
      } else if (attr->type == JT_INT) { /* x.0 is x[0] */
        m->kind = JN_ITEM;
        if (!(m->b = jp_new_node(p, JN_LITERAL, attr->line))) return NULL;
        m->b->value = jv_int(attr->int_value);
      } else
        return jp_unexpected(p), NULL;
      jp_advance(p);
      n = m;
    } else if (jp_is_op(t, "[")) {
      if (!(n = parse_subscript(p, n))) return NULL;
    } else if (jp_is_op(t, "(")) {
      jinja_node *m = jp_new_node(p, JN_CALL, t->line);
      if (!m) return NULL;
      m->a = n;
      if (parse_call_args(p, m)) return NULL;
      n = m;
    } else
      return n;
  }
}

/* "name" or "name(args)" of a filter, applied to input (NULL inside {% filter %}). */
jinja_node *jp_parse_filter(parser *p, jinja_node *input) {
  const jinja_token *t = jp_cur(p);
  if (t->type != JT_NAME) return jp_fail(p, t->line, "%s", "expected a filter name"), NULL;
  jinja_node *n = jp_new_node(p, JN_FILTER, t->line);
  if (!n || !(n->name = jp_arena_name(p, t))) return NULL;
  n->a = input;
  jp_advance(p);
  if (jp_is_op(jp_cur(p), "(") && parse_call_args(p, n)) return NULL;
  return n;
}

static jinja_node *parse_test(parser *p, jinja_node *input) {
  int negated = 0;
  if (jp_is_name(jp_cur(p), "not")) {
    negated = 1;
    jp_advance(p);
  }
  const jinja_token *t = jp_cur(p);
  if (t->type != JT_NAME) return jp_fail(p, t->line, "%s", "expected a test name"), NULL;
  jinja_node *n = jp_new_node(p, JN_TEST, t->line);
  if (!n || !(n->name = jp_arena_name(p, t))) return NULL;
  n->a = input;
  n->op = negated;
  jp_advance(p);
  const jinja_token *next = jp_cur(p);
  if (jp_is_op(next, "(")) {
    if (parse_call_args(p, n)) return NULL;
  } else if ((next->type == JT_NAME || next->type == JT_STRING || next->type == JT_INT ||
              next->type == JT_FLOAT || jp_is_op(next, "[") || jp_is_op(next, "{")) &&
             !jp_is_name(next, "else") && !jp_is_name(next, "or") && !jp_is_name(next, "and")) {
    /* `x is divisibleby 3`: one argument without parentheses */
    if (jp_is_name(next, "is"))
      return jp_fail(p, next->line, "%s", "cannot chain tests with 'is'"), NULL;
    jinja_node *arg = parse_primary(p);
    if (!arg || !(arg = parse_postfix(p, arg))) return NULL;
    n->kids = jinja_arena_alloc(p->arena, sizeof *n->kids);
    if (!n->kids) return vkft_error_nomem(), NULL;
    n->kids[0] = arg;
    n->nkids = 1;
  }
  return n;
}

static jinja_node *parse_filter_expr(parser *p, jinja_node *n) {
  for (;;) {
    const jinja_token *t = jp_cur(p);
    if (jp_is_op(t, "|")) {
      jp_advance(p);
      if (!(n = jp_parse_filter(p, n))) return NULL;
    } else if (jp_is_name(t, "is")) {
      jp_advance(p);
      if (!(n = parse_test(p, n))) return NULL;
    } else if (jp_is_op(t, "(")) {
      jinja_node *m = jp_new_node(p, JN_CALL, t->line);
      if (!m) return NULL;
      m->a = n;
      if (parse_call_args(p, m)) return NULL;
      n = m;
    } else
      return n;
  }
}

static jinja_node *parse_unary(parser *p, int with_filter) {
  if (jp_enter(p)) return NULL;
  const jinja_token *t = jp_cur(p);
  jinja_node *n;
  if (jp_is_op(t, "-") || jp_is_op(t, "+")) {
    jp_advance(p);
    jinja_node *operand = parse_unary(p, 0);
    if (!operand || !(n = jp_new_node(p, jp_is_op(t, "-") ? JN_NEG : JN_POS, t->line))) return NULL;
    n->a = operand;
  } else if (!(n = parse_primary(p)))
    return NULL;
  n = parse_postfix(p, n);
  if (n && with_filter) n = parse_filter_expr(p, n);
  p->depth--;
  return n;
}

static jinja_node *binary(parser *p, int op, int line, jinja_node *a, jinja_node *b) {
  if (!a || !b) return NULL;
  jinja_node *n = jp_new_node(p, JN_BINARY, line);
  if (!n) return NULL;
  n->op = op;
  n->a = a;
  n->b = b;
  return n;
}

static jinja_node *parse_pow(parser *p) {
  jinja_node *n = parse_unary(p, 1);
  while (n && jp_is_op(jp_cur(p), "**")) {
    int line = jp_cur(p)->line;
    jp_advance(p);
    n = binary(p, JOP_POW, line, n, parse_unary(p, 1));
  }
  return n;
}

static jinja_node *parse_math2(parser *p) {
  jinja_node *n = parse_pow(p);
  for (;;) {
    const jinja_token *t = jp_cur(p);
    int op = jp_is_op(t, "*")    ? JOP_MUL
             : jp_is_op(t, "/")  ? JOP_DIV
             : jp_is_op(t, "//") ? JOP_FLOORDIV
             : jp_is_op(t, "%")  ? JOP_MOD
                                 : 0;
    if (!n || !op) return n;
    jp_advance(p);
    n = binary(p, op, t->line, n, parse_pow(p));
  }
}

static jinja_node *parse_concat(parser *p) {
  jinja_node *n = parse_math2(p);
  while (n && jp_is_op(jp_cur(p), "~")) {
    int line = jp_cur(p)->line;
    jp_advance(p);
    n = binary(p, JOP_CONCAT, line, n, parse_math2(p));
  }
  return n;
}

static jinja_node *parse_math1(parser *p) {
  jinja_node *n = parse_concat(p);
  for (;;) {
    const jinja_token *t = jp_cur(p);
    int op = jp_is_op(t, "+") ? JOP_ADD : jp_is_op(t, "-") ? JOP_SUB : 0;
    if (!n || !op) return n;
    jp_advance(p);
    n = binary(p, op, t->line, n, parse_concat(p));
  }
}

static jinja_node *parse_compare(parser *p) {
  int line = jp_cur(p)->line;
  jinja_node *first = parse_math1(p);
  if (!first) return NULL;
  node_vec operands = {0};
  jinja_node *result = NULL;
  if (jp_vec_push(&operands, first, NULL, NULL, 0)) goto done;
  for (;;) {
    const jinja_token *t = jp_cur(p);
    int op = jp_is_op(t, "==")     ? JOP_EQ
             : jp_is_op(t, "!=")   ? JOP_NE
             : jp_is_op(t, "<")    ? JOP_LT
             : jp_is_op(t, "<=")   ? JOP_LE
             : jp_is_op(t, ">")    ? JOP_GT
             : jp_is_op(t, ">=")   ? JOP_GE
             : jp_is_name(t, "in") ? JOP_IN
                                   : 0;
    if (!op && jp_is_name(t, "not") && jp_is_name(jp_peek(p, 1), "in")) {
      op = JOP_NOTIN;
      jp_advance(p);
    }
    if (!op) break;
    jp_advance(p);
    jinja_node *operand = parse_math1(p);
    /* ops[i] joins operand i-1 and operand i */
    if (!operand || jp_vec_push(&operands, operand, NULL, NULL, op)) goto done;
  }
  if (operands.len == 1) {
    result = first;
  } else if ((result = jp_new_node(p, JN_COMPARE, line)) &&
             jp_vec_to_kids(p, &operands, result, 1)) {
    result = NULL;
  }
done:
  jp_vec_free(&operands);
  return result;
}

static jinja_node *parse_not(parser *p) {
  if (!jp_is_name(jp_cur(p), "not")) return parse_compare(p);
  if (jp_enter(p)) return NULL;
  int line = jp_cur(p)->line;
  jp_advance(p);
  jinja_node *operand = parse_not(p), *n;
  if (!operand || !(n = jp_new_node(p, JN_NOT, line))) return NULL;
  n->a = operand;
  p->depth--;
  return n;
}

static jinja_node *parse_and(parser *p) {
  jinja_node *n = parse_not(p);
  while (n && jp_is_name(jp_cur(p), "and")) {
    int line = jp_cur(p)->line;
    jp_advance(p);
    jinja_node *b = parse_not(p), *m;
    if (!b || !(m = jp_new_node(p, JN_AND, line))) return NULL;
    m->a = n;
    m->b = b;
    n = m;
  }
  return n;
}

static jinja_node *parse_or(parser *p) {
  jinja_node *n = parse_and(p);
  while (n && jp_is_name(jp_cur(p), "or")) {
    int line = jp_cur(p)->line;
    jp_advance(p);
    jinja_node *b = parse_and(p), *m;
    if (!b || !(m = jp_new_node(p, JN_OR, line))) return NULL;
    m->a = n;
    m->b = b;
    n = m;
  }
  return n;
}

/* `a if cond else b`; without else the result is undefined (Jinja's CondExpr). */
jinja_node *jp_parse_expression(parser *p, int with_condexpr) {
  if (jp_enter(p)) return NULL;
  jinja_node *n = parse_or(p);
  while (n && with_condexpr && jp_is_name(jp_cur(p), "if")) {
    int line = jp_cur(p)->line;
    jp_advance(p);
    jinja_node *cond = parse_or(p), *m;
    if (!cond || !(m = jp_new_node(p, JN_COND, line))) return NULL;
    m->a = cond;
    m->b = n;
    if (jp_is_name(jp_cur(p), "else")) {
      jp_advance(p);
      if (!(m->c = jp_parse_expression(p, 1))) return NULL;
    }
    n = m;
  }
  p->depth--;
  return n;
}
