#!/usr/bin/env bash
# The Windows test subset: the MinGW-built vkft.exe and test programs run under Wine (X display
# from Xvfb, which winevulkan needs) on the host's lavapipe, with the validation layer loaded
# by the host loader (Wine hides layers from the app; VKFT_VALIDATE=2 says so).
# Usage: tests/wine.sh BUILD_WIN_DIR. Prints "N passed, N failed".
set -u
dir=$(realpath "$1")
export WINEDEBUG=-all VKFT_VALIDATE=2 VK_INSTANCE_LAYERS=VK_LAYER_KHRONOS_validation
passed=0
failed=0
run() { # run "what" exe args...: under one X server per call
  local what=$1
  shift
  local out rc
  out=$(xvfb-run -a wine "$@" 2>&1)
  rc=$?
  if [ $rc -eq 0 ]; then passed=$((passed + 1)); echo "ok   $what"; else
    failed=$((failed + 1)); echo "FAIL $what (exit $rc)"; tail -20 <<<"$out"; fi
  last_output=$out
}

run "vkft.exe devices" "$dir/vkft.exe" devices
if grep -q llvmpipe <<<"$last_output"; then passed=$((passed + 1)); else
  failed=$((failed + 1)); echo "FAIL devices does not list llvmpipe"; fi
run "vkft.exe selftest" "$dir/vkft.exe" selftest
for t in "$dir"/tests/test_*.exe; do
  run "$(basename "$t")" "$t"
done
echo "wine: $passed passed, $failed failed"
test $failed -eq 0
