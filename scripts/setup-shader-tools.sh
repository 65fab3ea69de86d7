#!/usr/bin/env bash
# Builds the shader toolchain that cooperative-matrix kernels need from Debian 13 (trixie)
# *source* packages into the ignored folder .deps/ (Debian 12's glslang 12 cannot compile
# GL_KHR_cooperative_matrix, its Vulkan headers 1.3.239 do not declare VK_KHR_cooperative_matrix,
# and its spirv-val 2023.1 cannot validate the result):
#   .deps/glslang/bin/glslangValidator  glslang 15 (standalone validator only: no HLSL, no optimizer)
#   .deps/vulkan/include                the Vulkan headers bundled in vulkan-loader's source
#   .deps/spirv-tools/bin/spirv-val     SPIRV-Tools' validator (with SPIRV-Headers' grammar)
# CMakeLists.txt prefers these when present; without them the build still works and the
# cooperative-matrix variants are simply absent (`vkft devices` says so).
# All or nothing: the three are built under .deps/src-trixie and installed together only when
# every one succeeded, so a failure leaves .deps/ as it was (a half set, glslang 15 with the old
# spirv-val, could fail the build). apt is used with its own lists under .deps/src-trixie/apt:
# nothing is added to /etc/apt and nothing from trixie is installed on the system. Cached: the
# downloads and builds are kept and the script exits at once when the set is installed.
# Cost on 2 cores from nothing: see docs/GPU.md (measured there). Exit status 0 or 1 with one
# line on stderr saying why; scripts/setup.sh goes on without the tools.
set -euo pipefail
cd "$(dirname "$0")/.."
deps=$PWD/.deps
src=$deps/src-trixie
if [ -x "$deps/glslang/bin/glslangValidator" ] && [ -f "$deps/vulkan/include/vulkan/vulkan_core.h" ] &&
  [ -x "$deps/spirv-tools/bin/spirv-val" ]; then
  exit 0
fi
fail() {
  echo "setup-shader-tools: $*" >&2
  exit 1
}
# what the builds need (python3: both generate sources with it; xz: vulkan-loader's tarball)
missing=()
for p in build-essential cmake python3 xz-utils; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo=sudo
  { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq \
    "${missing[@]}"; } >/dev/null 2>&1 || fail "cannot install ${missing[*]}"
fi

# A private apt state: one deb-src line for trixie (VKFT_DEBIAN_MIRROR: another mirror), its own
# lists and cache.
apt_dir=$src/apt
mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$apt_dir/parts"
mirror=${VKFT_DEBIAN_MIRROR:-http://deb.debian.org/debian}
echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror trixie main" \
  >"$apt_dir/sources.list"
apt_opts=(-o "Dir::Etc::SourceList=$apt_dir/sources.list" -o "Dir::Etc::SourceParts=$apt_dir/parts"
  -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache" -o Acquire::Retries=2
  -o Acquire::http::Timeout=30 -o APT::Sandbox::User=root -qq)
if ! ls "$apt_dir"/lists/*Sources* >/dev/null 2>&1; then
  apt-get "${apt_opts[@]}" update >"$apt_dir/update.log" 2>&1 ||
    fail "cannot read Debian trixie's source index ($(tail -1 "$apt_dir/update.log"))"
fi
cd "$src"
# fetch PACKAGE: trixie's source package as upstream released it (its .orig tarball: Debian's
# patches only adapt pkg-config files to the distribution's build), unpacked; prints the folder.
fetch() {
  local orig dir
  if ! ls "$1"_*.orig.tar.* >/dev/null 2>&1; then
    # the .orig tarball is all we use; a missing .dsc or .debian.tar (seen: 404) is no failure
    apt-get "${apt_opts[@]}" source --download-only "$1" >"$apt_dir/$1.log" 2>&1 || true
  fi
  orig=$(ls "$1"_*.orig.tar.* 2>/dev/null | head -1)
  [ -n "$orig" ] || fail "cannot download the source package $1 from Debian trixie"
  dir=$( (tar tf "$orig" || true) | head -1 | cut -d/ -f1)
  [ -d "$dir" ] || tar xf "$orig" || fail "cannot unpack $orig"
  echo "$dir"
}
# build NAME SOURCE BUILD_DIR TARGET CMAKE_ARGS...: quiet, the compiler's output kept in a log
build() {
  local name=$1 source=$2 dir=$3 target=$4
  shift 4
  echo "setup-shader-tools: building $name from $source"
  { cmake -S "$source" -B "$dir" -DCMAKE_BUILD_TYPE=Release "$@" &&
    cmake --build "$dir" --target "$target" -j"$(nproc)"; } >"$dir.log" 2>&1 ||
    fail "building $name failed (log: $dir.log; its last line: $(tail -1 "$dir.log"))"
}

loader=$(fetch vulkan-loader)
[ -f "$loader/vulkan-headers/include/vulkan/vulkan_core.h" ] || fail "$loader has no Vulkan headers"

glslang=$(fetch glslang)
[ -x glslang-build/StandAlone/glslang ] ||
  build glslang "$glslang" "$src/glslang-build" glslang-standalone -DENABLE_OPT=OFF \
    -DENABLE_HLSL=OFF -DBUILD_EXTERNAL=OFF -DGLSLANG_TESTS=OFF -DENABLE_SPVREMAPPER=OFF

headers=$(fetch spirv-headers)
tools=$(fetch spirv-tools)
[ -x spirv-tools-build/tools/spirv-val ] ||
  build spirv-val "$tools" "$src/spirv-tools-build" spirv-val \
    -DSPIRV-Headers_SOURCE_DIR="$src/$headers" -DSPIRV_SKIP_TESTS=ON -DSPIRV_WERROR=OFF \
    -DSPIRV_SKIP_EXECUTABLES=OFF

# every piece is here: install the set
rm -rf "$deps/vulkan" "$deps/glslang" "$deps/spirv-tools"
mkdir -p "$deps/vulkan/include" "$deps/glslang/bin" "$deps/spirv-tools/bin"
cp -r "$loader/vulkan-headers/include/." "$deps/vulkan/include/"
cp glslang-build/StandAlone/glslang "$deps/glslang/bin/glslangValidator"
cp spirv-tools-build/tools/spirv-val "$deps/spirv-tools/bin/"
echo "setup-shader-tools: glslang $("$deps/glslang/bin/glslangValidator" --version |
  sed -n 's/^Glslang Version: [0-9]*://p'), spirv-val and the Vulkan headers (VK_HEADER_VERSION" \
  "$(sed -n 's/^#define VK_HEADER_VERSION \([0-9]*\)$/\1/p' "$deps/vulkan/include/vulkan/vulkan_core.h"))" \
  "ready in $deps"
