/* Fuzz target: bitsandbytes 4-bit checkpoints — a .safetensors file whose quantized weights
 * come with their companion tensors (absmax, quant_map, nested_absmax, nested_quant_map) and a
 * quant_state JSON stored as a uint8 tensor. Every weight vkft_bnb4_is_quantized accepts is read
 * (the quant_state and every tensor checked against each other) and fully dequantized, so a
 * size or block count that slipped through the checks shows up under AddressSanitizer. An input
 * starting with '{' is a config.json for the quantization_config inspection instead. */
#include "fuzz.h"

#include "vkft/quant.h"
#include "vkft/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size && data[0] == '{') {
    vkft_quant_info info;
    vkft_quant_inspect(fuzz_file("config.json", data, size), &info);
    vkft_error_clear();
    return 0;
  }
  vkft_st_set *set = NULL;
  if (vkft_st_open(fuzz_file("model.safetensors", data, size), &set) == VKFT_OK) {
    for (int i = 0; i < vkft_st_count(set); i++) {
      const char *name = vkft_st_at(set, i)->name;
      vkft_bnb4_weight w;
      if (!vkft_bnb4_is_quantized(set, name) || vkft_bnb4_read(set, name, &w) != VKFT_OK) continue;
      /* (the checks bound numel; a fuzzed shape still must not ask for gigabytes here) */
      if (w.numel <= (1 << 20)) {
        float *absmax = malloc((size_t)w.blocks * sizeof *absmax);
        float *out = malloc((size_t)w.numel * sizeof *out);
        if (absmax && out) {
          vkft_bnb4_weight_absmax(&w, absmax);
          vkft_bnb4_dequantize(&w, absmax, out);
        }
        free(absmax);
        free(out);
      }
      vkft_bnb4_weight_free(&w);
    }
  }
  vkft_st_close(set);
  vkft_error_clear();
  return 0;
}
