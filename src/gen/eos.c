/* The ids that end a generated sequence: the tokenizer's EOS and the model's eos_token_id in
 * config.json and generation_config.json (a number or a list: Llama 3 Instruct ends a turn
 * with <|eot_id|>, which only generation_config.json names). */
#include "vkft/error.h"
#include "vkft/gen.h"
#include "vkft/json.h"
#include "vkft/platform.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>

static void add_id(int32_t *ids, int *n, int cap, double id) {
  if (!(id >= 0 && id < 2147483647.0) || *n == cap) return;
  for (int i = 0; i < *n; i++)
    if (ids[i] == (int32_t)id) return;
  ids[(*n)++] = (int32_t)id;
}

/* eos_token_id of DIR/NAME when the file exists; a file that is not JSON is an error. */
static int add_file_ids(const char *dir, const char *name, int32_t *ids, int *n, int cap) {
  char path[2048];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  if (!vkft_file_exists(path)) return VKFT_OK;
  cJSON *root = vkft_json_read_file(path);
  if (!root) return VKFT_ERR;
  const cJSON *eos = cJSON_GetObjectItemCaseSensitive(root, "eos_token_id"), *item;
  if (cJSON_IsNumber(eos)) add_id(ids, n, cap, eos->valuedouble);
  if (cJSON_IsArray(eos)) cJSON_ArrayForEach(item, eos) {
      if (cJSON_IsNumber(item)) add_id(ids, n, cap, item->valuedouble);
    }
  cJSON_Delete(root);
  return VKFT_OK;
}

int vkft_gen_eos_ids(const char *model_dir, const vkft_tokenizer *tok, int32_t **ids, int *n) {
  enum { CAP = 32 };
  *ids = malloc(CAP * sizeof **ids);
  *n = 0;
  if (!*ids) return vkft_error_nomem();
  if (tok && vkft_tokenizer_eos_id(tok) >= 0) add_id(*ids, n, CAP, vkft_tokenizer_eos_id(tok));
  if (add_file_ids(model_dir, "config.json", *ids, n, CAP) != VKFT_OK ||
      add_file_ids(model_dir, "generation_config.json", *ids, n, CAP) != VKFT_OK) {
    free(*ids);
    *ids = NULL;
    return VKFT_ERR;
  }
  return VKFT_OK;
}
