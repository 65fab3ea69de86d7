/* The manifest of a checkpoint folder (manifest.json, written last): which files it holds, with
 * their sizes and CRC-32s, so a resume can tell a complete checkpoint from one cut short by a
 * crash or damaged since. Parsing is separate from the trainer so the fuzzer can reach it. */
#ifndef VKFT_TRAIN_MANIFEST_H
#define VKFT_TRAIN_MANIFEST_H

#include <stddef.h>
#include <stdint.h>

#define MANIFEST_NAME "manifest.json"
#define MANIFEST_MAX_FILES 64

typedef struct manifest_file {
  char name[128];
  uint64_t bytes;
  uint32_t crc32;
} manifest_file;

typedef struct manifest {
  int64_t step;
  manifest_file files[MANIFEST_MAX_FILES];
  int count;
} manifest;

/* Parses manifest text; file names must be plain names inside the folder (no separators,
 * no ".."). `where` names the file in errors. */
int manifest_parse(const char *where, const char *text, size_t size, manifest *out);
/* Builds the manifest of every regular file of dir (but the manifest) and writes it there. */
int manifest_write(const char *dir, int64_t step);
/* Reads dir's manifest and checks every file's size and checksum. */
int manifest_verify(const char *dir, manifest *out);

#endif
