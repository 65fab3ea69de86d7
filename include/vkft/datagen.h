/* Model-written data, the pure pieces of `vkft data synth` and `vkft data judge` (the CLI runs
 * the model through src/gen): prompt templates with {{name}} placeholders, seeded sampling of
 * seed tasks, the clean-up and checks of a generated instruction (src/data/synth.c), and the
 * judge's score grammar and a record's instruction and response (src/data/judge.c). The
 * templates shipped in models/templates/ are embedded in the binary at build time. */
#ifndef VKFT_DATAGEN_H
#define VKFT_DATAGEN_H

#include <stddef.h>
#include <stdint.h>

struct cJSON;

/* ---- templates ----
 * A template is text with placeholders {{name}} (spaces inside the braces allowed). Rendering
 * replaces each by its value, once (a value holding "{{" is not expanded again); a name that
 * is not one of vars is an error naming `where` (the file). */
typedef struct vkft_template_var {
  const char *name, *value;
} vkft_template_var;

/* *out malloc'd; used[k] (when used is not NULL) counts the uses of vars[k]. */
int vkft_template_render(const char *text, const char *where, const vkft_template_var *vars,
                         size_t n_vars, char **out, size_t *used);
/* A template shipped with vkft (models/templates/NAME, embedded), NULL when unknown. */
const char *vkft_template_builtin(const char *name);

/* ---- self-instruct pieces (src/data/synth.c) ---- */

/* k distinct indices of [0, n) (k <= n), uniformly at random from the stream of (seed,
 * prompt): the seed tasks of instruction prompt number `prompt`, in the order they are shown. */
void vkft_synth_sample_seeds(uint64_t seed, uint64_t prompt, size_t n, size_t k, size_t *out);
/* A 64-bit stream seed derived from (seed, stage, index): every request its own. */
uint64_t vkft_synth_request_seed(uint64_t seed, uint32_t stage, uint64_t index);

/* Why a generated instruction was rejected. */
typedef enum vkft_synth_reject {
  VKFT_SYNTH_OK,
  VKFT_SYNTH_EMPTY,       /* no text line (after the numbering was stripped) */
  VKFT_SYNTH_TRUNCATED,   /* its line ran into max_new_tokens: the instruction may be cut */
  VKFT_SYNTH_TOO_SHORT,   /* fewer than min_words words */
  VKFT_SYNTH_TOO_LONG,    /* more than max_words words */
  VKFT_SYNTH_PUNCTUATION, /* begins with punctuation (self-instruct's filter) */
} vkft_synth_reject;
const char *vkft_synth_reject_name(vkft_synth_reject r);

typedef struct vkft_synth_limits {
  int min_words, max_words; /* self-instruct keeps 4..150 words */
} vkft_synth_limits;

/* The instruction in a generation: its first non-empty line, with leading list markers and
 * numbering ("4.", "4)", "Task 4:", "Instruction:", "-", "*", "**") and enclosing quotes
 * stripped and runs of white space made one space. truncated: the generation ended at
 * max_new_tokens (its last line may be cut). Returns the verdict; *out (malloc'd) is the
 * cleaned text when VKFT_SYNTH_OK, else NULL. VKFT_ERR (-1) only when out of memory. */
int vkft_synth_parse_instruction(const char *generation, int truncated,
                                 const vkft_synth_limits *limits, char **out);
/* s with every run of white space one space, trimmed (a seed task in a prompt); NULL when out
 * of memory. */
char *vkft_synth_one_line(const char *s);
/* The text dedup compares: that, with ASCII letters lower-cased. */
char *vkft_synth_dedup_text(const char *s);

/* ---- the judge (src/data/judge.c) ---- */

/* The score in a judge's text, by the first match of this grammar (case-insensitive), tried
 * tier by tier, each tier from the start of the text:
 *   1. [[N]]                                  (MT-Bench's "Rating: [[5]]")
 *   2. a keyword as a whole word, one keyword after the other: score, rating, grade, rated,
 *      rate; then up to 24 characters of separators (spaces, * : = " ' ( [ , "- " and the
 *      words is of a an it this as at be would will give i), then N
 *   3. N/10 or N out of 10 (N starting a word)
 *   4. **N** or **N/10 (a bold number)
 * N is an integer or a decimal (digits, optionally "." and digits); a "-" just before it
 * makes it negative. A match followed by "/D" or "out of D" with D != 10 is on another scale.
 * Returns 1 with *score when N is in [1, 10]; else 0 with error (NUL-terminated in error_size
 * bytes): "no score found", "score N out of range 1-10" or "score N/D not on the 1-10
 * scale". */
int vkft_judge_parse_score(const char *text, double *score, char *error, size_t error_size);

/* A record's last exchange, in any SFT format the dataset loader reads: the instruction (the
 * last user message before the last assistant reply; alpaca: instruction + "\n" + input) and
 * that reply; a string prompt_completion record gives its prompt and completion. Both
 * malloc'd. VKFT_ERR with a message naming the field (not the record) when it has none. */
int vkft_judge_record_turn(const struct cJSON *record, char **instruction, char **response);

#endif
