/* Hugging Face tokenizers (tokenizer.json) in plain C: byte-level BPE (GPT-2, Llama 3, Qwen2/3,
 * SmolLM) and SentencePiece-style BPE with byte fallback (Llama 2, Mistral, TinyLlama,
 * stories260K). Encoding and decoding match the Rust `tokenizers` library (0.22) id for id and
 * byte for byte, with HF's defaults: added/special tokens found in the text are matched as tokens
 * (split_special_tokens=False), and decoding does no clean-up of spaces.
 *
 * Supported pieces of tokenizer.json (anything else is refused at load time with a message):
 *   model          BPE (merges as "a b" strings or ["a","b"] pairs; byte_fallback, fuse_unk,
 *                  unk_token, ignore_merges, continuing_subword_prefix, end_of_word_suffix)
 *   normalizer     NFC, NFD, NFKC, NFKD, Lowercase, Prepend, Replace (string pattern), Strip,
 *                  Sequence, null
 *   pre_tokenizer  ByteLevel, Split (regex or string, all behaviours, invert), Metaspace, Digits,
 *                  Sequence, null
 *   post_processor TemplateProcessing (single), ByteLevel, RobertaProcessing, BertProcessing,
 *                  Sequence, null
 *   decoder        ByteLevel, Metaspace, Replace, ByteFallback, Fuse, Strip, Sequence, null
 *
 * Thread safety: a loaded tokenizer may be used by any number of threads at once (encode,
 * decode and the getters); each concurrent encode takes its own scratch space and word cache
 * from a pool inside the tokenizer. vkft_tokenizer_add_special must not run concurrently with
 * anything else on the same tokenizer. */
#ifndef VKFT_TOKENIZER_H
#define VKFT_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct vkft_tokenizer vkft_tokenizer;

/* Loads PATH, either a folder holding tokenizer.json, the tokenizer.json file itself, or a GGUF
 * file (its tokenizer.ggml.* metadata, rebuilt as the model's tokenizer.json:
 * src/tokenizer/gguf.c). tokenizer_config.json next to it, when present, supplies bos/eos token
 * names and the chat template; for the Llama/CodeLlama/Gemma tokenizer classes its
 * add_bos_token/add_eos_token also decide what add_special adds, as transformers does (other
 * classes: tokenizer.json's post-processor). On error returns VKFT_ERR with a message naming the
 * file and the problem. */
int vkft_tokenizer_load(const char *path, vkft_tokenizer **out);
void vkft_tokenizer_free(vkft_tokenizer *tok);

/* Encodes len bytes of UTF-8 text (invalid UTF-8 is an error: HF only accepts valid strings).
 * add_special applies the post-processor (HF add_special_tokens=True: Llama 3 and Mistral add a
 * BOS). *ids is realloc'd (it may be NULL or a buffer from an earlier call; the caller frees it)
 * and *n_ids is set to the number of ids. */
int vkft_tokenizer_encode(const vkft_tokenizer *tok, const char *text, size_t len, int add_special,
                          int32_t **ids, size_t *n_ids);

/* Encodes n texts on `threads` threads (<= 0: one per CPU). For each i, ids[i] receives a
 * malloc'd array (the caller frees each) of n_ids[i] ids; ids and n_ids are caller-provided
 * arrays of n entries. On error every ids[i] is NULL and the message names the failing text. */
int vkft_tokenizer_encode_batch(const vkft_tokenizer *tok, const char *const *texts,
                                const size_t *lens, size_t n, int add_special, int threads,
                                int32_t **ids, size_t *n_ids);

/* Decodes ids into a malloc'd NUL-terminated UTF-8 string (*len excludes the NUL), through the
 * tokenizer's decoder. Special tokens are kept unless skip_special is set (tokens marked
 * "special": false in added_tokens, such as Qwen's <think>, are always kept, as in HF).
 * Byte sequences that are not valid UTF-8 become U+FFFD the way HF does. An id outside the
 * vocabulary is an error (HF silently drops it). */
int vkft_tokenizer_decode(const vkft_tokenizer *tok, const int32_t *ids, size_t n, int skip_special,
                          char **text, size_t *len);

/* Id of a token string (added tokens first, then the model vocabulary); -1 if absent. */
int32_t vkft_tokenizer_token_id(const vkft_tokenizer *tok, const char *token);
/* The token's string as stored in the vocabulary ("Ġworld", "▁Hello", "<0x0A>"); NULL if the id
 * is unused. Valid until the next vkft_tokenizer_add_special or vkft_tokenizer_free. */
const char *vkft_tokenizer_token_str(const vkft_tokenizer *tok, int32_t id);
/* Largest id + 1 over the vocabulary and the added tokens (the embedding rows a model needs). */
size_t vkft_tokenizer_vocab_size(const vkft_tokenizer *tok);

/* BOS/EOS from tokenizer_config.json (bos_token/eos_token, as a string or an AddedToken object);
 * without a config the BOS is the first special token the post-processor adds, if any.
 * -1 / NULL if none. */
int32_t vkft_tokenizer_bos_id(const vkft_tokenizer *tok);
int32_t vkft_tokenizer_eos_id(const vkft_tokenizer *tok);
const char *vkft_tokenizer_bos_str(const vkft_tokenizer *tok);
const char *vkft_tokenizer_eos_str(const vkft_tokenizer *tok);

/* 1 if id is an added token marked "special" (dropped by skip_special), else 0. */
int vkft_tokenizer_is_special(const vkft_tokenizer *tok, int32_t id);

/* Why tokenizer_config.json's chat_template cannot be used (not a string, or a list without a
 * "default" entry), NULL when it can or when there is none. */
const char *vkft_tokenizer_chat_template_problem(const vkft_tokenizer *tok);
/* The chat template source from tokenizer_config.json ("chat_template": a string, or the
 * "default" entry of a list of named templates); NULL if none. */
const char *vkft_tokenizer_chat_template(const vkft_tokenizer *tok);

/* Adds a special token (like HF add_special_tokens): if the string already is a token, it is
 * marked special and matched as a whole from now on; otherwise it gets the id vocab_size.
 * *id (may be NULL) receives its id. Not thread-safe with other calls on the same tokenizer. */
int vkft_tokenizer_add_special(vkft_tokenizer *tok, const char *token, int32_t *id);

#ifdef __cplusplus
}
#endif
#endif
