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

#endif

/* ---- cross-entropy of the LM head (src/ops/cross_entropy.c) ----
 * logits = h W^T, log-softmax over the vocabulary, loss of every trained token, and (when dh is
 * given) the backward in the same call. h (T, C) fp32; W (V, C) f32, f16 or bf16; labels (T)
 * int32, already shifted by the caller (labels[t] is the target of position t); -100 (any
 * label outside [0, V)) is not trained. loss (fp32 [2]) receives the sum of the trained tokens'
 * losses and their count: a count of 0 is the caller's to handle (the sum is then 0).
 * dh (T, C), if not NULL, is written with grad_scale * dloss/dh (grad_scale = 1 / trained tokens
 * of the whole optimizer step, so accumulation gives the big-batch gradient); dW (V, C) fp32, if
 * not NULL (a trainable head; needs dh), is accumulated into. The (T, V) logits are never
 * materialised: the vocabulary goes in chunks of `chunk` columns (<= 0: a default) through
 * `scratch`, fp32 of vkft_cross_entropy_scratch_elems(T, V, chunk) elements. */
int vkft_cross_entropy(vkft_backend *be, const vkft_tensor *h, const vkft_tensor *w,
                       const vkft_tensor *labels, int64_t T, int64_t C, int64_t V, float grad_scale,
                       vkft_tensor *dh, vkft_tensor *dw, vkft_tensor *loss, vkft_tensor *scratch,
                       int64_t chunk);
/* The chunk width actually used for a requested `chunk` (a multiple of 4, at most V rounded up). */
int64_t vkft_cross_entropy_chunk(int64_t V, int64_t chunk);
/* A chunk whose (T, chunk) fp32 logits fit in budget_bytes (between 256 and 2048 columns). */
int64_t vkft_cross_entropy_chunk_for_budget(int64_t T, int64_t V, uint64_t budget_bytes);
int64_t vkft_cross_entropy_scratch_elems(int64_t T, int64_t V, int64_t chunk);

/* ---- LoRA (src/ops/lora.c) ----
 * x (T, in) fp32, A (r, in) and B (out, r) fp32 (trainable), s = alpha / r (or alpha / sqrt(r)).
 * Forward: u (T, r) = x A^T is written (kept for the backward) and y (T, out) += s u B^T (y
 * holds the base layer's output). Backward from dy (T, out): dB += s dy^T u, du = s dy B,
 * dA += du^T x, dx += du A (dx may be NULL: the input needs no gradient); du (T, r) is scratch. */
int vkft_lora(vkft_backend *be, const vkft_tensor *x, const vkft_tensor *a, const vkft_tensor *b,
              vkft_tensor *y, vkft_tensor *u, int64_t T, int64_t in, int64_t out, int64_t r,
              float s);
int vkft_lora_bwd(vkft_backend *be, const vkft_tensor *x, const vkft_tensor *a,
                  const vkft_tensor *b, const vkft_tensor *u, const vkft_tensor *dy,
                  vkft_tensor *dx, vkft_tensor *da, vkft_tensor *db, vkft_tensor *du, int64_t T,
                  int64_t in, int64_t out, int64_t r, float s);
