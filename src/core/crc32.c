/* CRC-32 behind vkft/crc32.h: table-driven, one byte at a time from a 256-entry table built on
 * first use (about 400 MB/s, far above what a checkpoint write needs). */
#include "vkft/crc32.h"

#include "vkft/error.h"
#include "vkft/platform.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static uint32_t table[256];
static int table_ready;

static void build_table(void) {
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = i;
    for (int k = 0; k < 8; k++) c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    table[i] = c;
  }
  table_ready = 1;
}

uint32_t vkft_crc32(uint32_t crc, const void *data, size_t size) {
  if (!table_ready) build_table();
  const unsigned char *p = data;
  crc = ~crc;
  for (size_t i = 0; i < size; i++) crc = table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
  return ~crc;
}

int vkft_crc32_file(const char *path, uint32_t *crc, uint64_t *size) {
  FILE *f = vkft_fopen(path, "rb");
  if (!f) return vkft_error_with(VKFT_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
  enum { PIECE = 1 << 20 };
  unsigned char *buf = malloc(PIECE);
  if (!buf) {
    fclose(f);
    return vkft_error_nomem();
  }
  uint32_t c = 0;
  uint64_t n = 0;
  size_t got;
  while ((got = fread(buf, 1, PIECE, f)) > 0) {
    c = vkft_crc32(c, buf, got);
    n += got;
  }
  int failed = ferror(f);
  fclose(f);
  free(buf);
  if (failed) return vkft_error_with(VKFT_ERR_IO, "%s: read error", path);
  *crc = c;
  *size = n;
  return VKFT_OK;
}
