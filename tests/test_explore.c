/* The analysis behind `vkft data explore` (vkft/explore.h): k-means recovers well-separated
 * synthetic clusters exactly (any thread count, the same assignment), the silhouette equals a
 * hand-computed value and picks the true k, PCA matches a 2-D case computed by hand (values and
 * signs), and c-TF-IDF and the word splitter match small hand-computed cases. tests/explore.sh
 * runs the command end to end in a browser. */
#include "check.h"

#include "vkft/error.h"
#include "vkft/explore.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng_state = 12345;
static double gauss(void) { /* Box-Muller on an LCG: enough for test data */
  double u[2];
  for (int i = 0; i < 2; i++) {
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    u[i] = ((double)(rng_state >> 11) + 0.5) / 9007199254740992.0;
  }
  return sqrt(-2 * log(u[0])) * cos(6.283185307179586 * u[1]);
}

/* n rows of dimension d around K centres 10 apart (noise 0.3 per coordinate), interleaved */
static float *blobs(size_t n, size_t d, int K, int32_t *truth) {
  float *x = malloc(n * d * sizeof *x), *centre = malloc((size_t)K * d * sizeof *centre);
  for (size_t q = 0; q < (size_t)K * d; q++) centre[q] = (float)(gauss() * 5);
  for (size_t i = 0; i < n; i++) {
    truth[i] = (int32_t)((i * 7) % (size_t)K);
    for (size_t t = 0; t < d; t++)
      x[i * d + t] = centre[(size_t)truth[i] * d + t] + (float)(0.3 * gauss());
  }
  free(centre);
  return x;
}

/* the two labelings are the same partition (a bijection between labels) */
static int same_partition(const int32_t *a, const int32_t *b, size_t n, int k) {
  int32_t map[64], back[64];
  for (int c = 0; c < k; c++) map[c] = back[c] = -1;
  for (size_t i = 0; i < n; i++) {
    if (a[i] < 0 || a[i] >= k || b[i] < 0 || b[i] >= k) return 0;
    if (map[a[i]] < 0 && back[b[i]] < 0) map[a[i]] = b[i], back[b[i]] = a[i];
    if (map[a[i]] != b[i] || back[b[i]] != a[i]) return 0;
  }
  return 1;
}

static void kmeans_cases(void) {
  enum { N = 600, D = 24, K = 5 };
  int32_t truth[N], got[N], got2[N];
  float *x = blobs(N, D, K, truth);
  float cent[K * D];
  vkft_kmeans_stats st;
  vkft_kmeans_desc kd = {.k = K, .seed = 7, .threads = 1};
  CHECKF(vkft_kmeans(x, N, D, &kd, got, cent, &st) == VKFT_OK, "%s", vkft_error_message());
  CHECK(same_partition(truth, got, N, K));
  CHECKF(st.converged && st.iterations < 20, "%d iterations", st.iterations);
  /* the centroids are the means of their rows */
  double worst = 0;
  for (int c = 0; c < K; c++)
    for (int t = 0; t < D; t++) {
      double sum = 0, count = 0;
      for (int i = 0; i < N; i++)
        if (got[i] == c) sum += x[i * D + t], count++;
      worst = fmax(worst, fabs(sum / count - cent[c * D + t]));
    }
  CHECKF(worst < 1e-4, "centroid off the mean by %g", worst);
  kd.threads = 2;
  CHECK(vkft_kmeans(x, N, D, &kd, got2, NULL, NULL) == VKFT_OK);
  CHECK(!memcmp(got, got2, sizeof got));
  /* the silhouette picks the true k among 2..9 */
  int k = 0;
  double scores[8];
  vkft_kmeans_desc cd = {.seed = 3};
  CHECKF(vkft_kmeans_choose_k(x, N, D, 2, 9, &cd, 200, got, NULL, &k, scores) == VKFT_OK, "%s",
         vkft_error_message());
  CHECKF(k == K, "chose k = %d (silhouette at 5: %.3f)", k, scores[3]);
  CHECK(same_partition(truth, got, N, K));
  CHECK(scores[3] > 0.8);
  free(x);
  /* bad k */
  CHECK(vkft_kmeans(cent, 2, D, &(vkft_kmeans_desc){.k = 3}, got, NULL, NULL) == VKFT_ERR);
  /* k = n with duplicated rows: every cluster keeps a row */
  float dup[4 * 2] = {1, 1, 1, 1, 1, 1, 5, 5};
  int32_t a4[4];
  CHECK(vkft_kmeans(dup, 4, 2, &(vkft_kmeans_desc){.k = 4}, a4, NULL, NULL) == VKFT_OK);
  int seen[4] = {0};
  for (int i = 0; i < 4; i++) seen[a4[i] & 3]++;
  CHECK(seen[0] == 1 && seen[1] == 1 && seen[2] == 1 && seen[3] == 1);
}

static void silhouette_by_hand(void) {
  /* 1-D: {0, 1} and {10, 11}. Row 0: a = 1, b = (10 + 11) / 2; row 1: a = 1, b = (9 + 10) / 2;
   * the other two mirror them: mean = (9.5 / 10.5 + 8.5 / 9.5) / 2 */
  float x[4] = {0, 1, 10, 11};
  int32_t lab[4] = {0, 0, 1, 1};
  double s = 0, want = (9.5 / 10.5 + 8.5 / 9.5) / 2;
  CHECK(vkft_silhouette(x, 4, 1, lab, 2, 0, 1, 1, &s) == VKFT_OK);
  CHECKF(fabs(s - want) < 1e-6, "silhouette %.9f, want %.9f", s, want);
  /* a singleton counts 0: {0, 1} {10}: rows 0, 1 as above with b = 10 and 9, row 2: 0 */
  int32_t lab3[3] = {0, 0, 1};
  want = ((10.0 - 1) / 10 + (9.0 - 1) / 9) / 3;
  CHECK(vkft_silhouette(x, 3, 1, lab3, 2, 0, 1, 1, &s) == VKFT_OK);
  CHECKF(fabs(s - want) < 1e-6, "silhouette %.9f, want %.9f", s, want);
}

static void pca_by_hand(void) {
  /* (3,3), (-3,-3), (1,-1), (-1,1), shifted by (2, 5): centred scatter [[20,16],[16,20]], whose
   * eigenvectors are (1,1)/sqrt2 (36) and (1,-1)/sqrt2 (4); signs: the first of the two equal
   * largest entries positive. Projections: (3,3) -> (3 sqrt2, 0), (1,-1) -> (0, sqrt2). */
  float x[8] = {5, 8, -1, 2, 3, 4, 1, 6};
  float xy[8], comp[4];
  CHECK(vkft_pca2(x, 4, 2, 1, xy, comp) == VKFT_OK);
  double r = sqrt(0.5), s2 = sqrt(2.0);
  float want_comp[4] = {(float)r, (float)r, (float)r, (float)-r};
  float want_xy[8] = {(float)(3 * s2), 0, (float)(-3 * s2), 0, 0, (float)s2, 0, (float)-s2};
  double worst = 0;
  for (int i = 0; i < 4; i++) worst = fmax(worst, fabs(comp[i] - want_comp[i]));
  for (int i = 0; i < 8; i++) worst = fmax(worst, fabs(xy[i] - want_xy[i]));
  CHECKF(worst < 1e-5, "pca off by %g (comp %g %g / %g %g)", worst, comp[0], comp[1], comp[2],
         comp[3]);
}

typedef struct words_seen {
  char text[512];
} words_seen;

static void collect(const char *w, size_t len, void *arg) {
  words_seen *s = arg;
  strncat(s->text, w, len);
  strcat(s->text, "|");
}

static void terms_by_hand(void) {
  words_seen s = {{0}};
  vkft_words("The CAFÉ serves naïve co-op coffee, don't 42 x b2 -dash- it's", collect, &s);
  CHECKF(!strcmp(s.text, "café|serves|naïve|co-op|coffee|don't|b2|dash|it's|"), "%s", s.text);
  /* cluster 0: apple x2, banana; cluster 1: banana, cherry. A = floor(5 / 2) = 2 (BERTopic
   * truncates the mean), f = {2, 2, 1}: W(apple, 0) = 2/3 log(1 + 2/2), W(banana, 0) = 1/3 log 2,
   * W(cherry, 1) = 1/2 log(1 + 2/1), W(banana, 1) = 1/2 log 2 */
  const char *texts[3] = {"apple banana", "The apple!", "cherry and banana"};
  int32_t cls[3] = {0, 0, 1};
  vkft_topic_terms t;
  CHECKF(vkft_topic_terms_compute(texts, cls, 3, 2, 3, &t) == VKFT_OK, "%s", vkft_error_message());
  CHECK(t.terms[0] && !strcmp(t.terms[0], "apple") && t.terms[1] && !strcmp(t.terms[1], "banana"));
  CHECK(!t.terms[2]);
  CHECK(t.terms[3] && !strcmp(t.terms[3], "cherry") && t.terms[4] && !strcmp(t.terms[4], "banana"));
  CHECK(fabs(t.scores[0] - 2.0 / 3 * log(2.0)) < 1e-12);
  CHECK(fabs(t.scores[1] - 1.0 / 3 * log(2.0)) < 1e-12);
  CHECK(fabs(t.scores[3] - 0.5 * log(3.0)) < 1e-12);
  CHECK(fabs(t.scores[4] - 0.5 * log(2.0)) < 1e-12);
  vkft_topic_terms_free(&t);
}

int main(void) {
  kmeans_cases();
  silhouette_by_hand();
  pca_by_hand();
  terms_by_hand();
  return check_summary();
}
