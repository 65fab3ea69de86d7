#!/usr/bin/env bash
# Sourced by scripts/setup-windows.sh and scripts/setup-portable.sh: the libraries vkft links
# (cJSON, PCRE2, utf8proc, libyaml), built as static libraries from Debian's *source* packages
# of the running release (unpacked once into .deps/src), so the Windows and the portable Linux
# binaries carry the very same library code. Nothing is copied into the repository.
# The caller sets `deps` (the .deps folder).
#   static_libs_sources           fetches the sources (adds a deb-src entry when none exists)
#   static_libs_build PREFIX CC AR CMAKE_ARGS...
#                                 builds what PREFIX/lib lacks (CMAKE_ARGS: a toolchain file, or
#                                 flags), headers to PREFIX/include

static_libs_sources() {
  : "${deps:?static-libs.sh: set deps to the .deps folder}"
  local sudo="" codename
  [ "$(id -u)" -ne 0 ] && sudo=sudo
  codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
  if ! apt-get source -qq --print-uris "cjson/$codename" >/dev/null 2>&1; then
    echo "static-libs: adding a deb-src entry for $codename"
    printf 'Types: deb-src\nURIs: http://deb.debian.org/debian\nSuites: %s\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
      "$codename" | $sudo tee /etc/apt/sources.list.d/vkft-deb-src.sources >/dev/null
    $sudo apt-get update -qq
  fi
  mkdir -p "$deps/src"
  (
    cd "$deps/src" || exit 1
    # PACKAGE/CODENAME: the running release's version even when a newer suite is listed too
    ls -d cjson-*/ >/dev/null 2>&1 || apt-get source -qq "cjson/$codename"
    ls -d pcre2-*/ >/dev/null 2>&1 || apt-get source -qq "pcre2/$codename"
    ls -d utf8proc-*/ >/dev/null 2>&1 || apt-get source -qq "utf8proc/$codename"
    ls -d libyaml-*/ >/dev/null 2>&1 || apt-get source -qq "libyaml/$codename"
  )
}

static_libs_build() {
  local prefix=$1 cc=$2 ar=$3 work
  shift 3
  local src=$deps/src
  work=$prefix/build
  mkdir -p "$prefix/include/cjson" "$prefix/lib" "$work"
  local cjson_dir pcre2_dir utf8proc_dir yaml_dir
  cjson_dir=$(ls -d "$src"/cjson-*/ | head -1)
  pcre2_dir=$(ls -d "$src"/pcre2-*/ | head -1)
  utf8proc_dir=$(ls -d "$src"/utf8proc-*/ | head -1)
  yaml_dir=$(ls -d "$src"/libyaml-*/ | head -1)

  # cJSON and utf8proc are one C file each (utf8proc includes its own Unicode tables).
  if [ ! -f "$prefix/lib/libcjson.a" ]; then
    $cc -O2 -fPIC -c "$cjson_dir/cJSON.c" -o "$work/cJSON.o"
    $ar rcs "$prefix/lib/libcjson.a" "$work/cJSON.o"
    cp "$cjson_dir/cJSON.h" "$prefix/include/cjson/"
  fi
  if [ ! -f "$prefix/lib/libutf8proc.a" ]; then
    $cc -O2 -fPIC -DUTF8PROC_STATIC -c "$utf8proc_dir/utf8proc.c" -o "$work/utf8proc.o"
    $ar rcs "$prefix/lib/libutf8proc.a" "$work/utf8proc.o"
    cp "$utf8proc_dir/utf8proc.h" "$prefix/include/"
  fi
  # PCRE2, 8-bit library only, with JIT.
  if [ ! -f "$prefix/lib/libpcre2-8.a" ]; then
    cmake -S "$pcre2_dir" -B "$work/pcre2" "$@" -DCMAKE_BUILD_TYPE=Release \
      -DCMAKE_INSTALL_PREFIX="$prefix" -DBUILD_SHARED_LIBS=OFF -DCMAKE_POSITION_INDEPENDENT_CODE=ON \
      -DPCRE2_BUILD_PCRE2_8=ON -DPCRE2_BUILD_PCRE2_16=OFF -DPCRE2_BUILD_PCRE2_32=OFF \
      -DPCRE2_SUPPORT_JIT=ON -DPCRE2_BUILD_PCRE2GREP=OFF -DPCRE2_BUILD_TESTS=OFF >/dev/null
    cmake --build "$work/pcre2" -j"$(nproc)" >/dev/null
    cmake --install "$work/pcre2" >/dev/null
  fi
  # libyaml (its users define YAML_DECLARE_STATIC: CMakeLists.txt does).
  if [ ! -f "$prefix/lib/libyaml.a" ]; then
    cmake -S "$yaml_dir" -B "$work/yaml" "$@" -DCMAKE_BUILD_TYPE=Release \
      -DCMAKE_INSTALL_PREFIX="$prefix" -DBUILD_SHARED_LIBS=OFF -DCMAKE_POSITION_INDEPENDENT_CODE=ON \
      -DBUILD_TESTING=OFF -DINSTALL_CMAKE_DIR=lib/cmake/yaml >/dev/null
    cmake --build "$work/yaml" -j"$(nproc)" >/dev/null
    cmake --install "$work/yaml" >/dev/null
  fi
}
