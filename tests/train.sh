#!/usr/bin/env bash
# End-to-end training on the bundled stories260K: a short LoRA run writes metrics, checkpoints
# and a PEFT adapter; a run interrupted and resumed (gracefully, and from an older checkpoint as
# after a crash) ends bit-identical to the uninterrupted one; eval and generate use the adapter;
# a full fine-tune writes a Hugging Face folder; bad configs fail with one line.
# Usage: tests/train.sh path/to/vkft (run from the build folder). Prints "N passed, N failed".
set -u
vkft=$(realpath "$1")
src=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
passed=0
failed=0
check() {
  local what=$1
  shift
  if "$@"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAIL: $what"; fi
}
cd "$src"
common=(--config models/demo/zip_lora.json --skip-selftest --set train.epochs=1 --set train.max_steps=6
        --set train.micro_batch=2 --set data.max_len=128 --set data.eval_fraction=0.1)

"$vkft" train "${common[@]}" --set output.dir="$work/a" >"$work/a.log" 2>&1
check "uninterrupted run exits 0 ($(tail -1 "$work/a.log"))" test $? -eq 0
check "metrics has 6 step lines" test "$(grep -c '"loss"' "$work/a/metrics.jsonl")" -eq 6
check "metrics has the eval line" grep -q '"eval_loss"' "$work/a/metrics.jsonl"
for key in step loss lr grad_norm tokens trained_tokens tokens_per_s elapsed_s; do
  check "metrics line has $key" grep -q "\"$key\": " <(head -1 "$work/a/metrics.jsonl")
done
check "first update runs at lr 0 with warmup" grep -q '"step": 1, "loss": [0-9.e+-]*, "lr": 0,' "$work/a/metrics.jsonl"
check "adapter_model.safetensors written" test -s "$work/a/adapter_model.safetensors"
check "adapter_config is PEFT's" grep -q '"peft_type": "LORA"' "$work/a/adapter_config.json"
check "PEFT key names" grep -q 'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight' "$work/a/adapter_model.safetensors"
first=$(grep -o '"loss": [0-9.e+-]*' "$work/a/metrics.jsonl" | head -1 | cut -d' ' -f2)
last=$(grep -o '"loss": [0-9.e+-]*' "$work/a/metrics.jsonl" | tail -1 | cut -d' ' -f2)
check "loss decreases ($first -> $last)" awk "BEGIN {exit !($last < $first)}"

# graceful interruption after 3 steps, then --resume auto
"$vkft" train "${common[@]}" --set output.dir="$work/b" --stop-after 3 >"$work/b1.log" 2>&1
check "interrupted run exits 0" test $? -eq 0
check "interrupted run wrote checkpoint-3" test -f "$work/b/checkpoint-3/trainer_state.json"
check "checkpoint holds the adapter files" test -f "$work/b/checkpoint-3/adapter_model.safetensors"
"$vkft" train "${common[@]}" --set output.dir="$work/b" --resume auto >"$work/b2.log" 2>&1
check "resumed run exits 0 ($(tail -1 "$work/b2.log"))" test $? -eq 0
check "resumed adapter is bit-identical" cmp -s "$work/a/adapter_model.safetensors" "$work/b/adapter_model.safetensors"
check "resumed metrics equal (losses, lrs, norms)" cmp -s <(sed 's/, "tokens_per_s.*//' "$work/a/metrics.jsonl") \
  <(sed 's/, "tokens_per_s.*//' "$work/b/metrics.jsonl")

# a real SIGINT: the step in flight finishes, a checkpoint is written, exit status 0
"$vkft" train "${common[@]}" --set train.max_steps=1000 --set output.dir="$work/sig" >"$work/sig.log" 2>&1 &
pid=$!
for _ in $(seq 1 300); do # wait (up to 60 s) for the first step's metrics line
  [ -s "$work/sig/metrics.jsonl" ] && break
  sleep 0.2
done
kill -INT $pid
wait $pid
check "SIGINT: exit 0 ($(tail -1 "$work/sig.log"))" test $? -eq 0
check "SIGINT: a checkpoint was written" test -n "$(ls -d "$work"/sig/checkpoint-* 2>/dev/null)"
check "SIGINT: said how to resume" grep -q "resume with --resume auto" "$work/sig.log"

# a crash after step 5 whose last checkpoint is step 4: resume from it
"$vkft" train "${common[@]}" --set output.dir="$work/c" --set output.save_every=2 --set output.keep_last=2 \
  --stop-after 5 >"$work/c1.log" 2>&1
check "keep_last pruned checkpoint-2" test ! -d "$work/c/checkpoint-2"
rm -rf "$work/c/checkpoint-5"
"$vkft" train "${common[@]}" --set output.dir="$work/c" --set output.save_every=2 --set output.keep_last=2 \
  --resume auto >"$work/c2.log" 2>&1
check "resumed from checkpoint-4" grep -q "resumed from .*checkpoint-4 at step 4" "$work/c2.log"
check "crash-resumed adapter is bit-identical" cmp -s "$work/a/adapter_model.safetensors" "$work/c/adapter_model.safetensors"

# lora.init: continue from the adapter of run a; the first loss is then a's last level, not the base's
"$vkft" train "${common[@]}" --set train.max_steps=1 --set lora.init="$work/a" --set output.dir="$work/i" >"$work/i.log" 2>&1
check "lora.init run exits 0 ($(tail -1 "$work/i.log"))" test $? -eq 0
init_loss=$(grep -o '"loss": [0-9.e+-]*' "$work/i/metrics.jsonl" | head -1 | cut -d' ' -f2)
check "lora.init starts from the trained adapter ($init_loss < $first)" awk "BEGIN {exit !($init_loss < $first)}"

out=$("$vkft" eval --model models/stories260K --adapter "$work/a" --data models/demo/zip_stories.jsonl 2>&1 | tail -1)
check "eval prints loss and tokens ($out)" grep -q '^{"loss": [0-9.]*, "tokens": [0-9]*}$' <<<"$out"
base=$("$vkft" eval --model models/stories260K --data models/demo/zip_stories.jsonl 2>&1 | tail -1)
check "the adapter lowers the loss ($base -> $out)" awk -v a="$(cut -d' ' -f2 <<<"$base" | tr -d ,)" \
  -v b="$(cut -d' ' -f2 <<<"$out" | tr -d ,)" 'BEGIN {exit !(b < a)}'
gen=$("$vkft" generate --model models/stories260K --adapter "$work/a" --prompt "Once upon a time," --max-new-tokens 8 2>&1)
check "generate with the adapter ($gen)" grep -q "^Once upon a time," <<<"$gen"

"$vkft" train "${common[@]}" --set method=full --set train.lr=1e-3 --set train.max_steps=2 \
  --set output.dir="$work/full" >"$work/full.log" 2>&1
check "full fine-tune exits 0 ($(tail -1 "$work/full.log"))" test $? -eq 0
check "full fine-tune writes a HF folder" test -s "$work/full/model.safetensors" -a -s "$work/full/config.json" -a -s "$work/full/tokenizer.json"
out=$("$vkft" eval --model "$work/full" --data models/demo/zip_stories.jsonl 2>&1 | tail -1)
check "the saved full model loads ($out)" grep -q '"loss"' <<<"$out"

# LoRA dropout: masks drawn from (seed, step, micro-batch), so a resumed run still matches
"$vkft" train "${common[@]}" --set lora.dropout=0.1 --set train.max_steps=4 --set output.dir="$work/d1" >"$work/d1.log" 2>&1
check "lora.dropout run exits 0 ($(tail -1 "$work/d1.log"))" test $? -eq 0
"$vkft" train "${common[@]}" --set lora.dropout=0.1 --set train.max_steps=4 --set output.dir="$work/d2" --stop-after 2 >/dev/null 2>&1
"$vkft" train "${common[@]}" --set lora.dropout=0.1 --set train.max_steps=4 --set output.dir="$work/d2" --resume auto >/dev/null 2>&1
check "lora.dropout: resumed adapter is bit-identical" cmp -s "$work/d1/adapter_model.safetensors" "$work/d2/adapter_model.safetensors"
# (B starts at 0 and warmup gives step 1 a zero rate: masks show from step 3's loss on)
l_drop=$(sed -n 4p "$work/d1/metrics.jsonl" | grep -o '"loss": [^,]*')
l_plain=$(sed -n 4p "$work/a/metrics.jsonl" | grep -o '"loss": [^,]*')
check "lora.dropout changes the run ($l_drop vs $l_plain)" test -n "$l_drop" -a "$l_drop" != "$l_plain"

# tokens.add: teach the base model ChatML with two new special tokens (tied embeddings trained)
for i in 1 2 3 4 5 6; do
  echo '{"messages": [{"role": "user", "content": "Who is Zip?"}, {"role": "assistant", "content": "Zip is a little robot with a blue hat."}]}'
done >"$work/chat.jsonl"
"$vkft" train "${common[@]}" --set data.train="$work/chat.jsonl" --set data.template=chatml --set data.eval_fraction=0 \
  --set 'tokens.add=["<|im_start|>", "<|im_end|>"]' --set 'lora.modules_to_save=["embed_tokens"]' \
  --set train.max_steps=2 --set output.dir="$work/tok" >"$work/tok.log" 2>&1
check "tokens.add run exits 0 ($(tail -1 "$work/tok.log"))" test $? -eq 0
check "tokens.add: the new ids follow the vocabulary" grep -q "<|im_end|> has id 513 (new)" "$work/tok.log"
check "tokens.add: the saved tokenizer has the tokens" grep -q '"content":"<|im_start|>"' "$work/tok/tokenizer.json"
check "tokens.add: the adapter holds the grown embeddings" grep -q '"base_model.model.model.embed_tokens.weight":{"dtype":"F32","shape":\[514,64\]' "$work/tok/adapter_model.safetensors"

out=$("$vkft" train "${common[@]}" --set train.learning_rate=1 2>&1); rc=$?
check "unknown key: exit 1 with a suggestion ($out)" test $rc -eq 1 -a "$(grep -c 'did you mean' <<<"$out")" -eq 1
out=$("$vkft" train --config /nonexistent.json 2>&1); rc=$?
check "missing config: one line, exit 1" test $rc -eq 1 -a "$(wc -l <<<"$out")" -eq 1
out=$("$vkft" train "${common[@]}" --dry-run 2>&1); rc=$?
check "dry run prints the memory plan" grep -q "memory plan: weights" <<<"$out"

echo "$passed passed, $failed failed"
test $failed -eq 0
