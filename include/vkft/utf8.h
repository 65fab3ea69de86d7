/* UTF-8 encoding of one code point, shared by the tokenizer, the Jinja interpreter and the
 * command-line tools. */
#ifndef VKFT_UTF8_H
#define VKFT_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Writes cp (at most U+10FFFF) as 1..4 bytes into out; returns the byte count. */
size_t vkft_utf8_encode(uint32_t cp, char out[4]);

#endif
