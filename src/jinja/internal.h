/* Private interface of the Jinja2 interpreter behind include/vkft/chat_template.h: values,
 * tokens, syntax tree, and the functions the lexer, parser, evaluator, filters, methods and
 * JSON files share. Nothing outside src/jinja/ includes it. */
#ifndef VKFT_JINJA_INTERNAL_H
#define VKFT_JINJA_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "vkft/buf.h"
#include "vkft/error.h"

/* Limits that keep malformed or hostile templates from crashing or hanging the process. */
enum {
  JINJA_MAX_NESTING = 200,      /* parser recursion (expressions and blocks) */
  JINJA_MAX_CALL_DEPTH = 100,   /* macro calls inside macro calls */
  JINJA_MAX_EVAL_DEPTH = 1000,  /* nested evaluations (statements, operands, filter inputs):
                                 * ~300 bytes of C stack each, see eval.c's enter() */
  JINJA_MAX_VALUE_DEPTH = 1000, /* lists/dicts inside lists/dicts when printed or compared
                                 * (Python's repr fails near its recursion limit of 1000) */
  JINJA_MAX_RANGE = 10000000,   /* items a range() may produce */
  JINJA_MAX_STEPS = 1000000,    /* default work budget per render (loop iterations, macro calls,
                                 * items made by range and filters): real templates need a few
                                 * per message, a hostile loop stops within ~0.1 s */
  JINJA_MAX_OUTPUT = 64 << 20,  /* bytes of rendered text (default) */
  JINJA_MAX_MEMORY = 512 << 20, /* bytes of values one render may allocate */
};

/* ---- arena: every value of one render (and every node of one template) lives in one ---- */
typedef struct jinja_block jinja_block;
typedef struct jinja_arena {
  jinja_block *head;
  size_t total, limit;
} jinja_arena;
void *jinja_arena_alloc(jinja_arena *arena, size_t size); /* zeroed; NULL when out of memory */
void jinja_arena_free(jinja_arena *arena);

/* ---- rendered text: vkft_strbuf (vkft/buf.h) with limit = the state's max_output ---- */

/* ---- values (Python objects as Jinja sees them) ---- */
typedef enum {
  JV_UNDEFINED, /* jinja2.Undefined: falsy, prints as "", fails on attribute access */
  JV_NONE,
  JV_BOOL,
  JV_INT,
  JV_FLOAT,
  JV_STR,
  JV_LIST, /* list or tuple */
  JV_DICT, /* dict, namespace() or the loop object */
  JV_FUNC, /* macro, caller or global function */
  JV_ITER  /* a one-pass lazy sequence: what Jinja2's map/select/unique/items filters return
            * (generators) and reverse of a list (list_reverseiterator) */
} jv_type;

typedef struct jv_list jv_list;
typedef struct jv_dict jv_dict;
typedef struct jv_func jv_func;
typedef struct jv_iter jv_iter;

typedef struct jv {
  jv_type type;
  /* JV_STR: a markupsafe.Markup (what |safe and |escape return): `+` with a plain str
   * HTML-escapes the plain side, and str methods keep the mark, as in Python */
  unsigned char markup;
  union {
    int64_t i; /* JV_BOOL, JV_INT */
    double f;
    struct {
      const char *p; /* UTF-8, not NUL-terminated; the undefined name for JV_UNDEFINED */
      size_t n;
    } s;
    jv_list *list;
    jv_dict *dict;
    jv_func *func;
    jv_iter *iter;
  } u;
} jv;

struct jv_list {
  jv *items;
  size_t len, cap;
  int is_tuple; /* tuples print as (a, b) */
};

enum { JD_DICT, JD_NAMESPACE, JD_LOOP };
struct jv_dict {
  jv *keys, *values; /* insertion order, as Python dicts keep it */
  size_t len, cap;
  int kind;
};

enum { JF_MACRO, JF_CALLER, JF_GLOBAL };
typedef struct jinja_node jinja_node;
typedef struct jinja_scope jinja_scope;
struct jv_func {
  int kind;
  int global_id;          /* JF_GLOBAL */
  const jinja_node *node; /* JF_MACRO: the macro; JF_CALLER: the call block */
  jinja_scope *scope;     /* scope the body runs in (its parent) */
};

/* The lazy filters (their results are computed when first consumed, as a generator runs). */
enum {
  JI_SELECT,
  JI_REJECT,
  JI_SELECTATTR,
  JI_REJECTATTR,
  JI_MAP,
  JI_UNIQUE,
  JI_ITEMS,
  JI_REVERSE
};

typedef struct jinja_args jinja_args;
struct jv_iter {
  int op, line;
  jv input;
  const jinja_args *args;
  jv_list *items; /* NULL until computed */
  size_t pos;     /* items consumed so far */
};

/* ---- tokens ---- */
typedef enum {
  JT_EOF,
  JT_TEXT,
  JT_VAR_BEGIN,
  JT_VAR_END,
  JT_BLOCK_BEGIN,
  JT_BLOCK_END,
  JT_NAME,
  JT_STRING,
  JT_INT,
  JT_FLOAT,
  JT_OP
} jinja_token_type;

typedef struct jinja_token {
  jinja_token_type type;
  int line;
  const char *text; /* JT_TEXT/JT_STRING: decoded value; JT_NAME/JT_OP: the spelling */
  size_t len;
  int64_t int_value;
  double float_value;
} jinja_token;

typedef struct jinja_tokens {
  jinja_token *items;
  size_t len, cap;
} jinja_tokens;

/* ---- syntax tree ---- */
typedef enum {
  /* expressions */
  JN_LITERAL,
  JN_NAME,
  JN_LIST,
  JN_TUPLE,
  JN_DICT,   /* kids: key0, value0, key1, value1, ... */
  JN_ATTR,   /* a.name */
  JN_ITEM,   /* a[b] */
  JN_SLICE,  /* a[b:c:d], absent parts NULL */
  JN_CALL,   /* a(kids, kwargs) */
  JN_FILTER, /* a | name(kids, kwargs) */
  JN_TEST,   /* a is [not] name(kids) ; op = 1 for "is not" */
  JN_NEG,
  JN_POS,
  JN_NOT,
  JN_BINARY, /* op is the operator spelling's first chars, see jinja_binop */
  JN_AND,
  JN_OR,
  JN_COMPARE, /* kids[0] ops[0] kids[1] ops[1] kids[2] ... */
  JN_COND,    /* b if a else c */
  /* statements */
  JN_BODY, /* kids: statements */
  JN_TEXT,
  JN_OUTPUT,
  JN_IF,          /* a: condition, body, else_body (an elif is a nested JN_IF) */
  JN_FOR,         /* targets (kids as names), b: iterable, c: filter, body, else_body */
  JN_SET,         /* target a (JN_NAME, JN_ATTR or JN_TUPLE), value b */
  JN_SETBLOCK,    /* target a, body, filters in c (JN_FILTER chain on a NULL input) */
  JN_MACRO,       /* name, params (kids: JN_NAME), defaults (kw_values parallel, NULL = none) */
  JN_CALLBLOCK,   /* a: the call expression, body */
  JN_FILTERBLOCK, /* c: filter chain, body */
  JN_BREAK,
  JN_CONTINUE
} jinja_node_kind;

enum {
  JOP_ADD = 1,
  JOP_SUB,
  JOP_MUL,
  JOP_DIV,
  JOP_FLOORDIV,
  JOP_MOD,
  JOP_POW,
  JOP_CONCAT,
  JOP_EQ,
  JOP_NE,
  JOP_LT,
  JOP_LE,
  JOP_GT,
  JOP_GE,
  JOP_IN,
  JOP_NOTIN
};

struct jinja_node {
  jinja_node_kind kind;
  int line;
  int op;
  jv value;         /* JN_LITERAL, JN_TEXT */
  const char *name; /* JN_NAME, JN_ATTR, JN_FILTER, JN_TEST, JN_MACRO (NUL-terminated) */
  jinja_node *a, *b, *c, *d;
  jinja_node **kids;
  size_t nkids;
  int *ops;              /* JN_COMPARE */
  const char **kw_names; /* keyword arguments of calls/filters/tests; macro param names */
  jinja_node **kw_values;
  size_t nkw;
  jinja_node *body, *else_body;
};

/* A parsed template: owns the arena its nodes and strings live in. */
typedef struct jinja_template {
  jinja_arena arena;
  jinja_node *root;
  char *name;
} jinja_template;

/* ---- lexer / parser ---- */
int jinja_lex(const char *source, const char *name, jinja_arena *arena, jinja_tokens *tokens);
int jinja_parse(const jinja_tokens *tokens, const char *name, jinja_arena *arena,
                jinja_node **root);

/* ---- evaluation state ---- */
struct jinja_scope {
  jinja_scope *parent;
  jv_dict *vars;
  int captured; /* a macro or caller block keeps it: never reused */
};

typedef struct jinja_state {
  const char *name; /* template name for messages */
  uint64_t max_steps;
  jinja_arena arena;
  vkft_strbuf *out;
  jinja_scope *scope;
  jv_dict *globals; /* the context's variables */
  int call_depth, depth;
  uint64_t steps;
  int now_year, now_month, now_day; /* what strftime_now() sees */
  size_t max_output;
  const jinja_node *caller; /* innermost {% call %} block, for caller() */
} jinja_state;

/* "name:line: message" as the error; returns VKFT_ERR. */
int jinja_fail(const jinja_state *st, int line, const char *fmt, ...) VKFT_PRINTF(3, 4);

/* ---- values (jinja_value.c) ---- */
jv jv_undefined(const char *name);
jv jv_none(void);
jv jv_bool(int b);
jv jv_int(int64_t i);
jv jv_float(double f);
jv jv_str_ref(const char *p, size_t n); /* p must outlive the render */
int jv_str_copy(jinja_state *st, const char *p, size_t n, jv *out);
int jv_str_from_buf(jinja_state *st, vkft_strbuf *buf, jv *out); /* copies and frees buf */
int jv_new_list(jinja_state *st, size_t cap, jv *out);
int jv_new_dict(jinja_state *st, int kind, jv *out);
int jv_list_push(jinja_state *st, jv_list *list, jv item);
int jv_dict_set(jinja_state *st, jv_dict *dict, jv key, jv value);
const jv *jv_dict_get(const jv_dict *dict, jv key);
const jv *jv_dict_get_str(const jv_dict *dict, const char *key);
int jv_truthy(jv v);
int jv_equal(jv a, jv b);
/* Python's <: *result is -1, 0 or 1; VKFT_ERR (with message) for unorderable types. */
int jv_compare(const jinja_state *st, int line, jv a, jv b, int *result);
const char *jv_type_name(jv v);
int jv_is_number(jv v); /* int, float or bool, as numbers.Number */
double jv_as_double(jv v);
/* Python str(v) appended to buf; repr(v) when repr is set. */
int jv_write_str(vkft_strbuf *buf, jv v, int repr);
int jv_to_str(jinja_state *st, jv v, jv *out); /* JV_STR result */
void jinja_float_repr(double f, char out[40]);

/* UTF-8 helpers: strings index by code point, like Python. */
size_t utf8_length(const char *p, size_t n);
size_t utf8_offset(const char *p, size_t n, size_t index); /* byte offset of code point */
uint32_t utf8_decode(const char *p, size_t n, size_t *used);
#include "vkft/utf8.h"

/* ---- JSON (jinja_json.c) ---- */
int jv_from_cjson(jinja_state *st, const cJSON *json, jv *out);
typedef struct jinja_json_style {
  int indent;     /* < 0: single line; else a newline and depth x indent_text per item */
  jv indent_text; /* JV_STR: json.dumps(indent=N) is N spaces, indent="\t" the string */
  int ensure_ascii, sort_keys;
  const char *item_sep, *key_sep;
} jinja_json_style;
int jv_write_json(jinja_state *st, int line, vkft_strbuf *buf, jv v, const jinja_json_style *style,
                  int depth);

/* ---- calls with evaluated arguments (filters, tests, methods, globals) ---- */
struct jinja_args {
  jv *pos;
  size_t npos;
  const char **kw_names;
  jv *kw;
  size_t nkw;
};
/* The argument at position index or named name; returns 0 when absent. */
int jinja_arg(const jinja_args *args, size_t index, const char *name, jv *out);

int jinja_filter(jinja_state *st, int line, const char *name, jv value, const jinja_args *args,
                 jv *out);
int jinja_test(jinja_state *st, int line, const char *name, jv value, const jinja_args *args,
               int *result);
int jinja_method(jinja_state *st, int line, jv self, const char *name, const jinja_args *args,
                 jv *out);
int jinja_global_lookup(const char *name, jv *out); /* 1 when name is a global function */
int jinja_call_global(jinja_state *st, int line, int id, const jinja_args *args, jv *out);

/* ---- Python str operations (jinja_string.c) ---- */
int jinja_is_space(uint32_t cp); /* str.isspace() */
enum { JCASE_UPPER, JCASE_LOWER, JCASE_CAPITALIZE, JCASE_TITLE_FILTER, JCASE_TITLE_METHOD };
int jinja_str_case(jinja_state *st, jv s, int mode, jv *out);
/* str.strip/lstrip/rstrip: chars NULL strips whitespace */
int jinja_str_strip(jinja_state *st, jv s, const jv *chars, int left, int right, jv *out);
int jinja_str_replace(jinja_state *st, int line, jv s, jv old, jv replacement, int64_t count,
                      jv *out);
/* str.split(sep, maxsplit) / rsplit; sep NULL splits on whitespace runs */
int jinja_str_split(jinja_state *st, int line, jv s, const jv *sep, int64_t maxsplit,
                    int from_right, jv *out);
int64_t jinja_str_find(jv s, jv sub, int from_right); /* code point index or -1 */

/* ---- evaluator (eval.c; access.c) ---- */
int jinja_undefined_error(const jinja_state *st, int line, jv v); /* "'x' is undefined" */
int jinja_render_root(jinja_state *st, const jinja_node *root);
/* Helpers shared with the filters: item access like Jinja's environment.getitem/getattr. */
int jinja_getattr(jinja_state *st, int line, jv obj, const char *name, jv *out);
int jinja_getitem(jinja_state *st, int line, jv obj, jv key, jv *out);
/* Iterates a value the way a for loop does (list, tuple, dict keys, string characters; the rest
 * of a lazy sequence, which it consumes). */
int jinja_iterate(jinja_state *st, int line, jv v, jv *out_list);
/* Counts n units of work (loop iterations, macro calls, items made); fails past the budget. */
int jinja_count_steps(jinja_state *st, int line, uint64_t n);

/* ---- lazy sequences (filters.c) ---- */
int jv_new_iter(jinja_state *st, int op, int line, jv input, const jinja_args *args, jv *out);
/* The items not yet consumed (computing them on first use); consume marks them consumed. */
int jinja_iter_rest(jinja_state *st, jv_iter *it, int consume, jv *out_list);
const char *jinja_iter_type_name(const jv_iter *it); /* "generator", "list_reverseiterator" */
/* Python's escape(s): & < > " ' as HTML entities, the result a Markup. */
int jinja_escape(jinja_state *st, jv s, jv *out);
/* Shared by the filters and the lazy sequences. */
int jinja_get_path(jinja_state *st, int line, jv obj, jv path, jv *out); /* "a.b.0" */
int jinja_sort_unique(jinja_state *st, int line, jv v, const jinja_args *args, int unique, jv *out);
int jinja_dict_items(jinja_state *st, int line, jv v, jv *out); /* [(key, value), ...] */

#endif
