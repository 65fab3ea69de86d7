/* Real chat templates against Jinja2: every template in tests/data/templates (Llama 3.x,
 * Mistral, Qwen, Gemma, Phi, DeepSeek, Command-R, Hermes, Functionary, Granite, gpt-oss,
 * Kimi, ...; sources in tests/data/templates/SOURCES.md) rendered for every conversation of
 * tests/data/chat_conversations.json, and every expression case of
 * tests/data/chat_template_cases.json (the quirks: lazy generators, Markup, the sandbox,
 * tojson options, ...), must give byte for byte what Python Jinja2, set up as transformers'
 * apply_chat_template sets it up, gave (tests/data/chat_renders.jsonl, made by
 * scripts/gen_chat_template_renders.py). A render that raised in Jinja2 must fail in vkft —
 * never render text — and a raise_exception() message must come through. */
#include "vkft/chat_template.h"

#include "check.h"
#include "vkft/error.h"
#include "vkft/platform.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DATA VKFT_SOURCE_DIR "/tests/data"

static cJSON *read_json(const char *path) {
  char *text = NULL;
  size_t size = 0;
  if (vkft_file_read(path, &text, &size)) {
    fprintf(stderr, "  %s\n", vkft_error_message());
    return NULL;
  }
  cJSON *json = cJSON_ParseWithLength(text, size);
  free(text);
  return json;
}

/* Where two texts part, with some context ("|" marks a newline). */
static void show_difference(const char *what, const char *got, const char *want) {
  size_t i = 0, got_len = strlen(got), want_len = strlen(want);
  while (i < got_len && i < want_len && got[i] == want[i]) i++;
  size_t from = i > 50 ? i - 50 : 0;
  fprintf(stderr, "  %s: differs at byte %zu (got %zu bytes, want %zu)\n    got:  \"", what, i,
          got_len, want_len);
  for (size_t k = from; k < got_len && k < i + 50; k++)
    fputc(got[k] == '\n' ? '|' : got[k], stderr);
  fprintf(stderr, "\"\n    want: \"");
  for (size_t k = from; k < want_len && k < i + 50; k++)
    fputc(want[k] == '\n' ? '|' : want[k], stderr);
  fprintf(stderr, "\"\n");
}

typedef struct template_tally {
  char name[128];
  vkft_chat_template *t; /* NULL when it did not parse */
  char parse_error[512];
  int renders, matched;
} template_tally;

enum { MAX_TEMPLATES = 128 };

static template_tally *tally_for(template_tally *tallies, int *count, const char *name) {
  for (int i = 0; i < *count; i++)
    if (strcmp(tallies[i].name, name) == 0) return &tallies[i];
  if (*count == MAX_TEMPLATES) return NULL;
  template_tally *t = &tallies[(*count)++];
  memset(t, 0, sizeof *t);
  snprintf(t->name, sizeof t->name, "%s", name);
  char path[1024];
  snprintf(path, sizeof path, "%s/templates/%s", DATA, name);
  if (vkft_chat_template_load(path, NULL, &t->t))
    snprintf(t->parse_error, sizeof t->parse_error, "%s", vkft_error_message());
  return t;
}

static const cJSON *find_case(const cJSON *cases, const char *id) {
  const cJSON *c;
  cJSON_ArrayForEach(c, cases) {
    const cJSON *cid = cJSON_GetObjectItemCaseSensitive(c, "id");
    if (cJSON_IsString(cid) && strcmp(cid->valuestring, id) == 0) return c;
  }
  return NULL;
}

/* Renders one record the way the generator did; returns VKFT_OK with *out or VKFT_ERR. */
static int render_record(const vkft_chat_template *t, const cJSON *shared, const cJSON *c,
                         int prompt, char **out) {
  *out = NULL;
  const cJSON *messages = cJSON_GetObjectItemCaseSensitive(c, "messages");
  cJSON *used = cJSON_CreateArray(), *ctx = NULL;
  int n = cJSON_GetArraySize(messages), k = 0;
  const cJSON *last = cJSON_GetArrayItem(messages, n - 1);
  const cJSON *role = cJSON_GetObjectItemCaseSensitive(last, "role");
  if (prompt && cJSON_IsString(role) && strcmp(role->valuestring, "assistant") == 0) n--;
  const cJSON *m;
  cJSON_ArrayForEach(m, messages) if (k++ < n) cJSON_AddItemReferenceToArray(used, (cJSON *)m);
  vkft_chat_inputs in = {
      .messages = used,
      .tools = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c, "tools"))
                   ? cJSON_GetObjectItemCaseSensitive(shared, "tools")
                   : NULL,
      .documents = cJSON_GetObjectItemCaseSensitive(c, "documents"),
      .add_generation_prompt = prompt,
      .special_tokens = cJSON_GetObjectItemCaseSensitive(shared, "special_tokens"),
      .kwargs = cJSON_GetObjectItemCaseSensitive(c, "kwargs"),
  };
  int rc = vkft_chat_template_context(&in, &ctx);
  if (rc == VKFT_OK) rc = vkft_chat_template_render(t, ctx, out, NULL);
  cJSON_Delete(ctx);
  cJSON_Delete(used);
  return rc;
}

/* Compares a render (rc, got) with the stored outcome: the same text, or an error where
 * Jinja2 raised. */
static int same_outcome(const char *what, int rc, const char *got, const cJSON *record) {
  const cJSON *want = cJSON_GetObjectItemCaseSensitive(record, "output");
  const cJSON *want_error = cJSON_GetObjectItemCaseSensitive(record, "error");
  int ok;
  if (!cJSON_IsString(want) && !cJSON_IsString(want_error)) {
    fprintf(stderr, "  %s: malformed record\n", what);
    return 0;
  }
  if (cJSON_IsString(want)) {
    ok = rc == VKFT_OK && strcmp(got, want->valuestring) == 0;
    if (rc != VKFT_OK)
      fprintf(stderr, "  %s: failed: %s\n", what, vkft_error_message());
    else if (!ok)
      show_difference(what, got, want->valuestring);
  } else {
    /* raise_exception(message) raises TemplateError(message): vkft must report the message;
     * a sandbox refusal must say so in Jinja2's words */
    const char *msg = want_error->valuestring, *raised = "TemplateError: ";
    char words[512] = "";
    if (strncmp(msg, raised, strlen(raised)) == 0)
      snprintf(words, sizeof words, "%s", msg + strlen(raised));
    else if (strncmp(msg, "SecurityError: ", 15) == 0)
      snprintf(words, sizeof words, "%.*s", (int)strcspn(msg, "."), msg);
    ok = rc == VKFT_ERR && vkft_error_message()[0] && strstr(vkft_error_message(), words);
    if (rc == VKFT_OK)
      fprintf(stderr, "  %s: rendered, but Jinja2 raised %s\n", what, msg);
    else if (!ok)
      fprintf(stderr, "  %s: error \"%s\", Jinja2 raised %s\n", what, vkft_error_message(), msg);
  }
  return ok;
}

/* One real-template record: a conversation through apply_chat_template's context. */
static int check_record(template_tally *tt, const cJSON *shared, const cJSON *record) {
  const char *case_id = cJSON_GetObjectItemCaseSensitive(record, "case")->valuestring;
  int prompt = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(record, "prompt"));
  const cJSON *c = find_case(cJSON_GetObjectItemCaseSensitive(shared, "cases"), case_id);
  char what[256];
  snprintf(what, sizeof what, "%s [%s%s]", tt->name, case_id, prompt ? ", prompt" : "");
  if (!c) {
    fprintf(stderr, "  %s: no such conversation\n", what);
    return 0;
  }
  if (!tt->t) { /* Jinja2 parsed every template: a parse failure is a vkft bug */
    fprintf(stderr, "  %s: does not parse: %s\n", what, tt->parse_error);
    return 0;
  }
  char *got = NULL;
  vkft_error_clear();
  int rc = render_record(tt->t, shared, c, prompt, &got);
  int ok = same_outcome(what, rc, got, record);
  free(got);
  return ok;
}

/* One expression case: its source against the cases' context (a parse error counts as the
 * error Jinja2 raised at compile time). */
static int check_source(const cJSON *context, const cJSON *record) {
  const char *source = cJSON_GetObjectItemCaseSensitive(record, "source")->valuestring;
  vkft_chat_template *t = NULL;
  char *got = NULL;
  vkft_error_clear();
  int rc = vkft_chat_template_parse(source, "case", &t);
  if (rc == VKFT_OK) rc = vkft_chat_template_render(t, context, &got, NULL);
  int ok = same_outcome(source, rc, got, record);
  free(got);
  vkft_chat_template_free(t);
  return ok;
}

int main(void) {
  cJSON *shared = read_json(DATA "/chat_conversations.json");
  CHECKF(shared != NULL, "chat_conversations.json does not parse");
  char *renders = NULL;
  size_t size = 0;
  CHECKF(vkft_file_read(DATA "/chat_renders.jsonl", &renders, &size) == VKFT_OK, "%s",
         vkft_error_message());
  if (!shared || !renders) {
    cJSON_Delete(shared);
    free(renders);
    return check_summary();
  }
  cJSON *cases = read_json(DATA "/chat_template_cases.json");
  CHECKF(cases != NULL, "chat_template_cases.json does not parse");
  const cJSON *context = cJSON_GetObjectItemCaseSensitive(cases, "context");
  template_tally *tallies = calloc(MAX_TEMPLATES, sizeof *tallies);
  int n_templates = 0, records = 0, matched = 0, raised = 0, n_cases = 0, cases_ok = 0;
  int want_templates = -1, want_renders = -1;
  for (char *line = renders, *next; line && *line; line = next) {
    next = strchr(line, '\n');
    if (next) *next++ = 0;
    cJSON *record = cJSON_Parse(line);
    CHECKF(record != NULL, "chat_renders.jsonl: a line does not parse");
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(record, "template");
    if (cJSON_IsString(cJSON_GetObjectItemCaseSensitive(record, "source"))) {
      int ok = check_source(context, record);
      CHECKF(ok, "expression case %d differs from Jinja2", n_cases);
      n_cases++;
      cases_ok += ok;
      cJSON_Delete(record);
      continue;
    }
    if (!cJSON_IsString(name)) { /* the header: which Jinja2 made the renders, how many */
      const cJSON *jinja = cJSON_GetObjectItemCaseSensitive(record, "jinja2");
      if (cJSON_IsString(jinja)) printf("reference: Jinja2 %s\n", jinja->valuestring);
      const cJSON *t = cJSON_GetObjectItemCaseSensitive(record, "templates");
      const cJSON *r = cJSON_GetObjectItemCaseSensitive(record, "renders");
      want_templates = cJSON_IsNumber(t) ? t->valueint : -1;
      want_renders = cJSON_IsNumber(r) ? r->valueint : -1;
      cJSON_Delete(record);
      continue;
    }
    template_tally *tt = tally_for(tallies, &n_templates, name->valuestring);
    CHECKF(tt != NULL, "more than %d templates", MAX_TEMPLATES);
    if (tt) {
      int ok = check_record(tt, shared, record);
      CHECKF(ok, "%s: render differs from Jinja2", tt->name);
      tt->renders++;
      tt->matched += ok;
      matched += ok;
      raised += cJSON_GetObjectItemCaseSensitive(record, "error") != NULL;
      records++;
    }
    cJSON_Delete(record);
  }
  int exact = 0;
  for (int i = 0; i < n_templates; i++) {
    exact += tallies[i].matched == tallies[i].renders;
    if (tallies[i].matched != tallies[i].renders)
      printf("  %s: %d/%d renders match\n", tallies[i].name, tallies[i].matched,
             tallies[i].renders);
    vkft_chat_template_free(tallies[i].t);
  }
  /* a truncated or emptied data file must not pass quietly */
  CHECKF(n_templates == want_templates && records + n_cases == want_renders && n_templates >= 10,
         "%d templates and %d renders, the generator wrote %d and %d", n_templates,
         records + n_cases, want_templates, want_renders);
  CHECKF(n_cases >= 50, "only %d expression cases", n_cases);
  printf("real chat templates: %d/%d render every case exactly as Jinja2 does "
         "(%d/%d renders, %d of them errors)\n",
         exact, n_templates, matched, records, raised);
  printf("expression cases: %d/%d give Jinja2's outcome\n", cases_ok, n_cases);
  cJSON_Delete(cases);
  free(tallies);
  free(renders);
  cJSON_Delete(shared);
  return check_summary();
}
