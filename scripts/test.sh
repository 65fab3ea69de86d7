#!/usr/bin/env bash
# The README's test command (and CI's): set up, build with warnings as errors, run every test
# with the Vulkan validation layers on, then the op tests again under AddressSanitizer, then
# the Windows build (MinGW-w64) and its test subset under Wine.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
jobs=$(nproc)
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DVKFT_WERROR=ON >/dev/null
cmake --build build -j"$jobs"
(cd build && VKFT_VALIDATE=1 ctest --output-on-failure --timeout 900)
# lavapipe leaks 128 bytes at device destruction: leak checking stays off.
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DVKFT_WERROR=ON -DVKFT_ASAN=ON >/dev/null
cmake --build build-asan -j"$jobs" --target test_ops
(cd build-asan && VKFT_VALIDATE=1 ASAN_OPTIONS=detect_leaks=0 ctest --output-on-failure -R '^test_ops$')
# The Windows subset: vkft.exe cross-built with MinGW-w64 from the same source, run under Wine.
bash scripts/setup-windows.sh
cmake --preset windows >/dev/null
cmake --build --preset windows -j"$jobs"
bash tests/wine.sh build-win build/vkft
