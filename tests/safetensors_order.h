/* Shared by test_quant.c and test_quantize.c: a .safetensors file's header lists its tensors in
 * the order the safetensors library writes them (dtype rank down, then name). */
#ifndef VKFT_TESTS_SAFETENSORS_ORDER_H
#define VKFT_TESTS_SAFETENSORS_ORDER_H

#include "check.h"

#include "vkft/platform.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The header's tensors in the safetensors library's order: dtype rank down, then name. */
static inline void check_safetensors_order(const char *path) {
  char *bytes;
  size_t size;
  CHECK(vkft_file_read(path, &bytes, &size) == VKFT_OK);
  uint64_t len = 0;
  for (int i = 7; i >= 0; i--) len = len << 8 | (uint8_t)bytes[i];
  cJSON *header = cJSON_ParseWithLength(bytes + 8, (size_t)len);
  const char *order = "I64 F64 F32 I32 BF16 F16 U8";
  const cJSON *prev = NULL;
  int bad = 0;
  for (const cJSON *e = header ? header->child : NULL; e; e = e->next) {
    if (!strcmp(e->string, "__metadata__")) continue;
    if (prev) {
      const char *a = cJSON_GetObjectItem(prev, "dtype")->valuestring;
      const char *b = cJSON_GetObjectItem(e, "dtype")->valuestring;
      long ra = strstr(order, a) - order, rb = strstr(order, b) - order;
      bad += ra > rb || (ra == rb && strcmp(prev->string, e->string) >= 0);
    }
    prev = e;
  }
  CHECKF(header && !bad, "%s: tensors out of the library's order", path);
  cJSON_Delete(header);
  free(bytes);
}

#endif
