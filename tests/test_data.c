/* Data pipeline tests on the real shared data: every SFT dataset loads; chat renders tokenize to
 * exactly the ids of the transformers vectors; assistant-only masks checked token by token
 * (replies and their end-of-turn token trained; headers, user text and ChatML's "\n" not);
 * the fallback span search on Qwen3 multi-turn reasoning; text/tokens/prompt_completion rules;
 * truncation; bad records with file:line; packing, batches and exact resume; dedup; filter. */
#include "vkft/dataset.h"

#include "check.h"
#include "vkft/error.h"
#include "vkft/platform.h"
#include "vkft/tokenizer.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DATA check_data()

static char tmp_path[256];
static const char *enable_thinking; /* passed by load() */

/* Writes text to a scratch file in the current folder and returns its path. */
static const char *scratch(const char *name, const char *text) {
  snprintf(tmp_path, sizeof tmp_path, "test_data_%s", name);
  FILE *f = vkft_fopen(tmp_path, "wb");
  if (!f) return NULL;
  fwrite(text, 1, strlen(text), f);
  fclose(f);
  return tmp_path;
}

static vkft_dataset *load(const char *model, const char *tmpl, const char *path,
                          vkft_data_format fmt, vkft_train_on on, int max_len) {
  char model_dir[512];
  snprintf(model_dir, sizeof model_dir, "%s/%s", DATA, model);
  vkft_data_file_desc file = {.path = path};
  vkft_dataset_desc d = {.model_dir = model_dir,
                         .files = &file,
                         .n_files = 1,
                         .format = fmt,
                         .template_name = tmpl,
                         .train_on = on,
                         .max_len = max_len,
                         .keep_text = 1,
                         .enable_thinking = enable_thinking};
  vkft_dataset *ds = NULL;
  if (vkft_dataset_load(&d, &ds)) {
    fprintf(stderr, "  load %s with %s: %s\n", path, model, vkft_error_message());
    return NULL;
  }
  return ds;
}

/* The decoded maximal runs of trained tokens of an example. */
typedef struct runs {
  char *text[64];
  size_t n;
} runs;

static void get_runs(const vkft_tokenizer *tok, const vkft_example *ex, runs *r) {
  r->n = 0;
  for (uint32_t t = 0; t < ex->len;) {
    if (ex->labels[t] == VKFT_LABEL_IGNORE) {
      t++;
      continue;
    }
    uint32_t u = t;
    while (u < ex->len && ex->labels[u] != VKFT_LABEL_IGNORE) u++;
    char *text = NULL;
    size_t len;
    if (r->n < 64 && vkft_tokenizer_decode(tok, ex->input_ids + t, u - t, 0, &text, &len) == 0)
      r->text[r->n++] = text;
    else
      free(text);
    t = u;
  }
}

static void free_runs(runs *r) {
  for (size_t i = 0; i < r->n; i++) free(r->text[i]);
  r->n = 0;
}

static int ends_with(const char *s, const char *suffix) {
  size_t a = strlen(s), b = strlen(suffix);
  return a >= b && memcmp(s + a - b, suffix, b) == 0;
}

static void strip(char *s) {
  size_t a = 0, n = strlen(s);
  while (a < n && (s[a] == ' ' || s[a] == '\n' || s[a] == '\t')) a++;
  while (n > a && (s[n - 1] == ' ' || s[n - 1] == '\n' || s[n - 1] == '\t')) n--;
  memmove(s, s + a, n - a);
  s[n - a] = 0;
}

static int is_blank_token(const vkft_tokenizer *tok, int32_t id) {
  char *text = NULL;
  size_t len = 0;
  int blank = vkft_tokenizer_decode(tok, &id, 1, 0, &text, &len) == 0 && len > 0;
  for (size_t i = 0; blank && i < len; i++) blank = text[i] == ' ' || text[i] == '\n';
  free(text);
  return blank;
}

/* ---- every shared dataset loads, with the expected record counts ---- */

static void test_shared_datasets(void) {
  static const struct {
    const char *file;
    vkft_data_format format;
    size_t records;
  } files[] = {
      {"alpaca_en_demo.json", VKFT_FORMAT_ALPACA, 999},
      {"alpaca_zh_demo.json", VKFT_FORMAT_ALPACA, 1000},
      {"identity.json", VKFT_FORMAT_ALPACA, 91},
      {"glaive_toolcall_en_demo.json", VKFT_FORMAT_SHAREGPT, 300},
      {"v1_sft_demo.jsonl", VKFT_FORMAT_MESSAGES, 500},
      {"reason_tool_use_demo_50.jsonl", VKFT_FORMAT_MESSAGES, 50},
  };
  const char *models[] = {"tokenizers/qwen3", "tokenizers/llama3", "models/stories260K"};
  for (size_t m = 0; m < 3; m++)
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
      char path[512];
      snprintf(path, sizeof path, "%s/sft/%s", DATA, files[i].file);
      vkft_dataset *ds = load(models[m], NULL, path, VKFT_FORMAT_AUTO, VKFT_TRAIN_ON_ASSISTANT, 0);
      CHECKF(ds != NULL, "%s with %s", files[i].file, models[m]);
      if (!ds) continue;
      CHECKF(ds->file_formats[0] == files[i].format, "%s detected as %s", files[i].file,
             vkft_data_format_name(ds->file_formats[0]));
      CHECKF(ds->n_examples == files[i].records, "%s: %zu records", files[i].file, ds->n_examples);
      CHECKF(ds->n_bad == 0, "%s with %s: %zu bad, first: %s", files[i].file, models[m], ds->n_bad,
             ds->n_issues ? ds->issues[0] : "");
      CHECKF(ds->n_ok + ds->n_empty == ds->n_examples, "%s", files[i].file);
      CHECK(ds->n_trained > 0 && ds->n_trained < ds->n_tokens);
      vkft_dataset_free(ds);
    }
}

/* ---- chat vectors: ids identical to transformers, masks token by token ---- */

static void check_vector_file(const char *model, const char *file, const char *eot) {
  char path[512];
  snprintf(path, sizeof path, "%s/vectors/%s", DATA, file);
  char *data;
  size_t size;
  if (vkft_file_read(path, &data, &size)) {
    CHECKF(0, "read %s", path);
    return;
  }
  int32_t eot_id = -1, im_start = -1;
  size_t checked = 0;
  for (char *line = strtok(data, "\n"); line; line = strtok(NULL, "\n")) {
    cJSON *rec = cJSON_Parse(line);
    const cJSON *msgs = cJSON_GetObjectItem(rec, "messages");
    const cJSON *ids = cJSON_GetObjectItem(rec, "ids");
    const char *tmpl = cJSON_GetObjectItem(rec, "template")->valuestring;
    const cJSON *kwargs = cJSON_GetObjectItem(rec, "kwargs");
    int n_msgs = cJSON_GetArraySize(msgs);
    const cJSON *last = cJSON_GetArrayItem(msgs, n_msgs - 1);
    const cJSON *date = cJSON_GetObjectItem(kwargs, "date_string");
    const cJSON *thinking = cJSON_GetObjectItem(kwargs, "enable_thinking");
    enable_thinking = thinking ? (cJSON_IsTrue(thinking) ? "true" : "false") : NULL;
    if (cJSON_IsTrue(cJSON_GetObjectItem(rec, "add_generation_prompt")) ||
        (date && strcmp(date->valuestring, "26 Jul 2024") != 0) ||
        strcmp(cJSON_GetObjectItem(last, "role")->valuestring, "assistant") != 0) {
      cJSON_Delete(rec);
      continue;
    }
    cJSON *out = cJSON_CreateObject();
    cJSON_AddItemToObject(out, "messages", cJSON_Duplicate(msgs, 1));
    const cJSON *tools = cJSON_GetObjectItem(rec, "tools");
    if (tools) cJSON_AddItemToObject(out, "tools", cJSON_Duplicate(tools, 1));
    char *json = cJSON_PrintUnformatted(out);
    cJSON_Delete(out);
    char tpath[512] = "";
    if (strcmp(tmpl, "tokenizer_config.json") != 0)
      snprintf(tpath, sizeof tpath, "%s/tokenizers/chat_templates/%s", DATA, tmpl);
    const char *p = scratch("vector.jsonl", json);
    free(json);
    vkft_dataset *ds =
        load(model, tpath[0] ? tpath : NULL, p, VKFT_FORMAT_AUTO, VKFT_TRAIN_ON_ASSISTANT, 100000);
    const char *id = cJSON_GetObjectItem(rec, "id")->valuestring;
    CHECKF(ds && ds->n_ok == 1, "%s %s (%s)", file, id, tmpl);
    if (!ds || ds->n_ok != 1) {
      if (ds && ds->n_issues) fprintf(stderr, "  %s\n", ds->issues[0]);
      vkft_dataset_free(ds);
      cJSON_Delete(rec);
      continue;
    }
    const vkft_example *ex = &ds->examples[0];
    vkft_tokenizer *tok = ds->tokenizer;
    if (eot_id < 0) eot_id = vkft_tokenizer_token_id(tok, eot);
    if (im_start < 0) im_start = vkft_tokenizer_token_id(tok, "<|im_start|>");
    /* The render tokenized without special tokens: exactly transformers' ids. */
    int same = ex->len == (uint32_t)cJSON_GetArraySize(ids);
    for (uint32_t t = 0; same && t < ex->len; t++)
      same = ex->input_ids[t] == cJSON_GetArrayItem(ids, (int)t)->valueint;
    CHECKF(same, "%s %s (%s): ids differ from transformers", file, id, tmpl);
    /* One trained run per assistant message, ending with its content and end-of-turn token. */
    runs r;
    get_runs(tok, ex, &r);
    size_t assistants = 0, k = 0;
    for (const cJSON *m = msgs->child; m; m = m->next) {
      if (strcmp(cJSON_GetObjectItem(m, "role")->valuestring, "assistant") != 0) continue;
      const char *content = cJSON_GetObjectItem(m, "content")->valuestring;
      /* Templates strip replies (whitespace at both ends may merge with the header's) and
       * Qwen3 keeps only what follows "</think>" of earlier turns: compare stripped text. */
      const char *think = strstr(content, "</think>");
      char want[8192], got[8192];
      snprintf(want, sizeof want, "%s", think ? think + 8 : content);
      snprintf(got, sizeof got, "%s", k < r.n ? r.text[k] : "");
      int eot_ok = ends_with(got, eot);
      if (eot_ok) got[strlen(got) - strlen(eot)] = 0;
      strip(want);
      strip(got);
      CHECKF(eot_ok && ends_with(got, want), "%s %s (%s): reply %zu trained as \"%s\"", file, id,
             tmpl, assistants, k < r.n ? r.text[k] : "(none)");
      CHECKF(k < r.n && !strstr(r.text[k], "<|im_start|>") &&
                 !strstr(r.text[k], "<|start_header_id|>") && !strstr(r.text[k], "user"),
             "%s %s: a header or user text is trained", file, id);
      assistants++;
      k++;
    }
    CHECKF(r.n == assistants, "%s %s (%s): %zu trained runs for %zu replies", file, id, tmpl, r.n,
           assistants);
    /* Token by token: headers never trained; the token after a trained end-of-turn never. */
    for (uint32_t t = 0; t < ex->len; t++) {
      if (ex->input_ids[t] == im_start ||
          vkft_tokenizer_token_id(tok, "<|start_header_id|>") == ex->input_ids[t])
        CHECKF(ex->labels[t] == VKFT_LABEL_IGNORE, "%s %s: header token %u trained", file, id, t);
      if (t > 0 && ex->input_ids[t - 1] == eot_id && ex->labels[t - 1] != VKFT_LABEL_IGNORE &&
          is_blank_token(tok, ex->input_ids[t]))
        CHECKF(ex->labels[t] == VKFT_LABEL_IGNORE, "%s %s: token %u after %s trained", file, id, t,
               eot);
      if (ex->labels[t] != VKFT_LABEL_IGNORE) CHECK(ex->labels[t] == ex->input_ids[t]);
    }
    free_runs(&r);
    checked++;
    vkft_dataset_free(ds);
    cJSON_Delete(rec);
  }
  CHECKF(checked >= 15, "%s: only %zu conversations checked", file, checked);
  free(data);
}

/* Qwen3 drops the reasoning of replies before the last user turn: the prefix render of
 * messages[:i+1] is then not a prefix of the full render, and the span comes from the search. */
static void test_qwen3_rewritten_turns(void) {
  const char *rec =
      "{\"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"},"
      "{\"role\": \"user\", \"content\": \"Q1?\"},"
      "{\"role\": \"assistant\", \"content\": [{\"type\": \"reasoning\", \"value\": \"R1\"},"
      "{\"type\": \"text\", \"value\": \"Answer one.\"}]},"
      "{\"role\": \"user\", \"content\": \"Q2?\"},"
      "{\"role\": \"assistant\", \"content\": [{\"type\": \"reasoning\", \"value\": \"R2\"},"
      "{\"type\": \"text\", \"value\": \"Answer two.\"}]}]}\n";
  vkft_dataset *ds = load("tokenizers/qwen3", NULL, scratch("qwen3.jsonl", rec), VKFT_FORMAT_AUTO,
                          VKFT_TRAIN_ON_ASSISTANT, 0);
  CHECK(ds && ds->n_ok == 1);
  if (!ds || ds->n_ok != 1) {
    vkft_dataset_free(ds);
    return;
  }
  runs r;
  get_runs(ds->tokenizer, &ds->examples[0], &r);
  CHECKF(r.n == 2, "%zu runs", r.n);
  if (r.n == 2) {
    CHECKF(!strcmp(r.text[0], "Answer one.<|im_end|>"), "run 0 \"%s\"", r.text[0]);
    CHECKF(!strcmp(r.text[1], "<think>\nR2\n</think>\n\nAnswer two.<|im_end|>"), "run 1 \"%s\"",
           r.text[1]);
  }
  free_runs(&r);
  /* loss_weight 0 on the first reply: only the second is trained. */
  const char *rec2 = "{\"messages\": [{\"role\": \"user\", \"content\": \"Q1?\"},"
                     "{\"role\": \"assistant\", \"content\": \"A1.\", \"loss_weight\": 0.0},"
                     "{\"role\": \"user\", \"content\": \"Q2?\"},"
                     "{\"role\": \"assistant\", \"content\": \"A2.\", \"loss_weight\": 1.0}]}\n";
  vkft_dataset_free(ds);
  ds = load("tokenizers/qwen3", NULL, scratch("lw.jsonl", rec2), VKFT_FORMAT_AUTO,
            VKFT_TRAIN_ON_ASSISTANT, 0);
  CHECK(ds && ds->n_ok == 1);
  if (ds && ds->n_ok == 1) {
    get_runs(ds->tokenizer, &ds->examples[0], &r);
    CHECKF(r.n == 1 && ends_with(r.text[0], "A2.<|im_end|>"), "%zu runs, \"%s\"", r.n,
           r.n ? r.text[0] : "");
    free_runs(&r);
  }
  vkft_dataset_free(ds);
}

/* ---- text, prompt/completion, tokens: BOS from the post-processor, EOS trained ---- */

static void test_text_rules(void) {
  const char *recs = "{\"text\": \"Once upon a time\"}\n"
                     "{\"prompt\": \"Q: 2+2?\", \"completion\": \" A: 4\"}\n";
  vkft_dataset *ds = load("tokenizers/llama3", NULL, scratch("text.jsonl", recs), VKFT_FORMAT_AUTO,
                          VKFT_TRAIN_ON_ASSISTANT, 0);
  CHECK(ds && ds->n_bad == 1); /* mixed formats: the second record lacks "text" */
  if (ds) {
    const vkft_example *ex = &ds->examples[0];
    int32_t bos = vkft_tokenizer_bos_id(ds->tokenizer), eos = vkft_tokenizer_eos_id(ds->tokenizer);
    /* llama3's tokenizer_config says eos <|eot_id|>; the post-processor adds <|begin_of_text|> */
    CHECK(ex->status == VKFT_EXAMPLE_OK && ex->input_ids[0] == bos);
    CHECK(ex->input_ids[ex->len - 1] == eos && ex->labels[ex->len - 1] == eos);
    CHECK(ex->labels[0] == VKFT_LABEL_IGNORE && ex->n_trained == ex->len - 1);
    CHECKF(ds->n_issues == 1 && strstr(ds->issues[0], "test_data_text.jsonl:2: ") &&
               strstr(ds->issues[0], "\"text\""),
           "issue: %s", ds->n_issues ? ds->issues[0] : "");
  }
  vkft_dataset_free(ds);
  ds = load("tokenizers/llama3", NULL,
            scratch("pc.jsonl", "{\"prompt\": \"Q: 2+2?\", "
                                "\"completion\": \" A: 4\"}\n"),
            VKFT_FORMAT_AUTO, VKFT_TRAIN_ON_ASSISTANT, 0);
  CHECK(ds && ds->n_ok == 1);
  if (ds && ds->n_ok == 1) {
    runs r;
    get_runs(ds->tokenizer, &ds->examples[0], &r);
    CHECKF(r.n == 1 && !strcmp(r.text[0], " A: 4<|eot_id|>"), "run \"%s\"", r.n ? r.text[0] : "");
    free_runs(&r);
  }
  vkft_dataset_free(ds);
  /* stories260K has no chat template: alpaca records use the built-in alpaca prompt, with the
   * post-processor's BOS in front and the EOS the template writes, trained. */
  ds = load("models/stories260K", NULL,
            scratch("alpaca.json", "[{\"instruction\": \"Say hi\", \"input\": \"to Tom\", "
                                   "\"output\": \"Hi Tom\"}]"),
            VKFT_FORMAT_AUTO, VKFT_TRAIN_ON_ASSISTANT, 0);
  CHECK(ds && ds->n_ok == 1);
  if (ds && ds->n_ok == 1) {
    const vkft_example *ex = &ds->examples[0];
    CHECK(ex->input_ids[0] == 1); /* <s> */
    char *text = NULL;
    size_t len;
    vkft_tokenizer_decode(ds->tokenizer, ex->input_ids, ex->len, 0, &text, &len);
    CHECKF(text && strstr(text, "### Instruction:\nSay hi\nto Tom\n\n### Response:\n"), "render %s",
           text ? text : "");
    free(text);
    runs r;
    get_runs(ds->tokenizer, ex, &r);
    CHECKF(r.n == 1 && strstr(r.text[0], "Hi Tom</s>") && !strstr(r.text[0], "Response"),
           "run \"%s\"", r.n ? r.text[0] : "");
    free_runs(&r);
  }
  vkft_dataset_free(ds);
  /* tokens: labels kept as given (first forced to -100); out-of-vocabulary ids are bad. */
  ds = load("models/stories260K", NULL,
            scratch("tok.jsonl", "{\"input_ids\": [1, 5, 6, 7], \"labels\": [-100, -100, 6, 7]}\n"
                                 "{\"input_ids\": [1, 5, 9999]}\n{\"input_ids\": [1, 5, 6]}\n"),
            VKFT_FORMAT_AUTO, VKFT_TRAIN_ON_ASSISTANT, 0);
  CHECK(ds && ds->n_ok == 2 && ds->n_bad == 1);
  if (ds && ds->n_examples == 3) {
    CHECK(ds->examples[0].n_trained == 2 && ds->examples[0].labels[2] == 6);
    CHECK(ds->examples[1].status == VKFT_EXAMPLE_BAD);
    CHECK(ds->examples[2].n_trained == 2 && ds->examples[2].labels[0] == VKFT_LABEL_IGNORE);
  }
  vkft_dataset_free(ds);
}

/* ---- truncation, train_on all, max_len default from config.json ---- */

static void test_truncation(void) {
  char path[512];
  snprintf(path, sizeof path, "%s/sft/alpaca_en_demo.json", DATA);
  vkft_dataset *ds =
      load("models/stories260K", NULL, path, VKFT_FORMAT_AUTO, VKFT_TRAIN_ON_ASSISTANT, 0);
  CHECK(ds && ds->max_len == 512); /* min(2048, max_position_embeddings 512) */
  vkft_dataset_free(ds);
  ds = load("tokenizers/qwen3", NULL, path, VKFT_FORMAT_AUTO, VKFT_TRAIN_ON_ASSISTANT, 24);
  CHECK(ds && ds->max_len == 24 && ds->n_truncated > 0 && ds->n_empty > 0);
  size_t longest = 0;
  for (size_t i = 0; ds && i < ds->n_examples; i++) {
    const vkft_example *ex = &ds->examples[i];
    if (ex->len > longest) longest = ex->len;
    if (ex->status == VKFT_EXAMPLE_EMPTY) CHECK(ex->full_len > 24 && ex->n_trained == 0);
  }
  CHECK(longest == 24);
  CHECK(ds && ds->n_ok + ds->n_empty == 999);
  vkft_dataset_free(ds);
  ds = load("tokenizers/qwen3", NULL, path, VKFT_FORMAT_AUTO, VKFT_TRAIN_ON_ALL, 0);
  CHECK(ds && ds->n_trained + ds->n_ok == ds->n_tokens); /* all but each first token */
  vkft_dataset_free(ds);
}

/* ---- bad records and files ---- */

static void test_bad_records(void) {
  const char *arr = "[\n{\"instruction\": \"a\", \"output\": \"b\"},\n"
                    "{\"instruction\": \"a\" \"output\": \"b\"},\n" /* missing comma */
                    "{\"instruction\": \"a\"},\n"                   /* no output */
                    "{\"instruction\": \"c\", \"output\": \"d\"}\n]\n";
  vkft_dataset *ds = load("tokenizers/qwen3", NULL, scratch("bad.json", arr), VKFT_FORMAT_AUTO,
                          VKFT_TRAIN_ON_ASSISTANT, 0);
  CHECK(ds && ds->n_examples == 4 && ds->n_ok == 2 && ds->n_bad == 2 && ds->n_issues == 2);
  if (ds && ds->n_issues == 2) {
    CHECKF(strstr(ds->issues[0], "test_data_bad.json:3: record 1: not valid JSON") != NULL, "%s",
           ds->issues[0]);
    CHECKF(strstr(ds->issues[1], "test_data_bad.json:4: record 2: missing field \"output\"") !=
               NULL,
           "%s", ds->issues[1]);
  }
  vkft_dataset_free(ds);
  /* --strict: the first bad record fails the load, naming it. */
  char model_dir[512];
  snprintf(model_dir, sizeof model_dir, "%s/tokenizers/qwen3", DATA);
  vkft_data_file_desc file = {.path = scratch("bad.json", arr)};
  vkft_dataset_desc d = {.model_dir = model_dir, .files = &file, .n_files = 1, .strict = 1};
  ds = NULL;
  CHECK_ERR(vkft_dataset_load(&d, &ds), VKFT_ERR_INPUT, "bad.json:3");
  CHECK(ds == NULL && strstr(vkft_error_message(), "strict"));
  /* Not JSON at all: one clear error. */
  file.path = scratch("notjson.txt", "hello world\nthis is text\n");
  d.strict = 0;
  CHECK_ERR(vkft_dataset_load(&d, &ds), VKFT_ERR_INPUT, "not a JSON array or JSON Lines");
  file.path = scratch("notjsonl.jsonl", "{oops\n{still not\n");
  CHECK_ERR(vkft_dataset_load(&d, &ds), VKFT_ERR_INPUT, "not JSON Lines");
  file.path = "test_data_missing_file.json";
  CHECK(vkft_dataset_load(&d, &ds) == VKFT_ERR);
  /* Truncated array: records before the cut load, the cut one is reported. */
  file.path = scratch("cut.json", "[{\"text\": \"a\"}, {\"text\": \"b\"}, {\"text\": \"c");
  CHECK(vkft_dataset_load(&d, &ds) == VKFT_OK && ds->n_ok == 2 && ds->n_bad == 1);
  if (ds && ds->n_issues) CHECK(strstr(ds->issues[0], "truncated") != NULL);
  vkft_dataset_free(ds);
}

/* ---- fuzz: truncations and byte flips of real files never crash ---- */

static void test_fuzz(void) {
  char path[512];
  snprintf(path, sizeof path, "%s/sft/reason_tool_use_demo_50.jsonl", DATA);
  char *orig;
  size_t size;
  if (vkft_file_read(path, &orig, &size)) {
    CHECK(0);
    return;
  }
  snprintf(path, sizeof path, "%s/sft/glaive_toolcall_en_demo.json", DATA);
  char *orig2;
  size_t size2;
  if (vkft_file_read(path, &orig2, &size2)) {
    free(orig);
    CHECK(0);
    return;
  }
  char model_dir[512];
  snprintf(model_dir, sizeof model_dir, "%s/tokenizers/qwen3", DATA);
  vkft_tokenizer *tok;
  if (vkft_tokenizer_load(model_dir, &tok)) {
    CHECK(0);
    return;
  }
  uint64_t state = 7;
  int runs_ok = 0;
  for (int it = 0; it < 60; it++) {
    const char *src = it % 2 ? orig2 : orig;
    size_t n = it % 2 ? size2 : size;
    /* keep the fuzzed files small: a prefix of up to 40 KB */
    size_t len = n < 40000 ? n : 40000;
    char *buf = malloc(len + 1);
    memcpy(buf, src, len);
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    if (it % 3 == 0) len = (size_t)(state >> 33) % len; /* truncation */
    int flips = 1 + (int)((state >> 20) % 20);
    for (int k = 0; k < flips && len; k++) {
      state = state * 6364136223846793005ull + 1442695040888963407ull;
      buf[(state >> 33) % len] = (char)(state >> 13);
    }
    buf[len] = 0;
    FILE *f = vkft_fopen("test_data_fuzz.json", "wb");
    fwrite(buf, 1, len, f);
    fclose(f);
    free(buf);
    vkft_data_file_desc file = {.path = "test_data_fuzz.json"};
    vkft_dataset_desc d = {.model_dir = model_dir,
                           .files = &file,
                           .n_files = 1,
                           .tokenizer = tok,
                           .max_len = 256,
                           .keep_text = 1};
    vkft_dataset *ds = NULL;
    if (vkft_dataset_load(&d, &ds) == VKFT_OK) {
      runs_ok++;
      CHECK(ds->n_ok + ds->n_bad + ds->n_empty == ds->n_examples);
      vkft_dataset_free(ds);
    } else {
      CHECK(vkft_error_message()[0] != 0);
    }
  }
  CHECK(runs_ok > 30);
  vkft_tokenizer_free(tok);
  free(orig);
  free(orig2);
}

/* ---- packing, batches, exact resume, mixing ---- */

static void test_packing(void) {
  char a[512], b[512];
  snprintf(a, sizeof a, "%s/sft/alpaca_en_demo.json", DATA);
  snprintf(b, sizeof b, "%s/sft/identity.json", DATA);
  char model_dir[512];
  snprintf(model_dir, sizeof model_dir, "%s/tokenizers/qwen3", DATA);
  vkft_data_file_desc files[2] = {{.path = a, .weight = 0.5}, {.path = b, .weight = 2}};
  vkft_dataset_desc d = {.model_dir = model_dir, .files = files, .n_files = 2, .max_len = 512};
  vkft_dataset *ds;
  if (vkft_dataset_load(&d, &ds)) {
    CHECKF(0, "%s", vkft_error_message());
    return;
  }
  uint32_t *train, *eval;
  size_t n_train, n_eval;
  CHECK(vkft_dataset_split(ds, 0.1, 3, &train, &n_train, &eval, &n_eval) == VKFT_OK);
  CHECK(n_eval == 109 && n_train + n_eval == ds->n_ok);
  vkft_packer *p;
  CHECK(vkft_packer_create(ds, train, n_train, &(vkft_packer_desc){.rows = 4, .seed = 11}, &p) ==
        VKFT_OK);
  /* Epoch 0: every drawn example appears once per row position; a row's sequences restart
   * positions at 0, seq ids count up, labels match the example's labels. */
  size_t nb = 0;
  CHECK(vkft_packer_epoch_batches(p, 0, &nb) == VKFT_OK);
  CHECK(nb > 0);
  size_t seqs_a = 0, seqs_b = 0, tokens = 0;
  vkft_batch batch = {0}, again = {0};
  for (size_t i = 0; i < nb; i++) {
    if (vkft_packer_batch(p, 0, i, &batch)) {
      CHECKF(0, "%s", vkft_error_message());
      break;
    }
    CHECK(batch.T == 512 && batch.B >= 1 && batch.B <= 4);
    CHECK(batch.n_trained > 0);
    for (int r = 0; r < batch.B; r++) {
      const int32_t *pos = batch.positions + r * batch.T, *sid = batch.seq_ids + r * batch.T;
      for (int t = 0; t < batch.T; t++) {
        if (sid[t] < 0) {
          CHECK(batch.labels[r * batch.T + t] == VKFT_LABEL_IGNORE);
          continue;
        }
        if (t == 0 || sid[t] != sid[t - 1]) {
          CHECK(pos[t] == 0 && (t == 0 || sid[t] == sid[t - 1] + 1));
          CHECK(batch.labels[r * batch.T + t] == VKFT_LABEL_IGNORE);
        } else {
          CHECK(pos[t] == pos[t - 1] + 1);
        }
      }
    }
    tokens += batch.n_tokens;
    (void)seqs_a, (void)seqs_b;
  }
  double fill = 0;
  CHECK(vkft_packer_fill(p, 0, &fill) == VKFT_OK && fill > 0.9);
  /* Determinism: a fresh packer (a resumed run) gives the same batch for (seed, epoch, i). */
  vkft_packer *q;
  CHECK(vkft_packer_create(ds, train, n_train, &(vkft_packer_desc){.rows = 4, .seed = 11}, &q) ==
        VKFT_OK);
  size_t mid = nb / 2;
  CHECK(vkft_packer_batch(p, 1, mid, &batch) == VKFT_OK);
  CHECK(vkft_packer_batch(q, 1, mid, &again) == VKFT_OK);
  CHECK(batch.B == again.B && batch.T == again.T &&
        !memcmp(batch.input_ids, again.input_ids, (size_t)batch.B * batch.T * 4) &&
        !memcmp(batch.labels, again.labels, (size_t)batch.B * batch.T * 4));
  /* Another epoch is another order. */
  CHECK(vkft_packer_batch(q, 0, mid, &again) == VKFT_OK);
  CHECK(memcmp(batch.input_ids, again.input_ids, (size_t)batch.B * batch.T * 4) != 0);
  CHECK(vkft_packer_batch(q, 0, 100000, &again) == VKFT_ERR);
  vkft_packer_free(q);
  vkft_packer_free(p);
  /* Without packing: one example per row, padded to the batch's longest, lengths grouped. */
  CHECK(vkft_packer_create(ds, eval, n_eval,
                           &(vkft_packer_desc){.rows = 8, .packing = -1, .no_shuffle = 1},
                           &p) == VKFT_OK);
  size_t seqs = 0;
  size_t batches = 0;
  CHECK(vkft_packer_epoch_batches(p, 0, &batches) == VKFT_OK);
  for (size_t i = 0; i < batches; i++) {
    CHECK(vkft_packer_batch(p, 0, i, &batch) == VKFT_OK);
    CHECK(batch.n_sequences == (size_t)batch.B && batch.T <= 512);
    seqs += batch.n_sequences;
  }
  CHECK(seqs == n_eval);
  vkft_packer_free(p);
  vkft_batch_free(&batch);
  vkft_batch_free(&again);
  /* A batch whose every label is masked is an error, not a zero loss: rows of 3 tokens hold
   * only the chat header of each example. */
  CHECK(tokens > 0);
  CHECK(vkft_packer_create(ds, eval, n_eval, &(vkft_packer_desc){.rows = 1, .max_len = 3}, &p) ==
        VKFT_OK);
  CHECK_ERR(vkft_packer_batch(p, 0, 0, &batch), VKFT_ERR_INPUT, "no trained token");
  vkft_packer_free(p);
  vkft_batch_free(&batch);
  free(train);
  free(eval);
  vkft_dataset_free(ds);
  /* Weights: 0.5 of alpaca's 999 and 2 x identity's 91 per epoch. */
  ds = NULL;
  d.max_len = 64;
  CHECK(vkft_dataset_load(&d, &ds) == VKFT_OK);
  if (ds) {
    CHECK(vkft_packer_create(ds, NULL, 0, &(vkft_packer_desc){.rows = 1, .packing = -1, .seed = 5},
                             &p) == VKFT_OK);
    size_t from[2] = {0, 0};
    size_t n0 = 0;
    CHECK(vkft_packer_epoch_batches(p, 0, &n0) == VKFT_OK);
    for (size_t i = 0; i < n0; i++)
      if (vkft_packer_batch(p, 0, i, &batch) == VKFT_OK) {
        /* identify the file by looking the row up among the examples */
        for (size_t k = 0; k < ds->n_examples; k++) {
          const vkft_example *ex = &ds->examples[k];
          if (ex->status == VKFT_EXAMPLE_OK && ex->len == (uint32_t)batch.n_tokens &&
              !memcmp(ex->input_ids, batch.input_ids, ex->len * 4)) {
            from[ex->file]++;
            break;
          }
        }
      }
    size_t ok0 = 0, ok1 = 0;
    for (size_t k = 0; k < ds->n_examples; k++)
      if (ds->examples[k].status == VKFT_EXAMPLE_OK) {
        if (ds->examples[k].file)
          ok1++;
        else
          ok0++;
      }
    CHECKF(from[0] == (size_t)(ok0 * 0.5 + 0.5) && from[1] == 2 * ok1, "%zu %zu of %zu %zu",
           from[0], from[1], ok0, ok1);
    vkft_packer_free(p);
    vkft_batch_free(&batch);
  }
  vkft_dataset_free(ds);
}

/* ---- dedup and filter ---- */

static void test_dedup_filter(void) {
  const char *texts[] = {
      "The quick brown fox jumps over the lazy dog near the river bank today.",
      "The quick brown fox jumps over the lazy dog near the river bank today.",  /* exact */
      "The quick brown fox jumped over the lazy dog near the river bank today.", /* near */
      "A completely different sentence about the weather in spring and flowers.",
      "数据去重是一个重要的步骤，可以提高训练数据的质量和多样性。",
      "数据去重是一个重要的步骤，可以提高训练数据的质量和多样性！", /* near, CJK */
  };
  enum { N = 6 };
  uint32_t *seqs[N];
  size_t lens[N];
  for (int i = 0; i < N; i++) vkft_utf8_codepoints(texts[i], strlen(texts[i]), &seqs[i], &lens[i]);
  unsigned char keep[N];
  vkft_dedup_pair *pairs;
  size_t n_pairs;
  CHECK(vkft_dedup((const uint32_t *const *)seqs, lens, N, &(vkft_dedup_desc){.threshold = 0.7},
                   keep, &pairs, &n_pairs) == VKFT_OK);
  CHECKF(keep[0] && !keep[1] && !keep[2] && keep[3] && keep[4] && !keep[5], "keep %d%d%d%d%d%d",
         keep[0], keep[1], keep[2], keep[3], keep[4], keep[5]);
  CHECK(n_pairs == 3 && pairs[0].removed == 1 && pairs[0].kept == 0 && pairs[0].exact);
  free(pairs);
  CHECK(vkft_dedup_exact((const uint32_t *const *)seqs, lens, N, keep, &pairs, &n_pairs) ==
        VKFT_OK);
  CHECK(n_pairs == 1 && keep[2]);
  free(pairs);
  for (int i = 0; i < N; i++) free(seqs[i]);
  /* Filter rules on examples. */
  vkft_filter_desc fd = {.max_repeated_lines = 0.5};
  vkft_example ex = {.status = VKFT_EXAMPLE_OK, .prompt_text = "Hi", .reply_text = "  \n "};
  const char *reason;
  CHECK(!vkft_filter_example(&fd, &ex, &reason) && !strcmp(reason, "empty reply"));
  ex.reply_text = "I'm sorry, but as an AI, I don't have the capability to do that.";
  CHECK(!vkft_filter_example(&fd, &ex, &reason) && !strcmp(reason, "refusal"));
  ex.reply_text = "a\nb\na\na\na\na";
  CHECK(!vkft_filter_example(&fd, &ex, &reason) && !strcmp(reason, "repeated lines"));
  ex.reply_text = "Bonjour, voici la réponse.";
  CHECK(vkft_filter_example(&fd, &ex, &reason));
  fd.script = "cjk";
  CHECK(!vkft_filter_example(&fd, &ex, &reason) && !strcmp(reason, "other script"));
  fd.script = "latin";
  fd.min_reply_chars = 100;
  CHECK(!vkft_filter_example(&fd, &ex, &reason) && !strcmp(reason, "reply too short"));
}

int main(void) {
  /* every test here reads the shared tokenizers or datasets */
  if (!check_need_data("test_data")) return check_summary();
  test_shared_datasets();
  check_vector_file("tokenizers/qwen3", "qwen3.chat.jsonl", "<|im_end|>");
  check_vector_file("tokenizers/llama3", "llama3.chat.jsonl", "<|eot_id|>");
  test_qwen3_rewritten_turns();
  test_text_rules();
  test_truncation();
  test_bad_records();
  test_fuzz();
  test_packing();
  test_dedup_filter();
  return check_summary();
}
