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

enum { MAX_FILES = 32 };

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
} data_opts;

/* "-" is standard output; anything else is written atomically (committed by close when ok). */
typedef struct out_file {
  vkft_atomic_file af;
  FILE *f;
  int is_stdout;
} out_file;

int cli_data_out_open(out_file *of, const char *path);
int cli_data_out_close(out_file *of, int ok);
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
