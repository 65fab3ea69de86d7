/* Preference-data tests on the shared examples: every format detected and parsed (the four
 * chat formats give the same pairs id for id); chat pairs token-exact on Qwen3 and Llama 3
 * against hand-written renders and known special-token ids; the text rules on stories260K (BOS,
 * EOS appended once) and their ORPO twin; the 38 shared chat vectors as pairs (DPO's prompt_ids
 * and prompt + chosen ids exactly, one prompt mismatch); implicit-prompt extraction on strings
 * (space rule, prefix quirk, UTF-8) and messages; ORPO's merged prompt token; both truncation
 * rules; the batcher's layout (chosen then rejected, sequence ids, prompt labels masked, packing)
 * and its determinism; file weights; the split; pre-tokenized pairs; bad records with file:line.
 * About 0.6 s. */
#include "vkft/pref.h"

#include "check.h"
#include "vkft/error.h"
#include "vkft/platform.h"
#include "vkft/tokenizer.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Writes text to a scratch file in the current folder and returns its path; main removes the
 * files at the end. */
static char scratch_paths[32][64];
static int n_scratch;

static const char *scratch(const char *name, const char *text) {
  char path[64];
  snprintf(path, sizeof path, "test_pref_%s", name);
  int k = 0;
  while (k < n_scratch && strcmp(scratch_paths[k], path)) k++;
  if (k == n_scratch && n_scratch < 32) snprintf(scratch_paths[n_scratch++], 64, "%s", path);
  if (k == 32) return NULL;
  FILE *f = vkft_fopen(scratch_paths[k], "wb");
  if (!f) return NULL;
  fwrite(text, 1, strlen(text), f);
  fclose(f);
  return scratch_paths[k];
}

typedef struct opts {
  const char *template_name;
  vkft_pref_style style;
  int max_len, max_prompt_len, max_completion_len, strict;
} opts;

/* Each tokenizer is loaded once (the big ones take a tenth of a second) and lent to the loads. */
static struct {
  const char *model;
  vkft_tokenizer *tok;
} tokenizers[4];

static vkft_tokenizer *tokenizer_for(const char *model) {
  int k = 0;
  while (k < 4 && tokenizers[k].model && strcmp(tokenizers[k].model, model)) k++;
  if (k == 4) return NULL;
  if (!tokenizers[k].model && vkft_tokenizer_load(check_path(model), &tokenizers[k].tok) == 0)
    tokenizers[k].model = model;
  return tokenizers[k].tok;
}

/* model: a folder under the shared data. */
static vkft_pref_dataset *load(const char *model, const char *path, const opts *o) {
  char model_dir[512];
  snprintf(model_dir, sizeof model_dir, "%s", check_path(model));
  vkft_data_file_desc file = {.path = path};
  opts none = {0};
  if (!o) o = &none;
  vkft_pref_desc d = {.model_dir = model_dir,
                      .files = &file,
                      .n_files = 1,
                      .style = o->style,
                      .template_name = o->template_name,
                      .max_len = o->max_len,
                      .max_prompt_len = o->max_prompt_len,
                      .max_completion_len = o->max_completion_len,
                      .strict = o->strict,
                      .threads = 2,
                      .tokenizer = tokenizer_for(model)};
  vkft_pref_dataset *ds = NULL;
  if (vkft_pref_load(&d, &ds)) {
    fprintf(stderr, "  load %s with %s: %s\n", path, model, vkft_error_message());
    return NULL;
  }
  return ds;
}

static int ids_equal(const int32_t *a, uint32_t na, const int32_t *b, size_t nb) {
  return na == nb && (na == 0 || memcmp(a, b, na * sizeof *a) == 0);
}

/* ids == tokenizer(text) (special: with the post-processor's tokens). */
static int ids_are(const vkft_tokenizer *tok, const int32_t *ids, uint32_t n, const char *text,
                   int special) {
  int32_t *want = NULL;
  size_t nw = 0;
  if (vkft_tokenizer_encode(tok, text, strlen(text), special, &want, &nw)) return 0;
  int ok = ids_equal(ids, n, want, nw);
  free(want);
  return ok;
}

static char *decode(const vkft_tokenizer *tok, const int32_t *ids, uint32_t n) {
  char *text = NULL;
  size_t len;
  if (vkft_tokenizer_decode(tok, ids, n, 0, &text, &len)) return NULL;
  return text;
}

static int same_pair(const vkft_pref_example *a, const vkft_pref_example *b) {
  return ids_equal(a->prompt_ids, a->prompt_len, b->prompt_ids, b->prompt_len) &&
         ids_equal(a->chosen_ids, a->chosen_len, b->chosen_ids, b->chosen_len) &&
         ids_equal(a->rejected_ids, a->rejected_len, b->rejected_ids, b->rejected_len) &&
         a->chosen_masked == b->chosen_masked && a->rejected_masked == b->rejected_masked;
}

/* ---- formats ---- */

static const struct {
  const char *file;
  vkft_pref_format format;
  size_t pairs;
} shared_files[] = {
    {"pref/pref_formats/trl_conversational.jsonl", VKFT_PREF_FORMAT_CONVERSATIONAL, 4},
    {"pref/pref_formats/trl_implicit_prompt.jsonl", VKFT_PREF_FORMAT_IMPLICIT, 4},
    {"pref/pref_formats/llamafactory_sharegpt_pref.json", VKFT_PREF_FORMAT_SHAREGPT, 4},
    {"pref/pref_formats/llamafactory_alpaca_pref.json", VKFT_PREF_FORMAT_ALPACA, 4},
    {"pref/pref_formats/trl_standard_implicit.jsonl", VKFT_PREF_FORMAT_IMPLICIT, 4},
    {"pref/stories_pref.jsonl", VKFT_PREF_FORMAT_STANDARD, 48},
};

/* Every shared file is detected and parsed; the four chat files hold the same four pairs, so
 * they must give the same ids, in both styles and on two templates. */
static void test_formats(void) {
  for (size_t i = 0; i < sizeof shared_files / sizeof shared_files[0]; i++) {
    vkft_pref_format f = VKFT_PREF_FORMAT_AUTO;
    CHECK(vkft_pref_detect_file(check_path(shared_files[i].file), &f) == VKFT_OK);
    CHECKF(f == shared_files[i].format, "%s: %s", shared_files[i].file, vkft_pref_format_name(f));
  }
  vkft_pref_format f = VKFT_PREF_FORMAT_STANDARD;
  CHECK(vkft_pref_detect_file(check_path("sft/alpaca_en_demo.json"), &f) == VKFT_OK &&
        f == VKFT_PREF_FORMAT_AUTO); /* SFT data is not preference data */
  static const char *const models[2] = {"tokenizers/qwen3", "tokenizers/llama3"};
  for (int m = 0; m < 2; m++)
    for (int style = 0; style < 2; style++) {
      opts o = {.style = (vkft_pref_style)style};
      vkft_pref_dataset *ds[6];
      for (int i = 0; i < 6; i++) {
        ds[i] = load(models[m], check_path(shared_files[i].file), &o);
        CHECKF(ds[i] && ds[i]->file_formats[0] == shared_files[i].format &&
                   ds[i]->n_ok == shared_files[i].pairs && ds[i]->n_bad == 0,
               "%s %s on %s", vkft_pref_style_name(o.style), shared_files[i].file, models[m]);
      }
      for (int i = 1; i < 4; i++)
        for (size_t r = 0; ds[0] && ds[i] && r < 4; r++)
          CHECKF(same_pair(&ds[0]->examples[r], &ds[i]->examples[r]), "%s record %zu (%s, %s)",
                 shared_files[i].file, r, models[m], vkft_pref_style_name(o.style));
      for (int i = 0; i < 6; i++) vkft_pref_free(ds[i]);
    }
}

/* ---- chat pairs, token for token ---- */

static const char story1[] = "Once upon a time, there was a little robot named Zip. Zip had a "
                             "shiny blue hat. Every morning, Zip waved to the birds and said, "
                             "\"Hello!\"";

static void test_qwen3_chat(void) {
  const char *path = check_path("pref/pref_formats/trl_conversational.jsonl");
  vkft_pref_dataset *dpo = load("tokenizers/qwen3", path, NULL);
  vkft_pref_dataset *orpo = load("tokenizers/qwen3", path, &(opts){.style = VKFT_PREF_ORPO});
  CHECK(dpo && orpo && dpo->n_ok == 4 && orpo->n_ok == 4);
  if (!dpo || !orpo || dpo->n_ok != 4 || orpo->n_ok != 4) goto done;
  const vkft_tokenizer *tok = dpo->tokenizer;
  const vkft_pref_example *ex = &dpo->examples[0];
  /* TRL: the prompt rendered with the generation prompt; the completion is everything the
   * template writes after it: Qwen3's empty think block, the reply, <|im_end|> and its "\n" */
  CHECK(ids_are(tok, ex->prompt_ids, ex->prompt_len,
                "<|im_start|>user\nTell me a story about a robot.<|im_end|>\n"
                "<|im_start|>assistant\n",
                0));
  char want[512];
  snprintf(want, sizeof want, "<think>\n\n</think>\n\n%s<|im_end|>\n", story1);
  CHECK(ids_are(tok, ex->chosen_ids, ex->chosen_len, want, 0));
  CHECK(ex->prompt_ids[0] == 151644 && ex->prompt_len == 16);        /* <|im_start|>, no BOS */
  CHECK(ex->chosen_ids[0] == 151667 && ex->chosen_ids[2] == 151668); /* <think> \n\n </think> */
  CHECK(ex->chosen_ids[ex->chosen_len - 2] == 151645 && ex->chosen_ids[ex->chosen_len - 1] == 198);
  CHECK(ex->chosen_trained == ex->chosen_len && ex->chosen_masked == 0 && !ex->prompt_mismatch);
  /* multi-turn (record 4): the earlier reply is prompt, closed by the template */
  const vkft_pref_example *mt = &dpo->examples[3];
  CHECK(ids_are(tok, mt->prompt_ids, mt->prompt_len,
                "<|im_start|>user\nWho is Zip?<|im_end|>\n<|im_start|>assistant\nZip is a little "
                "robot with a shiny blue hat.<|im_end|>\n<|im_start|>user\nWhat does Zip like to "
                "do?<|im_end|>\n<|im_start|>assistant\n",
                0));
  CHECK(ids_are(tok, mt->rejected_ids, mt->rejected_len,
                "<think>\n\n</think>\n\nZip likes to play in the<|im_end|>\n", 0));
  /* ORPO: the same text split, then an EOS after the completion's last token ("\n") */
  for (int r = 0; r < 4; r++) {
    const vkft_pref_example *a = &dpo->examples[r], *b = &orpo->examples[r];
    CHECK(ids_equal(a->prompt_ids, a->prompt_len, b->prompt_ids, b->prompt_len));
    CHECK(b->chosen_len == a->chosen_len + 1 && b->chosen_ids[a->chosen_len] == 151645 &&
          ids_equal(a->chosen_ids, a->chosen_len, b->chosen_ids, a->chosen_len));
    CHECK(b->rejected_len == a->rejected_len + 1 && b->rejected_ids[a->rejected_len] == 151645);
  }
done:
  vkft_pref_free(dpo);
  vkft_pref_free(orpo);
}

static void test_llama3_chat(void) {
  const char *path = check_path("pref/pref_formats/llamafactory_sharegpt_pref.json");
  vkft_pref_dataset *dpo = load("tokenizers/llama3", path, NULL);
  vkft_pref_dataset *orpo = load("tokenizers/llama3", path, &(opts){.style = VKFT_PREF_ORPO});
  CHECK(dpo && orpo && dpo->n_ok == 4 && orpo->n_ok == 4);
  if (!dpo || !orpo || dpo->n_ok != 4 || orpo->n_ok != 4) goto done;
  const vkft_tokenizer *tok = dpo->tokenizer;
  const vkft_pref_example *ex = &dpo->examples[1]; /* system + user */
  CHECK(ids_are(tok, ex->prompt_ids, ex->prompt_len,
                "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are a "
                "storyteller for small children.<|eot_id|><|start_header_id|>user<|end_header_id|>"
                "\n\nWrite a short story about Zip at the beach.<|eot_id|><|start_header_id|>"
                "assistant<|end_header_id|>\n\n",
                0));
  CHECK(ex->prompt_ids[0] == 128000 && ex->prompt_ids[1] == 128006); /* the template's BOS */
  const int32_t *end = ex->prompt_ids + ex->prompt_len - 4;
  CHECK(end[0] == 128006 && end[1] == 78191 && end[2] == 128007 && end[3] == 271);
  CHECK(ids_are(tok, ex->rejected_ids, ex->rejected_len,
                "Zip went to the beach. Zip went to the beach. Zip went to the beach. Zip went to "
                "the beach.<|eot_id|>",
                0));
  CHECK(ex->rejected_ids[ex->rejected_len - 1] == 128009);
  /* ORPO: the template's BOS and <|eot_id|> (the EOS) are there already: nothing added */
  for (int r = 0; r < 4; r++) CHECK(same_pair(&dpo->examples[r], &orpo->examples[r]));
done:
  vkft_pref_free(dpo);
  vkft_pref_free(orpo);
}

/* The shared chat vectors hold, per conversation, the render of messages[:-1] with the
 * generation prompt and its ids (DPO's prompt_ids) and the full render's ids (its
 * prompt_chosen_ids), made with Jinja2 and HF tokenizers. As a pair whose chosen and rejected
 * are the last message, every vector must give exactly those ids, including the one where the
 * prompt's ids are not a prefix of the full ids (Qwen2.5's template, whitespace content). */
static void test_chat_vectors(void) {
  static const char *const sets[2][2] = {{"vectors/qwen3.chat.jsonl", "tokenizers/qwen3"},
                                         {"vectors/llama3.chat.jsonl", "tokenizers/llama3"}};
  int tested = 0, mismatches = 0;
  for (int v = 0; v < 2; v++) {
    char *data;
    size_t size;
    if (vkft_file_read(check_path(sets[v][0]), &data, &size)) {
      CHECK(0);
      continue;
    }
    for (char *line = data, *next; line && *line; line = next) {
      next = strchr(line, '\n');
      if (next) *next++ = 0;
      cJSON *r = cJSON_Parse(line);
      const cJSON *want_prompt = cJSON_GetObjectItem(r, "prompt_ids");
      const cJSON *want_full = cJSON_GetObjectItem(r, "ids");
      const cJSON *is_prefix = cJSON_GetObjectItem(r, "prompt_ids_is_prefix");
      const char *tmpl = cJSON_GetStringValue(cJSON_GetObjectItem(r, "template"));
      if (!want_prompt || !want_full || !tmpl) {
        cJSON_Delete(r);
        continue;
      }
      cJSON *rec = cJSON_CreateObject(),
            *prompt = cJSON_Duplicate(cJSON_GetObjectItem(r, "messages"), 1);
      cJSON *last = cJSON_DetachItemFromArray(prompt, cJSON_GetArraySize(prompt) - 1);
      cJSON *chosen = cJSON_CreateArray(), *rejected = cJSON_CreateArray();
      cJSON_AddItemToArray(rejected, cJSON_Duplicate(last, 1));
      cJSON_AddItemToArray(chosen, last);
      cJSON_AddItemToObject(rec, "prompt", prompt);
      cJSON_AddItemToObject(rec, "chosen", chosen);
      cJSON_AddItemToObject(rec, "rejected", rejected);
      if (cJSON_GetObjectItem(r, "tools"))
        cJSON_AddItemToObject(rec, "tools", cJSON_Duplicate(cJSON_GetObjectItem(r, "tools"), 1));
      if (cJSON_GetObjectItem(r, "kwargs"))
        cJSON_AddItemToObject(rec, "chat_template_kwargs",
                              cJSON_Duplicate(cJSON_GetObjectItem(r, "kwargs"), 1));
      char *json = cJSON_PrintUnformatted(rec), tmpl_path[512];
      snprintf(tmpl_path, sizeof tmpl_path, "tokenizers/chat_templates/%s", tmpl);
      opts o = {.template_name =
                    strcmp(tmpl, "tokenizer_config.json") ? check_path(tmpl_path) : NULL};
      vkft_pref_dataset *ds = load(sets[v][1], scratch("vector.jsonl", json), &o);
      const char *id = cJSON_GetStringValue(cJSON_GetObjectItem(r, "id"));
      CHECKF(ds && ds->n_ok == 1, "%s %s (%s)", sets[v][0], id, tmpl);
      if (ds && ds->n_ok == 1) {
        const vkft_pref_example *ex = &ds->examples[0];
        size_t np = (size_t)cJSON_GetArraySize(want_prompt),
               nf = (size_t)cJSON_GetArraySize(want_full);
        int ok = ex->prompt_len == np && ex->prompt_len + ex->chosen_len == nf;
        for (size_t k = 0; ok && k < np; k++)
          ok = ex->prompt_ids[k] == cJSON_GetArrayItem(want_prompt, (int)k)->valueint;
        for (size_t k = np; ok && k < nf; k++)
          ok = ex->chosen_ids[k - np] == cJSON_GetArrayItem(want_full, (int)k)->valueint;
        CHECKF(ok, "%s %s (%s): ids", sets[v][0], id, tmpl);
        CHECKF(ex->prompt_mismatch == !cJSON_IsTrue(is_prefix), "%s %s: mismatch flag", sets[v][0],
               id);
        CHECK(same_pair(ex, ex) && ex->chosen_len == ex->rejected_len);
        mismatches += ex->prompt_mismatch;
        tested++;
      }
      vkft_pref_free(ds);
      free(json);
      cJSON_Delete(rec);
      cJSON_Delete(r);
    }
    free(data);
  }
  CHECKF(tested == 38 && mismatches == 1, "%d vectors, %d mismatches", tested, mismatches);
}

/* ---- text rules ---- */

static void test_text_rules(void) {
  const char *path = check_path("pref/stories_pref.jsonl");
  vkft_pref_dataset *dpo = load("models/stories260K", path, NULL);
  vkft_pref_dataset *orpo = load("models/stories260K", path, &(opts){.style = VKFT_PREF_ORPO});
  CHECK(dpo && orpo && dpo->n_ok == 48 && dpo->n_prompt_mismatch == 0 && dpo->max_len == 512);
  if (!dpo || !orpo || dpo->n_ok != 48 || orpo->n_ok != 48) goto done;
  const vkft_tokenizer *tok = dpo->tokenizer;
  /* record 1: prompt with special tokens (the BOS); prompt + chosen + "</s>" likewise */
  const vkft_pref_example *ex = &dpo->examples[0];
  CHECK(ids_are(tok, ex->prompt_ids, ex->prompt_len, "Once upon a time,", 1));
  CHECK(ex->prompt_ids[0] == 1 && ex->chosen_ids[ex->chosen_len - 1] == 2);
  int32_t seq[1024];
  uint32_t n = vkft_pref_sequence(ex, 0, seq, NULL);
  CHECK(ids_are(tok, seq, n,
                "Once upon a time, there was a little robot named Zip. Anna was sad because she "
                "lost her kite. Zip looked under the bed and found it. Anna smiled and gave Zip a "
                "big hug.</s>",
                1)); /* the chosen ids continue the prompt's exactly */
  /* ORPO (no special tokens, BOS and EOS added when missing) gives the same ids here */
  for (int r = 0; r < 48; r++)
    CHECKF(same_pair(&dpo->examples[r], &orpo->examples[r]), "stories record %d", r + 1);
done:
  vkft_pref_free(dpo);
  vkft_pref_free(orpo);
  /* the EOS text is appended once: not after a completion that ends with it */
  vkft_pref_dataset *ds =
      load("models/stories260K",
           scratch("eos.jsonl", "{\"prompt\": \"Zip\", \"chosen\": \" ran.</s>\", \"rejected\": "
                                "\" sat.\"}\n"),
           NULL);
  CHECK(ds && ds->n_ok == 1);
  if (ds && ds->n_ok == 1) {
    const vkft_pref_example *e = &ds->examples[0];
    CHECK(e->chosen_ids[e->chosen_len - 1] == 2 && e->chosen_ids[e->chosen_len - 2] != 2);
    CHECK(e->rejected_ids[e->rejected_len - 1] == 2 && e->rejected_ids[e->rejected_len - 2] != 2);
  }
  vkft_pref_free(ds);
}

/* ---- implicit prompts ---- */

/* Qwen3 adds no BOS, so the prompt's ids decode to exactly the extracted prompt text. */
static void test_implicit_prompt(void) {
  vkft_pref_dataset *ds =
      load("tokenizers/qwen3", check_path("pref/pref_formats/trl_standard_implicit.jsonl"), NULL);
  static const char *const want[4][2] = {
      {"Once upon a time, there was a little", " robot named Zip."},
      {"One day, Zip went to the farm.", " He fed the hens"},
      {"", "Zip had a shiny"},
      {"The little robot was named Z", NULL}, /* a split inside a word: see below */
  };
  CHECK(ds && ds->n_ok == 4);
  for (int r = 0; ds && r < 4 && ds->n_ok == 4; r++) {
    const vkft_pref_example *ex = &ds->examples[r];
    char *p = decode(ds->tokenizer, ex->prompt_ids, ex->prompt_len);
    char *c = decode(ds->tokenizer, ex->chosen_ids, ex->chosen_len);
    CHECKF(p && !strcmp(p, want[r][0]), "record %d prompt \"%s\"", r + 1, p ? p : "");
    if (want[r][1])
      CHECKF(c && !strncmp(c, want[r][1], strlen(want[r][1])), "record %d chosen \"%s\"", r + 1,
             c ? c : "");
    free(p), free(c);
  }
  /* "Z" + "ip." tokenizes as " Zip" + "." in prompt + chosen: TRL slices by the prompt's length
   * anyway (and warns); vkft counts it */
  CHECK(ds && ds->examples[3].prompt_mismatch && ds->n_prompt_mismatch == 1);
  if (ds && !ds->examples[2].prompt_len) /* an empty prompt: the first token is not trained */
    CHECK(ds->examples[2].chosen_trained == ds->examples[2].chosen_len - 1);
  vkft_pref_free(ds);
  /* one a prefix of the other: Python's loop ends on the last index, the prompt is all but the
   * shorter one's last character; characters, not bytes; the space rule; empty is bad */
  ds = load("tokenizers/qwen3",
            scratch("implicit.jsonl",
                    "{\"chosen\": \"abc\", \"rejected\": \"abcdef\"}\n"
                    "{\"chosen\": \"caf\\u00e9 au lait\", \"rejected\": \"caf\\u00e8 noir\"}\n"
                    "{\"chosen\": \"red hat\", \"rejected\": \"red cap\"}\n"
                    "{\"chosen\": \"\", \"rejected\": \"x\"}\n"),
            NULL);
  static const char *const prompts[3] = {"ab", "caf", "red"};
  CHECK(ds && ds->n_ok == 3 && ds->n_bad == 1);
  for (int r = 0; ds && r < 3; r++) {
    const vkft_pref_example *ex = &ds->examples[r];
    char *p = decode(ds->tokenizer, ex->prompt_ids, ex->prompt_len);
    CHECKF(p && !strcmp(p, prompts[r]), "record %d prompt \"%s\"", r + 1, p ? p : "");
    free(p);
  }
  if (ds) {
    char *c = decode(ds->tokenizer, ds->examples[2].chosen_ids, ds->examples[2].chosen_len);
    CHECKF(c && !strcmp(c, " hat<|im_end|>"), "chosen \"%s\"", c ? c : "");
    free(c);
    CHECK(ds->n_issues == 1 && strstr(ds->issues[0], "test_pref_implicit.jsonl:4: ") &&
          strstr(ds->issues[0], "empty"));
  }
  vkft_pref_free(ds);
  /* messages: the shared run of leading messages (here the first two of three) */
  ds = load("tokenizers/qwen3",
            scratch("implicit_msgs.jsonl",
                    "{\"chosen\": [{\"role\": \"user\", \"content\": \"Hi\"}, {\"role\": "
                    "\"assistant\", \"content\": \"Hello\"}, {\"role\": \"user\", \"content\": "
                    "\"Bye\"}, {\"role\": \"assistant\", \"content\": \"See you\"}], \"rejected\": "
                    "[{\"role\": \"user\", \"content\": \"Hi\"}, {\"content\": \"Hello\", "
                    "\"role\": \"assistant\"}, {\"role\": \"user\", \"content\": \"Bye\"}, "
                    "{\"role\": \"assistant\", \"content\": \"No\"}]}\n"),
            NULL);
  CHECK(ds && ds->n_ok == 1);
  if (ds && ds->n_ok == 1) {
    const vkft_pref_example *ex = &ds->examples[0];
    CHECK(ids_are(ds->tokenizer, ex->prompt_ids, ex->prompt_len,
                  "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello<|im_end|>\n"
                  "<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\n",
                  0));
    CHECK(ids_are(ds->tokenizer, ex->rejected_ids, ex->rejected_len,
                  "<think>\n\n</think>\n\nNo<|im_end|>\n", 0));
  }
  vkft_pref_free(ds);
}

/* ---- ORPO: a prompt token merged with one completion only ---- */

static void test_orpo_merge(void) {
  /* Llama 3 tokenizes " Z" + "ip" as " Zip" but " Z" + " and" as " Z", " and": the chosen
   * prompt loses its last token to the completion, the rejected keeps it (masked) */
  vkft_pref_dataset *ds =
      load("tokenizers/llama3",
           scratch("merge.jsonl", "{\"prompt\": \"The robot was named Z\", \"chosen\": \"ip.\", "
                                  "\"rejected\": \" and more.\"}\n"),
           &(opts){.style = VKFT_PREF_ORPO});
  CHECK(ds && ds->n_ok == 1);
  if (ds && ds->n_ok == 1) {
    const vkft_pref_example *ex = &ds->examples[0];
    CHECK(ids_are(ds->tokenizer, ex->prompt_ids, ex->prompt_len,
                  "<|begin_of_text|>The robot was named", 0));
    CHECK(ids_are(ds->tokenizer, ex->chosen_ids, ex->chosen_len, " Zip.<|eot_id|>", 0));
    CHECK(ids_are(ds->tokenizer, ex->rejected_ids, ex->rejected_len, " Z and more.<|eot_id|>", 0));
    CHECK(ex->chosen_masked == 0 && ex->rejected_masked == 1);
    int32_t ids[64], labels[64];
    uint32_t n = vkft_pref_sequence(ex, 1, ids, labels);
    CHECK(n == ex->prompt_len + ex->rejected_len && labels[ex->prompt_len] == VKFT_LABEL_IGNORE &&
          labels[ex->prompt_len + 1] == ids[ex->prompt_len + 1]);
    CHECK(ex->rejected_trained == ex->rejected_len - 1 && ex->chosen_trained == ex->chosen_len);
  }
  vkft_pref_free(ds);
}

/* ---- truncation ---- */

static void test_truncation(void) {
  const char *path = check_path("pref/stories_pref.jsonl");
  vkft_pref_dataset *full = load("models/stories260K", path, NULL);
  vkft_pref_dataset *cut = load("models/stories260K", path, &(opts){.max_len = 20});
  vkft_pref_dataset *old =
      load("models/stories260K", path, &(opts){.max_prompt_len = 3, .max_completion_len = 5});
  CHECK(full && cut && old && full->n_truncated == 0);
  if (!full || !cut || !old) goto done;
  size_t dropped = 0;
  for (size_t i = 0; i < 48; i++) {
    const vkft_pref_example *a = &full->examples[i], *b = &cut->examples[i], *c = &old->examples[i];
    /* keep_start on prompt + completion; a prompt of max_len tokens or more drops the pair */
    if (a->prompt_len >= 20) {
      CHECK(b->status == VKFT_EXAMPLE_EMPTY);
      dropped++;
      continue;
    }
    CHECK(b->status == VKFT_EXAMPLE_OK && b->truncated);
    CHECK(b->prompt_len == a->prompt_len && b->chosen_len == 20 - a->prompt_len &&
          b->rejected_len == 20 - a->prompt_len);
    CHECK(ids_equal(b->chosen_ids, b->chosen_len, a->chosen_ids, b->chosen_len));
    CHECK(b->chosen_full_len == a->chosen_len);
    /* TRL <= 0.28: the prompt keeps its end, each completion its start */
    uint32_t np = a->prompt_len < 3 ? a->prompt_len : 3;
    CHECK(c->prompt_len == np &&
          ids_equal(c->prompt_ids, np, a->prompt_ids + a->prompt_len - np, np));
    CHECK(c->chosen_len == 5 && ids_equal(c->chosen_ids, 5, a->chosen_ids, 5));
  }
  CHECK(dropped > 0 && cut->n_empty == dropped && cut->n_ok == 48 - dropped);
  CHECK(cut->n_truncated == 48 - dropped && old->n_truncated == 48);
done:
  vkft_pref_free(full);
  vkft_pref_free(cut);
  vkft_pref_free(old);
}

/* ---- batches ---- */

/* Checks a batch against the pairs it names: sequence s is prompt + chosen of pair s, then
 * prompt + rejected of pair s - N, where seq_row/seq_start say; labels masked on the prompt. */
static void check_batch(const vkft_pref_dataset *ds, const vkft_pref_batch *b) {
  int N = b->n_pairs, T = b->tokens.T;
  size_t tokens = 0, trained = 0;
  int32_t ids[1024], labels[1024];
  for (int s = 0; s < 2 * N; s++) {
    const vkft_pref_example *ex = &ds->examples[b->pair_example[s % N]];
    uint32_t n = vkft_pref_sequence(ex, s >= N, ids, labels);
    CHECK((int32_t)n == b->seq_len[s]);
    size_t at = (size_t)b->seq_row[s] * (size_t)T + (size_t)b->seq_start[s];
    CHECK(b->seq_start[s] + b->seq_len[s] <= T && b->seq_row[s] < b->tokens.B);
    int ok = 1;
    for (uint32_t k = 0; k < n; k++) {
      ok &= b->tokens.input_ids[at + k] == ids[k] && b->tokens.labels[at + k] == labels[k];
      ok &= b->tokens.positions[at + k] == (int32_t)k && b->tokens.seq_ids[at + k] == s;
      ok &= k >= ex->prompt_len || labels[k] == VKFT_LABEL_IGNORE;
    }
    CHECKF(ok, "sequence %d", s);
    CHECK(b->seq_trained[s] == (int32_t)(s >= N ? ex->rejected_trained : ex->chosen_trained));
    tokens += n;
    trained += (size_t)b->seq_trained[s];
  }
  size_t pad = 0;
  for (int k = 0; k < b->tokens.B * T; k++)
    pad += b->tokens.seq_ids[k] == -1 && b->tokens.labels[k] == VKFT_LABEL_IGNORE &&
           b->tokens.input_ids[k] == ds->pad_id;
  CHECK(tokens == b->tokens.n_tokens && trained == b->tokens.n_trained &&
        pad == (size_t)b->tokens.B * T - tokens && b->tokens.n_sequences == (size_t)2 * N);
}

static void test_batches(void) {
  vkft_pref_dataset *ds = load("models/stories260K", check_path("pref/stories_pref.jsonl"), NULL);
  CHECK(ds && ds->n_ok == 48);
  if (!ds || ds->n_ok != 48) {
    vkft_pref_free(ds);
    return;
  }
  for (int pack = 0; pack < 2; pack++) {
    vkft_pref_batcher_desc bd = {.pairs = 5, .pack = pack, .seed = 3};
    vkft_pref_batcher *a, *b;
    CHECK(vkft_pref_batcher_create(ds, NULL, 0, &bd, &a) == VKFT_OK);
    CHECK(vkft_pref_batcher_create(ds, NULL, 0, &bd, &b) == VKFT_OK);
    vkft_pref_batch x = {0}, y = {0};
    int seen[48] = {0}, same_order = 1;
    size_t n = 0;
    CHECK(vkft_pref_batcher_epoch_batches(a, 1, &n) == VKFT_OK && n == 10); /* 9 x 5 + 3 */
    for (size_t i = 0; i < n; i++) {
      /* b reads epoch 0 in between: the same (seed, epoch, index) still gives the same batch */
      CHECK(vkft_pref_batcher_batch(b, 0, i % 3, &y) == VKFT_OK);
      CHECK(vkft_pref_batcher_batch(a, 1, i, &x) == VKFT_OK);
      CHECK(vkft_pref_batcher_batch(b, 1, i, &y) == VKFT_OK);
      check_batch(ds, &x);
      CHECK(x.tokens.B == y.tokens.B && x.tokens.T == y.tokens.T && x.n_pairs == y.n_pairs &&
            !memcmp(x.tokens.input_ids, y.tokens.input_ids,
                    (size_t)x.tokens.B * x.tokens.T * sizeof(int32_t)) &&
            !memcmp(x.pair_example, y.pair_example, (size_t)x.n_pairs * sizeof(uint32_t)));
      if (pack)
        CHECK(x.tokens.T == 512 && x.tokens.B < 2 * x.n_pairs); /* short stories share rows */
      else
        CHECK(x.tokens.B == 2 * x.n_pairs && x.seq_row[x.n_pairs] == x.n_pairs);
      for (int p = 0; p < x.n_pairs; p++) {
        seen[x.pair_example[p]]++;
        same_order &= x.pair_example[p] == i * 5 + (size_t)p;
      }
    }
    int once = 1;
    for (int p = 0; p < 48; p++) once &= seen[p] == 1;
    CHECK(once && !same_order); /* every pair once per epoch, shuffled */
    CHECK(vkft_pref_batcher_batch(a, 1, n, &x) == VKFT_ERR); /* past the end */
    /* another epoch, another order */
    CHECK(vkft_pref_batcher_batch(a, 2, 0, &y) == VKFT_OK &&
          vkft_pref_batcher_batch(a, 1, 0, &x) == VKFT_OK);
    CHECK(memcmp(x.pair_example, y.pair_example, 5 * sizeof(uint32_t)) != 0);
    vkft_pref_batch_free(&x);
    vkft_pref_batch_free(&y);
    vkft_pref_batcher_free(a);
    vkft_pref_batcher_free(b);
  }
  /* the split, and eval batches in input order */
  uint32_t *train, *eval;
  size_t n_train, n_eval;
  CHECK(vkft_pref_split(ds, 0.25, 9, &train, &n_train, &eval, &n_eval) == VKFT_OK);
  CHECK(n_train == 36 && n_eval == 12);
  int disjoint = 1;
  for (size_t i = 0; i < n_eval; i++)
    for (size_t k = 0; k < n_train; k++) disjoint &= eval[i] != train[k];
  CHECK(disjoint);
  vkft_pref_batcher *e;
  CHECK(vkft_pref_batcher_create(ds, eval, n_eval,
                                 &(vkft_pref_batcher_desc){.pairs = 4, .no_shuffle = 1},
                                 &e) == VKFT_OK);
  vkft_pref_batch x = {0};
  CHECK(vkft_pref_batcher_batch(e, 0, 0, &x) == VKFT_OK && x.n_pairs == 4);
  int ordered = 1;
  for (int p = 0; p < 4; p++) ordered &= x.pair_example[p] == eval[p];
  CHECK(ordered);
  /* packed rows shorter than a sequence are refused */
  vkft_pref_batcher *small = NULL;
  CHECK(vkft_pref_batcher_create(ds, NULL, 0, &(vkft_pref_batcher_desc){.pack = 1, .max_len = 16},
                                 &small) == VKFT_ERR &&
        !small);
  vkft_pref_batch_free(&x);
  vkft_pref_batcher_free(e);
  free(train), free(eval);
  vkft_pref_free(ds);
}

/* File weights draw pairs as they draw SFT examples: weight 2 = each pair twice an epoch. */
static void test_weights(void) {
  vkft_data_file_desc files[2] = {
      {.path = check_path("pref/stories_pref.jsonl"), .weight = 2},
      {.path = check_path("pref/pref_formats/trl_standard_implicit.jsonl"), .weight = 0.5}};
  vkft_pref_desc d = {.model_dir = check_path("models/stories260K"),
                      .files = files,
                      .n_files = 2,
                      .tokenizer = tokenizer_for("models/stories260K")};
  vkft_pref_dataset *ds = NULL;
  CHECK(vkft_pref_load(&d, &ds) == VKFT_OK && ds->n_ok == 52);
  vkft_pref_batcher *b = NULL;
  if (ds)
    CHECK(vkft_pref_batcher_create(ds, NULL, 0, &(vkft_pref_batcher_desc){.pairs = 8, .seed = 1},
                                   &b) == VKFT_OK);
  size_t n = 0, per_file[2] = {0};
  if (b) CHECK(vkft_pref_batcher_epoch_batches(b, 0, &n) == VKFT_OK && n == 13); /* 98 / 8 */
  vkft_pref_batch x = {0};
  for (size_t i = 0; b && i < n; i++)
    if (vkft_pref_batcher_batch(b, 0, i, &x) == VKFT_OK)
      for (int p = 0; p < x.n_pairs; p++) per_file[ds->examples[x.pair_example[p]].file]++;
  CHECK(per_file[0] == 96 && per_file[1] == 2);
  vkft_pref_batch_free(&x);
  vkft_pref_batcher_free(b);
  vkft_pref_free(ds);
}

/* ---- pre-tokenized pairs and bad records ---- */

static void test_tokenized(void) {
  vkft_pref_dataset *ds =
      load("models/stories260K",
           scratch("tok.jsonl",
                   "{\"prompt_input_ids\": [1, 300], \"chosen_input_ids\": [301, 2], "
                   "\"rejected_input_ids\": [302, 303, 2]}\n"
                   "{\"prompt_input_ids\": [1], \"chosen_input_ids\": [600], "
                   "\"rejected_input_ids\": [2]}\n"
                   "{\"prompt_ids\": [1, 300], \"chosen_ids\": [301, 2], \"rejected_ids\": [302, "
                   "2], \"rejected_masked\": 1}\n"
                   "{\"prompt_input_ids\": [1], \"chosen_input_ids\": [\"x\"], "
                   "\"rejected_input_ids\": [2]}\n"),
           NULL);
  CHECK(ds && ds->file_formats[0] == VKFT_PREF_FORMAT_TOKENIZED && ds->n_ok == 2 && ds->n_bad == 2);
  if (ds && ds->n_examples == 4) {
    const vkft_pref_example *ex = &ds->examples[0];
    CHECK(ex->prompt_len == 2 && ex->chosen_len == 2 && ex->rejected_len == 3 &&
          ex->rejected_ids[1] == 303);
    CHECK(ds->examples[2].rejected_masked == 1 && ds->examples[2].rejected_trained == 1);
    CHECKF(ds->n_issues == 2 && strstr(ds->issues[0], "test_pref_tok.jsonl:2: ") &&
               strstr(ds->issues[0], "600 is outside the vocabulary (512 ids)"),
           "%s", ds->n_issues ? ds->issues[0] : "");
    CHECK(ds->n_issues == 2 &&
          strstr(ds->issues[1], ":4: \"chosen_input_ids\"[0] is not a token id"));
  }
  vkft_pref_free(ds);
}

static void test_bad_records(void) {
  const char *text = "{\"prompt\": \"a\", \"chosen\": \" b\", \"rejected\": \" c\"}\n"
                     "{\"prompt\": \"a\", \"chosen\": \" b\"}\n"
                     "{\"prompt\": \"a\", \"chosen\": 5, \"rejected\": \" c\"}\n"
                     "{\"prompt\": \"a\", \"chosen\": \" b\", \"rejected\": \" c\"} {}\n"
                     "{not json\n"
                     "{\"prompt\": \"d\", \"chosen\": \" e\"}\n";
  const char *path = scratch("bad.jsonl", text);
  vkft_pref_dataset *ds = load("models/stories260K", path, NULL);
  /* the same message twice is one line with a count */
  CHECK(ds && ds->n_examples == 6 && ds->n_ok == 1 && ds->n_bad == 5 && ds->n_issues == 4 &&
        ds->n_issues_total == 5);
  if (ds && ds->n_issues == 4) {
    static const char *const want[4] = {
        "test_pref_bad.jsonl:2: missing field \"rejected\" (and 1 more records with this error)",
        "test_pref_bad.jsonl:3: \"chosen\" must be a string",
        "test_pref_bad.jsonl:4: text after the record's JSON value",
        "test_pref_bad.jsonl:5: not valid JSON"};
    for (int k = 0; k < 4; k++) CHECKF(strstr(ds->issues[k], want[k]), "%s", ds->issues[k]);
  }
  vkft_pref_free(ds);
  /* strict: the first bad record fails the load */
  CHECK(load("models/stories260K", path, &(opts){.strict = 1}) == NULL);
  CHECK(vkft_error_code() == VKFT_ERR_INPUT && strstr(vkft_error_message(), "bad.jsonl:2") &&
        strstr(vkft_error_message(), "strict"));
  /* LLaMA-Factory's checks; ORPO's last prompt role */
  ds = load("tokenizers/qwen3",
            scratch("bad_sharegpt.json",
                    "[{\"conversations\": [{\"from\": \"human\", \"value\": \"a\"}, {\"from\": "
                    "\"gpt\", \"value\": \"b\"}], \"chosen\": {\"from\": \"gpt\", \"value\": "
                    "\"c\"}, \"rejected\": {\"from\": \"gpt\", \"value\": \"d\"}},\n"
                    "{\"conversations\": [{\"from\": \"gpt\", \"value\": \"a\"}], \"chosen\": "
                    "{\"from\": \"gpt\", \"value\": \"c\"}, \"rejected\": {\"from\": \"gpt\", "
                    "\"value\": \"d\"}},\n"
                    "{\"conversations\": [{\"from\": \"human\", \"value\": \"a\"}], \"chosen\": "
                    "{\"from\": \"human\", \"value\": \"c\"}, \"rejected\": {\"from\": \"gpt\", "
                    "\"value\": \"d\"}}]\n"),
            NULL);
  CHECK(ds && ds->n_bad == 3 && ds->n_issues == 3);
  if (ds && ds->n_issues == 3) {
    CHECKF(strstr(ds->issues[0], ":1: record 0: \"conversations\" must have an odd number"), "%s",
           ds->issues[0]);
    CHECKF(strstr(ds->issues[1], ":2: record 1: \"conversations\" turn 0 is \"assistant\""), "%s",
           ds->issues[1]);
    CHECKF(strstr(ds->issues[2], "\"chosen\" must be an assistant message"), "%s", ds->issues[2]);
  }
  vkft_pref_free(ds);
  ds =
      load("tokenizers/qwen3",
           scratch("bad_orpo.jsonl", "{\"prompt\": [{\"role\": \"system\", \"content\": \"s\"}], "
                                     "\"chosen\": [{\"role\": \"assistant\", \"content\": \"a\"}], "
                                     "\"rejected\": [{\"role\": \"assistant\", \"content\": "
                                     "\"b\"}]}\n"),
           &(opts){.style = VKFT_PREF_ORPO});
  CHECK(ds && ds->n_bad == 1 && ds->n_issues == 1 &&
        strstr(ds->issues[0], "the prompt's last message is a \"system\" message"));
  vkft_pref_free(ds);
  /* not preference data at all */
  CHECK(load("models/stories260K", check_path("sft/alpaca_en_demo.json"), NULL) == NULL);
  CHECK(vkft_error_code() == VKFT_ERR_INPUT &&
        strstr(vkft_error_message(), "cannot tell the records' preference format") != NULL);
}

int main(void) {
  if (!check_need_data("test_pref_data")) return check_summary();
  test_formats();
  test_qwen3_chat();
  test_llama3_chat();
  test_chat_vectors();
  test_text_rules();
  test_implicit_prompt();
  test_orpo_merge();
  test_truncation();
  test_batches();
  test_weights();
  test_tokenized();
  test_bad_records();
  for (int k = 0; k < 4; k++) vkft_tokenizer_free(tokenizers[k].tok);
  for (int k = 0; k < n_scratch; k++) remove(scratch_paths[k]);
  return check_summary();
}
