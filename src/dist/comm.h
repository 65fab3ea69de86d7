/* The message passing src/dist is built on, implemented over MPI (comm_mpi.c) or, in a build
 * without MPI, for one process alone (comm_none.c); CMake compiles one of the two. Sizes are in
 * bytes and may exceed what one MPI call takes (they are cut into pieces). An MPI failure is
 * fatal to the whole job (MPI_ERRORS_ARE_FATAL: the launcher stops every rank), so nothing here
 * returns one; a rank that fails on its own says so through vkft_dist_agree. */
#ifndef VKFT_DIST_COMM_H
#define VKFT_DIST_COMM_H

#include <stddef.h>
#include <stdint.h>

typedef struct comm_info {
  int rank, size;             /* in the job */
  int local_rank, local_size; /* among the ranks of this machine */
} comm_info;

typedef enum comm_op { COMM_SUM, COMM_MAX } comm_op;

/* The library's version line, or NULL without MPI. */
const char *comm_library(void);
/* Initialises MPI (the first call only); VKFT_ERR with a message if it cannot. */
int comm_init(comm_info *info);
void comm_finalize(void);
void comm_allreduce_i64(int64_t *values, int n, comm_op op);
void comm_bcast(void *data, size_t bytes, int root);
/* `bytes` from every rank, in rank order, into all (size * bytes). */
void comm_allgather(const void *mine, void *all, size_t bytes);
/* Sends to dest and receives from source at once (either may be this rank's own). */
void comm_sendrecv(const void *send, size_t send_bytes, int dest, void *recv, size_t recv_bytes,
                   int source);
/* The library's own all-reduce of n floats (MPI_SUM, in place): the benchmark's baseline. */
void comm_allreduce_f32(float *data, size_t n);
void comm_barrier(void);

#endif
