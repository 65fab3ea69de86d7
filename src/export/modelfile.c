/* An Ollama Modelfile beside a GGUF export (`ollama create NAME -f FILE`): FROM the model,
 * ADAPTER for a LoRA export, and a TEMPLATE with its stop tokens when the chat template is one
 * of the common families (ChatML, Llama 3, Mistral [INST]); Ollama's Go templates cannot run
 * Jinja, so other templates are left to Ollama (a base model needs none). */
#include "internal.h"

#include "vkft/error.h"
#include "vkft/json.h"
#include "vkft/platform.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
  const char *marker, *template_text, *stops[3];
} families[] = {
    {"<|im_start|>",
     "{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end "
     "}}<|im_start|>assistant\n",
     {"<|im_start|>", "<|im_end|>", NULL}},
    {"<|start_header_id|>",
     "{{- range .Messages }}<|start_header_id|>{{ .Role }}<|end_header_id|>\n\n{{ .Content "
     "}}<|eot_id|>\n{{- end }}<|start_header_id|>assistant<|end_header_id|>\n\n",
     {"<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"}},
    {"[INST]",
     "{{- range .Messages }}{{- if eq .Role \"user\" }}[INST] {{ .Content }} [/INST]{{- else if eq "
     ".Role \"assistant\" }} {{ .Content }}</s>{{- end }}{{- end }}",
     {"[INST]", "[/INST]", NULL}},
};

/* the chat template text of tokenizer_config.json (or chat_template.jinja), malloc'd; NULL if
 * there is none */
static char *chat_template(const char *dir) {
  char path[2048];
  if (vkft_gguf_is_file(dir)) { /* a GGUF base: its tokenizer.chat_template */
    vkft_gguf *g;
    const char *s;
    uint64_t len;
    char *text = NULL;
    if (vkft_gguf_open(dir, &g) != VKFT_OK) return NULL;
    if (vkft_gguf_find_key(g, "tokenizer.chat_template") >= 0 &&
        vkft_gguf_get_str(g, "tokenizer.chat_template", &s, &len) == VKFT_OK &&
        (text = malloc((size_t)len + 1))) {
      memcpy(text, s, (size_t)len);
      text[len] = 0;
    }
    vkft_gguf_close(g);
    return text;
  }
  snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
  cJSON *c = vkft_file_exists(path) ? vkft_json_read_file(path) : NULL;
  const cJSON *t = cJSON_GetObjectItemCaseSensitive(c, "chat_template");
  char *text = NULL;
  if (cJSON_IsString(t)) {
    text = malloc(strlen(t->valuestring) + 1);
    if (text) strcpy(text, t->valuestring);
  }
  cJSON_Delete(c);
  snprintf(path, sizeof path, "%s/chat_template.jinja", dir);
  if (!text && vkft_file_exists(path) && vkft_file_read(path, &text, NULL) != VKFT_OK) text = NULL;
  return text;
}

int export_modelfile(const char *from, const char *adapter_gguf, const char *tokenizer_dir,
                     char *written, size_t n) {
  const char *gguf = adapter_gguf ? adapter_gguf : from;
  char path[2048];
  size_t stem = strlen(gguf);
  if (stem > 5 && !strcmp(gguf + stem - 5, ".gguf")) stem -= 5;
  snprintf(path, sizeof path, "%.*s.Modelfile", (int)stem, gguf);
  char *text = malloc(16384);
  if (!text) return vkft_error_nomem();
  int len = 0;
  if (adapter_gguf)
    len += snprintf(text + len, 16384 - (size_t)len,
                    "# the base model: its folder as given to vkft export (Ollama imports a "
                    "safetensors folder), or a GGUF of it\nFROM %s\nADAPTER ./%s\n",
                    from, export_base_name(adapter_gguf));
  else
    len += snprintf(text + len, 16384 - (size_t)len, "FROM ./%s\n", export_base_name(from));
  char *tmpl = chat_template(tokenizer_dir);
  for (size_t f = 0; tmpl && f < sizeof families / sizeof families[0]; f++) {
    if (!strstr(tmpl, families[f].marker)) continue;
    len += snprintf(text + len, 16384 - (size_t)len, "TEMPLATE \"\"\"%s\"\"\"\n",
                    families[f].template_text);
    for (int s = 0; s < 3 && families[f].stops[s]; s++)
      len += snprintf(text + len, 16384 - (size_t)len, "PARAMETER stop \"%s\"\n",
                      families[f].stops[s]);
    break;
  }
  free(tmpl);
  int status = vkft_file_write_atomic(path, text, (size_t)len);
  free(text);
  if (status == VKFT_OK) snprintf(written, n, "%s", path);
  return status;
}
