/* vkft_export: opens the base model (a Hugging Face folder, or a GGUF file for --to gguf-lora)
 * and adapter once and hands them to the exporter of the chosen target (src/export/hf.c,
 * gguf_model.c, gguf_lora.c). */
#include "internal.h"

#include "vkft/error.h"

#include <string.h>

int vkft_export(const vkft_export_desc *desc, vkft_export_report *report) {
  memset(report, 0, sizeof *report);
  if (!desc->model_dir || !desc->out) return vkft_error("export needs a model and an output");
  export_source s;
  int gguf = vkft_gguf_is_file(desc->model_dir);
  if (gguf && desc->target != VKFT_EXPORT_GGUF_LORA)
    return vkft_error_with(VKFT_ERR_UNSUPPORTED,
                           "%s: a GGUF base exports its adapter with --to gguf-lora (llama.cpp's "
                           "llama-export-lora merges that into the GGUF); merging here is not "
                           "supported",
                           desc->model_dir);
  if ((gguf ? export_source_open_gguf(&s, desc->model_dir, desc->adapter_dir)
            : export_source_open(&s, desc->model_dir, desc->adapter_dir)) != VKFT_OK) {
    export_source_close(&s);
    return VKFT_ERR;
  }
  int status;
  switch (desc->target) {
  case VKFT_EXPORT_HF:
    status = export_hf(&s, desc, report);
    break;
  case VKFT_EXPORT_GGUF:
    status = export_gguf_model(&s, desc, report);
    break;
  default:
    status = export_gguf_lora(&s, desc, report);
    break;
  }
  export_source_close(&s);
  return status;
}
