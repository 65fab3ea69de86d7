/* POSIX implementation of include/vkft/platform.h (Linux and other Unix systems). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "vkft/platform.h"

#include "vkft/error.h"
#include "vkft/fault.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifdef VKFT_GLIBC_FLOOR
/* The portable build (glibc_floor.h): glibc 2.33 made stat, fstat and lstat symbols of their
 * own; before, they were inline calls of __xstat & co. with the struct's version (1 on x86_64),
 * which every glibc still exports. */
extern int __xstat(int, const char *, struct stat *);
extern int __fxstat(int, int, struct stat *);
extern int __lxstat(int, const char *, struct stat *);
__asm__(".symver __xstat,__xstat@GLIBC_2.2.5");
__asm__(".symver __fxstat,__fxstat@GLIBC_2.2.5");
__asm__(".symver __lxstat,__lxstat@GLIBC_2.2.5");
#define stat(path, st) __xstat(1, path, st)
#define fstat(fd, st) __fxstat(1, fd, st)
#define lstat(path, st) __lxstat(1, path, st)
#endif

void vkft_platform_init(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  /* past a file-size limit (ulimit -f) a write should fail with EFBIG, not kill the process */
  signal(SIGXFSZ, SIG_IGN);
}

FILE *vkft_fopen(const char *path, const char *mode) {
  return fopen(path, mode);
}

int vkft_file_exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0;
}

int vkft_is_dir(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int vkft_mkdirs(const char *path) {
  char buf[4096];
  size_t n = strlen(path);
  if (n == 0 || n >= sizeof buf) return vkft_error("%s: invalid folder path", path);
  memcpy(buf, path, n + 1);
  for (size_t i = 1; i <= n; i++) {
    if (buf[i] != '/' && buf[i] != 0) continue;
    char saved = buf[i];
    buf[i] = 0;
    if (mkdir(buf, 0777) != 0 && errno != EEXIST)
      return vkft_error("%s: cannot create folder: %s", buf, strerror(errno));
    buf[i] = saved;
  }
  if (!vkft_is_dir(path)) return vkft_error("%s: exists and is not a folder", path);
  return VKFT_OK;
}

int vkft_remove_tree(const char *path) {
  struct stat st;
  if (lstat(path, &st) != 0)
    return errno == ENOENT ? VKFT_OK : vkft_error("%s: %s", path, strerror(errno));
  if (S_ISDIR(st.st_mode)) {
    DIR *dir = opendir(path);
    if (!dir) return vkft_error("%s: cannot open folder: %s", path, strerror(errno));
    struct dirent *entry;
    int status = VKFT_OK;
    while (status == VKFT_OK && (entry = readdir(dir))) {
      if (!strcmp(entry->d_name, ".") || !strcmp(entry->d_name, "..")) continue;
      char child[4096];
      snprintf(child, sizeof child, "%s/%s", path, entry->d_name);
      status = vkft_remove_tree(child);
    }
    closedir(dir);
    if (status != VKFT_OK) return status;
    if (rmdir(path) != 0) return vkft_error("%s: cannot remove folder: %s", path, strerror(errno));
    return VKFT_OK;
  }
  if (unlink(path) != 0) return vkft_error("%s: cannot remove: %s", path, strerror(errno));
  return VKFT_OK;
}

int vkft_list_dir(const char *path, void (*fn)(const char *name, void *user), void *user) {
  DIR *dir = opendir(path);
  if (!dir) return vkft_error("%s: cannot open folder: %s", path, strerror(errno));
  struct dirent *entry;
  while ((entry = readdir(dir)))
    if (strcmp(entry->d_name, ".") && strcmp(entry->d_name, "..")) fn(entry->d_name, user);
  closedir(dir);
  return VKFT_OK;
}

static int io_error(const char *path, const char *what, int err) {
  return vkft_error_with(VKFT_ERR_IO, "%s: %s: %s", path, what, strerror(err));
}

/* fsync on the folder makes the rename itself durable (POSIX leaves it in the page cache). */
static void sync_parent_folder(const char *path) {
  char dir[1024];
  snprintf(dir, sizeof dir, "%s", path);
  char *slash = strrchr(dir, '/');
  if (slash == dir)
    slash[1] = 0;
  else if (slash)
    *slash = 0;
  else
    snprintf(dir, sizeof dir, ".");
  int fd = open(dir, O_RDONLY);
  if (fd >= 0) {
    if (!VKFT_FAULT_HIT_ON(VKFT_FAULT_FSYNC, dir)) fsync(fd);
    close(fd);
  }
}

int vkft_atomic_begin(vkft_atomic_file *af, const char *path) {
  memset(af, 0, sizeof *af);
  if (strlen(path) + 4 >= sizeof af->path)
    return vkft_error_with(VKFT_ERR_IO, "%s: path too long (%zu bytes; at most %zu)", path,
                           strlen(path), sizeof af->path - 5);
  snprintf(af->path, sizeof af->path, "%s", path);
  snprintf(af->tmp_path, sizeof af->tmp_path, "%s.tmp", path);
  af->f = fopen(af->tmp_path, "wb");
  if (!af->f) return io_error(af->tmp_path, "cannot create", errno);
  return VKFT_OK;
}

int vkft_atomic_write(vkft_atomic_file *af, const void *data, size_t size) {
  if (!af->f) return vkft_error_with(VKFT_ERR_INTERNAL, "%s: write after close", af->tmp_path);
  if (VKFT_FAULT_HIT_ON(VKFT_FAULT_WRITE, af->tmp_path))
    return io_error(af->tmp_path, "write failed", ENOSPC);
  if (size && fwrite(data, 1, size, af->f) != size)
    return io_error(af->tmp_path, "write failed", errno);
  return VKFT_OK;
}

int vkft_atomic_flush(vkft_atomic_file *af) {
  int err = 0;
  if (!af->f || ferror(af->f) || fflush(af->f) != 0) err = errno ? errno : EIO;
  if (!err && VKFT_FAULT_HIT_ON(VKFT_FAULT_FSYNC, af->tmp_path)) err = EIO;
  if (!err && fsync(fileno(af->f)) != 0) err = errno;
  if (af->f && fclose(af->f) != 0 && !err) err = errno;
  af->f = NULL;
  if (!err) return VKFT_OK;
  remove(af->tmp_path);
  return io_error(af->tmp_path, "write failed", err);
}

int vkft_atomic_rename(vkft_atomic_file *af) {
  int err = VKFT_FAULT_HIT_ON(VKFT_FAULT_RENAME, af->path) ? EIO : 0;
  if (!err && rename(af->tmp_path, af->path) != 0) err = errno;
  if (err) {
    remove(af->tmp_path);
    return io_error(af->path, "cannot replace", err);
  }
  sync_parent_folder(af->path);
  return VKFT_OK;
}

int vkft_atomic_commit(vkft_atomic_file *af) {
  if (vkft_atomic_flush(af) != VKFT_OK) return VKFT_ERR;
  return vkft_atomic_rename(af);
}

void vkft_atomic_abort(vkft_atomic_file *af) {
  if (af->f) fclose(af->f);
  af->f = NULL;
  remove(af->tmp_path);
}

int vkft_rename_replace(const char *from, const char *to) {
  if (vkft_is_dir(to) && vkft_remove_tree(to) != VKFT_OK) return VKFT_ERR;
  if (VKFT_FAULT_HIT_ON(VKFT_FAULT_RENAME, to))
    return vkft_error_with(VKFT_ERR_IO, "%s: cannot rename to %s: %s", from, to, strerror(EIO));
  if (rename(from, to) != 0)
    return vkft_error_with(VKFT_ERR_IO, "%s: cannot rename to %s: %s", from, to, strerror(errno));
  sync_parent_folder(to);
  return VKFT_OK;
}

int vkft_file_append(const char *path, const void *data, size_t size) {
  FILE *f = fopen(path, "ab");
  if (!f) return io_error(path, "cannot open for appending", errno);
  int err = VKFT_FAULT_HIT_ON(VKFT_FAULT_WRITE, path) ? ENOSPC : 0;
  if (!err && fwrite(data, 1, size, f) != size) err = errno;
  if (fclose(f) != 0 && !err) err = errno;
  return err ? io_error(path, "write failed", err) : VKFT_OK;
}

int vkft_realpath(const char *path, char *out, size_t size) {
  char *r = realpath(path, NULL);
  if (!r) return io_error(path, "cannot resolve", errno);
  int fits = strlen(r) < size;
  if (fits) memcpy(out, r, strlen(r) + 1);
  free(r);
  return fits ? VKFT_OK : vkft_error_with(VKFT_ERR_IO, "%s: path too long", path);
}

struct vkft_lock {
  int fd;
};

long vkft_process_id(void) {
  return (long)getpid();
}

int vkft_lock_acquire(const char *path, vkft_lock **out) {
  *out = NULL;
  int fd = open(path, O_RDWR | O_CREAT, 0666);
  if (fd < 0) return io_error(path, "cannot create the lock file", errno);
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    char holder[32] = {0};
    ssize_t n = read(fd, holder, sizeof holder - 1);
    close(fd);
    if (err != EWOULDBLOCK) return io_error(path, "cannot lock", err);
    long pid = n > 0 ? strtol(holder, NULL, 10) : 0;
    return vkft_error_with(VKFT_ERR_BUSY, "%s: in use by another vkft process (pid %ld)", path,
                           pid);
  }
  char pid[32];
  int len = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
  if (ftruncate(fd, 0) != 0 || write(fd, pid, (size_t)len) != len) {
    int err = errno;
    close(fd);
    return io_error(path, "cannot write the lock file", err);
  }
  vkft_lock *lock = malloc(sizeof *lock);
  if (!lock) {
    close(fd);
    return vkft_error_nomem();
  }
  lock->fd = fd;
  *out = lock;
  return VKFT_OK;
}

void vkft_lock_release(vkft_lock *lock) {
  if (!lock) return;
  close(lock->fd); /* closing the descriptor drops the flock */
  free(lock);
}

int vkft_mmap_open(vkft_mmap *map, const char *path) {
  memset(map, 0, sizeof *map);
  int fd = open(path, O_RDONLY);
  if (fd < 0) return vkft_error("%s: cannot open: %s", path, strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0) {
    close(fd);
    return vkft_error("%s: cannot stat: %s", path, strerror(errno));
  }
  map->size = (size_t)st.st_size;
  if (map->size == 0) { /* mmap of 0 bytes is an error; an empty map is not */
    close(fd);
    return VKFT_OK;
  }
  void *p = mmap(NULL, map->size, PROT_READ, MAP_PRIVATE, fd, 0);
  close(fd);
  if (p == MAP_FAILED) return vkft_error("%s: cannot map: %s", path, strerror(errno));
  map->data = p;
  return VKFT_OK;
}

void vkft_mmap_close(vkft_mmap *map) {
  if (map->data) munmap((void *)map->data, map->size);
  memset(map, 0, sizeof *map);
}

int vkft_setenv(const char *name, const char *value) {
  int r = value ? setenv(name, value, 1) : unsetenv(name);
  return r == 0 ? VKFT_OK : vkft_error("cannot set environment variable %s", name);
}

double vkft_time_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void vkft_sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

struct vkft_thread {
  pthread_t id;
  vkft_thread_fn fn;
  void *arg;
};

static void *thread_main(void *p) {
  vkft_thread *t = p;
  t->fn(t->arg);
  return NULL;
}

vkft_thread *vkft_thread_start(vkft_thread_fn fn, void *arg) {
  vkft_thread *t = calloc(1, sizeof *t);
  if (!t) return NULL;
  t->fn = fn;
  t->arg = arg;
  if (pthread_create(&t->id, NULL, thread_main, t) != 0) {
    free(t);
    return NULL;
  }
  return t;
}

void vkft_thread_join(vkft_thread *t) {
  if (!t) return;
  pthread_join(t->id, NULL);
  free(t);
}

struct vkft_mutex {
  pthread_mutex_t m;
};

vkft_mutex *vkft_mutex_create(void) {
  vkft_mutex *m = calloc(1, sizeof *m);
  if (m) pthread_mutex_init(&m->m, NULL);
  return m;
}

void vkft_mutex_destroy(vkft_mutex *m) {
  if (!m) return;
  pthread_mutex_destroy(&m->m);
  free(m);
}

void vkft_mutex_lock(vkft_mutex *m) {
  pthread_mutex_lock(&m->m);
}
void vkft_mutex_unlock(vkft_mutex *m) {
  pthread_mutex_unlock(&m->m);
}

int vkft_cpu_count(void) {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? (int)n : 1;
}

int vkft_console_is_tty(FILE *stream) {
  return isatty(fileno(stream));
}

static volatile sig_atomic_t interrupt_signal;

static void on_signal(int sig) {
  if (interrupt_signal) _exit(VKFT_EXIT_INTERRUPTED); /* the second request: stop now */
  interrupt_signal = sig;
}

void vkft_interrupt_install(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGHUP, &sa, NULL);
}

int vkft_interrupted(void) {
  return interrupt_signal != 0;
}

const char *vkft_interrupt_name(void) {
  switch (interrupt_signal) {
  case SIGINT:
    return "SIGINT";
  case SIGTERM:
    return "SIGTERM";
  case SIGHUP:
    return "SIGHUP";
  default:
    return interrupt_signal ? "a signal" : "";
  }
}
