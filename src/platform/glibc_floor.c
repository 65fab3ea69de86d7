/* The portable Linux build's start (see glibc_floor.h): glibc 2.34 gave __libc_start_main a new
 * version, which the start file of a newer glibc (Scrt1.o) calls with no initializer, leaving
 * the program's constructors to libc. Defined here, it is the one Scrt1.o's call reaches: it
 * calls the old version (GLIBC_2.2.5, in every glibc) with an initializer that runs the
 * program's _init and .init_array, as the __libc_csu_init of glibc < 2.34's start files did.
 * glibc >= 2.34 calls a given initializer instead of walking the constructors itself, so they run
 * once either way; .preinit_array and the destructors are the dynamic linker's in all versions.
 * Built only with VKFT_GLIBC_FLOOR (the linux-portable preset). */
#if defined(__linux__) && defined(__x86_64__)
#include <stddef.h>

typedef int (*main_fn)(int, char **, char **);
typedef void (*init_fn)(int, char **, char **);

int vkft_libc_start_main_2_2_5(main_fn main, int argc, char **argv, init_fn init,
                               void (*fini)(void), void (*rtld_fini)(void), void *stack_end);
__asm__(".symver vkft_libc_start_main_2_2_5,__libc_start_main@GLIBC_2.2.5");

extern void _init(void);
extern init_fn __init_array_start[] __attribute__((visibility("hidden")));
extern init_fn __init_array_end[] __attribute__((visibility("hidden")));

static void run_constructors(int argc, char **argv, char **envp) {
  _init();
  size_t n = (size_t)(__init_array_end - __init_array_start);
  for (size_t i = 0; i < n; i++) __init_array_start[i](argc, argv, envp);
}

/* hidden: Scrt1.o's call binds to it when the program is linked, while the dynamic linker, which
 * looks the old version up by name, finds only libc's (exported, it would find itself) */
__attribute__((visibility("hidden"))) int __libc_start_main(main_fn main, int argc, char **argv,
                                                            init_fn init, void (*fini)(void),
                                                            void (*rtld_fini)(void),
                                                            void *stack_end);
int __libc_start_main(main_fn main, int argc, char **argv, init_fn init, void (*fini)(void),
                      void (*rtld_fini)(void), void *stack_end) {
  return vkft_libc_start_main_2_2_5(main, argc, argv, init ? init : run_constructors, fini,
                                    rtld_fini, stack_end);
}
#endif
