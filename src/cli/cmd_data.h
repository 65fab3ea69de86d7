/* What the `vkft data` tools share between their SFT half (cmd_data.c) and their preference-data
 * half (cmd_data_pref.c): the parsed options, atomic output files and JSON printing. */
#ifndef VKFT_CLI_CMD_DATA_H
#define VKFT_CLI_CMD_DATA_H

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>

#include "vkft/dataset.h"
#include "vkft/platform.h"
#include "vkft/pref.h"

enum { MAX_FILES = 32, MAX_BOUNDS = 16 };

typedef struct data_opts {
  const char *model, *out, *report, *tmpl, *enable_thinking;
  vkft_data_file_desc files[MAX_FILES];
  size_t n_files;
  vkft_data_format format;      /* --format with an SFT format name */
  vkft_pref_format pref_format; /* --format with a preference format name */
  vkft_pref_style style;
  vkft_train_on train_on;
  int max_len, max_prompt_len, max_completion_len, strict, threads, json, tokens, color, index,
      count;
  vkft_dedup_desc dedup;
  vkft_filter_desc filter;
  vkft_score_bound bounds[MAX_BOUNDS]; /* filter --min/--max FIELD=V */
  char bound_fields[MAX_BOUNDS][64];
} data_opts;

/* Output files: cli_out (commands.h). */
/* `vkft data score` (cmd_data_score.c): its own options, argv[0] = "score". */
int cli_data_score(int argc, char **argv);
/* `vkft data synth` and `vkft data judge` (cmd_data_synth.c, cmd_data_judge.c), likewise. */
int cli_data_synth(int argc, char **argv);
int cli_data_judge(int argc, char **argv);
/* `vkft data explore` (cmd_data_explore.c): argv[0] = "explore". */
int cli_data_explore(int argc, char **argv);
void cli_data_write_ids(FILE *f, const int32_t *ids, uint32_t n);
/* Prints obj on one line and frees it. */
void cli_data_print_json(cJSON *obj);

/* cmd_data_pref.c: whether the data is preference pairs (a preference --format, or the first
 * file's records; VKFT_ERR when that file cannot be read), and the tools on them. */
int cli_data_is_pref(const data_opts *o, int *yes);
int cli_data_pref_prepare(const data_opts *o);
int cli_data_pref_stats(const data_opts *o);
int cli_data_pref_preview(const data_opts *o);

#endif
