/* Jinja statement parser: template bodies and the statements of the supported subset (if,
 * for, set, macro, call, filter, generation, break/continue); an unknown statement is an error
 * naming it and its line. */
#include "parser.h"

#include "vkft/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static jinja_node *parse_body(parser *p, const char *const *ends, const char **found, int open_line,
                              const char *open_tag);

static int expect_block_end(parser *p) {
  if (jp_cur(p)->type != JT_BLOCK_END) {
    const char *d = jp_describe(jp_cur(p));
    if (d) return jp_fail(p, jp_cur(p)->line, "expected '%%}', got %s", d);
    return jp_unexpected(p);
  }
  jp_advance(p);
  return VKFT_OK;
}

/* for/set targets: a name, "a, b", an attribute "ns.x" (set only) */
static jinja_node *parse_target(parser *p, int allow_attr) {
  int line = jp_cur(p)->line;
  int parens = jp_is_op(jp_cur(p), "(");
  if (parens) jp_advance(p);
  node_vec names = {0};
  jinja_node *result = NULL;
  for (;;) {
    const jinja_token *t = jp_cur(p);
    if (t->type != JT_NAME) {
      jp_fail(p, t->line, "%s", "expected a variable name to assign to");
      goto done;
    }
    jinja_node *n = jp_new_node(p, JN_NAME, t->line);
    if (!n || !(n->name = jp_arena_name(p, t))) goto done;
    jp_advance(p);
    if (allow_attr && jp_is_op(jp_cur(p), ".") && names.len == 0) {
      jp_advance(p);
      if (jp_cur(p)->type != JT_NAME) {
        jp_unexpected(p);
        goto done;
      }
      jinja_node *m = jp_new_node(p, JN_ATTR, jp_cur(p)->line);
      if (!m || !(m->name = jp_arena_name(p, jp_cur(p)))) goto done;
      m->a = n;
      jp_advance(p);
      result = m;
      goto done;
    }
    if (jp_vec_push(&names, n, NULL, NULL, 0)) goto done;
    if (!jp_is_op(jp_cur(p), ",")) break;
    jp_advance(p);
  }
  if (parens && jp_expect_op(p, ")")) goto done;
  if (names.len == 1 && !parens) {
    result = names.items[0];
  } else if ((result = jp_new_node(p, JN_TUPLE, line)) && jp_vec_to_kids(p, &names, result, 0)) {
    result = NULL;
  }
done:
  jp_vec_free(&names);
  return result;
}

static jinja_node *parse_for(parser *p, int line) {
  jinja_node *n = jp_new_node(p, JN_FOR, line);
  if (!n || !(n->a = parse_target(p, 0))) return NULL;
  if (!jp_is_name(jp_cur(p), "in"))
    return jp_fail(p, jp_cur(p)->line, "%s", "expected 'in' in for loop"), NULL;
  jp_advance(p);
  if (!(n->b = jp_parse_tuple(p, 0, 0))) return NULL;
  if (jp_is_name(jp_cur(p), "if")) {
    jp_advance(p);
    if (!(n->c = jp_parse_expression(p, 0))) return NULL;
  }
  if (jp_is_name(jp_cur(p), "recursive"))
    return jp_fail(p, jp_cur(p)->line, "%s", "recursive for loops are not supported"), NULL;
  if (expect_block_end(p)) return NULL;
  static const char *const ends[] = {"endfor", "else", NULL};
  const char *found;
  p->loop_depth++;
  n->body = parse_body(p, ends, &found, line, "for");
  p->loop_depth--;
  if (!n->body) return NULL;
  if (strcmp(found, "else") == 0) {
    static const char *const ends2[] = {"endfor", NULL};
    if (expect_block_end(p) || !(n->else_body = parse_body(p, ends2, &found, line, "for")))
      return NULL;
  }
  return n;
}

static jinja_node *parse_if(parser *p, int line) {
  jinja_node *n = jp_new_node(p, JN_IF, line);
  if (!n || !(n->a = jp_parse_tuple(p, 0, 0)) || expect_block_end(p)) return NULL;
  static const char *const ends[] = {"endif", "elif", "else", NULL};
  const char *found;
  if (!(n->body = parse_body(p, ends, &found, line, "if"))) return NULL;
  if (strcmp(found, "elif") == 0) {
    /* the elif chain becomes a nested if that consumes the final endif */
    jinja_node *nested = parse_if(p, jp_cur(p)->line);
    if (!nested) return NULL;
    if (!(n->else_body = jp_new_node(p, JN_BODY, nested->line))) return NULL;
    n->else_body->kids = jinja_arena_alloc(p->arena, sizeof(jinja_node *));
    if (!n->else_body->kids) return vkft_error_nomem(), NULL;
    n->else_body->kids[0] = nested;
    n->else_body->nkids = 1;
    return n;
  }
  if (strcmp(found, "else") == 0) {
    static const char *const ends2[] = {"endif", NULL};
    if (expect_block_end(p) || !(n->else_body = parse_body(p, ends2, &found, line, "if")))
      return NULL;
  }
  return n;
}

/* optional "| f | g(x)" after a block set / in a filter block: a chain on a NULL input */
static jinja_node *parse_filter_chain(parser *p, int required) {
  jinja_node *chain = NULL;
  if (required) {
    if (!(chain = jp_parse_filter(p, NULL))) return NULL;
  }
  while (jp_is_op(jp_cur(p), "|")) {
    jp_advance(p);
    if (!(chain = jp_parse_filter(p, chain))) return NULL;
  }
  return chain;
}

static jinja_node *parse_set(parser *p, int line) {
  jinja_node *n = jp_new_node(p, JN_SET, line);
  if (!n || !(n->a = parse_target(p, 1))) return NULL;
  if (jp_is_op(jp_cur(p), "=")) {
    jp_advance(p);
    if (!(n->b = jp_parse_tuple(p, 1, 0))) return NULL;
    return n;
  }
  n->kind = JN_SETBLOCK;
  if (n->a->kind != JN_NAME && n->a->kind != JN_ATTR)
    return jp_fail(p, line, "%s", "a block set assigns one name"), NULL;
  if (jp_is_op(jp_cur(p), "|")) {
    n->c = parse_filter_chain(p, 0);
    if (!n->c) return NULL;
  }
  if (expect_block_end(p)) return NULL;
  static const char *const ends[] = {"endset", NULL};
  const char *found;
  if (!(n->body = parse_body(p, ends, &found, line, "set"))) return NULL;
  return n;
}

static jinja_node *parse_macro(parser *p, int line) {
  jinja_node *n = jp_new_node(p, JN_MACRO, line);
  if (!n) return NULL;
  if (jp_cur(p)->type != JT_NAME) return jp_fail(p, line, "%s", "expected a macro name"), NULL;
  if (!(n->name = jp_arena_name(p, jp_cur(p)))) return NULL;
  jp_advance(p);
  if (jp_expect_op(p, "(")) return NULL;
  node_vec params = {0};
  while (!jp_is_op(jp_cur(p), ")")) {
    if (params.len && jp_expect_op(p, ",")) goto fail_vec;
    if (jp_cur(p)->type != JT_NAME) {
      jp_fail(p, jp_cur(p)->line, "%s", "expected a macro parameter name");
      goto fail_vec;
    }
    const char *name = jp_arena_name(p, jp_cur(p));
    jinja_node *def = NULL;
    if (!name) goto fail_vec;
    jp_advance(p);
    if (jp_is_op(jp_cur(p), "=")) {
      jp_advance(p);
      if (!(def = jp_parse_expression(p, 1))) goto fail_vec;
    }
    if (jp_vec_push(&params, NULL, name, def, 0)) goto fail_vec;
  }
  jp_advance(p);
  if (jp_vec_to_kwargs(p, &params, n)) goto fail_vec;
  jp_vec_free(&params);
  if (expect_block_end(p)) return NULL;
  static const char *const ends[] = {"endmacro", NULL};
  const char *found;
  int saved_loop = p->loop_depth;
  p->loop_depth = 0;
  n->body = parse_body(p, ends, &found, line, "macro");
  p->loop_depth = saved_loop;
  return n->body ? n : NULL;
fail_vec:
  jp_vec_free(&params);
  return NULL;
}

static jinja_node *parse_statement(parser *p) {
  const jinja_token *t = jp_cur(p);
  int line = t->line;
  if (t->type != JT_NAME)
    return jp_fail(p, line, "%s", "expected a statement name after '{%'"), NULL;
  if (jp_enter(p)) return NULL;
  jinja_node *n = NULL;
  char word[32];
  size_t wl = t->len < sizeof word - 1 ? t->len : sizeof word - 1;
  memcpy(word, t->text, wl);
  word[wl] = 0;
  jp_advance(p);
  const char *found;
  if (strcmp(word, "for") == 0) {
    n = parse_for(p, line);
  } else if (strcmp(word, "if") == 0) {
    n = parse_if(p, line);
  } else if (strcmp(word, "set") == 0) {
    n = parse_set(p, line);
  } else if (strcmp(word, "macro") == 0) {
    n = parse_macro(p, line);
  } else if (strcmp(word, "call") == 0) {
    if (jp_is_op(jp_cur(p), "("))
      return jp_fail(p, line, "%s", "call blocks with caller arguments are not supported"), NULL;
    n = jp_new_node(p, JN_CALLBLOCK, line);
    if (!n || !(n->a = jp_parse_expression(p, 1))) return NULL;
    if (n->a->kind != JN_CALL)
      return jp_fail(p, line, "%s", "expected a macro call after 'call'"), NULL;
    static const char *const ends[] = {"endcall", NULL};
    if (expect_block_end(p) || !(n->body = parse_body(p, ends, &found, line, "call"))) return NULL;
  } else if (strcmp(word, "filter") == 0) {
    n = jp_new_node(p, JN_FILTERBLOCK, line);
    if (!n || !(n->c = parse_filter_chain(p, 1))) return NULL;
    static const char *const ends[] = {"endfilter", NULL};
    if (expect_block_end(p) || !(n->body = parse_body(p, ends, &found, line, "filter")))
      return NULL;
  } else if (strcmp(word, "generation") == 0) {
    /* transformers' AssistantTracker extension: the body renders as is */
    static const char *const ends[] = {"endgeneration", NULL};
    if (expect_block_end(p) || !(n = parse_body(p, ends, &found, line, "generation"))) return NULL;
  } else if (strcmp(word, "break") == 0 || strcmp(word, "continue") == 0) {
    if (!p->loop_depth) return jp_fail(p, line, "'%s' outside of a for loop", word), NULL;
    n = jp_new_node(p, word[0] == 'b' ? JN_BREAK : JN_CONTINUE, line);
  } else {
    return jp_fail(p, line, "unknown statement '%s'", word), NULL;
  }
  if (!n || expect_block_end(p)) return NULL;
  p->depth--;
  return n;
}

/* Statements up to one of the end tags in ends (NULL-terminated; NULL = up to the end of the
 * template). On return the end tag's name has been consumed and *found names it. */
static jinja_node *parse_body(parser *p, const char *const *ends, const char **found, int open_line,
                              const char *open_tag) {
  jinja_node *body = jp_new_node(p, JN_BODY, jp_cur(p)->line);
  if (!body) return NULL;
  node_vec kids = {0};
  for (;;) {
    const jinja_token *t = jp_cur(p);
    jinja_node *n = NULL;
    if (t->type == JT_EOF) {
      if (ends) {
        vkft_error("%s:%d: unexpected end of template: '%s' block opened on line %d is not closed "
                   "(expected '%s')",
                   p->name, t->line, open_tag, open_line, ends[0]);
        goto fail;
      }
      break;
    }
    if (t->type == JT_TEXT) {
      if (!(n = jp_new_node(p, JN_TEXT, t->line))) goto fail;
      n->value = jv_str_ref(t->text, t->len);
      jp_advance(p);
    } else if (t->type == JT_VAR_BEGIN) {
      jp_advance(p);
      if (!(n = jp_new_node(p, JN_OUTPUT, t->line)) || !(n->a = jp_parse_tuple(p, 1, 0))) goto fail;
      if (jp_cur(p)->type != JT_VAR_END) {
        const char *d = jp_describe(jp_cur(p));
        if (d)
          jp_fail(p, jp_cur(p)->line, "expected '}}', got %s", d);
        else
          jp_unexpected(p);
        goto fail;
      }
      jp_advance(p);
    } else if (t->type == JT_BLOCK_BEGIN) {
      const jinja_token *word = jp_peek(p, 1);
      int is_end = 0;
      for (size_t i = 0; ends && ends[i]; i++)
        if (jp_is_name(word, ends[i])) {
          *found = ends[i];
          is_end = 1;
        }
      if (is_end) {
        jp_advance(p);
        jp_advance(p);
        break;
      }
      if (word->type == JT_NAME &&
          (jp_is_name(word, "endfor") || jp_is_name(word, "endif") || jp_is_name(word, "endset") ||
           jp_is_name(word, "endmacro") || jp_is_name(word, "endcall") ||
           jp_is_name(word, "endfilter") || jp_is_name(word, "else") || jp_is_name(word, "elif") ||
           jp_is_name(word, "endgeneration"))) {
        char w[32];
        size_t wl = word->len < sizeof w - 1 ? word->len : sizeof w - 1;
        memcpy(w, word->text, wl);
        w[wl] = 0;
        jp_fail(p, word->line, "unexpected '%s'", w);
        goto fail;
      }
      jp_advance(p);
      if (!(n = parse_statement(p))) goto fail;
    } else {
      jp_unexpected(p);
      goto fail;
    }
    if (jp_vec_push(&kids, n, NULL, NULL, 0)) goto fail;
  }
  if (jp_vec_to_kids(p, &kids, body, 0)) goto fail;
  jp_vec_free(&kids);
  return body;
fail:
  jp_vec_free(&kids);
  return NULL;
}

int jinja_parse(const jinja_tokens *tokens, const char *name, jinja_arena *arena,
                jinja_node **root) {
  parser p = {.tok = tokens->items, .count = tokens->len, .name = name, .arena = arena};
  const char *found = NULL;
  *root = parse_body(&p, NULL, &found, 1, "template");
  return *root ? VKFT_OK : VKFT_ERR;
}
