/* Every op-table row on the Vulkan device and on the C reference backend against the
 * double-precision C reference, with the measured error and tolerance printed; plus
 * bit-identical reruns, zero validation messages, and the memory paths (staging transfers,
 * >128 MiB tensors, out-of-memory). */
#include "backends.h"
#include "check.h"

#include "vkft/error.h"
#include "vkft/opcases.h"
#include "vkft/platform.h"

#include <stdlib.h>
#include <string.h>

static void run_cases(vkft_backend *vk, vkft_backend *ref) {
  vkft_backend *backends[2] = {vk, ref};
  int count;
  const vkft_op_case *cases = vkft_op_cases(&count);
  for (int i = 0; i < count; i++) {
    const vkft_op_case *c = &cases[i];
    if (!(c->flags & VKFT_CASE_TEST)) continue;
    vkft_op_result r[2];
    int status = vkft_op_case_run_on(backends, 2, c, 0, r);
    CHECKF(status == VKFT_OK, "%s %s: %s", c->op, vkft_dtype_name(c->dtype), vkft_error_message());
    if (status != VKFT_OK) continue;
    for (int b = 0; b < 2; b++) {
      const char *be = vkft_backend_name(backends[b]);
      printf("%-4s %-9s %-14s %-5s %-18s err %.3e  tol %.3e (%s)%s\n", r[b].ok ? "ok" : "FAIL", be,
             c->op, vkft_dtype_name(c->dtype), r[b].shape, r[b].max_err, r[b].tol, r[b].output,
             r[b].deterministic ? "" : "  NOT BIT-IDENTICAL ON RERUN");
      CHECKF(r[b].ok, "%s %s %s on %s: %s error %.3e over tolerance %.3e", c->op,
             vkft_dtype_name(c->dtype), r[b].shape, be, r[b].output, r[b].max_err, r[b].tol);
      CHECKF(r[b].deterministic, "%s %s %s on %s: rerun differs", c->op, vkft_dtype_name(c->dtype),
             r[b].shape, be);
    }
  }
}

/* The table row with this op, dtype and dimensions (NULL: none). */
static const vkft_op_case *find_row(const char *op, vkft_dtype dtype, const int64_t d[4]) {
  int count;
  const vkft_op_case *cases = vkft_op_cases(&count);
  for (int i = 0; i < count; i++)
    if (!strcmp(cases[i].op, op) && cases[i].dtype == dtype &&
        !memcmp(cases[i].d, d, sizeof cases[i].d))
      return &cases[i];
  return NULL;
}

/* The reference backend runs the same op API: a small matmul through vkft_matmul on both
 * backends must agree (the whole-model comparison later rests on this). */
static void backends_agree(vkft_backend *vk, vkft_backend *ref) {
  enum { M = 5, N = 7, K = 9 };
  float a[M * K], b[N * K], c_ref[M * N], c_vk[M * N];
  for (int i = 0; i < M * K; i++) a[i] = (float)((i * 37) % 11) - 5.0f;
  for (int i = 0; i < N * K; i++) b[i] = (float)((i * 17) % 13) * 0.25f - 1.5f;
  vkft_backend *bes[2] = {ref, vk};
  float *outs[2] = {c_ref, c_vk};
  for (int k = 0; k < 2; k++) {
    vkft_tensor ta, tb, tc;
    CHECK(vkft_tensor_alloc(bes[k], VKFT_F32, M * K, &ta) == VKFT_OK);
    CHECK(vkft_tensor_alloc(bes[k], VKFT_F32, N * K, &tb) == VKFT_OK);
    CHECK(vkft_tensor_alloc(bes[k], VKFT_F32, M * N, &tc) == VKFT_OK);
    vkft_tensor_write(bes[k], &ta, a);
    vkft_tensor_write(bes[k], &tb, b);
    CHECK(vkft_begin(bes[k]) == VKFT_OK);
    CHECK(vkft_matmul(bes[k], VKFT_MATMUL_NT, &ta, &tb, &tc, M, N, K, 1.0f, 0.0f) == VKFT_OK);
    CHECK(vkft_end(bes[k]) == VKFT_OK);
    vkft_tensor_read(bes[k], &tc, outs[k]);
    vkft_tensor_free(bes[k], &ta);
    vkft_tensor_free(bes[k], &tb);
    vkft_tensor_free(bes[k], &tc);
  }
  /* small integers and quarters: every partial sum is exact in fp32, so the bits must match */
  CHECK(memcmp(c_ref, c_vk, sizeof c_ref) == 0);
}

/* Shape and dtype errors are values naming the op and the argument. */
static void op_errors(vkft_backend *vk) {
  vkft_tensor a, b, c;
  CHECK(vkft_tensor_alloc(vk, VKFT_F32, 6, &a) == VKFT_OK);
  CHECK(vkft_tensor_alloc(vk, VKFT_BF16, 6, &b) == VKFT_OK);
  CHECK(vkft_tensor_alloc(vk, VKFT_F32, 3, &c) == VKFT_OK);
  CHECK(vkft_begin(vk) == VKFT_OK);
  CHECK_ERR(vkft_matmul(vk, VKFT_MATMUL_NT, &a, &b, &c, 2, 2, 3, 1, 0), VKFT_ERR_INPUT,
            "matmul: C");
  CHECK_ERR(vkft_matmul(vk, VKFT_MATMUL_TN, &a, &b, &c, 2, 2, 3, 1, 0), VKFT_ERR_INPUT,
            "dtype bf16");
  CHECK(vkft_end(vk) == VKFT_OK);
  vkft_tensor_free(vk, &a);
  vkft_tensor_free(vk, &b);
  vkft_tensor_free(vk, &c);
}

/* Allocations past the budget fail with a clear message instead of crashing. */
static void out_of_memory(void) {
  vkft_setenv("VKFT_MEMORY_LIMIT_MB", "64");
  vkft_device *dev;
  int made = vkft_device_create(&(vkft_device_desc){.index = -1, .validate = -1}, &dev) == VKFT_OK;
  vkft_setenv("VKFT_MEMORY_LIMIT_MB", NULL);
  CHECKF(made, "device: %s", vkft_error_message());
  if (!made) return;
  vkft_buffer small, big;
  CHECK(vkft_buffer_alloc(dev, 1 << 20, &small) == VKFT_OK);
  CHECK_ERR(vkft_buffer_alloc(dev, 200u << 20, &big), VKFT_ERR_OOM, "out of device memory");
  vkft_buffer_free(dev, &small);
  CHECK(vkft_device_validation_errors(dev) == 0);
  vkft_device_destroy(dev);
}

/* The staging path (what discrete GPUs use) on a device whose memory is host-visible. */
static void staging_transfers(void) {
  vkft_setenv("VKFT_FORCE_STAGING", "1");
  vkft_device *dev;
  int made = vkft_device_create(&(vkft_device_desc){.index = -1, .validate = -1}, &dev) == VKFT_OK;
  vkft_setenv("VKFT_FORCE_STAGING", NULL);
  CHECKF(made, "device: %s", vkft_error_message());
  if (!made) return;
  size_t n = (40u << 20) / 4 + 3; /* more than one 32 MiB staging chunk, odd length */
  uint32_t *src = malloc(n * 4), *dst = malloc(n * 4);
  for (size_t i = 0; i < n; i++) src[i] = (uint32_t)(i * 2654435761u);
  vkft_buffer buf;
  CHECK(vkft_buffer_alloc(dev, n * 4, &buf) == VKFT_OK);
  CHECK(buf.mapped == NULL);
  CHECK(vkft_buffer_upload(dev, &buf, 0, src, n * 4) == VKFT_OK);
  memset(dst, 0, n * 4);
  CHECK(vkft_buffer_download(dev, &buf, 0, dst, n * 4) == VKFT_OK);
  CHECK(memcmp(src, dst, n * 4) == 0);
  /* a matmul with C read and written, through staging buffers */
  vkft_backend *vk;
  made = vkft_backend_vk_create(dev, &vk) == VKFT_OK;
  CHECKF(made, "backend: %s", vkft_error_message());
  const vkft_op_case *row = find_row("matmul_nt", VKFT_F32, (const int64_t[4]){17, 33, 65, 1});
  CHECK(row != NULL);
  vkft_op_result r;
  if (made && row) {
    CHECK(vkft_op_case_run(vk, row, 0, &r) == VKFT_OK && r.ok && r.deterministic);
    vkft_backend_destroy(vk);
  }
  vkft_buffer_free(dev, &buf);
  CHECK(vkft_device_validation_errors(dev) == 0);
  vkft_device_destroy(dev);
  free(src);
  free(dst);
}

int main(void) {
  vkft_device *dev;
  vkft_backend *vk, *ref;
  if (!open_backends("test_ops", &dev, &vk, &ref)) return 1;
  printf("device: %s\n", vkft_device_get_info(dev)->name);
  run_cases(vk, ref);
  backends_agree(vk, ref);
  op_errors(vk);
  CHECKF(vkft_device_validation_errors(dev) == 0, "%d validation messages",
         vkft_device_validation_errors(dev));
  vkft_backend_destroy(ref);
  vkft_backend_destroy(vk);
  vkft_device_destroy(dev);
  out_of_memory();
  staging_transfers();
  return check_summary();
}
