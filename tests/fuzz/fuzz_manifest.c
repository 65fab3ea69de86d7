/* Fuzz target: a checkpoint's manifest.json, which --resume trusts to find the files it checks. */
#include "fuzz.h"

#include "../../src/train/manifest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  manifest m;
  manifest_parse("fuzz", (const char *)data, size, &m);
  vkft_error_clear();
  return 0;
}
