/* Opening and closing what generation and scoring need (see gen_session.h). */
#include "gen_session.h"

#include "vkft/error.h"
#include "vkft/platform.h"

#include <stdio.h>
#include <stdlib.h>

int gen_session_open_text(gen_session *s, const cli_device_opts *dev_opts, const char *model_dir,
                          const char *adapter_dir, const char *template_name) {
  *s = (gen_session){.model_dir = model_dir, .adapter_dir = adapter_dir, .dev_opts = *dev_opts};
  char path[2048];
  /* the adapter's tokenizer when it has one (tokens.add saved it with the new tokens) */
  if (adapter_dir) snprintf(path, sizeof path, "%s/tokenizer.json", adapter_dir);
  const char *tok_dir = adapter_dir && vkft_file_exists(path) ? adapter_dir : model_dir;
  if (vkft_model_config_load(model_dir, &s->cfg) != VKFT_OK ||
      vkft_tokenizer_load(tok_dir, &s->tok) != VKFT_OK)
    return VKFT_ERR;
  int64_t vocab = (int64_t)vkft_tokenizer_vocab_size(s->tok);
  if (vocab > s->cfg.vocab_size) s->cfg.vocab_size = vocab;
  /* a folder without tokenizer_config.json gives the template no special tokens */
  if (vkft_chat_template_special_tokens(model_dir, &s->special) != VKFT_OK) s->special = NULL;
  if (template_name) {
    const char *builtin = vkft_chat_template_builtin(template_name);
    if (builtin) return vkft_chat_template_parse(builtin, template_name, &s->tmpl);
    if (!vkft_file_exists(template_name))
      return vkft_error("--chat-template %s: not a built-in name (chatml, llama3, ...), a "
                        ".jinja file or a model folder",
                        template_name);
    return vkft_chat_template_load(template_name, NULL, &s->tmpl);
  }
  if (vkft_chat_template_load(model_dir, NULL, &s->tmpl) != VKFT_OK) s->tmpl = NULL;
  return VKFT_OK;
}

int gen_session_model_desc(const gen_session *s, vkft_model_desc *desc) {
  *desc = (vkft_model_desc){
      .dir = s->model_dir, .micro_batches = 1, .max_tokens = 1, .vocab_size = s->cfg.vocab_size};
  if (!s->adapter_dir) return VKFT_OK;
  vkft_adapter_info info;
  if (vkft_adapter_read_config(s->adapter_dir, &info) != VKFT_OK) return VKFT_ERR;
  /* the adapter's parameters exist in training mode (gradients unused here) */
  desc->training = 1;
  desc->lora_r = info.r;
  desc->lora_scale = vkft_adapter_scale(&info);
  desc->lora_targets = info.targets;
  desc->use_dora = info.use_dora;
  desc->modules_to_save = info.modules_to_save;
  return VKFT_OK;
}

static int open_device(gen_session *s) {
  vkft_device_desc dd = {
      .index = s->dev_opts.device, .validate = -1, .profile = s->dev_opts.profile};
  return s->dev ? VKFT_OK : vkft_device_create(&dd, &s->dev);
}

int gen_session_open_model(gen_session *s, const vkft_model_desc *desc) {
  if (open_device(s) != VKFT_OK) return VKFT_ERR;
  if (!s->be && vkft_backend_vk_create(s->dev, &s->be) != VKFT_OK) return VKFT_ERR;
  if (vkft_model_load(s->be, desc, &s->model) != VKFT_OK) return VKFT_ERR;
  if (s->adapter_dir && vkft_model_apply_adapter(s->model, s->adapter_dir) != VKFT_OK)
    return VKFT_ERR;
  return VKFT_OK;
}

int gen_session_open_generator(gen_session *s, int64_t slots, int64_t ctx) {
  if (ctx > s->cfg.max_position_embeddings) ctx = s->cfg.max_position_embeddings;
  vkft_gen_plan_desc pd = {.slots = slots, .ctx = ctx};
  if (gen_session_model_desc(s, &pd.model) != VKFT_OK) return VKFT_ERR;
  if (open_device(s) != VKFT_OK) return VKFT_ERR;
  pd.budget_bytes = vkft_gen_device_budget(s->dev);
  free(s->eos);
  s->eos = NULL;
  if (vkft_gen_plan_cache(&pd, &s->plan) != VKFT_OK ||
      vkft_gen_eos_ids(s->model_dir, s->tok, &s->eos, &s->n_eos) != VKFT_OK)
    return VKFT_ERR;
  return gen_session_open_model(s, &s->plan.model);
}

vkft_prompt_desc gen_session_prompts(const gen_session *s, const vkft_sampling *defaults) {
  return (vkft_prompt_desc){.tokenizer = s->tok,
                            .chat_template = s->tmpl,
                            .special_tokens = s->special,
                            .options = &s->chat_options,
                            .defaults = *defaults};
}

void gen_session_close(gen_session *s) {
  vkft_model_free(s->model);
  vkft_backend_destroy(s->be);
  vkft_device_destroy(s->dev);
  vkft_chat_template_free(s->tmpl);
  cJSON_Delete(s->special);
  vkft_tokenizer_free(s->tok);
  free(s->eos);
  *s = (gen_session){0};
}
