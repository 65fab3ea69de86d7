# cmake -DNAME=n -DIN=x.spv -DOUT=x.c -P embed_spirv.cmake: writes the SPIR-V words as a C array.
file(READ ${IN} hex HEX)
string(LENGTH "${hex}" len)
math(EXPR bytes "${len} / 2")
# SPIR-V is a stream of little-endian 32-bit words: regroup each 4 bytes into one word.
string(REGEX REPLACE "([0-9a-f][0-9a-f])([0-9a-f][0-9a-f])([0-9a-f][0-9a-f])([0-9a-f][0-9a-f])"
       "0x\\4\\3\\2\\1u," words "${hex}")
string(REGEX REPLACE "((0x[0-9a-f]+u,){8})" "\\1\n" words "${words}")
file(WRITE ${OUT} "/* Generated from ${NAME}.spv. */\n#include <stddef.h>\n#include <stdint.h>\n"
     "const uint32_t vkft_spv_${NAME}[] = {\n${words}};\nconst size_t vkft_spv_${NAME}_size = ${bytes};\n")
