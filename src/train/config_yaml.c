/* YAML training configs: libyaml's event stream built into the cJSON tree a JSON config parses
 * to. Scalars are resolved by the YAML 1.2 core schema (YAML 1.2.2, section 10.3.2), not by
 * YAML 1.1's rules: `2e-4` is a number, `yes`/`on` are strings, `0x10` and `0o20` are integers.
 * Quoted and block scalars stay strings; explicit tags !!str/!!int/!!float/!!bool/!!null are
 * honoured. Anchors and aliases work (an alias copies its anchor's value), bounded so a small
 * file cannot expand into millions of values. Duplicate keys are errors, as the spec says. */
#include "config_yaml.h"

#include "vkft/error.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

enum { MAX_DEPTH = 64, MAX_ITEMS = 100000 };

#define TAG_PREFIX "tag:yaml.org,2002:"

typedef struct frame {
  cJSON *container;
  char *key; /* a mapping's key waiting for its value */
  int key_line;
  char *anchor; /* registered when the container ends (an alias inside it cannot use it) */
} frame;

typedef struct anchor {
  char *name;
  const cJSON *item;
} anchor;

typedef struct builder {
  const char *path, *text;
  size_t size;
  frame stack[MAX_DEPTH];
  int depth;
  cJSON *root;
  anchor *anchors;
  size_t n_anchors, cap_anchors;
  size_t items; /* values made, alias copies included */
  config_lines *lines;
} builder;

int config_is_yaml(const char *path, const char *text, size_t size) {
  const char *dot = strrchr(path, '.');
  if (dot && strchr(dot, '/') == NULL) {
    char ext[8] = {0};
    for (size_t i = 0; i < sizeof ext - 1 && dot[i + 1]; i++)
      ext[i] = (char)(dot[i + 1] >= 'A' && dot[i + 1] <= 'Z' ? dot[i + 1] + 32 : dot[i + 1]);
    if (!strcmp(ext, "yaml") || !strcmp(ext, "yml")) return 1;
    if (!strcmp(ext, "json")) return 0;
  }
  size_t i = size >= 3 && !memcmp(text, "\xef\xbb\xbf", 3) ? 3 : 0;
  while (i < size && strchr(" \t\r\n", text[i]) && text[i]) i++;
  return i == size || text[i] != '{';
}

int config_lines_find(const config_lines *lines, const cJSON *item) {
  for (size_t i = 0; lines && i < lines->count; i++)
    if (lines->items[i] == item) return lines->lines[i];
  return 0;
}

void config_lines_free(config_lines *lines) {
  free(lines->items);
  free(lines->lines);
  memset(lines, 0, sizeof *lines);
}

static int record_line(builder *b, const cJSON *item, int line) {
  config_lines *l = b->lines;
  if (l->count == l->cap) {
    size_t cap = l->cap ? 2 * l->cap : 64;
    const cJSON **items = realloc(l->items, cap * sizeof *items);
    if (items) l->items = items;
    int *lines = items ? realloc(l->lines, cap * sizeof *lines) : NULL;
    if (!lines) return vkft_error_nomem();
    l->lines = lines;
    l->cap = cap;
  }
  l->items[l->count] = item;
  l->lines[l->count++] = line;
  return VKFT_OK;
}

static int line_error(const builder *b, int line, const char *what, const char *name) {
  return vkft_error("%s:%d: %s%s%s%s", b->path, line, what, name ? " \"" : "", name ? name : "",
                    name ? "\"" : "");
}

/* Attaches a finished value (or a container just opened) to the container being built. */
static int add_item(builder *b, cJSON *item, int line) {
  if (!item) return vkft_error_nomem();
  if (++b->items > MAX_ITEMS) {
    cJSON_Delete(item);
    return vkft_error("%s:%d: more than %d values (do aliases expand too far?)", b->path, line,
                      MAX_ITEMS);
  }
  if (b->depth == 0) {
    b->root = item;
    return record_line(b, item, line);
  }
  frame *f = &b->stack[b->depth - 1];
  if (cJSON_IsArray(f->container)) {
    if (!cJSON_AddItemToArray(f->container, item)) {
      cJSON_Delete(item);
      return vkft_error_nomem();
    }
    return record_line(b, item, line);
  }
  char *key = f->key;
  f->key = NULL;
  int status = VKFT_OK;
  if (cJSON_GetObjectItemCaseSensitive(f->container, key))
    status = line_error(b, f->key_line, "duplicate key", key);
  else if (!cJSON_AddItemToObject(f->container, key, item))
    status = vkft_error_nomem();
  free(key);
  if (status != VKFT_OK) {
    cJSON_Delete(item);
    return status;
  }
  return record_line(b, item, f->key_line);
}

/* A mapping waiting for a key takes a scalar's text as it is (keys are names, never resolved). */
static int expecting_key(const builder *b) {
  return b->depth > 0 && cJSON_IsObject(b->stack[b->depth - 1].container) &&
         !b->stack[b->depth - 1].key;
}

static int is_digits(const char *s, const char *digits) {
  if (!*s) return 0;
  for (; *s; s++)
    if (!strchr(digits, *s)) return 0;
  return 1;
}

typedef enum { S_NULL, S_BOOL, S_INT, S_FLOAT, S_STR } scalar_kind;

/* The YAML 1.2 core schema's resolution of a plain scalar (YAML 1.2.2, 10.3.2). */
static scalar_kind resolve_plain(const char *s, double *number) {
  static const char *const nulls[] = {"", "~", "null", "Null", "NULL"};
  static const char *const trues[] = {"true", "True", "TRUE"};
  static const char *const falses[] = {"false", "False", "FALSE"};
  for (int i = 0; i < 5; i++)
    if (!strcmp(s, nulls[i])) return S_NULL;
  for (int i = 0; i < 3; i++) {
    if (!strcmp(s, trues[i])) return *number = 1, S_BOOL;
    if (!strcmp(s, falses[i])) return *number = 0, S_BOOL;
  }
  const char *digits = "0123456789";
  if (!strncmp(s, "0o", 2) && is_digits(s + 2, "01234567"))
    return *number = (double)strtoull(s + 2, NULL, 8), S_INT;
  if (!strncmp(s, "0x", 2) && is_digits(s + 2, "0123456789abcdefABCDEF"))
    return *number = (double)strtoull(s + 2, NULL, 16), S_INT;
  const char *u = s + (*s == '-' || *s == '+');
  if (is_digits(u, digits)) return *number = strtod(s, NULL), S_INT;
  if (!strcmp(u, ".inf") || !strcmp(u, ".Inf") || !strcmp(u, ".INF"))
    return *number = *s == '-' ? -INFINITY : INFINITY, S_FLOAT;
  if (!strcmp(s, ".nan") || !strcmp(s, ".NaN") || !strcmp(s, ".NAN")) return *number = NAN, S_FLOAT;
  /* [-+]? ( \. [0-9]+ | [0-9]+ ( \. [0-9]* )? ) ( [eE] [-+]? [0-9]+ )? */
  size_t int_digits = strspn(u, digits), frac_digits = 0;
  const char *p = u + int_digits;
  if (*p == '.') frac_digits = strspn(p + 1, digits), p += 1 + frac_digits;
  if (int_digits == 0 && frac_digits == 0) return S_STR;
  if (*p == 'e' || *p == 'E') {
    const char *e = p + 1 + (p[1] == '-' || p[1] == '+');
    size_t exp_digits = strspn(e, digits);
    if (exp_digits == 0) return S_STR;
    p = e + exp_digits;
  }
  if (*p) return S_STR;
  *number = strtod(s, NULL);
  return S_FLOAT;
}

static int add_anchor(builder *b, const char *name, const cJSON *item) {
  if (b->n_anchors == b->cap_anchors) {
    size_t cap = b->cap_anchors ? 2 * b->cap_anchors : 8;
    anchor *grown = realloc(b->anchors, cap * sizeof *grown);
    if (!grown) return vkft_error_nomem();
    b->anchors = grown;
    b->cap_anchors = cap;
  }
  char *copy = malloc(strlen(name) + 1);
  if (!copy) return vkft_error_nomem();
  strcpy(copy, name);
  b->anchors[b->n_anchors++] = (anchor){copy, item};
  return VKFT_OK;
}

static int on_scalar(builder *b, const yaml_event_t *ev, int line) {
  const char *text = (const char *)ev->data.scalar.value;
  const char *tag = (const char *)ev->data.scalar.tag;
  if (expecting_key(b)) {
    frame *f = &b->stack[b->depth - 1];
    if (!(f->key = malloc(strlen(text) + 1))) return vkft_error_nomem();
    strcpy(f->key, text);
    f->key_line = line;
    return VKFT_OK;
  }
  double number = 0;
  scalar_kind kind = S_STR;
  if (tag && strcmp(tag, "!")) { /* an explicit tag: the text must be of that kind */
    scalar_kind want = S_STR;
    static const char *const names[] = {"null", "bool", "int", "float", "str"};
    int known = 0;
    for (int k = 0; k < 5; k++)
      if (!strncmp(tag, TAG_PREFIX, strlen(TAG_PREFIX)) &&
          !strcmp(tag + strlen(TAG_PREFIX), names[k]))
        want = (scalar_kind)k, known = 1;
    if (!known) return line_error(b, line, "unsupported tag", tag);
    kind = want == S_STR ? S_STR : resolve_plain(text, &number);
    if (want == S_FLOAT && kind == S_INT) kind = S_FLOAT;
    if (kind != want) {
      char what[64];
      snprintf(what, sizeof what, "not a !!%s:", names[want]);
      return line_error(b, line, what, text);
    }
  } else if (!tag && ev->data.scalar.plain_implicit) {
    kind = resolve_plain(text, &number);
  }
  cJSON *item = kind == S_NULL   ? cJSON_CreateNull()
                : kind == S_BOOL ? cJSON_CreateBool(number != 0)
                : kind == S_STR  ? cJSON_CreateString(text)
                                 : cJSON_CreateNumber(number);
  if (add_item(b, item, line) != VKFT_OK) return VKFT_ERR;
  return ev->data.scalar.anchor ? add_anchor(b, (const char *)ev->data.scalar.anchor, item)
                                : VKFT_OK;
}

static size_t count_items(const cJSON *item) {
  size_t n = 1;
  for (const cJSON *c = item->child; c; c = c->next) n += count_items(c);
  return n;
}

static int on_alias(builder *b, const yaml_event_t *ev, int line) {
  const char *name = (const char *)ev->data.alias.anchor;
  if (expecting_key(b)) return line_error(b, line, "a key must be a name, not the alias", name);
  for (size_t i = b->n_anchors; i-- > 0;) {
    if (strcmp(b->anchors[i].name, name)) continue;
    size_t n = count_items(b->anchors[i].item);
    if (b->items + n > MAX_ITEMS)
      return vkft_error("%s:%d: more than %d values (do aliases expand too far?)", b->path, line,
                        MAX_ITEMS);
    b->items += n - 1; /* add_item counts the copy's root */
    return add_item(b, cJSON_Duplicate(b->anchors[i].item, 1), line);
  }
  return line_error(b, line, "no complete anchor defined before the alias", name);
}

static int on_start(builder *b, const yaml_event_t *ev, int line, int mapping) {
  const char *tag =
      (const char *)(mapping ? ev->data.mapping_start.tag : ev->data.sequence_start.tag);
  const char *anchor_name =
      (const char *)(mapping ? ev->data.mapping_start.anchor : ev->data.sequence_start.anchor);
  if (expecting_key(b)) return vkft_error("%s:%d: a key must be a name", b->path, line);
  if (tag && strcmp(tag, "!") && strcmp(tag, mapping ? TAG_PREFIX "map" : TAG_PREFIX "seq"))
    return line_error(b, line, "unsupported tag", tag);
  if (b->depth == MAX_DEPTH)
    return vkft_error("%s:%d: nested deeper than %d levels", b->path, line, MAX_DEPTH);
  cJSON *item = mapping ? cJSON_CreateObject() : cJSON_CreateArray();
  if (add_item(b, item, line) != VKFT_OK) return VKFT_ERR;
  frame *f = &b->stack[b->depth++];
  *f = (frame){.container = item};
  if (anchor_name) {
    if (!(f->anchor = malloc(strlen(anchor_name) + 1))) return vkft_error_nomem();
    strcpy(f->anchor, anchor_name);
  }
  return VKFT_OK;
}

static void frame_free(frame *f) {
  free(f->anchor);
  free(f->key);
  f->anchor = f->key = NULL;
}

static int on_end(builder *b) {
  frame *f = &b->stack[--b->depth];
  int status = f->anchor ? add_anchor(b, f->anchor, f->container) : VKFT_OK;
  frame_free(f);
  return status;
}

/* libyaml's message with its line; tabs get a hint, since YAML refuses them as indentation. */
static int parse_error(const builder *b, const yaml_parser_t *p) {
  if (p->error == YAML_MEMORY_ERROR) return vkft_error_nomem();
  size_t line = p->problem_mark.line + 1;
  if (p->error == YAML_READER_ERROR) { /* marks are not set for bad bytes: count the lines */
    line = 1;
    for (size_t i = 0; i < p->problem_offset && i < b->size; i++) line += b->text[i] == '\n';
  }
  const char *at = b->text;
  for (size_t l = 1; l < line && at; l++) at = strchr(at, '\n') ? strchr(at, '\n') + 1 : NULL;
  int tab = at && at[strspn(at, " ")] == '\t';
  const char *hint = tab ? " (YAML does not allow tabs for indentation)" : "";
  const char *problem = p->problem ? p->problem : "not valid YAML";
  if (p->context)
    return vkft_error("%s:%zu: %s (%s at line %zu)%s", b->path, line, problem, p->context,
                      p->context_mark.line + 1, hint);
  return vkft_error("%s:%zu: %s%s", b->path, line, problem, hint);
}

static int build(builder *b, yaml_parser_t *parser) {
  int documents = 0;
  for (;;) {
    yaml_event_t ev;
    if (!yaml_parser_parse(parser, &ev)) return parse_error(b, parser);
    int line = (int)ev.start_mark.line + 1, status = VKFT_OK;
    switch (ev.type) {
    case YAML_STREAM_END_EVENT:
      yaml_event_delete(&ev);
      return VKFT_OK;
    case YAML_DOCUMENT_START_EVENT:
      if (++documents > 1)
        status =
            vkft_error("%s:%d: a second YAML document (a config is one document)", b->path, line);
      break;
    case YAML_SCALAR_EVENT:
      status = on_scalar(b, &ev, line);
      break;
    case YAML_ALIAS_EVENT:
      status = on_alias(b, &ev, line);
      break;
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT:
      status = on_start(b, &ev, line, ev.type == YAML_MAPPING_START_EVENT);
      break;
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
      status = on_end(b);
      break;
    default:
      break;
    }
    yaml_event_delete(&ev);
    if (status != VKFT_OK) return VKFT_ERR;
  }
}

int config_yaml_parse(const char *path, const char *text, size_t size, cJSON **root,
                      config_lines *lines) {
  *root = NULL;
  memset(lines, 0, sizeof *lines);
  builder *b = calloc(1, sizeof *b);
  if (!b) return vkft_error_nomem();
  *b = (builder){.path = path, .text = text, .size = size, .lines = lines};
  yaml_parser_t parser;
  if (!yaml_parser_initialize(&parser)) {
    free(b);
    return vkft_error_nomem();
  }
  yaml_parser_set_input_string(&parser, (const unsigned char *)text, size);
  int status = build(b, &parser);
  yaml_parser_delete(&parser);
  while (b->depth > 0) frame_free(&b->stack[--b->depth]);
  for (size_t i = 0; i < b->n_anchors; i++) free(b->anchors[i].name);
  free(b->anchors);
  if (status == VKFT_OK && !b->root)
    status = vkft_error("%s:1: the file is empty: a config is a mapping of keys", path);
  if (status == VKFT_OK && !cJSON_IsObject(b->root))
    status = vkft_error("%s:%d: the config must be a mapping of keys (\"model: DIR\" ...)", path,
                        config_lines_find(lines, b->root));
  if (status == VKFT_OK)
    *root = b->root;
  else {
    cJSON_Delete(b->root);
    config_lines_free(lines);
  }
  free(b);
  return status;
}
