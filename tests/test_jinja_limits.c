/* The Jinja interpreter's limits on hostile templates: truncations and mutations of real
 * templates never crash or hang, chains nested tens of thousands deep fail with one line (and
 * the long chains Jinja2 renders still render), values nested 5000 deep, and the work budget.
 * Split from test_chat_template.c. */
#include "check.h"
#include "render_source.h"
#include "vkft/chat_template.h"
#include "vkft/error.h"
#include "vkft/platform.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- robustness: truncations and mutations of real templates never crash or hang ---- */

static int robust_render(const char *source, const cJSON *ctx, int *parsed, int *rendered) {
  vkft_chat_template *t;
  vkft_error_clear();
  if (vkft_chat_template_parse(source, "fuzz", &t)) return vkft_error_message()[0] != 0;
  (*parsed)++;
  vkft_chat_template_options opt = {.max_output = 1 << 20};
  char *out = NULL;
  int rc = vkft_chat_template_render_opts(t, ctx, &opt, &out, NULL);
  vkft_chat_template_free(t);
  if (rc == VKFT_OK) {
    (*rendered)++;
    int ok = out != NULL;
    free(out);
    return ok;
  }
  return vkft_error_message()[0] != 0;
}

static void test_robustness(void) {
  const char *files[] = {
      check_path("tokenizers/chat_templates/meta-llama-Llama-3.1-8B-Instruct.jinja"),
      check_path("tokenizers/chat_templates/Qwen-Qwen2.5-7B-Instruct.jinja")};
  cJSON *ctx =
      cJSON_Parse("{\"messages\":[{\"role\":\"system\",\"content\":\"S\"},{\"role\":"
                  "\"user\",\"content\":\"U\"},{\"role\":\"assistant\",\"content\":\"A\","
                  "\"tool_calls\":[{\"function\":{\"name\":\"f\",\"arguments\":{\"a\":1}}}]"
                  "}],\"tools\":[{\"name\":\"f\"}],\"add_generation_prompt\":true,"
                  "\"bos_token\":\"<s>\"}");
  int cases = 0, clean = 0, parsed = 0, rendered = 0;
  uint32_t rng = 12345;
  for (int f = 0; f < 4; f++) {
    char *source = NULL;
    size_t size = 0;
    if (f < 2) {
      CHECKF(vkft_file_read(files[f], &source, &size) == VKFT_OK, "%s", vkft_error_message());
    } else {
      const char *b = vkft_chat_template_builtin(f == 2 ? "llama2" : "gemma");
      size = strlen(b);
      source = malloc(size + 1);
      memcpy(source, b, size + 1);
    }
    if (!source) continue;
    char *buf = malloc(size + 2);
    for (size_t cut = 0; cut <= size; cut += 1) { /* every truncation */
      memcpy(buf, source, cut);
      buf[cut] = 0;
      cases++;
      clean += robust_render(buf, ctx, &parsed, &rendered);
    }
    for (int m = 0; m < 2000; m++) { /* random byte replacements from the template's own bytes */
      memcpy(buf, source, size + 1);
      for (int k = 0; k < 3; k++) {
        rng = rng * 1664525u + 1013904223u;
        size_t at = (rng >> 8) % size;
        rng = rng * 1664525u + 1013904223u;
        buf[at] = source[(rng >> 8) % size];
      }
      cases++;
      clean += robust_render(buf, ctx, &parsed, &rendered);
    }
    free(buf);
    free(source);
  }
  /* nesting, output and loop limits */
  const char *hostile[] = {
      "(((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((("
      "((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((("
      "((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((",
      "{% for i in range(100000) %}{% for j in range(100000) %}xxxxxxxx"
      "{% endfor %}{% endfor %}",
      "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}",
      "{% set ns = namespace(l=[1]) %}{% for i in range(40) %}{% set ns.l = "
      "ns.l + ns.l %}{% endfor %}{{ ns.l|length }}"};
  char *deep = malloc(20 * 1000 + 1);
  deep[0] = 0;
  for (int i = 0; i < 1000; i++) strcat(deep, "{% if true %}");
  for (int i = 0; i < 4 + 1; i++) {
    const char *src = i < 4 ? hostile[i] : deep;
    char wrapped[1024];
    if (i == 0) { /* the parenthesis run inside an expression */
      snprintf(wrapped, sizeof wrapped, "{{ %s }}", hostile[0]);
      src = wrapped;
    }
    cases++;
    int ok = robust_render(src, ctx, &parsed, &rendered);
    CHECKF(ok && (i == 3 || vkft_error_message()[0]), "hostile case %d: %s", i,
           vkft_error_message());
    clean += ok;
  }
  free(deep);
  cJSON_Delete(ctx);
  CHECKF(clean == cases, "%d of %d malformed templates ended without an error message",
         cases - clean, cases);
  printf("robustness: %d malformed templates, %d parsed, %d rendered, none crashed\n", cases,
         parsed, rendered);
}

/* ---- long chains and runaway loops end in a template error, not a crash or a hang ---- */

typedef struct chain_case {
  const char *head, *link, *tail;
  int links;
  const char *want; /* a substring of the error; NULL: renders */
} chain_case;

static const chain_case chain_cases[] = {
    {"{{ 'a'", "|upper", " }}", 50000, "nested deeper"},
    {"{{ 'a'", " ~ 'a'", " }}", 50000, "nested deeper"},
    {"{{ d", ".x", " }}", 60000, "nested deeper"},
    {"{{ true", " and true", " }}", 100000, "nested deeper"},
    {"{{ 1", " ** 1", " }}", 100000, "nested deeper"},
    {"{{ x", "[0]", " }}", 60000, "nested deeper"},
    {"{{ -", "-", "1 }}", 50000, "nesting deeper"},
    {"{% filter upper", "|upper", " %}x{% endfilter %}", 50000, "nested deeper"},
    {"{{ 1", " + 1", " }}", 500, NULL}, /* Jinja2 renders chains this long: so must vkft */
    {"{{ 'a'", "|trim", " }}", 500, NULL},
};

static void test_chains(void) {
  for (size_t i = 0; i < sizeof chain_cases / sizeof chain_cases[0]; i++) {
    const chain_case *c = &chain_cases[i];
    size_t n = strlen(c->head) + strlen(c->link) * (size_t)c->links + strlen(c->tail) + 1;
    char *source = malloc(n), *p = source;
    p += sprintf(p, "%s", c->head);
    for (int k = 0; k < c->links; k++) p += sprintf(p, "%s", c->link);
    sprintf(p, "%s", c->tail);
    char *out = NULL;
    vkft_error_clear();
    int rc = render_source(source, NULL, &out);
    if (c->want)
      CHECKF(rc == VKFT_ERR && strstr(vkft_error_message(), c->want), "chain %zu (%s%s x %d): %s",
             i, c->head, c->link, c->links, rc ? vkft_error_message() : "rendered");
    else
      CHECKF(rc == VKFT_OK, "chain %zu (%s%s x %d): %s", i, c->head, c->link, c->links,
             vkft_error_message());
    free(out);
    free(source);
  }
  /* values nested by a loop: printing and comparing them is bounded too */
  const char *deep = "{% set ns = namespace(l=[]) %}{% for i in range(5000) %}"
                     "{% set ns.l = [ns.l] %}{% endfor %}";
  char source[512], *out = NULL;
  snprintf(source, sizeof source, "%s{{ ns.l }}", deep);
  CHECKF(render_source(source, NULL, &out) == VKFT_ERR && strstr(vkft_error_message(), "nested"),
         "printing a value nested 5000 deep: %s", out ? "rendered" : vkft_error_message());
  free(out);
  out = NULL;
  snprintf(source, sizeof source, "%s{{ ns.l < ns.l }}", deep);
  CHECKF(render_source(source, NULL, &out) == VKFT_ERR && strstr(vkft_error_message(), "nested"),
         "comparing values nested 5000 deep: %s", out ? "rendered" : vkft_error_message());
  free(out);
}

/* The work budget: a loop of ten million turns fails at once with a clear error instead of
 * taking seconds per record; the budget is an option. */
static void test_budget(void) {
  vkft_chat_template *t;
  const char *loop = "{% for i in range(10000000) %}{% endfor %}done";
  CHECK(vkft_chat_template_parse(loop, "loop", &t) == VKFT_OK);
  char *out = NULL;
  double start = vkft_time_s();
  CHECK(vkft_chat_template_render(t, NULL, &out, NULL) == VKFT_ERR);
  double took = vkft_time_s() - start;
  CHECKF(vkft_error_code() == VKFT_ERR_INPUT && strstr(vkft_error_message(), "too long") != NULL,
         "%s", vkft_error_message());
  printf("budget: a range(10000000) loop fails after %.3f s\n", took);
  vkft_chat_template_free(t);
  const char *small = "{% for i in range(1000) %}{% endfor %}done";
  CHECK(vkft_chat_template_parse(small, "small", &t) == VKFT_OK);
  vkft_chat_template_options opt = {.max_steps = 500};
  CHECK(vkft_chat_template_render_opts(t, NULL, &opt, &out, NULL) == VKFT_ERR);
  opt.max_steps = 2000;
  CHECK(vkft_chat_template_render_opts(t, NULL, &opt, &out, NULL) == VKFT_OK);
  CHECK(out && strcmp(out, "done") == 0);
  free(out);
  vkft_chat_template_free(t);
  /* nested loops: steps add up across them */
  CHECK(
      render_source("{% for i in range(2000) %}{% for j in range(2000) %}{% endfor %}{% endfor %}",
                    NULL, &out) == VKFT_ERR);
  CHECK(vkft_error_code() == VKFT_ERR_INPUT && strstr(vkft_error_message(), "too long") != NULL);
}

int main(void) {
  test_chains();
  test_budget();
  if (check_need_data("the real templates of test_robustness")) test_robustness();
  return check_summary();
}
