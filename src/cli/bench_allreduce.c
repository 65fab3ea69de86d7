/* `vkft bench allreduce [--max-mib N] [--iters N] [--json]`, under a launcher (mpirun -np N
 * vkft bench allreduce): the all-reduce bandwidth the current ranks achieve through the MPI
 * library, for message sizes from 4 KiB up to --max-mib (default 64) MiB in steps of 4x — the
 * number docs/SCALING.md's model of data-parallel step time takes. Rank 0 prints, per size: the
 * median time of one in-place fp32 sum over --iters (default 10) repetitions, the algorithm
 * bandwidth (bytes / time) and the bus bandwidth (bytes x 2(N-1)/N / time: what a ring moves
 * per rank, comparable across N and with nccl-tests' "busbw"). */
#include "commands.h"

#include "vkft/dist.h"
#include "vkft/error.h"

#include <stdio.h>
#include <string.h>

static int bench(vkft_dist *d, int argc, char **argv, int *usage) {
  int64_t max_mib = 64, iters = 10;
  int json = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--json")) {
      json = 1;
    } else if (!strcmp(argv[i], "--max-mib") && i + 1 < argc) {
      if (cli_int_option("--max-mib", argv[++i], 1, 4096, &max_mib) != VKFT_OK)
        return *usage = 1, VKFT_ERR;
    } else if (!strcmp(argv[i], "--iters") && i + 1 < argc) {
      if (cli_int_option("--iters", argv[++i], 1, 10000, &iters) != VKFT_OK)
        return *usage = 1, VKFT_ERR;
    } else {
      vkft_error("usage: vkft bench allreduce [--max-mib N] [--iters N] [--json] (under mpirun "
                 "-np N)");
      return *usage = 1, VKFT_ERR;
    }
  }
  if (!vkft_dist_library())
    return vkft_error_with(VKFT_ERR_UNSUPPORTED, "this vkft was built without MPI: nothing to "
                                                 "measure (vkft devices says so)");
  if (!d)
    return vkft_error_with(VKFT_ERR_UNSUPPORTED,
                           "vkft bench allreduce measures between ranks: run it under a "
                           "launcher, e.g. mpirun -np 2 vkft bench allreduce");
  int rank = vkft_dist_rank(d), n = vkft_dist_size(d);
  double ring = n > 1 ? 2.0 * (n - 1) / n : 0;
  if (rank == 0 && !json)
    printf("all-reduce (fp32 sum, in place) over %d ranks, %s; median of %lld\n%12s %12s %14s "
           "%14s\n",
           n, vkft_dist_library(), (long long)iters, "bytes", "time_us", "algbw_GB/s",
           "busbw_GB/s");
  if (rank == 0 && json)
    printf("{\"ranks\": %d, \"library\": \"%s\", \"sizes\": [", n, vkft_dist_library());
  int first = 1;
  for (int64_t bytes = 4096; bytes <= max_mib << 20; bytes *= 4) {
    double s;
    if (vkft_dist_time_allreduce(d, (size_t)bytes / 4, (int)iters, &s) != VKFT_OK) return VKFT_ERR;
    double alg = s > 0 ? (double)bytes / s / 1e9 : 0;
    if (rank == 0 && json)
      printf("%s{\"bytes\": %lld, \"time_us\": %.2f, \"algbw_gbps\": %.4f, \"busbw_gbps\": %.4f}",
             first ? "" : ", ", (long long)bytes, s * 1e6, alg, alg * ring);
    else if (rank == 0)
      printf("%12lld %12.2f %14.4f %14.4f\n", (long long)bytes, s * 1e6, alg, alg * ring);
    fflush(stdout);
    first = 0;
  }
  if (rank == 0 && json) printf("]}\n");
  return VKFT_OK;
}

int vkft_bench_allreduce(int argc, char **argv) {
  vkft_dist *d;
  if (vkft_dist_init(&d) != VKFT_OK) return cli_fail();
  int usage = 0, status = bench(d, argc, argv, &usage);
  /* the error is printed once, by the lowest rank that had it (a bad option: rank 0) */
  status = vkft_dist_settle(d, status);
  int peer = vkft_dist_peer_failed(d);
  vkft_dist_finalize(d);
  if (status == VKFT_OK) return CLI_EXIT_OK;
  if (usage) {
    if (!peer) fprintf(stderr, "vkft: %s\n", vkft_error_message());
    return CLI_EXIT_USAGE;
  }
  return peer ? cli_exit_code(vkft_error_code()) : cli_fail();
}
