/* `vkft quantize`: writes a bitsandbytes 4-bit copy of an f32/f16/bf16 Hugging Face model folder
 * (the layout save_pretrained() writes after load_in_4bit; docs/QUANT-BNB.md), for QLoRA. */
#include "commands.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vkft/error.h"
#include "vkft/platform.h"
#include "vkft/quant.h"

static int usage(void) {
  fprintf(stderr,
          "usage: vkft quantize --model DIR --to nf4|fp4 [--double-quant] [--block-size 64] "
          "[--out DIR]\n"
          "  Quantizes the q/k/v/o/gate/up/down projections of every layer as bitsandbytes does\n"
          "  (bit-identical), keeps the other tensors, copies the tokenizer and other files and\n"
          "  adds quantization_config to config.json. --double-quant quantizes the block scales\n"
          "  too (QLoRA's bnb_4bit_use_double_quant). --block-size: 32, 64 (default) ... 4096.\n"
          "  --out defaults to DIR-bnb-nf4 / DIR-bnb-fp4 and must not exist.\n");
  return 2;
}

static void progress(void *user, int done, int total) {
  (void)user;
  fprintf(stderr, "\rquantizing: %d/%d weights", done, total);
  if (done == total) fputc('\n', stderr);
}

int vkft_cmd_quantize(int argc, char **argv) {
  vkft_quantize_desc desc = {.blocksize = 64};
  const char *type = NULL;
  char out[4096] = "";
  for (int i = 1; i < argc; i++) {
    const char *value = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      usage();
      return 0;
    } else if (!strcmp(argv[i], "--double-quant")) {
      desc.double_quant = 1;
      continue;
    } else if (!value) {
      fprintf(stderr, "vkft quantize: %s needs a value (or is unknown)\n", argv[i]);
      return usage();
    } else if (!strcmp(argv[i], "--model")) {
      desc.model_dir = value;
    } else if (!strcmp(argv[i], "--to")) {
      type = value;
    } else if (!strcmp(argv[i], "--out")) {
      snprintf(out, sizeof out, "%s", value);
    } else if (!strcmp(argv[i], "--block-size")) {
      char *end;
      long n = strtol(value, &end, 10);
      if (*end || !vkft_bnb4_blocksize_valid((int)n) || n > 4096) {
        fprintf(stderr, "vkft: --block-size: \"%s\" is not 32, 64, 128, ..., 4096\n", value);
        return 2;
      }
      desc.blocksize = (int)n;
    } else {
      fprintf(stderr, "vkft quantize: unknown option %s\n", argv[i]);
      return usage();
    }
    i++;
  }
  if (!desc.model_dir || !type) return usage();
  if (vkft_bnb4_type_parse(type, &desc.type)) {
    fprintf(stderr, "vkft: --to: \"%s\" is not nf4 or fp4\n", type);
    return 2;
  }
  if (!out[0]) {
    size_t len = strlen(desc.model_dir);
    while (len > 1 && (desc.model_dir[len - 1] == '/' || desc.model_dir[len - 1] == '\\')) len--;
    snprintf(out, sizeof out, "%.*s-bnb-%s", (int)len, desc.model_dir, type);
  }
  desc.out_dir = out;
  vkft_quantize_stats stats;
  int tty = vkft_console_is_tty(stderr);
  if (vkft_quantize_model(&desc, &stats, tty ? progress : NULL, NULL) != VKFT_OK) {
    if (tty) fputc('\n', stderr);
    return cli_fail();
  }
  double mb_in = (double)stats.bytes_in / 1e6, mb_out = (double)stats.bytes_out / 1e6;
  printf("wrote %s: %d weights as %s (block size %d%s), %.1f MB -> %.1f MB at %.0f MB/s; "
         "%d tensors and %d files copied\n",
         out, stats.weights_quantized, type, desc.blocksize,
         desc.double_quant ? ", double quant" : "", mb_in, mb_out,
         stats.seconds_quantizing > 0 ? mb_in / stats.seconds_quantizing : 0.0,
         stats.tensors_copied, stats.files_copied);
  return 0;
}
