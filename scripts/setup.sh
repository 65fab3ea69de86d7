#!/usr/bin/env bash
# Installs what vkft needs to build on Debian 12 (or newer); `setup.sh test` also what the tests
# need. Safe to run again: packages already present are skipped by apt.
set -euo pipefail
packages=(
  build-essential cmake pkg-config
  libvulkan-dev libvulkan-volk-dev glslang-tools # Vulkan headers, volk loader, GLSL -> SPIR-V
  libcjson-dev libpcre2-dev libutf8proc-dev      # JSON; Unicode regex and normalization (tokenizer)
  mesa-vulkan-drivers                            # lavapipe: runs Vulkan on the CPU
  vulkan-validationlayers                        # VK_LAYER_KHRONOS_validation for the tests
)
if [ "${1:-}" = test ]; then
  packages+=(clang libclang-rt-dev) # libFuzzer and the sanitizers' runtimes
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo=sudo
  echo "setup: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
fi

# Tests only: llama.cpp as prebuilt CPU binaries (node-llama-cpp, pinned), the reference client
# of tests/export.sh, installed under .deps/npm (about 85 MB; skipped when present).
setup_node_llama_cpp() {
  local npm_dir npm_arch
  npm_dir="$(cd "$(dirname "$0")/.." && pwd)/.deps/npm"
  case "$(uname -m)" in
    x86_64) npm_arch=x64 ;;
    aarch64 | arm64) npm_arch=arm64 ;;
    *) npm_arch="" ;;
  esac
  if command -v npm >/dev/null && [ -n "$npm_arch" ] && [ "$(uname -s)" = Linux ] &&
    [ ! -d "$npm_dir/node_modules/@node-llama-cpp/linux-$npm_arch" ]; then
    echo "setup: installing node-llama-cpp 3.21.1 in $npm_dir"
    mkdir -p "$npm_dir"
    [ -f "$npm_dir/package.json" ] || echo '{"private": true}' >"$npm_dir/package.json"
    (cd "$npm_dir" && npm install -E --no-audit --no-fund --ignore-scripts --omit=optional \
      node-llama-cpp@3.21.1 "@node-llama-cpp/linux-$npm_arch@3.21.1" >/dev/null)
  fi
}
if [ "${1:-}" = test ]; then
  setup_node_llama_cpp
fi
