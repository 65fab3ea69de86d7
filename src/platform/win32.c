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
#include "vkft/platform.h"

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

int vkft_atomic_begin(vkft_atomic_file *af, const char *path) {
  memset(af, 0, sizeof *af);
  if (strlen(path) >= sizeof af->path) return vkft_error("%s: path too long", path);
  snprintf(af->path, sizeof af->path, "%s", path);
  snprintf(af->tmp_path, sizeof af->tmp_path, "%s.tmp", path);
  af->f = vkft_fopen(af->tmp_path, "wb");
  if (!af->f) return vkft_error("%s: cannot create", af->tmp_path);
  return VKFT_OK;
}

static int move_replace(const char *from, const char *to) {
  wchar_t *wf = utf8_to_wide(from), *wt = utf8_to_wide(to);
  BOOL ok = wf && wt && MoveFileExW(wf, wt, MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH);
  free(wf);
  free(wt);
  return ok ? VKFT_OK : vkft_error("%s: cannot rename to %s: %s", from, to, last_error_text());
}

int vkft_atomic_commit(vkft_atomic_file *af) {
  /* _commit flushes the OS buffers to disk (FlushFileBuffers), like fsync */
  int ok = af->f && !ferror(af->f) && fflush(af->f) == 0 && _commit(_fileno(af->f)) == 0;
  if (af->f && fclose(af->f) != 0) ok = 0;
  af->f = NULL;
  if (!ok) {
    vkft_remove_tree(af->tmp_path);
    return vkft_error("%s: write failed", af->tmp_path);
  }
  if (move_replace(af->tmp_path, af->path) != VKFT_OK) {
    vkft_remove_tree(af->tmp_path);
    return VKFT_ERR;
  }
  return VKFT_OK;
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

static volatile LONG interrupt_requested;

static BOOL WINAPI on_console_event(DWORD type) {
  if (type == CTRL_C_EVENT || type == CTRL_BREAK_EVENT || type == CTRL_CLOSE_EVENT) {
    InterlockedExchange(&interrupt_requested, 1);
    return TRUE;
  }
  return FALSE;
}

void vkft_interrupt_install(void) {
  SetConsoleCtrlHandler(on_console_event, TRUE);
}

int vkft_interrupted(void) {
  return interrupt_requested != 0;
}
