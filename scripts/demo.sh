#!/usr/bin/env bash
# The README's first command: set up, build, and show vkft on this machine's Vulkan device.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)"
echo
echo "== vkft devices"
build/vkft devices
echo
echo "== vkft selftest (every op on the device against the C reference)"
build/vkft selftest
