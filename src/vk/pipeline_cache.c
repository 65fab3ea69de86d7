/* The pipeline cache on disk: the driver's compiled pipelines from the last run, so a second run
 * starts without compiling every shader variant again. One file per device and driver version
 * (both in its name and checked in its header), written whole and atomically (src/platform)
 * when a device that compiled new pipelines is destroyed. A file that is corrupt, truncated or
 * for another device or driver is ignored with a warning (vkft_device_pipeline_cache_warning):
 * the pipelines are then compiled as without a cache.
 *
 * File: "VKFTPC01", the device UUID (16 bytes), the driver version (u32), the size of the data
 * (u64), its CRC-32 (u32), all little-endian; then the data of vkGetPipelineCacheData, whose own
 * header (VkPipelineCacheHeaderVersionOne: vendor, device, pipelineCacheUUID) is checked too,
 * since some drivers trust what they are given. */
#include "internal.h"

#include "vkft/crc32.h"
#include "vkft/platform.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { HEADER = 40, VK_HEADER = 32 };
static const char MAGIC[8] = {'V', 'K', 'F', 'T', 'P', 'C', '0', '1'};

static uint32_t get_u32(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static void put_u32(unsigned char *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}

/* VKFT_PIPELINE_CACHE (a file; "off": no cache), else pipelines-UUID-DRIVER.bin in the user's
 * cache folder ($XDG_CACHE_HOME/vkft, ~/.cache/vkft, %LOCALAPPDATA%\vkft). 0: no cache. */
static int cache_path(const vkft_device *dev, char *out, size_t size) {
  const char *env = getenv("VKFT_PIPELINE_CACHE");
  if (env && !strcmp(env, "off")) return 0;
  if (env && *env) return snprintf(out, size, "%s", env) < (int)size;
  const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME"),
             *local = getenv("LOCALAPPDATA");
  char dir[1024];
  if (xdg && *xdg)
    snprintf(dir, sizeof dir, "%s/vkft", xdg);
  else if (home && *home)
    snprintf(dir, sizeof dir, "%s/.cache/vkft", home);
  else if (local && *local)
    snprintf(dir, sizeof dir, "%s/vkft", local);
  else
    return 0;
  char uuid[33];
  for (int i = 0; i < 16; i++) snprintf(uuid + 2 * i, 3, "%02x", dev->info.device_uuid[i]);
  return snprintf(out, size, "%s/pipelines-%s-%08x.bin", dir, uuid, dev->info.driver_version) <
         (int)size;
}

/* The reason a cache file cannot be used, or NULL when it can. */
static const char *check_file(const vkft_device *dev, const unsigned char *data, size_t size) {
  if (size < sizeof MAGIC || memcmp(data, MAGIC, sizeof MAGIC)) return "not a vkft pipeline cache";
  if (size < HEADER) return "truncated";
  if (memcmp(data + 8, dev->info.device_uuid, 16) || get_u32(data + 24) != dev->info.driver_version)
    return "written for another device or driver version";
  uint64_t bytes = get_u32(data + 28) | (uint64_t)get_u32(data + 32) << 32;
  if (bytes != size - HEADER) return bytes > size - HEADER ? "truncated" : "longer than it says";
  if (vkft_crc32(0, data + HEADER, (size_t)bytes) != get_u32(data + 36)) return "corrupt (CRC-32)";
  const unsigned char *vk = data + HEADER;
  if (bytes < VK_HEADER || get_u32(vk) < VK_HEADER ||
      get_u32(vk + 4) != VK_PIPELINE_CACHE_HEADER_VERSION_ONE ||
      get_u32(vk + 8) != dev->info.vendor_id || get_u32(vk + 12) != dev->info.device_id ||
      memcmp(vk + 16, dev->pipeline_cache_uuid, VK_UUID_SIZE))
    return "the driver's data is for another device or driver";
  return NULL;
}

int vk_pipeline_cache_init(vkft_device *dev) {
  VkPipelineCacheCreateInfo ci = {.sType = VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO};
  char *data = NULL;
  size_t size = 0;
  if (cache_path(dev, dev->pipeline_cache_path, sizeof dev->pipeline_cache_path) &&
      vkft_file_exists(dev->pipeline_cache_path)) {
    const char *why = NULL;
    if (vkft_file_read(dev->pipeline_cache_path, &data, &size) != VKFT_OK)
      why = vkft_error_message();
    else
      why = check_file(dev, (const unsigned char *)data, size);
    if (why) {
      snprintf(dev->pipeline_cache_warning, sizeof dev->pipeline_cache_warning,
               "pipeline cache %s ignored: %s", dev->pipeline_cache_path, why);
    } else {
      ci.initialDataSize = size - HEADER;
      ci.pInitialData = data + HEADER;
    }
  }
  VkResult r = vkCreatePipelineCache(dev->device, &ci, NULL, &dev->pipeline_cache);
  if (r != VK_SUCCESS && ci.initialDataSize) { /* the driver refused the data: start empty */
    snprintf(dev->pipeline_cache_warning, sizeof dev->pipeline_cache_warning,
             "pipeline cache %s ignored: the driver refused it (%s)", dev->pipeline_cache_path,
             vk_result_string(r));
    ci.initialDataSize = 0, ci.pInitialData = NULL;
    r = vkCreatePipelineCache(dev->device, &ci, NULL, &dev->pipeline_cache);
  }
  if (r == VK_SUCCESS) dev->pipeline_cache_loaded = ci.initialDataSize;
  free(data);
  if (r != VK_SUCCESS) dev->pipeline_cache = VK_NULL_HANDLE; /* pipelines are made without */
  return VKFT_OK;
}

/* Writes the cache when this device compiled pipelines it did not find there; a failure only
 * costs the next run its head start. */
void vk_pipeline_cache_shutdown(vkft_device *dev) {
  if (!dev->pipeline_cache) return;
  size_t size = 0;
  unsigned char *file = NULL;
  if (dev->pipelines_compiled && dev->pipeline_cache_path[0] &&
      vkGetPipelineCacheData(dev->device, dev->pipeline_cache, &size, NULL) == VK_SUCCESS &&
      size >= VK_HEADER && (file = malloc(HEADER + size)) &&
      vkGetPipelineCacheData(dev->device, dev->pipeline_cache, &size, file + HEADER) ==
          VK_SUCCESS) {
    memcpy(file, MAGIC, sizeof MAGIC);
    memcpy(file + 8, dev->info.device_uuid, 16);
    put_u32(file + 24, dev->info.driver_version);
    put_u32(file + 28, (uint32_t)size);
    put_u32(file + 32, (uint32_t)((uint64_t)size >> 32));
    put_u32(file + 36, vkft_crc32(0, file + HEADER, size));
    char dir[sizeof dev->pipeline_cache_path];
    snprintf(dir, sizeof dir, "%s", dev->pipeline_cache_path);
    char *slash = strrchr(dir, '/');
    /* best effort, and the run's own error (read by the caller after the device is gone) must
     * survive it; processes sharing the cache (MPI ranks, two runs) each write a file of their
     * own and rename it over the cache: the last one wins, none fails */
    vkft_errcode code = vkft_error_code();
    char why[1024], mine[sizeof dev->pipeline_cache_path + 24];
    snprintf(why, sizeof why, "%s", vkft_error_message());
    snprintf(mine, sizeof mine, "%s.%ld", dev->pipeline_cache_path, vkft_process_id());
    if (slash && slash != dir) *slash = 0, vkft_mkdirs(dir);
    if (vkft_file_write_atomic(mine, file, HEADER + size) == VKFT_OK &&
        vkft_rename_replace(mine, dev->pipeline_cache_path) != VKFT_OK)
      remove(mine);
    if (code != VKFT_ERR_NONE)
      vkft_error_with(code, "%s", why);
    else
      vkft_error_clear();
  }
  free(file);
  vkDestroyPipelineCache(dev->device, dev->pipeline_cache, NULL);
  dev->pipeline_cache = VK_NULL_HANDLE;
}

const char *vkft_device_pipeline_cache_warning(const vkft_device *dev) {
  return dev->pipeline_cache_warning[0] ? dev->pipeline_cache_warning : NULL;
}

uint64_t vkft_device_pipeline_cache_loaded(const vkft_device *dev) {
  return dev->pipeline_cache_loaded;
}
