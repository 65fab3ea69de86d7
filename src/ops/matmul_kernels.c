/* The matmul kernel variants of a Vulkan device and the choice among them for each call:
 *   register      shaders/matmul.comp: big register tiles, no shared memory. For CPU drivers
 *                 (lavapipe), where it is the fastest, and everyone's last fallback.
 *   tiled_B       shaders/matmul_tiled.glsl, MATMUL_TILED: B x B tiles of C through shared
 *                 memory, fp32 SIMT (any GPU).
 *   coopmat_B     the same staging with VK_KHR_cooperative_matrix: fp16 inputs (scaled per row
 *                 by powers of two), fp32 accumulation; where the device lists an fp16 shape.
 *   coopmat_emu   coopmat_64 with the matrices emulated by plain subgroup code
 *                 (shaders/coopmat.glsl), 16 x 16 x 16: never chosen, forced by the tests so
 *                 that the cooperative-matrix kernel's own code runs on devices without them.
 * Tile sizes are specialization constants, derived from what the device reports (type CPU vs
 * GPU, subgroup size and whether it can be required, shared memory, workgroup limits): nothing
 * depends on the vendor. A shape takes the biggest tile that still gives the device enough
 * workgroups (a table by device type), its orientation and dtype never matter. */
#include "core_util.h"

#include "vkft/kernels.h"

#include <stdio.h>
#include <string.h>

/* Tile configurations, in the order of the backend's variant table (vkft_kernel_variants). */
typedef struct matmul_config {
  const char *name;
  int kind; /* KIND_* */
  uint32_t bm, bn, bk;
  uint32_t tm, tn; /* tiled: rows and columns per invocation */
  uint32_t wm, wn; /* coopmat: rows and columns per subgroup */
  int emulated;    /* coopmat: shaders/coopmat.glsl's emulation, 16 x 16 x 16 */
} matmul_config;
enum { KIND_REGISTER, KIND_TILED, KIND_COOPMAT };

static const matmul_config configs[MATMUL_KERNEL_COUNT] = {
    [MATMUL_REGISTER] = {"register", KIND_REGISTER, 0, 0, 0, 0, 0, 0, 0, 0},
    [MATMUL_TILED_32] = {"tiled_32", KIND_TILED, 32, 32, 16, 2, 2, 0, 0, 0},
    [MATMUL_TILED_64] = {"tiled_64", KIND_TILED, 64, 64, 16, 4, 4, 0, 0, 0},
    [MATMUL_TILED_128] = {"tiled_128", KIND_TILED, 128, 128, 16, 8, 8, 0, 0, 0},
    [MATMUL_COOPMAT_64] = {"coopmat_64", KIND_COOPMAT, 64, 64, 32, 0, 0, 32, 32, 0},
    [MATMUL_COOPMAT_128] = {"coopmat_128", KIND_COOPMAT, 128, 128, 32, 0, 0, 64, 32, 0},
    [MATMUL_COOPMAT_EMU] = {"coopmat_emu", KIND_COOPMAT, 64, 64, 32, 0, 0, 32, 32, 1},
};

void kernel_coopmat_shape(const vkft_device_info *info, int emulated, uint32_t mnk[3]) {
  mnk[0] = emulated ? 16 : info->coopmat_m;
  mnk[1] = emulated ? 16 : info->coopmat_n;
  mnk[2] = emulated ? 16 : info->coopmat_k;
}

/* Workgroups that keep a device busy, by device type: a big discrete GPU has ~100 compute units
 * and wants several workgroups on each; integrated and virtual GPUs have a few. */
static uint64_t enough_groups(const vkft_device_info *info) {
  return !strcmp(info->type, "discrete") ? 256 : 32;
}

static uint32_t workgroup_size(const matmul_config *c, uint32_t subgroup) {
  if (c->kind == KIND_TILED) return (c->bm / c->tm) * (c->bn / c->tn);
  return (c->bm / c->wm) * (c->bn / c->wn) * subgroup;
}

static uint32_t shared_bytes(const matmul_config *c, const vkft_device_info *info) {
  if (c->kind == KIND_TILED) return 4 * c->bk * (c->bm + 1 + c->bn + 1);
  uint32_t subgroups = (c->bm / c->wm) * (c->bn / c->wn), mnk[3];
  kernel_coopmat_shape(info, c->emulated, mnk);
  return 2 * (c->bk + 8) * (c->bm + c->bn) + 16 * (c->bm + c->bn) + 4 * subgroups * mnk[0] * mnk[1];
}

uint32_t kernel_coopmat_subgroup(const vkft_device_info *info) {
  if (info->subgroup_size_control) return info->subgroup_size;
  return info->subgroup_min == info->subgroup_max ? info->subgroup_size : 0;
}

/* The embedded shader of a kernel kind for an orientation and weight dtype, "matmul_tiled_nt_f16":
 * names made from the dtype's name, so a weight type added to shaders/shaders.cmake's list gets
 * its GPU variants without a line here. Static storage: a dispatch's label must outlive it. */
static const char *shader_name(int kind, vkft_matmul_orient orient, vkft_dtype dtype) {
  static char names[4][3][VKFT_DTYPE_COUNT][40];
  static const char *const kinds[4] = {"", "tiled_", "coopmat_", "coopemu_"}, *const orients[3] = {
                                                                                  "nt", "nn", "tn"};
  char *name = names[kind][orient][dtype];
  if (!name[0])
    snprintf(name, sizeof names[0][0][0], "matmul_%s%s_%s", kinds[kind], orients[orient],
             vkft_dtype_name(dtype));
  return name;
}

static int shader_kind(const matmul_config *c) {
  return c->emulated ? 3 : c->kind;
}

static void describe(vkft_kernel_variant *v, const matmul_config *c, const vkft_device_info *info) {
  snprintf(v->name, sizeof v->name, "matmul_%s", c->name);
  v->family = "matmul";
  v->available = 1;
  if (c->kind == KIND_REGISTER) {
    snprintf(v->detail, sizeof v->detail, "register tiles up to 16x16 per invocation, fp32");
    return;
  }
  uint32_t sg = kernel_coopmat_subgroup(info), wg = workgroup_size(c, sg ? sg : 1), mnk[3];
  kernel_coopmat_shape(info, c->emulated, mnk);
  if (c->kind == KIND_TILED)
    snprintf(v->detail, sizeof v->detail,
             "%ux%ux%u tiles, %ux%u per invocation, %u invocations, fp32", c->bm, c->bn, c->bk,
             c->tm, c->tn, wg);
  else
    snprintf(v->detail, sizeof v->detail,
             "%ux%ux%u tiles, %ux%u per subgroup of %u, %ux%ux%u fp16 matrices%s, fp32 sums", c->bm,
             c->bn, c->bk, c->wm, c->wn, sg, mnk[0], mnk[1], mnk[2],
             c->emulated ? " emulated (tests)" : "");
  const char *why = NULL;
  if (!vkft_spirv_find(shader_name(shader_kind(c), VKFT_MATMUL_NT, VKFT_F32)))
    why = "not compiled in (this build's glslang or spirv-val could not make it)";
  else if (c->kind == KIND_COOPMAT && !c->emulated && !info->coopmat_m)
    why = info->coopmat_why;
  else if (c->kind == KIND_COOPMAT && !sg)
    why = "the subgroup size varies and cannot be required";
  else if (c->emulated && (sg < 4 || sg > 256))
    why = "the emulation needs subgroups of 4 to 256 invocations";
  else if (wg > info->max_workgroup_invocations)
    why = "workgroup larger than the device allows";
  else if (shared_bytes(c, info) > info->max_shared_memory)
    why = "needs more shared memory than the device has";
  if (why) {
    v->available = 0;
    snprintf(v->why, sizeof v->why, "%s", why);
  }
}

/* The variants a shape may take, best first: the first available and enabled one is used. */
static int candidates(const vkft_backend *be, int64_t M, int64_t N, int list[MATMUL_KERNEL_COUNT]) {
  const vkft_device_info *info = vkft_device_get_info(be->dev);
  int n = 0, gpu = kernel_choice_is_gpu(be);
  if (gpu) {
    uint64_t enough = enough_groups(info);
    uint64_t big = (uint64_t)((M + 127) / 128) * (uint64_t)((N + 127) / 128),
             mid = (uint64_t)((M + 63) / 64) * (uint64_t)((N + 63) / 64);
    int is_big = M >= 128 && N >= 128 && big >= enough,
        is_mid = M >= 64 && N >= 64 && mid >= enough;
    if (M >= 16 && N >= 16) { /* smaller products waste most of a cooperative matrix */
      if (is_big) list[n++] = MATMUL_COOPMAT_128;
      list[n++] = MATMUL_COOPMAT_64;
    }
    if (is_big) list[n++] = MATMUL_TILED_128;
    if (is_mid) list[n++] = MATMUL_TILED_64;
    list[n++] = MATMUL_TILED_32;
  }
  list[n++] = MATMUL_REGISTER;
  return n;
}

int kernel_choice_is_gpu(const vkft_backend *be) {
  int choice = be->tuning.matmul_choice;
  return choice ? choice == 1 : !!strcmp(vkft_device_get_info(be->dev)->type, "cpu");
}

static int first_enabled(const vkft_backend *be, const int *list, int n) {
  for (int i = 0; i < n; i++)
    if (be->variants[list[i]].available && !be->variants[list[i]].disabled) return list[i];
  return MATMUL_REGISTER;
}

/* `used`: the variants some shape takes (shapes of every class the choice tells apart, on any
 * device). */
void matmul_kernels_refresh(vkft_backend *be) {
  static const int64_t shapes[][2] = {{16384, 16384}, {4096, 4096}, {2048, 2048}, {1024, 1024},
                                      {512, 512},     {256, 256},   {128, 128},   {64, 64},
                                      {16, 4096},     {8, 4096},    {4096, 8}};
  for (int v = 0; v < MATMUL_KERNEL_COUNT; v++) be->variants[v].used = 0;
  int env = be->env_matmul;
  if (env >= 0 && be->variants[env].available && !be->variants[env].disabled) {
    be->variants[env].used = 1; /* VKFT_MATMUL: this kernel for everything */
    return;
  }
  for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
    int list[MATMUL_KERNEL_COUNT];
    int n = candidates(be, shapes[s][0], shapes[s][1], list);
    be->variants[first_enabled(be, list, n)].used = 1;
  }
}

int matmul_kernels_init(vkft_backend *be) {
  const vkft_device_info *info = vkft_device_get_info(be->dev);
  be->variant_count = KERNEL_VARIANT_COUNT;
  be->forced_matmul = be->env_matmul = -1;
  for (int v = 0; v < MATMUL_KERNEL_COUNT; v++) describe(&be->variants[v], &configs[v], info);
  const char *want = be->tuning.matmul_kernel;
  for (int v = 0; *want && v < MATMUL_KERNEL_COUNT; v++)
    if (!strcmp(want, configs[v].name)) be->forced_matmul = be->env_matmul = v;
  matmul_kernels_refresh(be);
  if (!*want || be->env_matmul >= 0) return VKFT_OK;
  return vkft_error("VKFT_MATMUL=%s: no such matmul kernel (register, tiled_32, tiled_64, "
                    "tiled_128, coopmat_64, coopmat_128, coopmat_emu)",
                    want);
}

int matmul_kernel_choose(const vkft_backend *be, int64_t M, int64_t N, int *variant) {
  /* forced: by the self-check, or by VKFT_MATMUL unless the self-check disabled that kernel */
  int forced = be->forced_matmul;
  if (forced >= 0 && forced == be->env_matmul && be->variants[forced].disabled) forced = -1;
  if (forced >= 0) {
    const vkft_kernel_variant *v = &be->variants[forced];
    if (!v->available)
      return vkft_error_with(VKFT_ERR_UNSUPPORTED, "matmul: kernel %s is not available on %s: %s",
                             v->name, vkft_device_get_info(be->dev)->name, v->why);
    *variant = forced;
    return VKFT_OK;
  }
  int list[MATMUL_KERNEL_COUNT];
  int n = candidates(be, M, N, list);
  *variant = first_enabled(be, list, n);
  return VKFT_OK;
}

int matmul_kernel_desc(const vkft_backend *be, int variant, vkft_matmul_orient orient,
                       vkft_dtype weight, int64_t M, int64_t N, vkft_dispatch_desc *d) {
  const matmul_config *c = &configs[variant];
  const vkft_device_info *info = vkft_device_get_info(be->dev);
  uint32_t sg = c->kind == KIND_COOPMAT ? kernel_coopmat_subgroup(info) : 0;
  uint32_t wg = workgroup_size(c, sg);
  d->shader = shader_name(shader_kind(c), orient, weight);
  uint64_t gx = (uint64_t)((N + c->bn - 1) / c->bn), gy = (uint64_t)((M + c->bm - 1) / c->bm);
  if (gx > info->max_workgroup_count[0] || gy > info->max_workgroup_count[1])
    return vkft_error("matmul: %lldx%lld needs more workgroups than the device allows",
                      (long long)M, (long long)N);
  d->groups[0] = (uint32_t)gx, d->groups[1] = (uint32_t)gy, d->groups[2] = 1;
  uint32_t spec_tiled[] = {wg, c->bm, c->bn, c->bk, c->tm, c->tn};
  uint32_t mnk[3];
  kernel_coopmat_shape(info, c->emulated, mnk);
  uint32_t spec_coopmat[] = {wg, c->bm, c->bn, c->bk, mnk[0], mnk[1], mnk[2], c->wm, c->wn, sg};
  d->spec_count = c->kind == KIND_TILED ? 6 : 10;
  memcpy(d->spec, c->kind == KIND_TILED ? spec_tiled : spec_coopmat,
         sizeof(uint32_t) * (size_t)d->spec_count);
  d->subgroup_size = sg && info->subgroup_size_control ? sg : 0;
  return VKFT_OK;
}

void matmul_kernel_precision(const vkft_backend *be, int variant, vkft_dtype weight,
                             vkft_matmul_orient orient, vkft_matmul_precision *out) {
  (void)be;
  *out = (vkft_matmul_precision){.accumulate_unit = 1.0 / 16777216.0};
  if (configs[variant].kind != KIND_COOPMAT) return;
  /* fp16 staging: round to nearest or toward zero (Vulkan leaves the choice to the driver:
   * 2^-10 covers both); what lies 2^-27 below its row's largest |value| may be flushed (see
   * matmul_tiled.glsl); fp16 weights are staged as they are. Tensor cores add in fp32 but may
   * truncate instead of rounding (Fasi, Higham, Mikaitis, Pranesh, "Numerical behavior of NVIDIA
   * tensor cores", PeerJ Comput. Sci. 7:e330, 2021): twice fp32's unit per addition. */
  out->input_unit = 1.0 / 1024.0;
  out->flush_rel = 1.0 / 134217728.0;
  out->b_exact = weight == VKFT_F16 && orient != VKFT_MATMUL_TN;
  out->accumulate_unit = 2.0 / 16777216.0;
}

/* VKFT_KERNEL_FAULT: the named variant scales its result by 1 + 2^-10, far outside any
 * tolerance (tests of the self-check only). */
float matmul_kernel_alpha(const vkft_backend *be, int variant, float alpha) {
  const char *fault = be->tuning.kernel_fault;
  return *fault && !strcmp(fault, be->variants[variant].name) ? alpha * (1.0f + 1.0f / 1024)
                                                              : alpha;
}
