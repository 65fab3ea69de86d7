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
  packages+=(openmpi-bin libopenmpi-dev) # data-parallel training over MPI (tests/mpi.sh)
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

# glslang 15, spirv-val and the Vulkan 1.4 headers from Debian 13's sources into .deps/ (the
# cooperative-matrix kernels need them; about 2 minutes on 2 cores the first time). Optional: on
# any failure, or past 10 minutes, the build goes on without those kernels. VKFT_SHADER_TOOLS=skip:
# not tried (scripts/test.sh sets it after its first set-up, so a failure is not retried).
if [ "${VKFT_SHADER_TOOLS:-}" != skip ]; then
  timeout 600 bash "$(dirname "${BASH_SOURCE[0]}")/setup-shader-tools.sh" ||
    echo "setup: no glslang 15 from Debian 13 (see the line above): vkft builds without its" \
      "cooperative-matrix kernels" >&2
fi

# Tests only: the npm package node-llama-cpp, pinned, under $VKFT_NPM_DIR (default .deps/npm;
# about 85 MB, nothing downloaded when present; --ignore-scripts: none of its install code runs).
# Two uses: its prebuilt CPU binaries of llama.cpp are the reference client of tests/export.sh;
# its llama/gitRelease.bundle holds llama.cpp's source, whose models/templates (the chat
# templates test_chat_template_real renders, tests/data/chat_templates.md) is checked out into
# $VKFT_LLAMA_CPP_DIR (default .deps/llama.cpp). Without npm both tests skip.
NODE_LLAMA_CPP_VERSION=3.21.1
LLAMA_CPP_PATHS=(models/templates) # what the tests read (sparse checkout; top-level files come too)
setup_node_llama_cpp() {
  local root npm_dir npm_arch pkg have binaries=()
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  npm_dir=${VKFT_NPM_DIR:-$root/.deps/npm}
  case "$(uname -m)" in
    x86_64) npm_arch=x64 ;;
    aarch64 | arm64) npm_arch=arm64 ;;
    *) npm_arch="" ;;
  esac
  if [ -n "$npm_arch" ] && [ "$(uname -s)" = Linux ]; then
    binaries=("@node-llama-cpp/linux-$npm_arch")
  fi
  pkg=$npm_dir/node_modules/node-llama-cpp
  have=$(sed -n 's/^  "version": "\(.*\)",$/\1/p' "$pkg/package.json" 2>/dev/null || true)
  if [ "$have" != "$NODE_LLAMA_CPP_VERSION" ] ||
    { [ ${#binaries[@]} -gt 0 ] && [ ! -d "$npm_dir/node_modules/${binaries[0]}" ]; }; then
    if ! command -v npm >/dev/null; then
      echo "setup: no npm: tests/export.sh and test_chat_template_real will skip" >&2
      return 0
    fi
    echo "setup: installing node-llama-cpp $NODE_LLAMA_CPP_VERSION in $npm_dir"
    mkdir -p "$npm_dir"
    [ -f "$npm_dir/package.json" ] || echo '{"private": true}' >"$npm_dir/package.json"
    (cd "$npm_dir" && npm install -E --no-audit --no-fund --ignore-scripts --omit=optional \
      "node-llama-cpp@$NODE_LLAMA_CPP_VERSION" \
      "${binaries[@]/%/@$NODE_LLAMA_CPP_VERSION}" >/dev/null)
  fi
  checkout_llama_cpp "$pkg/llama/gitRelease.bundle" "${VKFT_LLAMA_CPP_DIR:-$root/.deps/llama.cpp}"
}

# Checks LLAMA_CPP_PATHS of the bundle's commit out into dir (a sparse checkout; a git clone of
# the bundle, so a newer bundle is one fetch). Restores what was changed or deleted there.
checkout_llama_cpp() {
  local bundle=$1 dir=$2 head paths want_paths
  head=$(git bundle list-heads "$bundle" HEAD | cut -d' ' -f1)
  if [ -z "$head" ]; then
    echo "setup: $bundle has no HEAD commit" >&2
    return 1
  fi
  if [ ! -d "$dir/.git" ]; then
    if [ -n "$(ls -A "$dir" 2>/dev/null)" ]; then
      echo "setup: $dir is not empty and not a git checkout; move it away" >&2
      return 1
    fi
    git clone -q --no-checkout "$bundle" "$dir"
  fi
  paths=$(git -C "$dir" sparse-checkout list 2>/dev/null || true)
  want_paths=$(printf '%s\n' "${LLAMA_CPP_PATHS[@]}")
  if [ "$(git -C "$dir" rev-parse -q --verify HEAD)" = "$head" ] && [ "$paths" = "$want_paths" ] &&
    [ -z "$(git -C "$dir" status --porcelain)" ] && [ -d "$dir/${LLAMA_CPP_PATHS[0]}" ]; then
    return 0
  fi
  echo "setup: checking out llama.cpp ${head:0:12} (${LLAMA_CPP_PATHS[*]}) into $dir"
  if ! git -C "$dir" cat-file -e "$head^{commit}" 2>/dev/null; then
    git -C "$dir" fetch -q "$bundle" HEAD
  fi
  git -C "$dir" sparse-checkout set "${LLAMA_CPP_PATHS[@]}"
  git -C "$dir" -c advice.detachedHead=false checkout -q -f --detach "$head"
}

if [ "${1:-}" = test ]; then
  setup_node_llama_cpp
fi
