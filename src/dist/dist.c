/* The job of data-parallel training (vkft/dist.h): joining it when a launcher started this
 * process, the ranks, and the collective status check that makes one failing rank stop all. */
#include "comm.h"

#include "vkft/dist.h"
#include "vkft/error.h"
#include "vkft/platform.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct vkft_dist {
  comm_info info;
  int stopped;     /* an agreement failed: every rank knows */
  int peer_failed; /* ... and it named another rank */
};

const char *vkft_dist_library(void) {
  return comm_library();
}

/* The number of processes a launcher started, from the variables it sets for each (Open MPI,
 * MPICH/Intel MPI's PMI, MVAPICH), -1 when a PMIx launcher (srun --mpi=pmix, Open MPI 5) gives
 * no count, 0 without a launcher. VKFT_MPI=0 runs alone even under one. */
static int launched_size(void) {
  const char *off = getenv("VKFT_MPI");
  if (off && !strcmp(off, "0")) return 0;
  const char *vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "MV2_COMM_WORLD_SIZE"};
  for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
    const char *v = getenv(vars[i]);
    if (v && atoi(v) > 0) return atoi(v);
  }
  return getenv("PMIX_RANK") ? -1 : 0;
}

int vkft_dist_init(vkft_dist **out) {
  *out = NULL;
  int size = launched_size();
  if (size == 0) return VKFT_OK;
  if (!comm_library()) {
    if (size == 1) return VKFT_OK;
    char ranks[16] = "several";
    if (size > 0) snprintf(ranks, sizeof ranks, "%d", size);
    return vkft_error_with(VKFT_ERR_UNSUPPORTED,
                           "started by an MPI launcher as one of %s ranks, but this vkft was built "
                           "without MPI (install an MPI library, e.g. Debian's libopenmpi-dev, and "
                           "rebuild; or run it without mpirun)",
                           ranks);
  }
  vkft_dist *d = calloc(1, sizeof *d);
  if (!d) return vkft_error_nomem();
  if (comm_init(&d->info) != VKFT_OK) {
    free(d);
    return VKFT_ERR;
  }
  *out = d;
  return VKFT_OK;
}

void vkft_dist_finalize(vkft_dist *d) {
  if (!d) return;
  comm_finalize();
  free(d);
}

int vkft_dist_rank(const vkft_dist *d) {
  return d ? d->info.rank : 0;
}
int vkft_dist_size(const vkft_dist *d) {
  return d ? d->info.size : 1;
}
int vkft_dist_local_rank(const vkft_dist *d) {
  return d ? d->info.local_rank : 0;
}
int vkft_dist_local_size(const vkft_dist *d) {
  return d ? d->info.local_size : 1;
}

/* One all-reduce (maximum) of 8 numbers, whatever the caller's n, so that any agreement meets
 * any other: whether any rank failed; the lowest rank whose own failure it was, with that
 * failure's code, as (size - rank) << 16 | code (so the maximum is the lowest such rank); then
 * the caller's values. A rank already told of another's failure is no origin. */
int vkft_dist_agree_max(vkft_dist *d, int status, int64_t *values, int n) {
  if (!d) return status;
  if (n > 6) return vkft_error_with(VKFT_ERR_INTERNAL, "dist: %d values to agree on", n);
  int failed = status != VKFT_OK, own = failed && !d->peer_failed;
  int64_t v[8] = {failed,
                  own ? (int64_t)(d->info.size - d->info.rank) << 16 | vkft_error_code() : 0};
  for (int i = 0; i < n; i++) v[2 + i] = values[i];
  comm_allreduce_i64(v, 8, COMM_MAX);
  if (!v[0]) {
    for (int i = 0; i < n; i++) values[i] = v[2 + i];
    return VKFT_OK;
  }
  d->stopped = 1;
  if (!v[1]) return VKFT_ERR; /* every failing rank already knew: the messages stand */
  int origin = d->info.size - (int)(v[1] >> 16);
  if (origin == d->info.rank) return VKFT_ERR;
  d->peer_failed = 1;
  return vkft_error_with((vkft_errcode)(v[1] & 0xffff),
                         "stopped: rank %d failed (its message says why)", origin);
}

int vkft_dist_agree(vkft_dist *d, int status) {
  return vkft_dist_agree_max(d, status, NULL, 0);
}

int vkft_dist_same(vkft_dist *d, int status, uint32_t value, const char *what) {
  int64_t v[2] = {value, -(int64_t)value}; /* max and -min: equal values give v[0] == -v[1] */
  if (vkft_dist_agree_max(d, status, v, 2) != VKFT_OK) return VKFT_ERR;
  if (v[0] == -v[1]) return VKFT_OK;
  return vkft_error("the ranks do not run the same job: %s differ across ranks (every rank "
                    "must be given the same files and options)",
                    what);
}

int vkft_dist_settle(vkft_dist *d, int status) {
  if (!d || d->stopped) return status;
  return vkft_dist_agree(d, status);
}

int vkft_dist_peer_failed(const vkft_dist *d) {
  return d ? d->peer_failed : 0;
}

void vkft_dist_sum_i64(vkft_dist *d, int64_t *values, int n) {
  if (d) comm_allreduce_i64(values, n, COMM_SUM);
}

void vkft_dist_bcast(vkft_dist *d, void *data, size_t bytes, int root) {
  if (d) comm_bcast(data, bytes, root);
}

static int by_value(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int vkft_dist_time_allreduce(vkft_dist *d, size_t n, int iters, double *seconds) {
  *seconds = 0;
  if (!d) return vkft_error_with(VKFT_ERR_UNSUPPORTED, "dist: no job to time an all-reduce in");
  float *data = malloc((n ? n : 1) * sizeof *data);
  double *times = malloc((size_t)(iters > 0 ? iters : 1) * sizeof *times);
  int status = data && times ? VKFT_OK : vkft_error_nomem();
  if (vkft_dist_agree(d, status) != VKFT_OK) {
    free(data);
    free(times);
    return VKFT_ERR;
  }
  for (size_t i = 0; i < n; i++) data[i] = (float)(i % 7); /* exact sums: no denormals, no inf */
  for (int k = -1; k < iters; k++) {
    comm_barrier(); /* every rank starts together: the time is the collective's, not a skew */
    double t0 = vkft_time_s();
    comm_allreduce_f32(data, n);
    if (k >= 0) times[k] = vkft_time_s() - t0;
  }
  qsort(times, (size_t)iters, sizeof *times, by_value);
  int64_t ns = iters > 0 ? (int64_t)(times[iters / 2] * 1e9) : 0;
  comm_allreduce_i64(&ns, 1, COMM_MAX);
  *seconds = (double)ns * 1e-9;
  free(data);
  free(times);
  return VKFT_OK;
}
