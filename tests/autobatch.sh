#!/usr/bin/env bash
# train.micro_batch "auto", train.batch_size and `vkft plan`'s tokens/s, end to end on the
# bundled stories260K: under a device memory limit (VKFT_MEMORY_LIMIT_MB) "auto" takes the
# largest power of two within the plan's largest fit, and that fit is the dry run's boundary;
# the probe step leaves no trace (the adapter is byte-identical to a run given the number); a
# run killed with kill -9 and resumed under a larger limit keeps the checkpoint's micro-batch and
# ends with the uninterrupted run's adapter; batch_size derives grad_accum and conflicts are
# refused; with a fault-injection build (-DVKFT_FAULTS=ON) a device allocation failing in the
# probe makes it halve the micro-batch. About 25 s.
# Usage: tests/autobatch.sh path/to/vkft. Prints "N passed, N failed".
set -u
source "$(dirname "$0")/lib.sh"
begin_test "$1"
common=(--config models/demo/zip_lora.json --skip-selftest --set data.max_len=64 --set train.max_steps=4)
# the demo config without its explicit grad_accum (batch_size derives it)
python3 -c "import json; c = json.load(open('models/demo/zip_lora.json')); del c['train']['grad_accum']; json.dump(c, open('$work/cfg.json', 'w'))"
noga=(--config "$work/cfg.json" --skip-selftest --set data.max_len=64 --set train.max_steps=4)
same() { cmp -s "$1/adapter_model.safetensors" "$2/adapter_model.safetensors"; }

# ---- "auto" under a 12 MiB budget: the plan's largest fit F, the largest power of two <= F
run env VKFT_MEMORY_LIMIT_MB=12 "$vkft" train "${common[@]}" --set train.micro_batch=auto --set output.dir="$work/auto"
check "auto under 12 MiB exits 0 ($(tail -1 <<<"$out"))" test $rc -eq 0
line=$(grep '^micro_batch auto: ' <<<"$out")
chosen=$(sed -n 's/^micro_batch auto: \([0-9]*\) (plan: \([0-9]*\) fit in 12 MiB free.*probe step ok.*/\1/p' <<<"$line")
fit=$(sed -n 's/^micro_batch auto: [0-9]* (plan: \([0-9]*\) fit in .*/\1/p' <<<"$line")
check "the header says what was chosen and why ($line)" test -n "$chosen" -a -n "$fit"
p2=1
while [ $((p2 * 2)) -le "${fit:-0}" ]; do p2=$((p2 * 2)); done
check "the choice $chosen is the largest power of two <= the fit $fit" test "${chosen:-x}" = "$p2"
check "the run trains micro-batches of $chosen rows" grep -q "plan: 4 optimizer steps, $chosen x 64 tokens" <<<"$out"
# the fit is the dry run's boundary under the same budget: F fits, F + 1 does not
run env VKFT_MEMORY_LIMIT_MB=12 "$vkft" train "${common[@]}" --dry-run --set train.micro_batch="$fit" --set output.dir="$work/dry"
check "a dry run at micro_batch $fit fits 12 MiB" grep -q "dry run: the plan fits" <<<"$out"
run env VKFT_MEMORY_LIMIT_MB=12 "$vkft" train "${common[@]}" --dry-run --set train.micro_batch=$((fit + 1)) --set output.dir="$work/dry"
check "a dry run at micro_batch $((fit + 1)) does not" grep -q "dry run: the plan does NOT fit" <<<"$out"
# a batch_size whose micro-batch must be at least 32 (grad_accum at most 64) that the budget cannot
# hold: refused before any probe, saying what to lower
run env VKFT_MEMORY_LIMIT_MB=12 "$vkft" train "${noga[@]}" --set train.batch_size=2048 \
  --set train.micro_batch=auto --set output.dir="$work/least"
check "batch_size 2048 in 12 MiB: $EXIT_MEMORY ($rc)" test $rc -eq $EXIT_MEMORY
check "... in one line: needs a micro-batch of at least 32" \
  grep -q 'train.batch_size 2048 needs a micro-batch of at least 32 (grad_accum is at most 64)' <<<"$out"
check "... and no probe ran" test "$(grep -c 'probe step' <<<"$out")" -eq 0
# the probe leaves no trace: the same adapter as a run given the number
run "$vkft" train "${common[@]}" --set train.micro_batch="$chosen" --set output.dir="$work/fixed"
check "the run given micro_batch $chosen exits 0" test $rc -eq 0
check "auto's adapter is byte-identical to it" same "$work/auto" "$work/fixed"

# ---- kill -9 after the first checkpoint, resume under a larger budget (a fresh choice differs)
VKFT_MEMORY_LIMIT_MB=12 "$vkft" train "${common[@]}" --set train.micro_batch=auto --set output.save_every=1 \
  --set output.dir="$work/k" >"$work/k.log" 2>&1 &
pid=$!
for _ in $(seq 1 1000); do [ -d "$work/k/checkpoint-1" ] && break; sleep 0.02; done
kill -9 $pid 2>/dev/null && killed=yes || killed="no (it had finished)"
wait $pid 2>/dev/null
echo "killed after checkpoint-1: $killed"
recorded=$(python3 -c "import json; print(json.load(open('$work/k/checkpoint-1/trainer_state.json'))['config']['train']['micro_batch'])")
check "the checkpoint's configuration records the number chosen ($recorded)" test "$recorded" = "$chosen"
run env VKFT_MEMORY_LIMIT_MB=24 "$vkft" train "${common[@]}" --set train.micro_batch=auto --set output.save_every=1 \
  --set output.dir="$work/k" --resume auto
check "the resume under 24 MiB exits 0 ($(tail -1 <<<"$out"))" test $rc -eq 0
check "it takes the checkpoint's micro-batch $chosen, not probed again" \
  grep -q "^micro_batch auto: $chosen (.*checkpoint-[0-9]*'s; not probed again" <<<"$out"
check "the resumed run's adapter is byte-identical to the uninterrupted run's" same "$work/k" "$work/auto"
run env VKFT_MEMORY_LIMIT_MB=24 "$vkft" train "${common[@]}" --set train.micro_batch=auto --set train.max_steps=1 --set output.dir="$work/more"
more=$(sed -n 's/^micro_batch auto: \([0-9]*\) .*/\1/p' <<<"$out")
check "a fresh run under 24 MiB chooses more (${more:-none}): the resume did not probe" test "${more:-0}" -gt "$chosen"

# ---- train.batch_size: grad_accum derived, the effective batch said; conflicts refused
run "$vkft" train "${noga[@]}" --set train.micro_batch=2 --set train.batch_size=5 --set train.max_steps=1 --set output.dir="$work/bs"
check "batch_size 5 with micro_batch 2 exits 0" test $rc -eq 0
check "it says 5 is not a multiple: grad_accum 3, an effective 6" \
  grep -q "train.batch_size 5 is not a multiple of micro_batch 2 x 1 rank: grad_accum 3, an effective batch of 6" <<<"$out"
check "steps of 3 micro-batches" grep -q "2 x 64 tokens per micro-batch, 3 micro-batches per step" <<<"$out"
run "$vkft" train "${common[@]}" --set train.micro_batch=2 --set train.batch_size=8 --set output.dir="$work/bad"
check "batch_size 8 against the config's grad_accum 1: exit 1 ($rc)" test $rc -eq $EXIT_INPUT
check "one line naming both keys" test "$(grep -c 'train.batch_size. 8 and .train.grad_accum. 1 disagree' <<<"$out")" -eq 1 -a "$(wc -l <<<"$out")" -le 3
run "$vkft" train "${common[@]}" --set train.micro_batch=auto --set train.batch_size=8 --set output.dir="$work/bad"
check "auto with both batch_size and grad_accum: exit 1 ($rc)" test $rc -eq $EXIT_INPUT
check "the line names both" grep -q '"train.batch_size" and "train.grad_accum" are both given' <<<"$out"
check "nothing was written" test ! -e "$work/bad/adapter_model.safetensors"

# ---- fault-injection builds: the probe's device allocation fails, the micro-batch halves
if VKFT_FAULT_TRACE="$work/trace" "$vkft" plan "${common[@]:0:2}" --memory 64 --no-measure >/dev/null 2>&1 &&
  [ -s "$work/trace" ]; then
  # batch_size 4 caps "auto" at 4; the first device allocation (no selftest) is the probe's
  run env VKFT_FAULT=devalloc:1 "$vkft" train "${noga[@]}" --set train.micro_batch=auto --set train.batch_size=4 --set output.dir="$work/f"
  check "the probe's failed allocation: exit 0 ($(tail -1 <<<"$out"))" test $rc -eq 0
  check "it says the probe at 4 ran out of device memory and tries 2" \
    grep -q "^micro_batch auto: the probe step at 4 ran out of device memory (.*): trying 2" <<<"$out"
  check "then micro-batch 2 is probed and chosen" grep -q "^micro_batch auto: 2 (.*probe step ok.*after halving)" <<<"$out"
  check "grad_accum 2 keeps the batch of 4" grep -q "train.batch_size 4: grad_accum 2" <<<"$out"
  run "$vkft" train "${common[@]}" --set train.micro_batch=2 --set train.grad_accum=2 --set output.dir="$work/f2"
  check "its adapter is byte-identical to micro_batch 2 x grad_accum 2's" same "$work/f" "$work/f2"
else
  echo "SKIP the probe's device allocation failure: not a -DVKFT_FAULTS=ON build"
fi

# ---- vkft plan: tokens/s in the table and in --json
t0=$(date +%s%N)
run "$vkft" plan --config models/demo/zip_lora.json --json
ms=$((($(date +%s%N) - t0) / 1000000))
check "plan --json exits 0" test $rc -eq 0
verdicts=$(python3 - <<EOF
import json
rows = [json.loads(l) for l in '''$out'''.splitlines() if l.startswith('{')]
def say(ok, what): print(("PASS " if ok else "FAIL ") + what)
fit = [r for r in rows if r["micro_batch"] > 0]
say(len(rows) == 8 and len(fit) > 0, f"{len(rows)} rows, {len(fit)} that fit")
say(all(isinstance(r["tokens_per_s"], (int, float)) and r["tokens_per_s"] > 0 for r in fit), "every row that fits has tokens/s")
by = {(r["max_len"], r["grad_checkpointing"], r["base"]): r for r in rows}
a, b = by.get((256, False, "as stored")), by.get((256, True, "as stored"))
say(a and b and a["micro_batch"] == b["micro_batch"] and b["tokens_per_s"] < a["tokens_per_s"],
    "checkpointing (a second forward) is estimated slower at the same shape")
EOF
)
while read -r verdict what; do
  [ -n "$verdict" ] && check "$what" test "$verdict" = PASS
done <<<"$verdicts"
echo "plan with the measured steps: $ms ms"
run "$vkft" plan --config models/demo/zip_lora.json --no-measure
check "plan --no-measure says so and prints the column" \
  bash -c "grep -q 'tokens/s not estimated: --no-measure' <<<'$out' && grep -q 'micro_batch *memory *tokens/s' <<<'$out'"
run "$vkft" plan --config models/demo/zip_lora.json --memory 512 --json
check "plan --memory (another card): no tokens/s" test "$(grep -c '"tokens_per_s": null' <<<"$out")" -eq 8
finish
