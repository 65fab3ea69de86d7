#!/usr/bin/env bash
# Fault injection, SQLite-style, over every place a short training run can fail: with a build of
# -DVKFT_FAULTS=ON (and AddressSanitizer/UBSan), a traced run lists each host-allocation site,
# each file write, fsync and rename (by file), each device allocation and queue submission; then
# one run per entry makes that call fail (VKFT_FAULT=KIND:N) — or, for writes, renames and
# fsyncs of checkpoints and the final save, kills the process right there (KIND:N:kill). Every
# run must end with one clear line and a non-zero exit (or exit 0 with the same adapter when a
# retry absorbed the fault) — never a crash, a sanitizer report or a hang — and the newest
# checkpoint it left must load and resume to the uninterrupted run's exact adapter.
# Usage: tests/faults.sh path/to/vkft-with-faults [JOBS] [EVERY]. Prints "N passed, N failed".
# EVERY > 1 injects every EVERY-th fault of the plan only (each kind keeps its share): the test
# command's ctest uses 2 to stay in its time budget; scripts/soak.sh --faults runs all of them.
set -u
vkft=$(realpath "$1")
jobs=${2:-2}
every=${3:-1}
source "$(dirname "$0")/lib.sh"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$src"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0} UBSAN_OPTIONS=print_stacktrace=1
common=(--config models/demo/zip_lora.json --skip-selftest --set train.epochs=1 --set train.max_steps=2
        --set train.micro_batch=2 --set data.max_len=128 --set data.eval_fraction=0.1 --set output.save_every=1
        --set output.save_retries=1 --set output.save_retry_wait=0)

run env VKFT_FAULT_TRACE="$work/trace" "$vkft" train "${common[@]}" --set output.dir="$work/ref"
check "the traced run exits 0 ($(tail -1 <<<"$out"))" test $rc -eq 0
[ $rc -eq 0 ] || { finish; exit; }

# The plan: every allocation site (first call), the first call per kind and file for the others
# (checkpoint-N files by their own N), and every device allocation and submission.
{
  awk '$1 == "alloc" {print "alloc@" $3}' "$work/trace"
  awk '$1 == "devalloc" || $1 == "submit" {print $1 ":" $2}' "$work/trace"
  awk '$1 == "write" || $1 == "fsync" || $1 == "rename" {k = $1 " " $4; if (!(k in seen)) {seen[k] = 1; print $1 ":" $2}}' "$work/trace"
  awk '($1 == "write" || $1 == "rename" || $1 == "fsync") && $4 ~ /checkpoint|final|adapter/ {k = $1 " " $4; if (!(k in seen)) {seen[k] = 1; print $1 ":" $2 ":kill"}}' "$work/trace"
} >"$work/plan.all"
awk -v every="$every" '(NR - 1) % every == 0' "$work/plan.all" >"$work/plan"
echo "$(wc -l <"$work/plan") faults to inject of $(wc -l <"$work/plan.all") (every $every;" \
  "$(grep -c '^alloc' "$work/plan") of $(grep -c '^alloc' "$work/plan.all") allocation sites)"

# one FAULT: runs with it, classifies the outcome, resumes from what it left; prints one line
one() {
  local fault=$1 dir="$work/run-$(tr -c 'a-zA-Z0-9\n' - <<<"$1")" rc
  # (a subshell: the shell's own "Killed" report of :kill runs goes nowhere)
  (VKFT_FAULT=$fault exec timeout 120 "$vkft" train "${common[@]}" --set output.dir="$dir" >"$dir.out" 2>"$dir.err") 2>/dev/null
  rc=$?
  local verdict=ok why=""
  if [ $rc -eq 124 ]; then
    verdict=FAIL why="hang (killed after 120 s)"
  elif grep -q "Sanitizer\|runtime error:" "$dir.err"; then
    verdict=FAIL why="sanitizer: $(grep -m1 'Sanitizer\|runtime error:' "$dir.err")"
  elif [[ $fault == *:kill ]]; then
    [ $rc -eq 137 ] || { verdict=FAIL why="expected to be killed, exit $rc"; }
  elif [ $rc -ge 128 ]; then
    verdict=FAIL why="crashed (exit $rc)"
  elif [ $rc -eq 0 ]; then
    cmp -s "$work/ref/adapter_model.safetensors" "$dir/adapter_model.safetensors" ||
      { verdict=FAIL why="exit 0 but a different adapter"; }
  elif [ "$(grep -c '^vkft: ' "$dir.err")" -ne 1 ]; then
    verdict=FAIL why="not one error line: $(head -3 "$dir.err" | tr '\n' '|')"
  fi
  if [ $verdict = ok ] && [ $rc -ne 0 ] && ls -d "$dir"/checkpoint-* >/dev/null 2>&1; then
    # what the failed run left must resume to the uninterrupted result
    "$vkft" train "${common[@]}" --set output.dir="$dir" --resume auto >"$dir.resume" 2>&1
    local rrc=$?
    if [ $rrc -ne 0 ]; then
      verdict=FAIL why="resume after it exits $rrc: $(tail -1 "$dir.resume")"
    elif ! cmp -s "$work/ref/adapter_model.safetensors" "$dir/adapter_model.safetensors"; then
      verdict=FAIL why="resume after it gives a different adapter"
    else
      why="resumed"
    fi
  fi
  echo "$verdict $fault exit $rc $why$([ $rc -ne 0 ] && [ $rc -lt 128 ] && echo ": $(tail -1 "$dir.err" | cut -c1-150)")"
  rm -rf "$dir" "$dir.out" "$dir.err" "$dir.resume"
}
export -f one
export vkft work
export common_str="${common[*]}"

t0=$(date +%s)
# xargs runs `one` in parallel; common is rebuilt from the exported string (no spaces in values)
xargs -P "$jobs" -I{} bash -c 'common=($common_str); one {}' <"$work/plan" >"$work/results"
sort -t' ' -k2 "$work/results" | grep -v '^ok' || true
oks=$(grep -c '^ok' "$work/results")
total=$(wc -l <"$work/plan")
check "every injected fault ends cleanly ($oks of $total)" test "$oks" -eq "$total"
check "some faults were absorbed by a retry or resumed" test -n "$(grep -e ' exit 0' -e resumed "$work/results")"
echo "codes: $(awk '{print $4}' "$work/results" | sort | uniq -c | tr '\n' ' ')"
echo "fault sweep: $total runs in $(($(date +%s) - t0)) s"
finish
