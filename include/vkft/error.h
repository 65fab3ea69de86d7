/* Errors as values: library functions return VKFT_OK or VKFT_ERR and leave a one-line message
 * (naming the file, field or op concerned) and a code saying what kind of failure it was; only
 * the CLI prints them and turns the code into an exit status (README, "Exit codes"). */
#ifndef VKFT_ERROR_H
#define VKFT_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

enum { VKFT_OK = 0, VKFT_ERR = -1 };

/* What kind of failure the last error was. Tests assert these, not message text. */
typedef enum vkft_errcode {
  VKFT_ERR_NONE = 0,
  VKFT_ERR_INPUT,       /* a file, config value or argument is wrong (the default) */
  VKFT_ERR_IO,          /* reading or writing a file failed; the message has the OS reason */
  VKFT_ERR_NOMEM,       /* out of host memory */
  VKFT_ERR_UNSUPPORTED, /* valid, but something vkft does not do */
  VKFT_ERR_DEVICE,      /* the Vulkan driver or device failed */
  VKFT_ERR_DEVICE_LOST, /* the device was lost (driver reset, hang, removal) */
  VKFT_ERR_OOM,         /* out of device memory */
  VKFT_ERR_NUMERIC,     /* training diverged: a non-finite loss or gradient */
  VKFT_ERR_BUSY,        /* the output folder is used by another run */
  VKFT_ERR_INTERNAL,    /* a bug in vkft */
} vkft_errcode;

#if defined(__MINGW32__)
#define VKFT_PRINTF(f, a) __attribute__((format(gnu_printf, f, a)))
#elif defined(__GNUC__)
#define VKFT_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define VKFT_PRINTF(f, a)
#endif

/* Sets the calling thread's message (printf-style) with code VKFT_ERR_INPUT and returns
 * VKFT_ERR, so callers can write `return vkft_error("%s: missing field \"%s\"", path, key);`. */
int vkft_error(const char *fmt, ...) VKFT_PRINTF(1, 2);
/* The same with an explicit code. */
int vkft_error_with(vkft_errcode code, const char *fmt, ...) VKFT_PRINTF(2, 3);
/* "out of host memory", VKFT_ERR_NOMEM. */
int vkft_error_nomem(void);

/* Prepends "prefix: " to the current message (adds context on the way up; the code stays),
 * returns VKFT_ERR. */
int vkft_error_prefix(const char *fmt, ...) VKFT_PRINTF(1, 2);

/* The calling thread's last message ("" if none) and code (VKFT_ERR_NONE if none). */
const char *vkft_error_message(void);
vkft_errcode vkft_error_code(void);
/* "input", "io", "nomem", ... */
const char *vkft_errcode_name(vkft_errcode code);

void vkft_error_clear(void);

#ifdef __cplusplus
}
#endif
#endif
