/* Vulkan instance, physical-device probing and choice, logical device creation and the
 * validation-layer hook. Capabilities are probed, never assumed from the vendor. */
#include "internal.h"

#include "vkft/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int vk_loaded;

vkft_errcode vk_result_code(VkResult r) {
  switch (r) {
  case VK_ERROR_DEVICE_LOST:
    return VKFT_ERR_DEVICE_LOST;
  case VK_ERROR_OUT_OF_DEVICE_MEMORY:
    return VKFT_ERR_OOM;
  case VK_ERROR_OUT_OF_HOST_MEMORY:
    return VKFT_ERR_NOMEM;
  default:
    return VKFT_ERR_DEVICE;
  }
}

const char *vk_result_string(VkResult r) {
  switch (r) {
  case VK_SUCCESS:
    return "VK_SUCCESS";
  case VK_ERROR_OUT_OF_HOST_MEMORY:
    return "VK_ERROR_OUT_OF_HOST_MEMORY";
  case VK_ERROR_OUT_OF_DEVICE_MEMORY:
    return "VK_ERROR_OUT_OF_DEVICE_MEMORY";
  case VK_ERROR_INITIALIZATION_FAILED:
    return "VK_ERROR_INITIALIZATION_FAILED";
  case VK_ERROR_DEVICE_LOST:
    return "VK_ERROR_DEVICE_LOST";
  case VK_ERROR_LAYER_NOT_PRESENT:
    return "VK_ERROR_LAYER_NOT_PRESENT";
  case VK_ERROR_EXTENSION_NOT_PRESENT:
    return "VK_ERROR_EXTENSION_NOT_PRESENT";
  case VK_ERROR_FEATURE_NOT_PRESENT:
    return "VK_ERROR_FEATURE_NOT_PRESENT";
  case VK_ERROR_INCOMPATIBLE_DRIVER:
    return "VK_ERROR_INCOMPATIBLE_DRIVER";
  case VK_ERROR_TOO_MANY_OBJECTS:
    return "VK_ERROR_TOO_MANY_OBJECTS";
  case VK_TIMEOUT:
    return "VK_TIMEOUT";
  default:
    return "VkResult error";
  }
}

int vkft_vk_load(void) {
  if (vk_loaded) return VKFT_OK;
  if (volkInitialize() != VK_SUCCESS)
    return vkft_error_with(
        VKFT_ERR_DEVICE, "no Vulkan loader found (libvulkan.so.1 / vulkan-1.dll): install the "
                         "Vulkan loader and a driver (on Debian: libvulkan1 mesa-vulkan-drivers)");
  vk_loaded = 1;
  return VKFT_OK;
}

static int env_int(const char *name, int fallback) {
  const char *v = getenv(name);
  if (!v || !*v) return fallback;
  return atoi(v);
}

static int has_extension(const VkExtensionProperties *exts, uint32_t n, const char *name) {
  for (uint32_t i = 0; i < n; i++)
    if (!strcmp(exts[i].extensionName, name)) return 1;
  return 0;
}

static const char *vendor_name(uint32_t id) {
  switch (id) {
  case 0x10DE:
    return "NVIDIA";
  case 0x1002:
    return "AMD";
  case 0x8086:
    return "Intel";
  case 0x13B5:
    return "ARM";
  case 0x5143:
    return "Qualcomm";
  case 0x106B:
    return "Apple";
  case 0x10005:
    return "Mesa";
  default:
    return "unknown";
  }
}

static const char *type_name(VkPhysicalDeviceType t) {
  switch (t) {
  case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU:
    return "discrete";
  case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU:
    return "integrated";
  case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU:
    return "virtual";
  case VK_PHYSICAL_DEVICE_TYPE_CPU:
    return "cpu";
  default:
    return "other";
  }
}

static int type_rank(const char *type) {
  if (!strcmp(type, "discrete")) return 4;
  if (!strcmp(type, "integrated")) return 3;
  if (!strcmp(type, "virtual")) return 2;
  if (!strcmp(type, "cpu")) return 1;
  return 0;
}

/* Picks the cooperative-matrix shape of the fp16 matmuls from the device's own list
 * (vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR), never from its vendor: fp16 A and B,
 * fp32 C and result, subgroup scope, M and N dividing 32 and K dividing 32 (the kernels' tiles);
 * 16x16x16 when listed. Some drivers advertise the extension without such a shape, or without
 * matrix units at all (docs/GPU.md): the self-check has the last word. */
static void probe_coopmat(VkInstance instance, VkPhysicalDevice pd, int feature,
                          vkft_device_info *info) {
  if (!info->coopmat) {
    snprintf(info->coopmat_why, sizeof info->coopmat_why, "no VK_KHR_cooperative_matrix");
    return;
  }
#ifdef VK_KHR_cooperative_matrix
  PFN_vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR get =
      (PFN_vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR)vkGetInstanceProcAddr(
          instance, "vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR");
  uint32_t n = 0;
  if (!feature || !get || get(pd, &n, NULL) != VK_SUCCESS || n == 0) {
    snprintf(info->coopmat_why, sizeof info->coopmat_why,
             "VK_KHR_cooperative_matrix lists no shape");
    return;
  }
  VkCooperativeMatrixPropertiesKHR *props = calloc(n, sizeof *props);
  if (!props) return;
  for (uint32_t i = 0; i < n; i++)
    props[i].sType = VK_STRUCTURE_TYPE_COOPERATIVE_MATRIX_PROPERTIES_KHR;
  if (get(pd, &n, props) != VK_SUCCESS) n = 0;
  size_t used = 0;
  for (uint32_t i = 0; i < n; i++) {
    const VkCooperativeMatrixPropertiesKHR *c = &props[i];
    if (c->AType != VK_COMPONENT_TYPE_FLOAT16_KHR || c->BType != VK_COMPONENT_TYPE_FLOAT16_KHR ||
        c->CType != VK_COMPONENT_TYPE_FLOAT32_KHR ||
        c->ResultType != VK_COMPONENT_TYPE_FLOAT32_KHR || c->scope != VK_SCOPE_SUBGROUP_KHR)
      continue;
    if (used + 16 < sizeof info->coopmat_shapes)
      used += (size_t)snprintf(info->coopmat_shapes + used, sizeof info->coopmat_shapes - used,
                               "%s%ux%ux%u", used ? " " : "", c->MSize, c->NSize, c->KSize);
    int fits = c->MSize && c->NSize && c->KSize && 32 % c->MSize == 0 && 32 % c->NSize == 0 &&
               32 % c->KSize == 0;
    int square16 = c->MSize == 16 && c->NSize == 16 && c->KSize == 16;
    if (fits && (!info->coopmat_m || square16))
      info->coopmat_m = c->MSize, info->coopmat_n = c->NSize, info->coopmat_k = c->KSize;
  }
  free(props);
  if (!info->coopmat_m)
    snprintf(info->coopmat_why, sizeof info->coopmat_why,
             "no fp16 x fp16 -> fp32 subgroup shape that divides 32");
  else if (!info->fp16_arith || !info->memory_model)
    info->coopmat_m = info->coopmat_n = info->coopmat_k = 0,
    snprintf(info->coopmat_why, sizeof info->coopmat_why,
             "needs shaderFloat16 and vulkanMemoryModel");
#else
  (void)instance, (void)pd, (void)feature;
  snprintf(info->coopmat_why, sizeof info->coopmat_why,
           "vkft built with Vulkan headers older than 1.3.255");
#endif
}

static void probe(VkInstance instance, VkPhysicalDevice pd, int index, vkft_device_info *info) {
  memset(info, 0, sizeof *info);
  info->index = index;

  uint32_t ext_count = 0;
  vkEnumerateDeviceExtensionProperties(pd, NULL, &ext_count, NULL);
  VkExtensionProperties *exts = calloc(ext_count ? ext_count : 1, sizeof *exts);
  if (exts)
    vkEnumerateDeviceExtensionProperties(pd, NULL, &ext_count, exts);
  else
    ext_count = 0;

  VkPhysicalDeviceProperties base;
  vkGetPhysicalDeviceProperties(pd, &base);
  info->api_version = base.apiVersion;
  int v12 = VK_API_VERSION_MINOR(base.apiVersion) >= 2 || VK_API_VERSION_MAJOR(base.apiVersion) > 1;
  int v13 = VK_API_VERSION_MINOR(base.apiVersion) >= 3 || VK_API_VERSION_MAJOR(base.apiVersion) > 1;

  VkPhysicalDeviceSubgroupSizeControlProperties sgc = {
      .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_PROPERTIES};
  VkPhysicalDeviceDriverProperties drv = {.sType =
                                              VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DRIVER_PROPERTIES};
  VkPhysicalDeviceVulkan11Properties p11 = {
      .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_PROPERTIES};
  VkPhysicalDeviceMaintenance3Properties m3 = {
      .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_3_PROPERTIES};
  VkPhysicalDeviceMaintenance4Properties m4 = {
      .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_4_PROPERTIES};
  VkPhysicalDeviceProperties2 props = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2};
  void **tail = &props.pNext;
  *tail = &m3, tail = &m3.pNext;
  if (v12) *tail = &p11, tail = &p11.pNext;
  if (v12 || has_extension(exts, ext_count, VK_KHR_DRIVER_PROPERTIES_EXTENSION_NAME))
    *tail = &drv, tail = &drv.pNext;
  int has_sgc = v13 || has_extension(exts, ext_count, VK_EXT_SUBGROUP_SIZE_CONTROL_EXTENSION_NAME);
  if (has_sgc) *tail = &sgc, tail = &sgc.pNext;
  if (v13) *tail = &m4, tail = &m4.pNext;
  vkGetPhysicalDeviceProperties2(pd, &props);

  VkPhysicalDeviceVulkan11Features f11 = {
      .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES};
  VkPhysicalDeviceVulkan12Features f12 = {
      .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES};
  VkPhysicalDeviceVulkan13Features f13 = {
      .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_3_FEATURES};
  VkPhysicalDeviceFeatures2 feats = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2};
  if (v12) feats.pNext = &f11, f11.pNext = &f12;
  if (v13) f12.pNext = &f13;
  int coopmat_feature = 0;
#ifdef VK_KHR_cooperative_matrix
  VkPhysicalDeviceCooperativeMatrixFeaturesKHR fcm = {
      .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_KHR};
  if (v13 && has_extension(exts, ext_count, VK_KHR_COOPERATIVE_MATRIX_EXTENSION_NAME))
    f13.pNext = &fcm;
#endif
  vkGetPhysicalDeviceFeatures2(pd, &feats);
#ifdef VK_KHR_cooperative_matrix
  coopmat_feature = fcm.cooperativeMatrix;
#endif

  snprintf(info->name, sizeof info->name, "%s", base.deviceName);
  memcpy(info->device_uuid, p11.deviceUUID, sizeof info->device_uuid);
  info->driver_version = base.driverVersion;
  info->vendor_id = base.vendorID;
  info->device_id = base.deviceID;
  snprintf(info->vendor, sizeof info->vendor, "%s", vendor_name(base.vendorID));
  snprintf(info->type, sizeof info->type, "%s", type_name(base.deviceType));
  if (drv.driverName[0])
    snprintf(info->driver, sizeof info->driver, "%s %s", drv.driverName, drv.driverInfo);
  else
    snprintf(info->driver, sizeof info->driver, "driver version 0x%x", base.driverVersion);

  VkPhysicalDeviceMemoryProperties mem;
  vkGetPhysicalDeviceMemoryProperties(pd, &mem);
  info->heap_count = (int)(mem.memoryHeapCount < 16 ? mem.memoryHeapCount : 16);
  for (int i = 0; i < info->heap_count; i++) {
    info->heap_size[i] = mem.memoryHeaps[i].size;
    info->heap_device_local[i] = (mem.memoryHeaps[i].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT) != 0;
  }

  info->subgroup_size = p11.subgroupSize;
  info->subgroup_min = has_sgc ? sgc.minSubgroupSize : p11.subgroupSize;
  info->subgroup_max = has_sgc ? sgc.maxSubgroupSize : p11.subgroupSize;
  info->subgroup_size_control = has_sgc && v13 && f13.subgroupSizeControl &&
                                f13.computeFullSubgroups &&
                                (sgc.requiredSubgroupSizeStages & VK_SHADER_STAGE_COMPUTE_BIT);
  info->subgroup_arithmetic =
      (p11.subgroupSupportedOperations & VK_SUBGROUP_FEATURE_ARITHMETIC_BIT) &&
      (p11.subgroupSupportedStages & VK_SHADER_STAGE_COMPUTE_BIT);
  info->subgroup_shuffle = (p11.subgroupSupportedOperations & VK_SUBGROUP_FEATURE_SHUFFLE_BIT) &&
                           (p11.subgroupSupportedStages & VK_SHADER_STAGE_COMPUTE_BIT);
  info->fp16_arith = f12.shaderFloat16;
  info->int8_arith = f12.shaderInt8;
  info->storage16 = f11.storageBuffer16BitAccess;
  info->storage8 = f12.storageBuffer8BitAccess;
  info->bf16 = has_extension(exts, ext_count, "VK_KHR_shader_bfloat16");
  info->coopmat = has_extension(exts, ext_count, "VK_KHR_cooperative_matrix");
  info->memory_model = f12.vulkanMemoryModel;
  info->buffer_device_address = f12.bufferDeviceAddress;
  info->int64 = feats.features.shaderInt64;
  info->memory_budget = has_extension(exts, ext_count, VK_EXT_MEMORY_BUDGET_EXTENSION_NAME);
  info->timestamps = base.limits.timestampComputeAndGraphics;
  info->timestamp_period_ns = base.limits.timestampPeriod;
  info->max_shared_memory = base.limits.maxComputeSharedMemorySize;
  info->max_workgroup_invocations = base.limits.maxComputeWorkGroupInvocations;
  info->max_push_constants = base.limits.maxPushConstantsSize;
  for (int i = 0; i < 3; i++)
    info->max_workgroup_count[i] = base.limits.maxComputeWorkGroupCount[i];
  info->max_storage_buffer_range = base.limits.maxStorageBufferRange;
  info->max_allocation_size = m3.maxMemoryAllocationSize;
  info->max_buffer_size = v13 ? m4.maxBufferSize : m3.maxMemoryAllocationSize;
  probe_coopmat(instance, pd, coopmat_feature, info);

  info->usable = 1;
  if (!v12) {
    info->usable = 0;
    snprintf(info->unusable_why, sizeof info->unusable_why, "needs Vulkan 1.2");
  } else if (!info->buffer_device_address || !info->int64) {
    info->usable = 0;
    snprintf(info->unusable_why, sizeof info->unusable_why,
             "needs bufferDeviceAddress and shaderInt64");
  } else if (info->max_push_constants < 128) {
    info->usable = 0;
    snprintf(info->unusable_why, sizeof info->unusable_why, "needs 128 bytes of push constants");
  }
  free(exts);
}

/* A temporary instance just for listing devices (no validation). */
static int create_instance(int validate, VkInstance *out, VkDebugUtilsMessengerEXT *messenger,
                           vkft_device *dev);

int vkft_vk_list_devices(vkft_device_info **infos, int *count, int *chosen) {
  *infos = NULL;
  *count = 0;
  *chosen = -1;
  if (vkft_vk_load() != VKFT_OK) return VKFT_ERR;
  VkInstance instance;
  if (create_instance(0, &instance, NULL, NULL) != VKFT_OK) return VKFT_ERR;
  uint32_t n = 0;
  vkEnumeratePhysicalDevices(instance, &n, NULL);
  if (n == 0) {
    vkDestroyInstance(instance, NULL);
    return vkft_error_with(
        VKFT_ERR_DEVICE, "no Vulkan driver found: the loader lists no device (on Debian, install "
                         "mesa-vulkan-drivers for the CPU device lavapipe, or your GPU's driver)");
  }
  VkPhysicalDevice *pds = calloc(n, sizeof *pds);
  vkft_device_info *list = calloc(n, sizeof *list);
  if (!pds || !list) {
    free(pds);
    free(list);
    vkDestroyInstance(instance, NULL);
    return vkft_error_with(VKFT_ERR_NOMEM, "out of host memory listing devices");
  }
  vkEnumeratePhysicalDevices(instance, &n, pds);
  int best = -1, best_rank = -1;
  for (uint32_t i = 0; i < n; i++) {
    probe(instance, pds[i], (int)i, &list[i]);
    int rank = list[i].usable ? type_rank(list[i].type) : -1;
    if (rank > best_rank) best_rank = rank, best = (int)i;
  }
  free(pds);
  vkDestroyInstance(instance, NULL);
  *infos = list;
  *count = (int)n;
  *chosen = best_rank >= 0 ? best : -1;
  return VKFT_OK;
}

static VKAPI_ATTR VkBool32 VKAPI_CALL on_debug_message(
    VkDebugUtilsMessageSeverityFlagBitsEXT severity, VkDebugUtilsMessageTypeFlagsEXT type,
    const VkDebugUtilsMessengerCallbackDataEXT *data, void *user) {
  vkft_device *dev = user;
  int serious = (type & VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT) &&
                (severity & (VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT |
                             VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT));
  if (serious) {
    if (dev) dev->validation_errors++;
    fprintf(stderr, "vkft: validation: %s\n", data->pMessage);
  } else if (getenv("VKFT_VERBOSE")) {
    fprintf(stderr, "vkft: vulkan: %s\n", data->pMessage);
  }
  return VK_FALSE;
}

static int create_instance(int validate, VkInstance *out, VkDebugUtilsMessengerEXT *messenger,
                           vkft_device *dev) {
  uint32_t loader_version = VK_API_VERSION_1_0;
  if (vkEnumerateInstanceVersion) vkEnumerateInstanceVersion(&loader_version);
  if (VK_API_VERSION_MINOR(loader_version) < 2 && VK_API_VERSION_MAJOR(loader_version) == 1)
    return vkft_error_with(VKFT_ERR_DEVICE,
                           "the Vulkan loader supports only Vulkan 1.%u; vkft needs 1.2",
                           VK_API_VERSION_MINOR(loader_version));

  const char *layers[1];
  uint32_t layer_count = 0;
  const char *extensions[2];
  uint32_t extension_count = 0;
  if (validate) {
    uint32_t n = 0;
    vkEnumerateInstanceLayerProperties(&n, NULL);
    VkLayerProperties *props = calloc(n ? n : 1, sizeof *props);
    if (props) vkEnumerateInstanceLayerProperties(&n, props);
    int found = 0;
    for (uint32_t i = 0; props && i < n; i++)
      if (!strcmp(props[i].layerName, "VK_LAYER_KHRONOS_validation")) found = 1;
    free(props);
    /* VKFT_VALIDATE=2: the layer is enabled outside vkft. Wine lists no layers to the
     * application (and hides VK_INSTANCE_LAYERS from it); there the host's
     * VK_INSTANCE_LAYERS loads the layer and its messages still reach our debug callback. */
    if (found && validate != 2)
      layers[layer_count++] = "VK_LAYER_KHRONOS_validation";
    else if (validate != 2)
      return vkft_error("validation requested (VKFT_VALIDATE=1) but VK_LAYER_KHRONOS_validation "
                        "is not installed (Debian: vulkan-validationlayers)");
    extensions[extension_count++] = VK_EXT_DEBUG_UTILS_EXTENSION_NAME;
  }

  VkApplicationInfo app = {.sType = VK_STRUCTURE_TYPE_APPLICATION_INFO,
                           .pApplicationName = "vkft",
                           .pEngineName = "vkft",
                           .apiVersion = VK_API_VERSION_1_3};
  VkDebugUtilsMessengerCreateInfoEXT dbg = {
      .sType = VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT,
      .messageSeverity = VK_DEBUG_UTILS_MESSAGE_SEVERITY_INFO_BIT_EXT |
                         VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT |
                         VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT,
      .messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT |
                     VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT |
                     VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT,
      .pfnUserCallback = on_debug_message,
      .pUserData = dev};
  VkInstanceCreateInfo ci = {.sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO,
                             .pNext = validate ? &dbg : NULL,
                             .pApplicationInfo = &app,
                             .enabledLayerCount = layer_count,
                             .ppEnabledLayerNames = layers,
                             .enabledExtensionCount = extension_count,
                             .ppEnabledExtensionNames = extensions};
  VkResult r = vkCreateInstance(&ci, NULL, out);
  if (r == VK_ERROR_INCOMPATIBLE_DRIVER)
    return vkft_error_with(VKFT_ERR_DEVICE,
                           "no Vulkan driver found: the loader sees no usable driver (on Debian, "
                           "install mesa-vulkan-drivers for the CPU device lavapipe, or your GPU's "
                           "driver)");
  if (r != VK_SUCCESS)
    return vkft_error_with(VKFT_ERR_DEVICE, "cannot create a Vulkan instance (%s)%s",
                           vk_result_string(r),
                           r == VK_ERROR_INITIALIZATION_FAILED
                               ? ": no usable driver (under Wine, run with an X display: xvfb-run)"
                               : "");
  volkLoadInstanceOnly(*out);
  if (validate && messenger) {
    r = vkCreateDebugUtilsMessengerEXT(*out, &dbg, NULL, messenger);
    if (r != VK_SUCCESS) {
      vkDestroyInstance(*out, NULL);
      return vkft_error_with(VKFT_ERR_DEVICE, "cannot create the validation messenger (%s)",
                             vk_result_string(r));
    }
  }
  return VKFT_OK;
}

/* Picks the physical device: the one asked for (desc->index or VKFT_DEVICE), else the best usable
 * one by type (discrete, integrated, virtual, CPU); fills dev->info and dev->physical. */
static int pick_physical(vkft_device *dev, const vkft_device_desc *desc) {
  uint32_t n = 0;
  vkEnumeratePhysicalDevices(dev->instance, &n, NULL);
  VkPhysicalDevice *pds = n ? calloc(n, sizeof *pds) : NULL;
  if (n == 0 || !pds) {
    free(pds);
    return vkft_error_with(
        VKFT_ERR_DEVICE, "no Vulkan driver found: the loader lists no device (on Debian, install "
                         "mesa-vulkan-drivers for the CPU device lavapipe, or your GPU's driver)");
  }
  vkEnumeratePhysicalDevices(dev->instance, &n, pds);
  int wanted = desc && desc->index >= 0 ? desc->index : env_int("VKFT_DEVICE", -1);
  if (wanted >= (int)n) {
    free(pds);
    return vkft_error("device %d does not exist (%u device%s found; see `vkft devices`)", wanted, n,
                      n == 1 ? "" : "s");
  }
  int best = -1, best_rank = -1;
  for (uint32_t i = 0; i < n; i++) {
    vkft_device_info info;
    probe(dev->instance, pds[i], (int)i, &info);
    int rank = info.usable ? type_rank(info.type) : -1;
    if (wanted == (int)i || (wanted < 0 && rank > best_rank)) {
      best_rank = rank;
      best = (int)i;
      dev->info = info;
    }
  }
  if (best < 0 || !dev->info.usable) {
    free(pds);
    if (wanted >= 0)
      vkft_error_with(VKFT_ERR_DEVICE, "device %d (%s) cannot run vkft: %s", wanted, dev->info.name,
                      dev->info.unusable_why);
    else
      vkft_error_with(VKFT_ERR_DEVICE, "no Vulkan device can run vkft (each needs Vulkan 1.2 with "
                                       "bufferDeviceAddress and shaderInt64; see `vkft devices`)");
    return VKFT_ERR;
  }
  dev->physical = pds[best];
  free(pds);
  VkPhysicalDeviceProperties props;
  vkGetPhysicalDeviceProperties(dev->physical, &props);
  memcpy(dev->pipeline_cache_uuid, props.pipelineCacheUUID, VK_UUID_SIZE);
  return VKFT_OK;
}

/* The queue family: a compute queue without graphics (dedicated compute on discrete GPUs), then
 * any compute queue; timestamps only where the family has valid bits. */
static int pick_queue(vkft_device *dev) {
  uint32_t qn = 0;
  vkGetPhysicalDeviceQueueFamilyProperties(dev->physical, &qn, NULL);
  VkQueueFamilyProperties qf[32];
  if (qn > 32) qn = 32;
  vkGetPhysicalDeviceQueueFamilyProperties(dev->physical, &qn, qf);
  int family = -1;
  for (uint32_t i = 0; i < qn && family < 0; i++)
    if ((qf[i].queueFlags & VK_QUEUE_COMPUTE_BIT) && !(qf[i].queueFlags & VK_QUEUE_GRAPHICS_BIT))
      family = (int)i;
  for (uint32_t i = 0; i < qn && family < 0; i++)
    if (qf[i].queueFlags & VK_QUEUE_COMPUTE_BIT) family = (int)i;
  if (family < 0) {
    vkft_error_with(VKFT_ERR_DEVICE, "device %s has no compute queue", dev->info.name);
    return VKFT_ERR;
  }
  dev->queue_family = (uint32_t)family;
  if (dev->info.timestamps == 0 && qf[family].timestampValidBits > 0) dev->info.timestamps = 1;
  if (qf[family].timestampValidBits == 0) dev->info.timestamps = 0;
  return VKFT_OK;
}

/* The logical device with the features and extensions the probe found usable. */
static int create_logical(vkft_device *dev) {
  float priority = 1.0f;
  VkDeviceQueueCreateInfo qci = {.sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO,
                                 .queueFamilyIndex = dev->queue_family,
                                 .queueCount = 1,
                                 .pQueuePriorities = &priority};
  int v13 = VK_API_VERSION_MINOR(dev->info.api_version) >= 3;
  VkPhysicalDeviceVulkan11Features f11 = {.sType =
                                              VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES,
                                          .storageBuffer16BitAccess = dev->info.storage16};
  VkPhysicalDeviceVulkan12Features f12 = {.sType =
                                              VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES,
                                          .pNext = &f11,
                                          .bufferDeviceAddress = VK_TRUE,
                                          .shaderFloat16 = dev->info.fp16_arith,
                                          .shaderInt8 = dev->info.int8_arith,
                                          .storageBuffer8BitAccess = dev->info.storage8,
                                          .vulkanMemoryModel = dev->info.coopmat_m != 0};
  VkPhysicalDeviceVulkan13Features f13 = {.sType =
                                              VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_3_FEATURES,
                                          .pNext = &f12,
                                          .subgroupSizeControl = dev->info.subgroup_size_control,
                                          .computeFullSubgroups = dev->info.subgroup_size_control};
  VkPhysicalDeviceFeatures2 feats = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2,
                                     .pNext = v13 ? (void *)&f13 : (void *)&f12};
  feats.features.shaderInt64 = VK_TRUE;
  const char *exts[2];
  uint32_t ext_count = 0;
  if (dev->info.memory_budget) exts[ext_count++] = VK_EXT_MEMORY_BUDGET_EXTENSION_NAME;
#ifdef VK_KHR_cooperative_matrix
  VkPhysicalDeviceCooperativeMatrixFeaturesKHR fcm = {
      .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_KHR,
      .pNext = feats.pNext,
      .cooperativeMatrix = VK_TRUE};
  if (dev->info.coopmat_m) { /* only with a usable shape (so only on Vulkan 1.3) */
    exts[ext_count++] = VK_KHR_COOPERATIVE_MATRIX_EXTENSION_NAME;
    feats.pNext = &fcm;
  }
#endif
  VkDeviceCreateInfo dci = {.sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO,
                            .pNext = &feats,
                            .queueCreateInfoCount = 1,
                            .pQueueCreateInfos = &qci,
                            .enabledExtensionCount = ext_count,
                            .ppEnabledExtensionNames = exts};
  VkResult r = vkCreateDevice(dev->physical, &dci, NULL, &dev->device);
  if (r != VK_SUCCESS) {
    dev->device = VK_NULL_HANDLE;
    vkft_error_with(vk_result_code(r), "cannot create a Vulkan device on %s (%s)", dev->info.name,
                    vk_result_string(r));
    return VKFT_ERR;
  }
  volkLoadDevice(dev->device);
  vkGetDeviceQueue(dev->device, dev->queue_family, 0, &dev->queue);
  return VKFT_OK;
}

/* The command pool and buffer, the fence and the one pipeline layout (128 bytes of push
 * constants: tensors are buffer device addresses). */
static int create_objects(vkft_device *dev) {
  VkResult r;
  VkCommandPoolCreateInfo pci = {.sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
                                 .flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT,
                                 .queueFamilyIndex = dev->queue_family};
  VkFenceCreateInfo fci = {.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
  VkPushConstantRange pcr = {.stageFlags = VK_SHADER_STAGE_COMPUTE_BIT, .offset = 0, .size = 128};
  VkPipelineLayoutCreateInfo lci = {.sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO,
                                    .pushConstantRangeCount = 1,
                                    .pPushConstantRanges = &pcr};
  VkCommandBufferAllocateInfo cai = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
                                     .commandBufferCount = 1,
                                     .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY};
  if ((r = vkCreateCommandPool(dev->device, &pci, NULL, &dev->pool)) != VK_SUCCESS ||
      (cai.commandPool = dev->pool,
       (r = vkAllocateCommandBuffers(dev->device, &cai, &dev->cmd)) != VK_SUCCESS) ||
      (r = vkCreateFence(dev->device, &fci, NULL, &dev->fence)) != VK_SUCCESS ||
      (r = vkCreatePipelineLayout(dev->device, &lci, NULL, &dev->layout)) != VK_SUCCESS) {
    vkft_error_with(vk_result_code(r), "cannot set up the Vulkan device (%s)", vk_result_string(r));
    return VKFT_ERR;
  }
  return VKFT_OK;
}

int vkft_device_create(const vkft_device_desc *desc, vkft_device **out) {
  *out = NULL;
  if (vkft_vk_load() != VKFT_OK) return VKFT_ERR;
  vkft_device *dev = calloc(1, sizeof *dev);
  if (!dev) return vkft_error_nomem();
  int validate = desc && desc->validate >= 0 ? desc->validate : env_int("VKFT_VALIDATE", 0);
  if (create_instance(validate, &dev->instance, &dev->messenger, dev) != VKFT_OK) {
    free(dev);
    return VKFT_ERR;
  }

  if (pick_physical(dev, desc) != VKFT_OK || pick_queue(dev) != VKFT_OK ||
      create_logical(dev) != VKFT_OK || create_objects(dev) != VKFT_OK) {
    vkft_device_destroy(dev);
    return VKFT_ERR;
  }
  dev->profile = desc ? desc->profile : 0;
  const char *sync = getenv("VKFT_SYNC");
  dev->sync_all = sync && atoi(sync) > 0;
  if (vk_pipeline_cache_init(dev) != VKFT_OK || vk_memory_init(dev) != VKFT_OK ||
      vk_stream_init(dev) != VKFT_OK) {
    vkft_device_destroy(dev);
    return VKFT_ERR;
  }
  *out = dev;
  return VKFT_OK;
}

void vkft_device_destroy(vkft_device *dev) {
  if (!dev) return;
  if (dev->device) {
    vkDeviceWaitIdle(dev->device);
    vk_stream_shutdown(dev);
    vk_pipeline_cache_shutdown(dev);
    vk_pipelines_shutdown(dev);
    vk_memory_shutdown(dev);
    if (dev->layout) vkDestroyPipelineLayout(dev->device, dev->layout, NULL);
    if (dev->fence) vkDestroyFence(dev->device, dev->fence, NULL);
    if (dev->pool) vkDestroyCommandPool(dev->device, dev->pool, NULL);
    vkDestroyDevice(dev->device, NULL);
  }
  if (dev->messenger) vkDestroyDebugUtilsMessengerEXT(dev->instance, dev->messenger, NULL);
  if (dev->instance) vkDestroyInstance(dev->instance, NULL);
  free(dev);
}

const vkft_device_info *vkft_device_get_info(const vkft_device *dev) {
  return &dev->info;
}

int vkft_device_validation_errors(const vkft_device *dev) {
  return dev->validation_errors;
}

int vk_oneshot_begin(vkft_device *dev, VkCommandBuffer *cmd) {
  VkCommandBufferAllocateInfo cai = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
                                     .commandPool = dev->pool,
                                     .commandBufferCount = 1,
                                     .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY};
  VkResult r = vkAllocateCommandBuffers(dev->device, &cai, cmd);
  if (r != VK_SUCCESS)
    return vkft_error_with(vk_result_code(r), "cannot allocate a command buffer (%s)",
                           vk_result_string(r));
  VkCommandBufferBeginInfo bi = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
                                 .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT};
  vkBeginCommandBuffer(*cmd, &bi);
  return VKFT_OK;
}

int vk_oneshot_submit(vkft_device *dev, VkCommandBuffer cmd) {
  vkEndCommandBuffer(cmd);
  VkSubmitInfo si = {
      .sType = VK_STRUCTURE_TYPE_SUBMIT_INFO, .commandBufferCount = 1, .pCommandBuffers = &cmd};
  vkResetFences(dev->device, 1, &dev->fence);
  VkResult r = vkQueueSubmit(dev->queue, 1, &si, dev->fence);
  if (r == VK_SUCCESS) r = vkWaitForFences(dev->device, 1, &dev->fence, VK_TRUE, UINT64_MAX);
  vkFreeCommandBuffers(dev->device, dev->pool, 1, &cmd);
  if (r != VK_SUCCESS)
    return vkft_error_with(vk_result_code(r), "transfer failed (%s)", vk_result_string(r));
  return VKFT_OK;
}
