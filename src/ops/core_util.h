/* Dispatch helpers shared by the Vulkan side of the ops: grid shapes within the device's
 * workgroup-count limits and alignment tests for the vector-load paths (a view may start at
 * any element, so a shape alone never proves an address aligned). */
#ifndef VKFT_OPS_CORE_UTIL_H
#define VKFT_OPS_CORE_UTIL_H

#include "backend.h"

#include "vkft/error.h"

/* `groups` workgroups as a 2D grid (shaders/grid.glsl group_linear() undoes it): many
 * devices allow only 65535 groups per dimension, and a 16M-element op needs more. Surplus
 * groups of the last row find their index past the end and return. */
static inline int core_grid(const vkft_backend *be, const char *op, uint64_t groups,
                            uint32_t out[3]) {
  const vkft_device_info *info = vkft_device_get_info(be->dev);
  uint64_t max_x = info->max_workgroup_count[0], max_y = info->max_workgroup_count[1];
  if (max_x > 65535) max_x = 65535; /* keep group_linear() in 32 bits */
  uint64_t x = groups < max_x ? groups : max_x;
  uint64_t y = x ? (groups + x - 1) / x : 0;
  if (y > max_y)
    return vkft_error("%s: %llu workgroups exceed the device limits", op,
                      (unsigned long long)groups);
  out[0] = (uint32_t)x, out[1] = (uint32_t)y, out[2] = 1;
  return VKFT_OK;
}

/* Is the tensor's device address a multiple of `bytes` (vector loads need 16 or 8)? */
static inline int core_aligned(const vkft_tensor *t, uint64_t bytes) {
  return t->buf.addr % bytes == 0;
}

#endif
