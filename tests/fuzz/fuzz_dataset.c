/* Fuzz target: dataset records of every format (JSON arrays and JSON Lines; alpaca, sharegpt,
 * messages, prompt_completion, text, tokens), each made into an example — rendered with a chat
 * template, tokenized by the bundled stories260K tokenizer, labelled — as vkft_dataset_load
 * does for every record, without its file reading and thread pool. The first byte picks the
 * format (auto-detection for most values) and which template renders chat records. */
#include "fuzz_records.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const data_builder *builders = fuzz_record_builders();
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
