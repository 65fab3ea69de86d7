/* Device memory: large blocks, each one VkDeviceMemory bound to one VkBuffer with a device
 * address, carved into tensors by a first-fit free list. Uploads and downloads go through the
 * mapping when the memory is host-visible (lavapipe, iGPUs, resizable BAR) and through a
 * host-visible staging buffer otherwise. */
#include "internal.h"

#include "vkft/error.h"

#include <stdlib.h>
#include <string.h>

#define MiB (1024.0 * 1024.0)
#define ALIGNMENT 256 /* covers every vector load and minStorageBufferOffsetAlignment */
#define STAGING_SIZE (32u << 20)

static int find_memory_type(vkft_device *dev, VkMemoryPropertyFlags want,
                            VkMemoryPropertyFlags avoid) {
  VkPhysicalDeviceMemoryProperties mem;
  vkGetPhysicalDeviceMemoryProperties(dev->physical, &mem);
  for (uint32_t i = 0; i < mem.memoryTypeCount; i++) {
    VkMemoryPropertyFlags f = mem.memoryTypes[i].propertyFlags;
    if ((f & want) == want && !(f & avoid)) return (int)i;
  }
  return -1;
}

static uint32_t heap_of_type(vkft_device *dev, uint32_t type) {
  VkPhysicalDeviceMemoryProperties mem;
  vkGetPhysicalDeviceMemoryProperties(dev->physical, &mem);
  return mem.memoryTypes[type].heapIndex;
}

int vk_memory_init(vkft_device *dev) {
  int type =
      find_memory_type(dev, VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT, VK_MEMORY_PROPERTY_PROTECTED_BIT);
  if (type < 0) type = find_memory_type(dev, 0, VK_MEMORY_PROPERTY_PROTECTED_BIT);
  if (type < 0) return vkft_error("device %s has no usable memory type", dev->info.name);
  dev->memory_type = (uint32_t)type;
  VkPhysicalDeviceMemoryProperties mem;
  vkGetPhysicalDeviceMemoryProperties(dev->physical, &mem);
  VkMemoryPropertyFlags flags = mem.memoryTypes[type].propertyFlags;
  const char *force = getenv("VKFT_FORCE_STAGING");
  dev->host_visible = (flags & VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT) &&
                      (flags & VK_MEMORY_PROPERTY_HOST_COHERENT_BIT) && !(force && atoi(force));

  uint32_t heap = heap_of_type(dev, (uint32_t)type);
  uint64_t heap_size = mem.memoryHeaps[heap].size;
  dev->budget = heap_size / 10 * 9;
  if (dev->info.memory_budget) {
    VkPhysicalDeviceMemoryBudgetPropertiesEXT budget = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MEMORY_BUDGET_PROPERTIES_EXT};
    VkPhysicalDeviceMemoryProperties2 props = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MEMORY_PROPERTIES_2, .pNext = &budget};
    vkGetPhysicalDeviceMemoryProperties2(dev->physical, &props);
    if (budget.heapBudget[heap] > 0 && budget.heapBudget[heap] < dev->budget)
      dev->budget = budget.heapBudget[heap];
  }
  const char *limit = getenv("VKFT_MEMORY_LIMIT_MB"); /* lets tests exercise out-of-memory */
  if (limit && atoll(limit) > 0) dev->budget = (uint64_t)atoll(limit) << 20;

  uint64_t block = 256ull << 20;
  if (dev->info.max_allocation_size && block > dev->info.max_allocation_size)
    block = dev->info.max_allocation_size;
  /* a quarter of the budget at most, so a small budget (a test's limit, a small iGPU heap) is
   * not used up by the first block */
  if (block > dev->budget / 4) block = dev->budget / 4;
  if (block < (1ull << 20)) block = 1ull << 20;
  dev->block_size = block;
  return VKFT_OK;
}

static void block_destroy(vkft_device *dev, vk_block *b) {
  if (b->mapped) vkUnmapMemory(dev->device, b->memory);
  if (b->buffer) vkDestroyBuffer(dev->device, b->buffer, NULL);
  if (b->memory) vkFreeMemory(dev->device, b->memory, NULL);
  free(b->free_offset);
  free(b->free_size);
  free(b);
}

void vk_memory_shutdown(vkft_device *dev) {
  vk_block *b = dev->blocks;
  while (b) {
    vk_block *next = b->next;
    block_destroy(dev, b);
    b = next;
  }
  dev->blocks = NULL;
  if (dev->staging) block_destroy(dev, dev->staging);
  dev->staging = NULL;
}

static int block_create(vkft_device *dev, uint64_t size, uint32_t type, int map, int dedicated,
                        vk_block **out) {
  if (dev->in_use + size > dev->budget && type == dev->memory_type)
    return vkft_error_with(VKFT_ERR_OOM,
                           "out of device memory on %s: need %.1f MiB more, %.1f of %.1f MiB "
                           "budget in use (reduce micro_batch or max_len, or use a larger device)",
                           dev->info.name, size / MiB, dev->in_use / MiB, dev->budget / MiB);
  if (dev->info.max_allocation_size && size > dev->info.max_allocation_size)
    return vkft_error_with(VKFT_ERR_OOM,
                           "tensor of %.1f MiB exceeds the device's largest allocation (%.1f MiB, "
                           "maxMemoryAllocationSize) on %s",
                           size / MiB, dev->info.max_allocation_size / MiB, dev->info.name);
  vk_block *b = calloc(1, sizeof *b);
  if (!b) return vkft_error_nomem();
  b->size = size;
  b->dedicated = dedicated;
  VkBufferCreateInfo bci = {
      .sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
      .size = size,
      .usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT |
               VK_BUFFER_USAGE_TRANSFER_DST_BIT | VK_BUFFER_USAGE_SHADER_DEVICE_ADDRESS_BIT,
      .sharingMode = VK_SHARING_MODE_EXCLUSIVE};
  VkResult r = vkCreateBuffer(dev->device, &bci, NULL, &b->buffer);
  if (r != VK_SUCCESS) {
    block_destroy(dev, b);
    return vkft_error_with(vk_result_code(r), "cannot create a device buffer of %.1f MiB (%s)",
                           size / MiB, vk_result_string(r));
  }
  VkMemoryRequirements req;
  vkGetBufferMemoryRequirements(dev->device, b->buffer, &req);
  if (!(req.memoryTypeBits & (1u << type))) {
    block_destroy(dev, b);
    return vkft_error("device buffer cannot live in the chosen memory type on %s", dev->info.name);
  }
  VkMemoryAllocateFlagsInfo flags = {.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_FLAGS_INFO,
                                     .flags = VK_MEMORY_ALLOCATE_DEVICE_ADDRESS_BIT};
  VkMemoryAllocateInfo mai = {.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO,
                              .pNext = &flags,
                              .allocationSize = req.size,
                              .memoryTypeIndex = type};
  r = VKFT_FAULT_HIT(VKFT_FAULT_DEVALLOC) ? VK_ERROR_OUT_OF_DEVICE_MEMORY
                                          : vkAllocateMemory(dev->device, &mai, NULL, &b->memory);
  if (r != VK_SUCCESS) {
    block_destroy(dev, b);
    return vkft_error_with(
        r == VK_ERROR_OUT_OF_HOST_MEMORY || r == VK_ERROR_OUT_OF_DEVICE_MEMORY ? VKFT_ERR_OOM
                                                                               : vk_result_code(r),
        "out of device memory on %s: allocating %.1f MiB failed (%s) with %.1f MiB in "
        "use",
        dev->info.name, size / MiB, vk_result_string(r), dev->in_use / MiB);
  }
  vkBindBufferMemory(dev->device, b->buffer, b->memory, 0);
  if (map && vkMapMemory(dev->device, b->memory, 0, VK_WHOLE_SIZE, 0, &b->mapped) != VK_SUCCESS) {
    block_destroy(dev, b);
    return vkft_error_with(VKFT_ERR_DEVICE, "cannot map device memory");
  }
  VkBufferDeviceAddressInfo ai = {.sType = VK_STRUCTURE_TYPE_BUFFER_DEVICE_ADDRESS_INFO,
                                  .buffer = b->buffer};
  b->addr = vkGetBufferDeviceAddress(dev->device, &ai);
  b->free_cap = 8;
  b->free_offset = malloc(b->free_cap * sizeof *b->free_offset);
  b->free_size = malloc(b->free_cap * sizeof *b->free_size);
  if (!b->free_offset || !b->free_size) {
    block_destroy(dev, b);
    return vkft_error_nomem();
  }
  b->free_count = 1;
  b->free_offset[0] = 0;
  b->free_size[0] = size;
  if (type == dev->memory_type) dev->in_use += size;
  *out = b;
  return VKFT_OK;
}

static int block_take(vk_block *b, uint64_t size, uint64_t *offset) {
  for (int i = 0; i < b->free_count; i++) {
    if (b->free_size[i] < size) continue;
    *offset = b->free_offset[i];
    b->free_offset[i] += size;
    b->free_size[i] -= size;
    if (b->free_size[i] == 0) {
      memmove(b->free_offset + i, b->free_offset + i + 1,
              (b->free_count - i - 1) * sizeof(uint64_t));
      memmove(b->free_size + i, b->free_size + i + 1, (b->free_count - i - 1) * sizeof(uint64_t));
      b->free_count--;
    }
    return 1;
  }
  return 0;
}

static int block_give(vk_block *b, uint64_t offset, uint64_t size) {
  int i = 0;
  while (i < b->free_count && b->free_offset[i] < offset) i++;
  int merge_prev = i > 0 && b->free_offset[i - 1] + b->free_size[i - 1] == offset;
  int merge_next = i < b->free_count && offset + size == b->free_offset[i];
  if (merge_prev && merge_next) {
    b->free_size[i - 1] += size + b->free_size[i];
    memmove(b->free_offset + i, b->free_offset + i + 1, (b->free_count - i - 1) * sizeof(uint64_t));
    memmove(b->free_size + i, b->free_size + i + 1, (b->free_count - i - 1) * sizeof(uint64_t));
    b->free_count--;
  } else if (merge_prev) {
    b->free_size[i - 1] += size;
  } else if (merge_next) {
    b->free_offset[i] = offset;
    b->free_size[i] += size;
  } else {
    if (b->free_count == b->free_cap) {
      int cap = b->free_cap * 2;
      uint64_t *o = realloc(b->free_offset, cap * sizeof *o);
      if (!o) return VKFT_ERR;
      b->free_offset = o;
      uint64_t *s = realloc(b->free_size, cap * sizeof *s);
      if (!s) return VKFT_ERR;
      b->free_size = s;
      b->free_cap = cap;
    }
    memmove(b->free_offset + i + 1, b->free_offset + i, (b->free_count - i) * sizeof(uint64_t));
    memmove(b->free_size + i + 1, b->free_size + i, (b->free_count - i) * sizeof(uint64_t));
    b->free_offset[i] = offset;
    b->free_size[i] = size;
    b->free_count++;
  }
  return VKFT_OK;
}

int vkft_buffer_alloc(vkft_device *dev, uint64_t size, vkft_buffer *out) {
  memset(out, 0, sizeof *out);
  if (size == 0) size = 1;
  uint64_t rounded = (size + ALIGNMENT - 1) / ALIGNMENT * ALIGNMENT;
  vk_block *b = NULL;
  uint64_t offset = 0;
  if (rounded > dev->block_size / 2) {
    if (block_create(dev, rounded, dev->memory_type, dev->host_visible, 1, &b) != VKFT_OK)
      return VKFT_ERR;
    block_take(b, rounded, &offset);
    b->next = dev->blocks;
    dev->blocks = b;
  } else {
    for (b = dev->blocks; b; b = b->next)
      if (!b->dedicated && block_take(b, rounded, &offset)) break;
    if (!b) {
      /* the last block may be smaller than the others: what is left of the budget */
      uint64_t size = dev->block_size,
               left = dev->budget > dev->in_use ? dev->budget - dev->in_use : 0;
      if (size > left && left >= rounded) size = left / ALIGNMENT * ALIGNMENT;
      if (block_create(dev, size, dev->memory_type, dev->host_visible, 0, &b) != VKFT_OK)
        return VKFT_ERR;
      block_take(b, rounded, &offset);
      b->next = dev->blocks;
      dev->blocks = b;
    }
  }
  out->addr = b->addr + offset;
  out->size = size;
  out->mapped = b->mapped ? (char *)b->mapped + offset : NULL;
  out->block = b;
  out->offset = offset;
  return VKFT_OK;
}

void vkft_buffer_free(vkft_device *dev, vkft_buffer *buf) {
  vk_block *b = buf->block;
  if (!b) return;
  uint64_t rounded = (buf->size + ALIGNMENT - 1) / ALIGNMENT * ALIGNMENT;
  if (b->dedicated) {
    vk_block **link = &dev->blocks;
    while (*link && *link != b) link = &(*link)->next;
    if (*link) *link = b->next;
    dev->in_use -= b->size;
    block_destroy(dev, b);
  } else {
    block_give(b, buf->offset, rounded);
  }
  memset(buf, 0, sizeof *buf);
}

static int staging_get(vkft_device *dev) {
  if (dev->staging) return VKFT_OK;
  int type = find_memory_type(
      dev, VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT, 0);
  if (type < 0)
    return vkft_error("device %s has no host-visible memory for transfers", dev->info.name);
  return block_create(dev, STAGING_SIZE, (uint32_t)type, 1, 1, &dev->staging);
}

static int transfer(vkft_device *dev, const vkft_buffer *buf, uint64_t offset, void *host,
                    uint64_t size, int upload) {
  if (offset + size > buf->size)
    return vkft_error("transfer of %llu bytes at offset %llu past the end of a %llu-byte buffer",
                      (unsigned long long)size, (unsigned long long)offset,
                      (unsigned long long)buf->size);
  if (buf->mapped) {
    if (upload)
      memcpy((char *)buf->mapped + offset, host, size);
    else
      memcpy(host, (char *)buf->mapped + offset, size);
    return VKFT_OK;
  }
  if (staging_get(dev) != VKFT_OK) return VKFT_ERR;
  vk_block *b = buf->block;
  for (uint64_t done = 0; done < size;) {
    uint64_t n = size - done < STAGING_SIZE ? size - done : STAGING_SIZE;
    if (upload) memcpy(dev->staging->mapped, (char *)host + done, n);
    VkCommandBuffer cmd;
    if (vk_oneshot_begin(dev, &cmd) != VKFT_OK) return VKFT_ERR;
    VkBufferCopy region = {.size = n};
    if (upload) {
      region.dstOffset = buf->offset + offset + done;
      vkCmdCopyBuffer(cmd, dev->staging->buffer, b->buffer, 1, &region);
    } else {
      region.srcOffset = buf->offset + offset + done;
      vkCmdCopyBuffer(cmd, b->buffer, dev->staging->buffer, 1, &region);
    }
    if (vk_oneshot_submit(dev, cmd) != VKFT_OK) return VKFT_ERR;
    if (!upload) memcpy((char *)host + done, dev->staging->mapped, n);
    done += n;
  }
  return VKFT_OK;
}

int vkft_buffer_upload(vkft_device *dev, const vkft_buffer *buf, uint64_t offset, const void *src,
                       uint64_t size) {
  return transfer(dev, buf, offset, (void *)src, size, 1);
}

int vkft_buffer_download(vkft_device *dev, const vkft_buffer *buf, uint64_t offset, void *dst,
                         uint64_t size) {
  return transfer(dev, buf, offset, dst, size, 0);
}

uint64_t vkft_device_memory_in_use(const vkft_device *dev) {
  return dev->in_use;
}
uint64_t vkft_device_memory_budget(const vkft_device *dev) {
  return dev->budget;
}
