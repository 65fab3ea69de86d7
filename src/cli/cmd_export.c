/* `vkft export`: a model where people run it, on the host (no Vulkan device needed).
 *   export --model BASE [--adapter DIR] --to hf|gguf [--type T] --out PATH
 *   export --model BASE --adapter DIR --to gguf-lora --out FILE.gguf
 * options: --max-shard-size 5GB (hf), --threads N, --no-modelfile (gguf) */
#include "commands.h"

#include "vkft/error.h"
#include "vkft/export.h"
#include "vkft/platform.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(void) {
  fprintf(stderr,
          "usage: vkft export --model BASE [--adapter DIR] --to hf|gguf|gguf-lora --out PATH\n"
          "         [--type f32|f16|bf16|q8_0|q4_0|q4_k_m] [--max-shard-size 5GB] [--threads N]\n"
          "         [--no-modelfile]\n"
          "  hf         a Hugging Face folder with the adapter merged (type: f32, f16, bf16;\n"
          "             default: the base's dtypes)\n"
          "  gguf       one GGUF file for llama.cpp / Ollama / LM Studio, the adapter merged\n"
          "             (default type: f16, bf16 for a bf16 base)\n"
          "  gguf-lora  the adapter alone as a llama.cpp LoRA adapter (--lora)\n");
}

/* "5GB", "500MB", "1.5GiB", a plain number of bytes */
static int parse_size(const char *s, uint64_t *out) {
  char *end;
  double v = strtod(s, &end);
  static const struct {
    const char *suffix;
    double scale;
  } units[] = {{"", 1},     {"B", 1},        {"KB", 1e3},        {"MB", 1e6},
               {"GB", 1e9}, {"KiB", 1024.0}, {"MiB", 1048576.0}, {"GiB", 1073741824.0}};
  for (size_t i = 0; end != s && i < sizeof units / sizeof units[0]; i++)
    if (!strcmp(end, units[i].suffix) && v * units[i].scale >= 1) {
      *out = (uint64_t)(v * units[i].scale);
      return VKFT_OK;
    }
  return vkft_error("--max-shard-size: \"%s\" is not a size like 5GB or 500MB", s);
}

static void progress(void *user, const char *tensor, int index, int count) {
  (void)user;
  if (vkft_console_is_tty(stderr))
    fprintf(stderr, "\r\033[Kexport %d/%d  %s", index, count, tensor);
}

int vkft_cmd_export(int argc, char **argv) {
  vkft_export_desc d = {.progress = progress};
  const char *to = NULL;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *next = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--no-modelfile")) {
      d.no_modelfile = 1;
      continue;
    }
    if (!next || (strcmp(a, "--model") && strcmp(a, "--adapter") && strcmp(a, "--to") &&
                  strcmp(a, "--type") && strcmp(a, "--out") && strcmp(a, "--max-shard-size") &&
                  strcmp(a, "--threads"))) {
      usage();
      return 2;
    }
    i++;
    if (!strcmp(a, "--model"))
      d.model_dir = next;
    else if (!strcmp(a, "--adapter"))
      d.adapter_dir = next;
    else if (!strcmp(a, "--to"))
      to = next;
    else if (!strcmp(a, "--type"))
      d.type = next;
    else if (!strcmp(a, "--out"))
      d.out = next;
    else if (!strcmp(a, "--threads"))
      d.threads = atoi(next);
    else if (parse_size(next, &d.max_shard_bytes) != VKFT_OK)
      return cli_fail();
  }
  if (!d.model_dir || !d.out || !to) {
    fprintf(stderr, "vkft export: needs --model, --to and --out\n");
    usage();
    return 2;
  }
  if (!strcmp(to, "hf"))
    d.target = VKFT_EXPORT_HF;
  else if (!strcmp(to, "gguf"))
    d.target = VKFT_EXPORT_GGUF;
  else if (!strcmp(to, "gguf-lora"))
    d.target = VKFT_EXPORT_GGUF_LORA;
  else {
    fprintf(stderr, "vkft export: --to %s: expected hf, gguf or gguf-lora\n", to);
    return 2;
  }
  double start = vkft_time_s();
  vkft_export_report r;
  int status = vkft_export(&d, &r);
  if (vkft_console_is_tty(stderr)) fputs("\r\033[K", stderr);
  if (status != VKFT_OK) return cli_fail();
  if (r.note[0]) fprintf(stderr, "vkft: note: %s\n", r.note);
  printf("exported %d tensors (%.1f MB%s%s) to %s in %.1f s\n", r.tensors, (double)r.bytes / 1e6,
         r.shards > 1 ? ", sharded" : "", "", d.out, vkft_time_s() - start);
  if (r.modelfile[0]) printf("Ollama: ollama create NAME -f %s\n", r.modelfile);
  return 0;
}
