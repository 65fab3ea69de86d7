/* src/dist/comm.h over MPI (any MPI-3 library; built when CMake finds one). Only the main thread
 * calls MPI (MPI_THREAD_FUNNELED): the data loader's threads never do. */
#include "comm.h"

#include "vkft/error.h"

#include <mpi.h>
#include <stdlib.h>
#include <string.h>

/* One MPI call moves at most this many bytes (counts are ints). */
#define PIECE ((size_t)1 << 30)

const char *comm_library(void) {
  static char line[MPI_MAX_LIBRARY_VERSION_STRING];
  if (!line[0]) { /* callable before MPI_Init (MPI-3) */
    int len;
    MPI_Get_library_version(line, &len);
    line[strcspn(line, ",\n")] = 0; /* "Open MPI v4.1.4", "MPICH Version: 4.0.2" */
  }
  return line;
}

int comm_init(comm_info *info) {
  int ready = 0, provided;
  MPI_Initialized(&ready);
  if (!ready && MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
    return vkft_error("MPI_Init failed (%s)", comm_library());
  MPI_Comm_rank(MPI_COMM_WORLD, &info->rank);
  MPI_Comm_size(MPI_COMM_WORLD, &info->size);
  MPI_Comm node;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, info->rank, MPI_INFO_NULL, &node);
  MPI_Comm_rank(node, &info->local_rank);
  MPI_Comm_size(node, &info->local_size);
  MPI_Comm_free(&node);
  return VKFT_OK;
}

void comm_finalize(void) {
  int ready = 0, done = 0;
  MPI_Initialized(&ready);
  MPI_Finalized(&done);
  if (ready && !done) MPI_Finalize();
}

void comm_allreduce_i64(int64_t *values, int n, comm_op op) {
  MPI_Allreduce(MPI_IN_PLACE, values, n, MPI_INT64_T, op == COMM_SUM ? MPI_SUM : MPI_MAX,
                MPI_COMM_WORLD);
}

void comm_bcast(void *data, size_t bytes, int root) {
  for (size_t at = 0; at < bytes; at += PIECE) {
    size_t n = bytes - at < PIECE ? bytes - at : PIECE;
    MPI_Bcast((char *)data + at, (int)n, MPI_BYTE, root, MPI_COMM_WORLD);
  }
}

void comm_allgather(const void *mine, void *all, size_t bytes) {
  MPI_Allgather(mine, (int)bytes, MPI_BYTE, all, (int)bytes, MPI_BYTE, MPI_COMM_WORLD);
}

/* Every piece posted at once (non-blocking), so no pattern of exchanges can wait in a cycle. */
void comm_sendrecv(const void *send, size_t send_bytes, int dest, void *recv, size_t recv_bytes,
                   int source) {
  size_t pieces = (send_bytes + PIECE - 1) / PIECE + (recv_bytes + PIECE - 1) / PIECE;
  MPI_Request small[8], *req = pieces <= 8 ? small : malloc(pieces * sizeof *req);
  if (!req) MPI_Abort(MPI_COMM_WORLD, 4); /* out of host memory in the middle of a collective */
  int count = 0;
  for (size_t at = 0; at < recv_bytes; at += PIECE) {
    size_t n = recv_bytes - at < PIECE ? recv_bytes - at : PIECE;
    MPI_Irecv((char *)recv + at, (int)n, MPI_BYTE, source, 0, MPI_COMM_WORLD, &req[count++]);
  }
  for (size_t at = 0; at < send_bytes; at += PIECE) {
    size_t n = send_bytes - at < PIECE ? send_bytes - at : PIECE;
    MPI_Isend((const char *)send + at, (int)n, MPI_BYTE, dest, 0, MPI_COMM_WORLD, &req[count++]);
  }
  MPI_Waitall(count, req, MPI_STATUSES_IGNORE);
  if (req != small) free(req);
}

void comm_allreduce_f32(float *data, size_t n) {
  for (size_t at = 0; at < n; at += PIECE / 4) {
    size_t k = n - at < PIECE / 4 ? n - at : PIECE / 4;
    MPI_Allreduce(MPI_IN_PLACE, data + at, (int)k, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
  }
}

void comm_barrier(void) {
  MPI_Barrier(MPI_COMM_WORLD);
}
