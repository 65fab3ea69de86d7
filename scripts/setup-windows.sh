#!/usr/bin/env bash
# Prepares the Windows cross build on Debian: the MinGW-w64 compiler, Wine and Xvfb to run the
# result, and the libraries vkft links — built from Debian's *source* packages (cJSON, PCRE2,
# utf8proc, libyaml) with MinGW-w64 into the ignored folder .deps/win64, plus the Vulkan and volk
# headers from their -dev packages. Nothing is copied into the repository. Cached: each library
# is built once, so a second run is quick and a library added later is the only one built.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
sudo=""
[ "$(id -u)" -ne 0 ] && sudo=sudo
packages=(gcc-mingw-w64-x86-64 wine64 xvfb xauth dpkg-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup-windows: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
fi

deps=$PWD/.deps
prefix=$deps/win64
if [ -f "$prefix/lib/libpcre2-8.a" ] && [ -f "$prefix/lib/libcjson.a" ] && [ -f "$prefix/lib/libutf8proc.a" ] &&
  [ -f "$prefix/lib/libyaml.a" ] && [ -f "$prefix/include/volk.c" ]; then
  exit 0
fi
mkdir -p "$deps/src" "$prefix/include/cjson" "$prefix/lib"

# Debian source packages need a deb-src entry for the running release.
codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
if ! grep -rqs "deb-src\|Types:.*deb-src" /etc/apt/sources.list /etc/apt/sources.list.d/; then
  echo "setup-windows: adding a deb-src entry for $codename"
  printf 'Types: deb-src\nURIs: http://deb.debian.org/debian\nSuites: %s\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
    "$codename" | $sudo tee /etc/apt/sources.list.d/vkft-deb-src.sources >/dev/null
  $sudo apt-get update -qq
fi
cd "$deps/src"
ls -d cjson-*/ >/dev/null 2>&1 || apt-get source -qq cjson
ls -d pcre2-*/ >/dev/null 2>&1 || apt-get source -qq pcre2
ls -d utf8proc-*/ >/dev/null 2>&1 || apt-get source -qq utf8proc
ls -d libyaml-*/ >/dev/null 2>&1 || apt-get source -qq libyaml
cjson_dir=$(ls -d cjson-*/ | head -1)
pcre2_dir=$(ls -d pcre2-*/ | head -1)
utf8proc_dir=$(ls -d utf8proc-*/ | head -1)
yaml_dir=$(ls -d libyaml-*/ | head -1)

# cJSON is one C file.
if [ ! -f "$prefix/lib/libcjson.a" ]; then
  x86_64-w64-mingw32-gcc -O2 -c "$cjson_dir/cJSON.c" -o "$deps/src/cJSON.o"
  x86_64-w64-mingw32-ar rcs "$prefix/lib/libcjson.a" "$deps/src/cJSON.o"
  cp "$cjson_dir/cJSON.h" "$prefix/include/cjson/"
fi

# utf8proc is one C file (it includes its own Unicode tables).
if [ ! -f "$prefix/lib/libutf8proc.a" ]; then
  x86_64-w64-mingw32-gcc -O2 -DUTF8PROC_STATIC -c "$utf8proc_dir/utf8proc.c" -o "$deps/src/utf8proc.o"
  x86_64-w64-mingw32-ar rcs "$prefix/lib/libutf8proc.a" "$deps/src/utf8proc.o"
  cp "$utf8proc_dir/utf8proc.h" "$prefix/include/"
fi

# PCRE2, 8-bit library only, static, with JIT.
if [ ! -f "$prefix/lib/libpcre2-8.a" ]; then
  cmake -S "$pcre2_dir" -B "$deps/src/pcre2-build" -DCMAKE_TOOLCHAIN_FILE="$OLDPWD/cmake/mingw-w64.cmake" \
    -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX="$prefix" -DBUILD_SHARED_LIBS=OFF \
    -DPCRE2_BUILD_PCRE2_8=ON -DPCRE2_BUILD_PCRE2_16=OFF -DPCRE2_BUILD_PCRE2_32=OFF \
    -DPCRE2_SUPPORT_JIT=ON -DPCRE2_BUILD_PCRE2GREP=OFF -DPCRE2_BUILD_TESTS=OFF >/dev/null
  cmake --build "$deps/src/pcre2-build" -j"$(nproc)" >/dev/null
  cmake --install "$deps/src/pcre2-build" >/dev/null
fi

# libyaml, static (its users define YAML_DECLARE_STATIC: CMakeLists.txt does).
if [ ! -f "$prefix/lib/libyaml.a" ]; then
  cmake -S "$yaml_dir" -B "$deps/src/yaml-build" -DCMAKE_TOOLCHAIN_FILE="$OLDPWD/cmake/mingw-w64.cmake" \
    -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX="$prefix" -DBUILD_SHARED_LIBS=OFF \
    -DBUILD_TESTING=OFF -DINSTALL_CMAKE_DIR=lib/cmake/yaml >/dev/null
  cmake --build "$deps/src/yaml-build" -j"$(nproc)" >/dev/null
  cmake --install "$deps/src/yaml-build" >/dev/null
fi

# Vulkan headers and volk are platform-neutral source: take them from the -dev packages.
cp -r /usr/include/vulkan "$prefix/include/"
[ -d /usr/include/vk_video ] && cp -r /usr/include/vk_video "$prefix/include/"
cp /usr/include/volk.h /usr/include/volk.c "$prefix/include/"
echo "setup-windows: libraries ready in $prefix"
