/* The training config: defaults, the example, --set overrides, unknown keys with a
 * suggestion, range errors, and the JSON dump reloading to the same config. */
#include "check.h"

#include "vkft/error.h"
#include "vkft/platform.h"
#include "vkft/train_config.h"

#include <stdlib.h>
#include <string.h>

#define TMP "test_train_config.tmp.json"

static int load_text(const char *json, const char *const *sets, int n, vkft_train_config *cfg) {
  if (vkft_file_write_atomic(TMP, json, strlen(json)) != VKFT_OK) return VKFT_ERR;
  return vkft_train_config_load(TMP, sets, n, cfg);
}

static void expect_error(const char *json, const char *set, const char *expect) {
  vkft_train_config cfg;
  const char *sets[1] = {set};
  CHECKF(load_text(json, sets, set ? 1 : 0, &cfg) == VKFT_ERR, "accepted: %s %s", json,
         set ? set : "");
  /* a config's mistakes are the user's input: the CLI's exit status 1, never an I/O error */
  CHECKF(vkft_error_code() == VKFT_ERR_INPUT, "%s: code %s", set ? set : json,
         vkft_errcode_name(vkft_error_code()));
  CHECKF(strstr(vkft_error_message(), expect) != NULL, "expected \"%s\" in: %s", expect,
         vkft_error_message());
}

int main(void) {
  vkft_train_config cfg;
  const char *minimal = "{\"model\": \"models/stories260K\", \"data\": {\"train\": \"d.jsonl\"}}";
  CHECKF(load_text(minimal, NULL, 0, &cfg) == VKFT_OK, "%s", vkft_error_message());
  CHECK(!cfg.full && cfg.lora.r == 16 && cfg.lora.alpha == 32 &&
        cfg.lora.targets == (VKFT_MOD_Q | VKFT_MOD_V));
  CHECK(cfg.data.train_count == 1 && !strcmp(cfg.data.train[0].path, "d.jsonl") &&
        cfg.data.packing);
  CHECK(cfg.train.micro_batch == 4 && cfg.train.lr == 2e-4 &&
        !strcmp(cfg.train.schedule, "cosine"));
  CHECK(cfg.train.seed == 42 && cfg.train.max_grad_norm == 1.0 && cfg.train.adam_beta2 == 0.999);
  CHECK(cfg.output.keep_last == 2 && !strcmp(cfg.output.dir, "out") && cfg.data.max_len == 0);

  /* the example config of the issue, verbatim */
  const char *example =
      "{\"model\": \"DIR\", \"method\": \"lora\",\n"
      " \"lora\": {\"r\": 16, \"alpha\": 32, \"dropout\": 0.0, \"targets\": [\"q_proj\", "
      "\"v_proj\"], \"init\": null},\n"
      " \"data\": {\"train\": \"FILE\", \"eval\": null, \"format\": \"auto\", \"template\": "
      "\"auto\",\n"
      "          \"max_len\": 2048, \"packing\": true, \"train_on\": \"assistant\", "
      "\"eval_fraction\": 0.0},\n"
      " \"train\": {\"micro_batch\": 4, \"grad_accum\": 1, \"epochs\": 1, \"max_steps\": 0, "
      "\"lr\": 2e-4,\n"
      "           \"schedule\": \"cosine\", \"warmup_steps\": 0, \"weight_decay\": 0.0, "
      "\"max_grad_norm\": 1.0,\n"
      "           \"seed\": 42, \"shuffle\": true, \"grad_checkpointing\": false},\n"
      " \"output\": {\"dir\": \"out\", \"save_every\": 0, \"eval_every\": 0, \"keep_last\": 2}}";
  CHECKF(load_text(example, NULL, 0, &cfg) == VKFT_OK, "%s", vkft_error_message());
  CHECK(cfg.data.max_len == 2048 && !cfg.lora.init[0] && !cfg.data.eval[0]);

  /* overrides: JSON values, and plain strings that are not JSON */
  const char *sets[] = {"train.lr=1e-3",
                        "method=full",
                        "data.train=other.json",
                        "lora.targets=[\"o_proj\",\"down_proj\"]",
                        "tokens.add=[\"<|im_start|>\", \"<|im_end|>\"]",
                        "lora.modules_to_save=[\"lm_head\"]"};
  CHECKF(load_text(minimal, sets, 6, &cfg) == VKFT_OK, "%s", vkft_error_message());
  CHECK(cfg.train.lr == 1e-3 && cfg.full && !strcmp(cfg.data.train[0].path, "other.json"));
  CHECK(cfg.lora.targets == (VKFT_MOD_O | VKFT_MOD_DOWN) &&
        cfg.lora.modules_to_save == VKFT_MOD_LM_HEAD);
  CHECK(cfg.tokens.add_count == 2 && !strcmp(cfg.tokens.add[1], "<|im_end|>"));

  /* weighted mix of training files */
  CHECKF(
      load_text("{\"model\": \"m\", \"data\": {\"train\": [{\"path\": \"a.json\", \"weight\": 2}, "
                "{\"path\": \"b.jsonl\"}]}}",
                NULL, 0, &cfg) == VKFT_OK,
      "%s", vkft_error_message());
  CHECK(cfg.data.train_count == 2 && cfg.data.train[0].weight == 2 &&
        cfg.data.train[1].weight == 1);

  /* dump and reload gives the same configuration */
  char *dumped = vkft_train_config_to_json(&cfg);
  vkft_train_config again;
  CHECKF(load_text(dumped, NULL, 0, &again) == VKFT_OK, "%s", vkft_error_message());
  char *dumped2 = vkft_train_config_to_json(&again);
  CHECK(dumped && dumped2 && !strcmp(dumped, dumped2));
  free(dumped);
  free(dumped2);

  /* errors name the key; unknown keys suggest the closest */
  expect_error("{\"model\": \"m\", \"data\": {\"train\": \"d\"}, \"train\": {\"warmup_step\": 3}}",
               NULL, "unknown key \"train.warmup_step\" (did you mean \"train.warmup_steps\"?)");
  expect_error("{\"model\": \"m\", \"data\": {\"train\": \"d\"}, \"lora\": {\"rank\": 8}}", NULL,
               "(did you mean \"lora.r\"?)");
  expect_error(minimal, "train.learnig_rate=1", "unknown key \"train.learnig_rate\"");
  expect_error(minimal, "lora.r=0", "\"lora.r\" = 0 is out of range");
  expect_error(minimal, "method=qlora", "\"method\" must be \"lora\" or \"full\"");
  expect_error(minimal, "lora.targets=[\"qkv\"]", "unsupported module qkv");
  expect_error(minimal, "train.schedule=polynomial",
               "\"train.schedule\" must be constant, linear or cosine");
  expect_error(minimal, "train.micro_batch=2.5", "\"train.micro_batch\" must be an integer");
  /* numbers are read whole: never a prefix of the text */
  expect_error(minimal,
               "train.lr=5e\xe2\x88\x92"
               "4",
               "\"train.lr\" must be a number (got \"5e");
  expect_error(minimal, "train.lr=0x10", "\"train.lr\" must be a number (got \"0x10\")");
  expect_error(minimal, "train.lr=1_000", "\"train.lr\" must be a number");
  expect_error(minimal, "train.lr=1,5e-3", "\"train.lr\" must be a number");
  expect_error(minimal, "lora.r=8abc", "\"lora.r\" must be a number (got \"8abc\")");
  expect_error(minimal, "train.lr=1e400", "\"train.lr\" = inf is out of range");
  expect_error(minimal, "lora.r=1e300", "\"lora.r\" = 1e+300 is out of range");
  expect_error("{\"model\": \"m\", \"data\": {\"train\": \"d\"}} {\"x\": 1}", NULL,
               "text after the JSON object");
  expect_error("{\"data\": {\"train\": \"d\"}}", NULL, "\"model\" is required");
  expect_error("{\"model\": \"m\",\n \"data\": {\"train\": \"d\"\n ", NULL, ":3: not valid JSON");
  expect_error("{\"model\": \"m\", \"data\": {\"train\": \"d\"}, \"lora\": [1]}", NULL,
               "\"lora\" must be an object");
  remove(TMP);
  return check_summary();
}
