#!/usr/bin/env bash
# What a hostile or careless user does — broken adapters, reused and shared output folders,
# numbers with junk, diverging runs, signals, full disks, bad options — and what vkft must do:
# one clear line, a documented exit status, nothing lost or corrupted. Each check is named after
# the behaviour it pins down (they came from a review that found them broken).
# Usage: tests/misuse.sh path/to/vkft. Prints "N passed, N failed".
set -u
vkft=$(realpath "$1")
source "$(dirname "$0")/lib.sh"
work=$(mktemp -d)
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
cd "$src"
common=(--config models/demo/zip_lora.json --skip-selftest --set train.epochs=1 --set train.micro_batch=2
        --set data.max_len=128 --set data.eval_fraction=0)
one_line() { test "$(grep -c . <<<"$1")" -ge 1 && test "$(grep -c '^vkft: ' <<<"$1")" -eq 1; }

run "$vkft" train "${common[@]}" --set train.max_steps=2 --set output.dir="$work/a"
check "a 2-step run for the checks below exits 0 ($(tail -1 <<<"$out"))" test $rc -eq 0

# ---- an adapter that does not load: one error, never a crash (the model was freed twice)
cp -r "$work/a" "$work/bad_r" && sed -i 's/"r": 16/"r": 8/' "$work/bad_r/adapter_config.json"
mkdir -p "$work/cut" && cp "$work/a/adapter_config.json" "$work/cut/" &&
  head -c 1000 "$work/a/adapter_model.safetensors" >"$work/cut/adapter_model.safetensors"
for bad in bad_r cut; do
  for cmd in eval generate; do
    if [ $cmd = eval ]; then
      run "$vkft" eval --model models/stories260K --adapter "$work/$bad" --data models/demo/zip_stories.jsonl
    else
      run "$vkft" generate --model models/stories260K --adapter "$work/$bad" --prompt "Once"
    fi
    check "$cmd with a broken adapter ($bad): exit $EXIT_INPUT, one line ($rc: $out)" \
      test $rc -eq $EXIT_INPUT -a "$(grep -c '^vkft: ' <<<"$out")" -eq 1
  done
done

# ---- a fresh run into a folder holding another run's results is refused; --overwrite replaces
run "$vkft" train "${common[@]}" --set train.max_steps=1 --set output.dir="$work/a"
check "a fresh run into a used folder is refused (exit $EXIT_INPUT: $(tail -1 <<<"$out"))" \
  test $rc -eq $EXIT_INPUT -a -n "$(grep -e '--resume auto' <<<"$out")"
check "the refused run changed nothing" test "$(grep -c '"loss"' "$work/a/metrics.jsonl")" -eq 2
run "$vkft" train "${common[@]}" --set train.max_steps=3 --set output.save_every=1 --set output.dir="$work/ow"
run "$vkft" train "${common[@]}" --set train.max_steps=1 --set output.dir="$work/ow" --overwrite
check "--overwrite replaces the earlier run (exit $rc)" test $rc -eq 0 -a "$(grep -c '"loss"' "$work/ow/metrics.jsonl")" -eq 1
check "--overwrite removed the earlier checkpoints" test -z "$(ls -d "$work"/ow/checkpoint-* 2>/dev/null)"
run "$vkft" train "${common[@]}" --set train.max_steps=4 --set output.save_every=1 --set output.dir="$work/cfg" --stop-after 2
run "$vkft" train "${common[@]}" --set train.max_steps=4 --set output.save_every=1 --set output.dir="$work/cfg" \
  --set train.lr=1e-3 --resume auto
check "resume refuses a checkpoint made with another config ($(tail -1 <<<"$out"))" \
  test $rc -eq $EXIT_INPUT -a -n "$(grep 'different "train" configuration' <<<"$out")"
head -40 models/demo/zip_stories.jsonl >"$work/fewer.jsonl"
run "$vkft" train "${common[@]}" --set train.max_steps=4 --set output.save_every=1 --set output.dir="$work/data" \
  --set data.train="$work/fewer.jsonl" --stop-after 2
sed -i '1s/robot/rabbit/' "$work/fewer.jsonl"
run "$vkft" train "${common[@]}" --set train.max_steps=4 --set output.save_every=1 --set output.dir="$work/data" \
  --set data.train="$work/fewer.jsonl" --resume auto
check "resume refuses changed data ($(tail -1 <<<"$out"))" test $rc -eq $EXIT_INPUT -a -n "$(grep 'data changed' <<<"$out")"

# ---- numbers are read whole: a unit or a typo is an error, never a prefix
for value in "train.lr=5e−4" "train.lr=2e–5" "train.lr=0x10" "train.lr=1_000" "train.lr=1,5e-3" "lora.r=8abc" "train.lr=1e400"; do
  run "$vkft" train "${common[@]}" --set "$value" --dry-run
  check "--set $value is refused, naming the key (rc $rc: $out)" \
    test $rc -eq $EXIT_INPUT -a -n "$(grep "\"${value%%=*}\"" <<<"$out")"
done
printf '{"model": "models/stories260K", "data": {"train": "models/demo/zip_stories.jsonl"}} junk\n' >"$work/junk.json"
run "$vkft" train --config "$work/junk.json" --dry-run
check "text after the config's JSON object is an error ($out)" test $rc -eq $EXIT_INPUT -a -n "$(grep 'text after' <<<"$out")"
{ head -3 models/demo/zip_stories.jsonl; printf '{"prompt": "a", "completion": "b"} {"prompt": "c", "completion": "d"}\n'; } >"$work/two.jsonl"
run "$vkft" data stats --model models/stories260K --data "$work/two.jsonl" --json
check "a second JSON object on a dataset line makes the record bad, not dropped ($out)" grep -q '"bad":1' <<<"$out"

# ---- data.eval is evaluated
head -8 models/demo/zip_stories.jsonl >"$work/eval.jsonl"
run "$vkft" train "${common[@]}" --set train.max_steps=2 --set data.eval="$work/eval.jsonl" --set output.eval_every=1 \
  --set output.dir="$work/ev"
check "data.eval gives eval lines at each eval_every and at the end (exit $rc)" \
  test $rc -eq 0 -a "$(grep -c '"eval_loss"' "$work/ev/metrics.jsonl" 2>/dev/null)" -eq 2
run "$vkft" train "${common[@]}" --set train.max_steps=2 --set data.eval="$work/missing.jsonl" --set output.dir="$work/ev2"
check "a missing data.eval file is an error naming it ($(tail -1 <<<"$out"))" \
  test $rc -eq $EXIT_INPUT -a -n "$(grep 'missing.jsonl' <<<"$out")"

# ---- non-finite numbers: a bad config value is refused; NaN weights stop the run, nothing saved
cp -r models/stories260K "$work/eps" && sed -i 's/"rms_norm_eps": [^,}]*/"rms_norm_eps": -1/' "$work/eps/config.json"
run "$vkft" train "${common[@]}" --set model="$work/eps" --set train.max_steps=1 --set output.dir="$work/eps_out"
check "rms_norm_eps -1 is refused ($(tail -1 <<<"$out"))" test $rc -eq $EXIT_INPUT -a -n "$(grep rms_norm_eps <<<"$out")"
cp -r models/stories260K "$work/nan"
python3 - "$work/nan/model.safetensors" <<'EOF'
import json, struct, sys
p = sys.argv[1]; b = bytearray(open(p, 'rb').read())
n = struct.unpack('<Q', b[:8])[0]; h = json.loads(b[8:8 + n])
t = h['model.layers.0.mlp.down_proj.weight']; off = 8 + n + t['data_offsets'][0]
b[off:off + 4] = struct.pack('<f', float('nan')) if t['dtype'] == 'F32' else b'\xc0\x7f\xc0\x7f'
open(p, 'wb').write(b)
EOF
run "$vkft" train "${common[@]}" --set model="$work/nan" --set train.max_steps=3 --set output.save_every=1 --set output.dir="$work/nan_out"
check "NaN weights stop the run: exit $EXIT_DIVERGED ($rc: $(tail -1 <<<"$out"))" test $rc -eq $EXIT_DIVERGED
check "a diverged run saves no adapter" test ! -e "$work/nan_out/adapter_model.safetensors"
check "metrics.jsonl holds no NaN (valid JSON)" test -z "$(grep -i nan "$work/nan_out/metrics.jsonl" 2>/dev/null)"

# ---- one run at a time per output folder
"$vkft" train "${common[@]}" --set train.max_steps=100000 --set output.dir="$work/lock" >"$work/lock.log" 2>&1 &
pid=$!
for _ in $(seq 1 300); do [ -s "$work/lock/metrics.jsonl" ] && break; sleep 0.1; done
run "$vkft" train "${common[@]}" --set train.max_steps=1 --set output.dir="$work/lock" --resume auto
check "a second run on a busy folder: exit $EXIT_BUSY naming the first ($rc: $out)" \
  test $rc -eq $EXIT_BUSY -a -n "$(grep "pid $pid" <<<"$out")"
kill -TERM $pid
wait $pid
rc=$?
check "SIGTERM mid-run: exit $EXIT_INTERRUPTED ($rc: $(tail -1 "$work/lock.log"))" test $rc -eq $EXIT_INTERRUPTED
check "SIGTERM mid-run: a checkpoint to resume from" test -n "$(ls -d "$work"/lock/checkpoint-* 2>/dev/null)"
"$vkft" train "${common[@]}" --set train.max_steps=100000 --set output.dir="$work/hup" >"$work/hup.log" 2>&1 &
pid=$!
for _ in $(seq 1 300); do [ -s "$work/hup/metrics.jsonl" ] && break; sleep 0.1; done
kill -HUP $pid
wait $pid
rc=$?
check "SIGHUP is handled like SIGTERM: exit $EXIT_INTERRUPTED, checkpoint ($rc)" \
  test $rc -eq $EXIT_INTERRUPTED -a -n "$(ls -d "$work"/hup/checkpoint-* 2>/dev/null)"
"$vkft" train "${common[@]}" --set train.max_steps=100000 --set output.dir="$work/twice" >"$work/twice.log" 2>&1 &
pid=$!
for _ in $(seq 1 300); do [ -s "$work/twice/metrics.jsonl" ] && break; sleep 0.1; done
kill -INT $pid
kill -INT $pid
t0=$(date +%s)
wait $pid
rc=$?
check "a second Ctrl-C stops at once: exit $EXIT_INTERRUPTED within 5 s ($rc)" test $rc -eq $EXIT_INTERRUPTED -a $(($(date +%s) - t0)) -le 5
run "$vkft" train "${common[@]}" --set train.max_steps=3 --set output.dir="$work/last" --stop-after 3
check "an interruption during the last step still exports: exit 0 and the adapter ($rc)" \
  test $rc -eq 0 -a -s "$work/last/adapter_model.safetensors"

# ---- data weights must draw something, and not more than memory holds
run "$vkft" train "${common[@]}" --set 'data.train=[{"path": "models/demo/zip_stories.jsonl", "weight": 0.0001}, "models/demo/zip_stories.jsonl"]' --dry-run
check "a weight that draws no example is refused ($(tail -1 <<<"$out"))" test $rc -eq $EXIT_INPUT -a -n "$(grep 'draws none' <<<"$out")"
run "$vkft" train "${common[@]}" --set 'data.train=[{"path": "models/demo/zip_stories.jsonl", "weight": 1e9}]' --dry-run
check "a weight that draws too many is refused, not out of memory ($(tail -1 <<<"$out"))" test $rc -eq $EXIT_INPUT

# ---- elapsed_s never goes backwards over a resume; a resumed finished run has one final eval
run "$vkft" train "${common[@]}" --set train.max_steps=5 --set output.save_every=1 --set output.dir="$work/el" --stop-after 3
rm -rf "$work/el/checkpoint-3"
run "$vkft" train "${common[@]}" --set train.max_steps=5 --set output.save_every=1 --set output.dir="$work/el" --resume auto
check "the resumed run exits 0 ($rc)" test $rc -eq 0
check "elapsed_s never decreases across a resume" awk -F'"elapsed_s": ' '/elapsed_s/ {v = $2 + 0; if (v < last) exit 1; last = v}' "$work/el/metrics.jsonl"
run "$vkft" train "${common[@]}" --set train.max_steps=4 --set output.save_every=2 --set data.eval_fraction=0.1 \
  --set output.eval_every=2 --set output.dir="$work/ev3"
run "$vkft" train "${common[@]}" --set train.max_steps=4 --set output.save_every=2 --set data.eval_fraction=0.1 \
  --set output.eval_every=2 --set output.dir="$work/ev3" --resume auto
check "resuming a finished run keeps one final eval line ($rc)" test "$(grep -c '"step": 4, "eval_loss"' "$work/ev3/metrics.jsonl")" -eq 1

# ---- a full disk: the reason is named, the run keeps trying, and nothing half-written remains
run bash -c "ulimit -f 48; exec \"$vkft\" train ${common[*]} --set train.max_steps=2 --set output.save_retries=1 \
  --set output.save_retry_wait=0.1 --set output.dir=\"$work/full\""
check "a write past the file-size limit: exit $EXIT_IO ($rc: $(tail -1 <<<"$out"))" test $rc -eq $EXIT_IO
check "the error names the OS reason" grep -q "File too large" <<<"$out"
check "the run said it keeps the state and retries" grep -q "trying again" <<<"$out"
check "no adapter half-written: neither file, or both" test ! -e "$work/full/adapter_model.safetensors" -a ! -e "$work/full/adapter_config.json"

# ---- output.dir = the model folder would overwrite the base model
cp -r models/stories260K "$work/base"
sum=$(md5sum <"$work/base/model.safetensors")
run "$vkft" train "${common[@]}" --set model="$work/base" --set output.dir="$work/base" --set method=full --set train.max_steps=1
check "output.dir = the model folder is refused ($(tail -1 <<<"$out"))" test $rc -eq $EXIT_INPUT
check "the base model is untouched" test "$(md5sum <"$work/base/model.safetensors")" = "$sum"

# ---- generate validates every option, naming it
for opt in "--max-new-tokens 0" "--max-new-tokens -1" "--max-new-tokens abc" "--temperature nan" "--top-p 2" \
  "--top-p -1" "--top-k -5" "--seed abc"; do
  run "$vkft" generate --model models/stories260K --prompt Once $opt
  check "generate $opt: exit $EXIT_USAGE naming it ($rc: $out)" test $rc -eq $EXIT_USAGE -a -n "$(grep -e "${opt%% *}" <<<"$out")"
done
run "$vkft" generate --model models/stories260K --chat "Hi"
check "generate --chat without a template says to pass --chat-template ($out)" test $rc -ne 0 -a -n "$(grep -e '--chat-template' <<<"$out")"

# ---- a dry run plans without the device and says whether it fits; small budgets work
run env VKFT_MEMORY_LIMIT_MB=64 "$vkft" train "${common[@]}" --dry-run --set train.micro_batch=64 --set data.max_len=512
check "a dry run over the budget prints the plan and exits 0 ($rc)" test $rc -eq 0 -a -n "$(grep 'memory plan' <<<"$out")"
check "a dry run over the budget says it does not fit" grep -q "does NOT fit" <<<"$out"
run env VKFT_MEMORY_LIMIT_MB=8 "$vkft" train "${common[@]}" --set train.micro_batch=1 --set data.max_len=64 \
  --set train.max_steps=1 --set output.dir="$work/small"
check "a run under an 8 MiB budget fits when the plan does ($(tail -1 <<<"$out"))" test $rc -eq 0

# ---- a chat_template that cannot be used is an error, never a silent ChatML fallback
echo '{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}' >"$work/chat1.jsonl"
for bad in '5' '[{"name": "tool_use", "template": "{{ 1 }}"}]'; do
  cp -r models/stories260K "$work/tmpl" && sed -i 's/}$/, "chat_template": '"$(sed 's/[&/]/\\&/g' <<<"$bad")"'}/' "$work/tmpl/tokenizer_config.json"
  run "$vkft" train "${common[@]}" --set model="$work/tmpl" --set data.train="$work/chat1.jsonl" --dry-run
  check "chat_template $bad: the chat record fails, naming it (rc $rc)" \
    test $rc -eq $EXIT_INPUT -a -n "$(grep 'chat_template' <<<"$out")"
  rm -rf "$work/tmpl"
done

# ---- odd values and leftovers
cp -r models/stories260K "$work/huge" && sed -i 's/"hidden_size": [0-9]*/"hidden_size": 1e300/' "$work/huge/config.json"
run "$vkft" train "${common[@]}" --set model="$work/huge" --dry-run
check "hidden_size 1e300 is refused with the field's range ($(tail -1 <<<"$out"))" \
  test $rc -eq $EXIT_INPUT -a -n "$(grep 'hidden_size' <<<"$out")" -a -z "$(grep -- '-9223372036854775808' <<<"$out")"
long="$work/$(printf 'd%.0s' $(seq 1 990))"
run "$vkft" train "${common[@]}" --set train.max_steps=2 --set output.dir="$long"
check "a 990-byte output.dir fails before training ($(tail -1 <<<"$out" | cut -c1-80))" \
  test $rc -eq $EXIT_INPUT -a -z "$(grep '^step' <<<"$out")"
run "$vkft" train "${common[@]}" --set train.max_steps=4 --set output.save_every=1 --set output.dir="$work/stray" --stop-after 2
mkdir "$work/stray/checkpoint-99"
run "$vkft" train "${common[@]}" --set train.max_steps=4 --set output.save_every=1 --set output.dir="$work/stray" --resume auto
check "an empty stray checkpoint is skipped, naming it ($rc)" test $rc -eq 0 -a -n "$(grep 'skipping .*checkpoint-99' <<<"$out")"
check "... and the run resumed from the last good one" grep -q "resumed from .*checkpoint-2 at step 2" <<<"$out"
run "$vkft" train "${common[@]}" --set train.max_steps=4 --set output.save_every=1 --set output.dir="$work/edit" --stop-after 2
sed -i 's/"step": 2/"step": 100/' "$work/edit/checkpoint-2/trainer_state.json"
run "$vkft" train "${common[@]}" --set train.max_steps=4 --set output.save_every=1 --set output.dir="$work/edit" --resume auto
check "an edited trainer_state.json fails its checksum and is skipped ($rc)" \
  test $rc -eq 0 -a -n "$(grep -E 'skipping .*checkpoint-2.*(checksum|manifest says)' <<<"$out")" -a -n "$(grep 'resumed from .*checkpoint-1 at step 1' <<<"$out")"
touch "$work/plainfile"
run "$vkft" train "${common[@]}" --set train.max_steps=1 --set output.dir="$work/plainfile/out"
check "an output.dir that cannot be created names the OS reason ($out)" test $rc -ne 0 -a -n "$(grep 'Not a directory' <<<"$out")"

finish
