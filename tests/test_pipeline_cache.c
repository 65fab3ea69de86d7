/* The pipeline cache on disk (src/vk/pipeline_cache.c): written when a device that compiled
 * pipelines goes away, loaded by the next one; a corrupt, truncated, foreign or garbage file
 * is ignored with a warning naming it and the device works as without; "off" writes nothing;
 * no temporary file is left behind. */
#include "check.h"

#include "vkft/error.h"
#include "vkft/opcases.h"
#include "vkft/platform.h"

#include <string.h>

#define DIR "pipeline-cache-test.tmp"
#define FILE_ DIR "/cache.bin"

/* A device that runs one matmul row (compiling its pipeline); its cache warning, if any, is
 * copied to `warning`; returns the bytes of cache it started from. */
static uint64_t run_device(char *warning, size_t size) {
  vkft_device *dev;
  warning[0] = 0;
  if (vkft_device_create(&(vkft_device_desc){.index = -1, .validate = -1}, &dev) != VKFT_OK) {
    CHECKF(0, "device: %s", vkft_error_message());
    return 0;
  }
  const char *w = vkft_device_pipeline_cache_warning(dev);
  if (w) snprintf(warning, size, "%s", w);
  uint64_t loaded = vkft_device_pipeline_cache_loaded(dev);
  vkft_backend *be;
  CHECK(vkft_backend_vk_create(dev, &be) == VKFT_OK);
  int count;
  const vkft_op_case *cases = vkft_op_cases(&count);
  vkft_op_result r;
  CHECK(vkft_op_case_run(be, &cases[0], 0, &r) == VKFT_OK && r.ok); /* a matmul row */
  vkft_backend_destroy(be);
  CHECK(vkft_device_validation_errors(dev) == 0);
  vkft_device_destroy(dev);
  return loaded;
}

static size_t read_cache(char **data) {
  size_t size = 0;
  *data = NULL;
  CHECK(vkft_file_read(FILE_, data, &size) == VKFT_OK);
  return size;
}

/* The cache file with one change made by `edit`; then a device must ignore it, saying `why`. */
static void ignored_when(const char *what, size_t (*edit)(char *data, size_t size),
                         const char *why) {
  run_device((char[8]){0}, 8); /* a good file to start from */
  char *data, warning[1300];
  size_t size = read_cache(&data);
  if (!data) return;
  size = edit(data, size);
  CHECK(vkft_file_write_atomic(FILE_, data, size) == VKFT_OK);
  free(data);
  uint64_t loaded = run_device(warning, sizeof warning);
  printf("%-28s -> %s\n", what, warning);
  CHECKF(loaded == 0, "%s: %llu bytes loaded", what, (unsigned long long)loaded);
  CHECKF(strstr(warning, "ignored") && strstr(warning, FILE_) && strstr(warning, why),
         "%s: warning \"%s\"", what, warning);
}

static size_t flip_data(char *d, size_t n) {
  d[n - 1] ^= 0x40;
  return n;
}
static size_t truncate_half(char *d, size_t n) {
  (void)d;
  return n / 2;
}
static size_t other_driver(char *d, size_t n) {
  d[24] ^= 1; /* the driver version */
  return n;
}
static size_t other_device(char *d, size_t n) {
  d[8] ^= 1; /* the device UUID */
  return n;
}
static size_t garbage(char *d, size_t n) {
  memset(d, 'x', n);
  return n;
}

static void count_entry(const char *name, void *user) {
  (void)name;
  (*(int *)user)++;
}

int main(void) {
  vkft_remove_tree(DIR);
  vkft_setenv("VKFT_PIPELINE_CACHE", FILE_);
  char warning[1300];
  CHECK(run_device(warning, sizeof warning) == 0 && !warning[0]);
  char *data;
  size_t size = read_cache(&data);
  CHECK(size >= 40 + 32 && data && !memcmp(data, "VKFTPC01", 8));
  free(data);
  uint64_t loaded = run_device(warning, sizeof warning);
  printf("second run: %llu bytes of pipeline cache loaded\n", (unsigned long long)loaded);
  CHECK(loaded + 40 == size && !warning[0]);

  ignored_when("a flipped bit in the data", flip_data, "corrupt");
  ignored_when("half the file", truncate_half, "truncated");
  ignored_when("another driver version", other_driver, "another device or driver");
  ignored_when("another device", other_device, "another device or driver");
  ignored_when("not a cache at all", garbage, "not a vkft pipeline cache");
  /* after an ignored file the next run wrote a good one again */
  CHECK(run_device(warning, sizeof warning) > 0 && !warning[0]);
  int entries = 0;
  vkft_list_dir(DIR, count_entry, &entries);
  CHECKF(entries == 1, "%d files in " DIR " (a temporary left behind?)", entries);

  vkft_remove_tree(DIR);
  vkft_setenv("VKFT_PIPELINE_CACHE", "off");
  CHECK(run_device(warning, sizeof warning) == 0 && !warning[0]);
  CHECK(!vkft_file_exists(FILE_));
  vkft_setenv("VKFT_PIPELINE_CACHE", NULL);
  vkft_remove_tree(DIR);
  return check_summary();
}
