/* Kernel variants: the implementations (and tile configurations) a Vulkan backend can choose
 * from for an op family, which of them this device uses, and the switches the self-check and
 * the tests need: force one variant for every call, or disable one that failed the self-check
 * (a buggy driver costs speed, never correctness). */
#ifndef VKFT_KERNELS_H
#define VKFT_KERNELS_H

#include "vkft/ops.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct vkft_kernel_variant {
  char name[32];      /* e.g. "matmul_tiled_128": what VKFT_MATMUL=... names */
  char detail[96];    /* tile sizes, subgroup size, precision */
  const char *family; /* the op-table family whose rows exercise it ("matmul") */
  int available;      /* compiled in and runnable on this device */
  int used;           /* the automatic choice uses it for some shapes */
  int disabled;       /* failed the self-check: not used in this run */
  char why[96];       /* why it is not available */
} vkft_kernel_variant;

/* The backend's variants (a table it owns; empty for the reference backend). */
const vkft_kernel_variant *vkft_kernel_variants(const vkft_backend *be, int *count);
/* Every call of the variant's family uses variant `index` (-1: back to the automatic choice,
 * or to VKFT_MATMUL's kernel when that names one). Fails, naming the variant and why, when it is
 * not available. With VKFT_MATMUL set, that kernel alone is `used`, unless disabled. */
int vkft_kernel_force(vkft_backend *be, int index);
/* The automatic choice stops using variant `index` (its fallback takes over). The kernel for
 * CPU drivers, every family's last fallback, cannot be disabled: returns VKFT_ERR. */
int vkft_kernel_disable(vkft_backend *be, int index);

#ifdef __cplusplus
}
#endif
#endif
