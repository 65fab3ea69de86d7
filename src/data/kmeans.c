/* k-means for `vkft data explore`: k-means++ seeding, Lloyd iterations, the silhouette over a
 * seeded sample and the choice of k by it (vkft/explore.h). The work is dot products of rows with
 * centroids, done as a small matrix product: the centroids are kept transposed and padded,
 * ct (d, kp), so that a block of RB rows times a KB-wide strip of centroids accumulates in
 * RB x KB independent lanes the compiler vectorises without reordering any sum (and, on x86
 * CPUs with AVX2 and FMA, the same loops written with their intrinsics, chosen at run time).
 * Rows are split over threads (the platform layer's); each row's arithmetic does not depend on
 * the split. */
#include "vkft/explore.h"

#include "vkft/error.h"
#include "vkft/platform.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { RB = 4, KB = 8, ROW_BLOCK = 64, MAX_THREADS = 64 };

static uint64_t splitmix64(uint64_t *s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static double uniform01(uint64_t *s) {
  return (double)(splitmix64(s) >> 11) * (1.0 / 9007199254740992.0);
}

/* <a, b> over d floats in 8 independent lanes (vectorised without -ffast-math) */
static float dot_generic(const float *a, const float *b, size_t d) {
  float acc[8] = {0};
  size_t t = 0;
  for (; t + 8 <= d; t += 8)
    for (int q = 0; q < 8; q++) acc[q] += a[t + q] * b[t + q];
  float s = 0;
  for (; t < d; t++) s += a[t] * b[t];
  for (int q = 0; q < 8; q++) s += acc[q];
  return s;
}

/* out (r1 - r0, kp) = x[r0..r1) (., d) . ct (d, kp), kp a multiple of KB */
static void dots_generic(const float *x, size_t d, const float *ct, size_t kp, size_t r0, size_t r1,
                         float *out) {
  for (size_t i = r0; i < r1; i += RB) {
    size_t rows = r1 - i < RB ? r1 - i : RB;
    const float *xr[RB];
    for (size_t r = 0; r < RB; r++) xr[r] = x + (i + (r < rows ? r : 0)) * d;
    for (size_t j = 0; j < kp; j += KB) {
      float acc[RB][KB] = {{0}};
      for (size_t t = 0; t < d; t++) {
        const float *c = ct + t * kp + j;
        for (int r = 0; r < RB; r++) {
          float a = xr[r][t];
          for (int q = 0; q < KB; q++) acc[r][q] += a * c[q];
        }
      }
      for (size_t r = 0; r < rows; r++) memcpy(out + (i - r0 + r) * kp + j, acc[r], sizeof acc[r]);
    }
  }
}

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
/* The same two kernels for x86 CPUs with AVX2 and FMA (chosen at run time): 8 rows share each
 * load of a strip of 8 centroids, 8 accumulators in ymm registers; fused multiply-adds round
 * once where the generic kernels round twice, so the two differ in the last bits. */
#include <immintrin.h>
#define KMEANS_AVX2 1
enum { RB_AVX2 = 8 };

__attribute__((target("avx2,fma"))) static float dot_avx2(const float *a, const float *b,
                                                          size_t d) {
  __m256 acc = _mm256_setzero_ps();
  size_t t = 0;
  for (; t + 8 <= d; t += 8)
    acc = _mm256_fmadd_ps(_mm256_loadu_ps(a + t), _mm256_loadu_ps(b + t), acc);
  float lanes[8], s = 0;
  _mm256_storeu_ps(lanes, acc);
  for (; t < d; t++) s += a[t] * b[t];
  for (int q = 0; q < 8; q++) s += lanes[q];
  return s;
}

__attribute__((target("avx2,fma"))) static void
dots_avx2(const float *x, size_t d, const float *ct, size_t kp, size_t r0, size_t r1, float *out) {
  for (size_t i = r0; i < r1; i += RB_AVX2) {
    size_t rows = r1 - i < RB_AVX2 ? r1 - i : RB_AVX2;
    const float *xr[RB_AVX2];
    for (size_t r = 0; r < RB_AVX2; r++) xr[r] = x + (i + (r < rows ? r : 0)) * d;
    for (size_t j = 0; j < kp; j += KB) {
      __m256 acc[RB_AVX2];
      for (int r = 0; r < RB_AVX2; r++) acc[r] = _mm256_setzero_ps();
      for (size_t t = 0; t < d; t++) {
        __m256 c = _mm256_loadu_ps(ct + t * kp + j);
        for (int r = 0; r < RB_AVX2; r++)
          acc[r] = _mm256_fmadd_ps(_mm256_broadcast_ss(xr[r] + t), c, acc[r]);
      }
      for (size_t r = 0; r < rows; r++) _mm256_storeu_ps(out + (i - r0 + r) * kp + j, acc[r]);
    }
  }
}

static int have_avx2(void) {
  static int known = -1;
  if (known < 0) known = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return known;
}
#endif

/* asks the CPU once, before any thread runs */
static void kernels_init(void) {
#ifdef KMEANS_AVX2
  (void)have_avx2();
#endif
}

static float dot(const float *a, const float *b, size_t d) {
#ifdef KMEANS_AVX2
  if (have_avx2()) return dot_avx2(a, b, d);
#endif
  return dot_generic(a, b, d);
}

static void dots(const float *x, size_t d, const float *ct, size_t kp, size_t r0, size_t r1,
                 float *out) {
#ifdef KMEANS_AVX2
  if (have_avx2()) {
    dots_avx2(x, d, ct, kp, r0, r1, out);
    return;
  }
#endif
  dots_generic(x, d, ct, kp, r0, r1, out);
}

/* ---- running a function over row ranges on the platform's threads ---- */

typedef void (*range_fn)(void *ctx, int part, size_t r0, size_t r1);
typedef struct range_job {
  range_fn fn;
  void *ctx;
  int part;
  size_t r0, r1;
} range_job;

static void range_worker(void *arg) {
  range_job *j = arg;
  j->fn(j->ctx, j->part, j->r0, j->r1);
}

static int clamp_threads(int threads, size_t n) {
  int t = threads > 0 ? threads : vkft_cpu_count();
  if (t < 1) t = 1;
  if (t > MAX_THREADS) t = MAX_THREADS;
  if ((size_t)t > n / ROW_BLOCK + 1) t = (int)(n / ROW_BLOCK + 1);
  return t;
}

/* fn(ctx, part, r0, r1) for `parts` contiguous ranges of n rows; part 0 on this thread (and any
 * part whose thread did not start) */
static void run_ranges(range_fn fn, void *ctx, int parts, size_t n) {
  range_job jobs[MAX_THREADS];
  vkft_thread *th[MAX_THREADS] = {0};
  for (int p = 0; p < parts; p++)
    jobs[p] =
        (range_job){fn, ctx, p, n * (size_t)p / (size_t)parts, n * (size_t)(p + 1) / (size_t)parts};
  for (int p = 1; p < parts; p++) th[p] = vkft_thread_start(range_worker, &jobs[p]);
  range_worker(&jobs[0]);
  for (int p = 1; p < parts; p++) {
    if (th[p])
      vkft_thread_join(th[p]);
    else
      range_worker(&jobs[p]);
  }
}

/* ---- k-means ---- */

typedef struct km {
  const float *x;
  size_t n, d, k, kp;
  const float *norms; /* (n) squared row norms */
  float *ct;          /* (d, kp) centroids transposed, zero-padded */
  float *half;        /* (kp) half squared centroid norms, +inf in the padding */
  int32_t *assign;
  float *dist2; /* (n) squared distance of each row to its centroid */
  /* per part: the changed rows, the inertia, the sums and counts of its rows per cluster */
  size_t changed[MAX_THREADS];
  double inertia[MAX_THREADS];
  double *sums;    /* (parts, k, d) */
  size_t *counts;  /* (parts, k) */
  float *dots_buf; /* (parts, ROW_BLOCK, kp) */
  /* k-means++: the new centroid */
  const float *center;
  float center_norm;
} km;

/* nearest centroid: largest <x, c> - |c|^2 / 2 (|x - c|^2 = |x|^2 - 2 of that); ties: lowest */
static void assign_range(void *ctx, int part, size_t r0, size_t r1) {
  km *s = ctx;
  float *buf = s->dots_buf + (size_t)part * ROW_BLOCK * s->kp;
  double *sums = s->sums + (size_t)part * s->k * s->d;
  size_t *counts = s->counts + (size_t)part * s->k;
  memset(sums, 0, s->k * s->d * sizeof *sums);
  memset(counts, 0, s->k * sizeof *counts);
  size_t changed = 0;
  double inertia = 0;
  for (size_t b = r0; b < r1; b += ROW_BLOCK) {
    size_t e = b + ROW_BLOCK < r1 ? b + ROW_BLOCK : r1;
    dots(s->x, s->d, s->ct, s->kp, b, e, buf);
    for (size_t i = b; i < e; i++) {
      const float *row = buf + (i - b) * s->kp;
      size_t best = 0;
      float best_v = row[0] - s->half[0];
      for (size_t j = 1; j < s->k; j++)
        if (row[j] - s->half[j] > best_v) best_v = row[j] - s->half[j], best = j;
      float d2 = s->norms[i] - 2 * best_v;
      s->dist2[i] = d2 > 0 ? d2 : 0;
      inertia += s->dist2[i];
      changed += s->assign[i] != (int32_t)best;
      s->assign[i] = (int32_t)best;
      double *sum = sums + best * s->d;
      const float *xi = s->x + i * s->d;
      for (size_t t = 0; t < s->d; t++) sum[t] += xi[t];
      counts[best]++;
    }
  }
  s->changed[part] = changed;
  s->inertia[part] = inertia;
}

static void set_centroid(km *s, size_t j, const float *c) {
  double norm = 0;
  for (size_t t = 0; t < s->d; t++) {
    s->ct[t * s->kp + j] = c[t];
    norm += (double)c[t] * c[t];
  }
  s->half[j] = (float)(norm / 2);
}

/* k-means++: dist2 = min(dist2, |x - center|^2) */
static void pp_update_range(void *ctx, int part, size_t r0, size_t r1) {
  km *s = ctx;
  (void)part;
  for (size_t i = r0; i < r1; i++) {
    float d2 = s->norms[i] + s->center_norm - 2 * dot(s->x + i * s->d, s->center, s->d);
    if (d2 < 0) d2 = 0;
    if (d2 < s->dist2[i]) s->dist2[i] = d2;
  }
}

static void seed_plus_plus(km *s, uint64_t seed, int parts) {
  uint64_t rng = seed ^ 0x6B6D65616E73ull; /* "kmeans" */
  size_t first = (size_t)(uniform01(&rng) * (double)s->n);
  if (first >= s->n) first = s->n - 1;
  for (size_t i = 0; i < s->n; i++) s->dist2[i] = FLT_MAX;
  size_t pick = first;
  for (size_t j = 0; j < s->k; j++) {
    s->center = s->x + pick * s->d;
    s->center_norm = s->norms[pick];
    set_centroid(s, j, s->center);
    if (j + 1 == s->k) break;
    run_ranges(pp_update_range, s, parts, s->n);
    double total = 0;
    for (size_t i = 0; i < s->n; i++) total += s->dist2[i];
    if (!(total > 0)) { /* fewer distinct rows than k: the next rows in order */
      pick = (pick + 1) % s->n;
      continue;
    }
    double u = uniform01(&rng) * total, acc = 0;
    pick = s->n - 1;
    for (size_t i = 0; i < s->n; i++) {
      acc += s->dist2[i];
      if (acc > u && s->dist2[i] > 0) {
        pick = i;
        break;
      }
    }
  }
}

/* totals over parts into sums/counts of part 0; an emptied cluster takes the farthest row of a
 * cluster with two or more */
static size_t update_centroids(km *s, int parts, float *mean) {
  size_t kd = s->k * s->d, fixed = 0;
  for (int p = 1; p < parts; p++) {
    for (size_t q = 0; q < kd; q++) s->sums[q] += s->sums[(size_t)p * kd + q];
    for (size_t j = 0; j < s->k; j++) s->counts[j] += s->counts[(size_t)p * s->k + j];
  }
  for (size_t j = 0; j < s->k; j++) {
    if (s->counts[j] > 0) continue;
    size_t far = SIZE_MAX;
    for (size_t i = 0; i < s->n; i++)
      if (s->counts[s->assign[i]] > 1 && (far == SIZE_MAX || s->dist2[i] > s->dist2[far])) far = i;
    if (far == SIZE_MAX) continue; /* cannot happen with k <= n */
    size_t from = (size_t)s->assign[far];
    const float *xf = s->x + far * s->d;
    for (size_t t = 0; t < s->d; t++) {
      s->sums[from * s->d + t] -= xf[t];
      s->sums[j * s->d + t] = xf[t];
    }
    s->counts[from]--;
    s->counts[j] = 1;
    s->assign[far] = (int32_t)j;
    s->dist2[far] = 0;
    fixed++;
  }
  for (size_t j = 0; j < s->k; j++) {
    for (size_t t = 0; t < s->d; t++)
      mean[t] = (float)(s->sums[j * s->d + t] / (double)s->counts[j]);
    set_centroid(s, j, mean);
  }
  return fixed;
}

static void km_free(km *s) {
  free((void *)s->norms);
  free(s->ct);
  free(s->half);
  free(s->dist2);
  free(s->sums);
  free(s->counts);
  free(s->dots_buf);
}

static void norms_range(void *ctx, int part, size_t r0, size_t r1) {
  km *s = ctx;
  (void)part;
  float *norms = (float *)s->norms;
  for (size_t i = r0; i < r1; i++) norms[i] = dot(s->x + i * s->d, s->x + i * s->d, s->d);
}

int vkft_kmeans(const float *x, size_t n, size_t d, const vkft_kmeans_desc *desc, int32_t *assign,
                float *centroids, vkft_kmeans_stats *stats) {
  if (desc->k < 1 || (size_t)desc->k > n || d == 0)
    return vkft_error("k-means: k = %d for %zu rows of dimension %zu", desc->k, n, d);
  kernels_init();
  int parts = clamp_threads(desc->threads, n);
  size_t k = (size_t)desc->k, kp = (k + KB - 1) / KB * KB;
  km s = {.x = x, .n = n, .d = d, .k = k, .kp = kp, .assign = assign};
  s.norms = malloc(n * sizeof *s.norms);
  s.ct = calloc(d * kp, sizeof *s.ct);
  s.half = malloc(kp * sizeof *s.half);
  s.dist2 = malloc(n * sizeof *s.dist2);
  s.sums = malloc((size_t)parts * k * d * sizeof *s.sums);
  s.counts = malloc((size_t)parts * k * sizeof *s.counts);
  s.dots_buf = malloc((size_t)parts * ROW_BLOCK * kp * sizeof *s.dots_buf);
  float *mean = malloc(d * sizeof *mean);
  if (!s.norms || !s.ct || !s.half || !s.dist2 || !s.sums || !s.counts || !s.dots_buf || !mean) {
    km_free(&s);
    free(mean);
    return vkft_error_with(VKFT_ERR_NOMEM, "k-means: out of host memory (%zu x %zu, k = %zu)", n, d,
                           k);
  }
  for (size_t j = k; j < kp; j++) s.half[j] = INFINITY; /* padding never wins */
  run_ranges(norms_range, &s, parts, n);
  seed_plus_plus(&s, desc->seed, parts);
  for (size_t i = 0; i < n; i++) assign[i] = -1;
  int max_iter = desc->max_iter > 0 ? desc->max_iter : 100, it = 0, converged = 0;
  double inertia = 0;
  while (it < max_iter && !converged) {
    it++;
    run_ranges(assign_range, &s, parts, n);
    size_t changed = 0;
    inertia = 0;
    for (int p = 0; p < parts; p++) changed += s.changed[p], inertia += s.inertia[p];
    changed += update_centroids(&s, parts, mean);
    converged = changed == 0;
  }
  if (centroids)
    for (size_t j = 0; j < k; j++)
      for (size_t t = 0; t < d; t++) centroids[j * d + t] = s.ct[t * kp + j];
  if (stats) *stats = (vkft_kmeans_stats){it, converged, inertia};
  km_free(&s);
  free(mean);
  return VKFT_OK;
}

/* ---- silhouette ---- */

typedef struct sample_dist {
  size_t s, sp;
  size_t *idx;  /* (s) the sampled rows */
  float *sx;    /* (s, d) their vectors */
  float *st;    /* (d, sp) transposed, padded */
  float *norms; /* (s) */
  float *dist;  /* (s, sp) Euclidean distances */
  size_t d;
} sample_dist;

static void sample_dist_range(void *ctx, int part, size_t r0, size_t r1) {
  sample_dist *sd = ctx;
  (void)part;
  dots(sd->sx, sd->d, sd->st, sd->sp, r0, r1, sd->dist + r0 * sd->sp);
  for (size_t i = r0; i < r1; i++)
    for (size_t j = 0; j < sd->s; j++) {
      float d2 = sd->norms[i] + sd->norms[j] - 2 * sd->dist[i * sd->sp + j];
      sd->dist[i * sd->sp + j] = i == j || d2 <= 0 ? 0 : sqrtf(d2);
    }
}

static void sample_dist_free(sample_dist *sd) {
  free(sd->idx);
  free(sd->sx);
  free(sd->st);
  free(sd->norms);
  free(sd->dist);
}

/* the pairwise distances of a seeded sample of min(n, sample) rows (sample 0: all) */
static int sample_dist_make(const float *x, size_t n, size_t d, size_t sample, uint64_t seed,
                            int threads, sample_dist *sd) {
  kernels_init();
  size_t s = sample && sample < n ? sample : n, sp = (s + KB - 1) / KB * KB;
  *sd = (sample_dist){.s = s, .sp = sp, .d = d};
  sd->idx = malloc(n * sizeof *sd->idx);
  sd->sx = malloc(s * d * sizeof *sd->sx);
  sd->st = calloc(d * sp, sizeof *sd->st);
  sd->norms = malloc(s * sizeof *sd->norms);
  sd->dist = malloc(s * sp * sizeof *sd->dist);
  if (!sd->idx || !sd->sx || !sd->st || !sd->norms || !sd->dist) {
    sample_dist_free(sd);
    return vkft_error_with(VKFT_ERR_NOMEM, "silhouette: out of host memory for %zu rows", s);
  }
  /* a partial Fisher-Yates shuffle; the chosen rows kept in input order */
  uint64_t rng = seed ^ 0x73696C68ull; /* "silh" */
  for (size_t i = 0; i < n; i++) sd->idx[i] = i;
  if (s < n) {
    for (size_t i = 0; i < s; i++) {
      size_t j = i + (size_t)(uniform01(&rng) * (double)(n - i));
      if (j >= n) j = n - 1;
      size_t t = sd->idx[i];
      sd->idx[i] = sd->idx[j], sd->idx[j] = t;
    }
    for (size_t i = 1; i < s; i++) /* insertion sort: s is small */
      for (size_t j = i; j > 0 && sd->idx[j - 1] > sd->idx[j]; j--) {
        size_t t = sd->idx[j];
        sd->idx[j] = sd->idx[j - 1], sd->idx[j - 1] = t;
      }
  }
  for (size_t i = 0; i < s; i++) {
    const float *row = x + sd->idx[i] * d;
    memcpy(sd->sx + i * d, row, d * sizeof *row);
    for (size_t t = 0; t < d; t++) sd->st[t * sp + i] = row[t];
    sd->norms[i] = dot(row, row, d);
  }
  run_ranges(sample_dist_range, sd, clamp_threads(threads, s), s);
  return VKFT_OK;
}

static int silhouette_of(const sample_dist *sd, const int32_t *assign, int k, double *score) {
  size_t s = sd->s;
  double *sum = malloc((size_t)k * sizeof *sum);
  size_t *count = calloc((size_t)k, sizeof *count);
  if (!sum || !count) {
    free(sum), free(count);
    return vkft_error_nomem();
  }
  for (size_t i = 0; i < s; i++) count[assign[sd->idx[i]]]++;
  double total = 0;
  for (size_t i = 0; i < s; i++) {
    int ci = assign[sd->idx[i]];
    if (count[ci] < 2) continue; /* s(i) = 0 */
    memset(sum, 0, (size_t)k * sizeof *sum);
    const float *row = sd->dist + i * sd->sp;
    for (size_t j = 0; j < s; j++) sum[assign[sd->idx[j]]] += row[j];
    double a = sum[ci] / (double)(count[ci] - 1), b = INFINITY;
    for (int c = 0; c < k; c++)
      if (c != ci && count[c] > 0 && sum[c] / (double)count[c] < b) b = sum[c] / (double)count[c];
    if (isfinite(b) && (a > 0 || b > 0)) total += (b - a) / (a > b ? a : b);
  }
  free(sum);
  free(count);
  *score = s ? total / (double)s : 0;
  return VKFT_OK;
}

int vkft_silhouette(const float *x, size_t n, size_t d, const int32_t *assign, int k, size_t sample,
                    uint64_t seed, int threads, double *score) {
  for (size_t i = 0; i < n; i++)
    if (assign[i] < 0 || assign[i] >= k)
      return vkft_error("silhouette: row %zu is in cluster %d of %d", i, assign[i], k);
  sample_dist sd;
  if (sample_dist_make(x, n, d, sample, seed, threads, &sd)) return VKFT_ERR;
  int status = silhouette_of(&sd, assign, k, score);
  sample_dist_free(&sd);
  return status;
}

int vkft_kmeans_choose_k(const float *x, size_t n, size_t d, int k_lo, int k_hi,
                         const vkft_kmeans_desc *desc, size_t sample, int32_t *assign,
                         float *centroids, int *k_out, double *scores) {
  if (k_lo < 2 || k_hi < k_lo || (size_t)k_hi > n)
    return vkft_error("k-means: k from %d to %d for %zu rows", k_lo, k_hi, n);
  sample_dist sd;
  if (sample_dist_make(x, n, d, sample, desc->seed, desc->threads, &sd)) return VKFT_ERR;
  int32_t *try_assign = malloc(n * sizeof *try_assign);
  float *try_centroids = malloc((size_t)k_hi * d * sizeof *try_centroids);
  int status = try_assign && try_centroids ? VKFT_OK : vkft_error_nomem();
  double best = -INFINITY;
  for (int k = k_lo; k <= k_hi && status == VKFT_OK; k++) {
    vkft_kmeans_desc kd = *desc;
    kd.k = k;
    double score = 0;
    status = vkft_kmeans(x, n, d, &kd, try_assign, try_centroids, NULL) ||
             silhouette_of(&sd, try_assign, k, &score);
    if (status) break;
    if (scores) scores[k - k_lo] = score;
    if (k == k_lo || score > best || isnan(best)) { /* (a NaN score loses to any number) */
      best = score;
      *k_out = k;
      memcpy(assign, try_assign, n * sizeof *assign);
      if (centroids) memcpy(centroids, try_centroids, (size_t)k * d * sizeof *centroids);
    }
  }
  free(try_assign);
  free(try_centroids);
  sample_dist_free(&sd);
  return status ? VKFT_ERR : VKFT_OK;
}
