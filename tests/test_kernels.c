/* The kernel variants (src/ops/matmul_kernels.c, src/ops/attention.c): every variant this device
 * can run, forced, passes every row of its family in the op table against the reference (on
 * lavapipe: the GPU kernels, which its automatic choice never takes); the GPU choice and the
 * self-check that disables a failing variant (a planted fault) and checks its fallback in turn;
 * forcing a variant the device lacks, or one that does not exist, fails with a message naming it.
 */
#include "check.h"

#include "vkft/dtype.h"
#include "vkft/error.h"
#include "vkft/kernels.h"
#include "vkft/opcases.h"
#include "vkft/platform.h"

#include <stdlib.h>
#include <string.h>

static int find(vkft_backend *be, const char *name) {
  int count;
  const vkft_kernel_variant *v = vkft_kernel_variants(be, &count);
  for (int i = 0; i < count; i++)
    if (!strcmp(v[i].name, name)) return i;
  return -1;
}

static int is_used(vkft_backend *be, const char *name) {
  int count, i = find(be, name);
  const vkft_kernel_variant *v = vkft_kernel_variants(be, &count);
  return i >= 0 && v[i].used && !v[i].disabled;
}

/* Every test row of a family ("matmul_*", "attention*", ...) on the device (the variant forced)
 * and on the reference backend: at least min_rows of them. */
static void family_rows(vkft_backend *vk, vkft_backend *ref, const char *variant,
                        const char *family, int min_rows) {
  vkft_backend *backends[2] = {vk, ref};
  int count, rows = 0;
  size_t n = strlen(family);
  const vkft_op_case *cases = vkft_op_cases(&count);
  for (int i = 0; i < count; i++) {
    const vkft_op_case *c = &cases[i];
    if (!(c->flags & VKFT_CASE_TEST) || strncmp(c->op, family, n) || (c->op[n] && c->op[n] != '_'))
      continue;
    vkft_op_result r[2];
    int status = vkft_op_case_run_on(backends, 2, c, 0, r);
    CHECKF(status == VKFT_OK, "%s %s %s: %s", variant, c->op, vkft_dtype_name(c->dtype),
           vkft_error_message());
    if (status != VKFT_OK) continue;
    rows++;
    CHECKF(r[0].ok && r[0].deterministic, "%s %s %s %s: error %.3e over %.3e%s", variant, c->op,
           vkft_dtype_name(c->dtype), r[0].shape, r[0].max_err, r[0].tol,
           r[0].deterministic ? "" : " (rerun differs)");
  }
  printf("%-20s %d %s rows within tolerance\n", variant, rows, family);
  CHECK(rows >= min_rows);
}

static void forced_variants(vkft_device *dev) {
  vkft_backend *vk, *ref;
  CHECK(vkft_backend_vk_create(dev, &vk) == VKFT_OK);
  CHECK(vkft_backend_ref_create(&ref) == VKFT_OK);
  int count;
  const vkft_kernel_variant *v = vkft_kernel_variants(vk, &count);
  CHECK(count >= 8);
  const vkft_device_info *info = vkft_device_get_info(dev);
  int tested = 0;
  for (int i = 0; i < count; i++) {
    const char *state = v[i].used ? "used" : v[i].available ? "available" : "absent";
    printf("%-20s %-9s %s\n", v[i].name, state, v[i].available ? v[i].detail : v[i].why);
    if (!v[i].available) {
      /* forcing what the device lacks fails, naming the kernel and why */
      CHECK_ERR(vkft_kernel_force(vk, i), VKFT_ERR_UNSUPPORTED, v[i].name);
      CHECK(v[i].why[0] != 0);
      continue;
    }
    CHECK(vkft_kernel_force(vk, i) == VKFT_OK);
    int matmul = !strcmp(v[i].family, "matmul");
    family_rows(vk, ref, v[i].name, v[i].family, matmul ? 90 : 35);
    /* and the ops that run matmuls inside, whose tolerances follow the kernel's rounding: with
     * the kernels that round their inputs (the fp32 ones are the automatic choice's in test_ops) */
    if (matmul && strstr(v[i].name, "coopmat")) {
      family_rows(vk, ref, v[i].name, "cross_entropy", 15);
      family_rows(vk, ref, v[i].name, "lora", 10);
    }
    tested++;
  }
  CHECK(vkft_kernel_force(vk, -1) == VKFT_OK);
  /* a CPU driver: the register kernel for everything, the GPU kernels only when forced */
  if (!strcmp(info->type, "cpu")) {
    CHECK(is_used(vk, "matmul_register"));
    CHECK(!is_used(vk, "matmul_tiled_64") && !is_used(vk, "matmul_tiled_128"));
    CHECK(is_used(vk, "attention_flat") && !is_used(vk, "attention_tiled"));
    CHECK(tested >= 6); /* the register kernel, the three tiled ones, both attention kernels */
  }
  /* without a cooperative-matrix shape the coopmat kernels are absent, saying why; their code
   * runs all the same, the matrices emulated (matmul_coopmat_emu, forced above), where the
   * subgroup size can be fixed */
  if (!info->coopmat_m) CHECK(!v[find(vk, "matmul_coopmat_64")].available);
  if (info->subgroup_size_control || info->subgroup_min == info->subgroup_max)
    CHECK(v[find(vk, "matmul_coopmat_emu")].available);
  CHECK(!is_used(vk, "matmul_coopmat_emu")); /* never the automatic choice */
  CHECK(vkft_kernel_disable(vk, find(vk, "matmul_register")) == VKFT_ERR);
  CHECK(vkft_kernel_disable(vk, find(vk, "attention_flat")) == VKFT_ERR);
  vkft_backend_destroy(vk);
  vkft_backend_destroy(ref);
}

typedef struct seen {
  char disabled[4][32];
  int disabled_count, rows, failed_rows;
} seen;

static void on_event(const vkft_selftest_event *e, void *user) {
  seen *s = user;
  if (e->disabled && s->disabled_count < 4)
    snprintf(s->disabled[s->disabled_count++], sizeof s->disabled[0], "%s", e->variant);
  if (e->row) s->rows++, s->failed_rows += !e->result || !e->result->ok;
}

/* The GPU choice on this device, a fault planted in one of its kernels: the self-check disables
 * that kernel, checks the fallback that takes its shapes over, and the run goes on correctly. */
static void self_check_disables(vkft_device *dev) {
  vkft_setenv("VKFT_MATMUL_CHOICE", "gpu");
  vkft_setenv("VKFT_KERNEL_FAULT", "matmul_tiled_32");
  vkft_backend *vk;
  int made = vkft_backend_vk_create(dev, &vk) == VKFT_OK;
  vkft_setenv("VKFT_KERNEL_FAULT", NULL);
  CHECK(made);
  if (!made) return;
  CHECK(is_used(vk, "matmul_tiled_32") && is_used(vk, "matmul_tiled_128"));
  CHECK(!is_used(vk, "matmul_register")); /* the tiled kernels cover every shape */
  seen s = {0};
  int failed = -1;
  CHECK(vkft_selftest(vk, VKFT_CASE_SELFTEST, "matmul", on_event, &s, &failed) == VKFT_OK);
  CHECK(failed == 0);
  CHECK(s.disabled_count == 1 && !strcmp(s.disabled[0], "matmul_tiled_32"));
  CHECK(s.failed_rows > 0); /* the planted fault was seen */
  CHECK(!is_used(vk, "matmul_tiled_32"));
  CHECK(is_used(vk, "matmul_register")); /* small shapes fall back to it, and it was checked */
  /* after the self-check the automatic choice gives right results again */
  failed = -1;
  s = (seen){0};
  CHECK(vkft_selftest(vk, VKFT_CASE_SELFTEST, "matmul", on_event, &s, &failed) == VKFT_OK &&
        failed == 0);
  CHECK(s.failed_rows == 0 && s.disabled_count == 0);
  vkft_backend_destroy(vk);

  /* the same for the attention kernels: the GPU choice takes the tiled one; a fault planted
   * there disables it and the flat one takes over, checked */
  vkft_setenv("VKFT_KERNEL_FAULT", "attention_tiled");
  made = vkft_backend_vk_create(dev, &vk) == VKFT_OK;
  vkft_setenv("VKFT_KERNEL_FAULT", NULL);
  CHECK(made);
  if (!made) return;
  CHECK(is_used(vk, "attention_tiled") && !is_used(vk, "attention_flat"));
  s = (seen){0};
  failed = -1;
  CHECK(vkft_selftest(vk, VKFT_CASE_SELFTEST, "attention", on_event, &s, &failed) == VKFT_OK);
  CHECK(failed == 0);
  CHECK(s.disabled_count == 1 && !strcmp(s.disabled[0], "attention_tiled"));
  CHECK(s.failed_rows > 0);
  CHECK(is_used(vk, "attention_flat") && !is_used(vk, "attention_tiled"));
  vkft_backend_destroy(vk);

  /* a fault in the last fallback cannot be disabled away: the self-check fails */
  vkft_setenv("VKFT_KERNEL_FAULT", "matmul_register");
  vkft_setenv("VKFT_MATMUL_CHOICE", "cpu");
  made = vkft_backend_vk_create(dev, &vk) == VKFT_OK;
  vkft_setenv("VKFT_KERNEL_FAULT", NULL);
  vkft_setenv("VKFT_MATMUL_CHOICE", NULL);
  CHECK(made);
  if (!made) return;
  s = (seen){0};
  CHECK(vkft_selftest(vk, VKFT_CASE_SELFTEST, "matmul_nt", on_event, &s, &failed) == VKFT_OK);
  CHECK(failed > 0 && s.disabled_count == 0);
  vkft_backend_destroy(vk);
}

/* A backend made with `var` naming an unknown kernel fails, naming the variable and the value;
 * then one made with `good`: returned (NULL when it could not be made). */
static vkft_backend *named_kernel(vkft_device *dev, const char *var, const char *bad,
                                  const char *good) {
  char want[80];
  snprintf(want, sizeof want, "%s=%s", var, bad);
  vkft_setenv(var, bad);
  vkft_backend *vk = NULL;
  CHECK_ERR(vkft_backend_vk_create(dev, &vk), VKFT_ERR_INPUT, want);
  CHECK(vk == NULL);
  vkft_setenv(var, good);
  if (vkft_backend_vk_create(dev, &vk) != VKFT_OK) vk = NULL;
  CHECKF(vk != NULL, "%s=%s: %s", var, good, vkft_error_message());
  vkft_setenv(var, NULL);
  return vk;
}

/* VKFT_MATMUL and VKFT_ATTENTION name kernels: an unknown one fails backend creation, naming the
 * variable; a known one is the kernel used (and the one the self-check checks). */
static void bad_names(vkft_device *dev) {
  vkft_backend *vk = named_kernel(dev, "VKFT_MATMUL", "tiled_99", "tiled_64");
  if (!vk) return;
  CHECK(is_used(vk, "matmul_tiled_64") && !is_used(vk, "matmul_register"));
  CHECK(vkft_kernel_force(vk, find(vk, "matmul_tiled_32")) == VKFT_OK);
  CHECK(vkft_kernel_force(vk, -1) == VKFT_OK); /* back to VKFT_MATMUL's */
  seen s = {0};
  int failed = -1;
  CHECK(vkft_selftest(vk, VKFT_CASE_SELFTEST, "matmul_nt", on_event, &s, &failed) == VKFT_OK);
  CHECK(failed == 0 && s.rows > 0);
  vkft_backend_destroy(vk);

  vk = named_kernel(dev, "VKFT_ATTENTION", "blocked", "tiled");
  if (!vk) return;
  CHECK(is_used(vk, "attention_tiled") && !is_used(vk, "attention_flat"));
  vkft_backend_destroy(vk);
}

/* One matmul on `be`: C (M x N) from A and B made of a fixed pattern, read back into out. A
 * starts `skew` elements into its buffer (skew 1: not 16-byte aligned, the scalar loop). */
static int run_matmul(vkft_backend *be, vkft_matmul_orient o, vkft_dtype wt, int64_t M, int64_t N,
                      int64_t K, int skew, float *out) {
  vkft_tensor a, b, c;
  int64_t na = M * K + skew, nb = N * K, n = na > nb ? na : nb;
  float *h = malloc((size_t)(n > M * N ? n : M * N) * sizeof *h);
  if (!h) return VKFT_ERR;
  for (int64_t i = 0; i < n || i < M * N; i++) h[i] = (float)((i * 7919 + 13) % 61) / 16.0f - 1.8f;
  int status = vkft_tensor_alloc(be, VKFT_F32, na, &a);
  if (status == VKFT_OK && (status = vkft_tensor_alloc(be, wt, nb, &b)) != VKFT_OK)
    vkft_tensor_free(be, &a);
  if (status != VKFT_OK) {
    free(h);
    return status;
  }
  uint16_t *h16 = malloc((size_t)nb * sizeof *h16);
  for (int64_t i = 0; h16 && i < nb; i++) h16[i] = vkft_f32_to_f16(h[i]);
  if (h16 && vkft_tensor_alloc(be, VKFT_F32, M * N, &c) == VKFT_OK) {
    vkft_tensor av = vkft_tensor_view(&a, skew, M * K);
    status = vkft_tensor_write(be, &a, h) ||
             vkft_tensor_write(be, &b, wt == VKFT_F16 ? (const void *)h16 : h) ||
             vkft_tensor_write(be, &c, h) || vkft_begin(be) ||
             vkft_matmul(be, o, &av, &b, &c, M, N, K, 0.5f, 0.25f) || vkft_end(be) ||
             vkft_tensor_read(be, &c, out);
    vkft_tensor_free(be, &c);
  } else {
    status = VKFT_ERR;
  }
  vkft_tensor_free(be, &a);
  vkft_tensor_free(be, &b);
  free(h16);
  free(h);
  return status ? VKFT_ERR : VKFT_OK;
}

/* The register kernel's tile (src/ops/matmul.c: rm x rn per invocation, wn along n) changes no
 * bit: every tile sums each output in the same k order. Each forced tile against the automatic
 * choice, on shapes that cut tiles at every edge (M, N not multiples, lanes past N, K not a
 * multiple of 4, an unaligned A: the scalar loop), in the three orientations, fp32 and fp16
 * weights. */
static void register_tiles(vkft_device *dev) {
  static const int64_t shapes[][3] = {
      {67, 130, 68}, {5, 17, 9}, {1, 70, 64}, {3, 33, 12}, {130, 40, 20}};
  static const char *const tiles[][3] = {
      {"4", "4", "4"}, {"8", "4", "8"}, {"16", "8", "4"}, {"32", "4", "16"}, {"64", "8", "8"}};
  vkft_backend *def;
  CHECK(vkft_backend_vk_create(dev, &def) == VKFT_OK);
  if (!def) return;
  int compared = 0;
  for (size_t t = 0; t < sizeof tiles / sizeof tiles[0]; t++) {
    vkft_setenv("VKFT_MATMUL_WN", tiles[t][0]);
    vkft_setenv("VKFT_MATMUL_RM", tiles[t][1]);
    vkft_setenv("VKFT_MATMUL_RN", tiles[t][2]);
    vkft_backend *be = NULL;
    CHECK(vkft_backend_vk_create(dev, &be) == VKFT_OK);
    vkft_setenv("VKFT_MATMUL_WN", NULL);
    vkft_setenv("VKFT_MATMUL_RM", NULL);
    vkft_setenv("VKFT_MATMUL_RN", NULL);
    if (!be) continue;
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
      for (int o = 0; o < 3; o++)
        for (int w = 0; w < 2; w++)
          for (int skew = 0; skew < 2; skew++) {
            int64_t M = shapes[i][0], N = shapes[i][1], K = shapes[i][2];
            vkft_dtype wt = w ? VKFT_F16 : VKFT_F32;
            if (o == VKFT_MATMUL_TN && wt != VKFT_F32) continue;
            float *want = malloc((size_t)(M * N) * sizeof *want),
                  *got = malloc((size_t)(M * N) * sizeof *got);
            CHECK(want && got);
            if (want && got) {
              CHECK(run_matmul(def, (vkft_matmul_orient)o, wt, M, N, K, skew, want) == VKFT_OK);
              CHECK(run_matmul(be, (vkft_matmul_orient)o, wt, M, N, K, skew, got) == VKFT_OK);
              CHECKF(!memcmp(want, got, (size_t)(M * N) * sizeof *got),
                     "tile %s/%s/%s orientation %d %s %lldx%lldx%lld skew %d: other bits",
                     tiles[t][0], tiles[t][1], tiles[t][2], o, vkft_dtype_name(wt), (long long)M,
                     (long long)N, (long long)K, skew);
              compared++;
            }
            free(want);
            free(got);
          }
    vkft_backend_destroy(be);
  }
  printf("register tiles: %d products bit-identical to the automatic tile\n", compared);
  CHECK(compared == 5 * 5 * 5 * 2);
  vkft_backend_destroy(def);
}

int main(void) {
  vkft_device *dev;
  if (vkft_device_create(&(vkft_device_desc){.index = -1, .validate = -1}, &dev) != VKFT_OK) {
    fprintf(stderr, "test_kernels: %s\n", vkft_error_message());
    return 1;
  }
  printf("device: %s\n", vkft_device_get_info(dev)->name);
  forced_variants(dev);
  self_check_disables(dev);
  bad_names(dev);
  register_tiles(dev);
  CHECKF(vkft_device_validation_errors(dev) == 0, "%d validation messages",
         vkft_device_validation_errors(dev));
  vkft_device_destroy(dev);
  return check_summary();
}
