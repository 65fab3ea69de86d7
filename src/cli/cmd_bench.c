/* `vkft bench <what>`: dispatch to the benchmark families. */
#include "commands.h"
#include "commands_tokenize.h"

#include <stdio.h>
#include <string.h>

int vkft_cmd_bench_ops(int argc, char **argv);
int vkft_bench_train(int argc, char **argv);     /* src/cli/bench_train.c */
int vkft_bench_data(int argc, char **argv);      /* src/cli/bench_data.c */
int vkft_bench_generate(int argc, char **argv);  /* src/cli/bench_generate.c */
int vkft_bench_allreduce(int argc, char **argv); /* src/cli/bench_allreduce.c */
int vkft_bench_kmeans(int argc, char **argv);    /* src/cli/bench_kmeans.c */

int vkft_cmd_bench(int argc, char **argv) {
  if (argc >= 2 && !strcmp(argv[1], "ops")) return vkft_cmd_bench_ops(argc - 1, argv + 1);
  if (argc >= 2 && !strcmp(argv[1], "train")) return vkft_bench_train(argc - 1, argv + 1);
  if (argc >= 2 && !strcmp(argv[1], "tokenize")) return vkft_bench_tokenize(argc - 1, argv + 1);
  if (argc >= 2 && !strcmp(argv[1], "data")) return vkft_bench_data(argc - 1, argv + 1);
  if (argc >= 2 && !strcmp(argv[1], "generate")) return vkft_bench_generate(argc - 1, argv + 1);
  if (argc >= 2 && !strcmp(argv[1], "allreduce")) return vkft_bench_allreduce(argc - 1, argv + 1);
  if (argc >= 2 && !strcmp(argv[1], "kmeans")) return vkft_bench_kmeans(argc - 1, argv + 1);
  fprintf(stderr, "usage: vkft bench ops [--json] [--large] [--filter NAME] [--device N]\n"
                  "       vkft bench train [--json] [--steps N] [--no-baseline] [--quant nf4|fp4]\n"
                  "                        [--shape NAME] [--rows N] [--seq T] [--methods LIST]\n"
                  "                        [--objective dpo|orpo]\n"
                  "       vkft bench tokenize [--tokenizer PATH] [--json]\n"
                  "       vkft bench data [--model DIR] [--data FILE] [--records N] [--json]\n"
                  "       vkft bench generate [--model DIR] [--batch 1,32] [--new-tokens N] "
                  "[--json]\n"
                  "       mpirun -np N vkft bench allreduce [--max-mib N] [--iters N] [--json]\n"
                  "       vkft bench kmeans [--n N] [--d D] [--k K] [--iters I] [--threads T] "
                  "[--json]\n");
  return 2;
}
