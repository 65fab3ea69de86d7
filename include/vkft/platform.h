/* The only OS-facing interface: files, memory maps, atomic replace, clocks, threads and the
 * console. src/platform/posix.c and src/platform/win32.c implement it; nothing else in vkft
 * includes an OS header. Paths and strings are UTF-8 everywhere. */
#ifndef VKFT_PLATFORM_H
#define VKFT_PLATFORM_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Startup: on Windows replaces argv by the UTF-8 form of the wide-char command line and puts
 * the console into UTF-8 / VT mode; elsewhere it does nothing. */
void vkft_platform_init(int *argc, char ***argv);

/* ---- files ---- */
FILE *vkft_fopen(const char *path, const char *mode); /* UTF-8 path */
/* Reads a whole file into a malloc'd buffer with a terminating NUL (not counted in *size). */
int vkft_file_read(const char *path, char **data, size_t *size);
int vkft_file_exists(const char *path);
int vkft_is_dir(const char *path);
int vkft_mkdirs(const char *path); /* like mkdir -p */
int vkft_remove_tree(const char *path);
/* Calls fn(name, user) for each entry of a folder (not "." or ".."), in no particular order. */
int vkft_list_dir(const char *path, void (*fn)(const char *name, void *user), void *user);

/* Atomic replace: write to "<path>.tmp", flush it to disk, rename over <path>, and flush the
 * folder, so a crash leaves either the old file or the new one, never a torn one. Every
 * failure (a full disk, a read-only folder) is an error of code VKFT_ERR_IO naming the file and
 * the OS's reason. */
typedef struct vkft_atomic_file {
  FILE *f;
  char path[1024];
  char tmp_path[1040];
} vkft_atomic_file;
int vkft_atomic_begin(vkft_atomic_file *af, const char *path);
int vkft_atomic_write(vkft_atomic_file *af, const void *data, size_t size);
/* Flushes the temp file to disk and closes it, without the rename (writing a set of files that
 * are renamed together: vkft_atomic_rename after every one is flushed). */
int vkft_atomic_flush(vkft_atomic_file *af);
int vkft_atomic_rename(vkft_atomic_file *af);
int vkft_atomic_commit(vkft_atomic_file *af); /* flush + rename; on failure removes the temp */
void vkft_atomic_abort(vkft_atomic_file *af);
int vkft_file_write_atomic(const char *path, const void *data, size_t size);
/* Copies the file `from` to `to`, written atomically. */
int vkft_file_copy(const char *from, const char *to);
/* Renames a folder over another (replacing an existing one) – used for checkpoint folders. */
int vkft_rename_replace(const char *from, const char *to);
/* Appends to a file (created if absent); a failure names the file and the OS reason. */
int vkft_file_append(const char *path, const void *data, size_t size);
/* The canonical absolute path of an existing file or folder (links resolved). */
int vkft_realpath(const char *path, char *out, size_t size);

/* An exclusive lock on a file, held until released or until the process ends in any way
 * (a crash or kill -9 frees it). When another process holds it: VKFT_ERR with code
 * VKFT_ERR_BUSY and a message naming that process (its id is written in the file). */
typedef struct vkft_lock vkft_lock;
int vkft_lock_acquire(const char *path, vkft_lock **out);
void vkft_lock_release(vkft_lock *lock);
long vkft_process_id(void);

/* Read-only memory map of a whole file. */
typedef struct vkft_mmap {
  const uint8_t *data;
  size_t size;
  void *handle; /* OS-specific */
} vkft_mmap;
int vkft_mmap_open(vkft_mmap *map, const char *path);
void vkft_mmap_close(vkft_mmap *map);

/* Sets (value != NULL) or removes an environment variable of this process. */
int vkft_setenv(const char *name, const char *value);

/* ---- clocks ---- */
double vkft_time_s(void); /* monotonic seconds */
void vkft_sleep_ms(int ms);

/* ---- threads ---- */
typedef struct vkft_thread vkft_thread;
typedef void (*vkft_thread_fn)(void *arg);
vkft_thread *vkft_thread_start(vkft_thread_fn fn, void *arg); /* NULL on failure */
void vkft_thread_join(vkft_thread *thread);
typedef struct vkft_mutex vkft_mutex;
vkft_mutex *vkft_mutex_create(void);
void vkft_mutex_destroy(vkft_mutex *mutex);
void vkft_mutex_lock(vkft_mutex *mutex);
void vkft_mutex_unlock(vkft_mutex *mutex);
int vkft_cpu_count(void);

/* ---- console ---- */
int vkft_console_is_tty(FILE *stream);
/* Interruption (Ctrl-C, SIGTERM, SIGHUP; Windows console close/Ctrl-Break): the first request
 * only sets a flag that vkft_interrupted() reads, so the trainer finishes its step and saves;
 * a second one ends the process at once with exit status VKFT_EXIT_INTERRUPTED (whatever was
 * saved before stays valid: every file is written atomically). */
#define VKFT_EXIT_INTERRUPTED 130
void vkft_interrupt_install(void);
int vkft_interrupted(void);
/* "SIGINT", "SIGTERM", ... of the first request ("" when none). */
const char *vkft_interrupt_name(void);

#ifdef __cplusplus
}
#endif
#endif
