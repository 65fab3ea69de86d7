/* Fuzz target: preference records of every format (TRL standard / conversational / implicit
 * prompt / pre-tokenized, LLaMA-Factory alpaca and sharegpt rankings), each made into a pair of
 * token sequences — rendered with a chat template, tokenized by the bundled stories260K
 * tokenizer, truncated — as vkft_pref_load does for every record, without its file reading and
 * thread pool. The first byte picks the format (auto-detection for most values), the template
 * and the style (DPO or ORPO), and the prompt/completion limits. */
#include "../../src/data/pref_internal.h"
#include "fuzz_records.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const data_builder *builders = fuzz_record_builders();
  if (size == 0) return 0;
  uint8_t pick = data[0];
  vkft_pref_format forced =
      pick % 16 < VKFT_PREF_FORMAT_COUNT ? (vkft_pref_format)(pick % 16) : VKFT_PREF_FORMAT_AUTO;
  const pref_builder b = {.base = &builders[pick >> 7],
                          .style = pick & 0x40 ? VKFT_PREF_ORPO : VKFT_PREF_DPO,
                          .max_prompt_len = pick & 0x20 ? 16 : 0,
                          .max_completion_len = pick & 0x10 ? 24 : 0};
  data_span *spans = NULL;
  size_t n = 0;
  int is_array;
  if (data_split_records("fuzz", (const char *)data + 1, size - 1, &spans, &n, &is_array) ==
      VKFT_OK) {
    for (size_t i = 0; i < n; i++) {
      if (spans[i].error) continue;
      cJSON *json = cJSON_ParseWithLength((const char *)data + 1 + spans[i].off, spans[i].len);
      vkft_pref_format fmt = forced ? forced : json ? pref_detect_format(json) : 0;
      pref_sample s;
      if (json && fmt && pref_sample_from_json(json, fmt, &s) == VKFT_OK) {
        vkft_pref_example ex = {.format = fmt};
        if (!b.base->fallback_template || pref_sample_flatten(&s) == VKFT_OK)
          pref_build_example(&b, &s, &ex);
        free(ex.prompt_ids);
        free(ex.chosen_ids);
        free(ex.rejected_ids);
        pref_sample_free(&s);
      }
      cJSON_Delete(json);
    }
  }
  free(spans);
  vkft_error_clear();
  return 0;
}
