/* Minimal test assertions shared by the test programs. Each program prints one line per
 * failure (file:line and the failed condition) and ends with the plain summary line
 * "N passed, N failed" that CI reads; its exit status is non-zero if anything failed. */
#ifndef VKFT_TESTS_CHECK_H
#define VKFT_TESTS_CHECK_H

#include <stdio.h>

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

/* Path of the read-only shared test data (../shared/data next to the repository). */
#ifndef VKFT_SHARED_DATA
#define VKFT_SHARED_DATA "../shared/data"
#endif

static inline int check_summary(void) {
  printf("%d passed, %d failed\n", check_passed, check_failed);
  return check_failed ? 1 : 0;
}

#endif
