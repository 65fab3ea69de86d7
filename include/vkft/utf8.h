/* The one UTF-8 decoder and encoder, shared by the tokenizer, the Jinja interpreter, the data
 * code and the command-line tools. */
#ifndef VKFT_UTF8_H
#define VKFT_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Writes cp (at most U+10FFFF) as 1..4 bytes into out; returns the byte count. */
size_t vkft_utf8_encode(uint32_t cp, char out[4]);

/* Malformed input marker of the lenient decoders. */
#define VKFT_UTF8_BAD 0xFFFFFFFFu

/* Strict: decodes the code point at s, of which len bytes may be read. Returns the bytes it
 * takes (1..4) and sets *cp; returns 0 for malformed input (len 0, a stray continuation byte,
 * a sequence cut short by len or by a non-continuation byte, an overlong form, a surrogate,
 * above U+10FFFF), as Rust's and Python's decoders reject it. */
size_t vkft_utf8_decode(const char *s, size_t len, uint32_t *cp);
/* Lenient: as vkft_utf8_decode, but malformed input takes one byte and gives VKFT_UTF8_BAD
 * (callers choose what stands for it: U+FFFD, the byte itself). len must be > 0. */
size_t vkft_utf8_decode_lenient(const char *s, size_t len, uint32_t *cp);
/* Lenient, on a NUL-terminated string: decodes the code point at *s and advances *s past it
 * (one byte for malformed input, VKFT_UTF8_BAD). Never reads past the NUL. */
uint32_t vkft_utf8_next(const unsigned char **s);

#endif
