/* Dataset files as parsed JSON records, for the tools that add fields to records (generate
 * --batch, synth, score, judge, explore): the records of a JSON Lines file or a JSON array
 * with their lines (the splitting is read.c's), every one an object. */
#include "internal.h"

#include "vkft/error.h"
#include "vkft/platform.h"

#include <stdlib.h>

int vkft_records_read(const char *path, vkft_records *out) {
  *out = (vkft_records){0};
  char *data;
  size_t size, n;
  data_span *spans;
  int is_array;
  if (vkft_file_read(path, &data, &size) != VKFT_OK) return VKFT_ERR;
  if (data_split_records(path, data, size, &spans, &n, &is_array) != VKFT_OK) {
    free(data);
    return VKFT_ERR;
  }
  int status = VKFT_OK;
  out->items = calloc(n ? n : 1, sizeof *out->items);
  out->lines = malloc((n ? n : 1) * sizeof *out->lines);
  if (!out->items || !out->lines) status = vkft_error_nomem();
  for (size_t i = 0; i < n && status == VKFT_OK; i++) {
    cJSON *j = spans[i].error ? NULL : cJSON_ParseWithLength(data + spans[i].off, spans[i].len);
    out->lines[i] = spans[i].line;
    if (!cJSON_IsObject(j)) {
      cJSON_Delete(j);
      status = vkft_error_with(VKFT_ERR_INPUT, "%s:%u: %s", path, spans[i].line,
                               spans[i].error ? spans[i].error : "not a JSON object");
      break;
    }
    out->items[out->n++] = j;
  }
  free(spans);
  free(data);
  if (status != VKFT_OK) vkft_records_free(out);
  return status;
}

void vkft_records_free(vkft_records *r) {
  for (size_t i = 0; r->items && i < r->n; i++) cJSON_Delete(r->items[i]);
  free(r->items);
  free(r->lines);
  *r = (vkft_records){0};
}

const char *vkft_record_string(const cJSON *record, const char *key) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(record, key);
  return cJSON_IsString(v) ? v->valuestring : NULL;
}
