/* Thread-local last error (message and code) behind include/vkft/error.h. */
#include "vkft/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char error_message[1024];
static _Thread_local vkft_errcode error_code;

static int set(vkft_errcode code, const char *fmt, va_list ap) {
  vsnprintf(error_message, sizeof error_message, fmt, ap);
  error_code = code;
  return VKFT_ERR;
}

int vkft_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  set(VKFT_ERR_INPUT, fmt, ap);
  va_end(ap);
  return VKFT_ERR;
}

int vkft_error_with(vkft_errcode code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  set(code, fmt, ap);
  va_end(ap);
  return VKFT_ERR;
}

int vkft_error_nomem(void) {
  return vkft_error_with(VKFT_ERR_NOMEM, "out of host memory");
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
  if (error_code == VKFT_ERR_NONE) error_code = VKFT_ERR_INPUT;
  return VKFT_ERR;
}

const char *vkft_error_message(void) {
  return error_message;
}

vkft_errcode vkft_error_code(void) {
  return error_code;
}

const char *vkft_errcode_name(vkft_errcode code) {
  static const char *const names[] = {"none",        "input",  "io",          "nomem",
                                      "unsupported", "device", "device_lost", "oom",
                                      "numeric",     "busy",   "internal"};
  return (unsigned)code < sizeof names / sizeof names[0] ? names[code] : "?";
}

void vkft_error_clear(void) {
  error_message[0] = 0;
  error_code = VKFT_ERR_NONE;
}
