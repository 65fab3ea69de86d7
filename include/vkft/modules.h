/* The modules of a Llama-family decoder layer that LoRA targets and that PEFT names, in one
 * table: the projection indices the model uses, their bit masks for configs and adapters, and
 * their names (short as in PEFT's target_modules, and the module path inside a layer). */
#ifndef VKFT_MODULES_H
#define VKFT_MODULES_H

/* The seven linear projections of a layer, in this order everywhere. */
typedef enum vkft_proj {
  VKFT_PROJ_Q,
  VKFT_PROJ_K,
  VKFT_PROJ_V,
  VKFT_PROJ_O,
  VKFT_PROJ_GATE,
  VKFT_PROJ_UP,
  VKFT_PROJ_DOWN,
  VKFT_PROJ_COUNT
} vkft_proj;

/* Bit masks: LoRA targets (a projection p is 1 << p) and the whole modules PEFT saves. */
enum {
  VKFT_MOD_Q = 1 << VKFT_PROJ_Q,
  VKFT_MOD_K = 1 << VKFT_PROJ_K,
  VKFT_MOD_V = 1 << VKFT_PROJ_V,
  VKFT_MOD_O = 1 << VKFT_PROJ_O,
  VKFT_MOD_GATE = 1 << VKFT_PROJ_GATE,
  VKFT_MOD_UP = 1 << VKFT_PROJ_UP,
  VKFT_MOD_DOWN = 1 << VKFT_PROJ_DOWN,
  VKFT_MOD_EMBED = 1 << 7,   /* modules_to_save: embed_tokens */
  VKFT_MOD_LM_HEAD = 1 << 8, /* modules_to_save: lm_head */
  VKFT_MOD_ALL_PROJ = (1 << VKFT_PROJ_COUNT) - 1,
};
#define VKFT_MOD_COUNT 9

/* "q_proj" ... "down_proj", "embed_tokens", "lm_head" for bit i (0 .. VKFT_MOD_COUNT-1). */
const char *vkft_module_name(int i);
/* The module path inside a decoder layer: "self_attn.q_proj" ... "mlp.down_proj". */
const char *vkft_proj_path(vkft_proj p);
/* The bit index of a module name, or -1. */
int vkft_module_find(const char *name);
/* q, k and v carry biases in Qwen2 (attention_bias). */
static inline int vkft_proj_has_bias(int p) {
  return p <= VKFT_PROJ_V;
}

#endif
