/* `vkft eval`: the loss of a model (optionally with a LoRA adapter) on a dataset, each example
 * on its own (one row, its own sequence), as training computes it.
 *   eval --model DIR [--adapter DIR] --data FILE [--format F] [--template T] [--max-len N]
 *        [--train-on assistant|all]   -> last line {"loss": L, "tokens": N} */
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

typedef struct model_opts {
  const char *model, *adapter;
  int64_t max_tokens;
} model_opts;

/* The tokenizer: the adapter's when it has one (tokens.add saved it with the new tokens),
 * else the model's. */
static int open_tokenizer(const model_opts *o, vkft_tokenizer **tok) {
  char path[2048];
  if (o->adapter) snprintf(path, sizeof path, "%s/tokenizer.json", o->adapter);
  return vkft_tokenizer_load(o->adapter && vkft_file_exists(path) ? o->adapter : o->model, tok);
}

int vkft_cmd_eval(int argc, char **argv) {
  cli_device_opts dev_opts;
  if (cli_take_device_opts(&argc, argv, &dev_opts) != VKFT_OK) return cli_fail();
  model_opts mo = {0};
  const char *data = NULL, *format = "auto", *template_name = NULL, *train_on = "assistant";
  int max_len = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--model") && i + 1 < argc)
      mo.model = argv[++i];
    else if (!strcmp(argv[i], "--adapter") && i + 1 < argc)
      mo.adapter = argv[++i];
    else if (!strcmp(argv[i], "--data") && i + 1 < argc)
      data = argv[++i];
    else if (!strcmp(argv[i], "--format") && i + 1 < argc)
      format = argv[++i];
    else if (!strcmp(argv[i], "--template") && i + 1 < argc)
      template_name = argv[++i];
    else if (!strcmp(argv[i], "--max-len") && i + 1 < argc) {
      int64_t v;
      if (cli_int_option("--max-len", argv[++i], 1, 1 << 24, &v) != VKFT_OK)
        return cli_usage_error();
      max_len = (int)v;
    } else if (!strcmp(argv[i], "--train-on") && i + 1 < argc)
      train_on = argv[++i];
    else {
      fprintf(stderr, "usage: vkft eval --model DIR [--adapter DIR] --data FILE [--format F] "
                      "[--template T] [--max-len N] [--train-on assistant|all]\n");
      return 2;
    }
  }
  if (!mo.model || !data) {
    fprintf(stderr, "vkft eval: needs --model and --data\n");
    return CLI_EXIT_USAGE;
  }
  if (strcmp(train_on, "assistant") && strcmp(train_on, "all")) {
    fprintf(stderr, "vkft: --train-on: \"%s\" is not assistant or all\n", train_on);
    return CLI_EXIT_USAGE;
  }
  vkft_data_format fmt;
  if (vkft_data_format_parse(format, &fmt) != VKFT_OK) {
    fprintf(stderr, "vkft: unknown --format %s\n", format);
    return 2;
  }
  vkft_data_file_desc file = {data, 1.0};
  vkft_dataset_desc dd = {.model_dir = mo.model,
                          .files = &file,
                          .n_files = 1,
                          .format = fmt,
                          .template_name = template_name,
                          .max_len = max_len,
                          .train_on = strcmp(train_on, "all") ? VKFT_TRAIN_ON_ASSISTANT
                                                              : VKFT_TRAIN_ON_ALL};
  vkft_tokenizer *tok = NULL;
  vkft_model_config cfg;
  char tok_path[2048];
  snprintf(tok_path, sizeof tok_path, "%s/tokenizer.json", mo.adapter ? mo.adapter : mo.model);
  int has_tokenizer = vkft_file_exists(tok_path);
  if (!has_tokenizer && mo.adapter) {
    snprintf(tok_path, sizeof tok_path, "%s/tokenizer.json", mo.model);
    has_tokenizer = vkft_file_exists(tok_path);
  }
  /* pre-tokenized data needs no tokenizer: the dataset asks for one when it does */
  if (vkft_model_config_load(mo.model, &cfg) != VKFT_OK ||
      (has_tokenizer && open_tokenizer(&mo, &tok) != VKFT_OK))
    return cli_fail();
  int64_t vocab = tok ? (int64_t)vkft_tokenizer_vocab_size(tok) : 0;
  if (vocab > cfg.vocab_size) cfg.vocab_size = vocab;
  dd.tokenizer = tok;
  dd.vocab_size = cfg.vocab_size;
  vkft_dataset *ds;
  if (vkft_dataset_load(&dd, &ds) != VKFT_OK) {
    vkft_tokenizer_free(tok);
    return cli_fail();
  }
  for (size_t i = 0; i < ds->n_issues; i++) fprintf(stderr, "vkft: data: %s\n", ds->issues[i]);
  /* the model (its adapter applied) with room for the longest example */
  gen_session gs = {.model_dir = mo.model, .adapter_dir = mo.adapter, .dev_opts = dev_opts};
  gs.cfg = cfg;
  vkft_model_desc md;
  vkft_packer *p = NULL;
  vkft_packer_desc pd = {.rows = 1, .max_len = ds->max_len, .packing = -1, .no_shuffle = 1};
  int status = gen_session_model_desc(&gs, &md);
  md.max_tokens = ds->max_len;
  if (status == VKFT_OK) status = gen_session_open_model(&gs, &md);
  if (status == VKFT_OK) status = vkft_packer_create(ds, NULL, 0, &pd, &p);
  vkft_backend *be = gs.be;
  vkft_model *m = gs.model;
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
    status = vkft_model_set_batch(m, 0, &mb) || vkft_begin(be) ||
             vkft_model_forward_backward(m, 0, 0.0f, 0) || vkft_end(be) ||
             vkft_model_read_loss(m, 0, &s, &c);
    sum += s;
    count += c;
    if (status == VKFT_OK && vkft_console_is_tty(stderr))
      fprintf(stderr, "\r\033[Keval %zu/%zu  loss %.4f", i + 1, nb, count > 0 ? sum / count : 0.0);
  }
  if (vkft_console_is_tty(stderr)) fputc('\n', stderr);
  vkft_batch_free(&batch);
  vkft_packer_free(p);
  gen_session_close(&gs);
  vkft_dataset_free(ds);
  vkft_tokenizer_free(tok);
  if (status != VKFT_OK) return cli_fail();
  printf("{\"loss\": %.9g, \"tokens\": %.0f}\n", count > 0 ? sum / count : 0.0, count);
  return 0;
}
