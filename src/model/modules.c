/* The module-name table behind vkft/modules.h. */
#include "vkft/modules.h"

#include <string.h>

static const char *const names[VKFT_MOD_COUNT] = {"q_proj",    "k_proj",       "v_proj",
                                                  "o_proj",    "gate_proj",    "up_proj",
                                                  "down_proj", "embed_tokens", "lm_head"};
static const char *const paths[VKFT_PROJ_COUNT] = {
    "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
    "mlp.gate_proj",    "mlp.up_proj",      "mlp.down_proj"};

const char *vkft_module_name(int i) {
  return i >= 0 && i < VKFT_MOD_COUNT ? names[i] : "?";
}

const char *vkft_proj_path(vkft_proj p) {
  return (int)p >= 0 && p < VKFT_PROJ_COUNT ? paths[p] : "?";
}

int vkft_module_find(const char *name) {
  for (int i = 0; i < VKFT_MOD_COUNT; i++)
    if (!strcmp(name, names[i])) return i;
  return -1;
}
