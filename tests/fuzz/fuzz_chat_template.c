/* Fuzz target: Jinja chat templates — parsed, then rendered for a fixed conversation with a
 * system prompt, a tool call and its reply, the way `vkft data` and `tokenize --chat` do. */
#include "fuzz.h"

#include "vkft/chat_template.h"

static const char conversation[] =
    "{\"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"},"
    "{\"role\": \"user\", \"content\": \"Weather in Paris? {{ not a tag }}\"},"
    "{\"role\": \"assistant\", \"content\": \"\", \"tool_calls\": [{\"type\": \"function\", "
    "\"function\": {\"name\": \"weather\", \"arguments\": {\"city\": \"Paris\"}}}]},"
    "{\"role\": \"tool\", \"content\": \"sunny\"},"
    "{\"role\": \"assistant\", \"content\": \"Sunny.\", \"reasoning_content\": \"easy\"}],"
    "\"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"weather\", \"parameters\": "
    "{\"type\": \"object\"}}}], \"documents\": null, \"add_generation_prompt\": true,"
    "\"bos_token\": \"<s>\", \"eos_token\": \"</s>\"}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *source = fuzz_text(data, size);
  vkft_chat_template *t;
  if (vkft_chat_template_parse(source, "fuzz", &t) == VKFT_OK) {
    cJSON *ctx = cJSON_Parse(conversation);
    char *out = NULL;
    vkft_chat_template_options opt = {.max_output = 1 << 20};
    if (ctx && vkft_chat_template_render_opts(t, ctx, &opt, &out, NULL) == VKFT_OK) free(out);
    cJSON_Delete(ctx);
    vkft_chat_template_free(t);
  }
  free(source);
  vkft_error_clear();
  return 0;
}
