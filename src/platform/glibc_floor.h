/* The portable Linux build (cmake --preset linux-portable, x86_64) runs on glibc >= 2.29 though
 * it is built against a newer one: force-included into the files that call what glibc 2.33 and
 * 2.34 gave new symbol versions (posix.c, volk.c), this binds those calls to the versions every
 * glibc since 2.2.5 exports (newer glibcs keep them for old binaries). Where the old version
 * lives in a library of its own before 2.34 (pthread_*: libpthread.so.0, dl*: libdl.so.2), the
 * binary names that library too (CMakeLists.txt); glibc 2.34+ keeps both as empty stubs.
 * stat/fstat/lstat: src/platform/posix.c; __libc_start_main: src/platform/glibc_floor.c.
 * Symbol versions: the Versions files of glibc's sources, `objdump -T` of its libraries. */
#ifndef VKFT_PLATFORM_GLIBC_FLOOR_H
#define VKFT_PLATFORM_GLIBC_FLOOR_H
#if defined(__linux__) && defined(__x86_64__)
__asm__(".symver pthread_create,pthread_create@GLIBC_2.2.5");
__asm__(".symver pthread_join,pthread_join@GLIBC_2.2.5");
__asm__(".symver dlopen,dlopen@GLIBC_2.2.5");
__asm__(".symver dlsym,dlsym@GLIBC_2.2.5");
#endif
#endif
