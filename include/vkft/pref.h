/* Preference datasets for DPO and ORPO: files of (prompt, chosen, rejected) records -> pairs of
 * token ids as TRL makes them -> micro-batches of N pairs that run as one forward over 2N
 * sequences (the N chosen, then the N rejected).
 *
 *   vkft_pref_dataset *ds;
 *   vkft_pref_desc desc = {.model_dir = "models/qwen3", .n_files = 1,
 *                          .files = &(vkft_data_file_desc){.path = "pairs.jsonl"}};
 *   if (vkft_pref_load(&desc, &ds)) fail(vkft_error_message());
 *   vkft_pref_batcher *b;
 *   vkft_pref_batcher_create(ds, NULL, 0, &(vkft_pref_batcher_desc){.pairs = 4, .seed = 1}, &b);
 *   size_t n;
 *   vkft_pref_batcher_epoch_batches(b, epoch, &n);
 *   vkft_pref_batch batch = {0};
 *   for (size_t i = 0; i < n; i++)
 *     vkft_pref_batcher_batch(b, epoch, i, &batch);  // same (seed, epoch, i) -> same batch
 *   // sequence s of batch.tokens is the chosen of pair s (s < N) or the rejected of pair s - N;
 *   // log p(sequence s) = sum over tokens k with seq_ids[k] == s and labels[k] != -100 of
 *   // log p(labels[k] | the tokens of s before k), i.e. the model's prediction at k - 1
 *
 * ---- Formats (auto-detected from the first records of each file; desc.format overrides) ----
 * JSON arrays or JSON Lines, as for SFT data (include/vkft/dataset.h).
 *   trl_standard        {"prompt": str, "chosen": str, "rejected": str}
 *   trl_conversational  {"prompt": [messages], "chosen": [messages], "rejected": [messages]}
 *   trl_implicit_prompt {"chosen", "rejected"}: both strings or both message lists; the prompt is
 *                       their shared start (TRL's extract_prompt, see docs/PREFERENCE.md)
 *   sharegpt_ranking    LLaMA-Factory: {"conversations": [{"from", "value"}...] (an optional
 *                       leading system turn, then human/gpt turns alternating, odd in number,
 *                       ending with human), "chosen": {"from": "gpt", "value"}, "rejected": {...},
 *                       "system"?, "tools"?}
 *   alpaca_ranking      LLaMA-Factory: {"instruction", "input"?, "chosen": str, "rejected": str,
 *                       "system"?, "history"?}; the user turn is instruction + "\n" + input
 *   trl_tokenized       {"prompt_input_ids", "chosen_input_ids", "rejected_input_ids"} (TRL <=
 *                       0.28's column names) or {"prompt_ids", "chosen_ids", "rejected_ids"}
 *                       (TRL >= 0.29): the completions exclude the prompt; used as given
 * Conversational records may carry "tools" (a list or a JSON string) and TRL's
 * "chat_template_kwargs" (an object of extra template variables). trl_tokenized records written
 * by `vkft data prepare` for ORPO may carry "chosen_masked" / "rejected_masked" (see below).
 *
 * ---- Tokenization (desc.style; docs/PREFERENCE.md cites each rule) ----
 * VKFT_PREF_DPO, TRL 1.9.0 DPOTrainer._prepare_dataset:
 *   chat: prompt_ids = template(prompt, add_generation_prompt) tokenized without special tokens;
 *         chosen_ids = template(prompt + chosen) tokenized the same way, minus its first
 *         len(prompt_ids) tokens (likewise rejected). No EOS is added: the template closes the
 *         turn, and everything it writes after the prompt is the completion.
 *   text: the EOS token's text is appended to chosen and rejected unless they end with it;
 *         prompt_ids = tokenize(prompt) WITH special tokens (a Llama/Mistral BOS);
 *         chosen_ids = tokenize(prompt + chosen) with special tokens minus len(prompt_ids).
 *   When prompt_ids is not a prefix of tokenize(prompt + completion) TRL warns and slices anyway;
 *   so does vkft, counting the pair in n_prompt_mismatch.
 * VKFT_PREF_ORPO, TRL 1.9.0 (experimental) ORPOTrainer.tokenize_row:
 *   chat records are rendered to text first (the prompt with add_generation_prompt, or
 *   continuing a final assistant message; the prompt text is the common start of that and the
 *   two full renders), then every record is tokenized as text without special tokens: prompt
 *   and prompt + completion; where the tokenizer merged the prompt's last token into the
 *   completion that token is the completion's; a BOS is put in front when the prompt does not
 *   start with it and an EOS at the end of each completion that does not end with it.
 * A model without a chat template renders chat records with the built-in templates the SFT
 * pipeline uses (chatml; alpaca for alpaca_ranking), with the post-processor's BOS in front.
 *
 * ---- Truncation ----
 * max_prompt_len (optional, TRL <= 0.28): the prompt keeps its LAST max_prompt_len tokens.
 * max_completion_len (optional, TRL <= 0.28): each completion keeps its first tokens.
 * max_len (TRL >= 0.29, keep_start): each sequence prompt + completion keeps its first max_len
 * tokens; a pair whose prompt alone has max_len tokens or more is dropped (TRL 1.9.0), as is a
 * pair left with no trained token in a completion. Pre-tokenized pairs are truncated the same
 * way.
 *
 * Errors are values (VKFT_OK / VKFT_ERR with vkft_error_message()); bad records are skipped and
 * listed as "file:line: message" in issues, as for SFT data (desc.strict: the first fails). */
#ifndef VKFT_PREF_H
#define VKFT_PREF_H

#include <stddef.h>
#include <stdint.h>

#include "vkft/dataset.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum vkft_pref_format {
  VKFT_PREF_FORMAT_AUTO = 0,
  VKFT_PREF_FORMAT_STANDARD,
  VKFT_PREF_FORMAT_CONVERSATIONAL,
  VKFT_PREF_FORMAT_IMPLICIT,
  VKFT_PREF_FORMAT_SHAREGPT,
  VKFT_PREF_FORMAT_ALPACA,
  VKFT_PREF_FORMAT_TOKENIZED,
  VKFT_PREF_FORMAT_COUNT
} vkft_pref_format;

/* "auto", "trl_standard", "trl_conversational", "trl_implicit_prompt", "sharegpt_ranking",
 * "alpaca_ranking", "trl_tokenized". */
const char *vkft_pref_format_name(vkft_pref_format format);
int vkft_pref_format_parse(const char *name, vkft_pref_format *out);
/* The preference format of a file from its first records; VKFT_PREF_FORMAT_AUTO when they are
 * not preference records (SFT data). VKFT_ERR only when the file cannot be read or split. */
int vkft_pref_detect_file(const char *path, vkft_pref_format *out);

typedef enum vkft_pref_style { VKFT_PREF_DPO = 0, VKFT_PREF_ORPO } vkft_pref_style;

const char *vkft_pref_style_name(vkft_pref_style style); /* "dpo", "orpo" */
int vkft_pref_style_parse(const char *name, vkft_pref_style *out);

typedef struct vkft_pref_desc {
  const char *model_dir; /* tokenizer.json (+ tokenizer_config.json, config.json, template) */
  const vkft_data_file_desc *files; /* weights as for SFT data */
  size_t n_files;
  vkft_pref_format format;          /* AUTO: detected per file */
  vkft_pref_style style;            /* how text becomes ids: DPO (default) or ORPO */
  const char *template_name;        /* NULL: the model's template (or the built-in fallbacks) */
  int max_len;                      /* per sequence; 0: min(2048, max_position_embeddings) */
  int max_prompt_len;               /* 0: none */
  int max_completion_len;           /* 0: none */
  int strict;                       /* the first bad record fails the load */
  int threads;                      /* 0: one per CPU */
  int max_issues;                   /* messages kept in issues (0: 1000); all are counted */
  const char *enable_thinking;      /* NULL, "true" or "false": passed to the template */
  struct vkft_tokenizer *tokenizer; /* borrowed, as in vkft_dataset_desc; NULL: loaded */
  int64_t vocab_size; /* ids must be below it; 0: config.json's vocab_size, else the tokenizer's */
} vkft_pref_desc;

/* One record and the pair made from it. A sequence is prompt + a completion; the first
 * *_masked tokens of a completion are the prompt's too (ORPO: a prompt token the tokenizer
 * merged differently with this completion) and are not trained. */
typedef struct vkft_pref_example {
  uint32_t file, line, index; /* index in desc.files, 1-based line, 0-based record index */
  vkft_pref_format format;
  vkft_example_status status; /* OK, BAD (skipped) or EMPTY (dropped by truncation) */
  int32_t *prompt_ids, *chosen_ids, *rejected_ids; /* after truncation; NULL for BAD */
  uint32_t prompt_len, chosen_len, rejected_len;
  uint32_t chosen_masked, rejected_masked;
  uint32_t prompt_full_len, chosen_full_len, rejected_full_len; /* before truncation */
  uint32_t chosen_trained, rejected_trained; /* tokens whose label is kept in the batch */
  int truncated;                             /* some token was cut */
  int prompt_mismatch; /* DPO: tokenize(prompt) is not a prefix of tokenize(prompt + completion) */
} vkft_pref_example;

typedef struct vkft_pref_dataset {
  vkft_pref_example *examples; /* every record of every file, in input order */
  size_t n_examples;
  size_t n_ok, n_bad, n_empty, n_truncated, n_prompt_mismatch;
  size_t n_tokens, n_trained; /* over OK pairs: both sequences (the prompt counted twice) */
  int max_len, max_prompt_len, max_completion_len;
  vkft_pref_style style;
  vkft_pref_format *file_formats;
  double *file_weights;
  size_t n_files;
  char **file_paths;
  char **issues; /* "file:line: message", at most desc.max_issues kept */
  size_t n_issues, n_issues_total;
  struct vkft_tokenizer *tokenizer; /* NULL for a dataset of pre-tokenized pairs only */
  int32_t pad_id;
  struct vkft_pref_impl *impl;
} vkft_pref_dataset;

int vkft_pref_load(const vkft_pref_desc *desc, vkft_pref_dataset **out);
void vkft_pref_free(vkft_pref_dataset *ds);

/* Splits the OK pairs into train and eval ids (indices into ds->examples) exactly as
 * vkft_dataset_split does: a seeded eval_fraction of them, both lists in input order. */
int vkft_pref_split(const vkft_pref_dataset *ds, double eval_fraction, uint64_t seed,
                    uint32_t **train, size_t *n_train, uint32_t **eval, size_t *n_eval);

/* Sequence `which` (0 chosen, 1 rejected) of an OK pair as the batcher lays it out: len
 * tokens, labels VKFT_LABEL_IGNORE on the prompt, on the masked tokens and on the first token
 * (never a target after the shift), else the id. ids and labels hold prompt_len + the
 * completion's len entries. Returns the length. */
uint32_t vkft_pref_sequence(const vkft_pref_example *ex, int which, int32_t *ids, int32_t *labels);

/* ---- micro-batches of pairs ---- */

typedef struct vkft_pref_batcher_desc {
  int pairs;      /* N: pairs per micro-batch (0: 1); a pair is never split across batches */
  int pack;       /* 0 (default): 2N rows, one sequence each, padded to the longest of the batch;
                     1: the 2N sequences first-fit into rows of max_len tokens */
  int max_len;    /* packed rows' length (0: the dataset's max_len) */
  uint64_t seed;  /* the same seed, epoch and index give the same batch */
  int no_shuffle; /* eval: every pair once, in input order (file weights ignored) */
} vkft_pref_batcher_desc;

/* tokens: (B, T) row-major arrays as vkft_packer gives them (padding: pad_id, label -100,
 * position 0, seq_id -1; positions restart at 0 in each sequence), except that seq_ids number
 * the sequences of the whole batch: s in [0, 2N), the chosen of pair i being s = i and its
 * rejected s = N + i. Without packing row s holds sequence s. Per sequence s: it lies in row
 * seq_row[s], columns [seq_start[s], seq_start[s] + seq_len[s]), with seq_trained[s] labels kept.
 * pair_example[i]: the pair's index in ds->examples. */
typedef struct vkft_pref_batch {
  vkft_batch tokens; /* n_sequences = 2N; n_trained = the sum of seq_trained */
  int n_pairs;       /* N (the last batch of an epoch may have fewer) */
  uint32_t *pair_example;
  int32_t *seq_row, *seq_start, *seq_len, *seq_trained;
  size_t seq_cap; /* internal */
} vkft_pref_batch;

typedef struct vkft_pref_batcher vkft_pref_batcher;

/* ids: the pairs to use (NULL: every OK pair); each file's weight applies. With pack, fails
 * when a sequence is longer than the rows. */
int vkft_pref_batcher_create(const vkft_pref_dataset *ds, const uint32_t *ids, size_t n_ids,
                             const vkft_pref_batcher_desc *desc, vkft_pref_batcher **out);
void vkft_pref_batcher_free(vkft_pref_batcher *b);
int vkft_pref_batcher_epoch_batches(vkft_pref_batcher *b, uint64_t epoch, size_t *n);
/* Fills batch `index` of `epoch` (reusing out's arrays: zero-initialise it once, free with
 * vkft_pref_batch_free). Fails past the end of the epoch. */
int vkft_pref_batcher_batch(vkft_pref_batcher *b, uint64_t epoch, size_t index,
                            vkft_pref_batch *out);
void vkft_pref_batch_free(vkft_pref_batch *b);

/* ---- tools: stats ---- */

typedef struct vkft_pref_len_stats {
  size_t min, max, p50, p90;
  double mean;
} vkft_pref_len_stats;

typedef struct vkft_pref_stats {
  size_t records, ok, bad, empty, truncated, prompt_mismatch;
  size_t format_counts[VKFT_PREF_FORMAT_COUNT];
  /* over OK and EMPTY pairs, before truncation: prompt, chosen, rejected, and the longer of
   * the two sequences */
  vkft_pref_len_stats prompt, chosen, rejected, longest;
  size_t over_max_len;    /* pairs with a sequence longer than max_len before truncation */
  size_t tokens, trained; /* over OK pairs, after truncation */
} vkft_pref_stats;

int vkft_pref_stats_compute(const vkft_pref_dataset *ds, vkft_pref_stats *out);

#ifdef __cplusplus
}
#endif
#endif
