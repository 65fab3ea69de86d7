/* Backend internals shared by the op implementations in src/ops/. */
#ifndef VKFT_OPS_BACKEND_H
#define VKFT_OPS_BACKEND_H

#include "vkft/kernels.h"
#include "vkft/ops.h"

/* Every VKFT_* environment variable, in one place. The tuning overrides below are read once,
 * when a Vulkan backend is created (vkft_backend_vk_create), into vkft_tuning; the device
 * variables are read by src/vk when a device is opened.
 *
 * | variable             | read into / by           | effect                                      |
 * | -------------------- | ------------------------ | ------------------------------------------- |
 * | VKFT_MATMUL_RM, _RN  | tuning.matmul_rm, _rn    | matmul register tile (rows x columns per    |
 * |                      |                          | invocation); both set, multiples of 4, <= 64|
 * | VKFT_MATMUL_WN       | tuning.matmul_wn         | its invocations along n: 4, 8, 16, 32 or 64 |
 * | VKFT_MATMUL          | tuning.matmul_kernel     | the matmul kernel for every call: register, |
 * |                      |                          | tiled_32/_64/_128, coopmat_64/_128,         |
 * |                      |                          | coopmat_emu (the cooperative matrices       |
 * |                      |                          | emulated: tests on devices without them)    |
 * |                      |                          | (src/ops/matmul_kernels.c); an unknown name |
 * |                      |                          | fails backend creation                      |
 * | VKFT_MATMUL_CHOICE   | tuning.matmul_choice     | gpu or cpu: choose matmul and attention     |
 * |                      |                          | kernels as on that kind of device (tests    |
 * |                      |                          | the GPU choice on lavapipe)                 |
 * | VKFT_ATTENTION       | tuning.attention_kernel  | the attention kernel for every call: flat,  |
 * |                      |                          | tiled, coopmat or coopmat_emu (a head dim   |
 * |                      |                          | a kernel cannot take goes to the next one)  |
 * |                      |                          | (src/ops/attention.c); an unknown name      |
 * |                      |                          | fails backend creation                      |
 * | VKFT_KERNEL_FAULT    | tuning.kernel_fault      | a kernel variant's name: it computes wrong  |
 * |                      |                          | results (alpha off by 2^-10), to test the   |
 * |                      |                          | self-check                                  |
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
 * | VKFT_PIPELINE_CACHE  | src/vk/pipeline_cache.c  | the pipeline cache file; "off": none        |
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
  uint32_t matmul_rm, matmul_rn, matmul_wn; /* 0: chosen from the shape */
  char matmul_kernel[32];                   /* "": chosen per device and shape */
  char attention_kernel[32];                /* "": chosen per device */
  int matmul_choice;                /* 0: by the device's type; 1: as on a GPU; 2: as on a CPU */
  char kernel_fault[32];            /* a variant that must compute wrong results (tests) */
  uint32_t attn_wg, attn_r, attn_c; /* 0: chosen from the device */
  int lora_generic;
} vkft_tuning;

/* The matmul kernels (src/ops/matmul_kernels.c), in the order of the variant table. */
enum {
  MATMUL_REGISTER,
  MATMUL_TILED_32,
  MATMUL_TILED_64,
  MATMUL_TILED_128,
  MATMUL_COOPMAT_64,
  MATMUL_COOPMAT_128,
  MATMUL_COOPMAT_EMU, /* coopmat_64 with the matrices emulated: tests only, never chosen */
  MATMUL_KERNEL_COUNT,
  /* the attention kernels (src/ops/attention.c) */
  ATTENTION_FLAT = MATMUL_KERNEL_COUNT,
  ATTENTION_TILED,
  ATTENTION_COOPMAT,
  ATTENTION_COOPMAT_EMU, /* emulated matrices: tests only, never chosen */
  KERNEL_VARIANT_COUNT
};

struct vkft_backend {
  vkft_device *dev; /* NULL: reference backend */
  int recording;
  vkft_tuning tuning;
  vkft_kernel_variant variants[KERNEL_VARIANT_COUNT]; /* the Vulkan backend's; none on the host */
  int variant_count;
  int forced_matmul;    /* a variant index, or -1 */
  int env_matmul;       /* VKFT_MATMUL's variant, or -1: what vkft_kernel_force(be, -1) restores */
  int forced_attention; /* the same for the attention family (VKFT_ATTENTION) */
  int env_attention;
};

/* How a matmul call rounds: its inputs with unit roundoff input_unit (0: used as they are;
 * b_exact: B is not rounded), values below flush_rel times their row's largest |value| possibly
 * flushed, each addition with unit accumulate_unit. The op table derives tolerances from it. */
typedef struct vkft_matmul_precision {
  double input_unit, flush_rel, accumulate_unit;
  int b_exact;
} vkft_matmul_precision;
/* How the attention kernel chosen for head dim D rounds its inputs (0: fp32 throughout). */
int vkft_attention_precision_of(const vkft_backend *be, int64_t D, double *input_unit);
int vkft_matmul_precision_of(const vkft_backend *be, vkft_matmul_orient orient, vkft_dtype weight,
                             int64_t M, int64_t N, vkft_matmul_precision *out);

int matmul_kernels_init(vkft_backend *be);
void matmul_kernels_refresh(vkft_backend *be); /* recomputes `used` after a change */
int matmul_kernel_choose(const vkft_backend *be, int64_t M, int64_t N, int *variant);
/* The shader, specialization constants, groups and subgroup size of a GPU kernel. */
int matmul_kernel_desc(const vkft_backend *be, int variant, vkft_matmul_orient orient,
                       vkft_dtype weight, int64_t M, int64_t N, vkft_dispatch_desc *d);
float matmul_kernel_alpha(const vkft_backend *be, int variant, float alpha);
/* The attention family's variants (src/ops/attention.c): described, `used` recomputed. */
int attention_kernels_init(vkft_backend *be);
void attention_kernels_refresh(vkft_backend *be);
/* Whether a device's automatic choice is a GPU's (VKFT_MATMUL_CHOICE overrides its type). */
int kernel_choice_is_gpu(const vkft_backend *be);
/* The subgroup size the cooperative-matrix kernels are built for, required when the device can
 * (VK_EXT_subgroup_size_control); 0 when it cannot be known in advance. */
uint32_t kernel_coopmat_subgroup(const vkft_device_info *info);
/* The fp16 matrix shape they multiply with: the device's, or 16 x 16 x 16 when emulated. */
void kernel_coopmat_shape(const vkft_device_info *info, int emulated, uint32_t mnk[3]);
void matmul_kernel_precision(const vkft_backend *be, int variant, vkft_dtype weight,
                             vkft_matmul_orient orient, vkft_matmul_precision *out);

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
