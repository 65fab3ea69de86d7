/* Python-compatible JSON printing (see vkft/json.h). */
#include "vkft/json.h"

#include "vkft/error.h"
#include "vkft/platform.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

cJSON *vkft_json_float(double value) {
  if (!isfinite(value))
    return cJSON_CreateRaw(value != value ? "NaN" : value > 0 ? "Infinity" : "-Infinity");
  /* Python's repr: the fewest significant digits that read back to the same double, written
   * positionally when the decimal exponent is in [-4, 16) ("100.0", "0.0001"), else as
   * d.ddde+XX ("1e-05", "1e+16") */
  char sci[40];
  for (int p = 1; p <= 17; p++) {
    snprintf(sci, sizeof sci, "%.*e", p - 1, value);
    if (strtod(sci, NULL) == value) break;
  }
  char digits[24], buf[64];
  int nd = 0, k = 0;
  const char *s = sci;
  if (*s == '-') buf[k++] = *s++;
  for (; *s && *s != 'e'; s++)
    if (*s != '.') digits[nd++] = *s;
  int exp = atoi(s + 1);
  while (nd > 1 && digits[nd - 1] == '0') nd--;
  if (exp >= -4 && exp < 16) {
    if (exp < 0) {
      buf[k++] = '0';
      buf[k++] = '.';
      for (int i = 0; i < -exp - 1; i++) buf[k++] = '0';
      for (int i = 0; i < nd; i++) buf[k++] = digits[i];
      buf[k] = 0;
    } else {
      for (int i = 0; i <= exp; i++) buf[k++] = i < nd ? digits[i] : '0';
      buf[k++] = '.';
      if (nd > exp + 1)
        for (int i = exp + 1; i < nd; i++) buf[k++] = digits[i];
      else
        buf[k++] = '0';
      buf[k] = 0;
    }
  } else {
    buf[k++] = digits[0];
    if (nd > 1) {
      buf[k++] = '.';
      for (int i = 1; i < nd; i++) buf[k++] = digits[i];
    }
    snprintf(buf + k, sizeof buf - (size_t)k, "e%c%02d", exp < 0 ? '-' : '+', abs(exp));
  }
  return cJSON_CreateRaw(buf);
}

typedef struct out {
  char *s;
  size_t len, cap;
  int failed;
} out;

static void put(out *o, const char *text, size_t n) {
  if (o->failed) return;
  if (o->len + n + 1 > o->cap) {
    size_t cap = (o->cap + n + 1) * 2;
    char *grown = realloc(o->s, cap);
    if (!grown) {
      o->failed = 1;
      return;
    }
    o->s = grown;
    o->cap = cap;
  }
  memcpy(o->s + o->len, text, n);
  o->len += n;
  o->s[o->len] = 0;
}

static void puts_(out *o, const char *text) {
  put(o, text, strlen(text));
}

static void indent(out *o, int depth) {
  puts_(o, "\n");
  for (int i = 0; i < depth; i++) puts_(o, "  ");
}

/* ensure_ascii: everything outside printable ASCII as \uXXXX (surrogate pairs above U+FFFF) */
static void put_string(out *o, const char *s) {
  puts_(o, "\"");
  const unsigned char *p = (const unsigned char *)s;
  while (*p) {
    unsigned c = *p;
    char buf[16];
    if (c == '"')
      puts_(o, "\\\""), p++;
    else if (c == '\\')
      puts_(o, "\\\\"), p++;
    else if (c == '\n')
      puts_(o, "\\n"), p++;
    else if (c == '\r')
      puts_(o, "\\r"), p++;
    else if (c == '\t')
      puts_(o, "\\t"), p++;
    else if (c == '\b')
      puts_(o, "\\b"), p++;
    else if (c == '\f')
      puts_(o, "\\f"), p++;
    else if (c < 0x20 || c == 0x7f)
      snprintf(buf, sizeof buf, "\\u%04x", c), puts_(o, buf), p++;
    else if (c < 0x80)
      put(o, (const char *)p, 1), p++;
    else {
      unsigned cp = 0;
      int extra = c >= 0xf0 ? 3 : c >= 0xe0 ? 2 : 1;
      cp = c & (0x3f >> extra);
      p++;
      for (int i = 0; i < extra && (*p & 0xc0) == 0x80; i++) cp = cp << 6 | (*p++ & 0x3f);
      if (cp >= 0x10000) {
        cp -= 0x10000;
        snprintf(buf, sizeof buf, "\\u%04x\\u%04x", 0xd800 + (cp >> 10), 0xdc00 + (cp & 0x3ff));
      } else {
        snprintf(buf, sizeof buf, "\\u%04x", cp);
      }
      puts_(o, buf);
    }
  }
  puts_(o, "\"");
}

static int by_key(const void *a, const void *b) {
  return strcmp((*(const cJSON *const *)a)->string, (*(const cJSON *const *)b)->string);
}

static void print(out *o, const cJSON *item, int depth) {
  char buf[64];
  if (cJSON_IsRaw(item))
    puts_(o, item->valuestring);
  else if (cJSON_IsNull(item))
    puts_(o, "null");
  else if (cJSON_IsTrue(item))
    puts_(o, "true");
  else if (cJSON_IsFalse(item))
    puts_(o, "false");
  else if (cJSON_IsString(item))
    put_string(o, item->valuestring);
  else if (cJSON_IsNumber(item)) {
    double v = item->valuedouble;
    if (v == floor(v) && fabs(v) < 9007199254740992.0)
      snprintf(buf, sizeof buf, "%.0f", v), puts_(o, buf);
    else {
      cJSON *f = vkft_json_float(v);
      puts_(o, f ? f->valuestring : "0.0");
      cJSON_Delete(f);
    }
  } else if (cJSON_IsArray(item) || cJSON_IsObject(item)) {
    int is_obj = cJSON_IsObject(item), n = cJSON_GetArraySize(item);
    if (n == 0) {
      puts_(o, is_obj ? "{}" : "[]");
      return;
    }
    const cJSON **kids = malloc((size_t)n * sizeof *kids);
    if (!kids) {
      o->failed = 1;
      return;
    }
    int i = 0;
    for (const cJSON *c = item->child; c; c = c->next) kids[i++] = c;
    if (is_obj) qsort(kids, (size_t)n, sizeof *kids, by_key);
    puts_(o, is_obj ? "{" : "[");
    for (i = 0; i < n; i++) {
      indent(o, depth + 1);
      if (is_obj) put_string(o, kids[i]->string), puts_(o, ": ");
      print(o, kids[i], depth + 1);
      if (i + 1 < n) puts_(o, ",");
    }
    indent(o, depth);
    puts_(o, is_obj ? "}" : "]");
    free(kids);
  }
}

char *vkft_json_print_python(const cJSON *item) {
  out o = {0};
  print(&o, item, 0);
  if (o.failed) {
    free(o.s);
    return NULL;
  }
  return o.s;
}

cJSON *vkft_json_read_file(const char *path) {
  char *text;
  size_t size;
  if (vkft_file_read(path, &text, &size) != VKFT_OK) return NULL;
  cJSON *json = cJSON_ParseWithLength(text, size);
  free(text);
  if (!json) vkft_error("%s: not valid JSON", path);
  return json;
}

int vkft_json_write_file(const char *path, const cJSON *item) {
  char *text = vkft_json_print_python(item);
  if (!text) return vkft_error_with(VKFT_ERR_NOMEM, "%s: out of host memory", path);
  size_t n = strlen(text);
  char *line = realloc(text, n + 2);
  if (!line) {
    free(text);
    return vkft_error_with(VKFT_ERR_NOMEM, "%s: out of host memory", path);
  }
  line[n] = '\n';
  int status = vkft_file_write_atomic(path, line, n + 1);
  free(line);
  return status;
}
