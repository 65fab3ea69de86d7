/* The subcommands of the vkft program; each takes its own argv (argv[0] is its name) and
 * returns the process exit status. Only src/cli prints to the user and decides exit codes. */
#ifndef VKFT_CLI_COMMANDS_H
#define VKFT_CLI_COMMANDS_H

#include "vkft/error.h"
#include "vkft/model.h"
#include "vkft/model_config.h"
#include "vkft/platform.h"
#include "vkft/vk.h"

#include <stdio.h>

#include <stdint.h>

int vkft_cmd_devices(int argc, char **argv);
int vkft_cmd_selftest(int argc, char **argv);
int vkft_cmd_bench(int argc, char **argv);
int vkft_cmd_train(int argc, char **argv);
int vkft_cmd_lr_find(int argc, char **argv);
int vkft_cmd_plan(int argc, char **argv); /* src/cli/cmd_plan.c */
int vkft_cmd_generate(int argc, char **argv);
int vkft_cmd_eval(int argc, char **argv);
int vkft_cmd_export(int argc, char **argv); /* cmd_export.c */

/* Shared option handling: --device N, --profile. Removes them from argv. */
typedef struct cli_device_opts {
  int device; /* -1 = automatic */
  int profile;
} cli_device_opts;
int cli_take_device_opts(int *argc, char **argv, cli_device_opts *opts);
/* Opens the device chosen by opts; prints the error and returns NULL on failure. */
vkft_device *cli_open_device(const cli_device_opts *opts);
/* Exit statuses, documented in the README ("Exit codes"): what kind of failure ended the run. */
enum {
  CLI_EXIT_OK = 0,
  CLI_EXIT_INPUT = 1,       /* a file, config value or argument is wrong */
  CLI_EXIT_USAGE = 2,       /* the command line itself is wrong */
  CLI_EXIT_IO = 3,          /* reading or writing failed (a full disk, permissions) */
  CLI_EXIT_MEMORY = 4,      /* out of host or device memory */
  CLI_EXIT_DEVICE = 5,      /* the Vulkan driver or device failed, or was lost */
  CLI_EXIT_UNSUPPORTED = 6, /* valid, but not something vkft does */
  CLI_EXIT_DIVERGED = 7,    /* training diverged (a non-finite loss or gradient) */
  CLI_EXIT_BUSY = 8,        /* the output folder is used by another run */
  CLI_EXIT_INTERNAL = 70,   /* a bug in vkft */
  /* 130 (VKFT_EXIT_INTERRUPTED): interrupted; the state to resume from is saved */
};
/* Prints "vkft: <message>" for the current error and returns its exit status. */
int cli_fail(void);
/* Prints "vkft: <message>" and returns CLI_EXIT_USAGE (a bad option value). */
int cli_usage_error(void);
/* The exit status of an error code. */
int cli_exit_code(vkft_errcode code);
/* Option values read whole (no "8abc" read as 8): VKFT_ERR with a message naming the option
 * when the text is not a number in [min, max]. */
int cli_int_option(const char *option, const char *text, int64_t min, int64_t max, int64_t *out);
int cli_double_option(const char *option, const char *text, double min, double max, double *out);

/* --profile: the last submission's GPU time per shader, largest first (bench_train.c). */
void cli_print_profile(vkft_device *dev);

/* An output file: "-" is standard output; anything else is written atomically (cli_out.c). */
typedef struct cli_out {
  vkft_atomic_file af;
  FILE *f;
  int is_stdout;
} cli_out;
int cli_out_open(cli_out *of, const char *path);
/* Commits the file when ok, else removes it. */
int cli_out_close(cli_out *of, int ok);

/* bench_train.c: whole training steps (forward, loss, backward, gradient norm, AdamW) of a
 * model folder's model on a batch of rows x seq tokens, one warm-up step then `steps` timed:
 * `vkft bench train` and `vkft plan`'s tokens/s. */
typedef struct cli_step_shape {
  int rows, seq, steps;
  int64_t lora_r;
  unsigned lora_targets; /* VKFT_MOD_Q.. */
  int use_dora;
  int grad_checkpointing;
} cli_step_shape;
/* milliseconds per step, model FLOPs per step (cli_step_flops), device bytes held */
typedef struct cli_step_result {
  double ms, flops;
  uint64_t device_bytes;
} cli_step_result;
int cli_measure_step(vkft_backend *be, const char *dir, int full, vkft_dtype quant,
                     const vkft_pref_objective *objective, const cli_step_shape *shape, int steps,
                     cli_step_result *res);
double cli_step_flops(const vkft_model_config *c, int full, int64_t lora_r, unsigned targets,
                      int64_t tokens, int64_t row_len, int grad_checkpointing);

#endif
