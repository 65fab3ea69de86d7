/* `vkft data synth`: new SFT records written by a model, self-instruct style (Wang et al.
 * 2022, "Self-Instruct", arXiv 2212.10560; as Stanford Alpaca's generate_instruction.py
 * samples seeds). Rounds of:
 *   1. instruction prompts: each shows k seed tasks sampled from --seed-tasks (seeded by
 *      --seed and the prompt's number) in the instruction template, and the model writes one
 *      more task; its first line is cleaned and checked (vkft_synth_parse_instruction);
 *   2. near-duplicates of the seeds, of the records kept so far and of each other are dropped
 *      (MinHash, vkft_dedup, on the instructions lower-cased);
 *   3. answer prompts: the answer template with the instruction, the model answers;
 * until --n records are kept or --max-prompts instruction prompts were tried. Every step is
 * generated in batches by src/gen; a prompt is the user message under the model's chat template
 * when it has one, else plain text. Records are alpaca's {"instruction", "output"} (or
 * {"messages"} with --as messages) with "source": "synthetic" and "synth": the provenance. */
#include "cmd_data.h"
#include "commands.h"
#include "datagen.h"

#include "vkft/datagen.h"
#include "vkft/error.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct synth_opts {
  datagen_opts gen; /* --max-new-tokens: of the answers */
  const char *seeds, *out, *instruction_template, *answer_template;
  int64_t n, max_prompts, seeds_per_prompt, max_instruction_tokens;
  vkft_synth_limits limits;
  double threshold;
  int as_messages, json;
} synth_opts;

/* Why a prompt gave no record, in pipeline order. */
enum {
  R_PROMPT_TOO_LONG, /* the instruction prompt leaves no room in the model's context */
  R_INSTRUCTION,     /* + vkft_synth_reject - 1: empty, truncated, too short, too long, ... */
  R_DUP_SEED = R_INSTRUCTION + VKFT_SYNTH_PUNCTUATION,
  R_DUP,
  R_ANSWER_TOO_LONG,
  R_EMPTY_ANSWER,
  N_REASONS
};

static const char *reason_name(int r) {
  static const char *const names[] = {"prompt too long", "duplicate of a seed", "duplicate",
                                      "answer prompt too long", "empty answer"};
  if (r == R_PROMPT_TOO_LONG) return names[0];
  if (r < R_DUP_SEED) return vkft_synth_reject_name((vkft_synth_reject)(r - R_INSTRUCTION + 1));
  return names[r - R_DUP_SEED + 1];
}

typedef struct synth_run {
  const synth_opts *o;
  gen_session *s;
  vkft_records seeds;
  char **seed_lines; /* each seed's instruction on one line */
  char *instruction_tmpl, *answer_tmpl;
  /* the dedup pool: the seeds, then the kept instructions (lower-cased code points) */
  uint32_t **pool;
  size_t *pool_lens, n_pool, pool_cap;
  char **lines; /* kept records, JSON */
  size_t kept, counts[N_REASONS];
  uint64_t next_prompt;
  int64_t rounds;
  vkft_gen_stats stats;
} synth_run;

#define SYNTH_USAGE                                                                                \
  "usage: vkft data synth --model DIR [--adapter DIR] --seed-tasks FILE --out FILE [--n 100]\n"    \
  "       [--seeds-per-prompt 3] [--seed S] [--temperature 0.7] [--top-p 1] [--max-new-tokens "    \
  "256]\n"                                                                                         \
  "       [--max-instruction-tokens 96] [--min-words 4] [--max-words 150] [--dedup-threshold "     \
  "0.8]\n"                                                                                         \
  "       [--max-prompts 4n] [--max-batch 32] [--as alpaca|messages] [--instruction-template "     \
  "FILE]\n"                                                                                        \
  "       [--answer-template FILE] [--chat-template NAME|FILE] [--json]\n"

static int parse_opts(int argc, char **argv, synth_opts *o) {
  *o = (synth_opts){.gen = datagen_opts_default(),
                    .n = 100,
                    .seeds_per_prompt = 3,
                    .max_instruction_tokens = 96,
                    .limits = {.min_words = 4, .max_words = 150},
                    .threshold = 0.8};
  /* self-instruct samples at 0.7 (bootstrap_instructions.py), Alpaca at top_p 1 */
  o->gen.sampling.temperature = 0.7;
  for (int i = 1; i < argc; i++) {
    const char *opt = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    int64_t x = 0;
    int status = VKFT_OK;
    if (!strcmp(opt, "--json")) {
      o->json = 1;
      continue;
    }
    if (!v) return vkft_error("%s needs a value", opt);
    int known = datagen_parse_option(&o->gen, opt, v);
    if (known == VKFT_ERR) return VKFT_ERR;
    if (known) {
      i++;
      continue;
    }
    if (!strcmp(opt, "--seed-tasks")) {
      o->seeds = v;
    } else if (!strcmp(opt, "--out")) {
      o->out = v;
    } else if (!strcmp(opt, "--instruction-template")) {
      o->instruction_template = v;
    } else if (!strcmp(opt, "--answer-template")) {
      o->answer_template = v;
    } else if (!strcmp(opt, "--as")) {
      if (strcmp(v, "alpaca") && strcmp(v, "messages"))
        return vkft_error("--as: \"%s\" is not alpaca or messages", v);
      o->as_messages = !strcmp(v, "messages");
    } else if (!strcmp(opt, "--n")) {
      status = cli_int_option(opt, v, 1, 10000000, &o->n);
    } else if (!strcmp(opt, "--max-prompts")) {
      status = cli_int_option(opt, v, 1, 100000000, &o->max_prompts);
    } else if (!strcmp(opt, "--seeds-per-prompt")) {
      status = cli_int_option(opt, v, 1, 64, &o->seeds_per_prompt);
    } else if (!strcmp(opt, "--max-instruction-tokens")) {
      status = cli_int_option(opt, v, 1, 1 << 16, &o->max_instruction_tokens);
    } else if (!strcmp(opt, "--min-words") || !strcmp(opt, "--max-words")) {
      status = cli_int_option(opt, v, 1, 100000, &x);
      *(!strcmp(opt, "--min-words") ? &o->limits.min_words : &o->limits.max_words) = (int)x;
    } else if (!strcmp(opt, "--dedup-threshold")) { /* 1: exact duplicates only */
      status = cli_double_option(opt, v, 0.01, 1, &o->threshold);
    } else {
      return vkft_error("unknown option %s", opt);
    }
    if (status != VKFT_OK) return VKFT_ERR;
    i++;
  }
  if (!o->gen.model || !o->seeds || !o->out)
    return vkft_error("needs --model, --seed-tasks and --out");
  if (o->limits.min_words > o->limits.max_words)
    return vkft_error("--min-words is above --max-words");
  if (!o->max_prompts) o->max_prompts = 4 * o->n;
  return VKFT_OK;
}

/* ---- the seed tasks and the dedup pool ---- */

static int pool_add(synth_run *r, const char *text) {
  if (r->n_pool == r->pool_cap) {
    size_t cap = r->pool_cap ? 2 * r->pool_cap : 256;
    uint32_t **p = realloc(r->pool, cap * sizeof *p);
    if (p) r->pool = p;
    size_t *l = realloc(r->pool_lens, cap * sizeof *l);
    if (l) r->pool_lens = l;
    if (!p || !l) return vkft_error_nomem();
    r->pool_cap = cap;
  }
  char *t = vkft_synth_dedup_text(text);
  if (!t) return vkft_error_nomem();
  int status = vkft_utf8_codepoints(t, strlen(t), &r->pool[r->n_pool], &r->pool_lens[r->n_pool]);
  free(t);
  if (status == VKFT_OK) r->n_pool++;
  return status;
}

/* Every seed record needs a non-empty "instruction" string. */
static int read_seeds(synth_run *r) {
  const char *path = r->o->seeds;
  if (vkft_records_read(path, &r->seeds) != VKFT_OK) return VKFT_ERR;
  if (r->seeds.n == 0) return vkft_error_with(VKFT_ERR_INPUT, "%s: no seed tasks", path);
  if (!(r->seed_lines = calloc(r->seeds.n, sizeof *r->seed_lines))) return vkft_error_nomem();
  for (size_t i = 0; i < r->seeds.n; i++) {
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(r->seeds.items[i], "instruction");
    if (!cJSON_IsString(f))
      return vkft_error_with(VKFT_ERR_INPUT, "%s:%u: %s", path, r->seeds.lines[i],
                             f ? "\"instruction\" is not a string" : "no \"instruction\" field");
    if (!(r->seed_lines[i] = vkft_synth_one_line(f->valuestring))) return vkft_error_nomem();
    if (!*r->seed_lines[i])
      return vkft_error_with(VKFT_ERR_INPUT, "%s:%u: \"instruction\" is empty", path,
                             r->seeds.lines[i]);
    if (pool_add(r, f->valuestring) != VKFT_OK) return VKFT_ERR;
  }
  return VKFT_OK;
}

/* A seed's id in the provenance: its "id" (string or number), else its line. */
static cJSON *seed_id(const synth_run *r, size_t i) {
  const cJSON *id = cJSON_GetObjectItemCaseSensitive(r->seeds.items[i], "id");
  if (cJSON_IsString(id) || cJSON_IsNumber(id)) return cJSON_Duplicate(id, 0);
  return cJSON_CreateNumber(r->seeds.lines[i]);
}

/* ---- prompts ---- */

/* The instruction prompt number p with its seed tasks (chosen[0..k)). */
static int instruction_prompt(const synth_run *r, const size_t *chosen, size_t k, char **out) {
  size_t len = 1;
  for (size_t j = 0; j < k; j++) len += strlen(r->seed_lines[chosen[j]]) + 32;
  char *tasks = malloc(len), next[32];
  if (!tasks) return vkft_error_nomem();
  size_t at = 0;
  tasks[0] = 0;
  for (size_t j = 0; j < k; j++)
    at += (size_t)snprintf(tasks + at, len - at, "%sTask %zu: %s", j ? "\n" : "", j + 1,
                           r->seed_lines[chosen[j]]);
  snprintf(next, sizeof next, "%zu", k + 1);
  vkft_template_var vars[] = {{"tasks", tasks}, {"next", next}};
  int status =
      vkft_template_render(r->instruction_tmpl, "instruction template", vars, 2, out, NULL);
  free(tasks);
  return status;
}

static int answer_prompt(const synth_run *r, const char *instruction, char **out) {
  vkft_template_var vars[] = {{"instruction", instruction}};
  return vkft_template_render(r->answer_tmpl, "answer template", vars, 1, out, NULL);
}

/* Positions to plan for: the longest instruction prompt (the template and the k longest seed
 * lines) and the longest answer prompt (the template and an instruction of up to
 * --max-instruction-tokens), each with its new tokens. A prompt the estimate misses is still
 * checked against the plan: it is counted as too long, never run past the context. */
static int plan_positions(synth_run *r, size_t k, int64_t *ctx) {
  const synth_opts *o = r->o;
  enum { SLACK = 8 }; /* a token or two where pieces join, per piece */
  int64_t *seed_tokens = calloc(r->seeds.n, sizeof *seed_tokens), overhead = 0;
  if (!seed_tokens) return vkft_error_nomem();
  int status = VKFT_OK;
  int32_t *ids = NULL; /* reused by every encoding */
  size_t n = 0;
  char label[64];
  size_t n_label = (size_t)snprintf(label, sizeof label, "Task %zu: ", k + 1);
  status = vkft_tokenizer_encode(r->s->tok, label, n_label, 0, &ids, &n);
  int64_t label_tokens = (int64_t)n + 1; /* and the newline */
  for (size_t i = 0; i < r->seeds.n && status == VKFT_OK; i++) {
    const char *t = r->seed_lines[i];
    status = vkft_tokenizer_encode(r->s->tok, t, strlen(t), 0, &ids, &n);
    seed_tokens[i] = label_tokens + (int64_t)n + SLACK;
  }
  free(ids);
  /* the k largest, by k passes (k is small) */
  int64_t tasks = 0;
  for (size_t j = 0; j < k && status == VKFT_OK; j++) {
    size_t best = 0;
    for (size_t i = 1; i < r->seeds.n; i++)
      if (seed_tokens[i] > seed_tokens[best]) best = i;
    tasks += seed_tokens[best];
    seed_tokens[best] = 0;
  }
  free(seed_tokens);
  char *text = NULL;
  vkft_template_var vars[] = {{"tasks", ""}, {"next", "99"}};
  if (status == VKFT_OK)
    status =
        vkft_template_render(r->instruction_tmpl, "instruction template", vars, 2, &text, NULL);
  if (status == VKFT_OK) status = datagen_prompt_tokens(r->s, text, &overhead);
  free(text);
  text = NULL;
  int64_t instruction_ctx = overhead + tasks + SLACK + o->max_instruction_tokens;
  if (status == VKFT_OK) status = answer_prompt(r, "", &text);
  if (status == VKFT_OK) status = datagen_prompt_tokens(r->s, text, &overhead);
  free(text);
  int64_t answer_ctx =
      overhead + o->max_instruction_tokens + SLACK + o->gen.sampling.max_new_tokens;
  *ctx = instruction_ctx > answer_ctx ? instruction_ctx : answer_ctx;
  return status;
}

/* ---- one round ---- */

/* The record of a kept (instruction, answer), as one JSON line. */
static char *record_line(const synth_run *r, const char *instruction, const char *answer,
                         const size_t *chosen, size_t k, uint64_t prompt, vkft_finish finish) {
  const synth_opts *o = r->o;
  cJSON *rec = cJSON_CreateObject(), *prov = cJSON_CreateObject(), *ids = cJSON_CreateArray();
  char *line = NULL;
  if (!rec || !prov || !ids) goto done;
  if (o->as_messages) {
    cJSON *msgs = cJSON_AddArrayToObject(rec, "messages");
    const char *roles[] = {"user", "assistant"}, *contents[] = {instruction, answer};
    for (int m = 0; msgs && m < 2; m++) {
      cJSON *msg = cJSON_CreateObject();
      cJSON_AddStringToObject(msg, "role", roles[m]);
      cJSON_AddStringToObject(msg, "content", contents[m]);
      cJSON_AddItemToArray(msgs, msg);
    }
  } else {
    cJSON_AddStringToObject(rec, "instruction", instruction);
    cJSON_AddStringToObject(rec, "output", answer);
  }
  cJSON_AddStringToObject(rec, "source", "synthetic");
  cJSON_AddStringToObject(prov, "model", o->gen.model);
  if (o->gen.adapter) cJSON_AddStringToObject(prov, "adapter", o->gen.adapter);
  for (size_t j = 0; j < k; j++) cJSON_AddItemToArray(ids, seed_id(r, chosen[j]));
  cJSON_AddItemToObject(prov, "seed_ids", ids);
  ids = NULL;
  cJSON_AddNumberToObject(prov, "prompt", (double)prompt);
  cJSON_AddNumberToObject(prov, "seed", (double)o->gen.sampling.seed);
  cJSON_AddNumberToObject(prov, "temperature", o->gen.sampling.temperature);
  cJSON_AddNumberToObject(prov, "top_p", o->gen.sampling.top_p);
  cJSON_AddNumberToObject(prov, "max_instruction_tokens", (double)o->max_instruction_tokens);
  cJSON_AddNumberToObject(prov, "max_new_tokens", (double)o->gen.sampling.max_new_tokens);
  cJSON_AddStringToObject(prov, "finish_reason", vkft_finish_name(finish));
  cJSON_AddItemToObject(rec, "synth", prov);
  prov = NULL;
  line = cJSON_PrintUnformatted(rec);
done:
  cJSON_Delete(rec);
  cJSON_Delete(prov);
  cJSON_Delete(ids);
  return line;
}

/* Drops the candidates (instructions[i], NULL: already dropped) that duplicate a seed, a kept
 * record or an earlier candidate. */
static int dedup_candidates(synth_run *r, char **instructions, size_t n) {
  size_t base = r->n_pool;
  size_t *candidate = malloc((n + 1) * sizeof *candidate); /* pool entry base + j: candidate[j] */
  if (!candidate) return vkft_error_nomem();
  int status = VKFT_OK;
  for (size_t i = 0; i < n && status == VKFT_OK; i++)
    if (instructions[i]) {
      candidate[r->n_pool - base] = i;
      status = pool_add(r, instructions[i]);
    }
  size_t total = r->n_pool;
  unsigned char *keep = malloc(total + 1);
  vkft_dedup_pair *pairs = NULL;
  size_t n_pairs = 0;
  vkft_dedup_desc dd = {.threshold = r->o->threshold};
  if (status == VKFT_OK)
    status = keep ? vkft_dedup((const uint32_t *const *)r->pool, r->pool_lens, total, &dd, keep,
                               &pairs, &n_pairs)
                  : vkft_error_nomem();
  for (size_t p = 0; status == VKFT_OK && p < n_pairs; p++) {
    if (pairs[p].removed < base) continue; /* seeds that repeat each other */
    size_t i = candidate[pairs[p].removed - base];
    r->counts[pairs[p].kept < r->seeds.n ? R_DUP_SEED : R_DUP]++;
    free(instructions[i]);
    instructions[i] = NULL;
  }
  free(candidate);
  /* the candidates leave the pool; the kept ones come back with their answers */
  for (size_t i = base; i < total; i++) free(r->pool[i]);
  r->n_pool = base;
  free(keep);
  free(pairs);
  return status;
}

static char *trimmed(const char *s) {
  while (isspace((unsigned char)*s)) s++;
  size_t n = strlen(s);
  while (n && isspace((unsigned char)s[n - 1])) n--;
  char *t = malloc(n + 1);
  if (t) memcpy(t, s, n), t[n] = 0;
  return t;
}

/* Answers the surviving instructions of a round and keeps the records. */
static int answer_round(synth_run *r, char **instructions, const size_t *chosen, size_t k,
                        size_t count) {
  const synth_opts *o = r->o;
  datagen_prompt *prompts = calloc(count, sizeof *prompts);
  datagen_reply *replies = calloc(count, sizeof *replies);
  char **texts = calloc(count, sizeof *texts);
  size_t *which = calloc(count, sizeof *which), m = 0;
  int status = prompts && replies && texts && which ? VKFT_OK : vkft_error_nomem();
  for (size_t i = 0; i < count && status == VKFT_OK; i++) {
    if (!instructions[i]) continue;
    uint64_t p = r->next_prompt + i;
    status = answer_prompt(r, instructions[i], &texts[m]);
    prompts[m] = (datagen_prompt){texts[m], vkft_synth_request_seed(o->gen.sampling.seed, 2, p),
                                  o->gen.sampling.max_new_tokens};
    which[m++] = i;
  }
  if (status == VKFT_OK)
    status = datagen_generate(r->s, &o->gen.sampling, prompts, m, o->gen.max_batch, 0, replies,
                              &r->stats);
  for (size_t j = 0; j < m && status == VKFT_OK; j++) {
    size_t i = which[j];
    if (!replies[j].text) {
      r->counts[R_ANSWER_TOO_LONG]++;
      continue;
    }
    char *answer = trimmed(replies[j].text);
    if (!answer) {
      status = vkft_error_nomem();
      break;
    }
    if (!*answer) {
      r->counts[R_EMPTY_ANSWER]++;
      free(answer);
      continue;
    }
    char *line = record_line(r, instructions[i], answer, chosen + i * k, k, r->next_prompt + i,
                             replies[j].finish);
    free(answer);
    if (!line || pool_add(r, instructions[i]) != VKFT_OK) {
      free(line);
      status = vkft_error_nomem();
      break;
    }
    r->lines[r->kept++] = line;
  }
  datagen_replies_free(replies, m);
  for (size_t j = 0; j < m; j++) free(texts[j]);
  free(prompts), free(replies), free(texts), free(which);
  return status;
}

/* count instruction prompts, numbered from r->next_prompt. */
static int synth_round(synth_run *r, size_t count) {
  const synth_opts *o = r->o;
  size_t k = (size_t)o->seeds_per_prompt < r->seeds.n ? (size_t)o->seeds_per_prompt : r->seeds.n;
  size_t *chosen = calloc(count * k, sizeof *chosen);
  datagen_prompt *prompts = calloc(count, sizeof *prompts);
  datagen_reply *replies = calloc(count, sizeof *replies);
  char **texts = calloc(count, sizeof *texts), **instructions = calloc(count, sizeof *texts);
  int status = chosen && prompts && replies && texts && instructions ? VKFT_OK : vkft_error_nomem();
  for (size_t i = 0; i < count && status == VKFT_OK; i++) {
    uint64_t p = r->next_prompt + i;
    vkft_synth_sample_seeds(o->gen.sampling.seed, p, r->seeds.n, k, chosen + i * k);
    status = instruction_prompt(r, chosen + i * k, k, &texts[i]);
    prompts[i] = (datagen_prompt){texts[i], vkft_synth_request_seed(o->gen.sampling.seed, 1, p),
                                  o->max_instruction_tokens};
  }
  int64_t ctx = 0;
  if (status == VKFT_OK && !r->s->model) status = plan_positions(r, k, &ctx);
  if (status == VKFT_OK)
    status = datagen_generate(r->s, &o->gen.sampling, prompts, count, o->gen.max_batch, ctx,
                              replies, &r->stats);
  for (size_t i = 0; i < count && status == VKFT_OK; i++) {
    if (!replies[i].text) {
      r->counts[R_PROMPT_TOO_LONG]++;
      continue;
    }
    int v = vkft_synth_parse_instruction(replies[i].text, replies[i].finish == VKFT_FINISH_LENGTH,
                                         &o->limits, &instructions[i]);
    if (v < 0) status = VKFT_ERR;
    if (v > 0) r->counts[R_INSTRUCTION + v - 1]++;
  }
  if (status == VKFT_OK) status = dedup_candidates(r, instructions, count);
  if (status == VKFT_OK) status = answer_round(r, instructions, chosen, k, count);
  datagen_replies_free(replies, count);
  for (size_t i = 0; i < count; i++) {
    free(texts ? texts[i] : NULL);
    free(instructions ? instructions[i] : NULL);
  }
  free(chosen), free(prompts), free(replies), free(texts), free(instructions);
  r->next_prompt += count;
  r->rounds++;
  return status;
}

/* ---- the command ---- */

static void print_summary(const synth_run *r) {
  const synth_opts *o = r->o;
  double tps = r->stats.seconds > 0 ? r->stats.generated_tokens / r->stats.seconds : 0;
  if (o->json) {
    cJSON *j = cJSON_CreateObject(), *d = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "prompts", (double)r->next_prompt);
    cJSON_AddNumberToObject(j, "rounds", (double)r->rounds);
    cJSON_AddNumberToObject(j, "kept", (double)r->kept);
    cJSON_AddNumberToObject(j, "wanted", (double)o->n);
    for (int k = 0; k < N_REASONS; k++)
      cJSON_AddNumberToObject(d, reason_name(k), (double)r->counts[k]);
    cJSON_AddItemToObject(j, "dropped", d);
    cJSON_AddNumberToObject(j, "generated_tokens", (double)r->stats.generated_tokens);
    cJSON_AddNumberToObject(j, "seconds", r->stats.seconds);
    cJSON_AddNumberToObject(j, "tokens_per_s", tps);
    cJSON_AddStringToObject(j, "out", o->out);
    cli_data_print_json(j);
    return;
  }
  fprintf(stderr,
          "synth: kept %zu of %lld wanted from %llu instruction prompts (%lld rounds%s); "
          "dropped:",
          r->kept, (long long)o->n, (unsigned long long)r->next_prompt, (long long)r->rounds,
          (int64_t)r->kept < o->n ? ", --max-prompts reached" : "");
  int any = 0;
  for (int k = 0; k < N_REASONS; k++)
    if (r->counts[k]) fprintf(stderr, "%s %zu %s", any++ ? "," : "", r->counts[k], reason_name(k));
  fprintf(stderr, "%s; %lld tokens generated in %.2f s (%.1f tokens/s) -> %s\n", any ? "" : " none",
          (long long)r->stats.generated_tokens, r->stats.seconds, tps, o->out);
}

static int run_synth(synth_run *r, const cli_device_opts *dev_opts) {
  const synth_opts *o = r->o;
  static const char *const instruction_names[] = {"tasks", "next"};
  static const char *const answer_names[] = {"instruction"};
  if (read_seeds(r) != VKFT_OK ||
      datagen_load_template(o->instruction_template, "synth-instruction.txt",
                            "--instruction-template", instruction_names, 2, 1,
                            &r->instruction_tmpl) != VKFT_OK ||
      gen_session_open_text(r->s, dev_opts, o->gen.model, o->gen.adapter, o->gen.chat_template) !=
          VKFT_OK ||
      datagen_load_template(o->answer_template,
                            r->s->tmpl ? "synth-answer-chat.txt" : "synth-answer.txt",
                            "--answer-template", answer_names, 1, 1, &r->answer_tmpl) != VKFT_OK)
    return VKFT_ERR;
  if (!(r->lines = calloc((size_t)o->n, sizeof *r->lines))) return vkft_error_nomem();
  int status = VKFT_OK;
  while (status == VKFT_OK && (int64_t)r->kept < o->n && (int64_t)r->next_prompt < o->max_prompts) {
    int64_t count = o->n - (int64_t)r->kept, left = o->max_prompts - (int64_t)r->next_prompt;
    status = synth_round(r, (size_t)(count < left ? count : left));
    if (status == VKFT_OK && vkft_console_is_tty(stderr))
      fprintf(stderr, "\r\033[Ksynth: %zu of %lld kept after %llu prompts", r->kept,
              (long long)o->n, (unsigned long long)r->next_prompt);
  }
  if (vkft_console_is_tty(stderr)) fputc('\n', stderr);
  cli_out of = {0};
  if (status == VKFT_OK) status = cli_out_open(&of, o->out);
  if (status == VKFT_OK) {
    for (size_t i = 0; i < r->kept; i++) fprintf(of.f, "%s\n", r->lines[i]);
    if (ferror(of.f)) status = vkft_error_with(VKFT_ERR_IO, "%s: write failed", o->out);
    status = cli_out_close(&of, status == VKFT_OK) || status;
  }
  if (status == VKFT_OK) print_summary(r);
  return status ? VKFT_ERR : VKFT_OK;
}

int cli_data_synth(int argc, char **argv) {
  cli_device_opts dev_opts;
  if (cli_take_device_opts(&argc, argv, &dev_opts) != VKFT_OK) return cli_usage_error();
  if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
    fputs(SYNTH_USAGE, stdout);
    return 0;
  }
  synth_opts o;
  if (parse_opts(argc, argv, &o) != VKFT_OK) {
    fprintf(stderr, "vkft data synth: %s\n" SYNTH_USAGE, vkft_error_message());
    return CLI_EXIT_USAGE;
  }
  gen_session s = {0};
  synth_run r = {.o = &o, .s = &s};
  int status = run_synth(&r, &dev_opts);
  gen_session_close(&s);
  for (size_t i = 0; r.seed_lines && i < r.seeds.n; i++) free(r.seed_lines[i]);
  for (size_t i = 0; i < r.n_pool; i++) free(r.pool[i]);
  for (size_t i = 0; i < r.kept; i++) free(r.lines[i]);
  free(r.seed_lines), free(r.pool), free(r.pool_lens), free(r.lines);
  free(r.instruction_tmpl), free(r.answer_tmpl);
  vkft_records_free(&r.seeds);
  return status == VKFT_OK ? 0 : cli_fail();
}
