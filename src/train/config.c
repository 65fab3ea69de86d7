/* The training configuration: a schema table drives defaults, parsing, range checks, unknown
 * key suggestions and the JSON dump, so adding a key is one row. The file is JSON or YAML
 * (config_yaml.c turns YAML into the same tree, so both get the same checks). */
#include "vkft/train_config.h"

#include "config_yaml.h"

#include "vkft/error.h"
#include "vkft/platform.h"

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum {
  K_STR,
  K_INT,
  K_INT_AUTO, /* an integer, or "auto" (stored as -1: the trainer chooses) */
  K_NUM,
  K_BOOL,
  K_MODULES,
  K_TRAIN_FILES,
  K_TOKENS,
  K_METHOD,
  K_TRAIN_ON,
  K_SEED
} key_type;

typedef struct key {
  const char *name; /* "section.key" or "key" at the top level */
  key_type type;
  size_t offset;
  size_t size;              /* string capacity */
  double min, max;          /* numeric range (inclusive) */
  const char *default_json; /* default value as JSON */
} key;

#define F(field) offsetof(vkft_train_config, field), sizeof(((vkft_train_config *)0)->field)
#define BIG 1e18

static const key keys[] = {
    {"model", K_STR, F(model), 0, 0, "\"\""},
    {"method", K_METHOD, F(full), 0, 0, "\"lora\""},
    {"objective", K_STR, F(objective), 0, 0, "\"sft\""},
    {"lora.r", K_INT, F(lora.r), 1, 65536, "16"},
    {"lora.alpha", K_NUM, F(lora.alpha), 0, BIG, "32"},
    {"lora.dropout", K_NUM, F(lora.dropout), 0, 0.999, "0.0"},
    {"lora.targets", K_MODULES, F(lora.targets), 0, 0, "[\"q_proj\", \"v_proj\"]"},
    {"lora.init", K_STR, F(lora.init), 0, 0, "null"},
    {"lora.use_rslora", K_BOOL, F(lora.use_rslora), 0, 0, "false"},
    {"lora.use_dora", K_BOOL, F(lora.use_dora), 0, 0, "false"},
    {"lora.modules_to_save", K_MODULES, F(lora.modules_to_save), 0, 0, "[]"},
    {"data.train", K_TRAIN_FILES, F(data.train), 0, 0, "\"\""},
    {"data.eval", K_STR, F(data.eval), 0, 0, "null"},
    {"data.format", K_STR, F(data.format), 0, 0, "\"auto\""},
    {"data.template", K_STR, F(data.chat_template), 0, 0, "\"auto\""},
    {"data.max_len", K_INT_AUTO, F(data.max_len), 0, 1 << 24, "0"},
    {"data.max_len_percentile", K_NUM, F(data.max_len_percentile), 50, 100, "99"},
    {"data.packing", K_BOOL, F(data.packing), 0, 0, "true"},
    {"data.train_on", K_TRAIN_ON, F(data.train_on_all), 0, 0, "\"assistant\""},
    {"data.eval_fraction", K_NUM, F(data.eval_fraction), 0, 0.9, "0.0"},
    {"data.max_prompt_len", K_INT, F(data.max_prompt_len), 0, 1 << 24, "0"},
    {"data.max_completion_len", K_INT, F(data.max_completion_len), 0, 1 << 24, "0"},
    {"train.micro_batch", K_INT_AUTO, F(train.micro_batch), 1, 1 << 16, "4"},
    {"train.grad_accum", K_INT, F(train.grad_accum), 1, 1 << 16, "1"},
    {"train.batch_size", K_INT, F(train.batch_size), 0, 1 << 24, "0"},
    {"train.epochs", K_INT, F(train.epochs), 0, 1 << 20, "1"},
    {"train.max_steps", K_INT, F(train.max_steps), 0, BIG, "0"},
    {"train.lr", K_NUM, F(train.lr), 0, 10, "2e-4"},
    {"train.schedule", K_STR, F(train.schedule), 0, 0, "\"cosine\""},
    {"train.warmup_steps", K_INT, F(train.warmup_steps), 0, BIG, "0"},
    {"train.warmup_ratio", K_NUM, F(train.warmup_ratio), 0, 1, "0.0"},
    {"train.weight_decay", K_NUM, F(train.weight_decay), 0, 10, "0.0"},
    {"train.weight_decay_all", K_BOOL, F(train.weight_decay_all), 0, 0, "false"},
    {"train.max_grad_norm", K_NUM, F(train.max_grad_norm), 0, BIG, "1.0"},
    {"train.adam_beta1", K_NUM, F(train.adam_beta1), 0, 0.999999, "0.9"},
    {"train.adam_beta2", K_NUM, F(train.adam_beta2), 0, 0.999999999, "0.999"},
    {"train.adam_epsilon", K_NUM, F(train.adam_epsilon), 0, 1, "1e-8"},
    {"train.seed", K_SEED, F(train.seed), 0, 9007199254740991.0, "42"},
    {"train.shuffle", K_BOOL, F(train.shuffle), 0, 0, "true"},
    {"train.grad_checkpointing", K_BOOL, F(train.grad_checkpointing), 0, 0, "false"},
    {"train.neftune_noise_alpha", K_NUM, F(train.neftune_noise_alpha), 0, 1e4, "0.0"},
    {"train.zero", K_INT, F(train.zero), 0, 1, "0"},
    {"output.dir", K_STR, F(output.dir), 0, 0, "\"out\""},
    {"output.save_every", K_INT, F(output.save_every), 0, BIG, "0"},
    {"output.eval_every", K_INT, F(output.eval_every), 0, BIG, "0"},
    {"output.keep_last", K_INT, F(output.keep_last), 0, 1 << 20, "2"},
    {"output.eval_strategy", K_STR, F(output.eval_strategy), 0, 0, "\"steps\""},
    {"output.save_strategy", K_STR, F(output.save_strategy), 0, 0, "\"steps\""},
    {"output.early_stopping_patience", K_INT, F(output.early_stopping_patience), 0, 1 << 20, "0"},
    {"output.early_stopping_threshold", K_NUM, F(output.early_stopping_threshold), 0, BIG, "0.0"},
    {"output.load_best_model_at_end", K_BOOL, F(output.load_best_model_at_end), 0, 0, "false"},
    {"output.save_retries", K_INT, F(output.save_retries), 0, 1 << 20, "30"},
    {"output.save_retry_wait", K_NUM, F(output.save_retry_wait), 0, 3600, "10"},
    {"tokens.add", K_TOKENS, F(tokens.add), 0, 0, "[]"},
    {"pref.beta", K_NUM, F(pref.beta), 1e-9, 1e6, "0.1"},
    {"pref.loss_type", K_STR, F(pref.loss_type), 0, 0, "\"sigmoid\""},
    {"pref.label_smoothing", K_NUM, F(pref.label_smoothing), 0, 0.499999, "0.0"},
    {"pref.orpo_lambda", K_NUM, F(pref.orpo_lambda), 1e-9, 1e6, "0.1"},
    {"pref.precompute_ref", K_BOOL, F(pref.precompute_ref), 0, 0, "false"},
    {"quant.base", K_STR, F(quant.base), 0, 0, "\"none\""},
    {"quant.double_quant", K_BOOL, F(quant.double_quant), 0, 0, "true"},
    {"quant.block_size", K_INT, F(quant.block_size), 32, 4096, "64"},
    {"quant.compute_dtype", K_STR, F(quant.compute_dtype), 0, 0, "\"bf16\""},
};
#define KEY_COUNT (sizeof keys / sizeof keys[0])

/* Levenshtein distance of a and b when it can be at most SUGGEST_DISTANCE, else 999: a key that
 * far from every name gets no suggestion, and a megabyte-long key costs nothing. */
#define SUGGEST_DISTANCE 4
static size_t edit_distance(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b), row[128];
  if (la >= 127 || lb >= 127 || la > lb + SUGGEST_DISTANCE || lb > la + SUGGEST_DISTANCE) return 999;
  for (size_t j = 0; j <= lb; j++) row[j] = j;
  for (size_t i = 1; i <= la; i++) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= lb; j++) {
      size_t up = row[j], best = diag + (a[i - 1] != b[j - 1]);
      if (up + 1 < best) best = up + 1;
      if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
      diag = up;
      row[j] = best;
    }
  }
  return row[lb];
}

/* Names users bring from transformers/TRL/PEFT configs, and ours. */
static const char *const aliases[][2] = {
    {"learning_rate", "train.lr"},
    {"per_device_train_batch_size", "train.micro_batch"},
    {"gradient_accumulation_steps", "train.grad_accum"},
    {"num_train_epochs", "train.epochs"},
    {"lr_scheduler_type", "train.schedule"},
    {"gradient_checkpointing", "train.grad_checkpointing"},
    {"neftune_noise_alpha", "train.neftune_noise_alpha"},
    {"lora_alpha", "lora.alpha"},
    {"lora_dropout", "lora.dropout"},
    {"target_modules", "lora.targets"},
    {"rank", "lora.r"},
    {"output_dir", "output.dir"},
    {"save_steps", "output.save_every"},
    {"eval_steps", "output.eval_every"},
    {"save_total_limit", "output.keep_last"},
    {"eval_strategy", "output.eval_strategy"},
    {"evaluation_strategy", "output.eval_strategy"},
    {"save_strategy", "output.save_strategy"},
    {"early_stopping_patience", "output.early_stopping_patience"},
    {"early_stopping_threshold", "output.early_stopping_threshold"},
    {"load_best_model_at_end", "output.load_best_model_at_end"},
    {"max_seq_length", "data.max_len"},
    {"max_length", "data.max_len"},
    {"dataset", "data.train"},
    {"load_in_4bit", "quant.base"},
    {"bnb_4bit_quant_type", "quant.base"},
    {"bnb_4bit_use_double_quant", "quant.double_quant"},
    {"bnb_4bit_compute_dtype", "quant.compute_dtype"},
    {"beta", "pref.beta"},
    {"loss_type", "pref.loss_type"},
    {"label_smoothing", "pref.label_smoothing"},
    {"precompute_ref_log_probs", "pref.precompute_ref"},
    {"max_prompt_length", "data.max_prompt_len"},
    {"max_completion_length", "data.max_completion_len"},
};

static int unknown_key(const char *where, const char *name) {
  const char *leaf = strrchr(name, '.') ? strrchr(name, '.') + 1 : name;
  for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++)
    if (!strcmp(leaf, aliases[i][0]))
      return vkft_error("%s: unknown key \"%s\" (did you mean \"%s\"?)", where, name,
                        aliases[i][1]);
  const char *best = NULL;
  size_t best_d = 999;
  for (size_t i = 0; i < KEY_COUNT; i++) {
    /* compare both the full name and the part after the section */
    const char *dot = strchr(keys[i].name, '.');
    const char *given_dot = strchr(name, '.');
    size_t d = edit_distance(name, keys[i].name);
    if (dot && given_dot) {
      size_t d2 = edit_distance(given_dot + 1, dot + 1) +
                  (strncmp(name, keys[i].name, (size_t)(dot - keys[i].name)) != 0);
      if (d2 < d) d = d2;
    }
    if (d < best_d) best_d = d, best = keys[i].name;
  }
  if (best && best_d <= SUGGEST_DISTANCE)
    return vkft_error("%s: unknown key \"%s\" (did you mean \"%s\"?)", where, name, best);
  return vkft_error("%s: unknown key \"%s\"", where, name);
}

static int set_value(const char *where, const key *k, const cJSON *v, vkft_train_config *cfg) {
  char *base = (char *)cfg + k->offset;
  switch (k->type) {
  case K_STR:
    if (cJSON_IsNull(v)) {
      base[0] = 0;
      return VKFT_OK;
    }
    if (!cJSON_IsString(v)) return vkft_error("%s: \"%s\" must be a string", where, k->name);
    if (strlen(v->valuestring) >= k->size)
      return vkft_error("%s: \"%s\" is too long", where, k->name);
    strcpy(base, v->valuestring);
    return VKFT_OK;
  case K_INT:
  case K_INT_AUTO:
  case K_SEED:
  case K_NUM: {
    /* data.max_len: the data's percentile length; train.micro_batch: the largest that fits the
     * device, probed (trainer.c) */
    if (k->type == K_INT_AUTO && cJSON_IsString(v) && !strcmp(v->valuestring, "auto")) {
      *(int64_t *)base = -1;
      return VKFT_OK;
    }
    if (!cJSON_IsNumber(v)) {
      char *text = cJSON_IsString(v) ? NULL : cJSON_PrintUnformatted(v);
      int status =
          vkft_error("%s: \"%s\" must be a number%s (got %s%s%s)", where, k->name,
                     k->type == K_INT_AUTO ? " or \"auto\"" : "", cJSON_IsString(v) ? "\"" : "",
                     cJSON_IsString(v) ? v->valuestring
                     : text            ? text
                                       : "?",
                     cJSON_IsString(v) ? "\"" : "");
      free(text);
      return status;
    }
    double d = v->valuedouble;
    if (!(d >= k->min && d <= k->max)) /* also catches inf from "1e400" */
      return vkft_error("%s: \"%s\" = %g is out of range [%g, %g]", where, k->name, d, k->min,
                        k->max);
    if (k->type != K_NUM && d != (double)(int64_t)d)
      return vkft_error("%s: \"%s\" must be an integer (got %g)", where, k->name, d);
    if (k->type == K_INT || k->type == K_INT_AUTO)
      *(int64_t *)base = (int64_t)d;
    else if (k->type == K_SEED)
      *(uint64_t *)base = (uint64_t)d;
    else
      *(double *)base = d;
    return VKFT_OK;
  }
  case K_BOOL:
    if (!cJSON_IsBool(v)) return vkft_error("%s: \"%s\" must be true or false", where, k->name);
    *(int *)base = cJSON_IsTrue(v);
    return VKFT_OK;
  case K_METHOD:
    if (!cJSON_IsString(v) || (strcmp(v->valuestring, "lora") && strcmp(v->valuestring, "full")))
      return vkft_error("%s: \"method\" must be \"lora\" or \"full\"", where);
    *(int *)base = !strcmp(v->valuestring, "full");
    return VKFT_OK;
  case K_TRAIN_ON:
    if (!cJSON_IsString(v) ||
        (strcmp(v->valuestring, "assistant") && strcmp(v->valuestring, "all")))
      return vkft_error("%s: \"data.train_on\" must be \"assistant\" or \"all\"", where);
    *(int *)base = !strcmp(v->valuestring, "all");
    return VKFT_OK;
  case K_MODULES: {
    int is_save = !strcmp(k->name, "lora.modules_to_save");
    /* PEFT's "all-linear": every linear layer but the output layer (peft/tuners/tuners_utils.py,
     * _maybe_include_all_linear_layers), here the seven projections */
    if (!is_save && cJSON_IsString(v) && !strcmp(v->valuestring, "all-linear")) {
      *(unsigned *)base = VKFT_MOD_ALL_PROJ;
      return VKFT_OK;
    }
    if (!cJSON_IsArray(v))
      return vkft_error("%s: \"%s\" must be a list of module names%s", where, k->name,
                        is_save ? "" : " or \"all-linear\"");
    unsigned mask = 0;
    for (const cJSON *e = v->child; e; e = e->next) {
      int found = cJSON_IsString(e) ? vkft_module_find(e->valuestring) : -1;
      if (found < 0 || (is_save ? found < VKFT_PROJ_COUNT : found >= VKFT_PROJ_COUNT))
        return vkft_error("%s: \"%s\": unsupported module %s (allowed: %s)", where, k->name,
                          cJSON_IsString(e) ? e->valuestring : "(not a string)",
                          is_save
                              ? "embed_tokens, lm_head"
                              : "q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj");
      mask |= 1u << found;
    }
    *(unsigned *)base = mask;
    return VKFT_OK;
  }
  case K_TOKENS: {
    if (!cJSON_IsArray(v)) return vkft_error("%s: \"tokens.add\" must be a list of strings", where);
    cfg->tokens.add_count = 0;
    for (const cJSON *e = v->child; e; e = e->next) {
      if (!cJSON_IsString(e) || !e->valuestring[0] || strlen(e->valuestring) >= 128)
        return vkft_error("%s: \"tokens.add\": each token must be a non-empty string", where);
      if (cfg->tokens.add_count == VKFT_CFG_MAX_LIST)
        return vkft_error("%s: \"tokens.add\": at most %d tokens", where, VKFT_CFG_MAX_LIST);
      strcpy(cfg->tokens.add[cfg->tokens.add_count++], e->valuestring);
    }
    return VKFT_OK;
  }
  case K_TRAIN_FILES: {
    /* "file" or [{"path": "file", "weight": 1.0}, ...] or ["file", ...] */
    cfg->data.train_count = 0;
    if (cJSON_IsString(v)) {
      if (!v->valuestring[0]) return VKFT_OK;
      if (strlen(v->valuestring) >= VKFT_CFG_PATH)
        return vkft_error("%s: data.train: path too long", where);
      strcpy(cfg->data.train[0].path, v->valuestring);
      cfg->data.train[0].weight = 1.0;
      cfg->data.train_count = 1;
      return VKFT_OK;
    }
    if (!cJSON_IsArray(v)) return vkft_error("%s: \"data.train\" must be a path or a list", where);
    for (const cJSON *e = v->child; e; e = e->next) {
      if (cfg->data.train_count == VKFT_CFG_MAX_LIST)
        return vkft_error("%s: \"data.train\": at most %d files", where, VKFT_CFG_MAX_LIST);
      vkft_train_file *f = &cfg->data.train[cfg->data.train_count];
      const cJSON *path = cJSON_IsString(e) ? e : cJSON_GetObjectItemCaseSensitive(e, "path");
      const cJSON *weight =
          cJSON_IsObject(e) ? cJSON_GetObjectItemCaseSensitive(e, "weight") : NULL;
      for (const cJSON *field = cJSON_IsObject(e) ? e->child : NULL; field; field = field->next)
        if (strcmp(field->string, "path") && strcmp(field->string, "weight"))
          return vkft_error("%s: \"data.train\": unknown key \"%s\" (entries have \"path\" and "
                            "\"weight\")",
                            where, field->string);
      if (!cJSON_IsString(path) || strlen(path->valuestring) >= VKFT_CFG_PATH)
        return vkft_error("%s: \"data.train\": each entry needs a \"path\"", where);
      if (weight && (!cJSON_IsNumber(weight) || weight->valuedouble <= 0))
        return vkft_error("%s: \"data.train\": \"weight\" must be a positive number", where);
      strcpy(f->path, path->valuestring);
      f->weight = weight ? weight->valuedouble : 1.0;
      cfg->data.train_count++;
    }
    return VKFT_OK;
  }
  }
  return VKFT_ERR;
}

static int is_grad_accum(const key *k) {
  return k->offset == offsetof(vkft_train_config, train.grad_accum);
}

/* A key's value from the file or --set. train.grad_accum records that it was given (it must
 * then agree with train.batch_size); null leaves it to be derived, as the dump writes it. */
static int set_given(const char *where, const key *k, const cJSON *v, vkft_train_config *cfg) {
  if (is_grad_accum(k) && cJSON_IsNull(v)) return VKFT_OK;
  if (set_value(where, k, v, cfg) != VKFT_OK) return VKFT_ERR;
  if (is_grad_accum(k)) cfg->train.grad_accum_given = 1;
  return VKFT_OK;
}

static const key *find_key(const char *name) {
  for (size_t i = 0; i < KEY_COUNT; i++)
    if (!strcmp(keys[i].name, name)) return &keys[i];
  return NULL;
}

static int is_section(const char *name) {
  static const char *sections[] = {"lora", "data", "train", "output", "tokens", "quant", "pref"};
  for (size_t i = 0; i < sizeof sections / sizeof sections[0]; i++)
    if (!strcmp(sections[i], name)) return 1;
  return 0;
}

/* "path", or "path:LINE" when the file is YAML and the item's line is known. */
static const char *where_of(const char *path, const config_lines *lines, const cJSON *item,
                            char *buf, size_t size) {
  int line = config_lines_find(lines, item);
  if (!line) return path;
  snprintf(buf, size, "%s:%d", path, line);
  return buf;
}

static int apply_object(const char *path, const config_lines *lines, const cJSON *root,
                        vkft_train_config *cfg) {
  if (!cJSON_IsObject(root)) return vkft_error("%s: the config must be a JSON object", path);
  char buf[VKFT_CFG_PATH + 32];
  for (const cJSON *e = root->child; e; e = e->next) {
    const char *where = where_of(path, lines, e, buf, sizeof buf);
    if (is_section(e->string)) {
      if (!cJSON_IsObject(e)) return vkft_error("%s: \"%s\" must be an object", where, e->string);
      for (const cJSON *f = e->child; f; f = f->next) {
        char full[256];
        snprintf(full, sizeof full, "%s.%s", e->string, f->string);
        where = where_of(path, lines, f, buf, sizeof buf);
        const key *k = find_key(full);
        if (!k) return unknown_key(where, full);
        if (set_given(where, k, f, cfg) != VKFT_OK) return VKFT_ERR;
      }
    } else {
      const key *k = find_key(e->string);
      if (!k || strchr(k->name, '.')) return unknown_key(where, e->string);
      if (set_given(where, k, e, cfg) != VKFT_OK) return VKFT_ERR;
    }
  }
  return VKFT_OK;
}

static int is_strategy(const char *s) {
  return !strcmp(s, "steps") || !strcmp(s, "epoch") || !strcmp(s, "no");
}

/* Evaluation and checkpoint strategies, early stopping and the best model: what transformers'
 * TrainingArguments and EarlyStoppingCallback check, in their words. */
static int check_schedule_of_output(const vkft_train_config *cfg) {
  const char *es = cfg->output.eval_strategy, *ss = cfg->output.save_strategy;
  if (!is_strategy(es))
    return vkft_error("config: \"output.eval_strategy\" must be \"steps\", \"epoch\" or \"no\" "
                      "(got \"%s\")",
                      es);
  if (!is_strategy(ss))
    return vkft_error("config: \"output.save_strategy\" must be \"steps\", \"epoch\" or \"no\" "
                      "(got \"%s\")",
                      ss);
  int evals_during = !strcmp(es, "epoch") || (!strcmp(es, "steps") && cfg->output.eval_every > 0);
  const char *need = cfg->output.early_stopping_patience > 0 ? "output.early_stopping_patience"
                     : cfg->output.load_best_model_at_end    ? "output.load_best_model_at_end"
                                                             : NULL;
  if (need && !evals_during)
    return vkft_error("config: \"%s\" needs evaluations during training: output.eval_strategy "
                      "\"epoch\", or \"steps\" with output.eval_every > 0",
                      need);
  if (cfg->output.load_best_model_at_end) {
    /* the best evaluation must have a checkpoint: every eval step is a save step */
    int ok = !strcmp(es, ss) &&
             (!strcmp(es, "epoch") ||
              (cfg->output.save_every > 0 && cfg->output.eval_every % cfg->output.save_every == 0));
    if (!ok)
      return vkft_error("config: \"output.load_best_model_at_end\" needs a checkpoint at every "
                        "evaluation: the same output.save_strategy as output.eval_strategy, and "
                        "with \"steps\" an output.eval_every that is a multiple of "
                        "output.save_every");
  }
  return VKFT_OK;
}

static int check(vkft_train_config *cfg) {
  if (!cfg->model[0])
    return vkft_error("config: \"model\" is required (a Hugging Face model folder)");
  if (!cfg->data.train_count)
    return vkft_error("config: \"data.train\" is required (a dataset file)");
  if (strcmp(cfg->train.schedule, "constant") && strcmp(cfg->train.schedule, "linear") &&
      strcmp(cfg->train.schedule, "cosine"))
    return vkft_error("config: \"train.schedule\" must be constant, linear or cosine (got \"%s\")",
                      cfg->train.schedule);
  if (!cfg->full && !cfg->lora.targets && !cfg->lora.modules_to_save)
    return vkft_error("config: \"lora.targets\" is empty: nothing would be trained");
  if (cfg->train.epochs == 0 && cfg->train.max_steps == 0)
    return vkft_error("config: \"train.epochs\" and \"train.max_steps\" are both 0");
  if (cfg->data.eval[0] && cfg->data.eval_fraction > 0)
    return vkft_error("config: give \"data.eval\" or \"data.eval_fraction\", not both");
  /* the longest file name written below output.dir is
   * "/checkpoint-<step>.tmp/adapter_model.safetensors.tmp": checked now, not after step 1 */
  if (strlen(cfg->output.dir) > VKFT_CFG_OUTPUT_DIR_MAX)
    return vkft_error("config: \"output.dir\" is %zu bytes long; at most %d are supported",
                      strlen(cfg->output.dir), VKFT_CFG_OUTPUT_DIR_MAX);
  if (!cfg->output.dir[0]) return vkft_error("config: \"output.dir\" is empty");
  if (strcmp(cfg->quant.base, "none") && strcmp(cfg->quant.base, "nf4") &&
      strcmp(cfg->quant.base, "fp4"))
    return vkft_error("config: \"quant.base\" must be \"none\", \"nf4\" or \"fp4\" (got \"%s\")",
                      cfg->quant.base);
  if (cfg->quant.block_size & (cfg->quant.block_size - 1))
    return vkft_error("config: \"quant.block_size\" must be a power of two in [32, 4096]");
  if (strcmp(cfg->quant.compute_dtype, "bf16") && strcmp(cfg->quant.compute_dtype, "f16") &&
      strcmp(cfg->quant.compute_dtype, "f32"))
    return vkft_error("config: \"quant.compute_dtype\" must be \"bf16\", \"f16\" or \"f32\"");
  if (strcmp(cfg->objective, "sft") && strcmp(cfg->objective, "dpo") &&
      strcmp(cfg->objective, "orpo"))
    return vkft_error("config: \"objective\" must be \"sft\", \"dpo\" or \"orpo\" (got \"%s\")",
                      cfg->objective);
  if (check_schedule_of_output(cfg) != VKFT_OK) return VKFT_ERR;
  if (cfg->data.max_len < 0 && strcmp(cfg->objective, "sft"))
    return vkft_error("config: \"data.max_len\": \"auto\" is for objective \"sft\"; preference "
                      "pairs take data.max_len, max_prompt_len and max_completion_len as numbers");
  if (cfg->train.neftune_noise_alpha > 0 && strcmp(cfg->objective, "sft"))
    return vkft_error("config: \"train.neftune_noise_alpha\" is for objective \"sft\" (TRL's "
                      "SFTTrainer); it would change the %s log-probs it compares",
                      cfg->objective);
  if (strcmp(cfg->pref.loss_type, "sigmoid") && strcmp(cfg->pref.loss_type, "ipo") &&
      strcmp(cfg->pref.loss_type, "hinge") && strcmp(cfg->pref.loss_type, "robust"))
    return vkft_error("config: \"pref.loss_type\" must be \"sigmoid\", \"ipo\", \"hinge\" or "
                      "\"robust\" (got \"%s\")",
                      cfg->pref.loss_type);
  if (cfg->pref.label_smoothing > 0 && strcmp(cfg->pref.loss_type, "robust"))
    return vkft_error("config: \"pref.label_smoothing\" acts on pref.loss_type \"robust\" only "
                      "(as in TRL); it would be ignored with \"%s\"",
                      cfg->pref.loss_type);
  if (cfg->train.micro_batch < 0 && cfg->train.batch_size > 0 && cfg->train.grad_accum_given)
    return vkft_error("config: \"train.batch_size\" and \"train.grad_accum\" are both given with "
                      "train.micro_batch \"auto\": give one (grad_accum is derived from "
                      "batch_size and the micro-batch chosen)");
  if (strcmp(cfg->quant.base, "none") && cfg->full)
    return vkft_error("config: \"quant.base\" %s is a frozen 4-bit base: it trains with method "
                      "\"lora\" (QLoRA), not \"full\"",
                      cfg->quant.base);
  if (cfg->lora.use_dora && cfg->full)
    return vkft_error("config: \"lora.use_dora\" is a LoRA variant: it needs method \"lora\"");
  if (cfg->lora.use_dora && strcmp(cfg->quant.base, "none"))
    return vkft_error("config: \"lora.use_dora\" needs the dense base weights for its row norms; "
                      "vkft does not combine it with \"quant.base\" %s",
                      cfg->quant.base);
  return VKFT_OK;
}

/* Parses the config file, JSON or YAML, and applies it. */
static int load_file(const char *path, vkft_train_config *cfg) {
  char *text;
  size_t size;
  if (vkft_file_read(path, &text, &size) != VKFT_OK) return VKFT_ERR;
  cJSON *root = NULL;
  config_lines lines = {0};
  if (config_is_yaml(path, text, size)) {
    int status = config_yaml_parse(path, text, size, &root, &lines);
    free(text);
    if (status != VKFT_OK) return VKFT_ERR;
  } else {
    const char *end = NULL;
    root = cJSON_ParseWithLengthOpts(text, size, &end, 0);
    const char *rest = root && end ? end : NULL;
    while (rest && rest < text + size && strchr(" \t\r\n", *rest)) rest++;
    if (!root || (rest && rest < text + size)) {
      size_t line = 1;
      for (const char *p = text; end && p < end && p < text + size; p++) line += *p == '\n';
      free(text);
      cJSON_Delete(root);
      return vkft_error(root ? "%s:%zu: text after the JSON object" : "%s:%zu: not valid JSON",
                        path, line);
    }
    free(text);
  }
  int status = apply_object(path, &lines, root, cfg);
  cJSON_Delete(root);
  config_lines_free(&lines);
  return status;
}

int vkft_train_config_load(const char *path, const char *const *sets, int set_count,
                           vkft_train_config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  for (size_t i = 0; i < KEY_COUNT; i++) {
    cJSON *v = cJSON_Parse(keys[i].default_json);
    int status = set_value("defaults", &keys[i], v, cfg);
    cJSON_Delete(v);
    if (status != VKFT_OK) return VKFT_ERR;
  }
  if (path && load_file(path, cfg) != VKFT_OK) return VKFT_ERR;
  for (int i = 0; i < set_count; i++) {
    const char *eq = strchr(sets[i], '=');
    if (!eq || eq == sets[i]) return vkft_error("--set %s: expected section.key=value", sets[i]);
    char name[256];
    size_t n = (size_t)(eq - sets[i]);
    if (n >= sizeof name) return vkft_error("--set %s: key too long", sets[i]);
    memcpy(name, sets[i], n);
    name[n] = 0;
    const key *k = find_key(name);
    if (!k) return unknown_key("--set", name);
    /* the whole value must be JSON: cJSON alone would read "5e\u22124" as 5, "0x10" as 0 and
     * "8abc" as 8 and ignore the rest */
    cJSON *v = cJSON_ParseWithOpts(eq + 1, NULL, 1);
    if (!v || (k->type == K_STR && !cJSON_IsString(v) && !cJSON_IsNull(v)) ||
        (k->type == K_TRAIN_FILES && !cJSON_IsString(v) && !cJSON_IsArray(v)) ||
        ((k->type == K_METHOD || k->type == K_TRAIN_ON) && !cJSON_IsString(v))) {
      cJSON_Delete(v); /* not JSON (or not the JSON the key wants): the text is the string */
      v = cJSON_CreateString(eq + 1);
    }
    int status = v ? set_given("--set", k, v, cfg) : vkft_error_nomem();
    cJSON_Delete(v);
    if (status != VKFT_OK) return VKFT_ERR;
  }
  return check(cfg);
}

int vkft_train_config_grad_accum(const vkft_train_config *cfg, int64_t micro_batch, int world,
                                 int64_t *grad_accum, char *note, size_t size) {
  const int64_t batch = cfg->train.batch_size, per_step = micro_batch * world;
  if (size) note[0] = 0;
  *grad_accum = cfg->train.grad_accum;
  if (batch > 0) {
    int64_t derived = (batch + per_step - 1) / per_step;
    if (cfg->train.grad_accum_given && derived != cfg->train.grad_accum)
      return vkft_error("config: \"train.batch_size\" %lld and \"train.grad_accum\" %lld disagree "
                        "(micro_batch %lld x %d rank%s x grad_accum %lld is %lld sequences): "
                        "give one of them",
                        (long long)batch, (long long)cfg->train.grad_accum, (long long)micro_batch,
                        world, world == 1 ? "" : "s", (long long)cfg->train.grad_accum,
                        (long long)(per_step * cfg->train.grad_accum));
    *grad_accum = derived;
    if (batch % per_step && size)
      snprintf(note, size,
               "train.batch_size %lld is not a multiple of micro_batch %lld x %d rank%s: "
               "grad_accum %lld, an effective batch of %lld sequences",
               (long long)batch, (long long)micro_batch, world, world == 1 ? "" : "s",
               (long long)derived, (long long)(derived * per_step));
  }
  if (*grad_accum > 64)
    return vkft_error("config: train.grad_accum %lld is above 64%s", (long long)*grad_accum,
                      batch > 0 ? " (train.batch_size / micro_batch): raise train.micro_batch"
                                : "");
  return VKFT_OK;
}

static void dump_value(cJSON *section, const char *name, const key *k,
                       const vkft_train_config *cfg) {
  const char *base = (const char *)cfg + k->offset;
  switch (k->type) {
  case K_STR:
    if (base[0])
      cJSON_AddStringToObject(section, name, base);
    else if (!strcmp(k->default_json, "null"))
      cJSON_AddNullToObject(section, name);
    else
      cJSON_AddStringToObject(section, name, "");
    break;
  case K_INT:
  case K_INT_AUTO:
    if (k->type == K_INT_AUTO && *(const int64_t *)base < 0)
      cJSON_AddStringToObject(section, name, "auto");
    else if (is_grad_accum(k) && cfg->train.batch_size > 0 && !cfg->train.grad_accum_given)
      cJSON_AddNullToObject(section, name); /* derived from batch_size */
    else
      cJSON_AddNumberToObject(section, name, (double)*(const int64_t *)base);
    break;
  case K_SEED:
    cJSON_AddNumberToObject(section, name, (double)*(const uint64_t *)base);
    break;
  case K_NUM:
    cJSON_AddNumberToObject(section, name, *(const double *)base);
    break;
  case K_BOOL:
    cJSON_AddBoolToObject(section, name, *(const int *)base);
    break;
  case K_METHOD:
    cJSON_AddStringToObject(section, name, cfg->full ? "full" : "lora");
    break;
  case K_TRAIN_ON:
    cJSON_AddStringToObject(section, name, cfg->data.train_on_all ? "all" : "assistant");
    break;
  case K_MODULES: {
    cJSON *list = cJSON_AddArrayToObject(section, name);
    unsigned mask = *(const unsigned *)base;
    for (int i = 0; i < VKFT_MOD_COUNT && list; i++)
      if (mask & (1u << i)) cJSON_AddItemToArray(list, cJSON_CreateString(vkft_module_name(i)));
    break;
  }
  case K_TOKENS: {
    cJSON *list = cJSON_AddArrayToObject(section, name);
    for (int i = 0; i < cfg->tokens.add_count && list; i++)
      cJSON_AddItemToArray(list, cJSON_CreateString(cfg->tokens.add[i]));
    break;
  }
  case K_TRAIN_FILES: {
    cJSON *list = cJSON_AddArrayToObject(section, name);
    for (int i = 0; i < cfg->data.train_count && list; i++) {
      cJSON *f = cJSON_CreateObject();
      cJSON_AddStringToObject(f, "path", cfg->data.train[i].path);
      cJSON_AddNumberToObject(f, "weight", cfg->data.train[i].weight);
      cJSON_AddItemToArray(list, f);
    }
    break;
  }
  }
}

char *vkft_train_config_to_json(const vkft_train_config *cfg) {
  cJSON *root = cJSON_CreateObject();
  if (!root) return NULL;
  for (size_t i = 0; i < KEY_COUNT; i++) {
    const char *dot = strchr(keys[i].name, '.');
    cJSON *section = root;
    const char *name = keys[i].name;
    if (dot) {
      char sec[32];
      snprintf(sec, sizeof sec, "%.*s", (int)(dot - keys[i].name), keys[i].name);
      section = cJSON_GetObjectItemCaseSensitive(root, sec);
      if (!section) section = cJSON_AddObjectToObject(root, sec);
      name = dot + 1;
    }
    if (section) dump_value(section, name, &keys[i], cfg);
  }
  char *text = cJSON_Print(root);
  cJSON_Delete(root);
  return text;
}
