/* Batches: per epoch, draws examples by file weight, shuffles them with a seeded generator,
 * and packs them into rows of max_len tokens (first-fit decreasing within windows of the
 * shuffled order, so rows are full yet the order stays random) or, without packing, groups
 * them by length into padded batches. Everything is a function of (seed, epoch): batch i of
 * epoch e is the same batch in every run, which is what makes resuming exact. */
#include "internal.h"

#include "vkft/error.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { PACK_WINDOW = 512, GROUP_BATCHES = 32 };

struct vkft_packer {
  const vkft_dataset *ds;
  uint32_t *ids, *files; /* the examples used and the file of each */
  size_t n_ids;
  int B, T, packing, shuffle;
  uint64_t seed;
  /* the layout of one epoch, cached */
  int have_epoch;
  uint64_t epoch;
  uint32_t *order; /* example ids, row after row */
  size_t n_order;
  size_t *row_start; /* n_rows + 1 */
  size_t n_rows;
  size_t *batch_start; /* first row of each batch; n_batches + 1 */
  size_t n_batches;
};

static uint32_t ex_len(const vkft_packer *p, uint32_t id) {
  uint32_t len = p->ds->examples[id].len;
  return len > (uint32_t)p->T ? (uint32_t)p->T : len;
}

int vkft_packer_create(const vkft_dataset *ds, const uint32_t *ids, size_t n_ids,
                       const vkft_packer_desc *desc, vkft_packer **out) {
  *out = NULL;
  vkft_packer_desc d = desc ? *desc : (vkft_packer_desc){0};
  vkft_packer *p = calloc(1, sizeof *p);
  if (!p) return vkft_error_nomem();
  p->ds = ds;
  p->B = d.rows > 0 ? d.rows : 1;
  p->T = d.max_len > 0 ? d.max_len : ds->max_len;
  p->packing = d.packing >= 0;
  p->shuffle = !d.no_shuffle;
  p->seed = d.seed;
  size_t n = ids ? n_ids : ds->n_ok;
  p->ids = malloc((n + 1) * sizeof *p->ids);
  p->files = malloc((n + 1) * sizeof *p->files);
  if (!p->ids || !p->files) {
    vkft_packer_free(p);
    return vkft_error_nomem();
  }
  for (size_t i = 0, k = 0; i < (ids ? n_ids : ds->n_examples); i++) {
    uint32_t id = ids ? ids[i] : (uint32_t)i;
    if (id >= ds->n_examples) {
      vkft_packer_free(p);
      return vkft_error("packer: example id %u out of range", id);
    }
    if (ds->examples[id].status == VKFT_EXAMPLE_OK && ds->examples[id].len > 0) {
      p->files[k] = ds->examples[id].file;
      p->ids[k++] = id;
    }
    p->n_ids = k;
  }
  if (p->n_ids == 0) {
    vkft_packer_free(p);
    return vkft_error("no examples to train on (every record was bad or had no trained token)");
  }
  if (p->shuffle && ds->file_weights &&
      data_check_mix(p->files, p->n_ids, ds->file_weights, ds->n_files,
                     (const char *const *)ds->file_paths) != VKFT_OK) {
    vkft_packer_free(p);
    return VKFT_ERR;
  }
  *out = p;
  return VKFT_OK;
}

size_t data_file_draws(double w, size_t n) {
  double copies = floor(w);
  return (size_t)copies * n + (size_t)((w - copies) * (double)n + 0.5);
}

#define MAX_EPOCH_EXAMPLES ((size_t)1 << 28) /* 1 GiB of indices */

int data_check_mix(const uint32_t *files, size_t n_ids, const double *weights, size_t n_files,
                   const char *const *paths) {
  double total = 0;
  for (size_t f = 0; f < n_files; f++) {
    size_t n = 0;
    for (size_t i = 0; i < n_ids; i++) n += files[i] == f;
    double w = weights[f];
    if (n == 0) continue;
    if (w * (double)n > (double)MAX_EPOCH_EXAMPLES)
      return vkft_error("data.train: %s: weight %g draws %.3g examples per epoch (at most %zu)",
                        paths[f], w, w * (double)n, MAX_EPOCH_EXAMPLES);
    size_t draws = data_file_draws(w, n);
    if (draws == 0)
      return vkft_error("data.train: %s: weight %g draws none of its %zu examples per epoch "
                        "(the smallest weight that draws one is %.3g)",
                        paths[f], w, n, 0.5 / (double)n);
    total += (double)draws;
  }
  if (total > (double)MAX_EPOCH_EXAMPLES)
    return vkft_error("data.train: the weights draw %.3g examples per epoch (at most %zu)", total,
                      MAX_EPOCH_EXAMPLES);
  return VKFT_OK;
}

size_t vkft_packer_file_draws(const vkft_packer *p, size_t file, size_t *examples) {
  const vkft_dataset *ds = p->ds;
  size_t n = 0;
  for (size_t i = 0; i < p->n_ids; i++) n += p->files[i] == file;
  if (examples) *examples = n;
  double w = p->shuffle && ds->file_weights ? ds->file_weights[file] : 1.0;
  return data_file_draws(w, n);
}

void vkft_packer_free(vkft_packer *p) {
  if (!p) return;
  free(p->ids);
  free(p->files);
  free(p->order);
  free(p->row_start);
  free(p->batch_start);
  free(p);
}

void vkft_batch_free(vkft_batch *b) {
  free(b->input_ids);
  free(b->labels);
  free(b->positions);
  free(b->seq_ids);
  memset(b, 0, sizeof *b);
}

int data_epoch_draw(const uint32_t *ids, const uint32_t *files, size_t n_ids, const double *weights,
                    size_t n_files, int shuffle, uint64_t seed, uint64_t epoch, uint32_t **order,
                    size_t *n_order) {
  *order = NULL;
  *n_order = 0;
  size_t total = 0;
  size_t *count = calloc(n_files + 1, sizeof *count);
  if (!count) return vkft_error_nomem();
  for (size_t i = 0; i < n_ids; i++) count[files[i]]++;
  for (size_t f = 0; f < n_files; f++) {
    double w = weights ? weights[f] : 1.0;
    total += (size_t)(w * (double)count[f] + 0.5) + count[f];
  }
  uint32_t *out = malloc((total + 1) * sizeof *out);
  uint32_t *group = malloc((n_ids + 1) * sizeof *group);
  if (!out || !group) {
    free(count), free(group), free(out);
    return vkft_error_nomem();
  }
  size_t n_out = 0;
  for (size_t f = 0; f < n_files; f++) {
    size_t n = 0;
    for (size_t i = 0; i < n_ids; i++)
      if (files[i] == f) group[n++] = ids[i];
    double w = weights ? weights[f] : 1.0;
    size_t copies = (size_t)w;
    size_t extra = (size_t)((w - (double)copies) * (double)n + 0.5);
    for (size_t c = 0; c < copies; c++)
      for (size_t i = 0; i < n; i++) out[n_out++] = group[i];
    if (extra) {
      uint64_t state = seed ^ (epoch * 0x9E3779B97F4A7C15ull) ^ ((uint64_t)f << 48) ^ 0xD1CE;
      data_shuffle_u32(group, n, &state);
      for (size_t i = 0; i < extra && i < n; i++) out[n_out++] = group[i];
    }
  }
  free(group);
  free(count);
  if (shuffle) {
    uint64_t state = seed ^ (epoch * 0xA24BAED4963EE407ull);
    data_shuffle_u32(out, n_out, &state);
  }
  *order = out;
  *n_order = n_out;
  return VKFT_OK;
}

/* Sorts a window by length, longest first; ties keep their drawn order (insertion order of an
 * index pair keeps it deterministic regardless of qsort's stability). */
typedef struct by_len {
  uint32_t len, pos, id;
} by_len;

static int cmp_len_desc(const void *a, const void *b) {
  const by_len *x = a, *y = b;
  if (x->len != y->len) return x->len > y->len ? -1 : 1;
  return x->pos < y->pos ? -1 : x->pos > y->pos;
}

int data_group_by_length(const uint32_t *items, const uint32_t *lens, size_t n, size_t per_batch,
                         int shuffle, uint64_t *state, uint32_t *out, size_t *batch_start,
                         size_t *n_batches) {
  /* windows of GROUP_BATCHES batches sorted by length, so a batch pads little; then the batches
   * in a seeded random order */
  size_t group = per_batch * GROUP_BATCHES;
  size_t max_batches = (n + per_batch - 1) / per_batch;
  by_len *win = malloc((group + 1) * sizeof *win);
  size_t *first = malloc((max_batches + 1) * sizeof *first);
  size_t *size = malloc((max_batches + 1) * sizeof *size);
  uint32_t *perm = malloc((max_batches + 1) * sizeof *perm);
  uint32_t *sorted = malloc((n + 1) * sizeof *sorted);
  if (!win || !first || !size || !perm || !sorted) {
    free(win), free(first), free(size), free(perm), free(sorted);
    return vkft_error_nomem();
  }
  size_t nb = 0;
  for (size_t g0 = 0; g0 < n; g0 += group) {
    size_t gn = n - g0 < group ? n - g0 : group;
    for (size_t i = 0; i < gn; i++) win[i] = (by_len){lens[g0 + i], (uint32_t)i, items[g0 + i]};
    qsort(win, gn, sizeof *win, cmp_len_desc);
    for (size_t i = 0; i < gn; i++) sorted[g0 + i] = win[i].id;
    for (size_t b = 0; b < gn; b += per_batch) {
      first[nb] = g0 + b;
      size[nb++] = gn - b < per_batch ? gn - b : per_batch;
    }
  }
  for (size_t b = 0; b < nb; b++) perm[b] = (uint32_t)b;
  if (shuffle) data_shuffle_u32(perm, nb, state);
  size_t n_out = 0;
  for (size_t k = 0; k < nb; k++) {
    batch_start[k] = n_out;
    for (size_t i = 0; i < size[perm[k]]; i++) out[n_out++] = sorted[first[perm[k]] + i];
  }
  batch_start[nb] = n_out;
  *n_batches = nb;
  free(win), free(first), free(size), free(perm), free(sorted);
  return VKFT_OK;
}

static int layout(vkft_packer *p, uint64_t epoch) {
  if (p->have_epoch && p->epoch == epoch) return VKFT_OK;
  p->have_epoch = 0;
  free(p->order);
  if (data_epoch_draw(p->ids, p->files, p->n_ids, p->shuffle ? p->ds->file_weights : NULL,
                      p->ds->n_files, p->shuffle, p->seed, epoch, &p->order, &p->n_order))
    return VKFT_ERR;
  size_t n = p->n_order;
  free(p->row_start);
  free(p->batch_start);
  p->row_start = malloc((n + 2) * sizeof *p->row_start);
  p->batch_start = malloc((n / (size_t)p->B + 3) * sizeof *p->batch_start);
  uint32_t *out = malloc((n + 1) * sizeof *out);
  by_len *win = malloc((PACK_WINDOW + 1) * sizeof *win);
  size_t *fill = malloc((PACK_WINDOW + 1) * sizeof *fill);
  if (!p->row_start || !p->batch_start || !out || !win || !fill) {
    free(out), free(win), free(fill);
    return vkft_error_nomem();
  }
  uint64_t state = p->seed ^ (epoch * 0xC2B2AE3D27D4EB4Full) ^ 0xB0B;
  p->n_rows = 0;
  size_t n_out = 0;
  if (p->packing) {
    /* First-fit decreasing inside each window of the shuffled order. */
    for (size_t w0 = 0; w0 < n; w0 += PACK_WINDOW) {
      size_t wn = n - w0 < PACK_WINDOW ? n - w0 : PACK_WINDOW;
      for (size_t i = 0; i < wn; i++)
        win[i] = (by_len){ex_len(p, p->order[w0 + i]), (uint32_t)i, p->order[w0 + i]};
      qsort(win, wn, sizeof *win, cmp_len_desc);
      size_t rows = 0;
      uint32_t *row_of = malloc(wn * sizeof *row_of);
      if (!row_of) {
        free(out), free(win), free(fill);
        return vkft_error_nomem();
      }
      for (size_t i = 0; i < wn; i++) {
        size_t r = 0;
        while (r < rows && fill[r] + win[i].len > (size_t)p->T) r++;
        if (r == rows) fill[rows++] = 0;
        fill[r] += win[i].len;
        row_of[i] = (uint32_t)r;
      }
      /* Rows of this window in a seeded random order, each row's examples longest first. */
      uint32_t *perm = malloc((rows + 1) * sizeof *perm);
      if (!perm) {
        free(row_of), free(out), free(win), free(fill);
        return vkft_error_nomem();
      }
      for (size_t r = 0; r < rows; r++) perm[r] = (uint32_t)r;
      if (p->shuffle) data_shuffle_u32(perm, rows, &state);
      for (size_t k = 0; k < rows; k++) {
        p->row_start[p->n_rows++] = n_out;
        for (size_t i = 0; i < wn; i++)
          if (row_of[i] == perm[k]) out[n_out++] = win[i].id;
      }
      free(perm);
      free(row_of);
    }
    p->row_start[p->n_rows] = n_out;
    p->n_batches = 0;
    for (size_t r = 0; r < p->n_rows; r += (size_t)p->B) p->batch_start[p->n_batches++] = r;
    p->batch_start[p->n_batches] = p->n_rows;
  } else {
    /* One example per row, in batches of similar lengths. */
    uint32_t *lens = calloc(n + 1, sizeof *lens);
    if (!lens) {
      free(out), free(win), free(fill);
      return vkft_error_nomem();
    }
    for (size_t i = 0; i < n; i++) lens[i] = ex_len(p, p->order[i]);
    int rc = data_group_by_length(p->order, lens, n, (size_t)p->B, p->shuffle, &state, out,
                                  p->batch_start, &p->n_batches);
    free(lens);
    if (rc) {
      free(out), free(win), free(fill);
      return VKFT_ERR;
    }
    for (n_out = 0; n_out < n; n_out++) p->row_start[n_out] = n_out;
    p->n_rows = n;
    p->row_start[n] = n;
  }
  free(p->order);
  p->order = out;
  p->n_order = n_out;
  free(win);
  free(fill);
  p->have_epoch = 1;
  p->epoch = epoch;
  return VKFT_OK;
}

int vkft_packer_epoch_batches(vkft_packer *p, uint64_t epoch, size_t *n) {
  *n = 0;
  if (layout(p, epoch) != VKFT_OK) return VKFT_ERR;
  *n = p->n_batches;
  return VKFT_OK;
}

int vkft_packer_fill(vkft_packer *p, uint64_t epoch, double *fill) {
  *fill = 0;
  if (layout(p, epoch) != VKFT_OK) return VKFT_ERR;
  if (p->n_rows == 0) return VKFT_OK;
  size_t tokens = 0, slots = 0;
  for (size_t b = 0; b < p->n_batches; b++) {
    size_t longest = 0;
    for (size_t r = p->batch_start[b]; r < p->batch_start[b + 1]; r++) {
      size_t row = 0;
      for (size_t k = p->row_start[r]; k < p->row_start[r + 1]; k++) row += ex_len(p, p->order[k]);
      tokens += row;
      if (row > longest) longest = row;
    }
    slots += (p->packing ? (size_t)p->T : longest) * (p->batch_start[b + 1] - p->batch_start[b]);
  }
  *fill = slots ? (double)tokens / (double)slots : 0;
  return VKFT_OK;
}

int vkft_packer_batch(vkft_packer *p, uint64_t epoch, size_t index, vkft_batch *out) {
  if (layout(p, epoch)) return VKFT_ERR;
  if (index >= p->n_batches)
    return vkft_error("batch %zu is past the end of epoch %llu (%zu batches)", index,
                      (unsigned long long)epoch, p->n_batches);
  size_t r0 = p->batch_start[index], r1 = p->batch_start[index + 1];
  int B = (int)(r1 - r0), T = p->T;
  if (!p->packing) {
    T = 1;
    for (size_t r = r0; r < r1; r++)
      if ((int)ex_len(p, p->order[p->row_start[r]]) > T)
        T = (int)ex_len(p, p->order[p->row_start[r]]);
  }
  size_t need = (size_t)B * (size_t)T;
  if (need > out->cap) {
    vkft_batch_free(out);
    out->input_ids = malloc(need * sizeof *out->input_ids);
    out->labels = malloc(need * sizeof *out->labels);
    out->positions = malloc(need * sizeof *out->positions);
    out->seq_ids = malloc(need * sizeof *out->seq_ids);
    if (!out->input_ids || !out->labels || !out->positions || !out->seq_ids) {
      vkft_batch_free(out);
      return vkft_error_nomem();
    }
    out->cap = need;
  }
  out->B = B;
  out->T = T;
  out->n_tokens = out->n_trained = out->n_sequences = 0;
  for (size_t i = 0; i < need; i++) {
    out->input_ids[i] = p->ds->pad_id;
    out->labels[i] = VKFT_LABEL_IGNORE;
    out->positions[i] = 0;
    out->seq_ids[i] = -1;
  }
  for (size_t r = r0; r < r1; r++) {
    size_t at = (r - r0) * (size_t)T;
    int32_t seq = 0;
    for (size_t k = p->row_start[r]; k < p->row_start[r + 1]; k++, seq++) {
      const vkft_example *ex = &p->ds->examples[p->order[k]];
      uint32_t len = ex_len(p, p->order[k]);
      for (uint32_t t = 0; t < len; t++, at++) {
        out->input_ids[at] = ex->input_ids[t];
        out->labels[at] = t == 0 ? VKFT_LABEL_IGNORE : ex->labels[t];
        out->positions[at] = (int32_t)t;
        out->seq_ids[at] = seq;
        out->n_trained += out->labels[at] != VKFT_LABEL_IGNORE;
      }
      out->n_tokens += len;
      out->n_sequences++;
    }
  }
  if (out->n_trained == 0)
    return vkft_error("batch %zu of epoch %llu has no trained token (every label is masked)", index,
                      (unsigned long long)epoch);
  return VKFT_OK;
}
