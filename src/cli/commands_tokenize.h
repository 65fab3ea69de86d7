/* The tokenizer subcommands: `vkft tokenize` (JSON Lines in, JSON Lines out) and
 * `vkft bench tokenize`. Each takes its own argv (argv[0] is "tokenize") and returns the
 * process exit status. */
#ifndef VKFT_CLI_COMMANDS_TOKENIZE_H
#define VKFT_CLI_COMMANDS_TOKENIZE_H

int vkft_cmd_tokenize(int argc, char **argv);
int vkft_bench_tokenize(int argc, char **argv);

#endif
