#!/usr/bin/env bash
# Prepares `cmake --preset linux-portable`: cJSON, PCRE2, utf8proc and libyaml as static,
# position-independent libraries in the ignored folder .deps/linux64, built from the same Debian
# source packages as the Windows libraries (scripts/static-libs.sh). The binary then needs only
# glibc and, at run time, the Vulkan loader (which volk opens itself). Cached: a library already
# built is not built again (about a minute the first time on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
deps=$PWD/.deps
prefix=$deps/linux64
if [ -f "$prefix/lib/libpcre2-8.a" ] && [ -f "$prefix/lib/libcjson.a" ] &&
  [ -f "$prefix/lib/libutf8proc.a" ] && [ -f "$prefix/lib/libyaml.a" ]; then
  exit 0
fi
for p in dpkg-dev build-essential cmake; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="${missing:-} $p"
done
if [ -n "${missing:-}" ]; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo=sudo
  $sudo apt-get update -qq
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $missing
fi
# shellcheck source=scripts/static-libs.sh
. scripts/static-libs.sh
static_libs_sources
static_libs_build "$prefix" gcc ar
echo "setup-portable: static libraries ready in $prefix"
