/* The subcommands of the vkft program; each takes its own argv (argv[0] is its name) and
 * returns the process exit status. Only src/cli prints to the user and decides exit codes. */
#ifndef VKFT_CLI_COMMANDS_H
#define VKFT_CLI_COMMANDS_H

#include "vkft/vk.h"

int vkft_cmd_devices(int argc, char **argv);
int vkft_cmd_selftest(int argc, char **argv);
int vkft_cmd_bench(int argc, char **argv);
int vkft_cmd_train(int argc, char **argv);
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
/* Prints "vkft: <message>" for the current error and returns exit status 1. */
int cli_fail(void);

#endif
