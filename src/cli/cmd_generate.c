/* `vkft generate` and `vkft eval`: using a model, optionally with a LoRA adapter.
 *   generate --model DIR [--adapter DIR] (--prompt TEXT | --chat TEXT) [--max-new-tokens N]
 *            [--temperature T] [--top-k K] [--top-p P] [--seed S] [--date YYYY-MM-DD]
 *   eval --model DIR [--adapter DIR] --data FILE [--format F] [--template T] [--max-len N]
 *        [--train-on assistant|all]   -> last line {"loss": L, "tokens": N} */
#include "commands.h"

#include "vkft/chat_template.h"
#include "vkft/dataset.h"
#include "vkft/error.h"
#include "vkft/model.h"
#include "vkft/platform.h"
#include "vkft/tokenizer.h"
#include "vkft/train_config.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct model_opts {
  const char *model, *adapter;
  int64_t max_tokens;
  int kv_cache;
} model_opts;

/* The tokenizer: the adapter's when it has one (tokens.add saved it with the new tokens),
 * else the model's. */
static int open_tokenizer(const model_opts *o, vkft_tokenizer **tok) {
  char path[2048];
  if (o->adapter) snprintf(path, sizeof path, "%s/tokenizer.json", o->adapter);
  return vkft_tokenizer_load(o->adapter && vkft_file_exists(path) ? o->adapter : o->model, tok);
}

/* --chat-template NAME|FILE|DIR, else the model's own template. */
static int open_chat_template(const model_opts *o, const char *name, vkft_chat_template **t) {
  if (name) {
    const char *builtin = vkft_chat_template_builtin(name);
    if (builtin) return vkft_chat_template_parse(builtin, name, t);
    if (!vkft_file_exists(name))
      return vkft_error("--chat-template %s: not a built-in name (chatml, llama3, ...), a "
                        ".jinja file or a model folder",
                        name);
    return vkft_chat_template_load(name, NULL, t);
  }
  if (vkft_chat_template_load(o->model, NULL, t) == VKFT_OK) return VKFT_OK;
  return vkft_error_prefix("--chat needs a chat template (pass --chat-template with a built-in "
                           "name such as chatml, a .jinja file or a model folder)");
}

/* Loads the model (and adapter) for inference on the chosen device; vocab_size > the model's
 * grows the embeddings for the adapter's new tokens. */
static int open_model(vkft_backend *be, const model_opts *o, int64_t vocab_size, vkft_model **m) {
  vkft_model_desc desc = {.dir = o->model,
                          .max_tokens = o->max_tokens,
                          .micro_batches = 1,
                          .kv_cache = o->kv_cache,
                          .vocab_size = vocab_size};
  *m = NULL;
  if (o->adapter) {
    vkft_adapter_info info;
    if (vkft_adapter_read_config(o->adapter, &info) != VKFT_OK) return VKFT_ERR;
    /* the adapter's parameters exist in training mode (gradients unused here) */
    desc.training = 1;
    desc.lora_r = info.r;
    desc.lora_scale = vkft_adapter_scale(&info);
    desc.lora_targets = info.targets;
    desc.modules_to_save = info.modules_to_save;
  }
  if (vkft_model_load(be, &desc, m) != VKFT_OK) return VKFT_ERR;
  if (o->adapter && vkft_model_apply_adapter(*m, o->adapter) != VKFT_OK) {
    vkft_model_free(*m);
    *m = NULL; /* the caller frees what it gets: never twice */
    return VKFT_ERR;
  }
  return VKFT_OK;
}

/* splitmix64: the sampler's own generator (same draws on every platform) */
static double next_uniform(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  z ^= z >> 31;
  return (double)(z >> 11) * (1.0 / 9007199254740992.0);
}

typedef struct cand {
  int32_t id;
  double p;
} cand;

static int by_prob(const void *a, const void *b) {
  double x = ((const cand *)a)->p, y = ((const cand *)b)->p;
  return x < y ? 1 : x > y ? -1 : ((const cand *)a)->id - ((const cand *)b)->id;
}

static int32_t sample(const float *logits, int64_t V, double temperature, int top_k, double top_p,
                      uint64_t *rng, cand *work) {
  int32_t best = 0;
  for (int64_t v = 1; v < V; v++)
    if (logits[v] > logits[best]) best = (int32_t)v;
  if (temperature <= 0) return best;
  double sum = 0;
  for (int64_t v = 0; v < V; v++) {
    work[v].id = (int32_t)v;
    work[v].p = exp(((double)logits[v] - logits[best]) / temperature);
    sum += work[v].p;
  }
  qsort(work, (size_t)V, sizeof *work, by_prob);
  int64_t keep = top_k > 0 && top_k < V ? top_k : V;
  double acc = 0, kept = 0;
  for (int64_t i = 0; i < keep; i++) {
    acc += work[i].p / sum;
    kept += work[i].p;
    if (top_p < 1.0 && acc >= top_p) {
      keep = i + 1;
      break;
    }
  }
  double u = next_uniform(rng) * kept;
  for (int64_t i = 0; i < keep; i++) {
    u -= work[i].p;
    if (u <= 0) return work[i].id;
  }
  return work[keep - 1].id;
}

#define GENERATE_USAGE                                                                             \
  "usage: vkft generate --model DIR [--adapter DIR] (--prompt TEXT | --chat TEXT) "                \
  "[--chat-template NAME|FILE] [--max-new-tokens N] [--temperature T] [--top-k K] [--top-p P] "    \
  "[--seed S] [--date YYYY-MM-DD (what the chat template's strftime_now() sees)]\n"

/* One user message through the chat template t, with the generation prompt, as
 * apply_chat_template(messages, add_generation_prompt=True) renders it. */
static int render_chat(const vkft_chat_template *t, const char *model, const char *content,
                       const vkft_chat_template_options *options, char **text, size_t *len) {
  cJSON *special = NULL, *messages = cJSON_CreateArray(), *msg = cJSON_CreateObject(), *ctx = NULL;
  int status = vkft_chat_template_special_tokens(model, &special);
  if (status == VKFT_OK &&
      (!messages || !msg || !cJSON_AddStringToObject(msg, "role", "user") ||
       !cJSON_AddStringToObject(msg, "content", content) || !cJSON_AddItemToArray(messages, msg)))
    status = vkft_error_nomem();
  else if (status == VKFT_OK)
    msg = NULL; /* owned by messages */
  vkft_chat_inputs in = {
      .messages = messages, .add_generation_prompt = 1, .special_tokens = special};
  if (status == VKFT_OK) status = vkft_chat_template_context(&in, &ctx);
  if (status == VKFT_OK) status = vkft_chat_template_render_opts(t, ctx, options, text, len);
  cJSON_Delete(ctx);
  cJSON_Delete(msg);
  cJSON_Delete(messages);
  cJSON_Delete(special);
  return status;
}

int vkft_cmd_generate(int argc, char **argv) {
  cli_device_opts dev_opts;
  if (cli_take_device_opts(&argc, argv, &dev_opts) != VKFT_OK) return cli_usage_error();
  model_opts mo = {0};
  const char *prompt = NULL, *chat = NULL, *chat_template = NULL;
  int64_t max_new = 128, top_k = 0, seed = 42;
  double temperature = 0, top_p = 1.0;
  vkft_chat_template_options chat_options = {0};
  for (int i = 1; i < argc; i++) {
    const char *opt = argv[i], *value = i + 1 < argc ? argv[i + 1] : NULL;
    int status = VKFT_OK;
    if (!value) {
      fprintf(stderr, "vkft generate: %s needs a value\n" GENERATE_USAGE, opt);
      return CLI_EXIT_USAGE;
    } else if (!strcmp(opt, "--model")) {
      mo.model = value;
    } else if (!strcmp(opt, "--adapter")) {
      mo.adapter = value;
    } else if (!strcmp(opt, "--prompt")) {
      prompt = value;
    } else if (!strcmp(opt, "--chat")) {
      chat = value;
    } else if (!strcmp(opt, "--chat-template")) {
      chat_template = value;
    } else if (!strcmp(opt, "--date")) {
      if (vkft_chat_template_parse_date(value, &chat_options))
        status = vkft_error_prefix("%s", opt);
    } else if (!strcmp(opt, "--max-new-tokens")) {
      status = cli_int_option(opt, value, 1, 1 << 24, &max_new);
    } else if (!strcmp(opt, "--temperature")) { /* 0: greedy */
      status = cli_double_option(opt, value, 0, 100, &temperature);
    } else if (!strcmp(opt, "--top-k")) { /* 0: no limit */
      status = cli_int_option(opt, value, 0, INT32_MAX, &top_k);
    } else if (!strcmp(opt, "--top-p")) {
      status = cli_double_option(opt, value, 1e-9, 1, &top_p);
    } else if (!strcmp(opt, "--seed")) {
      status = cli_int_option(opt, value, 0, INT64_MAX, &seed);
    } else {
      fprintf(stderr, GENERATE_USAGE);
      return CLI_EXIT_USAGE;
    }
    if (status != VKFT_OK) return cli_usage_error();
    i++;
  }
  if (!mo.model || (!prompt == !chat)) {
    fprintf(stderr, "vkft generate: needs --model and one of --prompt or --chat\n");
    return CLI_EXIT_USAGE;
  }
  if (chat_template && !chat) {
    fprintf(stderr, "vkft generate: --chat-template goes with --chat\n");
    return CLI_EXIT_USAGE;
  }
  vkft_model_config cfg;
  if (vkft_model_config_load(mo.model, &cfg) != VKFT_OK) return cli_fail();
  vkft_tokenizer *tok;
  if (open_tokenizer(&mo, &tok) != VKFT_OK) return cli_fail();
  /* an adapter that added tokens brings a tokenizer with more ids than the model's rows */
  int64_t vocab = (int64_t)vkft_tokenizer_vocab_size(tok);
  if (vocab > cfg.vocab_size) cfg.vocab_size = vocab;
  int32_t *ids = NULL;
  size_t n = 0;
  int status = VKFT_OK;
  if (prompt) {
    status = vkft_tokenizer_encode(tok, prompt, strlen(prompt), 1, &ids, &n);
  } else {
    vkft_chat_template *t;
    char *text;
    size_t len;
    status = open_chat_template(&mo, chat_template, &t);
    if (status == VKFT_OK) {
      status = render_chat(t, mo.model, chat, &chat_options, &text, &len);
      vkft_chat_template_free(t);
    }
    if (status == VKFT_OK) {
      status = vkft_tokenizer_encode(tok, text, len, 0, &ids, &n);
      free(text);
    }
  }
  if (status != VKFT_OK) {
    vkft_tokenizer_free(tok);
    return cli_fail();
  }
  int64_t capacity = (int64_t)n + max_new;
  if (capacity > cfg.max_position_embeddings) capacity = cfg.max_position_embeddings;
  if ((int64_t)n >= capacity) {
    vkft_tokenizer_free(tok);
    free(ids);
    fprintf(stderr, "vkft: the prompt (%zu tokens) fills the model's context (%lld)\n", n,
            (long long)cfg.max_position_embeddings);
    return 1;
  }
  mo.max_tokens = capacity;
  mo.kv_cache = 1;
  vkft_device *dev = cli_open_device(&dev_opts);
  if (!dev) return cli_exit_code(vkft_error_code());
  vkft_backend *be = NULL;
  vkft_model *m = NULL;
  if (vkft_backend_vk_create(dev, &be) != VKFT_OK ||
      open_model(be, &mo, cfg.vocab_size, &m) != VKFT_OK) {
    int code = cli_fail();
    vkft_backend_destroy(be);
    vkft_device_destroy(dev);
    vkft_tokenizer_free(tok);
    free(ids);
    return code;
  }
  int32_t *seq = realloc(ids, (size_t)capacity * sizeof *seq);
  float *logits = malloc((size_t)cfg.vocab_size * sizeof *logits);
  cand *work = malloc((size_t)cfg.vocab_size * sizeof *work);
  if (!seq || !logits || !work) {
    free(seq ? seq : ids), free(logits), free(work);
    vkft_model_free(m);
    vkft_backend_destroy(be);
    vkft_device_destroy(dev);
    vkft_tokenizer_free(tok);
    vkft_error_nomem();
    return cli_fail();
  }
  ids = seq;
  size_t prompt_len = n; /* chat mode prints only the reply */
  int32_t eos = vkft_tokenizer_eos_id(tok);
  uint64_t rng = seed;
  /* the prompt in one pass, then one token per pass over the KV cache */
  size_t done = 0;
  while ((int64_t)n < capacity && status == VKFT_OK) {
    status = vkft_model_decode(m, ids + done, (int64_t)(n - done), (int64_t)done, logits);
    done = n;
    if (status != VKFT_OK) break;
    int32_t next = sample(logits, cfg.vocab_size, temperature, top_k, top_p, &rng, work);
    ids[n++] = next;
    if (next == eos || (cfg.eos_token_id >= 0 && next == cfg.eos_token_id)) break;
  }
  if (status == VKFT_OK) {
    char *text;
    size_t len;
    /* decode prompt and continuation together: a SentencePiece decoder strips the leading
     * space of the first token it sees, which would glue the continuation to the prompt */
    status = vkft_tokenizer_decode(tok, prompt ? ids : ids + prompt_len,
                                   prompt ? n : n - prompt_len, 1, &text, &len);
    if (status == VKFT_OK) {
      printf("%s\n", text);
      free(text);
    }
  }
  free(ids), free(logits), free(work);
  vkft_model_free(m);
  vkft_backend_destroy(be);
  vkft_device_destroy(dev);
  vkft_tokenizer_free(tok);
  return status == VKFT_OK ? 0 : cli_fail();
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
  mo.max_tokens = ds->max_len;
  vkft_device *dev = cli_open_device(&dev_opts);
  if (!dev) return cli_exit_code(vkft_error_code());
  vkft_backend *be = NULL;
  vkft_model *m = NULL;
  vkft_packer *p = NULL;
  vkft_packer_desc pd = {.rows = 1, .max_len = ds->max_len, .packing = -1, .no_shuffle = 1};
  int status = vkft_backend_vk_create(dev, &be) || open_model(be, &mo, cfg.vocab_size, &m) ||
               vkft_packer_create(ds, NULL, 0, &pd, &p);
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
  vkft_model_free(m);
  vkft_backend_destroy(be);
  vkft_device_destroy(dev);
  vkft_dataset_free(ds);
  vkft_tokenizer_free(tok);
  if (status != VKFT_OK) return cli_fail();
  printf("{\"loss\": %.9g, \"tokens\": %.0f}\n", count > 0 ? sum / count : 0.0, count);
  return 0;
}
