/* The op API the model is written against. Every op has one entry here, implemented by two
 * backends: the Vulkan backend records a dispatch of shaders/<op>.comp into the current
 * stream, the CPU reference backend runs src/ref/<op>.c at once. Running the same model code
 * on both is how the whole model is tested (DESIGN.md, "One model, two backends"). */
#ifndef VKFT_OPS_H
#define VKFT_OPS_H

#include "vkft/dtype.h"
#include "vkft/ref.h"
#include "vkft/vk.h"

#include <stdint.h>

typedef struct vkft_backend vkft_backend;

/* A flat tensor of n elements of one dtype; shapes are the op's business (comments at each
 * op). A view shares storage at an element offset. */
typedef struct vkft_tensor {
  vkft_dtype dtype;
  int64_t n;
  void *host;      /* reference backend storage */
  vkft_buffer buf; /* Vulkan backend storage (buf.addr includes the view offset) */
  int owns;        /* 0 for views */
} vkft_tensor;

/* The CPU reference backend (no device). */
int vkft_backend_ref_create(vkft_backend **out);
/* The Vulkan backend on an open device (the backend does not own the device). */
int vkft_backend_vk_create(vkft_device *dev, vkft_backend **out);
void vkft_backend_destroy(vkft_backend *be);
const char *vkft_backend_name(const vkft_backend *be);
vkft_device *vkft_backend_device(const vkft_backend *be); /* NULL for the reference */

int vkft_tensor_alloc(vkft_backend *be, vkft_dtype dtype, int64_t n, vkft_tensor *t);
void vkft_tensor_free(vkft_backend *be, vkft_tensor *t);
vkft_tensor vkft_tensor_view(const vkft_tensor *t, int64_t offset, int64_t n);
/* Copies n elements in the tensor's own dtype from/to host memory (outside a stream). */
int vkft_tensor_write(vkft_backend *be, const vkft_tensor *t, const void *src);
int vkft_tensor_read(vkft_backend *be, const vkft_tensor *t, void *dst);

/* Ops between vkft_begin and vkft_end are recorded into one command stream (Vulkan) and run
 * at vkft_end; the reference backend runs each op immediately. */
int vkft_begin(vkft_backend *be);
int vkft_end(vkft_backend *be);

/* ---- ops ---- */

/* C = alpha * op(A) op(B) + beta * C in the orientations of vkft/ref.h. A and C are fp32; B
 * (the weight operand) may be f32, f16 or bf16 for NT and NN, f32 for TN. fp32 accumulation.
 * With beta == 0, C is only written. */
int vkft_matmul(vkft_backend *be, vkft_matmul_orient orient, const vkft_tensor *a,
                const vkft_tensor *b, vkft_tensor *c, int64_t M, int64_t N, int64_t K, float alpha,
                float beta);

/* Causal grouped-query attention over packed sequences: token i attends to token j iff
 * j <= i and seq_id[j] == seq_id[i] (ids of the whole flattened batch: give every packed
 * sequence of every batch row its own id). q is (T, Hq, D), k and v are (T, Hkv, D) fp32 with
 * Hq a multiple of Hkv (query head h reads kv head h / (Hq / Hkv)); seq_id is (T) i32.
 * Writes out (T, Hq, D) and lse (T, Hq), the log-sum-exp of the scores scale * <q, k> that
 * the backward needs (scale is usually 1 / sqrt(D)). Flash style: no T x T matrix exists.
 * Outputs must not overlap inputs (the device accumulates in them). */
int vkft_attention(vkft_backend *be, const vkft_tensor *q, const vkft_tensor *k,
                   const vkft_tensor *v, const vkft_tensor *seq_id, vkft_tensor *out,
                   vkft_tensor *lse, int64_t T, int64_t Hq, int64_t Hkv, int64_t D, float scale);
/* The backward of vkft_attention from dout = dL/dout (T, Hq, D) and the forward's out and
 * lse: overwrites dq (T, Hq, D), dk and dv (T, Hkv, D) (not overlapping any input). delta is
 * caller-provided scratch of (T, Hq) fp32 (memory is planned once); it holds sum_d dout * out
 * afterwards. dk and dv sum over the query heads of a group and the query tokens in a fixed order:
 * same bits each run. */
int vkft_attention_bwd(vkft_backend *be, const vkft_tensor *q, const vkft_tensor *k,
                       const vkft_tensor *v, const vkft_tensor *seq_id, const vkft_tensor *out,
                       const vkft_tensor *lse, const vkft_tensor *dout, vkft_tensor *dq,
                       vkft_tensor *dk, vkft_tensor *dv, vkft_tensor *delta, int64_t T, int64_t Hq,
                       int64_t Hkv, int64_t D, float scale);

#endif
