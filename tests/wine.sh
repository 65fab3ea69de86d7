#!/usr/bin/env bash
# The Windows test subset: the MinGW-built vkft.exe and test programs run under Wine (X display
# from one Xvfb, which winevulkan needs) on the host's lavapipe, with the validation layer loaded
# by the host loader (Wine hides layers from the app; VKFT_VALIDATE=2 says so).
# Usage: tests/wine.sh BUILD_WIN_DIR [LINUX_VKFT]: with the Linux binary, a short LoRA run on
# stories260K runs on both and their losses and adapters must be identical.
# Prints "N passed, N failed".
set -u
dir=$(realpath "$1")
src=$(cd "$(dirname "$0")/.." && pwd)
export WINEDLLOVERRIDES=winedbg.exe=d WINEDEBUG=-all VKFT_VALIDATE=2 VK_INSTANCE_LAYERS=VK_LAYER_KHRONOS_validation
passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok   $1"; }
fail() { failed=$((failed + 1)); echo "FAIL $1"; }

# One X server and one wineserver for the whole run: a server started and stopped around every
# program (xvfb-run, wineserver's own exit after each) was a race of its own — CI once saw a test
# program end with status 1 and no output at all.
xlog=$(mktemp)
exec {xfd}< <(Xvfb -displayfd 1 -nolisten tcp -screen 0 640x480x24 2>"$xlog")
xpid=$!
read -r -t 30 -u "$xfd" display || { echo "FAIL Xvfb did not start: $(tail -3 "$xlog")"; exit 1; }
export DISPLAY=:$display
wineserver -p </dev/null >/dev/null 2>&1
out=$(mktemp)
stop_servers() { wineserver -k 2>/dev/null; kill "$xpid" 2>/dev/null; rm -f "$xlog" "$out"; }
trap stop_servers EXIT

run() { # run "what" exe args...: under Wine, from folder $cwd
  local what=$1
  shift
  # (into a file, not $(…): Wine's services outlive the program and would hold a pipe open)
  (cd "$cwd" && wine "$@") >"$out" 2>&1
  local rc=$?
  last_output=$(cat "$out")
  if [ $rc -eq 0 ]; then ok "$what"; return; fi
  # A status without a word: every program here prints its result and Wine prints a crash, so
  # the program did not run its course (CI once saw it, never reproduced: a start-up race of
  # Wine's servers is the suspect). It runs once more with Wine's own error channel on, which
  # WINEDEBUG=-all silences, and that run decides.
  local again=0
  if [ -z "$last_output" ]; then
    echo "     $what: exit $rc and no output at all; again with WINEDEBUG=err+all:"
    (cd "$cwd" && WINEDEBUG=err+all wine "$@") >"$out" 2>&1
    rc=$?
    last_output=$(cat "$out")
    again=1
    tail -20 "$out" | sed 's/^/     /'
    if [ $rc -eq 0 ]; then ok "$what (when run again)"; return; fi
  fi
  fail "$what (exit $rc)"
  [ $again = 1 ] && return
  tail -20 <<<"$last_output"
  # again with Wine's own error channel: why Wine itself failed (diagnostics; the failure stands)
  echo "     again with WINEDEBUG=err+all (diagnostics only; the failure above stands):"
  (cd "$cwd" && WINEDEBUG=err+all wine "$@") >"$out" 2>&1
  tail -20 "$out" | sed 's/^/     /'
}

cwd=$dir # the test programs write their temporary files here, as under ctest
run "vkft.exe devices" "$dir/vkft.exe" devices
if grep -q llvmpipe <<<"$last_output"; then ok "devices lists llvmpipe"; else fail "devices does not list llvmpipe"; fi
run "vkft.exe selftest" "$dir/vkft.exe" selftest
for t in "$dir"/tests/test_*.exe; do
  run "$(basename "$t")" "$t"
done

if [ $# -ge 2 ]; then
  # Same config on both builds, same device: the host math (schedules, bias corrections, RNG) is
  # vkft's own code, so the runs must agree to the last bit.
  linux=$(realpath "$2")
  work=$(mktemp -d)
  args=(train --config models/demo/zip_lora.json --skip-selftest --set train.max_steps=3
        --set train.micro_batch=2 --set data.max_len=128)
  (cd "$src" && VKFT_VALIDATE=1 "$linux" "${args[@]}" --set output.dir="$work/linux" >"$work/linux.log" 2>&1)
  cwd=$src
  run "vkft.exe train (LoRA, stories260K, 3 steps)" "$dir/vkft.exe" "${args[@]}" --set output.dir="Z:$work/win"
  l=$(grep -o '"loss": [^,]*' "$work/linux/metrics.jsonl" 2>/dev/null | tr '\n' ' ')
  w=$(grep -o '"loss": [^,]*' "$work/win/metrics.jsonl" 2>/dev/null | tr '\n' ' ')
  if [ -n "$l" ] && [ "$l" = "$w" ]; then ok "Windows and Linux losses identical: $w"; else
    fail "losses differ: linux [$l] windows [$w]"; fi
  if cmp -s "$work/linux/adapter_model.safetensors" "$work/win/adapter_model.safetensors"; then
    ok "Windows and Linux adapters bit-identical"; else fail "adapters differ"; fi
  rm -rf "$work"
fi
echo "wine: $passed passed, $failed failed"
test $failed -eq 0
