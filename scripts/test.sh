#!/usr/bin/env bash
# The README's test command (and CI's): set up, build with warnings as errors, then
#   1. every test with the Vulkan validation layers on (a validation message fails a test);
#   2. every test again in a build with AddressSanitizer, UBSan and leak checks, with fault
#      injection compiled in, plus the fault sweep over every failure point of a training run;
#   3. each parser of user files fuzzed for a while with libFuzzer (crashes become regression
#      inputs under tests/corpus/, replayed by step 1 and 2);
#   4. the Windows build (MinGW-w64) and its test subset under Wine.
# Each step prints the time it took; the whole takes about 20 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)
step() { echo; echo "== $* (at $(($(date +%s) - started)) s)"; }
bash scripts/setup.sh test
jobs=$(nproc)

step "release build, warnings as errors"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DVKFT_WERROR=ON >/dev/null
cmake --build build -j"$jobs"
step "every test, validation layers on"
(cd build && ctest --output-on-failure --timeout 900 -j"$jobs")

step "sanitizer build (ASan + UBSan + leak checks) with fault injection"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DVKFT_WERROR=ON -DVKFT_ASAN=ON -DVKFT_FAULTS=ON >/dev/null
cmake --build build-asan -j"$jobs"
step "every test under the sanitizers, and the fault sweep"
(cd build-asan && ctest --output-on-failure --timeout 1800 -j"$jobs")

step "fuzzing each parser of user files for 20 s"
bash scripts/fuzz.sh 20

step "the Windows build (MinGW-w64) and its tests under Wine"
bash scripts/setup-windows.sh
cmake --preset windows >/dev/null
cmake --build --preset windows -j"$jobs"
bash tests/wine.sh build-win build/vkft
step "all passed"
