/* Thread-local last-error message behind include/vkft/error.h. */
#include "vkft/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char error_message[1024];

int vkft_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(error_message, sizeof error_message, fmt, ap);
  va_end(ap);
  return VKFT_ERR;
}

int vkft_error_prefix(const char *fmt, ...) {
  char prefix[512], old[sizeof error_message];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(prefix, sizeof prefix, fmt, ap);
  va_end(ap);
  memcpy(old, error_message, sizeof old);
  size_t n = strlen(prefix);
  memcpy(error_message, prefix, n);
  size_t room = sizeof error_message - n - 1;
  snprintf(error_message + n, room, ": %s", old);
  return VKFT_ERR;
}

const char *vkft_error_message(void) {
  return error_message;
}

void vkft_error_clear(void) {
  error_message[0] = 0;
}
