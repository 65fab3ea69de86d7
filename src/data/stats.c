/* Dataset statistics for `vkft data stats`: record counts by status and format, roles, token
 * length percentiles and histogram (lengths before truncation), trained vs masked tokens. */
#include "vkft/dataset.h"

#include "vkft/error.h"

#include <stdlib.h>
#include <string.h>

static int cmp_size(const void *a, const void *b) {
  size_t x = *(const size_t *)a, y = *(const size_t *)b;
  return x < y ? -1 : x > y;
}

static void count_roles(vkft_data_stats *st, const char *roles) {
  while (roles && *roles) {
    const char *end = strchr(roles, ',');
    size_t n = end ? (size_t)(end - roles) : strlen(roles);
    size_t k = 0;
    while (k < st->n_roles &&
           (strlen(st->role_names[k]) != n || strncmp(st->role_names[k], roles, n) != 0))
      k++;
    if (k == st->n_roles && st->n_roles < 8 && n < sizeof st->role_names[0]) {
      memcpy(st->role_names[k], roles, n);
      st->role_names[k][n] = 0;
      st->n_roles++;
    }
    if (k < st->n_roles) st->role_counts[k]++;
    roles = end ? end + 1 : NULL;
  }
}

int vkft_data_stats_compute(const vkft_dataset *ds, vkft_data_stats *st) {
  memset(st, 0, sizeof *st);
  st->records = ds->n_examples;
  st->ok = ds->n_ok;
  st->bad = ds->n_bad;
  st->empty = ds->n_empty;
  st->truncated = ds->n_truncated;
  size_t *lens = malloc((ds->n_examples + 1) * sizeof *lens);
  if (!lens) return vkft_error_nomem();
  size_t n = 0;
  double sum = 0;
  for (size_t i = 0; i < ds->n_examples; i++) {
    const vkft_example *ex = &ds->examples[i];
    if (ex->status == VKFT_EXAMPLE_BAD) continue;
    st->format_counts[ex->format]++;
    count_roles(st, ex->roles);
    if (!ex->input_ids) continue;
    st->over_max_len += ex->full_len > (uint32_t)ds->max_len;
    if (ex->status == VKFT_EXAMPLE_OK) {
      st->tokens += ex->len;
      st->trained += ex->n_trained;
    }
    lens[n++] = ex->full_len;
    sum += ex->full_len;
  }
  st->masked = st->tokens - st->trained;
  if (n) {
    qsort(lens, n, sizeof *lens, cmp_size);
    st->len_min = lens[0];
    st->len_max = lens[n - 1];
    st->len_mean = sum / (double)n;
    static const double q[5] = {0.50, 0.90, 0.95, 0.99, 1.0};
    for (int k = 0; k < 5; k++) {
      size_t at = (size_t)(q[k] * (double)(n - 1) + 0.5);
      st->len_p[k] = lens[at < n ? at : n - 1];
    }
    size_t width = (st->len_max + 10) / 10;
    if (width == 0) width = 1;
    for (int k = 0; k <= 10; k++) st->hist_edges[k] = (size_t)k * width;
    for (size_t i = 0; i < n; i++) {
      size_t b = lens[i] / width;
      st->hist_counts[b < 10 ? b : 9]++;
    }
  }
  free(lens);
  return VKFT_OK;
}
