/* vkft: the command-line entry point and subcommand dispatch. */
#include "commands.h"
#include "commands_tokenize.h"

#include "vkft/error.h"
#include "vkft/platform.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VKFT_VERSION "0.1.0"

typedef struct command {
  const char *name;
  int (*run)(int argc, char **argv);
  const char *help;
} command;

int vkft_cmd_data(int argc, char **argv);     /* src/cli/cmd_data.c */
int vkft_cmd_quantize(int argc, char **argv); /* src/cli/cmd_quantize.c */
int vkft_cmd_report(int argc, char **argv);   /* src/cli/cmd_report.c */

static const command commands[] = {
    {"train", vkft_cmd_train,
     "fine-tune a model: `train --config cfg.json [--set k=v] [--resume auto]`"},
    {"lr-find", vkft_cmd_lr_find,
     "learning-rate range test: `lr-find --config cfg.json [--min 1e-7 --max 1 --steps 100]`"},
    {"generate", vkft_cmd_generate,
     "generate text: `generate --model DIR [--adapter DIR] --prompt TEXT`"},
    {"eval", vkft_cmd_eval, "loss of a model on a dataset: `eval --model DIR --data FILE`"},
    {"devices", vkft_cmd_devices, "list Vulkan devices, their capabilities and the one vkft picks"},
    {"selftest", vkft_cmd_selftest, "check every op on a device against the C reference"},
    {"tokenize", vkft_cmd_tokenize, "encode/decode JSON lines with a Hugging Face tokenizer"},
    {"export", vkft_cmd_export,
     "merged HF folder, GGUF model or GGUF LoRA: `export --model DIR [--adapter DIR] --to "
     "hf|gguf|gguf-lora --out PATH`"},
    {"data", vkft_cmd_data,
     "datasets: prepare, stats, dedup, filter, preview (`vkft data --help`)"},
    {"quantize", vkft_cmd_quantize,
     "bitsandbytes 4-bit copy of a model: `quantize --model DIR --to nf4`"},
    {"report", vkft_cmd_report,
     "rebuild OUT/report.html (charts of a run) and print the loss: `report OUT`"},
    {"bench", vkft_cmd_bench, "benchmarks: `bench ops|train|tokenize|data [--json]`"},
};

static void usage(FILE *out) {
  fprintf(out,
          "vkft %s - fine-tune Llama-family models on any Vulkan GPU\n\nusage: vkft <command> "
          "[options]\n\ncommands:\n",
          VKFT_VERSION);
  for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
    fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].help);
  fprintf(out, "\ncommon options: --device N (or VKFT_DEVICE=N), --profile (GPU time per "
               "dispatch)\nenvironment: VKFT_VALIDATE=1 turns on the Vulkan validation layers\n");
}

int main(int argc, char **argv) {
  vkft_platform_init(&argc, &argv);
  if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
      !strcmp(argv[1], "help")) {
    usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  if (!strcmp(argv[1], "--version")) {
    printf("vkft %s\n", VKFT_VERSION);
    return 0;
  }
  for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
    if (!strcmp(argv[1], commands[i].name)) return commands[i].run(argc - 1, argv + 1);
  fprintf(stderr, "vkft: unknown command \"%s\" (see `vkft --help`)\n", argv[1]);
  return 2;
}

int cli_exit_code(vkft_errcode code) {
  switch (code) {
  case VKFT_ERR_IO:
    return CLI_EXIT_IO;
  case VKFT_ERR_NOMEM:
  case VKFT_ERR_OOM:
    return CLI_EXIT_MEMORY;
  case VKFT_ERR_DEVICE:
  case VKFT_ERR_DEVICE_LOST:
    return CLI_EXIT_DEVICE;
  case VKFT_ERR_UNSUPPORTED:
    return CLI_EXIT_UNSUPPORTED;
  case VKFT_ERR_NUMERIC:
    return CLI_EXIT_DIVERGED;
  case VKFT_ERR_BUSY:
    return CLI_EXIT_BUSY;
  case VKFT_ERR_INTERNAL:
    return CLI_EXIT_INTERNAL;
  default:
    return CLI_EXIT_INPUT;
  }
}

int cli_fail(void) {
  if (vkft_error_code() == VKFT_ERR_INTERNAL)
    fprintf(stderr, "vkft: internal error (please report it): %s\n", vkft_error_message());
  else
    fprintf(stderr, "vkft: %s\n", vkft_error_message());
  return cli_exit_code(vkft_error_code());
}

int cli_usage_error(void) {
  fprintf(stderr, "vkft: %s\n", vkft_error_message());
  return CLI_EXIT_USAGE;
}

int cli_int_option(const char *option, const char *text, int64_t min, int64_t max, int64_t *out) {
  char *end;
  errno = 0;
  long long v = strtoll(text, &end, 10);
  if (end == text || *end || errno == ERANGE || v < min || v > max)
    return vkft_error("%s: \"%s\" is not a whole number in [%lld, %lld]", option, text,
                      (long long)min, (long long)max);
  *out = v;
  return VKFT_OK;
}

int cli_double_option(const char *option, const char *text, double min, double max, double *out) {
  char *end;
  double v = strtod(text, &end);
  if (end == text || *end || !(v >= min && v <= max))
    return vkft_error("%s: \"%s\" is not a number in [%g, %g]", option, text, min, max);
  *out = v;
  return VKFT_OK;
}

int cli_take_device_opts(int *argc, char **argv, cli_device_opts *opts) {
  opts->device = -1;
  opts->profile = 0;
  int out = 0;
  for (int i = 0; i < *argc; i++) {
    if (!strcmp(argv[i], "--device")) {
      if (i + 1 >= *argc) return vkft_error("--device needs a number");
      char *end;
      long n = strtol(argv[++i], &end, 10);
      if (*end || n < 0) return vkft_error("--device: \"%s\" is not a device number", argv[i]);
      opts->device = (int)n;
    } else if (!strcmp(argv[i], "--profile")) {
      opts->profile = 1;
    } else {
      argv[out++] = argv[i];
    }
  }
  *argc = out;
  return VKFT_OK;
}

vkft_device *cli_open_device(const cli_device_opts *opts) {
  vkft_device *dev = NULL;
  vkft_device_desc desc = {.index = opts->device, .validate = -1, .profile = opts->profile};
  if (vkft_device_create(&desc, &dev) != VKFT_OK) {
    cli_fail();
    return NULL;
  }
  return dev;
}
