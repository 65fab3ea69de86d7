/* Errors as values: library functions return VKFT_OK or VKFT_ERR and leave a one-line message
 * (naming the file, field or op concerned) that only the CLI prints. */
#ifndef VKFT_ERROR_H
#define VKFT_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

enum { VKFT_OK = 0, VKFT_ERR = -1 };

#if defined(__MINGW32__)
#define VKFT_PRINTF(f, a) __attribute__((format(gnu_printf, f, a)))
#elif defined(__GNUC__)
#define VKFT_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define VKFT_PRINTF(f, a)
#endif

/* Sets the calling thread's message (printf-style) and returns VKFT_ERR, so callers can write
 * `return vkft_error("%s: missing field \"%s\"", path, key);`. */
int vkft_error(const char *fmt, ...) VKFT_PRINTF(1, 2);

/* Prepends "prefix: " to the current message (adds context on the way up), returns VKFT_ERR. */
int vkft_error_prefix(const char *fmt, ...) VKFT_PRINTF(1, 2);

/* The calling thread's last message ("" if none). */
const char *vkft_error_message(void);

void vkft_error_clear(void);

#ifdef __cplusplus
}
#endif
#endif
