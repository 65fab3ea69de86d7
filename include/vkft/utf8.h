/* UTF-8 encoding of one code point, shared by the tokenizer, the Jinja interpreter and the
 * command-line tools. */
#ifndef VKFT_UTF8_H
#define VKFT_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Writes cp (at most U+10FFFF) as 1..4 bytes into out; returns the byte count. */
size_t vkft_utf8_encode(uint32_t cp, char out[4]);

/* Malformed input marker of vkft_utf8_next. */
#define VKFT_UTF8_BAD 0xFFFFFFFFu

/* Decodes the code point at *s of a NUL-terminated UTF-8 string and advances *s past it;
 * a malformed sequence gives VKFT_UTF8_BAD and advances to the first byte that does not
 * belong to it. */
uint32_t vkft_utf8_next(const unsigned char **s);

#endif
