/* The Vulkan runtime: device choice and capabilities, device memory, pipelines built from the
 * SPIR-V embedded in the binary, and the command stream that records a whole step.
 *
 * Device memory is addressed through buffer device addresses (Vulkan 1.2 core), so a shader
 * sees a tensor as a 64-bit pointer passed in push constants. That sidesteps
 * maxStorageBufferRange (128 MiB on lavapipe): a tensor is limited only by one memory
 * allocation (maxMemoryAllocationSize), and no descriptor sets exist at all. */
#ifndef VKFT_VK_H
#define VKFT_VK_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* What vkft needs to know about a physical device (probed once). */
typedef struct vkft_device_info {
  int index;
  char name[256];
  char vendor[32];
  uint32_t vendor_id, device_id;
  char type[16]; /* "discrete", "integrated", "virtual", "cpu", "other" */
  char driver[256];
  uint32_t api_version;
  int heap_count;
  uint64_t heap_size[16];
  int heap_device_local[16];
  uint32_t subgroup_size, subgroup_min, subgroup_max;
  int subgroup_size_control; /* VK_EXT_subgroup_size_control usable for compute */
  int subgroup_arithmetic, subgroup_shuffle;
  int fp16_arith, bf16, int8_arith, storage16, storage8;
  int coopmat; /* VK_KHR_cooperative_matrix present */
  /* its fp16 x fp16 -> fp32 subgroup shape vkft uses (coopmat_m = 0: none usable, why says
   * why), and every such shape the device lists, "MxNxK ..." (for `vkft devices`) */
  uint32_t coopmat_m, coopmat_n, coopmat_k;
  char coopmat_why[96], coopmat_shapes[128];
  int memory_model;        /* vulkanMemoryModel (the cooperative-matrix shaders use it) */
  uint8_t device_uuid[16]; /* with driver_version: what a pipeline cache is valid for */
  uint32_t driver_version;
  int buffer_device_address, int64;
  int memory_budget; /* VK_EXT_memory_budget */
  int timestamps;
  double timestamp_period_ns;
  uint32_t max_shared_memory, max_workgroup_invocations, max_push_constants;
  uint32_t max_workgroup_count[3];
  uint64_t max_storage_buffer_range, max_allocation_size, max_buffer_size;
  int usable; /* meets vkft's minimum (Vulkan 1.2, buffer device address, int64) */
  char unusable_why[128];
} vkft_device_info;

/* Loads the Vulkan loader (volk). Fails with a clear message if none is installed. */
int vkft_vk_load(void);

/* Lists all physical devices. *infos is malloc'd; *chosen is the index vkft would pick
 * (discrete > integrated > virtual > cpu among usable devices; -1 if none is usable). */
int vkft_vk_list_devices(vkft_device_info **infos, int *count, int *chosen);

typedef struct vkft_device vkft_device;

typedef struct vkft_device_desc {
  int index;    /* physical device index, -1: VKFT_DEVICE or automatic choice */
  int validate; /* -1: VKFT_VALIDATE env; 0 off; 1 on */
  int profile;  /* GPU timestamps per dispatch */
} vkft_device_desc;

int vkft_device_create(const vkft_device_desc *desc, vkft_device **out);
void vkft_device_destroy(vkft_device *dev);
const vkft_device_info *vkft_device_get_info(const vkft_device *dev);
/* The pipeline cache the device started from (src/vk/pipeline_cache.c): bytes of the driver's
 * data loaded (0: none), and a warning when a cache file was there but ignored (corrupt, or
 * for another device or driver), else NULL. VKFT_PIPELINE_CACHE names the file ("off": none). */
uint64_t vkft_device_pipeline_cache_loaded(const vkft_device *dev);
const char *vkft_device_pipeline_cache_warning(const vkft_device *dev);
/* Number of validation-layer messages of severity WARNING or ERROR seen so far. */
int vkft_device_validation_errors(const vkft_device *dev);

/* ---- memory ---- */
typedef struct vkft_buffer {
  uint64_t addr; /* device address of the first byte */
  uint64_t size;
  void *mapped; /* host pointer if the memory is host-visible, else NULL */
  void *block;  /* internal */
  uint64_t offset;
} vkft_buffer;

/* Sub-allocates from large device-memory blocks; a request larger than a block gets its own
 * allocation. Fails with a clear "out of device memory" message past the heap budget. */
int vkft_buffer_alloc(vkft_device *dev, uint64_t size, vkft_buffer *out);
void vkft_buffer_free(vkft_device *dev, vkft_buffer *buf);
int vkft_buffer_upload(vkft_device *dev, const vkft_buffer *buf, uint64_t offset, const void *src,
                       uint64_t size);
int vkft_buffer_download(vkft_device *dev, const vkft_buffer *buf, uint64_t offset, void *dst,
                         uint64_t size);
uint64_t vkft_device_memory_in_use(const vkft_device *dev);
uint64_t vkft_device_memory_budget(const vkft_device *dev);

/* ---- shaders and dispatch ---- */

/* A range of device memory a dispatch touches; the stream inserts a barrier only where a
 * dispatch reads or writes memory that an earlier dispatch since the last barrier wrote
 * (or writes memory an earlier one read). */
typedef struct vkft_range {
  uint64_t addr, size;
} vkft_range;

#define VKFT_MAX_SPEC 12
#define VKFT_MAX_RANGES 12

typedef struct vkft_dispatch_desc {
  const char *shader;           /* name of an embedded SPIR-V module */
  uint32_t spec[VKFT_MAX_SPEC]; /* specialization constants 0..spec_count-1 */
  int spec_count;
  uint32_t subgroup_size; /* required subgroup size, 0 = driver's choice */
  const void *push;       /* push constants */
  uint32_t push_size;
  uint32_t groups[3];
  vkft_range reads[VKFT_MAX_RANGES], writes[VKFT_MAX_RANGES];
  int read_count, write_count;
  const char *label; /* for --profile (a static string); defaults to the shader name */
} vkft_dispatch_desc;

/* Recording: dispatches go into one command buffer until vkft_stream_submit, which submits
 * it once and waits. Large dispatches are split into several of at most the device's maximum
 * group count by the caller-facing helpers in src/ops. */
int vkft_stream_begin(vkft_device *dev);
int vkft_stream_dispatch(vkft_device *dev, const vkft_dispatch_desc *d);
int vkft_stream_submit(vkft_device *dev);

/* Timestamps of the last submitted stream (profile mode): per-dispatch milliseconds. */
typedef struct vkft_profile_entry {
  const char *label;
  double ms;
} vkft_profile_entry;
int vkft_stream_profile(const vkft_device *dev, const vkft_profile_entry **entries, int *count);

/* Embedded shaders (generated at build time). */
typedef struct vkft_spirv {
  const char *name;
  const uint32_t *code;
  size_t size; /* bytes */
} vkft_spirv;
const vkft_spirv *vkft_spirv_find(const char *name);
const vkft_spirv *vkft_spirv_all(int *count);

#ifdef __cplusplus
}
#endif
#endif
