/* CRC-32 (IEEE 802.3, the zlib/PNG polynomial 0xEDB88320, reflected), used for the checksums
 * of checkpoint files and of a run's data. crc32 of "123456789" is 0xCBF43926. */
#ifndef VKFT_CRC32_H
#define VKFT_CRC32_H

#include <stddef.h>
#include <stdint.h>

/* Continues a checksum: start with crc = 0. */
uint32_t vkft_crc32(uint32_t crc, const void *data, size_t size);
/* The checksum and size of a whole file (read in pieces). */
int vkft_crc32_file(const char *path, uint32_t *crc, uint64_t *size);

#endif
