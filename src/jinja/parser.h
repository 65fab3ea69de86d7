/* Private to the Jinja parser (jinja_parser.c: token helpers and expressions;
 * jinja_statements.c: statements and bodies). */
#ifndef VKFT_JINJA_PARSER_H
#define VKFT_JINJA_PARSER_H

#include "internal.h"

typedef struct parser {
  const jinja_token *tok;
  size_t pos, count;
  const char *name;
  jinja_arena *arena;
  int depth, loop_depth;
} parser;

/* A growable list of nodes/names that ends up copied into the arena. */
typedef struct node_vec {
  jinja_node **items;
  const char **names;
  jinja_node **values;
  int *ops;
  size_t len, cap;
} node_vec;

const jinja_token *jp_cur(const parser *p);
const jinja_token *jp_peek(const parser *p, size_t ahead);
void jp_advance(parser *p);
int jp_fail(const parser *p, int line, const char *fmt, const char *arg); /* fmt has one %s */
const char *jp_describe(const jinja_token *t); /* NULL for names and operators */
int jp_unexpected(const parser *p);
int jp_is_op(const jinja_token *t, const char *op);
int jp_is_name(const jinja_token *t, const char *name);
int jp_expect_op(parser *p, const char *op);
jinja_node *jp_new_node(parser *p, jinja_node_kind kind, int line);
char *jp_arena_name(parser *p, const jinja_token *t);
int jp_vec_push(node_vec *v, jinja_node *item, const char *name, jinja_node *value, int op);
void jp_vec_free(node_vec *v);
int jp_vec_to_kids(parser *p, node_vec *v, jinja_node *n, int with_ops);
int jp_vec_to_kwargs(parser *p, node_vec *v, jinja_node *n);
int jp_enter(parser *p); /* counts nesting depth; fails past JINJA_MAX_NESTING */

jinja_node *jp_parse_expression(parser *p, int with_condexpr);
/* "a, b, c" (a tuple) or a single expression */
jinja_node *jp_parse_tuple(parser *p, int with_condexpr, int explicit_parens);
/* "name" or "name(args)" of a filter applied to input (NULL in {% filter %} chains) */
jinja_node *jp_parse_filter(parser *p, jinja_node *input);

#endif
