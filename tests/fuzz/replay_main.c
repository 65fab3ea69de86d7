/* Runs a fuzz harness over files named on the command line (or every file of the folders
 * named): how ctest replays the crash inputs saved under tests/corpus/ in builds without
 * libFuzzer. Prints one line per input and "N passed, N failed" (a crash fails the process). */
#include "fuzz.h"

#include "vkft/platform.h"

typedef struct list {
  char paths[4096][512];
  int count;
  const char *dir;
} list;

static void collect(const char *name, void *user) {
  list *l = user;
  if (l->count < 4096 && name[0] != '.')
    snprintf(l->paths[l->count++], sizeof l->paths[0], "%s/%s", l->dir, name);
}

static int replay(const char *path) {
  char *data;
  size_t size;
  if (vkft_file_read(path, &data, &size) != VKFT_OK) {
    fprintf(stderr, "%s\n", vkft_error_message());
    return 1;
  }
  LLVMFuzzerTestOneInput((const uint8_t *)data, size);
  free(data);
  printf("ok   %s\n", path);
  return 0;
}

int main(int argc, char **argv) {
  static list l;
  int failed = 0, passed = 0;
  for (int i = 1; i < argc; i++) {
    if (!vkft_is_dir(argv[i])) {
      replay(argv[i]) ? failed++ : passed++;
      continue;
    }
    l.count = 0;
    l.dir = argv[i];
    vkft_list_dir(argv[i], collect, &l);
    for (int k = 0; k < l.count; k++) replay(l.paths[k]) ? failed++ : passed++;
  }
  printf("%d passed, %d failed\n", passed, failed);
  return failed != 0;
}
