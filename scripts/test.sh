#!/usr/bin/env bash
# The README's test command (and CI's): set up, build with warnings as errors, then
#   1. every test with the Vulkan validation layers on (a validation message fails a test);
#   2. every test again in a build with AddressSanitizer, UBSan and leak checks, with fault
#      injection compiled in, plus the fault sweep over every failure point of a training run;
#   3. each parser of user files fuzzed for a while with libFuzzer (crashes become regression
#      inputs under tests/corpus/, replayed by step 1 and 2);
#   4. the Windows build (MinGW-w64) and its test subset under Wine;
#   5. the portable Linux binary (static libraries, only glibc needed): its dependencies and
#      glibc floor checked, its selftest run; and scripts/gpu-check.sh on the CPU device.
# Each step prints the time it took. Measured from a clean clone on 2 cores (stop 25): 31.1 min
# (set-up 2.9, release build 0.9, step 1 7.0 with test_kernels 1.9, sanitizer build 1.2, step 2
# 11.0 with train.sh 4.2 and the fault sweep 3.7, fuzzing 2.1, Windows build + Wine 4.8, step 5
# 1.3); stop 24's run took 28.0 min, an earlier one 36.7 on a slower day. Step 2 runs its
# scripts with a 32 MB ASan quarantine (CMakeLists.txt says why); Wine keeps one X server and one
# wineserver for the run.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)
step() { echo; echo "== $* (at $(($(date +%s) - started)) s)"; }
bash scripts/setup.sh test
export VKFT_SHADER_TOOLS=skip # tried once above: later set-ups (setup-windows.sh) do not retry
jobs=$(nproc)

step "release build, warnings as errors"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DVKFT_WERROR=ON >/dev/null
cmake --build build -j"$jobs"
step "every test, validation layers on"
(cd build && ctest --output-on-failure --timeout 900 -j"$jobs")

step "sanitizer build (ASan + UBSan + leak checks) with fault injection"
# (-O1, as the AddressSanitizer documentation advises: the host-heavy tests run ~15% faster)
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_FLAGS_DEBUG="-g -O1" -DVKFT_WERROR=ON -DVKFT_ASAN=ON \
  -DVKFT_FAULTS=ON >/dev/null
cmake --build build-asan -j"$jobs"
step "every test under the sanitizers, and the fault sweep"
# (test_kernels forces every GPU matmul kernel over the matmul rows: shader code, which the
# sanitizers do not see, on the host paths test_ops covers; 84 s saved)
(cd build-asan && ctest --output-on-failure --timeout 1800 -j"$jobs" -E '^test_kernels$')

step "fuzzing each parser of user files for 20 s (two at a time on two cores)"
bash scripts/fuzz.sh 20

step "the Windows build (MinGW-w64) and its tests under Wine"
bash scripts/setup-windows.sh
cmake --preset windows >/dev/null
cmake --build --preset windows -j"$jobs"
bash tests/wine.sh build-win build/vkft

step "the portable Linux binary (cmake --preset linux-portable)"
bash scripts/setup-portable.sh
cmake --preset linux-portable >/dev/null
cmake --build --preset linux-portable -j"$jobs" --target vkft
bash scripts/check-portable.sh build-portable/vkft
step "scripts/gpu-check.sh on the CPU device (small shapes, no PyTorch)"
GPU_CHECK_QUICK=1 GPU_CHECK_SHAPES=tiny GPU_CHECK_ROWS=2 GPU_CHECK_SEQ=64 GPU_CHECK_STEPS=1 \
  GPU_CHECK_TORCH=0 GPU_CHECK_BUDGET_S=400 VKFT=build-portable/vkft bash scripts/gpu-check.sh build-portable/gpu-check
python3 -c 'import json, sys; r = json.load(open(sys.argv[1])); assert r["train"] and "passed" in r["selftest"], r' \
  build-portable/gpu-check/results.json
step "all passed"
