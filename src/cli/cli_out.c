/* Output files of the commands: standard output, or a file written atomically (a temporary
 * renamed over the path when complete, so an interrupted run leaves no half file). */
#include "commands.h"

#include <string.h>

int cli_out_open(cli_out *of, const char *path) {
  memset(of, 0, sizeof *of);
  if (!strcmp(path, "-")) {
    of->f = stdout;
    of->is_stdout = 1;
    return VKFT_OK;
  }
  if (vkft_atomic_begin(&of->af, path)) return VKFT_ERR;
  of->f = of->af.f;
  return VKFT_OK;
}

int cli_out_close(cli_out *of, int ok) {
  if (of->is_stdout) return fflush(stdout) == 0 ? VKFT_OK : vkft_error("cannot write stdout");
  if (!ok) {
    vkft_atomic_abort(&of->af);
    return VKFT_ERR;
  }
  return vkft_atomic_commit(&of->af);
}
