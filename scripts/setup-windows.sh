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
# shellcheck source=scripts/static-libs.sh
. scripts/static-libs.sh
static_libs_sources
static_libs_build "$prefix" x86_64-w64-mingw32-gcc x86_64-w64-mingw32-ar \
  -DCMAKE_TOOLCHAIN_FILE="$PWD/cmake/mingw-w64.cmake"

# Vulkan headers and volk are platform-neutral source: take them from the -dev packages (the
# Vulkan headers from .deps/vulkan when scripts/setup-shader-tools.sh made them: they declare
# VK_KHR_cooperative_matrix).
if [ -d "$deps/vulkan/include/vulkan" ]; then
  cp -r "$deps/vulkan/include/." "$prefix/include/"
else
  cp -r /usr/include/vulkan "$prefix/include/"
  [ -d /usr/include/vk_video ] && cp -r /usr/include/vk_video "$prefix/include/"
fi
cp /usr/include/volk.h /usr/include/volk.c "$prefix/include/"
echo "setup-windows: libraries ready in $prefix"
