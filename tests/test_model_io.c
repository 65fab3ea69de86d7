/* Model files: config.json parsing (the bundled stories260K and broken variants) and
 * safetensors reading, sharded reading and atomic writing. */
#include "check.h"

#include "vkft/error.h"
#include "vkft/model_config.h"
#include "vkft/platform.h"
#include "vkft/safetensors.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define STORIES check_path("models/stories260K")
#define TMP "test_model_io.tmp"

static void write_text(const char *path, const char *text) {
  CHECK(vkft_file_write_atomic(path, text, strlen(text)) == VKFT_OK);
}

static void config_stories(void) {
  vkft_model_config c;
  CHECKF(vkft_model_config_load(STORIES, &c) == VKFT_OK, "%s", vkft_error_message());
  CHECK(c.arch == VKFT_ARCH_LLAMA);
  CHECK(c.vocab_size == 512 && c.hidden_size == 64 && c.intermediate_size == 172);
  CHECK(c.num_layers == 5 && c.num_heads == 8 && c.num_kv_heads == 4 && c.head_dim == 8);
  CHECK(c.tie_word_embeddings == 1 && c.attention_bias == 0 && c.qk_norm == 0);
  CHECK(fabs(c.rms_norm_eps - 1e-5) < 1e-12 && c.rope_theta == 10000.0 && !c.rope_llama3);
  CHECK(c.max_position_embeddings == 512 && c.bos_token_id == 1 && c.eos_token_id == 2);
}

/* Each broken config gives an error that names the file and the field. */
static void config_errors(void) {
  static const struct {
    const char *json, *expect;
    vkft_errcode code;
  } cases[] = {
      {"{\"architectures\": [\"GPT2LMHeadModel\"]}", "unsupported architecture \"GPT2LMHeadModel\"",
       VKFT_ERR_UNSUPPORTED},
      {"{\"architectures\": [\"LlamaForCausalLM\"], \"vocab_size\": 10}",
       "missing field \"hidden_size\"", VKFT_ERR_INPUT},
      {"{\"architectures\": [\"LlamaForCausalLM\"], \"vocab_size\": 10, \"hidden_size\": 12, "
       "\"intermediate_size\": 4, \"num_hidden_layers\": 1, \"num_attention_heads\": 3, "
       "\"num_key_value_heads\": 2}",
       "multiple of num_key_value_heads", VKFT_ERR_INPUT},
      {"{\"architectures\": [\"Qwen2ForCausalLM\"], \"vocab_size\": \"many\"}",
       "\"vocab_size\" must be", VKFT_ERR_INPUT},
      {"{\"architectures\": [\"LlamaForCausalLM\"], \"vocab_size\": 10, \"hidden_size\": 8, "
       "\"intermediate_size\": 4, \"num_hidden_layers\": 1, \"num_attention_heads\": 2, "
       "\"rope_scaling\": {\"rope_type\": \"yarn\"}}",
       "unsupported rope_scaling type \"yarn\"", VKFT_ERR_UNSUPPORTED},
      {"{not json", "not valid JSON", VKFT_ERR_INPUT},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    write_text(TMP "/config.json", cases[i].json);
    vkft_model_config c;
    CHECK(vkft_model_config_load(TMP, &c) == VKFT_ERR);
    CHECKF(vkft_error_code() == cases[i].code && strstr(vkft_error_message(), cases[i].expect) &&
               strstr(vkft_error_message(), "config.json"),
           "case %zu: %s", i, vkft_error_message());
  }
  /* Qwen3 with explicit head_dim and llama3-scaled RoPE fields */
  write_text(TMP "/config.json",
             "{\"architectures\": [\"Qwen3ForCausalLM\"], \"vocab_size\": 10, \"hidden_size\": 8, "
             "\"intermediate_size\": 4, \"num_hidden_layers\": 1, \"num_attention_heads\": 4, "
             "\"num_key_value_heads\": 2, \"head_dim\": 6, \"rope_scaling\": {\"rope_type\": "
             "\"llama3\", \"factor\": 32.0, \"original_max_position_embeddings\": 8192}}");
  vkft_model_config c;
  CHECKF(vkft_model_config_load(TMP, &c) == VKFT_OK, "%s", vkft_error_message());
  CHECK(c.arch == VKFT_ARCH_QWEN3 && c.qk_norm && c.head_dim == 6 && c.rope_llama3 &&
        c.rope_factor == 32.0);
}

static void read_stories(void) {
  vkft_st_set *set;
  CHECKF(vkft_st_open(STORIES, &set) == VKFT_OK, "%s", vkft_error_message());
  CHECK(vkft_st_count(set) == 47);
  const vkft_st_tensor *e = vkft_st_find(set, "model.embed_tokens.weight");
  CHECK(e && e->dtype == VKFT_ST_F32 && e->rank == 2 && e->shape[0] == 512 && e->shape[1] == 64);
  CHECK(vkft_st_find(set, "lm_head.weight") == NULL); /* tied */
  vkft_st_set *bf;
  CHECKF(vkft_st_open(check_path("models/stories260K/bf16"), &bf) == VKFT_OK, "%s",
         vkft_error_message());
  const vkft_st_tensor *eb = vkft_st_find(bf, "model.embed_tokens.weight");
  CHECK(eb && eb->dtype == VKFT_ST_BF16 && eb->size == 512 * 64 * 2);
  vkft_st_close(bf);
  vkft_st_close(set);
}

static void write_read_sharded(void) {
  float a[6] = {1, 2, 3, 4, 5, 6};
  uint16_t b[3] = {0x3f80, 0x4000, 0xc040};
  vkft_st_writer *w;
  CHECK(vkft_st_writer_create(&w) == VKFT_OK);
  CHECK(vkft_st_writer_add(w, "z.weight", VKFT_F32, 2, (int64_t[]){2, 3}, a) == VKFT_OK);
  CHECK(vkft_st_writer_add(w, "a.bias", VKFT_BF16, 1, (int64_t[]){3}, b) == VKFT_OK);
  CHECK(vkft_st_writer_meta(w, "format", "pt") == VKFT_OK);
  CHECK(vkft_st_writer_save(w, TMP "/shard-1.safetensors") == VKFT_OK);
  vkft_st_writer_free(w);
  CHECK(vkft_st_writer_create(&w) == VKFT_OK);
  CHECK(vkft_st_writer_add(w, "m.weight", VKFT_F32, 1, (int64_t[]){6}, a) == VKFT_OK);
  CHECK(vkft_st_writer_save(w, TMP "/shard-2.safetensors") == VKFT_OK);
  vkft_st_writer_free(w);
  CHECK(!vkft_file_exists(TMP "/shard-2.safetensors.tmp"));

  char *bytes;
  size_t size;
  CHECK(vkft_file_read(TMP "/shard-1.safetensors", &bytes, &size) == VKFT_OK);
  uint64_t header = 0;
  for (int i = 7; i >= 0; i--) header = header << 8 | (uint8_t)bytes[i];
  CHECK(header % 8 == 0 && 8 + header + 24 + 6 == size);
  /* the Python library's order: wider dtypes first (F32 before BF16), then names */
  CHECK(strstr(bytes + 8, "\"z.weight\"") < strstr(bytes + 8, "\"a.bias\""));
  free(bytes);

  write_text(TMP "/model.safetensors.index.json",
             "{\"metadata\": {}, \"weight_map\": {\"z.weight\": \"shard-1.safetensors\", "
             "\"a.bias\": \"shard-1.safetensors\", \"m.weight\": \"shard-2.safetensors\"}}");
  vkft_st_set *set;
  CHECKF(vkft_st_open(TMP, &set) == VKFT_OK, "%s", vkft_error_message());
  CHECK(vkft_st_count(set) == 3);
  const vkft_st_tensor *z = vkft_st_find(set, "z.weight"), *m = vkft_st_find(set, "m.weight");
  const vkft_st_tensor *bb = vkft_st_find(set, "a.bias");
  CHECK(z && z->shape[0] == 2 && z->shape[1] == 3 && !memcmp(z->data, a, sizeof a));
  CHECK(m && strstr(vkft_st_file_of(set, m), "shard-2") && !memcmp(m->data, a, sizeof a));
  CHECK(bb && bb->dtype == VKFT_ST_BF16 && !memcmp(bb->data, b, sizeof b));
  vkft_st_close(set);

  /* an index naming a tensor its shard lacks */
  write_text(TMP "/model.safetensors.index.json",
             "{\"weight_map\": {\"q.weight\": \"shard-2.safetensors\"}}");
  CHECK_ERR(vkft_st_open(TMP, &set), VKFT_ERR_INPUT, "\"q.weight\" is missing");
}

/* Damaged files are errors naming the file, never out-of-bounds reads. */
static void damaged_files(void) {
  char *bytes;
  size_t size;
  CHECK(vkft_file_read(VKFT_SOURCE_DIR "/models/stories260K/model.safetensors", &bytes, &size) ==
        VKFT_OK);
  size_t cuts[] = {0, 5, 8, 100, 4000, size - 1};
  for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
    CHECK(vkft_file_write_atomic(TMP "/cut.safetensors", bytes, cuts[i]) == VKFT_OK);
    vkft_st_set *set;
    CHECKF(vkft_st_open(TMP "/cut.safetensors", &set) == VKFT_ERR, "cut at %zu opened", cuts[i]);
    CHECKF(vkft_error_code() == VKFT_ERR_INPUT && strstr(vkft_error_message(), "cut.safetensors"),
           "%s", vkft_error_message());
  }
  /* flipped bytes inside the header: either still valid or an error, never a crash */
  for (int i = 0; i < 300; i++) {
    char *copy = malloc(size);
    memcpy(copy, bytes, size);
    copy[8 + (i * 7919) % 4856] ^= (char)(1 + i % 255);
    CHECK(vkft_file_write_atomic(TMP "/flip.safetensors", copy, size) == VKFT_OK);
    vkft_st_set *set;
    if (vkft_st_open(TMP "/flip.safetensors", &set) == VKFT_OK) vkft_st_close(set);
    free(copy);
  }
  free(bytes);
  vkft_st_set *set;
  CHECK(vkft_st_open(TMP "/missing", &set) == VKFT_ERR);
}

int main(void) {
  vkft_remove_tree(TMP);
  CHECK(vkft_mkdirs(TMP) == VKFT_OK);
  if (check_need_data("test_model_io: stories260K")) {
    config_stories();
    read_stories();
  }
  config_errors();
  write_read_sharded();
  damaged_files();
  vkft_remove_tree(TMP);
  return check_summary();
}
