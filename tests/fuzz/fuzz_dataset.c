/* Fuzz target: dataset records of every format (JSON arrays and JSON Lines; alpaca, sharegpt,
 * messages, prompt_completion, text, tokens), each made into an example — rendered with a chat
 * template, tokenized by the bundled stories260K tokenizer, labelled — as vkft_dataset_load
 * does for every record, without its file reading and thread pool. The first byte picks the
 * format (auto-detection for most values) and which template renders chat records. */
#include "fuzz.h"

#include "../../src/data/internal.h"
#include "vkft/tokenizer.h"

#ifndef VKFT_SOURCE_DIR
#define VKFT_SOURCE_DIR "."
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  /* loaded once: the records are what is fuzzed */
  static vkft_tokenizer *tok;
  static data_builder builders[2];
  if (!tok) {
    static const char *templates[2] = {NULL, "chatml"}; /* the fallback pair, and ChatML */
    if (vkft_tokenizer_load(VKFT_SOURCE_DIR "/models/stories260K", &tok) != VKFT_OK) abort();
    for (int i = 0; i < 2; i++) {
      vkft_dataset_desc desc = {.model_dir = VKFT_SOURCE_DIR "/models/stories260K",
                                .max_len = 64,
                                .template_name = templates[i]};
      if (data_builder_init(&builders[i], &desc, tok) != VKFT_OK) abort();
    }
  }
  if (size == 0) return 0;
  vkft_data_format forced = data[0] % 16 < VKFT_FORMAT_COUNT ? (vkft_data_format)(data[0] % 16) : 0;
  const data_builder *b = &builders[data[0] >> 7];
  data_span *spans = NULL;
  size_t n = 0;
  int is_array;
  if (data_split_records("fuzz", (const char *)data + 1, size - 1, &spans, &n, &is_array) ==
      VKFT_OK) {
    for (size_t i = 0; i < n; i++) {
      if (spans[i].error) continue;
      cJSON *json = cJSON_ParseWithLength((const char *)data + 1 + spans[i].off, spans[i].len);
      vkft_data_format fmt = forced ? forced : data_detect_format(json);
      data_sample s;
      if (json && fmt && data_sample_from_json(json, fmt, &s) == VKFT_OK) {
        vkft_example ex = {0};
        char *roles = NULL, *prompt = NULL, *reply = NULL;
        if (data_sample_text(&s, &roles, &prompt, &reply) == VKFT_OK) {
          free(roles), free(prompt), free(reply);
        }
        if (b->fallback_template) data_sample_flatten(&s);
        data_build_example(b, &s, &ex);
        free(ex.input_ids);
        free(ex.labels);
        data_sample_free(&s);
      }
      cJSON_Delete(json);
    }
  }
  free(spans);
  vkft_error_clear();
  return 0;
}
