/* Compute pipelines from the embedded SPIR-V, created on first use and cached per
 * (shader, specialization constants, required subgroup size). */
#include "internal.h"

#include "vkft/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static vk_pipeline *pipeline_get(vkft_device *dev, const vkft_dispatch_desc *d) {
  for (vk_pipeline *p = dev->pipelines; p; p = p->next)
    if (!strcmp(p->shader, d->shader) && p->spec_count == d->spec_count &&
        p->subgroup_size == d->subgroup_size &&
        !memcmp(p->spec, d->spec, sizeof(uint32_t) * (size_t)d->spec_count))
      return p;

  const vkft_spirv *spv = vkft_spirv_find(d->shader);
  if (!spv) {
    vkft_error("no embedded shader named \"%s\"", d->shader);
    return NULL;
  }
  VkShaderModuleCreateInfo smci = {.sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO,
                                   .codeSize = spv->size,
                                   .pCode = spv->code};
  VkShaderModule module;
  VkResult r = vkCreateShaderModule(dev->device, &smci, NULL, &module);
  if (r != VK_SUCCESS) {
    vkft_error_with(vk_result_code(r), "shader %s: cannot create module (%s)", d->shader,
                    vk_result_string(r));
    return NULL;
  }
  VkSpecializationMapEntry entries[VKFT_MAX_SPEC];
  for (int i = 0; i < d->spec_count; i++)
    entries[i] = (VkSpecializationMapEntry){
        .constantID = (uint32_t)i, .offset = (uint32_t)(i * 4), .size = 4};
  VkSpecializationInfo si = {.mapEntryCount = (uint32_t)d->spec_count,
                             .pMapEntries = entries,
                             .dataSize = (size_t)d->spec_count * 4,
                             .pData = d->spec};
  VkPipelineShaderStageRequiredSubgroupSizeCreateInfo sgs = {
      .sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_REQUIRED_SUBGROUP_SIZE_CREATE_INFO,
      .requiredSubgroupSize = d->subgroup_size};
  int sized = d->subgroup_size && dev->info.subgroup_size_control;
  VkComputePipelineCreateInfo cci = {
      .sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
      .stage = {.sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO,
                .pNext = sized ? &sgs : NULL,
                .flags = sized ? VK_PIPELINE_SHADER_STAGE_CREATE_REQUIRE_FULL_SUBGROUPS_BIT : 0,
                .stage = VK_SHADER_STAGE_COMPUTE_BIT,
                .module = module,
                .pName = "main",
                .pSpecializationInfo = d->spec_count ? &si : NULL},
      .layout = dev->layout};
  vk_pipeline *p = calloc(1, sizeof *p);
  if (!p) {
    vkDestroyShaderModule(dev->device, module, NULL);
    vkft_error_nomem();
    return NULL;
  }
  r = vkCreateComputePipelines(dev->device, dev->pipeline_cache, 1, &cci, NULL, &p->pipeline);
  dev->pipelines_compiled++;
  vkDestroyShaderModule(dev->device, module, NULL);
  if (r != VK_SUCCESS) {
    free(p);
    vkft_error_with(vk_result_code(r), "shader %s: cannot create pipeline (%s)", d->shader,
                    vk_result_string(r));
    return NULL;
  }
  snprintf(p->shader, sizeof p->shader, "%s", d->shader);
  memcpy(p->spec, d->spec, sizeof p->spec);
  p->spec_count = d->spec_count;
  p->subgroup_size = d->subgroup_size;
  p->next = dev->pipelines;
  dev->pipelines = p;
  return p;
}

VkPipeline vk_pipeline_for(vkft_device *dev, const vkft_dispatch_desc *d, const char **name);
/* name: the pipeline's own copy of the shader name (d->shader may be a caller's stack buffer,
 * and --profile reads the names after the stream) */
VkPipeline vk_pipeline_for(vkft_device *dev, const vkft_dispatch_desc *d, const char **name) {
  vk_pipeline *p = pipeline_get(dev, d);
  if (p) *name = p->shader;
  return p ? p->pipeline : VK_NULL_HANDLE;
}

void vk_pipelines_shutdown(vkft_device *dev) {
  vk_pipeline *p = dev->pipelines;
  while (p) {
    vk_pipeline *next = p->next;
    vkDestroyPipeline(dev->device, p->pipeline, NULL);
    free(p);
    p = next;
  }
  dev->pipelines = NULL;
}
