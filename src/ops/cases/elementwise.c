/* Op-table family of the elementwise ops: "add", "scale", "copy", "convert", "fill". Each runs
 * on views at an element offset inside larger allocations (so unaligned starts, odd 16-bit
 * phases and the words shared with neighbours are exercised; the runner checks the memory
 * around an output comes back untouched). add and scale are correctly rounded fp32 (error <= u
 * relative); copy, convert and fill must match the host's bits exactly (src/core/dtype.c). */
#include "case.h"

#include <string.h>

enum { SRC, OTHER, DST };
enum { ADD, SCALE, COPY, CONVERT, FILL }; /* the variants, in the order of the op list */

typedef struct ew_params {
  int kind, in_place; /* add: a += b */
  int64_t n;
  float s;
  double value;
} ew_params;

/* Contents for the exact ops: for 32-bit data a third arbitrary bits (nan, inf, subnormals), a
 * third ordinary values, a third tiny values around the f16 subnormal range and rounding
 * boundaries; for 16-bit data the patterns in a scrambled order from a random start (an odd
 * multiplier permutes them), so 65536 elements hold every one, nan and subnormals included. */
static void *random_bits(op_case *oc, int slot, const char *name, vkft_dtype t, int64_t n,
                         case_role role) {
  void *data = case_tensor_new(oc, slot, name, t, n, role);
  uint32_t start = (uint32_t)case_uniform(&oc->rng, 0, 65536);
  for (int64_t i = 0; data && i < n; i++) {
    case_rng *rng = &oc->rng;
    if (vkft_dtype_size(t) == 2) {
      ((uint16_t *)data)[i] = (uint16_t)((start + (uint32_t)i) * 40503u);
      continue;
    }
    double kind = case_uniform(rng, 0, 3);
    float f;
    if (kind < 1) {
      uint32_t u = (uint32_t)case_uniform(rng, 0, 4294967296.0);
      memcpy(&f, &u, 4);
    } else if (kind < 2) {
      f = (float)case_uniform(rng, -70000, 70000);
    } else {
      f = (float)ldexp(case_uniform(rng, -1, 1), (int)case_uniform(rng, -30, -10));
    }
    ((float *)data)[i] = f;
  }
  return data;
}

/* fill's expected bytes: the reference backend's fill of host memory */
static int fill_on_host(vkft_dtype t, void *dst, double value, int64_t n) {
  vkft_backend *ref;
  if (vkft_backend_ref_create(&ref)) return VKFT_ERR;
  int status = vkft_fill(ref, &(vkft_tensor){.dtype = t, .n = n, .host = dst}, value, n);
  vkft_backend_destroy(ref);
  return status;
}

static int setup(op_case *oc) {
  const vkft_op_case *c = oc->row;
  ew_params *p = CASE_PARAMS(oc, ew_params);
  if (!p) return VKFT_ERR;
  int64_t n = c->d[0], off = c->d[1];
  *p = (ew_params){oc->variant, oc->variant == ADD && c->d[2], n, 0.7310586f, -3.14159265};
  int to_f32 = oc->variant == CONVERT && c->d[2];
  vkft_dtype src_t = p->kind == COPY || to_f32 ? c->dtype : VKFT_F32;
  vkft_dtype dst_t = p->kind >= COPY && !to_f32 ? c->dtype : VKFT_F32;
  if (dst_t == VKFT_I32) p->value = -123456;
  case_shape(oc, "%lld @%lld%s%s", (long long)n, (long long)off, p->in_place ? " a+=b" : "",
             p->kind == CONVERT ? (to_f32 ? " to f32" : " from f32") : "");

  if (p->kind <= SCALE) {
    double *a = p->kind == ADD && !p->in_place
                    ? case_random(oc, SRC, "a", VKFT_F32, n, CASE_IN, -100, 100)
                    : NULL;
    double *b =
        p->kind == ADD ? case_random(oc, OTHER, "b", VKFT_F32, n, CASE_IN, -100, 100) : NULL;
    double *x = case_random(oc, DST, "out", VKFT_F32, n, CASE_OUT, -100, 100);
    double *want = CASE_NEW(oc, double, n);
    if (oc->failed) return VKFT_ERR;
    for (int64_t i = 0; i < n; i++)
      want[i] = p->kind == SCALE ? (double)p->s * x[i] : (a ? a[i] : x[i]) + b[i];
    case_expect(oc, DST, want, NULL, CASE_U);
  } else {
    const void *src = p->kind == FILL ? NULL : random_bits(oc, SRC, "src", src_t, n, CASE_IN);
    random_bits(oc, DST, "dst", dst_t, n, CASE_OUT);
    void *expect = case_alloc(oc, n, vkft_dtype_size(dst_t));
    if (oc->failed) return VKFT_ERR;
    if (p->kind == COPY)
      memcpy(expect, src, (size_t)n * vkft_dtype_size(dst_t));
    else if (p->kind == CONVERT && to_f32)
      vkft_convert_to_f32(src_t, src, expect, (size_t)n);
    else if (p->kind == CONVERT)
      vkft_convert_from_f32(dst_t, src, expect, (size_t)n);
    else if (fill_on_host(dst_t, expect, p->value, n))
      return VKFT_ERR;
    case_expect_bits(oc, DST, expect);
  }
  /* the views start `off` elements into allocations with room after them (an even number of
   * elements, so 16-bit data is whole words) */
  int64_t total = (off + n + 4) / 2 * 2;
  for (int s = SRC; s <= DST; s++) oc->t[s].offset = off, oc->t[s].pad = total - off - n;
  size_t es = vkft_dtype_size(dst_t); /* bytes read + written per element */
  oc->bytes = (double)n * (p->kind == ADD    ? 12.0
                           : p->kind == FILL ? es
                                             : vkft_dtype_size(src_t) + es);
  return case_status(oc);
}

static int record(vkft_backend *be, const op_case *oc, vkft_tensor *t) {
  const ew_params *p = oc->params;
  switch (p->kind) {
  case ADD:
    return vkft_add(be, &t[p->in_place ? DST : SRC], &t[OTHER], &t[DST], p->n);
  case SCALE:
    return vkft_scale(be, &t[DST], p->s, p->n);
  case COPY:
    return vkft_copy(be, &t[SRC], &t[DST], p->n);
  case CONVERT:
    return vkft_convert(be, &t[SRC], &t[DST], p->n);
  default:
    return vkft_fill(be, &t[DST], p->value, p->n);
  }
}

const case_family case_elementwise = {{"add", "scale", "copy", "convert", "fill"}, setup, record};
