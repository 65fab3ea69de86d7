/* POSIX implementation of include/vkft/platform.h (Linux and other Unix systems). */
#define _GNU_SOURCE
#include "vkft/platform.h"

#include "vkft/error.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

void vkft_platform_init(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
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
    fsync(fd);
    close(fd);
  }
}

int vkft_atomic_begin(vkft_atomic_file *af, const char *path) {
  memset(af, 0, sizeof *af);
  if (strlen(path) >= sizeof af->path) return vkft_error("%s: path too long", path);
  snprintf(af->path, sizeof af->path, "%s", path);
  snprintf(af->tmp_path, sizeof af->tmp_path, "%s.tmp", path);
  af->f = fopen(af->tmp_path, "wb");
  if (!af->f) return vkft_error("%s: cannot create: %s", af->tmp_path, strerror(errno));
  return VKFT_OK;
}

int vkft_atomic_commit(vkft_atomic_file *af) {
  int ok = af->f && !ferror(af->f) && fflush(af->f) == 0 && fsync(fileno(af->f)) == 0;
  int saved_errno = errno;
  if (af->f && fclose(af->f) != 0) ok = 0;
  af->f = NULL;
  if (!ok) {
    remove(af->tmp_path);
    return vkft_error("%s: write failed: %s", af->tmp_path, strerror(saved_errno));
  }
  if (rename(af->tmp_path, af->path) != 0) {
    saved_errno = errno;
    remove(af->tmp_path);
    return vkft_error("%s: cannot replace: %s", af->path, strerror(saved_errno));
  }
  sync_parent_folder(af->path);
  return VKFT_OK;
}

void vkft_atomic_abort(vkft_atomic_file *af) {
  if (af->f) fclose(af->f);
  af->f = NULL;
  remove(af->tmp_path);
}

int vkft_rename_replace(const char *from, const char *to) {
  if (vkft_is_dir(to) && vkft_remove_tree(to) != VKFT_OK) return VKFT_ERR;
  if (rename(from, to) != 0)
    return vkft_error("%s: cannot rename to %s: %s", from, to, strerror(errno));
  sync_parent_folder(to);
  return VKFT_OK;
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

static volatile sig_atomic_t interrupt_requested;

static void on_signal(int sig) {
  (void)sig;
  interrupt_requested = 1;
}

void vkft_interrupt_install(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
}

int vkft_interrupted(void) {
  return interrupt_requested != 0;
}
