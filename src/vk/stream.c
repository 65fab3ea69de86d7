/* The command stream: a step's dispatches recorded into one command buffer, a memory barrier
 * only where a dispatch depends on (or overwrites) memory touched since the last barrier,
 * one submit, and optional GPU timestamps per dispatch. */
#include "internal.h"

#include "vkft/error.h"

#include <stdlib.h>
#include <string.h>

VkPipeline vk_pipeline_for(vkft_device *dev, const vkft_dispatch_desc *d, const char **name);

int vk_stream_init(vkft_device *dev) {
  dev->pending_cap = 64;
  dev->pending_reads = malloc(dev->pending_cap * sizeof(vkft_range));
  dev->pending_writes = malloc(dev->pending_cap * sizeof(vkft_range));
  if (!dev->pending_reads || !dev->pending_writes) return vkft_error_nomem();
  if (dev->profile && !dev->info.timestamps) dev->profile = 0;
  if (dev->profile) {
    dev->query_cap = 8192;
    VkQueryPoolCreateInfo qci = {.sType = VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO,
                                 .queryType = VK_QUERY_TYPE_TIMESTAMP,
                                 .queryCount = dev->query_cap};
    if (vkCreateQueryPool(dev->device, &qci, NULL, &dev->queries) != VK_SUCCESS)
      return vkft_error_with(VKFT_ERR_DEVICE, "cannot create a timestamp query pool");
    dev->query_labels = calloc(dev->query_cap, sizeof *dev->query_labels);
    dev->profile_entries = calloc(dev->query_cap, sizeof *dev->profile_entries);
    if (!dev->query_labels || !dev->profile_entries) return vkft_error_nomem();
  }
  return VKFT_OK;
}

void vk_stream_shutdown(vkft_device *dev) {
  free(dev->pending_reads);
  free(dev->pending_writes);
  if (dev->queries) vkDestroyQueryPool(dev->device, dev->queries, NULL);
  free(dev->query_labels);
  free(dev->profile_entries);
}

int vkft_stream_begin(vkft_device *dev) {
  if (dev->recording) { /* an op failed mid-recording: that stream is discarded */
    vkEndCommandBuffer(dev->cmd);
    dev->recording = 0;
  }
  vkResetCommandBuffer(dev->cmd, 0);
  VkCommandBufferBeginInfo bi = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
                                 .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT};
  if (vkBeginCommandBuffer(dev->cmd, &bi) != VK_SUCCESS)
    return vkft_error_with(VKFT_ERR_DEVICE, "cannot begin recording");
  dev->recording = 1;
  dev->dispatch_count = 0;
  dev->barrier_count = 0;
  dev->pending_read_count = dev->pending_write_count = 0;
  dev->query_count = 0;
  if (dev->profile) {
    vkCmdResetQueryPool(dev->cmd, dev->queries, 0, dev->query_cap);
    vkCmdWriteTimestamp(dev->cmd, VK_PIPELINE_STAGE_TOP_OF_PIPE_BIT, dev->queries, 0);
    dev->query_count = 1;
  }
  return VKFT_OK;
}

static int overlaps(const vkft_range *a, const vkft_range *set, int n) {
  for (int i = 0; i < n; i++)
    if (a->addr < set[i].addr + set[i].size && set[i].addr < a->addr + a->size) return 1;
  return 0;
}

static int pending_add(vkft_device *dev, const vkft_range *r, int is_write) {
  int *count = is_write ? &dev->pending_write_count : &dev->pending_read_count;
  if (*count == dev->pending_cap) {
    int cap = dev->pending_cap * 2;
    vkft_range *a = realloc(dev->pending_reads, cap * sizeof *a);
    if (!a) return vkft_error_nomem();
    dev->pending_reads = a;
    vkft_range *b = realloc(dev->pending_writes, cap * sizeof *b);
    if (!b) return vkft_error_nomem();
    dev->pending_writes = b;
    dev->pending_cap = cap;
  }
  (is_write ? dev->pending_writes : dev->pending_reads)[(*count)++] = *r;
  return VKFT_OK;
}

int vkft_stream_dispatch(vkft_device *dev, const vkft_dispatch_desc *d) {
  if (!dev->recording) return vkft_error_with(VKFT_ERR_INTERNAL, "dispatch outside a stream");
  if (d->groups[0] == 0 || d->groups[1] == 0 || d->groups[2] == 0) return VKFT_OK;
  for (int i = 0; i < 3; i++)
    if (d->groups[i] > dev->info.max_workgroup_count[i])
      return vkft_error("%s: %u workgroups in dimension %d exceed the device limit %u", d->shader,
                        d->groups[i], i, dev->info.max_workgroup_count[i]);
  if (d->push_size > 128) return vkft_error("%s: push constants over 128 bytes", d->shader);
  const char *shader_name = NULL;
  VkPipeline pipeline = vk_pipeline_for(dev, d, &shader_name);
  if (!pipeline) return VKFT_ERR;

  /* VKFT_SYNC=1: a full barrier between every two dispatches (a debugging switch: the same
   * results with and without it mean the declared ranges cover what each op touches) */
  int hazard = dev->sync_all && dev->dispatch_count > 0;
  for (int i = 0; i < d->read_count && !hazard; i++)
    hazard = overlaps(&d->reads[i], dev->pending_writes, dev->pending_write_count);
  for (int i = 0; i < d->write_count && !hazard; i++)
    hazard = overlaps(&d->writes[i], dev->pending_writes, dev->pending_write_count) ||
             overlaps(&d->writes[i], dev->pending_reads, dev->pending_read_count);
  if (hazard) {
    VkMemoryBarrier mb = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
                          .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_SHADER_READ_BIT,
                          .dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT};
    vkCmdPipelineBarrier(dev->cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT,
                         VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, 0, 1, &mb, 0, NULL, 0, NULL);
    dev->pending_read_count = dev->pending_write_count = 0;
    dev->barrier_count++;
  }
  for (int i = 0; i < d->read_count; i++)
    if (pending_add(dev, &d->reads[i], 0) != VKFT_OK) return VKFT_ERR;
  for (int i = 0; i < d->write_count; i++)
    if (pending_add(dev, &d->writes[i], 1) != VKFT_OK) return VKFT_ERR;

  vkCmdBindPipeline(dev->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, pipeline);
  if (d->push_size)
    vkCmdPushConstants(dev->cmd, dev->layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, d->push_size,
                       d->push);
  vkCmdDispatch(dev->cmd, d->groups[0], d->groups[1], d->groups[2]);
  dev->dispatch_count++;
  if (dev->profile && dev->query_count < dev->query_cap) {
    vkCmdWriteTimestamp(dev->cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, dev->queries,
                        dev->query_count);
    dev->query_labels[dev->query_count] = d->label ? d->label : shader_name;
    dev->query_count++;
  }
  return VKFT_OK;
}

int vkft_stream_submit(vkft_device *dev) {
  if (!dev->recording) return vkft_error_with(VKFT_ERR_INTERNAL, "submit without a stream");
  dev->recording = 0;
  if (vkEndCommandBuffer(dev->cmd) != VK_SUCCESS)
    return vkft_error_with(VKFT_ERR_DEVICE, "cannot end recording");
  VkSubmitInfo si = {.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO,
                     .commandBufferCount = 1,
                     .pCommandBuffers = &dev->cmd};
  vkResetFences(dev->device, 1, &dev->fence);
  VkResult r = VKFT_FAULT_HIT(VKFT_FAULT_SUBMIT) ? VK_ERROR_DEVICE_LOST
                                                 : vkQueueSubmit(dev->queue, 1, &si, dev->fence);
  if (r == VK_SUCCESS) r = vkWaitForFences(dev->device, 1, &dev->fence, VK_TRUE, UINT64_MAX);
  if (r != VK_SUCCESS)
    return vkft_error_with(vk_result_code(r), "GPU work failed (%s)%s", vk_result_string(r),
                           r == VK_ERROR_DEVICE_LOST
                               ? ": the driver reset the device (a watchdog "
                                 "timeout or a driver bug; try `vkft selftest`)"
                               : "");
  dev->profile_count = 0;
  if (dev->profile && dev->query_count > 1) {
    uint64_t *ts = malloc(dev->query_count * sizeof *ts);
    if (!ts) return vkft_error_nomem();
    vkGetQueryPoolResults(dev->device, dev->queries, 0, dev->query_count,
                          dev->query_count * sizeof *ts, ts, sizeof *ts,
                          VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT);
    double to_ms = dev->info.timestamp_period_ns * 1e-6;
    for (uint32_t i = 1; i < dev->query_count; i++) {
      dev->profile_entries[i - 1].label = dev->query_labels[i];
      dev->profile_entries[i - 1].ms = (double)(ts[i] - ts[i - 1]) * to_ms;
    }
    dev->profile_count = (int)dev->query_count - 1;
    free(ts);
  }
  return VKFT_OK;
}

int vkft_stream_profile(const vkft_device *dev, const vkft_profile_entry **entries, int *count) {
  *entries = dev->profile_entries;
  *count = dev->profile_count;
  return VKFT_OK;
}
