/* Private state of the Vulkan runtime shared by the files of src/vk/. */
#ifndef VKFT_VK_INTERNAL_H
#define VKFT_VK_INTERNAL_H

#include "vkft/error.h"
#include "vkft/fault.h"
#include "vkft/vk.h"

#include <volk.h>

typedef struct vk_block {
  VkDeviceMemory memory;
  VkBuffer buffer;
  uint64_t size, addr;
  void *mapped;
  int dedicated;
  /* free list: sorted, non-overlapping [offset, offset+size) ranges */
  uint64_t *free_offset, *free_size;
  int free_count, free_cap;
  struct vk_block *next;
} vk_block;

typedef struct vk_pipeline {
  char shader[64];
  uint32_t spec[VKFT_MAX_SPEC];
  int spec_count;
  uint32_t subgroup_size;
  VkPipeline pipeline;
  struct vk_pipeline *next;
} vk_pipeline;

struct vkft_device {
  vkft_device_info info;
  VkInstance instance;
  VkDebugUtilsMessengerEXT messenger;
  VkPhysicalDevice physical;
  VkDevice device;
  VkQueue queue;
  uint32_t queue_family;
  VkCommandPool pool;
  VkCommandBuffer cmd;
  VkFence fence;
  int validation_errors;

  /* memory */
  uint32_t memory_type;
  int host_visible; /* buffers are mapped (0 when VKFT_FORCE_STAGING=1 or not host-visible) */
  uint64_t block_size, in_use, budget;
  vk_block *blocks;
  vk_block *staging; /* host-visible bounce buffer for non-mapped memory */

  /* pipelines, and the on-disk cache they are compiled through (src/vk/pipeline_cache.c) */
  VkPipelineLayout layout;
  vk_pipeline *pipelines;
  VkPipelineCache pipeline_cache;
  uint8_t pipeline_cache_uuid[VK_UUID_SIZE];
  char pipeline_cache_path[1024], pipeline_cache_warning[1200];
  uint64_t pipeline_cache_loaded;
  int pipelines_compiled;

  /* stream */
  int recording;
  int dispatch_count;
  vkft_range *pending_reads, *pending_writes;
  int pending_read_count, pending_write_count, pending_cap;
  int barrier_count;
  int sync_all; /* VKFT_SYNC=1: a barrier after every dispatch */

  /* profiling */
  int profile;
  VkQueryPool queries;
  uint32_t query_cap, query_count;
  const char **query_labels;
  vkft_profile_entry *profile_entries;
  int profile_count;
};

int vk_memory_init(vkft_device *dev);
void vk_memory_shutdown(vkft_device *dev);
void vk_pipelines_shutdown(vkft_device *dev);
int vk_pipeline_cache_init(vkft_device *dev);
void vk_pipeline_cache_shutdown(vkft_device *dev);
int vk_stream_init(vkft_device *dev);
void vk_stream_shutdown(vkft_device *dev);
const char *vk_result_string(VkResult r);
/* The error code of a failed Vulkan call (VKFT_ERR_DEVICE_LOST, _OOM, _NOMEM or _DEVICE). */
vkft_errcode vk_result_code(VkResult r);

/* One-off command buffer for transfers outside the step stream. */
int vk_oneshot_begin(vkft_device *dev, VkCommandBuffer *cmd);
int vk_oneshot_submit(vkft_device *dev, VkCommandBuffer cmd);

#endif
