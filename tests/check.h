/* Minimal test assertions shared by the test programs. Each program prints one line per
 * failure (file:line and the failed condition) and ends with the plain summary line
 * "N passed, N failed" that CI reads; its exit status is non-zero if anything failed. */
#ifndef VKFT_TESTS_CHECK_H
#define VKFT_TESTS_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "vkft/error.h"

static int check_passed, check_failed;

#define CHECK(cond)                                                                                \
  ((cond)                                                                                          \
       ? (void)check_passed++                                                                      \
       : (void)(check_failed++, fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond)))

/* Like CHECK, with a printf-style explanation on failure. */
#define CHECKF(cond, ...)                                                                          \
  ((cond) ? (void)check_passed++                                                                   \
          : (void)(check_failed++, fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond), \
                   fprintf(stderr, __VA_ARGS__), fputc('\n', stderr)))

/* A call that must fail with VKFT_ERR, error code `code` (vkft/error.h; what the CLI's exit
 * status is made of) and a message containing `text` (NULL: any message). */
#define CHECK_ERR(call, code, text) check_err_at(__FILE__, __LINE__, #call, (call), (code), (text))

static inline void check_err_at(const char *file, int line, const char *call, int rc,
                                vkft_errcode code, const char *text) {
  const char *msg = vkft_error_message();
  if (rc == VKFT_ERR && vkft_error_code() == code && (!text || strstr(msg, text))) {
    check_passed++;
    return;
  }
  check_failed++;
  fprintf(stderr, "FAIL %s:%d: %s: wanted %s error \"%s\", got %s (%s): %s\n", file, line, call,
          vkft_errcode_name(code), text ? text : "", rc == VKFT_ERR ? "VKFT_ERR" : "no error",
          vkft_errcode_name(vkft_error_code()), msg);
}

/* The read-only shared test data: $VKFT_TEST_DATA, else ../shared/data next to the repository
 * (the build's VKFT_SHARED_DATA). */
#ifndef VKFT_SHARED_DATA
#define VKFT_SHARED_DATA "../shared/data"
#endif

static inline const char *check_data(void) {
  const char *env = getenv("VKFT_TEST_DATA");
  return env && *env ? env : VKFT_SHARED_DATA;
}

/* check_data() + "/" + rel, in one of 16 rotating buffers (several may be used at once). */
static inline const char *check_path(const char *rel) {
  static char buf[16][2048];
  static int next;
  char *p = buf[next++ % 16];
  snprintf(p, sizeof buf[0], "%s/%s", check_data(), rel[0] == '/' ? rel + 1 : rel);
  return p;
}

/* 1 when path (what a test needs: `description path`) exists. Otherwise prints
 * "SKIP what: description path is missing (hint)" and returns 0 — except under CI=true, where
 * missing data is a failure (CI must never skip silently). */
static inline int check_need_path(const char *what, const char *path, const char *description,
                                  const char *hint) {
  struct stat st;
  if (stat(path, &st) == 0) return 1;
  const char *ci = getenv("CI");
  if (ci && !strcmp(ci, "true")) {
    check_failed++;
    fprintf(stderr, "FAIL %s: %s %s is missing (CI=true)\n", what, description, path);
  } else {
    printf("SKIP %s: %s %s is missing (%s)\n", what, description, path, hint);
  }
  return 0;
}

/* 1 when the shared data is there; else as check_need_path. */
static inline int check_need_data(const char *what) {
  return check_need_path(what, check_data(), "the shared test data", "set VKFT_TEST_DATA");
}

static inline int check_summary(void) {
  printf("%d passed, %d failed\n", check_passed, check_failed);
  return check_failed ? 1 : 0;
}

#endif
