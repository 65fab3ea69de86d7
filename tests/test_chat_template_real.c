/* Real chat templates against Jinja2: the templates of llama.cpp's models/templates folder
 * (Llama 3.x, Mistral, Qwen, DeepSeek, Phi, Hermes, Functionary, Granite, gpt-oss, Kimi, GLM,
 * MiniMax, ...; which ones and where they come from: tests/data/chat_templates.md) rendered for
 * every conversation of tests/data/chat_conversations.json, and every expression case of
 * tests/data/chat_template_cases.json (the quirks: lazy generators, Markup, the sandbox,
 * tojson options, ...), must give byte for byte what Python Jinja2, set up as transformers'
 * apply_chat_template sets it up, gave (tests/data/chat_renders.jsonl, made by
 * scripts/gen_chat_template_renders.py). A render that raised in Jinja2 must fail in vkft —
 * never render text — and a raise_exception() message must come through.
 *
 * The templates are not in this repository: `scripts/setup.sh test` checks them out of the
 * llama.cpp copy that the npm package node-llama-cpp ships, into $VKFT_LLAMA_CPP_DIR (default: the
 * build's VKFT_LLAMA_CPP_DIR, .deps/llama.cpp). Each one must have the SHA-256 stored with the
 * renders. Without the folder the template renders are skipped (a failure under CI=true); the
 * expression cases need nothing and always run. */
#include "vkft/chat_template.h"

#include "check.h"
#include "sha256.h"
#include "vkft/error.h"
#include "vkft/platform.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DATA VKFT_SOURCE_DIR "/tests/data"
#ifndef VKFT_LLAMA_CPP_DIR
#define VKFT_LLAMA_CPP_DIR VKFT_SOURCE_DIR "/.deps/llama.cpp"
#endif

/* $VKFT_LLAMA_CPP_DIR (else the build's default) + /models/templates */
static const char *templates_dir(void) {
  static char dir[2048];
  const char *env = getenv("VKFT_LLAMA_CPP_DIR");
  snprintf(dir, sizeof dir, "%s/models/templates", env && *env ? env : VKFT_LLAMA_CPP_DIR);
  return dir;
}

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
  vkft_chat_template *t; /* NULL when it was not loaded: no folder, or a problem */
  int renders, matched;
} template_tally;

enum { MAX_TEMPLATES = 128 };

/* Loads the template file `name` of dir after checking that it has the bytes the renders were
 * made from (sha256: the renders' name -> SHA-256 map). A problem is one failure here, not one
 * per render. */
static void load_template(template_tally *t, const char *dir, const cJSON *sha256) {
  char path[2560], got[65], problem[1024] = "";
  snprintf(path, sizeof path, "%s/%s", dir, t->name);
  const cJSON *want = cJSON_GetObjectItemCaseSensitive(sha256, t->name);
  char *text = NULL;
  size_t size = 0;
  if (!cJSON_IsString(want)) {
    snprintf(problem, sizeof problem, "chat_renders.jsonl has no SHA-256 for it");
  } else if (vkft_file_read(path, &text, &size) != VKFT_OK) {
    snprintf(problem, sizeof problem,
             "%s (the renders were made from another llama.cpp: run scripts/setup.sh test)",
             vkft_error_message());
  } else if (sha256_hex(text, size, got), strcmp(got, want->valuestring) != 0) {
    snprintf(problem, sizeof problem,
             "%s has SHA-256 %s, the renders were made from %s: this llama.cpp is not the one "
             "of the node-llama-cpp version scripts/setup.sh installs (see "
             "tests/data/chat_templates.md); run scripts/setup.sh test, or regenerate the renders",
             path, got, want->valuestring);
  } else if (vkft_chat_template_load(path, NULL, &t->t) != VKFT_OK) {
    /* Jinja2 compiled every rendered template: a parse failure is a vkft bug */
    snprintf(problem, sizeof problem, "does not parse: %s", vkft_error_message());
  }
  free(text);
  CHECKF(!problem[0], "%s: %s", t->name, problem);
}

/* The tally of template `name`, made (and its template loaded, when dir is not NULL) on first
 * use; NULL when there are too many. */
static template_tally *tally_for(template_tally *tallies, int *count, const char *name,
                                 const char *dir, const cJSON *sha256) {
  for (int i = 0; i < *count; i++)
    if (strcmp(tallies[i].name, name) == 0) return &tallies[i];
  if (*count == MAX_TEMPLATES) return NULL;
  template_tally *t = &tallies[(*count)++];
  memset(t, 0, sizeof *t);
  snprintf(t->name, sizeof t->name, "%s", name);
  if (dir) load_template(t, dir, sha256);
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
  if (!tt->t) return 0; /* its problem was reported once, when it was loaded */
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

/* The state of one pass over chat_renders.jsonl. */
typedef struct renders_run {
  const cJSON *shared, *context;
  const char *dir; /* the templates folder; NULL when it is missing (template renders skipped) */
  cJSON *sha256;   /* the header's template name -> SHA-256 */
  template_tally *tallies;
  int n_templates, records, matched, raised, n_cases, cases_ok;
  int want_templates, want_renders;
} renders_run;

/* One line of chat_renders.jsonl: the header, a template render or an expression case. */
static void check_line(renders_run *r, cJSON *record) {
  const cJSON *name = cJSON_GetObjectItemCaseSensitive(record, "template");
  if (cJSON_IsString(cJSON_GetObjectItemCaseSensitive(record, "source"))) {
    int ok = check_source(r->context, record);
    CHECKF(ok, "expression case %d differs from Jinja2", r->n_cases);
    r->n_cases++;
    r->cases_ok += ok;
  } else if (!cJSON_IsString(name)) { /* the header: which Jinja2 and llama.cpp, how many */
    const cJSON *jinja = cJSON_GetObjectItemCaseSensitive(record, "jinja2");
    const cJSON *commit = cJSON_GetObjectItemCaseSensitive(record, "llama_cpp_commit");
    printf("reference: Jinja2 %s, llama.cpp commit %s\n",
           cJSON_IsString(jinja) ? jinja->valuestring : "?",
           cJSON_IsString(commit) ? commit->valuestring : "?");
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(record, "templates");
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(record, "renders");
    r->want_templates = cJSON_IsNumber(t) ? t->valueint : -1;
    r->want_renders = cJSON_IsNumber(n) ? n->valueint : -1;
    cJSON_Delete(r->sha256);
    r->sha256 = cJSON_DetachItemFromObjectCaseSensitive(record, "sha256");
  } else {
    template_tally *tt =
        tally_for(r->tallies, &r->n_templates, name->valuestring, r->dir, r->sha256);
    CHECKF(tt != NULL, "more than %d templates", MAX_TEMPLATES);
    if (!tt) return;
    r->records++;
    tt->renders++;
    if (!r->dir) return; /* counted, not rendered */
    int ok = check_record(tt, r->shared, record);
    CHECKF(ok || !tt->t, "%s: render differs from Jinja2", tt->name);
    tt->matched += ok;
    r->matched += ok;
    r->raised += cJSON_GetObjectItemCaseSensitive(record, "error") != NULL;
  }
}

int main(void) {
  cJSON *shared = read_json(DATA "/chat_conversations.json");
  CHECKF(shared != NULL, "chat_conversations.json does not parse");
  char *renders = NULL;
  size_t size = 0;
  CHECKF(vkft_file_read(DATA "/chat_renders.jsonl", &renders, &size) == VKFT_OK, "%s",
         vkft_error_message());
  cJSON *cases = read_json(DATA "/chat_template_cases.json");
  CHECKF(cases != NULL, "chat_template_cases.json does not parse");
  if (!shared || !renders || !cases) {
    cJSON_Delete(shared);
    cJSON_Delete(cases);
    free(renders);
    return check_summary();
  }
  const char *dir = templates_dir();
  renders_run r = {
      .shared = shared,
      .context = cJSON_GetObjectItemCaseSensitive(cases, "context"),
      .dir = check_need_path("test_chat_template_real", dir, "the llama.cpp chat templates",
                             "run scripts/setup.sh test, or set VKFT_LLAMA_CPP_DIR")
                 ? dir
                 : NULL,
      .tallies = calloc(MAX_TEMPLATES, sizeof(template_tally)),
      .want_templates = -1,
      .want_renders = -1,
  };
  for (char *line = renders, *next; r.tallies && line && *line; line = next) {
    next = strchr(line, '\n');
    if (next) *next++ = 0;
    cJSON *record = cJSON_Parse(line);
    CHECKF(record != NULL, "chat_renders.jsonl: a line does not parse");
    if (record) check_line(&r, record);
    cJSON_Delete(record);
  }
  int exact = 0;
  for (int i = 0; i < r.n_templates; i++) {
    template_tally *tt = &r.tallies[i];
    exact += tt->t && tt->matched == tt->renders;
    if (r.dir && tt->matched != tt->renders)
      printf("  %s: %d/%d renders match\n", tt->name, tt->matched, tt->renders);
    vkft_chat_template_free(tt->t);
  }
  /* a truncated or emptied data file must not pass quietly */
  CHECKF(r.n_templates == r.want_templates && r.records + r.n_cases == r.want_renders &&
             r.n_templates >= 10,
         "%d templates and %d renders, the generator wrote %d and %d", r.n_templates,
         r.records + r.n_cases, r.want_templates, r.want_renders);
  CHECKF(r.n_cases >= 50, "only %d expression cases", r.n_cases);
  if (r.dir)
    printf("real chat templates: %d/%d render every case exactly as Jinja2 does "
           "(%d/%d renders, %d of them errors)\n",
           exact, r.n_templates, r.matched, r.records, r.raised);
  else
    printf("real chat templates: not rendered (%d templates, %d renders)\n", r.n_templates,
           r.records);
  printf("expression cases: %d/%d give Jinja2's outcome\n", r.cases_ok, r.n_cases);
  cJSON_Delete(r.sha256);
  cJSON_Delete(cases);
  free(r.tallies);
  free(renders);
  cJSON_Delete(shared);
  return check_summary();
}
