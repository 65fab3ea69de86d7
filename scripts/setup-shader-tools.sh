#!/usr/bin/env bash
# Builds the shader toolchain that cooperative-matrix kernels need from Debian 13 (trixie)
# *source* packages into the ignored folder .deps/ (Debian 12's glslang 12 cannot compile
# GL_KHR_cooperative_matrix, its Vulkan headers 1.3.239 do not declare VK_KHR_cooperative_matrix,
# and its spirv-val 2023.1 cannot validate the result):
#   .deps/glslang/bin/glslangValidator  glslang 15 (standalone validator only: no HLSL, no optimizer)
#   .deps/vulkan/include                the Vulkan headers bundled in vulkan-loader's source
#   .deps/spirv-tools/bin/spirv-val     SPIRV-Tools' validator (with SPIRV-Headers' grammar)
# CMakeLists.txt prefers these when present; without them the build still works and the
# cooperative-matrix variants are simply absent (`vkft devices` says so). Cached: a tool already
# built is not built again. About three minutes on 2 cores the first time, mostly spirv-val.
set -euo pipefail
cd "$(dirname "$0")/.."
deps=$PWD/.deps
src=$deps/src-trixie
if [ -x "$deps/glslang/bin/glslangValidator" ] && [ -f "$deps/vulkan/include/vulkan/vulkan_core.h" ] &&
  [ -x "$deps/spirv-tools/bin/spirv-val" ]; then
  exit 0
fi
sudo=""
[ "$(id -u)" -ne 0 ] && sudo=sudo
missing=()
for p in dpkg-dev cmake python3 xz-utils; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
fi

# Source packages only (deb-src): nothing from trixie is installed on the system.
list=/etc/apt/sources.list.d/vkft-trixie-src.sources
if [ ! -f "$list" ]; then
  echo "setup-shader-tools: adding a deb-src entry for Debian 13 (trixie)"
  printf 'Types: deb-src\nURIs: http://deb.debian.org/debian\nSuites: trixie\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' |
    $sudo tee "$list" >/dev/null
  $sudo apt-get update -qq
fi
mkdir -p "$src"
cd "$src"
# fetch PACKAGE: trixie's source package as upstream released it (its .orig tarball: Debian's
# patches only adapt pkg-config files to the distribution's build), unpacked; prints the folder.
fetch() {
  local orig
  if ! ls "$1"_*.orig.tar.* >/dev/null 2>&1; then
    # the .orig tarball is all we use; a missing .dsc or .debian.tar (seen: 404) is no failure
    apt-get source -qq --download-only "$1/trixie" >/dev/null 2>&1 || true
  fi
  orig=$(ls "$1"_*.orig.tar.* 2>/dev/null | head -1)
  if [ -z "$orig" ]; then
    echo "setup-shader-tools: cannot download the source package $1 from Debian trixie" >&2
    exit 1
  fi
  local dir
  dir=$( (tar tf "$orig" || true) | head -1 | cut -d/ -f1)
  [ -d "$dir" ] || tar xf "$orig"
  echo "$dir"
}
# build TOOL SOURCE BUILD_DIR TARGET CMAKE_ARGS...: quiet, the compiler's output kept in a log
build() {
  local name=$1 source=$2 dir=$3 target=$4
  shift 4
  echo "setup-shader-tools: building $name from $source"
  if ! { cmake -S "$source" -B "$dir" -DCMAKE_BUILD_TYPE=Release "$@" &&
    cmake --build "$dir" --target "$target" -j"$(nproc)"; } >"$dir.log" 2>&1; then
    tail -20 "$dir.log" >&2
    echo "setup-shader-tools: building $name failed (log: $dir.log)" >&2
    exit 1
  fi
}
if [ ! -f "$deps/vulkan/include/vulkan/vulkan_core.h" ]; then
  dir=$(fetch vulkan-loader)
  mkdir -p "$deps/vulkan/include"
  cp -r "$dir/vulkan-headers/include/." "$deps/vulkan/include/"
fi

if [ ! -x "$deps/glslang/bin/glslangValidator" ]; then
  dir=$(fetch glslang)
  build glslang "$dir" "$src/glslang-build" glslang-standalone -DENABLE_OPT=OFF \
    -DENABLE_HLSL=OFF -DBUILD_EXTERNAL=OFF -DGLSLANG_TESTS=OFF -DENABLE_SPVREMAPPER=OFF
  mkdir -p "$deps/glslang/bin"
  cp "$src/glslang-build/StandAlone/glslang" "$deps/glslang/bin/glslangValidator"
fi

if [ ! -x "$deps/spirv-tools/bin/spirv-val" ]; then
  headers=$(fetch spirv-headers)
  dir=$(fetch spirv-tools)
  build spirv-val "$dir" "$src/spirv-tools-build" spirv-val -DSPIRV-Headers_SOURCE_DIR="$src/$headers" \
    -DSPIRV_SKIP_TESTS=ON -DSPIRV_WERROR=OFF -DSPIRV_SKIP_EXECUTABLES=OFF
  mkdir -p "$deps/spirv-tools/bin"
  cp "$src/spirv-tools-build/tools/spirv-val" "$deps/spirv-tools/bin/"
fi
echo "setup-shader-tools: $("$deps/glslang/bin/glslangValidator" --version | head -1), spirv-val ready in $deps"
