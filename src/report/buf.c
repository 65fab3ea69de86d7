/* The escapes HTML text and inline JSON need (appended to a vkft_strbuf), and the number
 * formats the page shows. */
#include "internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void report_html(vkft_strbuf *b, const char *s) {
  for (; *s; s++) {
    switch (*s) {
    case '&':
      vkft_strbuf_puts(b, "&amp;");
      break;
    case '<':
      vkft_strbuf_puts(b, "&lt;");
      break;
    case '>':
      vkft_strbuf_puts(b, "&gt;");
      break;
    case '"':
      vkft_strbuf_puts(b, "&quot;");
      break;
    case '\'':
      vkft_strbuf_puts(b, "&#39;");
      break;
    default:
      vkft_strbuf_putc(b, *s);
    }
  }
}

void report_json_string(vkft_strbuf *b, const char *s) {
  vkft_strbuf_puts(b, "\"");
  for (const unsigned char *u = (const unsigned char *)s; *u; u++) {
    if (*u == '"' || *u == '\\')
      vkft_strbuf_printf(b, "\\%c", *u);
    else if (*u < 0x20 || *u == '<' || *u == '>' || *u == '&') /* never "</script>" */
      vkft_strbuf_printf(b, "\\u%04x", *u);
    else if (u[0] == 0xe2 && u[1] == 0x80 && (u[2] == 0xa8 || u[2] == 0xa9)) /* U+2028/9 */
      vkft_strbuf_printf(b, "\\u%04x", u[2] == 0xa8 ? 0x2028 : 0x2029), u += 2;
    else
      vkft_strbuf_putc(b, (char)*u);
  }
  vkft_strbuf_puts(b, "\"");
}

void report_json_number(vkft_strbuf *b, double v) {
  if (isfinite(v))
    vkft_strbuf_printf(b, "%.7g", v);
  else
    vkft_strbuf_puts(b, "null");
}

/* "1.5e-05" -> "1.5e-5" */
static void short_exponent(char *s) {
  char *e = strchr(s, 'e');
  if (!e) return;
  char *digits = e + 1 + (e[1] == '-' || e[1] == '+');
  char *from = digits;
  while (*from == '0' && from[1]) from++;
  if (e[1] == '+') digits--; /* drop the '+' too */
  memmove(digits, from, strlen(from) + 1);
}

void report_format_number(char *out, size_t size, double v) {
  static const char *const suffix[] = {"", "k", "M", "G", "T"};
  double a = fabs(v);
  if (!isfinite(v)) {
    snprintf(out, size, "%s", v != v ? "NaN" : v > 0 ? "inf" : "-inf");
  } else if (a >= 1e4) {
    int k = 0;
    while (a >= 999.95 && k < 4) a /= 1000, v /= 1000, k++;
    snprintf(out, size, a >= 100 ? "%.0f%s" : a >= 10 ? "%.1f%s" : "%.2f%s", v, suffix[k]);
  } else if (a != 0 && a < 1e-3) {
    snprintf(out, size, "%.3g", v);
    short_exponent(out);
  } else {
    snprintf(out, size, "%.4g", v);
  }
}

void report_format_tick(char *out, size_t size, double v, double step, double top) {
  static const char *const suffix[] = {"", "k", "M", "G", "T"};
  if (fabs(v) < step * 1e-6) { /* not "-0", "0k" or "1e-17" */
    snprintf(out, size, "0");
    return;
  }
  top = fmax(fabs(top), step);
  int step_digit = (int)floor(log10(step) + 1e-9);
  if (top >= 1e4 && step >= 1) {
    int k = 0;
    double scale = 1;
    while (top / scale >= 1000 && k < 4) scale *= 1000, k++;
    int decimals = (int)ceil(-log10(step / scale) - 1e-9);
    snprintf(out, size, "%.*f%s", decimals > 0 ? decimals : 0, v / scale, suffix[k]);
  } else if (top < 1e-3) { /* one exponent for the whole axis: 0.5e-4, 1.0e-4, 1.5e-4 */
    int exponent = (int)floor(log10(top) + 1e-9), decimals = exponent - step_digit;
    snprintf(out, size, "%.*fe%d", decimals > 0 ? decimals : 0, v / pow(10, exponent), exponent);
  } else {
    snprintf(out, size, "%.*f", step_digit < 0 ? -step_digit : 0, v);
  }
}

void report_format_duration(char *out, size_t size, double seconds) {
  /* capped (a metrics file may say anything) so that the conversion stays defined: 1e15 s is
   * 30 million years; long long, as Windows' long has 32 bits */
  double s = isfinite(seconds) && seconds > 0 ? fmin(seconds, 1e15) : 0;
  long long t = (long long)(s + 0.5);
  if (t >= 3600)
    snprintf(out, size, "%lldh%02lldm", t / 3600, t / 60 % 60);
  else if (t >= 60)
    snprintf(out, size, "%lldm%02llds", t / 60, t % 60);
  else
    snprintf(out, size, "%llds", t);
}
