/* Checkpoint manifests (see manifest.h): {"format": "vkft-checkpoint", "version": 1, "step": N,
 * "files": {"NAME": {"bytes": B, "crc32": "8 hex digits"}, ...}}. */
#include "manifest.h"

#include "vkft/crc32.h"
#include "vkft/error.h"
#include "vkft/json.h"
#include "vkft/platform.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int plain_name(const char *name) {
  return name[0] && strcmp(name, ".") && strcmp(name, "..") && !strpbrk(name, "/\\:") &&
         strlen(name) < sizeof((manifest_file *)0)->name;
}

int manifest_parse(const char *where, const char *text, size_t size, manifest *out) {
  memset(out, 0, sizeof *out);
  cJSON *root = cJSON_ParseWithLength(text, size);
  if (!root) return vkft_error("%s: not valid JSON", where);
  const cJSON *format = cJSON_GetObjectItemCaseSensitive(root, "format");
  const cJSON *version = cJSON_GetObjectItemCaseSensitive(root, "version");
  const cJSON *step = cJSON_GetObjectItemCaseSensitive(root, "step");
  const cJSON *files = cJSON_GetObjectItemCaseSensitive(root, "files");
  int status = VKFT_OK;
  if (!cJSON_IsString(format) || strcmp(format->valuestring, "vkft-checkpoint"))
    status = vkft_error("%s: not a vkft checkpoint manifest", where);
  else if (!cJSON_IsNumber(version) || version->valuedouble != 1)
    status = vkft_error("%s: unsupported manifest version", where);
  else if (!cJSON_IsNumber(step) || !(step->valuedouble >= 0 && step->valuedouble < 9e15) ||
           step->valuedouble != floor(step->valuedouble))
    status = vkft_error("%s: \"step\" must be a non-negative integer", where);
  else if (!cJSON_IsObject(files))
    status = vkft_error("%s: \"files\" must be an object", where);
  for (const cJSON *f = files ? files->child : NULL; status == VKFT_OK && f; f = f->next) {
    const cJSON *bytes = cJSON_GetObjectItemCaseSensitive(f, "bytes");
    const cJSON *crc = cJSON_GetObjectItemCaseSensitive(f, "crc32");
    char *end = NULL;
    unsigned long value = cJSON_IsString(crc) ? strtoul(crc->valuestring, &end, 16) : 0;
    if (out->count == MANIFEST_MAX_FILES)
      status = vkft_error("%s: more than %d files", where, MANIFEST_MAX_FILES);
    else if (!plain_name(f->string))
      status = vkft_error("%s: \"%s\" is not a file name inside the folder", where, f->string);
    else if (!cJSON_IsNumber(bytes) || !(bytes->valuedouble >= 0 && bytes->valuedouble < 9e15) ||
             bytes->valuedouble != floor(bytes->valuedouble))
      status = vkft_error("%s: \"%s\": \"bytes\" must be a non-negative integer", where, f->string);
    else if (!cJSON_IsString(crc) || strlen(crc->valuestring) != 8 || *end || value > 0xffffffffu)
      status = vkft_error("%s: \"%s\": \"crc32\" must be 8 hex digits", where, f->string);
    else {
      manifest_file *m = &out->files[out->count++];
      snprintf(m->name, sizeof m->name, "%s", f->string);
      m->bytes = (uint64_t)bytes->valuedouble;
      m->crc32 = (uint32_t)value;
    }
  }
  if (status == VKFT_OK) out->step = (int64_t)step->valuedouble;
  cJSON_Delete(root);
  return status;
}

typedef struct name_list {
  char names[MANIFEST_MAX_FILES + 1][128];
  int count, overflow;
} name_list;

static void collect(const char *name, void *user) {
  name_list *l = user;
  if (!strcmp(name, MANIFEST_NAME)) return;
  if (l->count == MANIFEST_MAX_FILES || strlen(name) >= sizeof l->names[0]) {
    l->overflow = 1;
    return;
  }
  snprintf(l->names[l->count++], sizeof l->names[0], "%s", name);
}

static int by_name(const void *a, const void *b) {
  return strcmp(a, b);
}

int manifest_write(const char *dir, int64_t step) {
  name_list *l = calloc(1, sizeof *l);
  if (!l) return vkft_error_nomem();
  int status = vkft_list_dir(dir, collect, l);
  if (status == VKFT_OK && l->overflow)
    status = vkft_error_with(VKFT_ERR_INTERNAL, "%s: too many files for a manifest", dir);
  qsort(l->names, (size_t)l->count, sizeof l->names[0], by_name);
  cJSON *root = cJSON_CreateObject(), *files = NULL;
  if (status == VKFT_OK && root) {
    cJSON_AddStringToObject(root, "format", "vkft-checkpoint");
    cJSON_AddNumberToObject(root, "version", 1);
    cJSON_AddNumberToObject(root, "step", (double)step);
    files = cJSON_AddObjectToObject(root, "files");
  }
  if (status == VKFT_OK && !files) status = vkft_error_nomem();
  for (int i = 0; status == VKFT_OK && i < l->count; i++) {
    char path[2048], hex[16];
    snprintf(path, sizeof path, "%s/%s", dir, l->names[i]);
    uint32_t crc;
    uint64_t bytes;
    if (vkft_is_dir(path)) continue;
    status = vkft_crc32_file(path, &crc, &bytes);
    cJSON *entry = status == VKFT_OK ? cJSON_AddObjectToObject(files, l->names[i]) : NULL;
    if (status == VKFT_OK && !entry) status = vkft_error_nomem();
    if (status != VKFT_OK) break;
    snprintf(hex, sizeof hex, "%08x", (unsigned)crc);
    cJSON_AddNumberToObject(entry, "bytes", (double)bytes);
    cJSON_AddStringToObject(entry, "crc32", hex);
  }
  if (status == VKFT_OK) {
    char path[2048];
    snprintf(path, sizeof path, "%s/%s", dir, MANIFEST_NAME);
    status = vkft_json_write_file(path, root);
  }
  cJSON_Delete(root);
  free(l);
  return status;
}

int manifest_verify(const char *dir, manifest *out) {
  char path[2048];
  snprintf(path, sizeof path, "%s/%s", dir, MANIFEST_NAME);
  if (!vkft_file_exists(path))
    return vkft_error("%s: no %s (the checkpoint was not finished)", dir, MANIFEST_NAME);
  char *text;
  size_t size;
  if (vkft_file_read(path, &text, &size) != VKFT_OK) return VKFT_ERR;
  int status = manifest_parse(path, text, size, out);
  free(text);
  for (int i = 0; status == VKFT_OK && i < out->count; i++) {
    const manifest_file *f = &out->files[i];
    snprintf(path, sizeof path, "%s/%s", dir, f->name);
    uint32_t crc;
    uint64_t bytes;
    if (!vkft_file_exists(path)) {
      status = vkft_error("%s: missing (listed in the manifest)", path);
    } else if (vkft_crc32_file(path, &crc, &bytes) != VKFT_OK) {
      status = VKFT_ERR;
    } else if (bytes != f->bytes) {
      status = vkft_error("%s: %llu bytes, the manifest says %llu", path, (unsigned long long)bytes,
                          (unsigned long long)f->bytes);
    } else if (crc != f->crc32) {
      status = vkft_error("%s: checksum %08x, the manifest says %08x (the file changed)", path,
                          (unsigned)crc, (unsigned)f->crc32);
    }
  }
  return status;
}
