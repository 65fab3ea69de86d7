/* Backend internals shared by the op implementations in src/ops/. */
#ifndef VKFT_OPS_BACKEND_H
#define VKFT_OPS_BACKEND_H

#include "vkft/ops.h"

/* Every VKFT_* environment variable, in one place. The tuning overrides below are read once,
 * when a Vulkan backend is created (vkft_backend_vk_create), into vkft_tuning; the device
 * variables are read by src/vk when a device is opened.
 *
 * | variable             | read into / by           | effect                                      |
 * | -------------------- | ------------------------ | ------------------------------------------- |
 * | VKFT_MATMUL_RM, _RN  | tuning.matmul_rm, _rn    | matmul register tile (rows x columns per    |
 * |                      |                          | invocation); both set, multiples of 4, <= 64|
 * | VKFT_ATTN_WG         | tuning.attn_wg           | attention workgroup size, 1..256            |
 * | VKFT_ATTN_R          | tuning.attn_r            | attention rows owned per invocation, 1..16  |
 * | VKFT_ATTN_C          | tuning.attn_c            | attention other-side rows per step, 1..16   |
 * | VKFT_LORA_MATMUL     | tuning.lora_generic      | 1: LoRA through the generic matmul instead  |
 * |                      |                          | of the skinny kernels (to compare)          |
 * | VKFT_DEVICE          | src/vk/device.c, CLI     | index of the device to use                  |
 * | VKFT_VALIDATE        | src/vk/device.c          | 1: Khronos validation layer on; 2: enabled  |
 * |                      |                          | outside vkft (Wine)                         |
 * | VKFT_VERBOSE         | src/vk/device.c          | print the driver's informational messages   |
 * | VKFT_FORCE_STAGING   | src/vk/memory.c          | 1: staging transfers even on host-visible   |
 * |                      |                          | memory (tests the discrete-GPU path)        |
 * | VKFT_MEMORY_LIMIT_MB | src/vk/memory.c          | device memory budget (tests out-of-memory)  |
 * | VKFT_SYNC            | src/vk/device.c          | 1: a full barrier after every dispatch (to  |
 * |                      |                          | rule out a missing barrier: same bits)      |
 * | VKFT_QUANT_GENERIC   | src/quant/bnb4.c         | 1: the portable 4-bit quantizer loops, not  |
 * |                      |                          | the AVX2 build (to compare)                 |
 * | VKFT_FAULT           | src/core/fault.c         | fault-injection builds: fail KIND@SITE#N    |
 * | VKFT_FAULT_TRACE     | src/core/fault.c         | fault-injection builds: list reached sites  |
 * Tests only (tests/): VKFT_TEST_DATA (the shared data), VKFT_LLAMA_CPP_DIR and VKFT_NPM_DIR
 * (the llama.cpp client), VKFT_REPORT_SHOTS (keep the report's screenshots).
 * A value outside its range is ignored (the op's own choice stands). */
typedef struct vkft_tuning {
  uint32_t matmul_rm, matmul_rn;    /* 0: chosen from the shape */
  uint32_t attn_wg, attn_r, attn_c; /* 0: chosen from the device */
  int lora_generic;
} vkft_tuning;

struct vkft_backend {
  vkft_device *dev; /* NULL: reference backend */
  int recording;
  vkft_tuning tuning;
};

static inline vkft_range vk_range_of(const vkft_tensor *t) {
  vkft_range r = {t->buf.addr, vkft_tensor_bytes(t)};
  return r;
}

/* Checks that tensor t holds at least `need` elements of an allowed dtype; names the op and
 * argument in the error. */
int op_check(const char *op, const char *arg, const vkft_tensor *t, int64_t need,
             unsigned dtype_mask);
#define DT(x) (1u << (x))

/* Reference ops on tensors of any float dtype: widened (or dequantized) to fp32 copies first. */
float *ref_as_f32(const vkft_tensor *t, int64_t n);

#endif
