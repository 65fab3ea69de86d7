/* The memory plan of batched generation: how many sequences' KV caches fit on the device
 * beside the weights and one step's activations, counted by the model's own plan (a plan-only
 * load: nothing is allocated). */
#include "vkft/error.h"
#include "vkft/gen.h"

static int plan_bytes(const vkft_gen_plan_desc *desc, int64_t slots, vkft_gen_plan *plan) {
  vkft_model_desc md = desc->model;
  md.kv_cache = 1;
  md.kv_slots = slots;
  md.kv_len = desc->ctx;
  md.max_tokens = desc->step_tokens > 0 ? desc->step_tokens : slots > 256 ? slots : 256;
  if (md.max_tokens < slots) md.max_tokens = slots; /* every sequence's token fits a step */
  md.micro_batches = 1;
  md.plan_only = 1;
  vkft_model *m;
  if (vkft_model_load(NULL, &md, &m) != VKFT_OK) return VKFT_ERR;
  const vkft_model_config *c = vkft_model_get_config(m);
  vkft_model_memory mem;
  vkft_model_memory_plan(m, &mem);
  /* keys and values (fp32) of every layer for every position of every slot */
  uint64_t cache = 2ull * 4ull * (uint64_t)c->num_layers *
                   (uint64_t)(c->num_kv_heads * c->head_dim) * (uint64_t)(slots * desc->ctx);
  vkft_model_free(m);
  uint64_t total = mem.weights + mem.trainable + mem.gradients + mem.activations + mem.scratch;
  md.plan_only = 0;
  *plan = (vkft_gen_plan){.slots = slots,
                          .ctx = desc->ctx,
                          .step_tokens = md.max_tokens,
                          .cache_bytes = cache,
                          .other_bytes = total - cache,
                          .model = md};
  return VKFT_OK;
}

int vkft_gen_plan_cache(const vkft_gen_plan_desc *desc, vkft_gen_plan *plan) {
  if (desc->slots < 1 || desc->ctx < 2)
    return vkft_error_with(VKFT_ERR_INPUT, "generation plan: needs at least one sequence of two "
                                           "positions");
  if (plan_bytes(desc, desc->slots, plan) != VKFT_OK) return VKFT_ERR;
  uint64_t budget = desc->budget_bytes;
  if (!budget || plan->cache_bytes + plan->other_bytes <= budget) return VKFT_OK;
  uint64_t per_slot = plan->cache_bytes / (uint64_t)plan->slots;
  int64_t fit = budget > plan->other_bytes ? (int64_t)((budget - plan->other_bytes) / per_slot) : 0;
  /* fewer slots can mean a smaller step (its activations): plan again with what fits */
  if (fit >= 1 && plan_bytes(desc, fit, plan) == VKFT_OK &&
      plan->cache_bytes + plan->other_bytes <= budget)
    return VKFT_OK;
  return vkft_error_with(VKFT_ERR_OOM,
                         "generation plan: the model (%.1f MiB) and one sequence's KV cache of "
                         "%lld positions (%.1f MiB) do not fit in %.1f MiB of device memory",
                         plan->other_bytes / 1048576.0, (long long)desc->ctx, per_slot / 1048576.0,
                         budget / 1048576.0);
}

uint64_t vkft_gen_device_budget(const vkft_device *dev) {
  const vkft_device_info *info = vkft_device_get_info(dev);
  uint64_t largest = 0;
  for (int h = 0; h < info->heap_count; h++)
    if (info->heap_device_local[h] && info->heap_size[h] > largest) largest = info->heap_size[h];
  return largest / 10 * 9;
}
