/* `vkft bench kmeans [--n N] [--d D] [--k K] [--iters I] [--threads T] [--json]`: k-means
 * (src/data/kmeans.c) on random unit vectors, timed: the seeding and a fixed number of Lloyd
 * iterations (random data never settles, so every run does the same work), and the rate of the
 * row-centroid dot products. Default 100000 x 1024, k = 20, 10 iterations. */
#include "commands.h"

#include "vkft/error.h"
#include "vkft/explore.h"
#include "vkft/platform.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int vkft_bench_kmeans(int argc, char **argv) {
  int64_t n = 100000, d = 1024, k = 20, iters = 10, threads = 0;
  int json = 0;
  for (int i = 1; i < argc; i++) {
    int64_t *slot = !strcmp(argv[i], "--n")         ? &n
                    : !strcmp(argv[i], "--d")       ? &d
                    : !strcmp(argv[i], "--k")       ? &k
                    : !strcmp(argv[i], "--iters")   ? &iters
                    : !strcmp(argv[i], "--threads") ? &threads
                                                    : NULL;
    if (slot && i + 1 < argc) {
      if (cli_int_option(argv[i], argv[i + 1], slot == &threads ? 0 : 1, 1 << 24, slot))
        return cli_usage_error();
      i++;
    } else if (!strcmp(argv[i], "--json")) {
      json = 1;
    } else {
      fprintf(stderr, "usage: vkft bench kmeans [--n N] [--d D] [--k K] [--iters I] "
                      "[--threads T] [--json]\n");
      return CLI_EXIT_USAGE;
    }
  }
  if (k > n) {
    fprintf(stderr, "vkft bench kmeans: --k %lld is more than --n %lld\n", (long long)k,
            (long long)n);
    return CLI_EXIT_USAGE;
  }
  float *x = malloc((size_t)n * (size_t)d * sizeof *x);
  int32_t *assign = malloc((size_t)n * sizeof *assign);
  if (!x || !assign) {
    free(x), free(assign);
    vkft_error_nomem();
    return cli_fail();
  }
  uint64_t s = 42;
  for (int64_t i = 0; i < n; i++) { /* uniform in a cube, then normalised: unit vectors */
    double norm = 0;
    float *row = x + i * d;
    for (int64_t t = 0; t < d; t++) {
      s = s * 6364136223846793005ull + 1442695040888963407ull;
      row[t] = (float)((double)(s >> 40) / 16777216.0 - 0.5);
      norm += (double)row[t] * row[t];
    }
    for (int64_t t = 0; t < d; t++) row[t] = (float)(row[t] / sqrt(norm));
  }
  vkft_kmeans_desc kd = {.k = (int)k, .seed = 1, .max_iter = (int)iters, .threads = (int)threads};
  vkft_kmeans_stats st;
  double t0 = vkft_time_s();
  int status = vkft_kmeans(x, (size_t)n, (size_t)d, &kd, assign, NULL, &st);
  double seconds = vkft_time_s() - t0;
  free(x);
  free(assign);
  if (status != VKFT_OK) return cli_fail();
  /* dot products: k per row per iteration, plus k - 1 rounds of seeding */
  double macs = (double)n * (double)d * (double)k * (st.iterations + 1);
  int used = threads > 0 ? (int)threads : vkft_cpu_count();
  if (json)
    printf("{\"n\": %lld, \"d\": %lld, \"k\": %lld, \"iterations\": %d, \"threads\": %d, "
           "\"seconds\": %.3f, \"gflops\": %.2f}\n",
           (long long)n, (long long)d, (long long)k, st.iterations, used, seconds,
           2 * macs / seconds / 1e9);
  else
    printf("k-means: %lld x %lld, k = %lld: seeding + %d Lloyd iterations in %.2f s on %d "
           "threads (%.2f GFLOP/s of dot products)\n",
           (long long)n, (long long)d, (long long)k, st.iterations, seconds, used,
           2 * macs / seconds / 1e9);
  return 0;
}
