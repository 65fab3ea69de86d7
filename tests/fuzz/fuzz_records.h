/* Shared by the record harnesses (fuzz_dataset.c, fuzz_pref.c): the bundled stories260K
 * tokenizer and two example builders — [0] with the fallback template pair, [1] with ChatML —
 * loaded on the first call; the records are what is fuzzed. */
#ifndef VKFT_FUZZ_RECORDS_H
#define VKFT_FUZZ_RECORDS_H

#include "fuzz.h"

#include "../../src/data/internal.h"
#include "vkft/tokenizer.h"

#ifndef VKFT_SOURCE_DIR
#define VKFT_SOURCE_DIR "."
#endif

static inline const data_builder *fuzz_record_builders(void) {
  static vkft_tokenizer *tok;
  static data_builder builders[2];
  if (!tok) {
    static const char *templates[2] = {NULL, "chatml"};
    if (vkft_tokenizer_load(VKFT_SOURCE_DIR "/models/stories260K", &tok) != VKFT_OK) abort();
    for (int i = 0; i < 2; i++) {
      vkft_dataset_desc desc = {.model_dir = VKFT_SOURCE_DIR "/models/stories260K",
                                .max_len = 64,
                                .template_name = templates[i]};
      if (data_builder_init(&builders[i], &desc, tok) != VKFT_OK) abort();
    }
  }
  return builders;
}

#endif
