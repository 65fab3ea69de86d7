/* The op-case runner: everything a case (case.h) does not say. For one row of the table it lets
 * the row's family set the case up once (inputs, reference, checks), then on each backend
 * allocates and uploads the tensors, records the op, reads every output back and compares it,
 * runs it again for the same bits, and for benchmarks times a warm-up and the timed runs. */
#include "case.h"

#include "ops/backend.h"

#include "vkft/platform.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- what cases call ---- */

struct case_block {
  case_block *next;
  max_align_t data[];
};

double case_uniform(case_rng *rng, double lo, double hi) {
  uint64_t z = (rng->state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  z ^= z >> 31;
  return lo + (hi - lo) * (double)(z >> 11) * (1.0 / 9007199254740992.0);
}

/* The first failure's message is the one kept. */
static void fail(op_case *oc, const char *fmt, const char *arg) {
  if (!oc->failed) vkft_error("op table: %s: %s%s", oc->row->op, fmt, arg ? arg : "");
  oc->failed = 1;
}

void *case_alloc(op_case *oc, int64_t count, size_t size) {
  if (count < 0 || (count > 0 && (uint64_t)count > (SIZE_MAX - sizeof(case_block)) / size)) {
    fail(oc, "host allocation size out of range", NULL);
    return NULL;
  }
  case_block *b = calloc(1, sizeof *b + (count > 0 ? (size_t)count * size : 1));
  if (!b) {
    fail(oc, "out of host memory", NULL);
    return NULL;
  }
  b->next = oc->blocks;
  oc->blocks = b;
  return b->data;
}

double case_matmul_input_unit(op_case *oc, const case_product *products, int n, double *acc) {
  double unit = 0;
  *acc = CASE_U;
  for (int b = 0; b < oc->backend_count; b++)
    for (int i = 0; i < n; i++) {
      vkft_matmul_precision q;
      const case_product *p = &products[i];
      if (vkft_matmul_precision_of(oc->backends[b], p->orient, p->dtype, p->M, p->N, &q) !=
          VKFT_OK) {
        oc->failed = 1;
        continue;
      }
      unit = fmax(unit, q.input_unit);
      *acc = fmax(*acc, q.accumulate_unit);
    }
  return unit;
}

void case_shape(op_case *oc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(oc->shape, sizeof oc->shape, fmt, ap);
  va_end(ap);
}

void *case_tensor_new(op_case *oc, int slot, const char *name, vkft_dtype dtype, int64_t n,
                      case_role role) {
  if (slot < 0 || slot >= CASE_MAX_TENSORS || n < 0) {
    fail(oc, "bad tensor declaration ", name);
    return NULL;
  }
  oc->t[slot] = (case_tensor){.name = name, .dtype = dtype, .n = n, .role = role};
  if (role == CASE_SCRATCH) return NULL;
  return oc->t[slot].data = case_alloc(oc, n, vkft_dtype_size(dtype));
}

void *case_quantized(op_case *oc, int slot, const char *name, vkft_dtype dtype, int64_t n,
                     const vkft_quant *q) {
  if (slot < 0 || slot >= CASE_MAX_TENSORS || n < 0 || !vkft_dtype_is_quantized(dtype)) {
    fail(oc, "bad quantized tensor declaration ", name);
    return NULL;
  }
  oc->t[slot] = (case_tensor){.name = name, .dtype = dtype, .n = n, .role = CASE_IN, .quant = *q};
  vkft_tensor shape = {.dtype = dtype, .n = n, .quant = *q};
  return oc->t[slot].data = case_alloc(oc, (int64_t)vkft_tensor_bytes(&shape), 1);
}

double *case_random(op_case *oc, int slot, const char *name, vkft_dtype dtype, int64_t n,
                    case_role role, double lo, double hi) {
  if (dtype != VKFT_F32 && dtype != VKFT_F16 && dtype != VKFT_BF16) {
    fail(oc, "random values need a float dtype: ", name);
    return NULL;
  }
  void *stored = case_tensor_new(oc, slot, name, dtype, n, role);
  double *values = CASE_NEW(oc, double, n);
  float *f = malloc((size_t)(n > 0 ? n : 1) * sizeof *f);
  if (!f) fail(oc, "out of host memory", NULL);
  if (oc->failed) {
    free(f);
    return NULL;
  }
  for (int64_t i = 0; i < n; i++) f[i] = (float)case_uniform(&oc->rng, lo, hi);
  /* the values as stored (rounded to the dtype) are what the reference must see */
  vkft_convert_from_f32(dtype, f, stored, (size_t)n);
  vkft_convert_to_f32(dtype, stored, f, (size_t)n);
  for (int64_t i = 0; i < n; i++) values[i] = f[i];
  free(f);
  return values;
}

void case_poisoned(op_case *oc, int slot, const char *name, int64_t n) {
  float *x = case_tensor_new(oc, slot, name, VKFT_F32, n, CASE_OUT);
  for (int64_t i = 0; x && i < n; i++) x[i] = NAN;
}

static case_check *new_check(op_case *oc, int slot, int64_t first, int64_t count) {
  if (oc->checks == CASE_MAX_CHECKS) {
    fail(oc, "too many checks", NULL);
    return NULL;
  }
  if (slot >= 0) {
    const case_tensor *t = slot < CASE_MAX_TENSORS ? &oc->t[slot] : NULL;
    if (!t || !t->name || t->role != CASE_OUT || first < 0 || count < 0 || first + count > t->n) {
      fail(oc, "a check of something that is not an output", NULL);
      return NULL;
    }
  }
  case_check *k = &oc->check[oc->checks++];
  *k = (case_check){.tensor = slot, .first = first, .count = count};
  return k;
}

void case_expect_part(op_case *oc, int slot, int64_t first, int64_t count, const double *want,
                      const double *scale, double tol) {
  if (slot >= 0 && slot < CASE_MAX_TENSORS && oc->t[slot].dtype != VKFT_F32) {
    fail(oc, "values are compared on fp32 outputs only: ", oc->t[slot].name);
    return;
  }
  case_check *k = new_check(oc, slot, first, count);
  if (k) k->want = want, k->scale = scale, k->tol = tol;
  if (k && !want) fail(oc, "no reference for ", oc->t[slot].name); /* an allocation failed */
}

void case_expect(op_case *oc, int slot, const double *want, const double *scale, double tol) {
  case_expect_part(oc, slot, 0, slot >= 0 && slot < CASE_MAX_TENSORS ? oc->t[slot].n : 0, want,
                   scale, tol);
}

void case_expect_bits(op_case *oc, int slot, const void *bits) {
  case_check *k = new_check(oc, slot, 0, slot >= 0 && slot < CASE_MAX_TENSORS ? oc->t[slot].n : 0);
  if (k) k->bits = bits;
  if (k && !bits) fail(oc, "no reference for ", oc->t[slot].name);
}

void case_require(op_case *oc, const char *what, double err, double tol) {
  case_check *k = new_check(oc, -1, 0, 0);
  if (k) k->what = what, k->err = err, k->tol = tol;
}

/* ---- the table's families ---- */

#define CASE_LIST(name) &case_##name,
static const case_family *const families[] = {CASE_FAMILIES(CASE_LIST)};
#undef CASE_LIST

static const case_family *family_of(const vkft_op_case *c, int *variant) {
  for (size_t f = 0; f < sizeof families / sizeof families[0]; f++)
    for (int v = 0; v < CASE_MAX_VARIANTS && families[f]->ops[v]; v++)
      if (!strcmp(families[f]->ops[v], c->op)) {
        *variant = v;
        return families[f];
      }
  return NULL;
}

/* Different data for every row, the same every time (FNV-1a over the row). */
static uint64_t row_seed(const vkft_op_case *c) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (const char *s = c->op; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
  h = (h ^ (uint64_t)c->dtype) * 0x100000001b3ull;
  for (int i = 0; i < 4; i++) h = (h ^ (uint64_t)c->d[i]) * 0x100000001b3ull;
  return h;
}

/* ---- running a case on one backend ---- */

static int64_t alloc_elems(const case_tensor *t) {
  return t->offset + t->n + t->pad;
}
static size_t alloc_bytes(const case_tensor *t) {
  vkft_tensor shape = {.dtype = t->dtype, .n = alloc_elems(t), .quant = t->quant};
  return (size_t)vkft_tensor_bytes(&shape);
}

/* The contents of each allocation: random guard bytes around the case's data. */
static int make_images(op_case *oc, unsigned char **image) {
  for (int s = 0; s < CASE_MAX_TENSORS; s++) {
    const case_tensor *t = &oc->t[s];
    image[s] = t->data;
    if (!t->name || !t->data || (t->offset == 0 && t->pad == 0)) continue;
    if (t->offset < 0 || t->pad < 0) return vkft_error("op table: %s: negative guard", t->name);
    image[s] = CASE_NEW(oc, unsigned char, (int64_t)alloc_bytes(t));
    if (!image[s]) return VKFT_ERR;
    for (size_t i = 0; i < alloc_bytes(t); i++)
      image[s][i] = (unsigned char)case_uniform(&oc->rng, 0, 256);
    memcpy(image[s] + (size_t)t->offset * vkft_dtype_size(t->dtype), t->data,
           (size_t)t->n * vkft_dtype_size(t->dtype));
  }
  return VKFT_OK;
}

typedef struct backend_run {
  vkft_backend *be;
  const case_family *family;
  op_case *oc;
  unsigned char *const *image;
  vkft_tensor all[CASE_MAX_TENSORS], view[CASE_MAX_TENSORS];
} backend_run;

/* The outputs back to their starting contents (outside the stream, untimed), then the op in
 * its own stream; *ms receives the stream's wall time. */
static int reset_and_run(backend_run *b, double *ms) {
  for (int s = 0; s < CASE_MAX_TENSORS; s++)
    if (b->oc->t[s].name && b->oc->t[s].role == CASE_OUT &&
        vkft_tensor_write(b->be, &b->all[s], b->image[s]))
      return VKFT_ERR;
  double t0 = vkft_time_s();
  if (vkft_begin(b->be) || b->family->record(b->be, b->oc, b->view) || vkft_end(b->be))
    return VKFT_ERR;
  *ms = (vkft_time_s() - t0) * 1e3;
  return VKFT_OK;
}

/* One run with the outputs read into out[] (the whole allocations). */
static int run_once(backend_run *b, unsigned char **out) {
  double ms;
  if (reset_and_run(b, &ms)) return VKFT_ERR;
  for (int s = 0; s < CASE_MAX_TENSORS; s++)
    if (out[s] && vkft_tensor_read(b->be, &b->all[s], out[s])) return VKFT_ERR;
  return VKFT_OK;
}

/* Keeps the output whose error is nearest to (or furthest over) its tolerance. */
static void report(vkft_op_result *r, double *worst, const char *what, double err, double tol) {
  int within = err <= tol; /* NaN: not within */
  double ratio = err != err ? INFINITY : tol > 0 ? err / tol : within ? 0 : INFINITY;
  r->ok &= within;
  if (ratio > *worst) {
    *worst = ratio;
    r->max_err = err;
    r->tol = tol;
    snprintf(r->output, sizeof r->output, "%s", what);
  }
}

static int64_t elements_differ(const unsigned char *a, const unsigned char *b, int64_t n,
                               size_t es) {
  int64_t differ = 0;
  for (int64_t i = 0; i < n; i++) differ += memcmp(a + (size_t)i * es, b + (size_t)i * es, es) != 0;
  return differ;
}

/* max |got - want| / scale over the check's elements (see case_check) */
static double value_error(const case_check *k, const float *got) {
  double worst = 0;
  for (int64_t i = 0; i < k->count; i++) {
    double g = got[i], w = k->want[i], s = k->scale ? k->scale[i] : fabs(w), e;
    if (w != w)
      e = g != g ? 0 : INFINITY;
    else if (s == 0)
      e = g == w ? 0 : INFINITY;
    else
      e = fabs(g - w) / s;
    if (!(e <= worst)) worst = e; /* NaN stays */
  }
  return worst;
}

static void compare(const op_case *oc, unsigned char *const *image, unsigned char *const *got,
                    vkft_op_result *r) {
  double worst = -1;
  r->ok = 1;
  for (int i = 0; i < oc->checks; i++) {
    const case_check *k = &oc->check[i];
    if (k->tensor < 0) {
      report(r, &worst, k->what, k->err, k->tol);
      continue;
    }
    const case_tensor *t = &oc->t[k->tensor];
    size_t es = vkft_dtype_size(t->dtype);
    const unsigned char *g = got[k->tensor] + (size_t)(t->offset + k->first) * es;
    if (k->bits)
      report(r, &worst, t->name, (double)elements_differ(g, k->bits, k->count, es), 0);
    else
      report(r, &worst, t->name, value_error(k, (const float *)g), k->tol);
  }
  /* what lies around an output's view must come back as it was */
  for (int s = 0; s < CASE_MAX_TENSORS; s++) {
    const case_tensor *t = &oc->t[s];
    if (!t->name || t->role != CASE_OUT || (t->offset == 0 && t->pad == 0)) continue;
    size_t es = vkft_dtype_size(t->dtype), after = (size_t)(t->offset + t->n) * es;
    int64_t differ = elements_differ(got[s], image[s], t->offset, es) +
                     elements_differ(got[s] + after, image[s] + after, t->pad, es);
    report(r, &worst, "memory around", (double)differ, 0);
  }
}

static int compare_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* One warm-up, then the median of timed_runs runs (each after resetting the outputs). */
static int time_runs(backend_run *b, int timed_runs, vkft_op_result *r) {
  double times[64];
  if (timed_runs > 64) timed_runs = 64;
  for (int i = -1; i < timed_runs; i++) { /* i == -1: warm-up */
    double ms;
    if (reset_and_run(b, &ms)) return VKFT_ERR;
    if (i >= 0) times[i] = ms;
  }
  qsort(times, (size_t)timed_runs, sizeof times[0], compare_double);
  r->ms = times[timed_runs / 2];
  if (r->ms > 0) r->gflops = b->oc->flops / (r->ms * 1e6), r->gbps = b->oc->bytes / (r->ms * 1e6);
  return VKFT_OK;
}

static int run_backend(backend_run *b, int timed_runs, vkft_op_result *r) {
  op_case *oc = b->oc;
  unsigned char *got[CASE_MAX_TENSORS] = {0}, *again[CASE_MAX_TENSORS] = {0};
  int status = VKFT_OK;
  for (int s = 0; s < CASE_MAX_TENSORS && status == VKFT_OK; s++) {
    const case_tensor *t = &oc->t[s];
    if (!t->name) continue;
    status = vkft_dtype_is_quantized(t->dtype)
                 ? vkft_tensor_alloc_quant(b->be, t->dtype, t->n, &t->quant, &b->all[s])
                 : vkft_tensor_alloc(b->be, t->dtype, alloc_elems(t), &b->all[s]);
    if (status == VKFT_OK && t->role == CASE_IN)
      status = vkft_tensor_write(b->be, &b->all[s], b->image[s]);
    b->view[s] = vkft_tensor_view(&b->all[s], t->offset, t->n);
    if (status == VKFT_OK && t->role == CASE_OUT) {
      got[s] = malloc(alloc_bytes(t) ? alloc_bytes(t) : 1);
      again[s] = malloc(alloc_bytes(t) ? alloc_bytes(t) : 1);
      if (!got[s] || !again[s])
        status = vkft_error_with(VKFT_ERR_NOMEM, "op table: out of host memory");
    }
  }
  if (status == VKFT_OK && oc->host_refuses && !vkft_backend_device(b->be)) {
    /* the reference backend sees the bad inputs and must say so */
    double ms;
    int ran = reset_and_run(b, &ms) == VKFT_OK;
    r->ok = r->deterministic = !ran;
    r->max_err = ran;
    snprintf(r->output, sizeof r->output, "refusal");
  } else if (status == VKFT_OK && (status = run_once(b, got)) == VKFT_OK) {
    compare(oc, b->image, got, r);
    status = run_once(b, again);
    r->deterministic = 1;
    for (int s = 0; s < CASE_MAX_TENSORS && status == VKFT_OK; s++)
      if (got[s] && memcmp(got[s], again[s], alloc_bytes(&oc->t[s]))) r->deterministic = 0;
    if (status == VKFT_OK && timed_runs > 0) status = time_runs(b, timed_runs, r);
  }
  for (int s = 0; s < CASE_MAX_TENSORS; s++) {
    vkft_tensor_free(b->be, &b->all[s]);
    free(got[s]), free(again[s]);
  }
  return status;
}

int vkft_op_case_run_on(vkft_backend *const *backends, int count, const vkft_op_case *c,
                        int timed_runs, vkft_op_result *r) {
  memset(r, 0, (size_t)count * sizeof *r);
  int variant = 0;
  const case_family *family = family_of(c, &variant);
  if (!family) return vkft_error("op table: no op family runs \"%s\"", c->op);
  op_case oc = {.row = c,
                .variant = variant,
                .backends = backends,
                .backend_count = count,
                .rng = {row_seed(c)}};
  unsigned char *image[CASE_MAX_TENSORS];
  int status = family->setup(&oc);
  if (status == VKFT_OK && oc.failed) status = VKFT_ERR;
  if (status == VKFT_OK && oc.checks == 0)
    status = vkft_error("op table: %s compares nothing", c->op);
  if (status == VKFT_OK) status = make_images(&oc, image);
  for (int i = 0; i < count && status == VKFT_OK; i++) {
    backend_run b = {.be = backends[i], .family = family, .oc = &oc, .image = image};
    snprintf(r[i].shape, sizeof r[i].shape, "%s", oc.shape);
    status = run_backend(&b, timed_runs, &r[i]);
  }
  while (oc.blocks) {
    case_block *next = oc.blocks->next;
    free(oc.blocks);
    oc.blocks = next;
  }
  return status;
}

int vkft_op_case_run(vkft_backend *be, const vkft_op_case *c, int timed_runs, vkft_op_result *r) {
  return vkft_op_case_run_on(&be, 1, c, timed_runs, r);
}
