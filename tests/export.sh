#!/usr/bin/env bash
# vkft export checked by a real client: llama.cpp (node-llama-cpp's prebuilt CPU binaries,
# installed by scripts/setup.sh) loads the GGUF exports of the bundled stories260K and its
# greedy continuation equals vkft generate's; llama.cpp's tokenizer agrees with vkft's on the
# demo texts and the shared tokenizer vectors (stories260K, Llama 3, Mistral, Qwen3); a LoRA
# trained on the Zip demo gives vkft's text as a merged GGUF and as base GGUF + GGUF adapter;
# the merged Hugging Face folder reloads in vkft with the adapter's loss and text; Modelfiles;
# refusals. About 90 s (the LoRA training is most of it).
# Usage: tests/export.sh path/to/vkft path/to/test_export (run from the build folder).
# Prints "N passed, N failed"; exit 77 (skipped) when node or node-llama-cpp is missing.
set -u
vkft=$(realpath "$1")
helper=$(realpath "$2")
src=$(cd "$(dirname "$0")/.." && pwd)
shared=$(cd "$src/../shared/data" 2>/dev/null && pwd)
export NODE_LLAMA_CPP=${NODE_LLAMA_CPP:-${VKFT_NPM_DIR:-$src/.deps/npm}/node_modules}
if ! command -v node >/dev/null || [ ! -d "$NODE_LLAMA_CPP/node-llama-cpp" ]; then
  echo "export: skipped: node-llama-cpp is not installed in $NODE_LLAMA_CPP (run scripts/setup.sh)"
  [ "${CI:-}" = true ] && { echo "FAIL: CI=true must not skip the llama.cpp checks"; exit 1; }
  exit 77
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
passed=0
failed=0
check() {
  local what=$1
  shift
  if "$@"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAIL: $what"; fi
}
llama() { node "$src/tests/llama_check.mjs" "$@" 2>"$work/llama.err"; }
field() { node -e "const d = JSON.parse(require('fs').readFileSync(0, 'utf8')); console.log(d.$1)"; }
cd "$src"
prompt="Once upon a time,"

# 1. stories260K: every type loads; f32 and q8_0 continue exactly as vkft does (32 tokens)
want=$("$vkft" generate --model models/stories260K --prompt "$prompt" --max-new-tokens 32 2>"$work/gen.err" | tail -1)
check "vkft generate runs ($(tail -1 "$work/gen.err"))" test -n "$want"
for type in f32 q8_0 f16 bf16 q4_0 q4_k_m; do
  "$vkft" export --model models/stories260K --to gguf --type $type --out "$work/s-$type.gguf" >"$work/export.log" 2>&1
  check "export --type $type ($(tail -1 "$work/export.log"))" test -s "$work/s-$type.gguf"
  out=$(llama generate "$work/s-$type.gguf" "$prompt" 32)
  check "llama.cpp loads the $type GGUF ($(tail -1 "$work/llama.err"))" grep -q "^{\"text\":\"$prompt" <<<"$out"
  if [ $type = f32 ] || [ $type = q8_0 ]; then
    got=$(field text <<<"$out")
    check "$type: 32 greedy tokens in llama.cpp ($(field ids.length <<<"$out"))" test "$(field ids.length <<<"$out")" = 32
    check "$type: llama.cpp's greedy text equals vkft's ($got | $want)" test "$got" = "$want"
  fi
done
check "a Modelfile beside the GGUF" grep -qx "FROM ./s-q8_0.gguf" "$work/s-q8_0.Modelfile"

# 2. the tokenizers: llama.cpp's ids equal vkft's (text without BOS; special tokens in the text
# are tokens, as in Hugging Face)
tokens_agree() { # GGUF TOKENIZER_DIR JSONL [skip-filter]
  "$vkft" tokenize --tokenizer "$2" <"$3" >"$work/ids.vkft" 2>/dev/null
  llama tokenize "$1" "$3" >"$work/ids.llama"
  [ -s "$work/ids.vkft" ] && cmp -s "$work/ids.vkft" "$work/ids.llama"
}
node -e 'for (const l of require("fs").readFileSync(0, "utf8").split("\n").filter(Boolean)) {
  const d = JSON.parse(l); console.log(JSON.stringify({text: d.prompt + d.completion})); }' \
  <models/demo/zip_stories.jsonl >"$work/demo.jsonl"
check "tokenizer: the demo texts" tokens_agree "$work/s-f32.gguf" models/stories260K "$work/demo.jsonl"
# Qwen3: llama.cpp applies no NFC normalization, and it makes "</s>" a control token (its
# end-of-generation detection): texts where either matters are left out
vectors() { # NAME [qwen]
  node -e 'const skip = process.argv[1] === "qwen";
    for (const l of require("fs").readFileSync(0, "utf8").split("\n").filter(Boolean)) {
      const t = JSON.parse(l).text;
      if (skip && (t.normalize("NFC") !== t || t.includes("</s>"))) continue;
      console.log(JSON.stringify({text: t})); }' "${2:-}" <"$shared/vectors/$1.jsonl"
}
vectors stories260K >"$work/v.jsonl"
check "tokenizer: stories260K's $(wc -l <"$work/v.jsonl") vectors" tokens_agree "$work/s-f32.gguf" models/stories260K "$work/v.jsonl"
for t in llama3:LlamaForCausalLM mistral:MistralForCausalLM qwen3:Qwen3ForCausalLM; do
  name=${t%%:*}
  "$helper" --write-random "$work/tok-$name" "${t##*:}" "$shared/tokenizers/$name"
  "$vkft" export --model "$work/tok-$name" --to gguf --type f32 --out "$work/tok-$name.gguf" >"$work/export.log" 2>&1
  check "export with the $name tokenizer ($(tail -1 "$work/export.log"))" test -s "$work/tok-$name.gguf"
  vectors $name $([ $name = qwen3 ] && echo qwen) >"$work/v.jsonl"
  check "tokenizer: $name's $(wc -l <"$work/v.jsonl") vectors" tokens_agree "$work/tok-$name.gguf" "$work/tok-$name" "$work/v.jsonl"
done
check "a ChatML Modelfile for Qwen3" grep -q '^PARAMETER stop "<|im_end|>"' "$work/tok-qwen3.Modelfile"

# 3. a LoRA adapter trained on the Zip stories: merged GGUF, and base GGUF + GGUF adapter
"$vkft" train --config models/demo/zip_lora.json --skip-selftest --set train.max_steps=16 \
  --set output.dir="$work/zip" >"$work/train.log" 2>&1
check "train the Zip adapter ($(tail -1 "$work/train.log"))" test -s "$work/zip/adapter_model.safetensors"
want=$("$vkft" generate --model models/stories260K --adapter "$work/zip" --prompt "$prompt" --max-new-tokens 32 2>/dev/null | tail -1)
check "vkft with the adapter tells the Zip story ($want)" grep -q "Zip" <<<"$want"
"$vkft" export --model models/stories260K --adapter "$work/zip" --to gguf --type f32 --out "$work/zip.gguf" >/dev/null 2>&1
"$vkft" export --model models/stories260K --adapter "$work/zip" --to gguf-lora --out "$work/zip-lora.gguf" >/dev/null 2>&1
got=$(llama generate "$work/zip.gguf" "$prompt" 32 | field text)
check "merged GGUF: llama.cpp's greedy text equals vkft's ($got)" test "$got" = "$want"
got=$(llama generate "$work/s-f32.gguf" "$prompt" 32 "$work/zip-lora.gguf" | field text)
check "base GGUF + LoRA GGUF: llama.cpp's greedy text equals vkft's ($got)" test "$got" = "$want"
check "the LoRA Modelfile names the adapter" grep -qx "ADAPTER ./zip-lora.gguf" "$work/zip-lora.Modelfile"

# 4. the merged Hugging Face folder reloads in vkft: the adapter's loss and text
"$vkft" export --model models/stories260K --adapter "$work/zip" --to hf --out "$work/merged" >/dev/null 2>&1
check "merged folder written" test -s "$work/merged/model.safetensors" -a -s "$work/merged/tokenizer.json" -a -s "$work/merged/config.json"
a=$("$vkft" eval --model models/stories260K --adapter "$work/zip" --data models/demo/zip_stories.jsonl 2>/dev/null | tail -1)
b=$("$vkft" eval --model "$work/merged" --data models/demo/zip_stories.jsonl 2>/dev/null | tail -1)
loss() { sed 's/.*"loss": \([^,]*\),.*/\1/' <<<"$1"; }
# fp32 both ways, summation order aside: 1e-5 relative is well above rounding, far below the
# gap between the base's and the adapter's loss
check "merged folder's loss equals base + adapter ($b vs $a)" \
  awk -v x="$(loss "$a")" -v y="$(loss "$b")" 'BEGIN {d = x - y; if (d < 0) d = -d; exit !(x > 0 && d <= 1e-5 * x)}'
got=$("$vkft" generate --model "$work/merged" --prompt "$prompt" --max-new-tokens 32 2>/dev/null | tail -1)
check "merged folder's greedy text equals base + adapter's" test "$got" = "$want"

# 5. refusals: one line, exit 1
out=$("$vkft" export --model models/stories260K --to gguf-lora --out "$work/x.gguf" 2>&1); rc=$?
check "gguf-lora without an adapter: exit 1, one line ($out)" test $rc -eq 1 -a "$(wc -l <<<"$out")" -eq 1
out=$("$vkft" export --model "$work/nothing" --to gguf --out "$work/x.gguf" 2>&1); rc=$?
check "a missing model: exit 1, one line ($out)" test $rc -eq 1 -a "$(wc -l <<<"$out")" -eq 1
out=$("$vkft" export --model models/stories260K --to hf --type q4_k_m --out "$work/x" 2>&1); rc=$?
check "a quantized HF folder: exit 1 ($out)" test $rc -eq 1

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
