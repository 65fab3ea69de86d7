/* Op-table family of the elementwise ops: "add", "scale", "copy", "convert", "fill". Each
 * runs on a view at an element offset inside a larger allocation (so unaligned starts, odd
 * 16-bit phases and the words shared with neighbours are exercised), and the memory around the
 * view must come back untouched. add and scale are correctly rounded fp32 (error <= u
 * relative); copy, convert and fill must match the host's bits exactly (src/core/dtype.c). */
#include "core.h"

#include <stdio.h>

enum { EW_ADD, EW_ADD_INPLACE, EW_SCALE, EW_COPY, EW_CONVERT_TO, EW_CONVERT_FROM, EW_FILL };

typedef struct ew_ctx {
  int kind;
  int64_t n, off;
  vkft_dtype src_t, dst_t;
  float s;
  double value;
  unsigned char *src_init, *b_init, *dst_init; /* whole allocations: off + n + pad elements */
  int64_t total;                               /* elements per allocation */
  vkft_tensor src_all, b_all, dst_all, src, b, dst, dst32;
} ew_ctx;

static int record(vkft_backend *be, void *p) {
  ew_ctx *k = p;
  switch (k->kind) {
  case EW_ADD:
    return vkft_add(be, &k->src, &k->b, &k->dst, k->n);
  case EW_ADD_INPLACE:
    return vkft_add(be, &k->dst, &k->b, &k->dst, k->n);
  case EW_SCALE:
    return vkft_scale(be, &k->dst, k->s, k->n);
  case EW_COPY:
    return vkft_copy(be, &k->src, &k->dst, k->n);
  case EW_CONVERT_TO:
  case EW_CONVERT_FROM:
    return vkft_convert(be, &k->src, &k->dst, k->n);
  default:
    return vkft_fill(be, &k->dst, k->value, k->n);
  }
}

static int reset(vkft_backend *be, void *p) {
  ew_ctx *k = p;
  return vkft_tensor_write(be, &k->dst_all, k->dst_init);
}

static void release(vkft_backend *be, ew_ctx *k) {
  vkft_tensor *all[] = {&k->src_all, &k->b_all, &k->dst_all};
  for (int i = 0; i < 3; i++)
    if (all[i]->host || all[i]->buf.addr) vkft_tensor_free(be, all[i]);
}

static int run_on(vkft_backend *be, ew_ctx *k, unsigned char *got) {
  if (vkft_tensor_alloc(be, k->src_t, k->total, &k->src_all) ||
      vkft_tensor_write(be, &k->src_all, k->src_init) ||
      vkft_tensor_alloc(be, VKFT_F32, k->total, &k->b_all) ||
      vkft_tensor_write(be, &k->b_all, k->b_init) ||
      vkft_tensor_alloc(be, k->dst_t, k->total, &k->dst_all) || reset(be, k))
    return VKFT_ERR;
  k->src = vkft_tensor_view(&k->src_all, k->off, k->n);
  k->b = vkft_tensor_view(&k->b_all, k->off, k->n);
  k->dst = vkft_tensor_view(&k->dst_all, k->off, k->n);
  /* the whole destination seen as 32-bit words, for the harness's bit comparison */
  k->dst32 = k->dst_all;
  k->dst32.dtype = VKFT_F32;
  k->dst32.n = k->total * (int64_t)vkft_dtype_size(k->dst_t) / 4;
  if (vkft_begin(be) || record(be, k) || vkft_end(be) || vkft_tensor_read(be, &k->dst_all, got))
    return VKFT_ERR;
  return VKFT_OK;
}

/* Random 32-bit patterns: a third arbitrary bits (nan, inf, subnormals), a third ordinary
 * values, a third tiny values around the f16 subnormal range and rounding boundaries. */
static void random_f32_bits(harness_rng *rng, float *a, int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    double kind = harness_uniform(rng, 0, 3);
    if (kind < 1) {
      uint32_t u = (uint32_t)harness_uniform(rng, 0, 4294967296.0);
      memcpy(&a[i], &u, 4);
    } else if (kind < 2) {
      a[i] = (float)harness_uniform(rng, -70000, 70000);
    } else {
      a[i] = (float)ldexp(harness_uniform(rng, -1, 1), (int)harness_uniform(rng, -30, -10));
    }
  }
}

/* Checks got (whole destination allocation) against the expected bytes outside the view and,
 * inside it, either bit for bit (want == NULL) or by relative error against want. */
static void compare(const ew_ctx *k, const unsigned char *got, const unsigned char *expect,
                    const double *want, vkft_op_result *r) {
  size_t es = vkft_dtype_size(k->dst_t);
  int64_t lo = k->off * (int64_t)es, hi = (k->off + k->n) * (int64_t)es;
  int64_t total = k->total * (int64_t)es;
  core_report(r,
              (double)(core_bits_differ(got, expect, lo) +
                       core_bits_differ(got + hi, expect + hi, total - hi)),
              0);
  if (want)
    core_report(r, core_err((const float *)(got + lo), want, NULL, k->n), CORE_U);
  else
    core_report(r, (double)core_bits_differ(got + lo, expect + lo, hi - lo), 0);
}

static int run(vkft_backend *vk, const vkft_op_case *c, int timed_runs, vkft_op_result *r) {
  ew_ctx k = {.n = c->d[0], .off = c->d[1], .src_t = VKFT_F32, .dst_t = VKFT_F32};
  const char *op = c->op;
  if (!strcmp(op, "add")) {
    k.kind = c->d[2] ? EW_ADD_INPLACE : EW_ADD;
  } else if (!strcmp(op, "scale")) {
    k.kind = EW_SCALE;
  } else if (!strcmp(op, "copy")) {
    k.kind = EW_COPY, k.src_t = k.dst_t = c->dtype;
  } else if (!strcmp(op, "convert")) {
    k.kind = c->d[2] ? EW_CONVERT_FROM : EW_CONVERT_TO;
    if (k.kind == EW_CONVERT_TO)
      k.dst_t = c->dtype;
    else
      k.src_t = c->dtype;
  } else if (!strcmp(op, "fill")) {
    k.kind = EW_FILL, k.dst_t = c->dtype;
  } else {
    return vkft_error("op table: unknown elementwise op %s", op);
  }
  int64_t n = k.n;
  k.total = (k.off + n + 4) / 2 * 2; /* room after the view; even, so 16-bit data is whole words */
  snprintf(r->shape, sizeof r->shape, "%lld @%lld%s%s", (long long)n, (long long)k.off,
           k.kind == EW_ADD_INPLACE ? " a+=b" : "",
           k.kind == EW_CONVERT_TO     ? " from f32"
           : k.kind == EW_CONVERT_FROM ? " to f32"
                                       : "");

  size_t src_bytes = (size_t)k.total * vkft_dtype_size(k.src_t);
  size_t dst_bytes = (size_t)k.total * vkft_dtype_size(k.dst_t);
  k.src_init = malloc(src_bytes), k.b_init = malloc((size_t)k.total * 4);
  k.dst_init = malloc(dst_bytes);
  unsigned char *got = malloc(dst_bytes), *expect = malloc(dst_bytes);
  double *want = malloc((size_t)(n ? n : 1) * sizeof *want);
  float *tmp = malloc((size_t)k.total * 4);
  int status = VKFT_ERR;
  if (!k.src_init || !k.b_init || !k.dst_init || !got || !expect || !want || !tmp) {
    vkft_error("%s: out of host memory", op);
    goto done;
  }
  harness_rng rng = {(uint64_t)(n * 31 + k.off) ^ (uint64_t)k.kind << 40 ^
                     (uint64_t)c->dtype << 48};
  /* sources: ordinary values for arithmetic, arbitrary bit patterns for the exact ops */
  if (k.kind <= EW_SCALE) {
    core_uniform(&rng, (float *)k.src_init, k.total, -100, 100);
    core_uniform(&rng, (float *)k.b_init, k.total, -100, 100);
    core_uniform(&rng, tmp, k.total, -100, 100);
    memcpy(k.dst_init, tmp, dst_bytes);
  } else {
    random_f32_bits(&rng, tmp, k.total);
    if (k.src_t == VKFT_F32)
      memcpy(k.src_init, tmp, src_bytes);
    else
      for (int64_t i = 0; i < k.total; i++) /* every 16-bit pattern, nan included */
        ((uint16_t *)k.src_init)[i] = (uint16_t)harness_uniform(&rng, 0, 65536);
    memset(k.b_init, 0, (size_t)k.total * 4);
    random_f32_bits(&rng, tmp, k.total);
    if (k.dst_t == VKFT_F32)
      memcpy(k.dst_init, tmp, dst_bytes);
    else
      for (int64_t i = 0; i < k.total; i++)
        ((uint16_t *)k.dst_init)[i] = (uint16_t)harness_uniform(&rng, 0, 65536);
  }
  k.s = 0.7310586f;
  k.value = k.dst_t == VKFT_I32 ? -123456 : -3.14159265;

  /* expected: the untouched allocation, then the view's new contents */
  memcpy(expect, k.dst_init, dst_bytes);
  size_t es = vkft_dtype_size(k.dst_t);
  unsigned char *view = expect + (size_t)k.off * es;
  const float *a = (const float *)k.src_init + k.off, *b = (const float *)k.b_init + k.off;
  const float *x = (const float *)k.dst_init + k.off;
  int exact = 1;
  switch (k.kind) {
  case EW_ADD:
  case EW_ADD_INPLACE:
    for (int64_t i = 0; i < n; i++) want[i] = (double)(k.kind == EW_ADD ? a[i] : x[i]) + b[i];
    exact = 0;
    break;
  case EW_SCALE:
    for (int64_t i = 0; i < n; i++) want[i] = (double)k.s * x[i];
    exact = 0;
    break;
  case EW_COPY:
    memcpy(view, k.src_init + (size_t)k.off * es, (size_t)n * es);
    break;
  case EW_CONVERT_TO:
    vkft_convert_from_f32(k.dst_t, a, view, (size_t)n);
    break;
  case EW_CONVERT_FROM:
    vkft_convert_to_f32(k.src_t, (const uint16_t *)k.src_init + k.off, (float *)view, (size_t)n);
    break;
  default: {
    vkft_backend *ref;
    if (vkft_backend_ref_create(&ref)) goto done;
    vkft_tensor t = {.dtype = k.dst_t, .n = n, .host = view};
    status = vkft_fill(ref, &t, k.value, n);
    vkft_backend_destroy(ref);
    if (status) goto done;
    status = VKFT_ERR;
  }
  }

  status = run_on(vk, &k, got);
  if (status == VKFT_OK) {
    compare(&k, got, expect, exact ? NULL : want, r);
    status = harness_repeat(vk, reset, record, &k, &k.dst32, (const float *)got, timed_runs, r);
  }
  if (status == VKFT_OK && r->ms > 0) {
    /* bytes read + written per element */
    double per = k.kind == EW_ADD || k.kind == EW_ADD_INPLACE ? 12
                 : k.kind == EW_FILL                          ? (double)es
                                     : (double)(vkft_dtype_size(k.src_t) + es);
    double bytes = per * (double)n;
    r->gbps = bytes / (r->ms * 1e6);
  }
  release(vk, &k);
  vkft_backend *ref;
  if (status == VKFT_OK && timed_runs == 0 && (status = vkft_backend_ref_create(&ref)) == 0) {
    status = run_on(ref, &k, got);
    if (status == VKFT_OK) compare(&k, got, expect, exact ? NULL : want, r);
    release(ref, &k);
    vkft_backend_destroy(ref);
  }
done:
  free(k.src_init), free(k.b_init), free(k.dst_init), free(got), free(expect), free(want);
  free(tmp);
  return status;
}

/* d = {n, element offset of the views, variant}: add variant 1 is a += b; convert variant 0 is
 * f32 -> dtype, 1 is dtype -> f32. Offsets 0 (aligned, vector path), 1 and 3 (unaligned;
 * 16-bit data starting in the high half of a word), odd lengths (ending mid-word), n = 1. */
static const vkft_op_case cases[] = {
    {"add", VKFT_F32, {1000, 0, 0}, HARNESS_T | HARNESS_S},
    {"add", VKFT_F32, {1, 0, 0}, HARNESS_T},
    {"add", VKFT_F32, {1003, 1, 0}, HARNESS_T},
    {"add", VKFT_F32, {4099, 0, 1}, HARNESS_T},
    {"scale", VKFT_F32, {1000, 0}, HARNESS_T | HARNESS_S},
    {"scale", VKFT_F32, {77, 3}, HARNESS_T},
    {"copy", VKFT_F32, {1000, 0}, HARNESS_T | HARNESS_S},
    {"copy", VKFT_F32, {5, 1}, HARNESS_T},
    {"copy", VKFT_I32, {1001, 0}, HARNESS_T},
    {"copy", VKFT_BF16, {1001, 1}, HARNESS_T},
    {"copy", VKFT_F16, {1, 3}, HARNESS_T},
    {"convert", VKFT_F16, {4096, 0, 0}, HARNESS_T | HARNESS_S},
    {"convert", VKFT_F16, {4097, 1, 0}, HARNESS_T},
    {"convert", VKFT_F16, {1, 1, 0}, HARNESS_T},
    {"convert", VKFT_F16, {4097, 0, 1}, HARNESS_T},
    {"convert", VKFT_F16, {70000, 3, 1}, HARNESS_T},
    {"convert", VKFT_BF16, {4096, 0, 0}, HARNESS_T | HARNESS_S},
    {"convert", VKFT_BF16, {333, 3, 0}, HARNESS_T},
    {"convert", VKFT_BF16, {4099, 0, 1}, HARNESS_T},
    {"convert", VKFT_BF16, {2, 1, 1}, HARNESS_T},
    {"fill", VKFT_F32, {1000, 0}, HARNESS_T | HARNESS_S},
    {"fill", VKFT_F32, {3, 1}, HARNESS_T},
    {"fill", VKFT_I32, {1001, 2}, HARNESS_T},
    {"fill", VKFT_BF16, {1001, 1}, HARNESS_T},
    {"fill", VKFT_F16, {1, 0}, HARNESS_T},
    {"add", VKFT_F32, {16 << 20, 0, 0}, HARNESS_B},
    {"add", VKFT_F32, {16 << 20, 0, 1}, HARNESS_B},
    {"scale", VKFT_F32, {16 << 20, 0}, HARNESS_B},
    {"copy", VKFT_F32, {16 << 20, 0}, HARNESS_B},
    {"convert", VKFT_BF16, {16 << 20, 0, 0}, HARNESS_B},
    {"convert", VKFT_BF16, {16 << 20, 0, 1}, HARNESS_B},
    {"fill", VKFT_F32, {16 << 20, 0}, HARNESS_B},
};

const harness_family family_elementwise = {cases, HARNESS_COUNT(cases), run};
