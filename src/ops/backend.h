/* Backend internals shared by the op implementations in src/ops/. */
#ifndef VKFT_OPS_BACKEND_H
#define VKFT_OPS_BACKEND_H

#include "vkft/ops.h"

struct vkft_backend {
  vkft_device *dev; /* NULL: reference backend */
  int recording;
};

static inline vkft_range vk_range_of(const vkft_tensor *t) {
  vkft_range r = {t->buf.addr, (uint64_t)t->n * vkft_dtype_size(t->dtype)};
  return r;
}

/* Checks that tensor t holds at least `need` elements of an allowed dtype; names the op and
 * argument in the error. */
int op_check(const char *op, const char *arg, const vkft_tensor *t, int64_t need,
             unsigned dtype_mask);
#define DT(x) (1u << (x))

/* Reference ops on tensors of any float dtype: widened to fp32 copies first. */
float *ref_as_f32(const vkft_tensor *t, int64_t n);

#endif
