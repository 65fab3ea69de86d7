/* Whole-file reading and atomic writing, written once over the platform layer's primitives
 * (vkft_fopen, vkft_atomic_begin/commit). */
#include "vkft/error.h"
#include "vkft/platform.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int vkft_file_read(const char *path, char **data, size_t *size) {
  FILE *f = vkft_fopen(path, "rb");
  if (!f)
    return vkft_error_with(errno == ENOENT ? VKFT_ERR_INPUT : VKFT_ERR_IO, "%s: cannot open: %s",
                           path, strerror(errno));
  char *buf = NULL;
  size_t len = 0, cap = 0;
  for (;;) {
    if (cap - len < 65536) {
      size_t new_cap = cap ? cap * 2 : 65536 + 1;
      char *grown = realloc(buf, new_cap);
      if (!grown) {
        free(buf);
        fclose(f);
        return vkft_error_with(VKFT_ERR_NOMEM, "%s: out of host memory reading file", path);
      }
      buf = grown;
      cap = new_cap;
    }
    size_t got = fread(buf + len, 1, cap - len - 1, f);
    len += got;
    if (got == 0) break;
  }
  int failed = ferror(f);
  fclose(f);
  if (failed) {
    free(buf);
    return vkft_error_with(VKFT_ERR_IO, "%s: read error", path);
  }
  buf[len] = 0;
  *data = buf;
  if (size) *size = len;
  return VKFT_OK;
}

int vkft_file_copy(const char *from, const char *to) {
  char *data;
  size_t size;
  if (vkft_file_read(from, &data, &size) != VKFT_OK) return VKFT_ERR;
  int status = vkft_file_write_atomic(to, data, size);
  free(data);
  return status;
}

int vkft_file_write_atomic(const char *path, const void *data, size_t size) {
  vkft_atomic_file af;
  if (vkft_atomic_begin(&af, path) != VKFT_OK) return VKFT_ERR;
  if (vkft_atomic_write(&af, data, size) != VKFT_OK) {
    vkft_atomic_abort(&af);
    return VKFT_ERR;
  }
  return vkft_atomic_commit(&af);
}
