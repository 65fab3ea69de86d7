/* Fuzz target: safetensors files (header, offsets, dtypes) and sharded sets behind
 * model.safetensors.index.json. An input starting with '{' is an index next to one valid shard;
 * anything else is a .safetensors file. Every tensor's first and last byte is read, so an
 * out-of-bounds offset that slipped through validation shows up under AddressSanitizer. */
#include "fuzz.h"

#include "vkft/safetensors.h"

static unsigned touch(const vkft_st_set *set) {
  unsigned sum = 0;
  for (int i = 0; i < vkft_st_count(set); i++) {
    const vkft_st_tensor *t = vkft_st_at(set, i);
    if (t->size) sum += t->data[0] + t->data[t->size - 1];
  }
  return sum;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  vkft_st_set *set = NULL;
  if (size && data[0] == '{') {
    /* an index naming tensors of "shard.safetensors": one float "w" of shape [2] */
    static const uint8_t shard[] = {
        56,  0,   0,  0,  0,  0,   0,   0,   123, 34, 119, 34,  58,  123, 34,  100, 116, 121,
        112, 101, 34, 58, 34, 70,  51,  50,  34,  44, 34,  115, 104, 97,  112, 101, 34,  58,
        91,  50,  93, 44, 34, 100, 97,  116, 97,  95, 111, 102, 102, 115, 101, 116, 115, 34,
        58,  91,  48, 44, 56, 93,  125, 125, 32,  32, 0,   0,   128, 63,  0,   0,   0,   64};
    fuzz_file("shard.safetensors", shard, sizeof shard);
    fuzz_file("model.safetensors.index.json", data, size);
    char *dir = fuzz_text((const uint8_t *)fuzz_dir(), strlen(fuzz_dir()));
    if (vkft_st_open(dir, &set) == VKFT_OK) touch(set);
    free(dir);
  } else {
    const char *path = fuzz_file("x.safetensors", data, size);
    if (vkft_st_open(path, &set) == VKFT_OK) touch(set);
  }
  vkft_st_close(set);
  vkft_error_clear();
  return 0;
}
