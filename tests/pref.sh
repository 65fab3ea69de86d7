#!/usr/bin/env bash
# Preference training end to end on the bundled stories260K and its 48 Zip preference pairs
# (models/demo/zip_pref.jsonl): DPO with LoRA starts at loss log 2 (the adapter is zero, the
# policy is its reference) and its reward margin grows; an interrupted and resumed DPO run ends
# bit-identical to the uninterrupted one, with the in-step reference (LoRA) and with reference
# log-probs computed before training (full fine-tuning: computed again at the resume, from the
# base); ORPO and QLoRA + DPO run; every shared preference format loads; bad settings are one
# line and exit 1. Usage: tests/pref.sh path/to/vkft. Prints "N passed, N failed".
set -u
source "$(dirname "$0")/lib.sh"
begin_test "$1"
common=(--config models/demo/zip_lora.json --skip-selftest --set objective=dpo
        --set data.train=models/demo/zip_pref.jsonl --set data.max_len=128 --set train.micro_batch=4
        --set train.lr=2e-3 --set data.eval_fraction=0.1)
metric() { # metric FILE STEP KEY: the value of KEY on the train line of STEP
  grep "\"step\": $2, \"loss\"" "$1" | grep -o "\"$3\": [-0-9.e+]*" | cut -d' ' -f2
}

# DPO with LoRA: the reference is the base with the adapter off
run "$vkft" train "${common[@]}" --set train.max_steps=6 --set output.dir="$work/a"
check "DPO (LoRA) exits 0 ($(tail -1 <<<"$out"))" test $rc -eq 0
check "DPO says where its reference comes from" grep -q "DPO reference: the base with the adapter off" <<<"$out"
first=$(metric "$work/a/metrics.jsonl" 1 loss)
check "step 1's loss is log 2 ($first)" awk -v l="$first" 'BEGIN {d = l - log(2); exit !(d < 1e-6 && d > -1e-6)}'
for key in rewards/chosen rewards/rejected rewards/accuracies rewards/margins logps/chosen logps/rejected; do
  check "metrics line has $key" grep -q "\"$key\": " <(head -1 "$work/a/metrics.jsonl")
  check "eval line has eval_$key" grep -q "\"eval_$key\": " <(grep eval_loss "$work/a/metrics.jsonl")
done
m1=$(metric "$work/a/metrics.jsonl" 1 rewards/margins)
m6=$(metric "$work/a/metrics.jsonl" 6 rewards/margins)
check "the reward margin grows ($m1 -> $m6)" awk -v a="$m1" -v b="$m6" 'BEGIN {exit !(a == 0 && b > 0.5)}'
check "a PEFT adapter is written" test -s "$work/a/adapter_model.safetensors"

# interrupted after 3 steps and resumed: the same adapter as the uninterrupted run
run "$vkft" train "${common[@]}" --set train.max_steps=6 --set output.dir="$work/b" --stop-after 3
check "interrupted DPO run exits $EXIT_INTERRUPTED ($rc)" test $rc -eq $EXIT_INTERRUPTED
run "$vkft" train "${common[@]}" --set train.max_steps=6 --set output.dir="$work/b" --resume auto
check "resumed DPO run exits 0 ($(tail -1 <<<"$out"))" test $rc -eq 0
check "resumed DPO run: the same adapter, bit for bit" cmp -s "$work/a/adapter_model.safetensors" "$work/b/adapter_model.safetensors"

# full fine-tuning: reference log-probs before training (and again at the resume, from the base)
full=(--set method=full --set train.lr=5e-4 --set train.max_steps=4)
run "$vkft" train "${common[@]}" "${full[@]}" --set output.dir="$work/f1"
check "DPO (full) exits 0 ($(tail -1 <<<"$out"))" test $rc -eq 0
check "DPO (full) computes the reference first" grep -q "DPO reference: log-probs of 48 pairs computed before training (full fine-tuning)" <<<"$out"
run "$vkft" train "${common[@]}" "${full[@]}" --set output.dir="$work/f2" --stop-after 2
run "$vkft" train "${common[@]}" "${full[@]}" --set output.dir="$work/f2" --resume auto
check "resumed full DPO run exits 0 ($(tail -1 <<<"$out"))" test $rc -eq 0
check "resumed full DPO run: the same model, bit for bit" cmp -s "$work/f1/model.safetensors" "$work/f2/model.safetensors"

# ORPO (no reference) and QLoRA + DPO
run "$vkft" train "${common[@]}" --set objective=orpo --set train.max_steps=3 --set output.dir="$work/o"
check "ORPO exits 0 ($(tail -1 <<<"$out"))" test $rc -eq 0
for key in nll_loss log_odds_ratio log_odds_chosen rewards/margins; do
  check "ORPO metrics line has $key" grep -q "\"$key\": " <(head -1 "$work/o/metrics.jsonl")
done
check "ORPO has no reference pass" bash -c "! grep -q 'DPO reference' <<<\"\$1\"" _ "$out"
run "$vkft" train "${common[@]}" --set quant.base=nf4 --set train.max_steps=2 --set output.dir="$work/q"
check "QLoRA + DPO exits 0 ($(tail -1 <<<"$out"))" test $rc -eq 0
check "QLoRA + DPO: step 1's loss is log 2" awk -v l="$(metric "$work/q/metrics.jsonl" 1 loss)" 'BEGIN {d = l - log(2); exit !(d < 1e-6 && d > -1e-6)}'

# every shared format loads for training (dry run: the data and the plan, no device)
if need_data "preference formats"; then
  for f in "$test_data"/pref/pref_formats/*.json*; do
    [ "$(basename "$f")" = dataset_info.json ] && continue
    run "$vkft" train "${common[@]}" --set data.train="$f" --set data.eval_fraction=0 --dry-run
    check "$(basename "$f"): a DPO dry run exits 0 ($(grep '^data' <<<"$out" | head -1))" \
      test $rc -eq 0 -a "$(grep -c 'preference pairs (0 skipped' <<<"$out")" -eq 1
  done
fi

# bad settings: one line, exit 1
bad() { # bad WHAT EXPECTED-TEXT ARGS...
  local what=$1 want=$2
  shift 2
  run "$vkft" train "${common[@]}" --set output.dir="$work/bad" --dry-run "$@"
  check "$what: exit 1 ($out)" test $rc -eq $EXIT_INPUT
  check "$what: the message names it" grep -q "$want" <<<"$out"
}
bad "objective unknown" '"objective"' --set objective=ppo
bad "loss_type unknown" '"pref.loss_type"' --set pref.loss_type=kto
bad "label_smoothing without robust" 'label_smoothing' --set pref.label_smoothing=0.1
bad "SFT data for DPO" 'zip_stories.jsonl' --set data.train=models/demo/zip_stories.jsonl
bad "TRL's name beta" 'pref.beta' --set beta=0.2

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
