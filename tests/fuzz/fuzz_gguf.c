/* Fuzz target: GGUF files a user gives as a model (`--model model.gguf`): the header, every
 * metadata value (arrays walked element by element), the tensor infos and data offsets, then
 * what vkft reads from them — the model config and the tokenizer. Every tensor's first and last
 * byte is read, so an offset that slipped through validation shows up under AddressSanitizer. */
#include "fuzz.h"

#include "vkft/gguf.h"
#include "vkft/model_config.h"
#include "vkft/tokenizer.h"

static unsigned walk(const vkft_gguf *g) {
  unsigned sum = 0;
  for (int64_t i = 0; i < vkft_gguf_kv_count(g); i++) {
    const vkft_gguf_value *v = vkft_gguf_kv_value(g, i);
    sum += (unsigned)strlen(vkft_gguf_kv_key(g, i));
    int64_t n;
    double x;
    const char *s;
    uint64_t len;
    if (vkft_gguf_value_int(v, &n) == VKFT_OK) sum += (unsigned)n;
    if (vkft_gguf_value_float(v, &x) == VKFT_OK) sum += x > 0;
    if (vkft_gguf_value_str(v, &s, &len) == VKFT_OK && len) sum += (unsigned char)s[len - 1];
    vkft_gguf_iter it;
    vkft_gguf_value e;
    vkft_gguf_array_begin(v, &it);
    for (int k = 0; k < 4096 && vkft_gguf_array_next(&it, &e); k++)
      if (vkft_gguf_value_str(&e, &s, &len) == VKFT_OK && len) sum += (unsigned char)s[0];
  }
  for (int64_t i = 0; i < vkft_gguf_tensor_count(g); i++) {
    const vkft_gguf_tensor *t = vkft_gguf_tensor_at(g, i);
    if (t->size) sum += t->data[0] + t->data[t->size - 1];
  }
  vkft_error_clear();
  return sum;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *path = fuzz_file("model.gguf", data, size);
  vkft_gguf *g;
  if (vkft_gguf_open(path, &g) == VKFT_OK) {
    walk(g);
    vkft_gguf_close(g);
    vkft_model_config cfg;
    vkft_model_config_load(path, &cfg);
    vkft_tokenizer *tok;
    if (vkft_tokenizer_load(path, &tok) == VKFT_OK) {
      static const char text[] = "Hello world, 12 w\xc3\xb6rter! <s>";
      int32_t *ids = NULL;
      size_t n;
      vkft_tokenizer_encode(tok, text, sizeof text - 1, 1, &ids, &n);
      free(ids);
      vkft_tokenizer_free(tok);
    }
  }
  vkft_error_clear();
  return 0;
}
