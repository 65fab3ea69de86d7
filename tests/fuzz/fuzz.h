/* Shared by the fuzz harnesses (tests/fuzz/fuzz_*.c): each defines LLVMFuzzerTestOneInput over
 * one parser of user files. Built twice: with libFuzzer (clang, -DVKFT_FUZZ=ON, scripts/fuzz.sh)
 * and with replay_main.c into a program ctest runs over the saved crash inputs (tests/corpus/)
 * under the sanitizers. Inputs reach path-based APIs through a file in a private temp folder. */
#ifndef VKFT_FUZZ_H
#define VKFT_FUZZ_H

#include "vkft/error.h"
#include "vkft/platform.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A private folder for this process's files (created once). */
static inline const char *fuzz_dir(void) {
  static char dir[256];
  if (!dir[0]) {
    const char *base = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/vkft-fuzz-%ld", base && *base ? base : "/tmp", vkft_process_id());
    vkft_mkdirs(dir);
  }
  return dir;
}

/* Writes the input to fuzz_dir()/name and returns that path (static, one per name slot). */
static inline const char *fuzz_file(const char *name, const uint8_t *data, size_t size) {
  static char path[8][512];
  static int next;
  char *p = path[next++ % 8];
  snprintf(p, sizeof path[0], "%s/%s", fuzz_dir(), name);
  FILE *f = vkft_fopen(p, "wb");
  if (f) {
    if (size) fwrite(data, 1, size, f);
    fclose(f);
  }
  return p;
}

/* A NUL-terminated copy of the input (callers free). */
static inline char *fuzz_text(const uint8_t *data, size_t size) {
  char *s = malloc(size + 1);
  if (!s) abort();
  if (size) memcpy(s, data, size);
  s[size] = 0;
  return s;
}

#endif
