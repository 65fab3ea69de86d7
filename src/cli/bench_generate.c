/* `vkft bench generate [--model DIR] [--batch 1,32] [--new-tokens N] [--prompt TEXT] [--json]`:
 * generation throughput of the batched engine: B copies of one prompt, greedy, exactly N new
 * tokens each (end-of-sequence ids ignored, so every batch size does the same work), timed
 * from the first step to the last; generated tokens per second of the whole run (prompt
 * processing included) and of the device steps alone. scripts/bench_generate.sh runs llama.cpp
 * (node-llama-cpp) on the same model and prompt beside it. */
#include "commands.h"
#include "gen_session.h"

#include "vkft/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_BATCHES = 8 };

static int count_result(void *ctx, const vkft_gen_result *r) {
  *(int64_t *)ctx += r->n_ids;
  return VKFT_OK;
}

/* One batch size: its own plan (slots = B) and model. */
static int bench_batch(gen_session *s, const int32_t *prompt, int64_t prompt_len, int64_t B,
                       int64_t new_tokens, vkft_gen_stats *st) {
  vkft_model_free(s->model);
  s->model = NULL;
  if (gen_session_open_generator(s, B, prompt_len + new_tokens) != VKFT_OK) return VKFT_ERR;
  vkft_sampling sp = vkft_sampling_default();
  sp.max_new_tokens = new_tokens;
  sp.n = (int)B;
  vkft_gen_request req = {prompt, prompt_len, sp};
  int64_t generated = 0;
  vkft_gen_desc gd = {.model = s->model, .plan = &s->plan, .tokenizer = s->tok, .n_eos = 0};
  if (vkft_gen_run(&gd, &req, 1, count_result, &generated, st) != VKFT_OK) return VKFT_ERR;
  if (generated != B * new_tokens)
    return vkft_error_with(VKFT_ERR_INTERNAL, "bench generate: %lld tokens, expected %lld",
                           (long long)generated, (long long)(B * new_tokens));
  return VKFT_OK;
}

int vkft_bench_generate(int argc, char **argv) {
  cli_device_opts dev_opts;
  if (cli_take_device_opts(&argc, argv, &dev_opts) != VKFT_OK) return cli_usage_error();
  const char *model = "models/stories260K", *prompt = "Once upon a time,";
  int64_t batches[MAX_BATCHES] = {1, 32}, n_batches = 2, new_tokens = 128;
  int json = 0;
  for (int i = 1; i < argc; i++) {
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(argv[i], "--json")) {
      json = 1;
    } else if (!strcmp(argv[i], "--model") && v) {
      model = argv[++i];
    } else if (!strcmp(argv[i], "--prompt") && v) {
      prompt = argv[++i];
    } else if (!strcmp(argv[i], "--new-tokens") && v) {
      if (cli_int_option("--new-tokens", argv[++i], 1, 1 << 20, &new_tokens))
        return cli_usage_error();
    } else if (!strcmp(argv[i], "--batch") && v) {
      n_batches = 0;
      for (char *p = argv[++i], *end; *p && n_batches < MAX_BATCHES; p = *end ? end + 1 : end) {
        batches[n_batches] = strtoll(p, &end, 10);
        if (end == p || (*end && *end != ',') || batches[n_batches] < 1 ||
            batches[n_batches] > 4096) {
          fprintf(stderr, "vkft: --batch: \"%s\" is not a list of sizes in [1, 4096]\n", argv[i]);
          return CLI_EXIT_USAGE;
        }
        n_batches++;
      }
    } else {
      fprintf(stderr, "usage: vkft bench generate [--model DIR] [--batch 1,32] [--new-tokens N] "
                      "[--prompt TEXT] [--json]\n");
      return CLI_EXIT_USAGE;
    }
  }
  gen_session s;
  int32_t *ids = NULL;
  size_t n = 0;
  int status = gen_session_open_text(&s, &dev_opts, model, NULL, NULL) ||
               vkft_tokenizer_encode(s.tok, prompt, strlen(prompt), 1, &ids, &n);
  for (int64_t b = 0; status == VKFT_OK && b < n_batches; b++) {
    vkft_gen_stats st;
    status = bench_batch(&s, ids, (int64_t)n, batches[b], new_tokens, &st);
    if (status != VKFT_OK) break;
    double tps = (double)st.generated_tokens / st.seconds,
           device_tps = (double)st.generated_tokens / st.device_seconds;
    const vkft_device_info *info = vkft_device_get_info(s.dev);
    if (json)
      printf("{\"bench\": \"generate\", \"model\": \"%s\", \"device\": \"%s\", \"batch\": %lld, "
             "\"prompt_tokens\": %zu, \"new_tokens\": %lld, \"seconds\": %.4f, \"steps\": %lld, "
             "\"tokens_per_s\": %.2f, \"device_tokens_per_s\": %.2f}\n",
             model, info->name, (long long)batches[b], n, (long long)new_tokens, st.seconds,
             (long long)st.steps, tps, device_tps);
    else
      printf("generate %s on %s: batch %3lld  %lld x %lld tokens in %.2f s: %9.1f tokens/s "
             "(%.1f in the device steps)\n",
             model, info->name, (long long)batches[b], (long long)batches[b], (long long)new_tokens,
             st.seconds, tps, device_tps);
    if (dev_opts.profile && !json) cli_print_profile(s.dev); /* the last step */
    fflush(stdout);
  }
  free(ids);
  gen_session_close(&s);
  return status == VKFT_OK ? 0 : cli_fail();
}
