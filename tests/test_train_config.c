/* The training config: defaults, the example, --set overrides, unknown keys with a
 * suggestion, range errors, and the JSON dump reloading to the same config; YAML configs (the
 * README's example as YAML, YAML 1.2 core schema scalars, errors naming the line). */
#include "check.h"

#include "vkft/error.h"
#include "vkft/platform.h"
#include "vkft/train_config.h"

#include <stdlib.h>
#include <string.h>

#define TMP "test_train_config.tmp.json"
#define TMP_YAML "test_train_config.tmp.yaml"

static int load_file_text(const char *path, const char *text, const char *const *sets, int n,
                          vkft_train_config *cfg) {
  if (vkft_file_write_atomic(path, text, strlen(text)) != VKFT_OK) return VKFT_ERR;
  return vkft_train_config_load(path, sets, n, cfg);
}

static int load_text(const char *json, const char *const *sets, int n, vkft_train_config *cfg) {
  return load_file_text(TMP, json, sets, n, cfg);
}

static void expect_error_in(const char *path, const char *text, const char *set,
                            const char *expect) {
  vkft_train_config cfg;
  const char *sets[1] = {set};
  CHECKF(load_file_text(path, text, sets, set ? 1 : 0, &cfg) == VKFT_ERR, "accepted: %s %s", text,
         set ? set : "");
  /* a config's mistakes are the user's input: the CLI's exit status 1, never an I/O error */
  CHECKF(vkft_error_code() == VKFT_ERR_INPUT, "%s: code %s", set ? set : text,
         vkft_errcode_name(vkft_error_code()));
  CHECKF(strstr(vkft_error_message(), expect) != NULL, "expected \"%s\" in: %s", expect,
         vkft_error_message());
}

static void expect_error(const char *json, const char *set, const char *expect) {
  expect_error_in(TMP, json, set, expect);
}

static void expect_yaml_error(const char *yaml, const char *expect) {
  expect_error_in(TMP_YAML, yaml, NULL, expect);
}

/* The README's example config, as YAML: the same configuration as its JSON. */
static const char readme_yaml[] = "model: DIR\n"
                                  "method: lora\n"
                                  "lora:\n"
                                  "  r: 16\n"
                                  "  alpha: 32\n"
                                  "  dropout: 0.0\n"
                                  "  targets: [q_proj, v_proj]\n"
                                  "  init: null\n"
                                  "  use_rslora: false\n"
                                  "  modules_to_save: []\n"
                                  "data:\n"
                                  "  train: FILE\n"
                                  "  eval: null\n"
                                  "  format: auto\n"
                                  "  template: auto\n"
                                  "  max_len: 2048\n"
                                  "  packing: true\n"
                                  "  train_on: assistant\n"
                                  "  eval_fraction: 0.0\n"
                                  "train:\n"
                                  "  micro_batch: 4\n"
                                  "  grad_accum: 1\n"
                                  "  epochs: 1\n"
                                  "  max_steps: 0\n"
                                  "  lr: 2e-4\n"
                                  "  schedule: cosine\n"
                                  "  warmup_steps: 0\n"
                                  "  warmup_ratio: 0.0\n"
                                  "  weight_decay: 0.0\n"
                                  "  weight_decay_all: false\n"
                                  "  max_grad_norm: 1.0\n"
                                  "  adam_beta1: 0.9\n"
                                  "  adam_beta2: 0.999\n"
                                  "  adam_epsilon: 1e-8\n"
                                  "  seed: 42\n"
                                  "  shuffle: true\n"
                                  "  grad_checkpointing: false\n"
                                  "output:\n"
                                  "  dir: out\n"
                                  "  save_every: 0\n"
                                  "  eval_every: 0\n"
                                  "  keep_last: 2\n"
                                  "tokens:\n"
                                  "  add: []\n";

/* The first ```LANG block of the README (malloc'd), or NULL. */
static char *readme_block(const char *lang) {
  char *text, *block = NULL;
  if (vkft_file_read(VKFT_SOURCE_DIR "/README.md", &text, NULL) != VKFT_OK) return NULL;
  char fence[32];
  snprintf(fence, sizeof fence, "```%s\n", lang);
  char *start = strstr(text, fence), *end = start ? strstr(start + strlen(fence), "\n```") : NULL;
  if (end && (block = malloc((size_t)(end - start) + 2))) {
    start += strlen(fence);
    memcpy(block, start, (size_t)(end - start) + 1);
    block[end - start + 1] = 0;
  }
  free(text);
  return block;
}

/* The configuration a file gives, as JSON (malloc'd), or NULL with the error printed. */
static char *config_of(const char *path, const char *text) {
  vkft_train_config cfg;
  if (load_file_text(path, text, NULL, 0, &cfg) != VKFT_OK) {
    fprintf(stderr, "%s: %s\n", path, vkft_error_message());
    return NULL;
  }
  return vkft_train_config_to_json(&cfg);
}

static void yaml_cases(void) {
  /* the README's example: its JSON, the same as YAML, the JSON text in a .yaml file (YAML 1.2 is
   * a superset of JSON), and the README's own YAML block when it has one */
  char *json = readme_block("json"), *yaml = readme_block("yaml");
  CHECKF(json != NULL, "no ```json block in %s/README.md", VKFT_SOURCE_DIR);
  char *from_json = json ? config_of(TMP, json) : NULL;
  char *from_yaml = config_of(TMP_YAML, readme_yaml);
  char *json_as_yaml = json ? config_of(TMP_YAML, json) : NULL;
  char *readme_yaml_config = yaml ? config_of(TMP_YAML, yaml) : NULL;
  CHECK(from_json && from_yaml && !strcmp(from_json, from_yaml));
  CHECK(json_as_yaml && from_json && !strcmp(from_json, json_as_yaml));
  CHECK(!yaml || (readme_yaml_config && from_json && !strcmp(from_json, readme_yaml_config)));
  free(json), free(yaml), free(from_json), free(from_yaml), free(json_as_yaml);
  free(readme_yaml_config);

  /* YAML 1.2 core schema scalars */
  vkft_train_config cfg;
  const char *scalars = "model: \"123\"\n"
                        "data: {train: d, packing: True}\n"
                        "train: {lr: 5e-3, seed: 0x2A, warmup_steps: 0o20, max_grad_norm: .5,\n"
                        "        adam_epsilon: 1E-8, weight_decay: !!float 1}\n"
                        "lora:\n"
                        "  alpha: +16\n"
                        "  init:\n"
                        "  dropout: 0.\n"
                        "  targets:\n"
                        "    - q_proj   # a comment\n"
                        "    - 'k_proj'\n";
  CHECKF(load_file_text(TMP_YAML, scalars, NULL, 0, &cfg) == VKFT_OK, "%s", vkft_error_message());
  CHECK(!strcmp(cfg.model, "123") && cfg.data.packing && !strcmp(cfg.data.train[0].path, "d"));
  CHECK(cfg.train.lr == 5e-3 && cfg.train.seed == 42 && cfg.train.warmup_steps == 16);
  CHECK(cfg.train.max_grad_norm == 0.5 && cfg.train.adam_epsilon == 1e-8 &&
        cfg.train.weight_decay == 1.0);
  CHECK(cfg.lora.alpha == 16 && !cfg.lora.init[0] && cfg.lora.dropout == 0 &&
        cfg.lora.targets == (VKFT_MOD_Q | VKFT_MOD_K));
  /* block lists of mappings, anchors and aliases, --set on top of a YAML file */
  const char *lists = "model: &m models/x\n"
                      "data:\n"
                      "  train:\n"
                      "    - path: a.json\n"
                      "      weight: 2\n"
                      "    - *m\n"
                      "lora: {targets: &t [o_proj], modules_to_save: []}\n";
  const char *sets[] = {"train.lr=1e-3"};
  CHECKF(load_file_text(TMP_YAML, lists, sets, 1, &cfg) == VKFT_OK, "%s", vkft_error_message());
  CHECK(cfg.data.train_count == 2 && cfg.data.train[0].weight == 2 &&
        !strcmp(cfg.data.train[1].path, "models/x") && cfg.train.lr == 1e-3);
  /* without a .yaml name the content decides */
  CHECKF(load_file_text("test_train_config.tmp.conf", lists, NULL, 0, &cfg) == VKFT_OK, "%s",
         vkft_error_message());
  expect_error_in("test_train_config.tmp.conf", "{\"model\": ", NULL, ":1: not valid JSON");

  /* values of the wrong kind get the JSON path's messages, with the line */
  const char *head = "model: m\ndata: {train: d}\n";
  char text[512];
  static const char *const wrong[][2] = {
      {"lora:\n  r: 0\n", ":4: \"lora.r\" = 0 is out of range"},
      {"train:\n  warmup_step: 3\n",
       ":4: unknown key \"train.warmup_step\" (did you mean \"train.warmup_steps\"?)"},
      {"lora: {r: \"8\"}\n", ":3: \"lora.r\" must be a number (got \"8\")"},
      {"lora: {r: !!str 8}\n", ":3: \"lora.r\" must be a number (got \"8\")"},
      {"lora: {r: !!int 8.5}\n", ":3: not a !!int: \"8.5\""},
      {"lora: {targets: !!set {}}\n", ":3: unsupported tag \"tag:yaml.org,2002:set\""},
      {"data: {packing: yes}\n", ":3: duplicate key \"data\""},
      {"train: {shuffle: yes}\n", ":3: \"train.shuffle\" must be true or false"},
      {"lora: {dropout: ~}\n", ":3: \"lora.dropout\" must be a number (got null)"},
      {"train: {lr: .inf}\n", ":3: \"train.lr\" = inf is out of range"},
      {"train: {lr: 1_000}\n", ":3: \"train.lr\" must be a number (got \"1_000\")"},
      {"lora: [1]\n", ":3: \"lora\" must be an object"},
      {"lora:\n\tr: 8\n", ":4: found character that cannot start any token"},
      {"lora:\n\tr: 8\n", "(YAML does not allow tabs for indentation)"},
      {"lora:\n  r: 8\n alpha: 3\n", ":5: did not find expected key"},
      {"---\nmodel: n\n", "a second YAML document"},
      {"x: *nope\n", ":3: no complete anchor defined before the alias \"nope\""},
      {"x: &a [*a]\n", ":3: no complete anchor defined before the alias \"a\""},
      {"? [a]\n: b\n", ":3: a key must be a name"},
      {"model2: \xff\n", ":3: invalid leading UTF-8 octet"},
  };
  for (size_t i = 0; i < sizeof wrong / sizeof wrong[0]; i++) {
    snprintf(text, sizeof text, "%s%s", head, wrong[i][0]);
    expect_yaml_error(text, wrong[i][1]);
  }
  expect_yaml_error("", ":1: the file is empty");
  expect_yaml_error("# only a comment\n", ":1: the file is empty");
  expect_yaml_error("- a\n- b\n", ":1: the config must be a mapping of keys");

  /* bounded: aliases that expand past 100000 values, nesting past 64 levels */
  char laughs[1024] = "a: &a [x, x, x, x, x, x, x, x, x, x]\n";
  for (char level = 'b'; level <= 'f'; level++)
    snprintf(laughs + strlen(laughs), sizeof laughs - strlen(laughs),
             "%c: &%c [*%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c]\n", level, level,
             level - 1, level - 1, level - 1, level - 1, level - 1, level - 1, level - 1, level - 1,
             level - 1, level - 1);
  expect_yaml_error(laughs, "more than 100000 values (do aliases expand too far?)");
  char deep[256] = "x: ";
  for (int i = 0; i < 100; i++) strcat(deep, "[");
  expect_yaml_error(deep, ":1: nested deeper than 64 levels");
  remove(TMP_YAML);
  remove("test_train_config.tmp.conf");
}

/* train.micro_batch "auto" and train.batch_size: parsed from JSON, YAML and --set, dumped back,
 * and grad_accum derived from batch_size (vkft_train_config_grad_accum), or refused. */
static void batch_cases(void) {
  vkft_train_config cfg;
  const char *minimal = "{\"model\": \"m\", \"data\": {\"train\": \"d\"}}";
  const char *set_auto[] = {"train.micro_batch=auto", "train.batch_size=32"};
  CHECKF(load_text(minimal, set_auto, 2, &cfg) == VKFT_OK, "%s", vkft_error_message());
  CHECK(cfg.train.micro_batch == -1 && cfg.train.batch_size == 32 && !cfg.train.grad_accum_given);
  char *json = vkft_train_config_to_json(&cfg);
  vkft_train_config again; /* the dump loads back to the same: grad_accum null, derived */
  CHECKF(json && load_text(json, NULL, 0, &again) == VKFT_OK, "%s", vkft_error_message());
  CHECK(again.train.micro_batch == -1 && again.train.batch_size == 32 &&
        !again.train.grad_accum_given && again.train.grad_accum == 1);
  free(json);
  CHECKF(load_file_text(TMP_YAML, "model: m\ndata: {train: d}\ntrain: {micro_batch: auto}\n", NULL,
                        0, &cfg) == VKFT_OK,
         "%s", vkft_error_message());
  CHECK(cfg.train.micro_batch == -1 && cfg.train.batch_size == 0 && cfg.train.grad_accum == 1);
  expect_error(minimal, "train.micro_batch=big",
               "\"train.micro_batch\" must be a number or \"auto\"");
  expect_error(minimal, "train.micro_batch=0", "\"train.micro_batch\" = 0 is out of range");
  expect_error(minimal, "train.batch_size=-4", "\"train.batch_size\" = -4 is out of range");
  expect_error("{\"model\": \"m\", \"data\": {\"train\": \"d\"}, \"train\": {\"grad_accum\": 2, "
               "\"batch_size\": 16, \"micro_batch\": \"auto\"}}",
               NULL, "\"train.batch_size\" and \"train.grad_accum\" are both given");
  /* derived: ceil(batch_size / (micro_batch x ranks)), with a note when it is not exact */
  const char *set16[] = {"train.batch_size=16"};
  CHECK(load_text(minimal, set16, 1, &cfg) == VKFT_OK);
  int64_t ga;
  char note[256];
  CHECK(vkft_train_config_grad_accum(&cfg, 4, 1, &ga, note, sizeof note) == VKFT_OK && ga == 4 &&
        !note[0]);
  CHECK(vkft_train_config_grad_accum(&cfg, 4, 2, &ga, note, sizeof note) == VKFT_OK && ga == 2);
  CHECK(vkft_train_config_grad_accum(&cfg, 6, 1, &ga, note, sizeof note) == VKFT_OK && ga == 3);
  CHECKF(strstr(note, "not a multiple") && strstr(note, "effective batch of 18"), "note: %s", note);
  CHECK(vkft_train_config_grad_accum(&cfg, 32, 1, &ga, note, sizeof note) == VKFT_OK && ga == 1);
  /* batch_size without grad_accum, then with one that agrees, then one that does not */
  const char *agree[] = {"train.batch_size=16", "train.grad_accum=4"};
  CHECK(load_text(minimal, agree, 2, &cfg) == VKFT_OK && cfg.train.grad_accum_given);
  CHECK(vkft_train_config_grad_accum(&cfg, 4, 1, &ga, note, sizeof note) == VKFT_OK && ga == 4);
  CHECK(vkft_train_config_grad_accum(&cfg, 2, 1, &ga, note, sizeof note) == VKFT_ERR);
  CHECKF(
      strstr(vkft_error_message(), "\"train.batch_size\" 16 and \"train.grad_accum\" 4 disagree"),
      "%s", vkft_error_message());
  const char *big[] = {"train.batch_size=1024"};
  CHECK(load_text(minimal, big, 1, &cfg) == VKFT_OK);
  CHECK(vkft_train_config_grad_accum(&cfg, 8, 1, &ga, note, sizeof note) == VKFT_ERR &&
        strstr(vkft_error_message(), "above 64"));
  /* without batch_size: the configured grad_accum as it is */
  CHECK(load_text(minimal, NULL, 0, &cfg) == VKFT_OK);
  CHECK(vkft_train_config_grad_accum(&cfg, 3, 2, &ga, note, sizeof note) == VKFT_OK && ga == 1);
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

  /* PEFT's "all-linear" (a plain --set string, or JSON): the seven projections; not for
   * modules_to_save, and no other string */
  const char *all_linear[] = {"lora.targets=all-linear"};
  CHECKF(load_text(minimal, all_linear, 1, &cfg) == VKFT_OK, "%s", vkft_error_message());
  CHECK(cfg.lora.targets == VKFT_MOD_ALL_PROJ);
  expect_error(minimal, "lora.targets=all", "must be a list of module names or \"all-linear\"");
  expect_error(minimal, "lora.modules_to_save=all-linear", "must be a list of module names");

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
  yaml_cases();
  batch_cases();
  remove(TMP);
  remove(TMP_YAML);
  return check_summary();
}
