/* Splits a dataset file into records: the elements of a JSON array or the lines of a JSON Lines
 * file, each with its byte range and line number. Array elements are delimited by a scanner
 * (brackets and strings), not by a full parse, so one malformed record is reported and skipped
 * while its neighbours still load. */
#include "internal.h"

#include "vkft/buf.h"
#include "vkft/error.h"

#include <stdlib.h>
#include <string.h>

static int is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

typedef struct span_list {
  data_span *items;
  size_t n, cap;
} span_list;

static int push(span_list *l, size_t off, size_t len, uint32_t line, const char *error) {
  if (vkft_grow((void **)&l->items, &l->cap, l->n + 1, sizeof *l->items)) return VKFT_ERR;
  l->items[l->n] =
      (data_span){.off = off, .len = len, .line = line, .index = (uint32_t)l->n, .error = error};
  l->n++;
  return VKFT_OK;
}

/* Elements of the array whose '[' is at buf[start]. */
static int split_array(const char *buf, size_t size, size_t start, uint32_t line, span_list *l) {
  size_t i = start + 1;
  for (;;) {
    while (i < size && is_space(buf[i])) line += buf[i++] == '\n';
    if (i >= size) return push(l, i, 0, line, "the file ends inside the JSON array (truncated?)");
    if (buf[i] == ']') {
      if (l->n == 0) return VKFT_OK; /* [] */
      return push(l, i, 0, line, "empty record (a comma before ']')");
    }
    size_t elem = i;
    uint32_t elem_line = line;
    int depth = 0, in_string = 0, closed = 0;
    for (; i < size; i++) {
      char c = buf[i];
      if (c == '\n') line++;
      if (in_string) {
        if (c == '\\' && i + 1 < size && buf[i + 1] != '\n')
          i++;
        else if (c == '"' || c == '\n')
          in_string = 0; /* a raw newline: resynchronise */
        continue;
      }
      if (c == '"')
        in_string = 1;
      else if (c == '{' || c == '[')
        depth++;
      else if ((c == '}' || c == ']') && depth > 0)
        depth--;
      else if (depth == 0 && (c == ',' || c == ']')) {
        closed = c == ']' ? 2 : 1;
        break;
      }
    }
    size_t end = i;
    while (end > elem && is_space(buf[end - 1])) end--;
    if (!closed) /* the file ends inside this record */
      return push(l, elem, end - elem, elem_line, "the file ends inside this record (truncated?)");
    if (push(l, elem, end - elem, elem_line, end == elem ? "empty record (two commas)" : NULL))
      return VKFT_ERR;
    i++; /* past ',' or ']' */
    if (closed == 2) return VKFT_OK;
  }
}

static int split_lines(const char *buf, size_t size, size_t start, uint32_t line, span_list *l) {
  for (size_t i = start; i < size;) {
    size_t end = i;
    while (end < size && buf[end] != '\n') end++;
    size_t a = i, b = end;
    while (a < b && is_space(buf[a])) a++;
    while (b > a && is_space(buf[b - 1])) b--;
    if (b > a && push(l, a, b - a, line, NULL)) return VKFT_ERR;
    line++;
    i = end + 1;
  }
  return VKFT_OK;
}

int data_split_records(const char *path, const char *buf, size_t size, data_span **spans, size_t *n,
                       int *is_array) {
  *spans = NULL;
  *n = 0;
  *is_array = 0;
  size_t i = 0;
  uint32_t line = 1;
  if (size >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0) i = 3; /* UTF-8 BOM */
  while (i < size && is_space(buf[i])) line += buf[i++] == '\n';
  if (i == size) return VKFT_OK; /* empty: no records */
  span_list l = {0};
  int rc;
  if (buf[i] == '[') {
    *is_array = 1;
    rc = split_array(buf, size, i, line, &l);
  } else if (buf[i] == '{') {
    rc = split_lines(buf, size, i, line, &l);
    if (rc == VKFT_OK) {
      /* JSON Lines must have a parsing line among the first ones; a single pretty-printed
       * object spread over several lines is one record. */
      size_t parsed = 0, tried = 0;
      for (size_t k = 0; k < l.n && tried < 64; k++, tried++) {
        cJSON *j = cJSON_ParseWithLength(buf + l.items[k].off, l.items[k].len);
        parsed += j != NULL;
        cJSON_Delete(j);
      }
      if (parsed == 0) {
        cJSON *whole = cJSON_ParseWithLength(buf + i, size - i);
        int object = cJSON_IsObject(whole);
        cJSON_Delete(whole);
        if (object) {
          l.n = 0;
          size_t end = size;
          while (end > i && is_space(buf[end - 1])) end--;
          rc = push(&l, i, end - i, line, NULL);
        } else if (l.n > 1) {
          free(l.items);
          return vkft_error("%s:%u: not JSON Lines: none of the first %zu lines is a JSON "
                            "value",
                            path, line, tried);
        }
      }
    }
  } else {
    return vkft_error("%s:%u: not a JSON array or JSON Lines file (it starts with '%c', "
                      "expected '[' or '{')",
                      path, line,
                      (unsigned char)buf[i] >= 0x20 && (unsigned char)buf[i] < 0x7f ? buf[i] : '?');
  }
  if (rc) {
    free(l.items);
    return VKFT_ERR;
  }
  *spans = l.items;
  *n = l.n;
  return VKFT_OK;
}
