/* `vkft data prepare|stats|preview` on preference pairs (DPO/ORPO data): prepare writes each
 * pair as TRL's tokenized columns {"prompt_input_ids", "chosen_input_ids",
 * "rejected_input_ids"} (in input order; bad and dropped pairs reported and left out); stats
 * counts pairs and describes the prompt, chosen and rejected lengths; preview shows a pair's two
 * sequences with their trained tokens highlighted, as the SFT preview does. */
#include "cmd_data.h"
#include "commands.h"

#include <stdlib.h>
#include <string.h>

#include "vkft/error.h"
#include "vkft/tokenizer.h"

int cli_data_is_pref(const data_opts *o, int *yes) {
  *yes = o->pref_format != VKFT_PREF_FORMAT_AUTO;
  if (*yes || o->format != VKFT_FORMAT_AUTO) return VKFT_OK;
  vkft_pref_format f;
  if (vkft_pref_detect_file(o->files[0].path, &f)) return VKFT_ERR;
  *yes = f != VKFT_PREF_FORMAT_AUTO;
  return VKFT_OK;
}

static int load(const data_opts *o, vkft_pref_dataset **ds) {
  vkft_pref_desc d = {.model_dir = o->model,
                      .files = o->files,
                      .n_files = o->n_files,
                      .format = o->pref_format,
                      .style = o->style,
                      .template_name = o->tmpl,
                      .max_len = o->max_len,
                      .max_prompt_len = o->max_prompt_len,
                      .max_completion_len = o->max_completion_len,
                      .strict = o->strict,
                      .threads = o->threads,
                      .enable_thinking = o->enable_thinking};
  if (vkft_pref_load(&d, ds)) return VKFT_ERR;
  for (size_t i = 0; i < (*ds)->n_issues && i < 20; i++)
    fprintf(stderr, "vkft: skipped %s\n", (*ds)->issues[i]);
  if ((*ds)->n_issues_total > 20)
    fprintf(stderr, "vkft: ... and %zu more bad records\n", (*ds)->n_issues_total - 20);
  return VKFT_OK;
}

/* ---- prepare ---- */

static void write_pair(FILE *f, const vkft_pref_example *ex) {
  fputs("{\"prompt_input_ids\": ", f);
  cli_data_write_ids(f, ex->prompt_ids, ex->prompt_len);
  fputs(", \"chosen_input_ids\": ", f);
  cli_data_write_ids(f, ex->chosen_ids, ex->chosen_len);
  fputs(", \"rejected_input_ids\": ", f);
  cli_data_write_ids(f, ex->rejected_ids, ex->rejected_len);
  /* ORPO's masked prompt tokens: vkft's own fields, only when there are some */
  if (ex->chosen_masked) fprintf(f, ", \"chosen_masked\": %u", ex->chosen_masked);
  if (ex->rejected_masked) fprintf(f, ", \"rejected_masked\": %u", ex->rejected_masked);
  fputs("}\n", f);
}

int cli_data_pref_prepare(const data_opts *o) {
  if (!o->out) return vkft_error("--out FILE.jsonl is required");
  vkft_pref_dataset *ds;
  double t0 = vkft_time_s();
  if (load(o, &ds)) return VKFT_ERR;
  double t1 = vkft_time_s();
  out_file of;
  if (cli_data_out_open(&of, o->out)) {
    vkft_pref_free(ds);
    return VKFT_ERR;
  }
  for (size_t i = 0; i < ds->n_examples; i++)
    if (ds->examples[i].status == VKFT_EXAMPLE_OK) write_pair(of.f, &ds->examples[i]);
  int ok = !ferror(of.f);
  if (cli_data_out_close(&of, ok) || !ok) {
    vkft_pref_free(ds);
    return ok ? VKFT_ERR : vkft_error("%s: write failed", o->out);
  }
  if (o->json) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "records", (double)ds->n_examples);
    cJSON_AddNumberToObject(j, "pairs", (double)ds->n_ok);
    cJSON_AddNumberToObject(j, "bad", (double)ds->n_bad);
    cJSON_AddNumberToObject(j, "dropped_by_truncation", (double)ds->n_empty);
    cJSON_AddNumberToObject(j, "truncated", (double)ds->n_truncated);
    cJSON_AddNumberToObject(j, "prompt_mismatch", (double)ds->n_prompt_mismatch);
    cJSON_AddStringToObject(j, "style", vkft_pref_style_name(ds->style));
    cJSON_AddNumberToObject(j, "max_len", ds->max_len);
    cJSON_AddNumberToObject(j, "tokens", (double)ds->n_tokens);
    cJSON_AddNumberToObject(j, "trained_tokens", (double)ds->n_trained);
    cJSON_AddNumberToObject(j, "seconds", t1 - t0);
    cJSON_AddStringToObject(j, "out", o->out);
    cli_data_print_json(j);
  } else {
    fprintf(of.is_stdout ? stderr : stdout,
            "prepared %zu pairs from %zu records (%zu bad, %zu dropped by truncation, %zu "
            "truncated to %d, %zu prompt mismatches) with %s tokenization: %zu tokens, %zu "
            "trained, in %.2f s -> %s\n",
            ds->n_ok, ds->n_examples, ds->n_bad, ds->n_empty, ds->n_truncated, ds->max_len,
            ds->n_prompt_mismatch, vkft_pref_style_name(ds->style), ds->n_tokens, ds->n_trained,
            t1 - t0, o->out);
  }
  vkft_pref_free(ds);
  return VKFT_OK;
}

/* ---- stats ---- */

static cJSON *len_json(const vkft_pref_len_stats *s) {
  cJSON *j = cJSON_CreateObject();
  cJSON_AddNumberToObject(j, "min", (double)s->min);
  cJSON_AddNumberToObject(j, "mean", s->mean);
  cJSON_AddNumberToObject(j, "p50", (double)s->p50);
  cJSON_AddNumberToObject(j, "p90", (double)s->p90);
  cJSON_AddNumberToObject(j, "max", (double)s->max);
  return j;
}

int cli_data_pref_stats(const data_opts *o) {
  vkft_pref_dataset *ds;
  if (load(o, &ds)) return VKFT_ERR;
  vkft_pref_stats st;
  if (vkft_pref_stats_compute(ds, &st)) {
    vkft_pref_free(ds);
    return VKFT_ERR;
  }
  static const char *const len_names[4] = {"prompt", "chosen", "rejected", "sequence"};
  const vkft_pref_len_stats *lens[4] = {&st.prompt, &st.chosen, &st.rejected, &st.longest};
  if (o->json) {
    cJSON *j = cJSON_CreateObject(), *f = cJSON_CreateObject(), *l = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "records", (double)st.records);
    cJSON_AddNumberToObject(j, "pairs", (double)st.ok);
    cJSON_AddNumberToObject(j, "bad", (double)st.bad);
    cJSON_AddNumberToObject(j, "dropped_by_truncation", (double)st.empty);
    cJSON_AddNumberToObject(j, "truncated", (double)st.truncated);
    cJSON_AddNumberToObject(j, "prompt_mismatch", (double)st.prompt_mismatch);
    for (int k = 1; k < VKFT_PREF_FORMAT_COUNT; k++)
      if (st.format_counts[k])
        cJSON_AddNumberToObject(f, vkft_pref_format_name((vkft_pref_format)k),
                                (double)st.format_counts[k]);
    cJSON_AddItemToObject(j, "formats", f);
    cJSON_AddStringToObject(j, "style", vkft_pref_style_name(ds->style));
    for (int k = 0; k < 4; k++) cJSON_AddItemToObject(l, len_names[k], len_json(lens[k]));
    cJSON_AddItemToObject(j, "tokens_before_truncation", l);
    cJSON_AddNumberToObject(j, "max_len", ds->max_len);
    cJSON_AddNumberToObject(j, "max_prompt_len", ds->max_prompt_len);
    cJSON_AddNumberToObject(j, "max_completion_len", ds->max_completion_len);
    cJSON_AddNumberToObject(j, "over_max_len", (double)st.over_max_len);
    cJSON_AddNumberToObject(j, "tokens", (double)st.tokens);
    cJSON_AddNumberToObject(j, "trained_tokens", (double)st.trained);
    cli_data_print_json(j);
  } else {
    printf("records      %zu (%zu pairs, %zu bad, %zu dropped by truncation)\n", st.records, st.ok,
           st.bad, st.empty);
    printf("formats     ");
    for (int k = 1; k < VKFT_PREF_FORMAT_COUNT; k++)
      if (st.format_counts[k])
        printf(" %s %zu", vkft_pref_format_name((vkft_pref_format)k), st.format_counts[k]);
    printf("\nstyle        %s (TRL 1.9.0's %s tokenization)\n", vkft_pref_style_name(ds->style),
           ds->style == VKFT_PREF_ORPO ? "ORPOTrainer" : "DPOTrainer");
    printf("tokens before truncation       min     mean      p50      p90      max\n");
    for (int k = 0; k < 4; k++)
      printf("  %-27s %5zu %8.1f %8zu %8zu %8zu\n",
             k == 3 ? "sequence (prompt + longer)" : len_names[k], lens[k]->min, lens[k]->mean,
             lens[k]->p50, lens[k]->p90, lens[k]->max);
    printf("truncated    %zu pairs; %zu with a sequence over max_len %d", st.truncated,
           st.over_max_len, ds->max_len);
    if (ds->max_prompt_len) printf(", max_prompt_len %d", ds->max_prompt_len);
    if (ds->max_completion_len) printf(", max_completion_len %d", ds->max_completion_len);
    printf("\ntrained      %zu of %zu tokens (%.1f%%; both sequences of each pair)\n", st.trained,
           st.tokens, st.tokens ? 100.0 * (double)st.trained / (double)st.tokens : 0.0);
    if (st.prompt_mismatch)
      printf("mismatch     %zu pairs whose prompt ids are not a prefix of prompt + completion's "
             "(TRL warns and slices by length)\n",
             st.prompt_mismatch);
  }
  vkft_pref_free(ds);
  return VKFT_OK;
}

/* ---- preview ---- */

/* A sequence with its trained runs between on and off. */
static int print_sequence(const vkft_tokenizer *tok, const int32_t *ids, const int32_t *labels,
                          uint32_t n, const char *on, const char *off) {
  for (uint32_t t = 0; t < n;) {
    int trained = labels[t] != VKFT_LABEL_IGNORE;
    uint32_t u = t;
    while (u < n && (labels[u] != VKFT_LABEL_IGNORE) == trained) u++;
    char *text = NULL;
    size_t len = 0;
    if (vkft_tokenizer_decode(tok, ids + t, u - t, 0, &text, &len)) return VKFT_ERR;
    if (trained) fputs(on, stdout);
    fwrite(text, 1, len, stdout);
    if (trained) fputs(off, stdout);
    free(text);
    t = u;
  }
  putchar('\n');
  return VKFT_OK;
}

int cli_data_pref_preview(const data_opts *o) {
  if (!o->model) return vkft_error("--model DIR is required (its tokenizer)");
  vkft_pref_dataset *ds;
  if (load(o, &ds)) return VKFT_ERR;
  int color = o->color >= 0 ? o->color : vkft_console_is_tty(stdout);
  const char *on = color ? "\x1b[42;30m" : "[[", *off = color ? "\x1b[0m" : "]]";
  int rc = VKFT_OK, shown = 0;
  int32_t *ids = NULL, *labels = NULL;
  for (size_t i = (size_t)o->index; i < ds->n_examples && shown < o->count && rc == VKFT_OK;
       i++, shown++) {
    const vkft_pref_example *ex = &ds->examples[i];
    printf("=== record %zu (%s:%u, %s): prompt %u tokens, chosen %u (%u trained), rejected %u "
           "(%u trained)%s%s%s\n",
           i, ds->file_paths[ex->file], ex->line, vkft_pref_format_name(ex->format), ex->prompt_len,
           ex->chosen_len, ex->chosen_trained, ex->rejected_len, ex->rejected_trained,
           ex->truncated ? ", truncated" : "", ex->prompt_mismatch ? ", prompt mismatch" : "",
           ex->status == VKFT_EXAMPLE_BAD     ? ", BAD (skipped)"
           : ex->status == VKFT_EXAMPLE_EMPTY ? ", dropped by truncation"
                                              : "");
    if (ex->status == VKFT_EXAMPLE_BAD) continue;
    uint32_t longest =
        ex->prompt_len + (ex->chosen_len > ex->rejected_len ? ex->chosen_len : ex->rejected_len);
    free(ids), free(labels);
    ids = malloc((longest + 1) * sizeof *ids);
    labels = malloc((longest + 1) * sizeof *labels);
    if (!ids || !labels) {
      rc = vkft_error_nomem();
      break;
    }
    for (int which = 0; which < 2 && rc == VKFT_OK; which++) {
      printf("--- %s\n", which ? "rejected" : "chosen");
      uint32_t n = vkft_pref_sequence(ex, which, ids, labels);
      rc = print_sequence(ds->tokenizer, ids, labels, n, on, off);
    }
  }
  if (rc == VKFT_OK && !color) printf("(trained tokens are between [[ and ]])\n");
  free(ids), free(labels);
  vkft_pref_free(ds);
  return rc;
}
