#!/usr/bin/env bash
# Crash safety: a training run killed with kill -9 at random moments (during steps, checkpoint
# writes and the final save), resumed with --resume auto each time, must end with an adapter and
# metrics.jsonl step lines byte-identical to an uninterrupted run (tokens_per_s and elapsed_s
# aside: they are wall-clock figures).
# Usage: tests/kill.sh path/to/vkft [KILLS (8)] [SEED (1)]; scripts/soak.sh runs it long.
set -u
vkft=$(realpath "$1")
kills=${2:-8}
RANDOM=${3:-1} # seeds bash's generator: the same kill times each run of the test
source "$(dirname "$0")/lib.sh"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$src"
common=(--config models/demo/zip_lora.json --skip-selftest --set train.epochs=1 --set train.max_steps=10
        --set train.micro_batch=2 --set data.max_len=128 --set data.eval_fraction=0.1 --set output.save_every=1
        --set output.keep_last=2)
strip() { sed 's/, "tokens_per_s": [^,}]*//; s/, "elapsed_s": [^,}]*//' "$1"; }

t0=$(date +%s%N)
run "$vkft" train "${common[@]}" --set output.dir="$work/ref"
ms=$((($(date +%s%N) - t0) / 1000000))
check "the uninterrupted run exits 0 ($(tail -1 <<<"$out"))" test $rc -eq 0

# kill -9 after a random delay within the uninterrupted run's duration, then resume. A run that
# finishes before its kill is compared with the uninterrupted one, and the next kill starts a
# new run in a new folder: every kill lands in a run that still has work to do.
round=1 done_early=0 landed=0
same_as_ref() { # DIR: the finished run's files equal the uninterrupted run's
  cmp -s "$work/ref/adapter_model.safetensors" "$1/adapter_model.safetensors" &&
    cmp -s "$work/ref/adapter_config.json" "$1/adapter_config.json" &&
    cmp -s <(strip "$work/ref/metrics.jsonl") <(strip "$1/metrics.jsonl") &&
    test -z "$(ls -d "$1"/*.tmp "$1"/.final.tmp 2>/dev/null)"
}
for k in $(seq 1 "$kills"); do
  # within the first 60% of a full run: a resumed run has less left to do
  delay_ms=$(((RANDOM * 32768 + RANDOM) % (ms * 6 / 10 > 60 ? ms * 6 / 10 - 50 : 10) + 50))
  "$vkft" train "${common[@]}" --set output.dir="$work/k$round" --resume auto >>"$work/k.log" 2>&1 &
  pid=$!
  sleep "$(awk -v m=$delay_ms 'BEGIN {printf "%.3f", m / 1000}')"
  kill -9 $pid 2>/dev/null # (a run that has just ended is a zombie: the kill succeeds, harmlessly)
  wait $pid 2>/dev/null
  rc=$?
  if [ $rc -eq 137 ]; then
    landed=$((landed + 1))
    echo "kill $k: after $delay_ms ms ($(ls "$work/k$round" 2>/dev/null | grep -c checkpoint) checkpoints on disk)"
  else
    check "kill $k: the run finished before the kill with exit 0 ($rc)" test $rc -eq 0
    check "... and its files are byte-identical to the uninterrupted run's (round $round)" same_as_ref "$work/k$round"
    done_early=$((done_early + 1))
    rm -rf "$work/k$round"
    round=$((round + 1))
  fi
done
run "$vkft" train "${common[@]}" --set output.dir="$work/k$round" --resume auto
check "the last resume exits 0 ($(tail -1 <<<"$out"))" test $rc -eq 0
check "the adapter is byte-identical to the uninterrupted run's" \
  cmp -s "$work/ref/adapter_model.safetensors" "$work/k$round/adapter_model.safetensors"
check "adapter_config.json is byte-identical" cmp -s "$work/ref/adapter_config.json" "$work/k$round/adapter_config.json"
check "metrics.jsonl step and eval lines are identical" \
  cmp -s <(strip "$work/ref/metrics.jsonl") <(strip "$work/k$round/metrics.jsonl")
check "no half-written folder is left" test -z "$(ls -d "$work"/k$round/*.tmp "$work"/k$round/.final.tmp 2>/dev/null)"
check "most kills land in a running job ($landed of $kills)" test $((landed * 2)) -ge "$kills"
echo "$kills kills: $landed landed mid-run, $done_early runs finished first ($round runs in all)," \
  "the run takes $ms ms uninterrupted"
finish
