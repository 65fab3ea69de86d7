/* Micro-batches of preference pairs: per epoch the pairs are drawn by file weight and shuffled
 * with a seeded generator (the SFT packer's draw) and cut into micro-batches of N pairs (padded
 * training batches take pairs of similar lengths together, in a seeded random batch order; packed
 * and eval batches keep the drawn order); each batch is laid out as the 2N sequences prompt +
 * chosen of its pairs, then prompt + rejected, one per padded row or first-fit into packed rows.
 * Everything is a function of (seed, epoch, index), and a pair is never split across batches. */
#include "pref_internal.h"

#include "vkft/error.h"

#include <stdlib.h>
#include <string.h>

struct vkft_pref_batcher {
  const vkft_pref_dataset *ds;
  uint32_t *ids, *files; /* the pairs used and the file of each */
  size_t n_ids;
  int N, T, pack, shuffle;
  uint64_t seed;
  /* the layout of one epoch, cached */
  int have_epoch;
  uint64_t epoch;
  uint32_t *order;     /* pairs, batch after batch */
  size_t *batch_start; /* n_batches + 1 */
  size_t n_batches;
};

static uint32_t seq_len(const vkft_pref_example *ex, int which) {
  return ex->prompt_len + (which ? ex->rejected_len : ex->chosen_len);
}

static uint32_t pair_len(const vkft_pref_example *ex) {
  uint32_t c = seq_len(ex, 0), r = seq_len(ex, 1);
  return c > r ? c : r;
}

void vkft_pref_batcher_free(vkft_pref_batcher *b) {
  if (!b) return;
  free(b->ids);
  free(b->files);
  free(b->order);
  free(b->batch_start);
  free(b);
}

int vkft_pref_batcher_create(const vkft_pref_dataset *ds, const uint32_t *ids, size_t n_ids,
                             const vkft_pref_batcher_desc *desc, vkft_pref_batcher **out) {
  *out = NULL;
  vkft_pref_batcher_desc d = desc ? *desc : (vkft_pref_batcher_desc){0};
  if (d.pairs < 0 || d.max_len < 0) return vkft_error("pairs and max_len must be >= 0");
  vkft_pref_batcher *b = calloc(1, sizeof *b);
  if (!b) return vkft_error_nomem();
  b->ds = ds;
  b->N = d.pairs > 0 ? d.pairs : 1;
  b->T = d.max_len > 0 ? d.max_len : ds->max_len;
  b->pack = d.pack != 0;
  b->shuffle = !d.no_shuffle;
  b->seed = d.seed;
  size_t n = ids ? n_ids : ds->n_ok;
  b->ids = malloc((n + 1) * sizeof *b->ids);
  b->files = malloc((n + 1) * sizeof *b->files);
  if (!b->ids || !b->files) {
    vkft_pref_batcher_free(b);
    return vkft_error_nomem();
  }
  for (size_t i = 0; i < (ids ? n_ids : ds->n_examples); i++) {
    uint32_t id = ids ? ids[i] : (uint32_t)i;
    if (id >= ds->n_examples) {
      vkft_pref_batcher_free(b);
      return vkft_error("preference batcher: pair id %u out of range", id);
    }
    const vkft_pref_example *ex = &ds->examples[id];
    if (ex->status != VKFT_EXAMPLE_OK) continue;
    if (b->pack && pair_len(ex) > (uint32_t)b->T) {
      int T = b->T;
      vkft_pref_batcher_free(b);
      return vkft_error("preference batcher: a sequence of %u tokens (record %u) does not fit "
                        "packed rows of %d",
                        pair_len(ex), id, T);
    }
    b->files[b->n_ids] = ex->file;
    b->ids[b->n_ids++] = id;
  }
  if (b->n_ids == 0) {
    vkft_pref_batcher_free(b);
    return vkft_error("no preference pairs to train on (every record was bad or truncated "
                      "away)");
  }
  if (b->shuffle && ds->file_weights &&
      data_check_mix(b->files, b->n_ids, ds->file_weights, ds->n_files,
                     (const char *const *)ds->file_paths)) {
    vkft_pref_batcher_free(b);
    return VKFT_ERR;
  }
  *out = b;
  return VKFT_OK;
}

static int layout(vkft_pref_batcher *b, uint64_t epoch) {
  if (b->have_epoch && b->epoch == epoch) return VKFT_OK;
  b->have_epoch = 0;
  free(b->order);
  free(b->batch_start);
  b->batch_start = NULL;
  uint32_t *drawn;
  size_t n;
  if (data_epoch_draw(b->ids, b->files, b->n_ids, b->shuffle ? b->ds->file_weights : NULL,
                      b->ds->n_files, b->shuffle, b->seed, epoch, &drawn, &n))
    return VKFT_ERR;
  b->order = malloc((n + 1) * sizeof *b->order);
  b->batch_start = malloc((n / (size_t)b->N + 3) * sizeof *b->batch_start);
  uint32_t *lens = calloc(n + 1, sizeof *lens);
  int rc = b->order && b->batch_start && lens ? VKFT_OK : vkft_error_nomem();
  if (rc == VKFT_OK && (b->pack || !b->shuffle)) {
    /* packed rows absorb length differences, and eval keeps input order: the drawn order */
    memcpy(b->order, drawn, n * sizeof *drawn);
    b->n_batches = 0;
    for (size_t i = 0; i < n; i += (size_t)b->N) b->batch_start[b->n_batches++] = i;
    b->batch_start[b->n_batches] = n;
  } else if (rc == VKFT_OK) {
    for (size_t i = 0; i < n; i++) lens[i] = pair_len(&b->ds->examples[drawn[i]]);
    uint64_t state = b->seed ^ (epoch * 0xC2B2AE3D27D4EB4Full) ^ 0x9AE5;
    rc = data_group_by_length(drawn, lens, n, (size_t)b->N, b->shuffle, &state, b->order,
                              b->batch_start, &b->n_batches);
  }
  free(lens);
  free(drawn);
  if (rc) return VKFT_ERR;
  b->have_epoch = 1;
  b->epoch = epoch;
  return VKFT_OK;
}

int vkft_pref_batcher_epoch_batches(vkft_pref_batcher *b, uint64_t epoch, size_t *n) {
  *n = 0;
  if (layout(b, epoch)) return VKFT_ERR;
  *n = b->n_batches;
  return VKFT_OK;
}

void vkft_pref_batch_free(vkft_pref_batch *b) {
  vkft_batch_free(&b->tokens);
  free(b->pair_example);
  free(b->seq_row);
  free(b->seq_start);
  free(b->seq_len);
  free(b->seq_trained);
  memset(b, 0, sizeof *b);
}

static int reserve(vkft_pref_batch *out, size_t cells, size_t n_pairs) {
  vkft_batch *t = &out->tokens;
  if (cells > t->cap) {
    vkft_batch_free(t);
    t->input_ids = malloc(cells * sizeof *t->input_ids);
    t->labels = malloc(cells * sizeof *t->labels);
    t->positions = malloc(cells * sizeof *t->positions);
    t->seq_ids = malloc(cells * sizeof *t->seq_ids);
    if (!t->input_ids || !t->labels || !t->positions || !t->seq_ids) {
      vkft_batch_free(t);
      return vkft_error_nomem();
    }
    t->cap = cells;
  }
  if (n_pairs > out->seq_cap) {
    free(out->pair_example), free(out->seq_row), free(out->seq_start), free(out->seq_len);
    free(out->seq_trained);
    out->pair_example = malloc(n_pairs * sizeof *out->pair_example);
    out->seq_row = malloc(2 * n_pairs * sizeof *out->seq_row);
    out->seq_start = malloc(2 * n_pairs * sizeof *out->seq_start);
    out->seq_len = malloc(2 * n_pairs * sizeof *out->seq_len);
    out->seq_trained = malloc(2 * n_pairs * sizeof *out->seq_trained);
    out->seq_cap = n_pairs;
    if (!out->pair_example || !out->seq_row || !out->seq_start || !out->seq_len ||
        !out->seq_trained) {
      out->seq_cap = 0;
      return vkft_error_nomem();
    }
  }
  return VKFT_OK;
}

int vkft_pref_batcher_batch(vkft_pref_batcher *b, uint64_t epoch, size_t index,
                            vkft_pref_batch *out) {
  if (layout(b, epoch)) return VKFT_ERR;
  if (index >= b->n_batches)
    return vkft_error("batch %zu is past the end of epoch %llu (%zu batches)", index,
                      (unsigned long long)epoch, b->n_batches);
  const uint32_t *pairs = b->order + b->batch_start[index];
  int N = (int)(b->batch_start[index + 1] - b->batch_start[index]), S = 2 * N;
  /* where each sequence goes: its own row, or the first packed row with room */
  int32_t *fill = malloc(((size_t)S + 1) * sizeof *fill);
  int32_t *seq_row = malloc(((size_t)S + 1) * sizeof *seq_row);
  int32_t *seq_start = malloc(((size_t)S + 1) * sizeof *seq_start);
  int rc = fill && seq_row && seq_start ? VKFT_OK : vkft_error_nomem();
  int B = 0, T = b->pack ? b->T : 1;
  for (int s = 0; s < S && rc == VKFT_OK; s++) {
    int32_t len = (int32_t)seq_len(&b->ds->examples[pairs[s % N]], s >= N);
    int r = 0;
    if (b->pack)
      while (r < B && fill[r] + len > T) r++;
    else
      r = s, T = len > T ? len : T;
    if (r == B) fill[B++] = 0;
    seq_row[s] = r;
    seq_start[s] = fill[r];
    fill[r] += len;
  }
  if (rc == VKFT_OK) rc = reserve(out, (size_t)B * (size_t)T, (size_t)N);
  vkft_batch *t = &out->tokens;
  if (rc == VKFT_OK) {
    size_t cells = (size_t)B * (size_t)T;
    for (size_t i = 0; i < cells; i++) {
      t->input_ids[i] = b->ds->pad_id;
      t->labels[i] = VKFT_LABEL_IGNORE;
      t->positions[i] = 0;
      t->seq_ids[i] = -1;
    }
    t->B = B;
    t->T = T;
    t->n_tokens = t->n_trained = 0;
    t->n_sequences = (size_t)S;
    out->n_pairs = N;
    for (int i = 0; i < N; i++) out->pair_example[i] = pairs[i];
    for (int s = 0; s < S; s++) {
      const vkft_pref_example *ex = &b->ds->examples[pairs[s % N]];
      size_t at = (size_t)seq_row[s] * (size_t)T + (size_t)seq_start[s];
      uint32_t len = vkft_pref_sequence(ex, s >= N, t->input_ids + at, t->labels + at);
      int32_t trained = 0;
      for (uint32_t k = 0; k < len; k++) {
        t->positions[at + k] = (int32_t)k;
        t->seq_ids[at + k] = s;
        trained += t->labels[at + k] != VKFT_LABEL_IGNORE;
      }
      out->seq_row[s] = seq_row[s];
      out->seq_start[s] = seq_start[s];
      out->seq_len[s] = (int32_t)len;
      out->seq_trained[s] = trained;
      t->n_tokens += len;
      t->n_trained += (size_t)trained;
    }
  }
  free(fill), free(seq_row), free(seq_start);
  return rc;
}
