/* Fuzz target: metrics.jsonl as `vkft report` reads it (any lines a user or another tool left
 * there): the whole page is built and written, and the loss line with its sparkline. */
#include "fuzz.h"

#include "vkft/report.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static char dir[300];
  if (!dir[0]) {
    snprintf(dir, sizeof dir, "%s/run", fuzz_dir());
    vkft_mkdirs(dir);
  }
  char path[400];
  snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
  FILE *f = vkft_fopen(path, "wb");
  if (!f) return 0;
  if (size) fwrite(data, 1, size, f);
  fclose(f);
  vkft_report_write(dir, NULL);
  char line[512];
  vkft_report_loss_summary(dir, 50, line, sizeof line);
  vkft_error_clear();
  return 0;
}
