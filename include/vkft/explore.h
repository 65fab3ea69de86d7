/* The numerical half of `vkft data explore` (src/data/kmeans.c, pca.c, topic_terms.c): k-means
 * with k-means++ seeding and silhouette-based choice of k, a 2-D PCA projection, and cluster
 * labels by BERTopic's class-based TF-IDF. Plain C on host memory; rows are float vectors of
 * dimension d stored one after the other (x is (n, d)). Deterministic for a given seed, thread
 * count and CPU (the threads split the rows; x86 CPUs with AVX2 and FMA use fused multiply-adds,
 * which round differently from the plain C kernels). */
#ifndef VKFT_EXPLORE_H
#define VKFT_EXPLORE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- k-means (kmeans.c) ---- */

typedef struct vkft_kmeans_desc {
  int k;         /* clusters, 1 <= k <= n */
  uint64_t seed; /* k-means++ seeding */
  int max_iter;  /* Lloyd iterations at most (0: 100) */
  int threads;   /* 0: one per CPU */
} vkft_kmeans_desc;

typedef struct vkft_kmeans_stats {
  int iterations; /* Lloyd iterations run */
  int converged;  /* the last one changed no assignment */
  double inertia; /* sum of squared distances of the rows to their centroids */
} vkft_kmeans_stats;

/* Euclidean k-means: k-means++ seeding (D^2 sampling, Arthur & Vassilvitskii 2007), then Lloyd
 * iterations until no assignment changes or max_iter. assign (n) gets each row's cluster,
 * centroids (k, d) the means (NULL: not wanted). An emptied cluster takes the row farthest from
 * its centroid. stats may be NULL. */
int vkft_kmeans(const float *x, size_t n, size_t d, const vkft_kmeans_desc *desc, int32_t *assign,
                float *centroids, vkft_kmeans_stats *stats);

/* The mean silhouette coefficient (Rousseeuw 1987) of a clustering, Euclidean distances, over a
 * seeded sample of min(n, sample) rows (sample 0: all rows): s(i) = (b - a) / max(a, b) with a
 * the mean distance of row i to the other sampled rows of its cluster and b the smallest mean
 * distance to the sampled rows of another cluster; 0 for a row alone in its cluster (as
 * scikit-learn). */
int vkft_silhouette(const float *x, size_t n, size_t d, const int32_t *assign, int k, size_t sample,
                    uint64_t seed, int threads, double *score);

/* k chosen by silhouette over k_lo..k_hi (each k clustered as desc says, the silhouette on
 * the same seeded sample of `sample` rows): the best k's assignment and centroids are left in
 * assign / centroids ((k_hi, d) floats), *k_out gets it, scores (k_hi - k_lo + 1, may be NULL)
 * every k's silhouette. Ties go to the smaller k. */
int vkft_kmeans_choose_k(const float *x, size_t n, size_t d, int k_lo, int k_hi,
                         const vkft_kmeans_desc *desc, size_t sample, int32_t *assign,
                         float *centroids, int *k_out, double *scores);

/* ---- 2-D projection (pca.c) ---- */

/* The top two principal components of the rows by power iteration on the centred data (no d x d
 * covariance is formed); xy (n, 2) gets each row's coordinates on them, components (2, d, may be
 * NULL) the unit vectors. Each component's sign makes its largest-magnitude entry positive (the
 * first such entry on ties), so the picture does not flip between runs. */
int vkft_pca2(const float *x, size_t n, size_t d, uint64_t seed, float *xy, float *components);

/* ---- cluster labels (topic_terms.c) ---- */

/* Words of a text: maximal runs of Unicode letters and digits (utf8proc categories L* and N*,
 * with an apostrophe or hyphen kept between two letters), lowercased (utf8proc), of 2 code points
 * or more, not all digits and not in the small English stop-word list. Calls fn for each. */
typedef void (*vkft_word_fn)(const char *word, size_t len, void *arg);
int vkft_words(const char *text, vkft_word_fn fn, void *arg);

typedef struct vkft_topic_terms {
  int k, top;
  char **terms;   /* (k, top): cluster c's best terms, NULL past the words it has */
  double *scores; /* (k, top): their c-TF-IDF weights */
} vkft_topic_terms;

/* BERTopic's class-based TF-IDF (Grootendorst 2022, arXiv 2203.05794; bertopic/vectorizers/
 * _ctfidf.py): the records of a cluster are one document; with count(w, c) the occurrences of
 * word w in cluster c,
 *   tf(w, c)  = count(w, c) / sum_w' count(w', c)          (L1-normalised per cluster)
 *   idf(w)    = log(1 + A / f(w)),  f(w) = sum_c count(w, c),
 *               A = floor(sum_{w,c} count(w, c) / k) (the mean words per cluster, truncated as
 *               BERTopic's code truncates it; at least 1)
 *   W(w, c)   = tf(w, c) * idf(w)
 * and each cluster's `top` words of largest W (ties: the word's bytes in order). cls (n) gives
 * each text's cluster in 0..k-1 (a negative one is left out). */
int vkft_topic_terms_compute(const char *const *texts, const int32_t *cls, size_t n, int k, int top,
                             vkft_topic_terms *out);
void vkft_topic_terms_free(vkft_topic_terms *t);

/* ---- the map page (src/report/explore_page.c) ---- */

typedef struct vkft_explore_map {
  const char *title, *model; /* the data file and the model, as given */
  size_t n;                  /* records */
  int k;
  const char *const *texts;   /* (n) the record's text, shown on hover and in the tables */
  const char *const *records; /* (n) the record's JSON (one line): what a selection writes */
  const char *const *where;   /* (n) "file:line" */
  const int32_t *cluster;     /* (n) */
  const float *xy;            /* (n, 2) the projection */
  const vkft_topic_terms *terms;
  /* numeric score fields the records carry (NaN where one lacks it): (n, n_fields) */
  int n_fields;
  const char *const *fields;
  const double *field_values;
  const uint32_t *examples; /* (k, n_examples) record indices, UINT32_MAX past a cluster's size */
  int n_examples;
  /* near-duplicate groups: group g is dup_members[dup_start[g] .. dup_start[g + 1]) */
  size_t n_dup_groups;
  const size_t *dup_start;
  const uint32_t *dup_members;
  const double *silhouette; /* (k_hi - k_lo + 1) when k was chosen, else NULL */
  int k_lo, k_hi;
  const char *method; /* one line: how the embeddings, clusters and picture were made */
} vkft_explore_map;

/* Writes the map as one self-contained HTML file (inline SVG, a little JavaScript; no network):
 * the scatter coloured by cluster with the record's text on hover, the legend, the cluster table
 * (size, top terms, mean scores, example records) with check boxes that download the selected
 * clusters' records as JSON Lines, and the near-duplicate groups. Written atomically. */
int vkft_explore_write_html(const char *path, const vkft_explore_map *map);

#ifdef __cplusplus
}
#endif
#endif
