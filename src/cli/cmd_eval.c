/* `vkft eval`: the loss of a model (optionally with a LoRA adapter) on a dataset, each example
 * on its own (one row, its own sequence), as training computes it.
 *   eval --model DIR [--adapter DIR] --data FILE [--format F] [--template T] [--max-len N]
 *        [--train-on assistant|all]   -> last line {"loss": L, "tokens": N}
 * Also the options and the opening of model and dataset that `vkft data score` shares. */
#include "commands.h"
#include "gen_session.h"

#include "vkft/dataset.h"
#include "vkft/error.h"
#include "vkft/model.h"
#include "vkft/platform.h"
#include "vkft/tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cli_eval_take_opt(cli_eval_opts *o, int argc, char **argv, int *i) {
  const char *a = argv[*i], *v = *i + 1 < argc ? argv[*i + 1] : NULL;
  const char **slot = !strcmp(a, "--model")      ? &o->model
                      : !strcmp(a, "--adapter")  ? &o->adapter
                      : !strcmp(a, "--data")     ? &o->data
                      : !strcmp(a, "--format")   ? &o->format
                      : !strcmp(a, "--template") ? &o->template_name
                      : !strcmp(a, "--train-on") ? &o->train_on
                                                 : NULL;
  if (!v || (!slot && strcmp(a, "--max-len"))) return 0;
  ++*i;
  if (slot) {
    *slot = v;
    vkft_data_format fmt;
    if (slot == &o->train_on && strcmp(v, "assistant") && strcmp(v, "all")) {
      vkft_error("--train-on: \"%s\" is not assistant or all", v);
      return -1;
    }
    if (slot == &o->format && vkft_data_format_parse(v, &fmt) != VKFT_OK) {
      vkft_error("--format: unknown format %s", v);
      return -1;
    }
    return 1;
  }
  int64_t n;
  if (cli_int_option("--max-len", v, 1, 1 << 24, &n) != VKFT_OK) return -1;
  o->max_len = (int)n;
  return 1;
}

/* The tokenizer: the adapter's when it has one (tokens.add saved it with the new tokens),
 * else the model's; none when neither folder has one (pre-tokenized data needs none: the
 * dataset asks for one when it does). */
static int open_tokenizer(const cli_eval_opts *o, vkft_tokenizer **tok) {
  char path[2048];
  *tok = NULL;
  for (int k = 0; k < 2; k++) {
    const char *dir = k ? o->model : o->adapter;
    if (!dir) continue;
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    if (vkft_file_exists(path)) return vkft_tokenizer_load(dir, tok);
  }
  return VKFT_OK;
}

int cli_eval_open(const cli_eval_opts *o, const cli_device_opts *dev_opts, int keep_raw,
                  int micro_batches, gen_session *s, vkft_dataset **ds) {
  *s = (gen_session){.model_dir = o->model, .adapter_dir = o->adapter, .dev_opts = *dev_opts};
  *ds = NULL;
  const char *train_on = o->train_on ? o->train_on : "assistant"; /* checked when taken */
  vkft_data_format fmt;
  if (vkft_data_format_parse(o->format ? o->format : "auto", &fmt) != VKFT_OK) return VKFT_ERR;
  vkft_data_file_desc file = {o->data, 1.0};
  vkft_dataset_desc dd = {.model_dir = o->model,
                          .files = &file,
                          .n_files = 1,
                          .format = fmt,
                          .template_name = o->template_name,
                          .max_len = o->max_len,
                          .keep_raw = keep_raw,
                          .keep_text = o->keep_text,
                          .train_on = strcmp(train_on, "all") ? VKFT_TRAIN_ON_ASSISTANT
                                                              : VKFT_TRAIN_ON_ALL};
  if (vkft_model_config_load(o->model, &s->cfg) != VKFT_OK || open_tokenizer(o, &s->tok))
    return VKFT_ERR;
  int64_t vocab = s->tok ? (int64_t)vkft_tokenizer_vocab_size(s->tok) : 0;
  if (vocab > s->cfg.vocab_size) s->cfg.vocab_size = vocab;
  dd.tokenizer = s->tok;
  dd.vocab_size = s->cfg.vocab_size;
  if (vkft_dataset_load(&dd, ds) != VKFT_OK) return VKFT_ERR;
  /* the model (its adapter applied) with room for the longest example */
  vkft_model_desc md;
  if (gen_session_model_desc(s, &md) != VKFT_OK) return VKFT_ERR;
  md.max_tokens = (*ds)->max_len;
  md.micro_batches = micro_batches;
  return gen_session_open_model(s, &md);
}

int vkft_cmd_eval(int argc, char **argv) {
  cli_device_opts dev_opts;
  if (cli_take_device_opts(&argc, argv, &dev_opts) != VKFT_OK) return cli_fail();
  cli_eval_opts eo = {0};
  for (int i = 1; i < argc; i++) {
    int taken = cli_eval_take_opt(&eo, argc, argv, &i);
    if (taken < 0) return cli_usage_error();
    if (!taken) {
      fprintf(stderr, "usage: vkft eval --model DIR [--adapter DIR] --data FILE [--format F] "
                      "[--template T] [--max-len N] [--train-on assistant|all]\n");
      return CLI_EXIT_USAGE;
    }
  }
  if (!eo.model || !eo.data) {
    fprintf(stderr, "vkft eval: needs --model and --data\n");
    return CLI_EXIT_USAGE;
  }
  gen_session gs;
  vkft_dataset *ds;
  int status = cli_eval_open(&eo, &dev_opts, 0, 1, &gs, &ds);
  for (size_t i = 0; ds && i < ds->n_issues; i++)
    fprintf(stderr, "vkft: data: %s\n", ds->issues[i]);
  vkft_packer *p = NULL;
  vkft_packer_desc pd = {.rows = 1, .packing = -1, .no_shuffle = 1};
  if (status == VKFT_OK) status = vkft_packer_create(ds, NULL, 0, &pd, &p);
  double sum = 0, count = 0;
  vkft_batch batch = {0};
  size_t nb = 0;
  if (status == VKFT_OK) status = vkft_packer_epoch_batches(p, 0, &nb);
  for (size_t i = 0; i < nb && status == VKFT_OK; i++) {
    /* each example on its own: one row, its own sequence */
    status = vkft_packer_batch(p, 0, i, &batch);
    if (status != VKFT_OK) break;
    int64_t T = (int64_t)batch.B * batch.T;
    for (int64_t t = 0; t < T; t++) batch.seq_ids[t] = batch.seq_ids[t] < 0 ? -1 : 0;
    vkft_model_batch mb = {T, batch.input_ids, batch.labels, batch.positions, batch.seq_ids};
    double s, c;
    status = vkft_model_set_batch(gs.model, 0, &mb) || vkft_begin(gs.be) ||
             vkft_model_forward_backward(gs.model, 0, 0.0f, 0) || vkft_end(gs.be) ||
             vkft_model_read_loss(gs.model, 0, &s, &c);
    sum += s;
    count += c;
    if (status == VKFT_OK && vkft_console_is_tty(stderr))
      fprintf(stderr, "\r\033[Keval %zu/%zu  loss %.4f", i + 1, nb, count > 0 ? sum / count : 0.0);
  }
  if (vkft_console_is_tty(stderr)) fputc('\n', stderr);
  vkft_batch_free(&batch);
  vkft_packer_free(p);
  vkft_dataset_free(ds); /* before the session: it borrows the session's tokenizer */
  gen_session_close(&gs);
  if (status != VKFT_OK) return cli_fail();
  printf("{\"loss\": %.9g, \"tokens\": %.0f}\n", count > 0 ? sum / count : 0.0, count);
  return 0;
}
