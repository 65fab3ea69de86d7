/* Windows implementation of include/vkft/platform.h. Paths and arguments are UTF-8 inside
 * vkft and converted to UTF-16 at this boundary, so non-ASCII file names work. */
#define WIN32_LEAN_AND_MEAN
#include <windows.h>

#include <fcntl.h>
#include <io.h>
#include <shellapi.h>
#include <stdlib.h>
#include <string.h>

#include "vkft/error.h"
#include "vkft/fault.h"
#include "vkft/platform.h"

#include <ctype.h>
#include <errno.h>

static wchar_t *utf8_to_wide(const char *s) {
  int n = MultiByteToWideChar(CP_UTF8, 0, s, -1, NULL, 0);
  if (n <= 0) return NULL;
  wchar_t *w = malloc((size_t)n * sizeof *w);
  if (w) MultiByteToWideChar(CP_UTF8, 0, s, -1, w, n);
  return w;
}

static char *wide_to_utf8(const wchar_t *w) {
  int n = WideCharToMultiByte(CP_UTF8, 0, w, -1, NULL, 0, NULL, NULL);
  if (n <= 0) return NULL;
  char *s = malloc((size_t)n);
  if (s) WideCharToMultiByte(CP_UTF8, 0, w, -1, s, n, NULL, NULL);
  return s;
}

static const char *last_error_text(void) {
  static _Thread_local char buf[256];
  DWORD code = GetLastError();
  if (!FormatMessageA(FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS, NULL, code, 0,
                      buf, sizeof buf, NULL))
    snprintf(buf, sizeof buf, "error %lu", (unsigned long)code);
  size_t n = strlen(buf);
  while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == '.')) buf[--n] = 0;
  return buf;
}

void vkft_platform_init(int *argc, char ***argv) {
  int n = 0;
  wchar_t **wargv = CommandLineToArgvW(GetCommandLineW(), &n);
  if (wargv) {
    char **args = calloc((size_t)n + 1, sizeof *args);
    if (args) {
      for (int i = 0; i < n; i++) args[i] = wide_to_utf8(wargv[i]);
      *argc = n;
      *argv = args; /* lives as long as the process */
    }
    LocalFree(wargv);
  }
  SetConsoleOutputCP(CP_UTF8);
  DWORD modes[2] = {STD_OUTPUT_HANDLE, STD_ERROR_HANDLE};
  for (int i = 0; i < 2; i++) {
    HANDLE h = GetStdHandle(modes[i]);
    DWORD mode;
    if (h != INVALID_HANDLE_VALUE && GetConsoleMode(h, &mode))
      SetConsoleMode(h, mode | 0x0004 /* ENABLE_VIRTUAL_TERMINAL_PROCESSING */);
  }
  _setmode(_fileno(stdin), _O_BINARY); /* JSON lines in, byte for byte */
  _setmode(_fileno(stdout), _O_BINARY);
}

FILE *vkft_fopen(const char *path, const char *mode) {
  wchar_t *wpath = utf8_to_wide(path), *wmode = utf8_to_wide(mode);
  FILE *f = wpath && wmode ? _wfopen(wpath, wmode) : NULL;
  free(wpath);
  free(wmode);
  return f;
}

static DWORD attributes(const char *path) {
  wchar_t *w = utf8_to_wide(path);
  DWORD a = w ? GetFileAttributesW(w) : INVALID_FILE_ATTRIBUTES;
  free(w);
  return a;
}

int vkft_file_exists(const char *path) {
  return attributes(path) != INVALID_FILE_ATTRIBUTES;
}

int vkft_is_dir(const char *path) {
  DWORD a = attributes(path);
  return a != INVALID_FILE_ATTRIBUTES && (a & FILE_ATTRIBUTE_DIRECTORY);
}

int vkft_mkdirs(const char *path) {
  char buf[4096];
  size_t n = strlen(path);
  if (n == 0 || n >= sizeof buf) return vkft_error("%s: invalid folder path", path);
  memcpy(buf, path, n + 1);
  for (size_t i = 1; i <= n; i++) {
    if (buf[i] != '/' && buf[i] != '\\' && buf[i] != 0) continue;
    if (i == 2 && buf[1] == ':') continue; /* "C:\" */
    char saved = buf[i];
    buf[i] = 0;
    wchar_t *w = utf8_to_wide(buf);
    BOOL ok = w && (CreateDirectoryW(w, NULL) || GetLastError() == ERROR_ALREADY_EXISTS);
    free(w);
    if (!ok) return vkft_error("%s: cannot create folder: %s", buf, last_error_text());
    buf[i] = saved;
  }
  if (!vkft_is_dir(path)) return vkft_error("%s: exists and is not a folder", path);
  return VKFT_OK;
}

int vkft_remove_tree(const char *path) {
  DWORD a = attributes(path);
  if (a == INVALID_FILE_ATTRIBUTES) return VKFT_OK;
  wchar_t *w = utf8_to_wide(path);
  if (!w) return vkft_error("%s: invalid path", path);
  int status = VKFT_OK;
  if (a & FILE_ATTRIBUTE_DIRECTORY) {
    char pattern[4096];
    snprintf(pattern, sizeof pattern, "%s\\*", path);
    wchar_t *wp = utf8_to_wide(pattern);
    WIN32_FIND_DATAW fd;
    HANDLE h = wp ? FindFirstFileW(wp, &fd) : INVALID_HANDLE_VALUE;
    free(wp);
    if (h != INVALID_HANDLE_VALUE) {
      do {
        if (!wcscmp(fd.cFileName, L".") || !wcscmp(fd.cFileName, L"..")) continue;
        char *name = wide_to_utf8(fd.cFileName);
        char child[4096];
        snprintf(child, sizeof child, "%s\\%s", path, name ? name : "");
        free(name);
        status = vkft_remove_tree(child);
      } while (status == VKFT_OK && FindNextFileW(h, &fd));
      FindClose(h);
    }
    if (status == VKFT_OK && !RemoveDirectoryW(w))
      status = vkft_error("%s: cannot remove folder: %s", path, last_error_text());
  } else if (!DeleteFileW(w)) {
    status = vkft_error("%s: cannot remove: %s", path, last_error_text());
  }
  free(w);
  return status;
}

int vkft_list_dir(const char *path, void (*fn)(const char *name, void *user), void *user) {
  char pattern[4096];
  snprintf(pattern, sizeof pattern, "%s\\*", path);
  wchar_t *wp = utf8_to_wide(pattern);
  WIN32_FIND_DATAW fd;
  HANDLE h = wp ? FindFirstFileW(wp, &fd) : INVALID_HANDLE_VALUE;
  free(wp);
  if (h == INVALID_HANDLE_VALUE)
    return vkft_error("%s: cannot open folder: %s", path, last_error_text());
  do {
    if (!wcscmp(fd.cFileName, L".") || !wcscmp(fd.cFileName, L"..")) continue;
    char *name = wide_to_utf8(fd.cFileName);
    if (name) fn(name, user);
    free(name);
  } while (FindNextFileW(h, &fd));
  FindClose(h);
  return VKFT_OK;
}

static int io_error(const char *path, const char *what, int err) {
  return vkft_error_with(VKFT_ERR_IO, "%s: %s: %s", path, what, strerror(err));
}

int vkft_atomic_begin(vkft_atomic_file *af, const char *path) {
  memset(af, 0, sizeof *af);
  if (strlen(path) + 4 >= sizeof af->path)
    return vkft_error_with(VKFT_ERR_IO, "%s: path too long (%zu bytes; at most %zu)", path,
                           strlen(path), sizeof af->path - 5);
  snprintf(af->path, sizeof af->path, "%s", path);
  snprintf(af->tmp_path, sizeof af->tmp_path, "%s.tmp", path);
  af->f = vkft_fopen(af->tmp_path, "wb");
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

static int move_replace(const char *from, const char *to) {
  if (VKFT_FAULT_HIT_ON(VKFT_FAULT_RENAME, to))
    return vkft_error_with(VKFT_ERR_IO, "%s: cannot rename to %s: %s", from, to, strerror(EIO));
  wchar_t *wf = utf8_to_wide(from), *wt = utf8_to_wide(to);
  BOOL ok = wf && wt && MoveFileExW(wf, wt, MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH);
  free(wf);
  free(wt);
  return ok ? VKFT_OK
            : vkft_error_with(VKFT_ERR_IO, "%s: cannot rename to %s: %s", from, to,
                              last_error_text());
}

int vkft_atomic_flush(vkft_atomic_file *af) {
  /* _commit flushes the OS buffers to disk (FlushFileBuffers), like fsync */
  int err = 0;
  if (!af->f || ferror(af->f) || fflush(af->f) != 0) err = errno ? errno : EIO;
  if (!err && VKFT_FAULT_HIT_ON(VKFT_FAULT_FSYNC, af->tmp_path)) err = EIO;
  if (!err && _commit(_fileno(af->f)) != 0) err = errno;
  if (af->f && fclose(af->f) != 0 && !err) err = errno;
  af->f = NULL;
  if (!err) return VKFT_OK;
  vkft_remove_tree(af->tmp_path);
  return io_error(af->tmp_path, "write failed", err);
}

int vkft_atomic_rename(vkft_atomic_file *af) {
  if (move_replace(af->tmp_path, af->path) != VKFT_OK) {
    vkft_remove_tree(af->tmp_path);
    return VKFT_ERR;
  }
  return VKFT_OK;
}

int vkft_atomic_commit(vkft_atomic_file *af) {
  if (vkft_atomic_flush(af) != VKFT_OK) return VKFT_ERR;
  return vkft_atomic_rename(af);
}

void vkft_atomic_abort(vkft_atomic_file *af) {
  if (af->f) fclose(af->f);
  af->f = NULL;
  vkft_remove_tree(af->tmp_path);
}

int vkft_rename_replace(const char *from, const char *to) {
  /* MoveFileEx cannot replace a folder: remove the old one first */
  if (vkft_is_dir(to) && vkft_remove_tree(to) != VKFT_OK) return VKFT_ERR;
  return move_replace(from, to);
}

int vkft_file_append(const char *path, const void *data, size_t size) {
  FILE *f = vkft_fopen(path, "ab");
  if (!f) return io_error(path, "cannot open for appending", errno);
  int err = VKFT_FAULT_HIT_ON(VKFT_FAULT_WRITE, path) ? ENOSPC : 0;
  if (!err && fwrite(data, 1, size, f) != size) err = errno;
  if (fclose(f) != 0 && !err) err = errno;
  return err ? io_error(path, "write failed", err) : VKFT_OK;
}

int vkft_realpath(const char *path, char *out, size_t size) {
  wchar_t *w = utf8_to_wide(path), full[32768];
  DWORD n = w ? GetFullPathNameW(w, 32768, full, NULL) : 0;
  free(w);
  if (n == 0 || n >= 32768)
    return vkft_error_with(VKFT_ERR_IO, "%s: cannot resolve: %s", path, last_error_text());
  char *u = wide_to_utf8(full);
  if (!u) return vkft_error_nomem();
  int fits = strlen(u) < size;
  if (fits) memcpy(out, u, strlen(u) + 1);
  free(u);
  /* one spelling for comparisons: Windows paths are case-insensitive, separators either way */
  for (char *p = out; fits && *p; p++) *p = *p == '/' ? '\\' : (char)tolower((unsigned char)*p);
  return fits ? VKFT_OK : vkft_error_with(VKFT_ERR_IO, "%s: path too long", path);
}

struct vkft_lock {
  HANDLE file;
};

long vkft_process_id(void) {
  return (long)GetCurrentProcessId();
}

int vkft_lock_acquire(const char *path, vkft_lock **out) {
  *out = NULL;
  wchar_t *w = utf8_to_wide(path);
  HANDLE h = w ? CreateFileW(w, GENERIC_READ | GENERIC_WRITE, FILE_SHARE_READ | FILE_SHARE_WRITE,
                             NULL, OPEN_ALWAYS, FILE_ATTRIBUTE_NORMAL, NULL)
               : INVALID_HANDLE_VALUE;
  free(w);
  if (h == INVALID_HANDLE_VALUE)
    return vkft_error_with(VKFT_ERR_IO, "%s: cannot create the lock file: %s", path,
                           last_error_text());
  /* lock one byte far past the data, so the process id stays readable by others */
  OVERLAPPED at = {.Offset = 0xFFFFFFF0u};
  if (!LockFileEx(h, LOCKFILE_EXCLUSIVE_LOCK | LOCKFILE_FAIL_IMMEDIATELY, 0, 1, 0, &at)) {
    char holder[32] = {0};
    DWORD got = 0;
    ReadFile(h, holder, sizeof holder - 1, &got, NULL);
    CloseHandle(h);
    return vkft_error_with(VKFT_ERR_BUSY, "%s: in use by another vkft process (pid %ld)", path,
                           got ? strtol(holder, NULL, 10) : 0L);
  }
  char pid[32];
  int len = snprintf(pid, sizeof pid, "%ld\n", (long)GetCurrentProcessId());
  DWORD wrote = 0;
  SetFilePointer(h, 0, NULL, FILE_BEGIN);
  SetEndOfFile(h);
  WriteFile(h, pid, (DWORD)len, &wrote, NULL);
  vkft_lock *lock = malloc(sizeof *lock);
  if (!lock) {
    CloseHandle(h);
    return vkft_error_nomem();
  }
  lock->file = h;
  *out = lock;
  return VKFT_OK;
}

void vkft_lock_release(vkft_lock *lock) {
  if (!lock) return;
  CloseHandle(lock->file); /* closing the handle releases the lock */
  free(lock);
}

int vkft_mmap_open(vkft_mmap *map, const char *path) {
  memset(map, 0, sizeof *map);
  wchar_t *w = utf8_to_wide(path);
  HANDLE file = w ? CreateFileW(w, GENERIC_READ, FILE_SHARE_READ, NULL, OPEN_EXISTING,
                                FILE_ATTRIBUTE_NORMAL, NULL)
                  : INVALID_HANDLE_VALUE;
  free(w);
  if (file == INVALID_HANDLE_VALUE)
    return vkft_error("%s: cannot open: %s", path, last_error_text());
  LARGE_INTEGER size;
  if (!GetFileSizeEx(file, &size)) {
    CloseHandle(file);
    return vkft_error("%s: cannot get size: %s", path, last_error_text());
  }
  map->size = (size_t)size.QuadPart;
  if (map->size == 0) {
    CloseHandle(file);
    return VKFT_OK;
  }
  HANDLE mapping = CreateFileMappingW(file, NULL, PAGE_READONLY, 0, 0, NULL);
  CloseHandle(file);
  if (!mapping) return vkft_error("%s: cannot map: %s", path, last_error_text());
  map->data = MapViewOfFile(mapping, FILE_MAP_READ, 0, 0, 0);
  if (!map->data) {
    CloseHandle(mapping);
    return vkft_error("%s: cannot map: %s", path, last_error_text());
  }
  map->handle = mapping;
  return VKFT_OK;
}

void vkft_mmap_close(vkft_mmap *map) {
  if (map->data) UnmapViewOfFile(map->data);
  if (map->handle) CloseHandle(map->handle);
  memset(map, 0, sizeof *map);
}

int vkft_setenv(const char *name, const char *value) {
  /* an empty value removes the variable in the C runtime's environment */
  return _putenv_s(name, value ? value : "") == 0
             ? VKFT_OK
             : vkft_error("cannot set environment variable %s", name);
}

double vkft_time_s(void) {
  static LARGE_INTEGER frequency;
  if (!frequency.QuadPart) QueryPerformanceFrequency(&frequency);
  LARGE_INTEGER now;
  QueryPerformanceCounter(&now);
  return (double)now.QuadPart / (double)frequency.QuadPart;
}

void vkft_sleep_ms(int ms) {
  Sleep((DWORD)ms);
}

struct vkft_thread {
  HANDLE handle;
  vkft_thread_fn fn;
  void *arg;
};

static DWORD WINAPI thread_main(LPVOID p) {
  vkft_thread *t = p;
  t->fn(t->arg);
  return 0;
}

vkft_thread *vkft_thread_start(vkft_thread_fn fn, void *arg) {
  vkft_thread *t = calloc(1, sizeof *t);
  if (!t) return NULL;
  t->fn = fn;
  t->arg = arg;
  t->handle = CreateThread(NULL, 0, thread_main, t, 0, NULL);
  if (!t->handle) {
    free(t);
    return NULL;
  }
  return t;
}

void vkft_thread_join(vkft_thread *t) {
  if (!t) return;
  WaitForSingleObject(t->handle, INFINITE);
  CloseHandle(t->handle);
  free(t);
}

struct vkft_mutex {
  SRWLOCK lock;
};

vkft_mutex *vkft_mutex_create(void) {
  vkft_mutex *m = calloc(1, sizeof *m);
  if (m) InitializeSRWLock(&m->lock);
  return m;
}

void vkft_mutex_destroy(vkft_mutex *m) {
  free(m);
}
void vkft_mutex_lock(vkft_mutex *m) {
  AcquireSRWLockExclusive(&m->lock);
}
void vkft_mutex_unlock(vkft_mutex *m) {
  ReleaseSRWLockExclusive(&m->lock);
}

int vkft_cpu_count(void) {
  SYSTEM_INFO info;
  GetSystemInfo(&info);
  return info.dwNumberOfProcessors > 0 ? (int)info.dwNumberOfProcessors : 1;
}

int vkft_console_is_tty(FILE *stream) {
  return _isatty(_fileno(stream));
}

static volatile LONG interrupt_event = -1;

static BOOL WINAPI on_console_event(DWORD type) {
  if (type == CTRL_C_EVENT || type == CTRL_BREAK_EVENT || type == CTRL_CLOSE_EVENT ||
      type == CTRL_LOGOFF_EVENT || type == CTRL_SHUTDOWN_EVENT) {
    if (InterlockedCompareExchange(&interrupt_event, (LONG)type, -1) != -1)
      ExitProcess(VKFT_EXIT_INTERRUPTED); /* the second request: stop now */
    return TRUE;
  }
  return FALSE;
}

void vkft_interrupt_install(void) {
  SetConsoleCtrlHandler(on_console_event, TRUE);
}

int vkft_interrupted(void) {
  return interrupt_event != -1;
}

const char *vkft_interrupt_name(void) {
  switch (interrupt_event) {
  case -1:
    return "";
  case CTRL_C_EVENT:
    return "Ctrl-C";
  case CTRL_BREAK_EVENT:
    return "Ctrl-Break";
  case CTRL_CLOSE_EVENT:
    return "console close";
  default:
    return "a shutdown request";
  }
}
