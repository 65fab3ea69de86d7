/* The subcommands of the vkft program; each takes its own argv (argv[0] is its name) and
 * returns the process exit status. Only src/cli prints to the user and decides exit codes. */
#ifndef VKFT_CLI_COMMANDS_H
#define VKFT_CLI_COMMANDS_H

#include "vkft/error.h"
#include "vkft/vk.h"

#include <stdint.h>

int vkft_cmd_devices(int argc, char **argv);
int vkft_cmd_selftest(int argc, char **argv);
int vkft_cmd_bench(int argc, char **argv);
int vkft_cmd_train(int argc, char **argv);
int vkft_cmd_lr_find(int argc, char **argv);
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

#endif
