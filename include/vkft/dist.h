/* Data-parallel training over MPI (src/dist). `mpirun -np N vkft train ...` starts N processes
 * (ranks), one per device; every rank holds the whole model and computes its share of each
 * optimizer step's micro-batches, the gradients are summed across ranks, and every rank applies
 * the same update. Rank 0 alone writes the output folder.
 *
 * The sum is exact: rank r computes micro-batches r*g .. r*g+g-1 of the step (g =
 * train.grad_accum), keeps each one's gradient apart, and the gradients are added in micro-batch
 * order by the same device add the single-process accumulation uses — so N ranks give the bits
 * of one process with grad_accum N*g, and a run's bits never depend on timing (docs/SCALING.md
 * says where this holds and what it costs).
 *
 * A build without MPI (CMake did not find it; always on Windows) has every function below and
 * behaves as a single process. Without a launcher's environment MPI is never initialised: a
 * plain `vkft train` does not touch it. */
#ifndef VKFT_DIST_H
#define VKFT_DIST_H

#include "vkft/model.h"
#include "vkft/ops.h"

#include <stddef.h>
#include <stdint.h>

typedef struct vkft_dist vkft_dist;

/* The MPI library this build uses ("Open MPI v4.1.4, ..."), or NULL when built without MPI. */
const char *vkft_dist_library(void);

/* Joins the job when a launcher (mpirun, mpiexec, srun) started this process: *out is the
 * job's context, or NULL when the process runs alone (no launcher; VKFT_MPI=0 also says so).
 * A build without MPI started as one of several ranks fails with a clear message. */
int vkft_dist_init(vkft_dist **out);
/* Leaves the job (every rank calls it); NULL does nothing. */
void vkft_dist_finalize(vkft_dist *d);

int vkft_dist_rank(const vkft_dist *d);       /* 0 for NULL */
int vkft_dist_size(const vkft_dist *d);       /* 1 for NULL */
int vkft_dist_local_rank(const vkft_dist *d); /* among the ranks of this machine; 0 for NULL */
int vkft_dist_local_size(const vkft_dist *d); /* ranks on this machine; 1 for NULL */

/* Failing together. Any rank may fail on its own (bad data, out of memory, a lost device, a full
 * disk on rank 0); the others must then stop too, not wait forever in a collective. The rule
 * that makes it work: every collective of src/dist other than the agreement below is reached
 * only right after a successful agreement, in every rank's sequence. So a rank that fails
 * returns its error up as usual and, on its way out, calls vkft_dist_settle once: that is an
 * agreement, and it meets the other ranks' next one. They learn that a rank failed, and stop.
 *
 * vkft_dist_agree: every rank passes its status (VKFT_OK, or VKFT_ERR with the error set);
 * VKFT_OK when every rank succeeded. Otherwise VKFT_ERR on every rank: the lowest failing rank
 * keeps its error (it is the one that prints it), the others get "rank R failed" with R's error
 * code and vkft_dist_peer_failed() set, so they exit with the same status and print nothing.
 * Returns status unchanged for NULL. vkft_dist_agree_max also takes the maximum of n (<= 6)
 * values over the ranks (when every rank succeeded). */
int vkft_dist_agree(vkft_dist *d, int status);
int vkft_dist_agree_max(vkft_dist *d, int status, int64_t *values, int n);
/* An agreement that every rank passed the same value (a checksum of what it was given): else
 * VKFT_ERR on every rank, saying that `what` differs across ranks. */
int vkft_dist_same(vkft_dist *d, int status, uint32_t value, const char *what);
/* The last agreement of a rank, once, on its way out: an agreement on status, unless an earlier
 * one already failed (then every rank knows, and status is returned as it is). */
int vkft_dist_settle(vkft_dist *d, int status);
int vkft_dist_peer_failed(const vkft_dist *d);
/* Every rank's values summed (after a successful agreement, as every collective). */
void vkft_dist_sum_i64(vkft_dist *d, int64_t *values, int n);
/* bytes of data from rank root to every rank. */
void vkft_dist_bcast(vkft_dist *d, void *data, size_t bytes, int root);

/* `vkft bench allreduce`, collective: seconds of one all-reduce (sum, in place) of n floats by
 * the MPI library, the median of `iters` after one warm-up, the slowest rank's (the same value
 * on every rank). */
int vkft_dist_time_allreduce(vkft_dist *d, size_t n, int iters, double *seconds);

/* ---- the step's gradients (src/dist/grads.c) ----
 * Built on the trainable parameters of a model; NULL (a single process) is accepted where noted
 * and means "nothing to do". The trainable gradients form one flat vector (parameters in order);
 * rank r owns the r-th of N equal pieces: it sums that piece of every micro-batch's gradient
 * and, with ZeRO-1, holds the AdamW moments of that piece only and updates only it. */
typedef struct vkft_dist_grads vkft_dist_grads;
typedef struct vkft_dist_grads_desc {
  vkft_dist *dist;
  vkft_backend *be;
  const vkft_param *params; /* the model's parameters (vkft_model_params) */
  int n_params;
  int micro_batches; /* per rank and step (train.grad_accum) */
  int zero;          /* 1: ZeRO stage 1, the optimizer state sharded across ranks */
} vkft_dist_grads_desc;
int vkft_dist_grads_create(const vkft_dist_grads_desc *desc, vkft_dist_grads **out);
void vkft_dist_grads_free(vkft_dist_grads *g);

/* Bytes of device and host memory the exchange holds (the memory plan). */
void vkft_dist_grads_memory(const vkft_dist_grads *g, uint64_t *device, uint64_t *host);

/* Records into the current stream, after micro-batch `slot`'s backward: its gradients are kept
 * apart and the gradient tensors zeroed for the next one. */
int vkft_dist_grads_keep(vkft_dist_grads *g, int slot);
/* Collective, after every rank recorded its `slots` micro-batches of the step into the current
 * stream (the step has `step_batches` over all ranks; rank r has the ones from r *
 * micro_batches on): ends the stream, exchanges the kept gradients and sums them in micro-batch
 * order, and begins a new stream (left open) that copies the sum into every gradient tensor —
 * the same on every rank. */
int vkft_dist_grads_reduce(vkft_dist_grads *g, int slots, int64_t step_batches);
/* Collective, after the optimizer's stream ended: with ZeRO-1 every rank's updated part of the
 * trainable values goes to every rank. `mine` holds `width` (<= 4) doubles for each of this
 * rank's micro_batches slots (the losses); *all then points to those of every micro-batch of
 * the step, in order (valid until the next call). */
int vkft_dist_grads_finish(vkft_dist_grads *g, const double *mine, int width, const double **all);

/* The part of trainable parameter `param` this rank updates: narrows value and grad to it and
 * returns 1, or 0 when it holds none of it (ZeRO-1). Without ZeRO (or g NULL): the whole, 1. */
int vkft_dist_grads_shard(const vkft_dist_grads *g, int param, vkft_tensor *value,
                          vkft_tensor *grad);
/* The elements [*offset, *offset + *n) of parameter `param` whose optimizer state this rank
 * holds (all of them without ZeRO, or for g NULL: *n = the parameter's size). */
void vkft_dist_grads_state_range(const vkft_dist_grads *g, int param, int64_t size, int64_t *offset,
                                 int64_t *n);
/* ZeRO-1 checkpoints, collective: rank 0 receives every rank's part of the moments m and v
 * (tensors per parameter, as the trainer holds them). Nothing to do without ZeRO. */
int vkft_dist_grads_gather_state(vkft_dist_grads *g, const vkft_tensor *m, const vkft_tensor *v);
/* After vkft_dist_grads_gather_state, on rank 0: a malloc'd copy of the whole moment `which`
 * (0: m, 1: v) of parameter `param`; NULL (no error set) without ZeRO. */
float *vkft_dist_grads_state_copy(const vkft_dist_grads *g, int param, int which);

#endif
