/* SFT datasets: dataset files -> records -> examples (input_ids + labels) -> packed batches,
 * and the tools that look at and clean a dataset (stats, dedup, filter).
 *
 *   vkft_dataset *ds;
 *   vkft_dataset_desc desc = {.model_dir = "models/qwen3", .n_files = 1,
 *                             .files = &(vkft_data_file_desc){.path = "data.jsonl"}};
 *   if (vkft_dataset_load(&desc, &ds)) fail(vkft_error_message());
 *   vkft_packer *p;
 *   vkft_packer_create(ds, NULL, 0, &(vkft_packer_desc){.rows = 8, .seed = 1}, &p);
 *   size_t n;
 *   if (vkft_packer_epoch_batches(p, epoch, &n)) fail(vkft_error_message());
 *   for (size_t i = 0; i < n; i++)
 *     vkft_packer_batch(p, epoch, i, &batch);  // same (seed, epoch, i) -> same batch
 *
 * ---- Formats (auto-detected from the first records of each file; desc.format overrides) ----
 * Files are a JSON array of records or JSON Lines (one record per line, blank lines skipped).
 *   alpaca            {"instruction", "input"?, "output", "system"?, "history"?: [[q, a], ...]}
 *                     user turn = instruction + "\n" + input when input is not empty
 *                     (LLaMA-Factory's rule); history replies are trained, as in LLaMA-Factory.
 *   sharegpt          {"conversations": [{"from", "value"}], "system"?, "tools"?}; from is
 *                     human|user, gpt|assistant, system, function_call (an assistant tool call:
 *                     value is {"name", "arguments"} JSON or a list of them), observation|tool
 *                     (a tool result). tools is a JSON string or array.
 *   messages          {"messages": [{"role", "content", "loss_weight"?}], "tools"?}; content is
 *                     a string or typed parts [{"type": "text"|"reasoning"|"tool_call",
 *                     "value"|"text"}]: text parts are joined, reasoning becomes
 *                     reasoning_content, tool_call values become OpenAI tool_calls. Other
 *                     message keys (tool_calls, reasoning_content, name...) pass through.
 *   prompt_completion {"prompt", "completion"}: strings, or lists of messages (TRL's
 *                     conversational form: the completion's assistant messages are trained).
 *   text              {"text"}: every token trained.
 *   tokens            {"input_ids": [...], "labels"?: [...]} pre-tokenized (HF convention:
 *                     labels aligned with input_ids, -100 = not trained; no labels = all).
 * Tools given as bare function schemas {"name", "parameters"...} are wrapped as
 * {"type": "function", "function": schema}, the form transformers passes to templates.
 *
 * ---- Rendering ----
 * Chat records (alpaca, sharegpt, messages, conversational prompt_completion) are rendered with
 * the chat template: desc.template_name if set (a built-in name such as "chatml", a .jinja file
 * or a model folder), else the model's own. The render is tokenized once WITHOUT special tokens:
 * the ids are exactly what the template writes (BOS included only if the template writes it).
 * A model without a chat template renders chat records with the built-in "alpaca" template
 * ("### Instruction:\n...\n\n### Response:\n" + reply + EOS), the prompt most base-model
 * fine-tunes on Alpaca data use, and then gets the post-processor's special tokens (BOS) in
 * front like a text record. text and string prompt_completion records are encoded with the
 * post-processor's special tokens (HF add_special_tokens=True: the BOS of Llama/Mistral) and
 * get the EOS appended (trained) unless the post-processor already ends with it.
 *
 * ---- Loss mask (train_on = assistant, the default) ----
 * The full render is tokenized once; a token is trained when its first byte lies inside an
 * assistant span. A span is an assistant reply's content plus the end-of-turn text that closes
 * it (<|im_end|>, <|eot_id|>, </s>...), not the role header and not the whitespace after the
 * end-of-turn token (ChatML's "\n"). Spans come from prefix renders: messages[:i] with
 * add_generation_prompt gives the start when it is a string prefix of the full render,
 * messages[:i+1] gives the end. Where the template rewrites earlier turns (Qwen3 drops the
 * reasoning of earlier replies), the reply's content is located in the render after the
 * previous span instead, and the span runs to the end-of-turn token that follows it.
 * Messages with loss_weight 0 are not trained; any other loss_weight trains the reply fully
 * (weighted losses are not supported). Only assistant messages are trained. train_on = all
 * trains every token. The first token of every example has label -100 (it is never a target
 * after the shift), which also keeps packed rows from predicting across examples.
 *
 * ---- Truncation ----
 * Examples longer than max_len (default: min(2048, max_position_embeddings of config.json when
 * the model folder has one)) keep their first max_len tokens (right truncation, TRL's
 * keep_start). An example with no trained token left is dropped and counted.
 *
 * Errors are values: functions return VKFT_OK or VKFT_ERR with vkft_error_message(). Records
 * that do not parse or lack their fields are skipped and listed in vkft_dataset.issues as
 * "file:line: message" (JSON arrays: "file:line: record N: message"); with desc.strict the
 * first one fails the load. A file that is not JSON at all is one error. */
#ifndef VKFT_DATASET_H
#define VKFT_DATASET_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct vkft_tokenizer;

typedef enum vkft_data_format {
  VKFT_FORMAT_AUTO = 0,
  VKFT_FORMAT_ALPACA,
  VKFT_FORMAT_SHAREGPT,
  VKFT_FORMAT_MESSAGES,
  VKFT_FORMAT_PROMPT_COMPLETION,
  VKFT_FORMAT_TEXT,
  VKFT_FORMAT_TOKENS,
  VKFT_FORMAT_COUNT
} vkft_data_format;

/* "auto", "alpaca", "sharegpt", "messages", "prompt_completion", "text", "tokens". */
const char *vkft_data_format_name(vkft_data_format format);
int vkft_data_format_parse(const char *name, vkft_data_format *out);

typedef enum vkft_train_on { VKFT_TRAIN_ON_ASSISTANT = 0, VKFT_TRAIN_ON_ALL } vkft_train_on;

#define VKFT_LABEL_IGNORE (-100)

/* One training file. weight (0 = 1) scales how many of its examples an epoch draws: 2 = each
 * example twice, 0.5 = a seeded random half (a different half each epoch). */
typedef struct vkft_data_file_desc {
  const char *path;
  double weight;
} vkft_data_file_desc;

typedef struct vkft_dataset_desc {
  const char *model_dir; /* tokenizer.json (+ tokenizer_config.json, config.json, template) */
  const vkft_data_file_desc *files;
  size_t n_files;
  vkft_data_format format;   /* AUTO: detected per file from its first records */
  const char *template_name; /* NULL: the model's template (or the "alpaca" fallback) */
  int max_len;               /* 0: min(2048, max_position_embeddings), 2048 without config */
  vkft_train_on train_on;
  int strict;      /* the first bad record fails the load */
  int threads;     /* 0: one per CPU */
  int keep_text;   /* keep each example's roles / prompt_text / reply_text (tools) */
  int keep_raw;    /* keep the file bytes so vkft_example.raw stays valid (tools) */
  int no_tokenize; /* records only: no tokenizer needed, no ids (dedup/filter by chars) */
  int max_issues;  /* messages kept in issues (0: 1000); all are counted */
  const char *enable_thinking; /* NULL, "true" or "false": passed to the template */
  /* A tokenizer already loaded from model_dir (borrowed: the caller frees it after the
   * dataset); NULL: the dataset loads its own — only when some record is text to tokenize: a
   * dataset of pre-tokenized records needs no tokenizer files. */
  struct vkft_tokenizer *tokenizer;
  /* Token ids must be below this (the model's embedding rows); 0: the tokenizer's vocabulary. */
  int64_t vocab_size;
} vkft_dataset_desc;

typedef enum vkft_example_status {
  VKFT_EXAMPLE_OK = 0,
  VKFT_EXAMPLE_BAD,   /* did not parse, lacked fields, or failed to render/encode: skipped */
  VKFT_EXAMPLE_EMPTY, /* no trained token (after truncation): dropped */
} vkft_example_status;

/* One input record and the example made from it. */
typedef struct vkft_example {
  uint32_t file;  /* index in desc.files */
  uint32_t line;  /* 1-based line of the record's first byte */
  uint32_t index; /* 0-based record index within its file */
  vkft_data_format format;
  vkft_example_status status;
  const char *raw; /* the record's bytes in its file (keep_raw), not NUL-terminated */
  size_t raw_len;
  int32_t *input_ids; /* len ids, NULL for BAD */
  int32_t *labels;    /* len labels: the id where trained, else VKFT_LABEL_IGNORE */
  uint32_t len;       /* after truncation */
  uint32_t full_len;  /* before truncation */
  uint32_t n_trained; /* labels != -100 */
  /* keep_text: "user,assistant,..." and the message contents joined by "\n": prompt_text the
   * untrained ones (system, user, tool), reply_text the trained ones; for text records the
   * text is the reply. NULL otherwise. */
  char *roles, *prompt_text, *reply_text;
} vkft_example;

typedef struct vkft_dataset {
  vkft_example *examples; /* every record of every file, in input order */
  size_t n_examples;
  size_t n_ok, n_bad, n_empty, n_truncated;
  size_t n_tokens, n_trained; /* over OK examples, after truncation */
  int max_len;
  vkft_data_format *file_formats; /* the format used for each file */
  double *file_weights;
  size_t n_files;
  char **file_paths;
  char **issues; /* "file:line: message", at most desc.max_issues kept */
  size_t n_issues, n_issues_total;
  struct vkft_tokenizer *tokenizer; /* NULL with no_tokenize; desc.tokenizer if given */
  int32_t pad_id;                   /* the pad token, else EOS, else 0 */
  struct vkft_dataset_impl *impl;
} vkft_dataset;

int vkft_dataset_load(const vkft_dataset_desc *desc, vkft_dataset **out);
void vkft_dataset_free(vkft_dataset *ds);

/* Splits the OK examples into train and eval ids (indices into ds->examples), a seeded
 * random eval_fraction of them going to eval (at least one when eval_fraction > 0 and there
 * are two or more examples). *train and *eval are malloc'd. */
int vkft_dataset_split(const vkft_dataset *ds, double eval_fraction, uint64_t seed,
                       uint32_t **train, size_t *n_train, uint32_t **eval, size_t *n_eval);

/* ---- packing and batches ---- */

typedef struct vkft_packer_desc {
  int rows;       /* B: rows per batch (0: 1) */
  int max_len;    /* T: tokens per row (0: the dataset's max_len) */
  int packing;    /* 0 = on (default), -1 = off: one example per row, padded, grouped by length */
  uint64_t seed;  /* shuffling; the same seed, epoch and index give the same batch */
  int no_shuffle; /* eval: every example once, in input order (file weights ignored) */
} vkft_packer_desc;

/* Row-major (B, T) arrays. Packed rows hold several examples, each with positions from 0 and
 * its own sequence id (attention must not cross sequence ids). Padding: input_ids = pad_id,
 * labels = -100, positions = 0, seq_ids = -1. Without packing T is the longest row of the
 * batch; with packing T = max_len. */
typedef struct vkft_batch {
  int B, T;
  int32_t *input_ids, *labels, *positions, *seq_ids;
  size_t n_tokens;    /* not padding */
  size_t n_trained;   /* labels != -100 (the loss's denominator) */
  size_t n_sequences; /* examples in the batch */
  size_t cap;         /* internal: allocated B*T */
} vkft_batch;

typedef struct vkft_packer vkft_packer;

/* ids: the examples to use (NULL: every OK example); each file's weight applies. */
int vkft_packer_create(const vkft_dataset *ds, const uint32_t *ids, size_t n_ids,
                       const vkft_packer_desc *desc, vkft_packer **out);
void vkft_packer_free(vkft_packer *p);
/* Examples of file `file` an epoch draws (its weight applied); *examples: how many it has. */
size_t vkft_packer_file_draws(const vkft_packer *p, size_t file, size_t *examples);
/* Batches in an epoch (the layout depends on the epoch's shuffle: it may differ by a few). */
int vkft_packer_epoch_batches(vkft_packer *p, uint64_t epoch, size_t *n);
/* Fills batch `index` of `epoch` (reusing out's arrays; zero-initialise it once, free with
 * vkft_batch_free). Fails if index is past the epoch, or if every label of the batch is
 * masked (a batch never silently gives a zero loss). */
int vkft_packer_batch(vkft_packer *p, uint64_t epoch, size_t index, vkft_batch *out);
void vkft_batch_free(vkft_batch *b);
/* Share of the rows' tokens that are not padding over an epoch (packing efficiency). */
int vkft_packer_fill(vkft_packer *p, uint64_t epoch, double *fill);

/* ---- tools: dedup ---- */

typedef struct vkft_dedup_desc {
  double threshold; /* estimated Jaccard similarity at or above which records are near-dups
                       (0: 0.8); >= 1 disables near-dup detection (exact only) */
  int num_perm;     /* MinHash permutations (0: 128) */
  int shingle;      /* shingle length in units (0: 5 characters, or 3 tokens) */
  int threads;      /* 0: one per CPU */
  uint64_t seed;
} vkft_dedup_desc;

typedef struct vkft_dedup_pair {
  size_t removed, kept; /* indices into the inputs */
  float similarity;     /* 1 for exact duplicates */
  int exact;
} vkft_dedup_pair;

/* Deduplicates n sequences of units (Unicode code points, or token ids): keep[i] = 0 for each
 * one that exactly equals, or is a near-duplicate of, an earlier kept one; each removal is a
 * pair in *pairs (malloc'd). Near-duplicates: MinHash signatures over shingles, LSH banding
 * chosen for the threshold, and candidates confirmed by their signature similarity. */
int vkft_dedup(const uint32_t *const *seqs, const size_t *lens, size_t n,
               const vkft_dedup_desc *desc, unsigned char *keep, vkft_dedup_pair **pairs,
               size_t *n_pairs);
/* Exact duplicates only (a hash of the units, confirmed by comparison): the baseline. */
int vkft_dedup_exact(const uint32_t *const *seqs, const size_t *lens, size_t n, unsigned char *keep,
                     vkft_dedup_pair **pairs, size_t *n_pairs);

/* UTF-8 to code points (invalid bytes become U+FFFD); *out malloc'd. */
int vkft_utf8_codepoints(const char *s, size_t len, uint32_t **out, size_t *n);

/* ---- tools: filter ---- */

typedef struct vkft_filter_desc {
  size_t min_reply_chars, max_reply_chars; /* code points in the trained text; 0 = no bound */
  size_t min_tokens, max_tokens;           /* example length before truncation; 0 = no bound */
  int keep_empty;                          /* default: drop records with an empty reply */
  int keep_refusals;                       /* default: drop refusal-like replies */
  const char *script;      /* "latin", "cjk", "cyrillic", "arabic", "greek", "hebrew", "devanagari":
                              at least min_script_ratio of the letters are of that script */
  double min_script_ratio; /* 0: 0.5 */
  double max_repeated_lines; /* share of a reply's non-blank lines that repeat an earlier
                                line; 0: 0.5; >= 1 disables */
  /* Bounds on the numbers in the record's "scores" object (`vkft data score` writes it; needs
   * keep_raw): a record below a min, above a max, or without that number is dropped. */
  const struct vkft_score_bound *bounds;
  size_t n_bounds;
} vkft_filter_desc;

typedef struct vkft_score_bound {
  const char *field; /* a key of "scores": loss, ppl, ifd, tokens, response_tokens, ... */
  double value;
  int is_max; /* 0: keep value <= score; 1: keep score <= value */
} vkft_score_bound;

/* Checks one example (keep_text must have been set); returns 1 to keep, 0 to drop with
 * *reason (a static string such as "empty reply", "refusal", "too long", "score below min"). */
int vkft_filter_example(const vkft_filter_desc *desc, const vkft_example *ex, const char **reason);
/* 1 if name is one of the scripts vkft_filter_desc.script knows. */
int vkft_filter_script_known(const char *name);

/* ---- tools: stats ---- */

typedef struct vkft_data_stats {
  size_t records, ok, bad, empty, truncated, over_max_len;
  size_t tokens, trained, masked; /* after truncation, OK examples */
  size_t len_min, len_max;        /* full lengths (before truncation) of OK examples */
  double len_mean;
  size_t len_p[5];       /* percentiles 50, 90, 95, 99, 100 of full lengths */
  size_t hist_edges[11]; /* histogram of full lengths: 10 buckets */
  size_t hist_counts[10];
  size_t format_counts[VKFT_FORMAT_COUNT];
  char role_names[8][16]; /* roles seen (keep_text), with how many messages each */
  size_t role_counts[8];
  size_t n_roles;
} vkft_data_stats;

int vkft_data_stats_compute(const vkft_dataset *ds, vkft_data_stats *out);

/* ---- tools: records as JSON (src/data/records.c) ----
 * The model-based tools (generate --batch, synth, score, judge, explore) read whole records and
 * write them back with fields added: every record parsed (JSON Lines or a JSON array), with
 * its line. */
typedef struct vkft_records {
  struct cJSON **items; /* parsed objects, owned */
  uint32_t *lines;      /* 1-based line of each record's first byte */
  size_t n;
} vkft_records;

/* Reads every record of path; a record that is not a JSON object is an error naming
 * "path:line". */
int vkft_records_read(const char *path, vkft_records *out);
void vkft_records_free(vkft_records *r);
/* A string field of a record, or NULL when absent or not a string. */
const char *vkft_record_string(const struct cJSON *record, const char *key);

#ifdef __cplusplus
}
#endif
#endif
