/* Fuzz target: tokenizer.json. A tokenizer that loads encodes and decodes a fixed text with
 * every kind of character the pre-tokenizers and normalizers special-case. */
#include "fuzz.h"

#include "vkft/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_file("tokenizer.json", data, size);
  vkft_tokenizer *tok;
  if (vkft_tokenizer_load(fuzz_dir(), &tok) == VKFT_OK) {
    static const char text[] = "Hello  world! 123 ünïcödé \xe4\xb8\xad\xe6\x96\x87 <s>\t\n"
                               "  x'll can't \xf0\x9f\x98\x80 \xff bad";
    int32_t *ids = NULL;
    size_t n = 0;
    if (vkft_tokenizer_encode(tok, text, sizeof text - 1, 1, &ids, &n) == VKFT_OK) {
      char *back = NULL;
      size_t len;
      if (vkft_tokenizer_decode(tok, ids, n, 0, &back, &len) == VKFT_OK) free(back);
    }
    free(ids);
    vkft_tokenizer_free(tok);
  }
  vkft_error_clear();
  return 0;
}
