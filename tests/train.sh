#!/usr/bin/env bash
# End-to-end training on the bundled stories260K: a short LoRA run writes metrics, checkpoints
# and a PEFT adapter; a run interrupted and resumed (gracefully, and from an older checkpoint as
# after a crash) ends bit-identical to the uninterrupted one; eval and generate use the adapter;
# a full fine-tune writes a Hugging Face folder; DoRA trains, resumes and merges; VKFT_SYNC=1 (a
# full barrier after every dispatch) gives the same bits; bad configs fail with one line.
# Usage: tests/train.sh path/to/vkft (run from the build folder). Prints "N passed, N failed".
set -u
source "$(dirname "$0")/lib.sh"
begin_test "$1"
common=(--config models/demo/zip_lora.json --skip-selftest --set train.epochs=1 --set train.max_steps=6
        --set train.micro_batch=2 --set data.max_len=128 --set data.eval_fraction=0.1)

run "$vkft" train "${common[@]}" --set output.dir="$work/a"
check "uninterrupted run exits 0 ($(tail -1 <<<"$out"))" test $rc -eq 0
check "metrics has 6 step lines" test "$(grep -c '"loss"' "$work/a/metrics.jsonl")" -eq 6
check "metrics has the eval line" grep -q '"eval_loss"' "$work/a/metrics.jsonl"
for key in step loss lr grad_norm tokens trained_tokens tokens_per_s elapsed_s; do
  check "metrics line has $key" grep -q "\"$key\": " <(head -1 "$work/a/metrics.jsonl")
done
check "first update runs at lr 0 with warmup" grep -q '"step": 1, "loss": [0-9.e+-]*, "lr": 0,' "$work/a/metrics.jsonl"
check "adapter_model.safetensors written" test -s "$work/a/adapter_model.safetensors"
check "adapter_config is PEFT's" grep -q '"peft_type": "LORA"' "$work/a/adapter_config.json"
check "PEFT key names" grep -q 'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight' "$work/a/adapter_model.safetensors"
check "no staging folder left" test ! -e "$work/a/.final.tmp"
check "report.html written with the loss chart" grep -q 'id="chart-loss"' "$work/a/report.html"
check "the run ends with a loss sparkline" grep -q '^loss [0-9]' <<<"$out"
check "report.html says finished" grep -q 'finished' "$work/a/report.html"
first=$(grep -o '"loss": [0-9.e+-]*' "$work/a/metrics.jsonl" | head -1 | cut -d' ' -f2)
last=$(grep -o '"loss": [0-9.e+-]*' "$work/a/metrics.jsonl" | tail -1 | cut -d' ' -f2)
check "loss decreases ($first -> $last)" awk "BEGIN {exit !($last < $first)}"

# graceful interruption after 3 steps (exit 130: interrupted, state saved), then --resume auto
run "$vkft" train "${common[@]}" --set output.dir="$work/b" --stop-after 3
check "interrupted run exits $EXIT_INTERRUPTED (got $rc)" test $rc -eq $EXIT_INTERRUPTED
check "interrupted run wrote checkpoint-3" test -f "$work/b/checkpoint-3/trainer_state.json"
check "checkpoint holds the adapter files" test -f "$work/b/checkpoint-3/adapter_model.safetensors"
check "checkpoint has a manifest" grep -q '"format": "vkft-checkpoint"' "$work/b/checkpoint-3/manifest.json"
run "$vkft" train "${common[@]}" --set output.dir="$work/b" --resume auto
check "resumed run exits 0 ($(tail -1 <<<"$out"))" test $rc -eq 0
check "resumed adapter is bit-identical" cmp -s "$work/a/adapter_model.safetensors" "$work/b/adapter_model.safetensors"
check "resumed metrics equal (losses, lrs, norms)" cmp -s <(sed 's/, "tokens_per_s.*//' "$work/a/metrics.jsonl") \
  <(sed 's/, "tokens_per_s.*//' "$work/b/metrics.jsonl")

# a crash after step 5 whose last checkpoint is step 4: resume from it
run "$vkft" train "${common[@]}" --set output.dir="$work/c" --set output.save_every=2 --set output.keep_last=2 \
  --stop-after 5
check "keep_last pruned checkpoint-2" test ! -d "$work/c/checkpoint-2"
rm -rf "$work/c/checkpoint-5"
run "$vkft" train "${common[@]}" --set output.dir="$work/c" --set output.save_every=2 --set output.keep_last=2 \
  --resume auto
check "resumed from checkpoint-4" grep -q "resumed from .*checkpoint-4 at step 4" <<<"$out"
check "crash-resumed adapter is bit-identical" cmp -s "$work/a/adapter_model.safetensors" "$work/c/adapter_model.safetensors"

# VKFT_SYNC=1 puts a full barrier after every dispatch: the same bits prove that every op
# declares what it reads and writes (the automatic barriers rest on those declarations)
run env VKFT_SYNC=1 "$vkft" train "${common[@]}" --set output.dir="$work/sync"
check "VKFT_SYNC=1 run exits 0 ($(tail -1 <<<"$out"))" test $rc -eq 0
check "VKFT_SYNC=1 adapter is bit-identical" cmp -s "$work/a/adapter_model.safetensors" "$work/sync/adapter_model.safetensors"

# lora.init: continue from the adapter of run a; the first loss is then a's last level, not the base's
run "$vkft" train "${common[@]}" --set train.max_steps=1 --set lora.init="$work/a" --set output.dir="$work/i"
check "lora.init run exits 0 ($(tail -1 <<<"$out"))" test $rc -eq 0
init_loss=$(grep -o '"loss": [0-9.e+-]*' "$work/i/metrics.jsonl" | head -1 | cut -d' ' -f2)
check "lora.init starts from the trained adapter ($init_loss < $first)" awk "BEGIN {exit !($init_loss < $first)}"

run "$vkft" eval --model models/stories260K --adapter "$work/a" --data models/demo/zip_stories.jsonl
eval_rc=$rc
adapter_loss=$(tail -1 <<<"$out")
check "eval exits 0 ($eval_rc)" test $eval_rc -eq 0
check "eval prints loss and tokens ($adapter_loss)" grep -q '^{"loss": [0-9.]*, "tokens": [0-9]*}$' <<<"$adapter_loss"
run "$vkft" eval --model models/stories260K --data models/demo/zip_stories.jsonl
base_loss=$(tail -1 <<<"$out")
check "the adapter lowers the loss ($base_loss -> $adapter_loss)" awk -v a="$(cut -d' ' -f2 <<<"$base_loss" | tr -d ,)" \
  -v b="$(cut -d' ' -f2 <<<"$adapter_loss" | tr -d ,)" 'BEGIN {exit !(b < a)}'
run "$vkft" generate --model models/stories260K --adapter "$work/a" --prompt "Once upon a time," --max-new-tokens 8
check "generate with the adapter exits 0 ($rc)" test $rc -eq 0
check "generate with the adapter ($out)" grep -q "^Once upon a time," <<<"$out"

run "$vkft" train "${common[@]}" --set method=full --set train.lr=1e-3 --set train.max_steps=2 \
  --set output.dir="$work/full"
check "full fine-tune exits 0 ($(tail -1 <<<"$out"))" test $rc -eq 0
check "full fine-tune writes a HF folder" test -s "$work/full/model.safetensors" -a -s "$work/full/config.json" -a -s "$work/full/tokenizer.json"
run "$vkft" eval --model "$work/full" --data models/demo/zip_stories.jsonl
check "the saved full model loads ($(tail -1 <<<"$out"))" test $rc -eq 0 -a -n "$(grep '"loss"' <<<"$out")"

# LoRA dropout: masks drawn from (seed, step, micro-batch), so a resumed run still matches
run "$vkft" train "${common[@]}" --set lora.dropout=0.1 --set train.max_steps=4 --set output.dir="$work/d1"
check "lora.dropout run exits 0 ($(tail -1 <<<"$out"))" test $rc -eq 0
run "$vkft" train "${common[@]}" --set lora.dropout=0.1 --set train.max_steps=4 --set output.dir="$work/d2" --stop-after 2
check "lora.dropout: interrupted run exits $EXIT_INTERRUPTED" test $rc -eq $EXIT_INTERRUPTED
run "$vkft" train "${common[@]}" --set lora.dropout=0.1 --set train.max_steps=4 --set output.dir="$work/d2" --resume auto
check "lora.dropout: resumed run exits 0" test $rc -eq 0
check "lora.dropout: resumed adapter is bit-identical" cmp -s "$work/d1/adapter_model.safetensors" "$work/d2/adapter_model.safetensors"
# (B starts at 0 and warmup gives step 1 a zero rate: masks show from step 3's loss on)
l_drop=$(sed -n 4p "$work/d1/metrics.jsonl" | grep -o '"loss": [^,]*')
l_plain=$(sed -n 4p "$work/a/metrics.jsonl" | grep -o '"loss": [^,]*')
check "lora.dropout changes the run ($l_drop vs $l_plain)" test -n "$l_drop" -a "$l_drop" != "$l_plain"

# DoRA (lora.use_dora): PEFT's magnitude keys, the loss decreases, a resumed run ends
# bit-identical (checkpoints hold m and its AdamW state), generate and eval read the adapter,
# export merges it (the merged model's eval loss is the adapter's); what cannot carry it refuses
dora=(--set lora.use_dora=true --set lora.dropout=0.1 --set train.max_steps=4)
run "$vkft" train "${common[@]}" "${dora[@]}" --set output.dir="$work/do1"
check "lora.use_dora run exits 0 ($(tail -1 <<<"$out"))" test $rc -eq 0
check "DoRA adapter holds PEFT's magnitude keys" grep -q 'base_model.model.model.layers.0.self_attn.q_proj.lora_magnitude_vector"' "$work/do1/adapter_model.safetensors"
check "DoRA adapter_config says use_dora" grep -q '"use_dora": true' "$work/do1/adapter_config.json"
d_first=$(grep -o '"loss": [0-9.e+-]*' "$work/do1/metrics.jsonl" | head -1 | cut -d' ' -f2)
d_last=$(grep -o '"loss": [0-9.e+-]*' "$work/do1/metrics.jsonl" | tail -1 | cut -d' ' -f2)
check "DoRA loss decreases ($d_first -> $d_last)" awk "BEGIN {exit !($d_last < $d_first)}"
l_dora=$(sed -n 4p "$work/do1/metrics.jsonl" | grep -o '"loss": [^,]*')
l_drop=$(sed -n 4p "$work/d1/metrics.jsonl" | grep -o '"loss": [^,]*')
check "DoRA trains otherwise than LoRA ($l_dora vs $l_drop)" test -n "$l_dora" -a "$l_dora" != "$l_drop"
run "$vkft" train "${common[@]}" "${dora[@]}" --set output.dir="$work/do2" --stop-after 2
check "DoRA: interrupted run exits $EXIT_INTERRUPTED" test $rc -eq $EXIT_INTERRUPTED
run "$vkft" train "${common[@]}" "${dora[@]}" --set output.dir="$work/do2" --resume auto
check "DoRA: resumed run exits 0" test $rc -eq 0
check "DoRA: resumed adapter is bit-identical" cmp -s "$work/do1/adapter_model.safetensors" "$work/do2/adapter_model.safetensors"
run "$vkft" generate --model models/stories260K --adapter "$work/do1" --prompt "Once upon a time," --max-new-tokens 8
check "generate with the DoRA adapter ($out)" test $rc -eq 0 -a -n "$(grep '^Once upon a time,' <<<"$out")"
run "$vkft" eval --model models/stories260K --adapter "$work/do1" --data models/demo/zip_stories.jsonl
dora_eval=$(tail -1 <<<"$out" | grep -o '"loss": [0-9.e+-]*' | cut -d' ' -f2)
run "$vkft" export --model models/stories260K --adapter "$work/do1" --to hf --type f32 --out "$work/do-merged"
check "export merges the DoRA adapter ($(tail -1 <<<"$out"))" test $rc -eq 0
run "$vkft" eval --model "$work/do-merged" --data models/demo/zip_stories.jsonl
merged_eval=$(tail -1 <<<"$out" | grep -o '"loss": [0-9.e+-]*' | cut -d' ' -f2)
check "the merged DoRA model's eval loss is the adapter's ($merged_eval vs $dora_eval)" \
  awk -v a="$merged_eval" -v b="$dora_eval" 'BEGIN {d = a - b; exit !(b > 0 && d * d < 1e-10 * b * b)}'
run "$vkft" export --model models/stories260K --adapter "$work/do1" --to gguf-lora --out "$work/do.gguf"
check "gguf-lora refuses a DoRA adapter in one line ($out)" test $rc -ne 0 -a "$(grep -c 'use_dora' <<<"$out")" -eq 1
run "$vkft" train "${common[@]}" --set lora.use_dora=true --set quant.base=nf4 --set output.dir="$work/dq"
check "use_dora with quant.base: refused, exit 1 ($out)" test $rc -eq $EXIT_INPUT -a "$(grep -c 'lora.use_dora' <<<"$out")" -eq 1

# a checkpoint written before lora.use_dora existed (its config has no such key) still resumes
run "$vkft" train "${common[@]}" --set train.max_steps=4 --set output.dir="$work/old" --stop-after 2
python3 - "$work/old/checkpoint-2" <<'PYEOF'
import json, os, sys, zlib
d = sys.argv[1]
state = json.load(open(os.path.join(d, "trainer_state.json")))
del state["config"]["lora"]["use_dora"]
data = json.dumps(state, indent=2).encode()
open(os.path.join(d, "trainer_state.json"), "wb").write(data)
man = json.load(open(os.path.join(d, "manifest.json")))
man["files"]["trainer_state.json"] = {"bytes": len(data), "crc32": "%08x" % zlib.crc32(data)}
open(os.path.join(d, "manifest.json"), "w").write(json.dumps(man, indent=2))
PYEOF
run "$vkft" train "${common[@]}" --set train.max_steps=4 --set output.dir="$work/old" --resume auto
check "a checkpoint from before lora.use_dora resumes ($(tail -1 <<<"$out"))" test $rc -eq 0

# NEFTune: noise on the embeddings from step 1 (the base's own forward changes), none in eval;
# drawn from (seed, step, micro-batch) like the dropout masks, so a second run gives the same bits
for d in n1 n2; do
  run "$vkft" train "${common[@]}" --set train.neftune_noise_alpha=5 --set train.max_steps=2 --set output.dir="$work/$d"
  check "neftune_noise_alpha run $d exits 0 ($(tail -1 <<<"$out"))" test $rc -eq 0
done
check "neftune: two runs are bit-identical" cmp -s "$work/n1/adapter_model.safetensors" "$work/n2/adapter_model.safetensors"
l_noise=$(sed -n 1p "$work/n1/metrics.jsonl" | grep -o '"loss": [^,]*')
l_plain=$(sed -n 1p "$work/a/metrics.jsonl" | grep -o '"loss": [^,]*')
check "neftune changes step 1's loss ($l_noise vs $l_plain)" test -n "$l_noise" -a "$l_noise" != "$l_plain"
run "$vkft" train "${common[@]}" --set objective=dpo --set train.neftune_noise_alpha=5 --set output.dir="$work/nd"
check "neftune with DPO: refused, exit 1 ($(tail -1 <<<"$out"))" \
  bash -c '[ '$rc' -eq '$EXIT_INPUT' ] && grep -q "neftune_noise_alpha\\\" is for objective" <<<"$1"' _ "$out"

# Evaluation and checkpoint strategies (transformers' names). "epoch": an eval and a checkpoint
# where each epoch ends (2 epochs: one in the loop, the final eval at the end)
run "$vkft" train "${common[@]}" --set train.max_steps=0 --set train.epochs=2 --set output.eval_strategy=epoch \
  --set output.save_strategy=epoch --set output.dir="$work/ep"
check "eval_strategy=epoch run exits 0 ($(tail -1 <<<"$out"))" test $rc -eq 0
steps=$(grep -c '"loss"' "$work/ep/metrics.jsonl")
first_eval=$(grep '"eval_loss"' "$work/ep/metrics.jsonl" | head -1 | grep -o '"step": [0-9]*' | cut -d' ' -f2)
check "two evals, the first at the end of epoch 1 (step $first_eval of $steps)" \
  test "$(grep -c '"eval_loss"' "$work/ep/metrics.jsonl")" -eq 2 -a $((first_eval * 2)) -eq "$steps"
check "a checkpoint at the end of epoch 1" test -d "$work/ep/checkpoint-$first_eval"
# early stopping: no eval can beat the first by more than 100, so patience 2 stops at step 3
run "$vkft" train "${common[@]}" --set train.max_steps=10 --set output.eval_every=1 \
  --set output.early_stopping_patience=2 --set output.early_stopping_threshold=100 --set output.dir="$work/es"
check "early stopping run exits 0 ($(tail -1 <<<"$out"))" test $rc -eq 0
check "early stopping after 3 steps, said so" bash -c "grep -q 'early stopping at step 3' <<<\"\$1\" &&
  [ \$(grep -c '\"loss\"' '$work/es/metrics.jsonl') -eq 3 ]" _ "$out"
check "one eval line per step (no repeat at the stop)" test "$(grep -c '"eval_loss"' "$work/es/metrics.jsonl")" -eq 3
check "the early-stopped run saved its adapter" test -s "$work/es/adapter_model.safetensors"
# load_best_model_at_end: a learning rate that diverges within a few steps; the exported adapter
# is the checkpoint of the lowest eval loss, kept beyond keep_last 1
run "$vkft" train "${common[@]}" --set train.max_steps=6 --set train.lr=0.3 --set train.schedule=constant \
  --set output.eval_every=1 --set output.save_every=1 --set output.keep_last=1 \
  --set output.load_best_model_at_end=true --set output.dir="$work/best"
check "load_best_model_at_end run exits 0 ($(tail -1 <<<"$out"))" test $rc -eq 0
best=$(python3 -c "import json,sys; e=[json.loads(l) for l in open(sys.argv[1]) if 'eval_loss' in l]; print(min(e, key=lambda x: x['eval_loss'])['step'])" "$work/best/metrics.jsonl")
check "the best eval (step $best) is not the last" test "$best" -lt 6
check "the final adapter is checkpoint-$best's" cmp -s "$work/best/adapter_model.safetensors" "$work/best/checkpoint-$best/adapter_model.safetensors"
check "keep_last 1 kept the best checkpoint and the last" test -d "$work/best/checkpoint-$best" -a -d "$work/best/checkpoint-6"
for bad in "output.load_best_model_at_end=true --set output.eval_every=2 --set output.save_every=4" \
           "output.early_stopping_patience=2" "output.eval_strategy=sometimes"; do
  # shellcheck disable=SC2086
  run "$vkft" train "${common[@]}" --set $bad --set output.dir="$work/bad-strategy"
  check "refused: $bad (exit $rc: $(tail -1 <<<"$out"))" test $rc -eq $EXIT_INPUT
done

# data.max_len "auto": a percentile of the examples' untruncated lengths, rounded up to a multiple of 8
run "$vkft" train "${common[@]}" --set data.max_len=auto --set data.max_len_percentile=50 --set train.max_steps=1 \
  --set output.dir="$work/auto-len"
chosen=$(sed -n 's/^data.max_len auto: \([0-9]*\) tokens.*; \([0-9]*\) examples are truncated$/\1 \2/p' <<<"$out")
want=$(wc -l <models/demo/zip_stories.jsonl)
check "max_len auto: chosen and said (${chosen:-nothing}; exit $rc)" test $rc -eq 0 -a -n "$chosen"
check "max_len auto: the plan uses it" grep -q "x ${chosen%% *} tokens per micro-batch" <<<"$out"
check "max_len auto at the median: a multiple of 8, at most half of $want examples cut (${chosen#* })" \
  test $((${chosen%% *} % 8)) -eq 0 -a "${chosen#* }" -le $((want / 2))
run "$vkft" train "${common[@]}" --set data.max_len=auto --set data.max_len_percentile=100 --set train.max_steps=1 \
  --set output.dir="$work/auto-len100"
all=$(sed -n 's/^data.max_len auto: \([0-9]*\) tokens.*; \([0-9]*\) examples are truncated$/\1 \2/p' <<<"$out")
check "max_len auto at percentile 100: none cut, not shorter ($all vs $chosen)" \
  test "${all#* }" = 0 -a "${all%% *}" -ge "${chosen%% *}"
run "$vkft" train "${common[@]}" --set objective=dpo --set data.max_len=auto --set output.dir="$work/auto-dpo"
check "max_len auto with DPO: refused (exit $rc)" test $rc -eq $EXIT_INPUT

# tokens.add: teach the base model ChatML with two new special tokens (tied embeddings trained)
for i in 1 2 3 4 5 6; do
  echo '{"messages": [{"role": "user", "content": "Who is Zip?"}, {"role": "assistant", "content": "Zip is a little robot with a blue hat."}]}'
done >"$work/chat.jsonl"
run "$vkft" train "${common[@]}" --set data.train="$work/chat.jsonl" --set data.template=chatml --set data.eval_fraction=0 \
  --set 'tokens.add=["<|im_start|>", "<|im_end|>"]' --set 'lora.modules_to_save=["embed_tokens"]' \
  --set train.max_steps=2 --set output.dir="$work/tok"
check "tokens.add run exits 0 ($(tail -1 <<<"$out"))" test $rc -eq 0
check "tokens.add: the new ids follow the vocabulary" grep -q "<|im_end|> has id 513 (new)" <<<"$out"
check "tokens.add: the saved tokenizer has the tokens" grep -q '"content":"<|im_start|>"' "$work/tok/tokenizer.json"
check "tokens.add: the adapter holds the grown embeddings" grep -q '"base_model.model.model.embed_tokens.weight":{"dtype":"F32","shape":\[514,64\]' "$work/tok/adapter_model.safetensors"
run "$vkft" generate --model models/stories260K --adapter "$work/tok" --chat "Who is Zip?" --chat-template chatml --max-new-tokens 4
check "generate loads a tokens.add adapter (rc $rc: $(tail -1 <<<"$out"))" test $rc -eq 0

# QLoRA on the bundled model: on-the-fly NF4 and a bitsandbytes checkpoint written by
# `vkft quantize` give the same adapter (the quantization is the same, bit for bit)
run "$vkft" train "${common[@]}" --set quant.base=nf4 --set train.max_steps=3 --set output.dir="$work/q1"
check "QLoRA (quant.base nf4) exits 0 ($(tail -1 <<<"$out"))" test $rc -eq 0
check "QLoRA: the plan names the 4-bit base" grep -q "projections in nf4, blocks of 64, double-quantized" <<<"$out"
check "QLoRA: metrics lines name the base" grep -q '"base": "nf4"' "$work/q1/metrics.jsonl"
run "$vkft" quantize --model models/stories260K --to nf4 --double-quant --out "$work/s-nf4"
check "vkft quantize writes a bitsandbytes folder (rc $rc)" test $rc -eq 0 -a -s "$work/s-nf4/model.safetensors"
run "$vkft" train "${common[@]}" --set model="$work/s-nf4" --set train.max_steps=3 --set output.dir="$work/q2"
check "QLoRA from the quantized checkpoint exits 0 ($(tail -1 <<<"$out"))" test $rc -eq 0
check "QLoRA: checkpoint and on-the-fly quantization give the same adapter" \
  cmp -s "$work/q1/adapter_model.safetensors" "$work/q2/adapter_model.safetensors"
# merging a QLoRA adapter into its 4-bit base: the base dequantized (its fp32 dtype here), a plain
# model (no quantization_config) with the loss of base + adapter
run "$vkft" export --model "$work/s-nf4" --adapter "$work/q2" --to hf --out "$work/q2-merged"
check "export of a 4-bit base + adapter exits 0 ($(tail -1 <<<"$out"))" test $rc -eq 0
check "the merged 4-bit base is a plain model" bash -c "! grep -q quantization_config '$work/q2-merged/config.json'"
a=$("$vkft" eval --model "$work/s-nf4" --adapter "$work/q2" --data models/demo/zip_stories.jsonl 2>/dev/null | tail -1)
b=$("$vkft" eval --model "$work/q2-merged" --data models/demo/zip_stories.jsonl 2>/dev/null | tail -1)
loss() { sed 's/.*"loss": \([^,]*\),.*/\1/' <<<"$1"; }
check "merged 4-bit base's loss equals base + adapter ($b vs $a)" \
  awk -v x="$(loss "$a")" -v y="$(loss "$b")" 'BEGIN {d = x - y; if (d < 0) d = -d; exit !(x > 0 && d <= 1e-5 * x)}'
run "$vkft" train "${common[@]}" --set model="$work/s-nf4" --set method=full --set train.max_steps=1 --set output.dir="$work/q3"
check "full fine-tuning of a 4-bit checkpoint is refused (rc $rc)" test $rc -eq $EXIT_UNSUPPORTED
# the QLoRA plan of Llama-3.1-8B from its config.json alone (no weights, no device needed):
# nf4 + double quantization, LoRA r=16 on all 7 projections, seq 2048, micro_batch 1,
# gradient checkpointing — within 7.0 GiB (torchtune reports 7.4 GiB for the same setup)
awk 'BEGIN {printf "{\"input_ids\": [128000"; for (i = 1; i < 2048; i++) printf ", %d", (i * 7919) % 128000; print "]}"}' >"$work/tokens.jsonl"
run env VK_DRIVER_FILES=/nonexistent.json VK_ICD_FILENAMES=/nonexistent.json "$vkft" train --dry-run \
  --set model=tests/data/llama-3.1-8b --set data.train="$work/tokens.jsonl" --set quant.base=nf4 --set lora.r=16 \
  --set 'lora.targets=["q_proj","k_proj","v_proj","o_proj","gate_proj","up_proj","down_proj"]' \
  --set data.max_len=2048 --set train.micro_batch=1 --set train.grad_checkpointing=true
plan_mib=$(grep 'memory plan' <<<"$out" | grep -o '[0-9.]* MiB in all' | cut -d' ' -f1)
check "the 8B QLoRA plan (no device) exits 0 ($rc)" test $rc -eq 0
check "the 8B QLoRA plan fits 7.0 GiB (${plan_mib:-?} MiB)" awk -v p="${plan_mib:-1e9}" 'BEGIN {exit !(p <= 7168)}'

# vkft plan: the same plan for every shape, here for an 8 GiB card (--memory): the row of the
# dry run above must say the same size, every row fits or says it does not
run env VK_DRIVER_FILES=/nonexistent.json VK_ICD_FILENAMES=/nonexistent.json "$vkft" plan \
  --set model=tests/data/llama-3.1-8b --set data.train="$work/tokens.jsonl" --set lora.targets=all-linear \
  --set data.max_len=2048 --memory 8192 --json
check "vkft plan --memory exits 0 without a device ($rc)" test $rc -eq 0
echo "$out" >"$work/plan.jsonl"
verdicts=$(python3 - "$plan_mib" "$work/plan.jsonl" <<'PYEOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[2]) if l.startswith("{")]
def say(ok, what): print(("PASS " if ok else "FAIL ") + what)
say(len(rows) == 24, f"24 rows (6 lengths x checkpointing x base): {len(rows)}")
r = [x for x in rows if x["max_len"] == 2048 and x["grad_checkpointing"] and x["base"] == "nf4"]
say(len(r) == 1 and r[0]["micro_batch"] == 1 and abs(r[0]["mib"] - float(sys.argv[1])) < 0.05,
    f"2048, checkpointing, nf4: micro-batch 1 at the dry run's {sys.argv[1]} MiB ({r})")
say(all((x["micro_batch"] > 0 and x["mib"] <= 8192) or (x["micro_batch"] == 0 and x["mib_micro_batch_1"] > 8192)
        for x in rows), "each row fits 8192 MiB or says it does not")
say(all(x["micro_batch"] in (0, 256) or x["mib"] + x["micro_batch"] * x["mib_per_sequence"] > 8192 * 0.999
        for x in rows), "each micro-batch is the largest power of two that fits")
PYEOF
)
while read -r verdict what; do
  [ -n "$verdict" ] && check "plan: $what" test "$verdict" = PASS
done <<<"$verdicts"
run "$vkft" plan --config models/demo/zip_lora.json --memory lots
check "plan: a bad --memory is a usage error (exit $rc)" test $rc -eq $EXIT_USAGE

run "$vkft" train "${common[@]}" --set train.learning_rate=1
check "unknown key: exit 1 with a suggestion ($out)" test $rc -eq $EXIT_INPUT -a "$(grep -c 'did you mean' <<<"$out")" -eq 1
run "$vkft" train --config /nonexistent.json
check "missing config: one line, exit 1" test $rc -eq $EXIT_INPUT -a "$(wc -l <<<"$out")" -eq 1
run "$vkft" train "${common[@]}" --dry-run
check "dry run exits 0" test $rc -eq 0
check "dry run prints the memory plan" grep -q "memory plan: weights" <<<"$out"

finish
