/* GGUF reading and writing: a file assembled by hand from the spec's layout equals the writer's
 * bytes; every value type (nested arrays too), tensor infos, alignment and padding survive a
 * write/read round trip and a copy through set_value reproduces the file byte for byte; every
 * truncation, every single-byte corruption and a list of targeted damages is either read or
 * refused with one message naming the file (never a crash or an out-of-bounds read); the
 * streaming writer refuses a tensor of the wrong size and leaves no file. Runs in < 1 s. */
#include "check.h"

#include "vkft/error.h"
#include "vkft/gguf.h"
#include "vkft/platform.h"

#include <stdlib.h>
#include <string.h>

static char dir[512];

static void path_of(char *out, size_t n, const char *name) {
  snprintf(out, n, "%s/%s", dir, name);
}

/* produce callback: tensor i's bytes are bytes[i] (sizes from the writer) */
typedef struct blobs {
  const uint8_t *data[8];
  size_t size[8];
  int short_by; /* write this many bytes too few (error test) */
} blobs;

static int produce(void *user, int64_t i, vkft_gguf_sink *sink) {
  blobs *b = user;
  size_t n = b->size[i] - (size_t)b->short_by;
  /* in two pieces, as a streaming producer would */
  return vkft_gguf_sink_write(sink, b->data[i], n / 2) ||
         vkft_gguf_sink_write(sink, b->data[i] + n / 2, n - n / 2);
}

static uint8_t *read_all(const char *path, size_t *size) {
  char *data = NULL;
  if (vkft_file_read(path, &data, size) != VKFT_OK) return NULL;
  return (uint8_t *)data;
}

/* ---- 1. the smallest interesting file, assembled by hand ---- */

static size_t le_put(uint8_t *p, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; i++) p[i] = (uint8_t)(v >> (8 * i));
  return (size_t)bytes;
}

static void test_hand_layout(void) {
  /* header, "a.n" = uint32 7, "b" = string "hi", tensor "t" F32 [3] = {1, 2, 3} */
  uint8_t expect[256];
  size_t n = 0;
  memcpy(expect, "GGUF", 4), n += 4;
  n += le_put(expect + n, 3, 4); /* version */
  n += le_put(expect + n, 1, 8); /* tensors */
  n += le_put(expect + n, 2, 8); /* key/value pairs */
  n += le_put(expect + n, 3, 8), memcpy(expect + n, "a.n", 3), n += 3;
  n += le_put(expect + n, 4, 4) + le_put(expect + n + 4, 7, 4); /* uint32 7 */
  n += le_put(expect + n, 1, 8), expect[n++] = 'b';
  n += le_put(expect + n, 8, 4); /* string */
  n += le_put(expect + n, 2, 8), memcpy(expect + n, "hi", 2), n += 2;
  n += le_put(expect + n, 1, 8), expect[n++] = 't';             /* tensor info */
  n += le_put(expect + n, 1, 4) + le_put(expect + n + 4, 3, 8); /* 1 dim: 3 */
  n += le_put(expect + n, 0, 4) + le_put(expect + n + 4, 0, 8); /* F32, offset 0 */
  while (n % 32) expect[n++] = 0;                               /* padding to the alignment */
  const float values[3] = {1, 2, 3};
  memcpy(expect + n, values, 12), n += 12;
  while (n % 32) expect[n++] = 0; /* the last tensor is padded too */

  vkft_gguf_writer *w;
  CHECK(vkft_gguf_writer_create(&w) == VKFT_OK);
  CHECK(vkft_gguf_set_u32(w, "a.n", 7) == VKFT_OK);
  CHECK(vkft_gguf_set_str(w, "b", "hi") == VKFT_OK);
  CHECK(vkft_gguf_set_u32(w, "a.n", 8) != VKFT_OK); /* a key twice */
  CHECK(vkft_gguf_add_tensor(w, "t", VKFT_GGML_F32, 1, (int64_t[]){3}) == VKFT_OK);
  blobs b = {.data = {(const uint8_t *)values}, .size = {12}};
  char path[600];
  path_of(path, sizeof path, "hand.gguf");
  CHECK(vkft_gguf_writer_save(w, path, produce, &b) == VKFT_OK);
  vkft_gguf_writer_free(w);
  size_t size = 0;
  uint8_t *got = read_all(path, &size);
  CHECKF(got && size == n && !memcmp(got, expect, n),
         "writer bytes differ from the hand layout "
         "(%zu vs %zu bytes)",
         size, n);
  free(got);
}

/* ---- 2. every value type, several tensors, a round trip and a byte-identical copy ---- */

static const uint8_t q8_block[34] = {0x00, 0x3c, 1, 2, 3, 0xff}; /* d = 1.0, a few quants */

static void write_full(const char *path, uint32_t alignment) {
  vkft_gguf_writer *w;
  CHECK(vkft_gguf_writer_create(&w) == VKFT_OK);
  CHECK(vkft_gguf_set_str(w, "general.architecture", "llama") == VKFT_OK);
  if (alignment) CHECK(vkft_gguf_set_u32(w, "general.alignment", alignment) == VKFT_OK);
  CHECK(vkft_gguf_set_u32(w, "t.u32", 4000000000u) == VKFT_OK);
  CHECK(vkft_gguf_set_i32(w, "t.i32", -5) == VKFT_OK);
  CHECK(vkft_gguf_set_u64(w, "t.u64", 1ull << 40) == VKFT_OK);
  CHECK(vkft_gguf_set_f32(w, "t.f32", 1e-5f) == VKFT_OK);
  CHECK(vkft_gguf_set_bool(w, "t.bool", 1) == VKFT_OK);
  CHECK(vkft_gguf_set_str(w, "t.empty", "") == VKFT_OK);
  CHECK(vkft_gguf_set_str(w, "t.utf8", "\xc3\xa9t\xc3\xa9 \xe2\x96\x81") == VKFT_OK);
  const int8_t i8[3] = {-1, 0, 127};
  const uint16_t u16[2] = {1, 65535};
  const int16_t i16[2] = {-32768, 7};
  const int64_t i64[2] = {-1, INT64_MAX};
  const double f64[2] = {0.1, -2.5};
  const uint8_t bools[3] = {1, 0, 1};
  CHECK(vkft_gguf_set_array(w, "t.i8", VKFT_GGUF_INT8, i8, 3) == VKFT_OK);
  CHECK(vkft_gguf_set_array(w, "t.u16", VKFT_GGUF_UINT16, u16, 2) == VKFT_OK);
  CHECK(vkft_gguf_set_array(w, "t.i16", VKFT_GGUF_INT16, i16, 2) == VKFT_OK);
  CHECK(vkft_gguf_set_array(w, "t.i64", VKFT_GGUF_INT64, i64, 2) == VKFT_OK);
  CHECK(vkft_gguf_set_array(w, "t.f64", VKFT_GGUF_FLOAT64, f64, 2) == VKFT_OK);
  CHECK(vkft_gguf_set_array(w, "t.bools", VKFT_GGUF_BOOL, bools, 3) == VKFT_OK);
  CHECK(vkft_gguf_set_array(w, "t.none", VKFT_GGUF_UINT8, NULL, 0) == VKFT_OK);
  const char *strs[3] = {"a", "", "\xe4\xb8\xad"};
  CHECK(vkft_gguf_set_str_array(w, "t.strs", strs, NULL, 3) == VKFT_OK);
  CHECK(vkft_gguf_set_array(w, "t.strs2", VKFT_GGUF_STRING, strs, 3) != VKFT_OK);
  /* a nested array [[1, 2], [3]] (uint32) copied from a file made by hand below */
  static const float f32s[5] = {1, 2, 3, 4, 5};
  static const uint16_t f16s[2 * 3 * 2] = {0x3c00, 0x4000, 0x4200, 0x4400, 0x4500, 0x4600,
                                           0x4700, 0x4800, 0x4880, 0x4900, 0x4980, 0x4a00};
  CHECK(vkft_gguf_add_tensor(w, "norm.weight", VKFT_GGML_F32, 1, (int64_t[]){5}) == VKFT_OK);
  CHECK(vkft_gguf_add_tensor(w, "blk.0.q", VKFT_GGML_Q8_0, 2, (int64_t[]){32, 1}) == VKFT_OK);
  CHECK(vkft_gguf_add_tensor(w, "x3", VKFT_GGML_F16, 3, (int64_t[]){2, 3, 2}) == VKFT_OK);
  CHECK(vkft_gguf_add_tensor(w, "bad", VKFT_GGML_Q4_K, 1, (int64_t[]){100}) != VKFT_OK);
  CHECK(vkft_gguf_add_tensor(w, "x3", VKFT_GGML_F32, 1, (int64_t[]){1}) != VKFT_OK);
  char long_name[80];
  memset(long_name, 'n', 64), long_name[64] = 0;
  CHECK(vkft_gguf_add_tensor(w, long_name, VKFT_GGML_F32, 1, (int64_t[]){1}) != VKFT_OK);
  blobs b = {.data = {(const uint8_t *)f32s, q8_block, (const uint8_t *)f16s},
             .size = {20, 34, 24}};
  CHECK(vkft_gguf_writer_save(w, path, produce, &b) == VKFT_OK);
  vkft_gguf_writer_free(w);
}

static int key_int(const vkft_gguf *g, const char *key, int64_t expect) {
  int64_t v = 0;
  return vkft_gguf_get_int(g, key, &v) == VKFT_OK && v == expect;
}

static void test_round_trip(uint32_t alignment) {
  char path[600], copy[600];
  path_of(path, sizeof path, "full.gguf");
  path_of(copy, sizeof copy, "copy.gguf");
  write_full(path, alignment);
  vkft_gguf *g = NULL;
  CHECKF(vkft_gguf_open(path, &g) == VKFT_OK, "%s", vkft_error_message());
  if (!g) return;
  uint32_t align = alignment ? alignment : 32;
  CHECK(vkft_gguf_version(g) == 3 && vkft_gguf_alignment(g) == align);
  CHECK(vkft_gguf_data_offset(g) % align == 0);
  CHECK(!strcmp(vkft_gguf_kv_key(g, 0), "general.architecture"));
  CHECK(key_int(g, "t.u32", 4000000000ll) && key_int(g, "t.i32", -5) &&
        key_int(g, "t.u64", 1ll << 40) && key_int(g, "t.bool", 1));
  double f = 0;
  CHECK(vkft_gguf_get_float(g, "t.f32", &f) == VKFT_OK && f == (double)1e-5f);
  CHECK_ERR(vkft_gguf_get_float(g, "t.u32", &f), VKFT_ERR_INPUT, "t.u32"); /* wrong type */
  const char *s;
  uint64_t len;
  CHECK(vkft_gguf_get_str(g, "t.utf8", &s, &len) == VKFT_OK && len == 9 &&
        !memcmp(s, "\xc3\xa9t\xc3\xa9 \xe2\x96\x81", 9));
  CHECK(vkft_gguf_get_str(g, "t.empty", &s, &len) == VKFT_OK && len == 0);
  CHECK(vkft_gguf_get_str(g, "missing", &s, &len) != VKFT_OK);
  vkft_gguf_value a, e;
  vkft_gguf_iter it;
  int64_t iv;
  CHECK(vkft_gguf_get_array(g, "t.i16", &a) == VKFT_OK && a.elem_type == VKFT_GGUF_INT16 &&
        a.count == 2);
  vkft_gguf_array_begin(&a, &it);
  CHECK(vkft_gguf_array_next(&it, &e) && vkft_gguf_value_int(&e, &iv) == VKFT_OK && iv == -32768);
  CHECK(vkft_gguf_array_next(&it, &e) && vkft_gguf_value_int(&e, &iv) == VKFT_OK && iv == 7);
  CHECK(!vkft_gguf_array_next(&it, &e));
  CHECK(vkft_gguf_get_array(g, "t.i64", &a) == VKFT_OK);
  vkft_gguf_array_begin(&a, &it);
  CHECK(vkft_gguf_array_next(&it, &e) && vkft_gguf_array_next(&it, &e) &&
        vkft_gguf_value_int(&e, &iv) == VKFT_OK && iv == INT64_MAX);
  CHECK(vkft_gguf_get_array(g, "t.f64", &a) == VKFT_OK);
  vkft_gguf_array_begin(&a, &it);
  CHECK(vkft_gguf_array_next(&it, &e) && vkft_gguf_value_float(&e, &f) == VKFT_OK && f == 0.1);
  CHECK(vkft_gguf_get_array(g, "t.strs", &a) == VKFT_OK && a.count == 3);
  vkft_gguf_array_begin(&a, &it);
  int strs_ok = 1;
  static const char *const want[3] = {"a", "", "\xe4\xb8\xad"};
  for (int i = 0; i < 3; i++)
    strs_ok &= vkft_gguf_array_next(&it, &e) && vkft_gguf_value_str(&e, &s, &len) == VKFT_OK &&
               len == strlen(want[i]) && !memcmp(s, want[i], len);
  CHECK(strs_ok);
  CHECK(vkft_gguf_get_array(g, "t.none", &a) == VKFT_OK && a.count == 0);
  CHECK(vkft_gguf_tensor_count(g) == 3);
  const vkft_gguf_tensor *t = vkft_gguf_find_tensor(g, "x3");
  CHECK(t && t->type == VKFT_GGML_F16 && t->n_dims == 3 && t->ne[0] == 2 && t->ne[1] == 3 &&
        t->ne[2] == 2 && t->ne[3] == 1 && t->size == 24 && t->offset % align == 0);
  t = vkft_gguf_find_tensor(g, "blk.0.q");
  CHECK(t && t->size == 34 && !memcmp(t->data, q8_block, 34));
  t = vkft_gguf_tensor_at(g, 0);
  CHECK(t->offset == 0 && t->size == 20 && ((const float *)(const void *)t->data)[4] == 5.0f);

  /* copy every key (set_value) and tensor into a new file: the same bytes */
  vkft_gguf_writer *w;
  CHECK(vkft_gguf_writer_create(&w) == VKFT_OK);
  for (int64_t i = 0; i < vkft_gguf_kv_count(g); i++)
    CHECK(vkft_gguf_set_value(w, vkft_gguf_kv_key(g, i), vkft_gguf_kv_value(g, i)) == VKFT_OK);
  blobs b = {0};
  for (int64_t i = 0; i < vkft_gguf_tensor_count(g); i++) {
    t = vkft_gguf_tensor_at(g, i);
    CHECK(vkft_gguf_add_tensor(w, t->name, t->type, t->n_dims, t->ne) == VKFT_OK);
    b.data[i] = t->data, b.size[i] = t->size;
  }
  CHECK(vkft_gguf_writer_save(w, copy, produce, &b) == VKFT_OK);
  vkft_gguf_writer_free(w);
  vkft_gguf_close(g);
  size_t n1 = 0, n2 = 0;
  uint8_t *x = read_all(path, &n1), *y = read_all(copy, &n2);
  CHECKF(x && y && n1 == n2 && !memcmp(x, y, n1), "copy differs (alignment %u)", align);
  free(x), free(y);
}

/* A nested array ["t.nest" = [[1, 2], [3]] of uint32] spliced in by hand, read, then copied. */
static void test_nested_array(void) {
  uint8_t f[256];
  size_t n = 0;
  memcpy(f, "GGUF", 4), n += 4;
  n += le_put(f + n, 2, 4); /* version 2 reads like 3 */
  n += le_put(f + n, 0, 8);
  n += le_put(f + n, 1, 8);
  n += le_put(f + n, 6, 8), memcpy(f + n, "t.nest", 6), n += 6;
  n += le_put(f + n, 9, 4);                           /* array */
  n += le_put(f + n, 9, 4) + le_put(f + n + 4, 2, 8); /* of 2 arrays */
  n += le_put(f + n, 4, 4) + le_put(f + n + 4, 2, 8); /* [uint32 x 2] */
  n += le_put(f + n, 1, 4) + le_put(f + n + 4, 2, 4);
  n += le_put(f + n, 4, 4) + le_put(f + n + 4, 1, 8); /* [uint32 x 1] */
  n += le_put(f + n, 3, 4);
  char path[600];
  path_of(path, sizeof path, "nested.gguf");
  CHECK(vkft_file_write_atomic(path, f, n) == VKFT_OK);
  vkft_gguf *g = NULL;
  CHECKF(vkft_gguf_open(path, &g) == VKFT_OK, "%s", vkft_error_message());
  if (!g) return;
  CHECK(vkft_gguf_version(g) == 2);
  vkft_gguf_value a, inner, e;
  vkft_gguf_iter outer_it, inner_it;
  int64_t v, sum = 0, count = 0;
  CHECK(vkft_gguf_get_array(g, "t.nest", &a) == VKFT_OK && a.elem_type == VKFT_GGUF_ARRAY);
  vkft_gguf_array_begin(&a, &outer_it);
  while (vkft_gguf_array_next(&outer_it, &inner)) {
    vkft_gguf_array_begin(&inner, &inner_it);
    while (vkft_gguf_array_next(&inner_it, &e))
      if (vkft_gguf_value_int(&e, &v) == VKFT_OK) sum += v, count++;
  }
  CHECK(sum == 6 && count == 3);
  vkft_gguf_writer *w;
  CHECK(vkft_gguf_writer_create(&w) == VKFT_OK);
  CHECK(vkft_gguf_set_value(w, "t.nest", vkft_gguf_kv_value(g, 0)) == VKFT_OK);
  char copy[600];
  path_of(copy, sizeof copy, "nested2.gguf");
  CHECK(vkft_gguf_writer_save(w, copy, produce, NULL) == VKFT_OK);
  vkft_gguf_writer_free(w);
  vkft_gguf_close(g);
  size_t m = 0;
  uint8_t *got = read_all(copy, &m);
  /* the copy is version 3 and padded to 32: the same bytes after the version field */
  CHECK(got && m == (n + 31) / 32 * 32 && !memcmp(got + 8, f + 8, n - 8));
  free(got);
}

/* ---- 3. damaged files ---- */

static int opens(const char *path, const uint8_t *data, size_t n) {
  FILE *f = vkft_fopen(path, "wb"); /* plain writes: hundreds of files, no fsync needed */
  if (!f) return -1;
  int written = fwrite(data, 1, n, f) == n;
  if (fclose(f) != 0 || !written) return -1;
  vkft_gguf *g = NULL;
  int ok = vkft_gguf_open(path, &g) == VKFT_OK;
  if (!ok) {
    /* one line naming the file */
    const char *m = vkft_error_message();
    if (!strstr(m, path) || strchr(m, '\n')) return -2;
  }
  if (g) { /* touch everything the accessors reach */
    for (int64_t i = 0; i < vkft_gguf_kv_count(g); i++) {
      vkft_gguf_iter it;
      vkft_gguf_value e;
      vkft_gguf_array_begin(vkft_gguf_kv_value(g, i), &it);
      while (vkft_gguf_array_next(&it, &e)) {
      }
    }
    volatile uint8_t sink = 0;
    for (int64_t i = 0; i < vkft_gguf_tensor_count(g); i++) {
      const vkft_gguf_tensor *t = vkft_gguf_tensor_at(g, i);
      for (uint64_t k = 0; k < t->size; k++) sink ^= t->data[k];
    }
    vkft_gguf_close(g);
  }
  return ok;
}

static void test_damage(void) {
  char src[600], bad[600];
  path_of(src, sizeof src, "full.gguf");
  path_of(bad, sizeof bad, "bad.gguf");
  write_full(src, 0);
  size_t n = 0;
  uint8_t *good = read_all(src, &n);
  if (!good) return;
  uint8_t *x = malloc(n);
  int refused = 0, crashed_or_unnamed = 0;
  /* every truncation is refused until the last tensor's bytes are whole (only its padding
   * may go) */
  vkft_gguf *g = NULL;
  CHECK(vkft_gguf_open(src, &g) == VKFT_OK);
  size_t head = 0, needed = 0;
  for (int64_t i = 0; g && i < vkft_gguf_tensor_count(g); i++) {
    const vkft_gguf_tensor *t = vkft_gguf_tensor_at(g, i);
    size_t end = (size_t)(vkft_gguf_data_offset(g) + t->offset + t->size);
    needed = end > needed ? end : needed;
  }
  if (g) head = (size_t)vkft_gguf_data_offset(g);
  vkft_gguf_close(g);
  for (size_t cut = 0; cut < n; cut++) {
    int r = opens(bad, good, cut);
    refused += r == 0;
    crashed_or_unnamed += r < 0 || (cut >= needed && r != 1);
  }
  CHECKF(refused == (int)needed && !crashed_or_unnamed,
         "truncations: %d of %zu refused, %d unnamed or wrong", refused, needed,
         crashed_or_unnamed);
  /* every single byte of the head set to 0xff, then to 0x7f: read or refused, never a crash */
  int unnamed = 0;
  for (size_t i = 0; i < head; i++) {
    for (int v = 0; v < 2; v++) {
      memcpy(x, good, n);
      x[i] = v ? 0x7f : 0xff;
      unnamed += opens(bad, x, n) < 0;
    }
  }
  CHECKF(!unnamed, "%d corruptions gave no message naming the file", unnamed);
  /* targeted damage, each refused with a message saying what */
  static const struct {
    size_t at;
    uint32_t value;
    int bytes;
    const char *message;
  } cases[] = {
      {0, 0x46554746, 4, "not a GGUF file"},      {4, 1, 4, "version 1"},
      {4, 0x03000000, 4, "big-endian"},           {8, 0xffffffff, 4, "more than the file can hold"},
      {24, 0xfffffff0, 4, "run past the end"}, /* first key's length */
      {24 + 8 + 20, 99, 4, "unknown value type"},
  };
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    memcpy(x, good, n);
    le_put(x + cases[c].at, cases[c].value, cases[c].bytes);
    CHECKF(opens(bad, x, n) == 0 && vkft_error_code() == VKFT_ERR_INPUT &&
               strstr(vkft_error_message(), cases[c].message),
           "case %zu: %s", c, vkft_error_message());
  }
  free(x);
  free(good);
}

/* a hand-made file with one tensor whose info is damaged in a given way */
static void test_tensor_damage(void) {
  static const struct {
    uint32_t type;
    uint64_t ne0, ne1, offset;
    const char *message; /* NULL: the file is good */
  } cases[] = {
      {0, 8, 1, 0, NULL},
      {77, 8, 1, 0, "unknown ggml type 77"},
      {12, 8, 1, 0, "not a multiple of Q4_K's block"},
      {0, 8, 1, 4, "not a multiple of the alignment"},
      {0, 8, 1, 32, "lies outside"},
      {0, 8, 1ull << 58, 0, "lies outside"},
      {0, 8, 1ull << 62, 0, "overflows"},
  };
  char path[600];
  path_of(path, sizeof path, "tensor.gguf");
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    uint8_t f[128] = {0};
    size_t n = 0;
    memcpy(f, "GGUF", 4), n += 4;
    n += le_put(f + n, 3, 4) + le_put(f + n + 4, 1, 8) + le_put(f + n + 12, 0, 8);
    n += le_put(f + n, 1, 8), f[n++] = 'w';
    n += le_put(f + n, 2, 4) + le_put(f + n + 4, cases[c].ne0, 8) +
         le_put(f + n + 12, cases[c].ne1, 8);
    n += le_put(f + n, cases[c].type, 4) + le_put(f + n + 4, cases[c].offset, 8);
    n = (n + 31) / 32 * 32 + 32; /* the data: 32 bytes */
    int r = opens(path, f, n);
    if (!cases[c].message)
      CHECKF(r == 1, "the good file: %s", vkft_error_message());
    else
      CHECKF(r == 0 && vkft_error_code() == VKFT_ERR_INPUT &&
                 strstr(vkft_error_message(), cases[c].message),
             "case %zu: %s", c, vkft_error_message());
  }
}

static void test_writer_errors(void) {
  char path[600];
  path_of(path, sizeof path, "short.gguf");
  vkft_gguf_writer *w;
  CHECK(vkft_gguf_writer_create(&w) == VKFT_OK);
  CHECK(vkft_gguf_add_tensor(w, "t", VKFT_GGML_F32, 1, (int64_t[]){4}) == VKFT_OK);
  static const float v[4] = {1, 2, 3, 4};
  blobs b = {.data = {(const uint8_t *)v}, .size = {16}, .short_by = 4};
  CHECK_ERR(vkft_gguf_writer_save(w, path, produce, &b), VKFT_ERR_INTERNAL,
            "12 bytes written, 16 expected");
  CHECK(!vkft_file_exists(path));
  CHECK(vkft_gguf_set_u32(w, "general.alignment", 48) != VKFT_OK);
  vkft_gguf_writer_free(w);
}

int main(void) {
  snprintf(dir, sizeof dir, "test_gguf_tmp");
  vkft_remove_tree(dir);
  if (vkft_mkdirs(dir) != VKFT_OK) return 1;
  test_hand_layout();
  test_round_trip(0);
  test_round_trip(64);
  test_nested_array();
  test_damage();
  test_tensor_damage();
  test_writer_errors();
  vkft_remove_tree(dir);
  return check_summary();
}
