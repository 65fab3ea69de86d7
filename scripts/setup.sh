#!/usr/bin/env bash
# Installs what vkft needs to build on Debian 12 (or newer); `setup.sh test` also what the tests
# need. Safe to run again: packages already present are skipped by apt.
set -euo pipefail
packages=(
  build-essential cmake pkg-config
  libvulkan-dev libvulkan-volk-dev glslang-tools # Vulkan headers, volk loader, GLSL -> SPIR-V
  libcjson-dev libpcre2-dev libutf8proc-dev      # JSON; Unicode regex and normalization (tokenizer)
  libyaml-dev                                    # YAML training configs
  mesa-vulkan-drivers                            # lavapipe: runs Vulkan on the CPU
  vulkan-validationlayers                        # VK_LAYER_KHRONOS_validation for the tests
)
if [ "${1:-}" = test ]; then
  packages+=(clang libclang-rt-dev) # libFuzzer and the sanitizers' runtimes
  packages+=(chromium)              # renders report.html headless (tests/report.sh)
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
