/* Fuzz target: the JSON a user hands vkft as configuration — a model's config.json and a
 * training config (file, then its lines after a first line "--set" as --set overrides), read
 * as JSON and as YAML. */
#include "fuzz.h"

#include "vkft/model_config.h"
#include "vkft/train_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *path = fuzz_file("config.json", data, size);
  vkft_model_config mc;
  vkft_model_config_load(path, &mc);
  /* "--set" overrides: the lines after a line "--set" (the file part is what comes before) */
  char *text = fuzz_text(data, size), *sets_at = strstr(text, "\n--set\n");
  const char *sets[16];
  int n = 0;
  if (sets_at) {
    *sets_at = 0;
    for (char *line = strtok(sets_at + 7, "\n"); line && n < 16; line = strtok(NULL, "\n"))
      sets[n++] = line;
    path = fuzz_file("train.json", (const uint8_t *)text, strlen(text));
  }
  const char *yaml = fuzz_file("train.yaml", (const uint8_t *)text, strlen(text));
  vkft_train_config *cfg = malloc(sizeof *cfg);
  for (int as_yaml = 0; cfg && as_yaml < 2; as_yaml++)
    if (vkft_train_config_load(as_yaml ? yaml : path, sets, n, cfg) == VKFT_OK) {
      char *json = vkft_train_config_to_json(cfg);
      free(json);
    }
  free(cfg);
  free(text);
  vkft_error_clear();
  return 0;
}
