# Cross-compiling vkft.exe on Debian with MinGW-w64 (package gcc-mingw-w64-x86-64).
# Libraries come from .deps/win64, built by scripts/setup-windows.sh from Debian's source
# packages; everything is linked statically so vkft.exe needs only vulkan-1.dll.
set(CMAKE_SYSTEM_NAME Windows)
set(CMAKE_SYSTEM_PROCESSOR x86_64)
set(CMAKE_C_COMPILER x86_64-w64-mingw32-gcc)
set(CMAKE_RC_COMPILER x86_64-w64-mingw32-windres)
get_filename_component(VKFT_WIN_DEPS "${CMAKE_CURRENT_LIST_DIR}/../.deps/win64" ABSOLUTE)
set(CMAKE_FIND_ROOT_PATH ${VKFT_WIN_DEPS} /usr/x86_64-w64-mingw32)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER) # glslangValidator runs on the build machine
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_EXE_LINKER_FLAGS_INIT "-static")
