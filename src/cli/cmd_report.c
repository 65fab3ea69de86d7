/* `vkft report OUT [--width N]`: rebuilds OUT/report.html from the folder alone (metrics.jsonl,
 * the run details the previous page kept, the newest checkpoint's configuration) and prints the
 * loss as a sparkline. A folder a run is training in is left to that run, which keeps its page
 * up to date: then only the sparkline is printed. */
#include "commands.h"

#include "vkft/error.h"
#include "vkft/platform.h"
#include "vkft/report.h"

#include <stdio.h>
#include <string.h>

static int usage(void) {
  fprintf(stderr, "usage: vkft report OUT [--width N]\n"
                  "  writes OUT/report.html (charts, configuration, run details) from\n"
                  "  OUT/metrics.jsonl and prints the loss as a sparkline N cells wide (50)\n");
  return CLI_EXIT_USAGE;
}

int vkft_cmd_report(int argc, char **argv) {
  const char *out = NULL;
  int64_t width = 50;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--width") && i + 1 < argc) {
      if (cli_int_option("--width", argv[++i], 8, 200, &width) != VKFT_OK) return cli_usage_error();
    } else if (argv[i][0] != '-' && !out) {
      out = argv[i];
    } else {
      return usage();
    }
  }
  if (!out) return usage();
  char path[2048];
  snprintf(path, sizeof path, "%s/metrics.jsonl", out);
  if (!vkft_is_dir(out)) {
    vkft_error("%s: not a folder", out);
    return cli_fail();
  }
  if (!vkft_file_exists(path)) {
    vkft_error("%s: no metrics.jsonl (not a vkft output folder, or no step logged yet)", out);
    return cli_fail();
  }
  snprintf(path, sizeof path, "%s/.vkft.lock", out);
  vkft_lock *lock = NULL;
  if (vkft_lock_acquire(path, &lock) != VKFT_OK) {
    if (vkft_error_code() != VKFT_ERR_BUSY) return cli_fail();
    printf("%s: a run is training here and keeps report.html up to date\n", out);
  } else {
    int status = vkft_report_write(out, NULL);
    vkft_lock_release(lock);
    if (status != VKFT_OK) return cli_fail();
    printf("wrote %s/report.html\n", out);
  }
  char line[1024];
  if (vkft_report_loss_summary(out, (int)width, line, sizeof line) == VKFT_OK)
    printf("%s\n", line);
  else
    printf("%s\n", vkft_error_message());
  return CLI_EXIT_OK;
}
