#!/usr/bin/env bash
# Generation throughput of vkft's batched engine beside llama.cpp (node-llama-cpp's prebuilt CPU
# build, installed by `scripts/setup.sh test`) on the same model, prompt and machine: batch 1
# and 32, greedy, N new tokens per sequence, generated tokens per second and the ratio.
# Models: the bundled stories260K (per-step overheads dominate) and, with --mid, a random
# Llama-shaped model of ~50M parameters (bf16; C=512, L=8, F=1536, the stories tokenizer) where
# the arithmetic does. Each model is exported with `vkft export --to gguf` (f32 for stories260K
# as stored, bf16 for the random one), so both programs read the same weights.
# Usage: scripts/bench_generate.sh BUILD_DIR [--mid] [--new-tokens N] [--threads T]
set -eu
build=$(realpath "$1")
shift
vkft=$build/vkft
src=$(cd "$(dirname "$0")/.." && pwd)
export NODE_LLAMA_CPP=${NODE_LLAMA_CPP:-${VKFT_NPM_DIR:-$src/.deps/npm}/node_modules}
mid=0 new=128 threads=0
while [ $# -gt 0 ]; do
  case $1 in
    --mid) mid=1 ;;
    --new-tokens) new=$2; shift ;;
    --threads) threads=$2; shift ;;
    *) echo "usage: $0 BUILD_DIR [--mid] [--new-tokens N] [--threads T]" >&2; exit 2 ;;
  esac
  shift
done
[ -d "$NODE_LLAMA_CPP/node-llama-cpp" ] || { echo "node-llama-cpp is not in $NODE_LLAMA_CPP (scripts/setup.sh test)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
prompt="Once upon a time,"

models=("$src/models/stories260K:f32")
if [ $mid = 1 ]; then
  cat >"$work/mid.json" <<'EOF'
{"architectures": ["LlamaForCausalLM"], "vocab_size": 512, "hidden_size": 512,
 "intermediate_size": 1536, "num_hidden_layers": 8, "num_attention_heads": 8,
 "num_key_value_heads": 4, "max_position_embeddings": 1024, "rms_norm_eps": 1e-5,
 "rope_theta": 10000.0, "tie_word_embeddings": false, "torch_dtype": "bfloat16"}
EOF
  "$build/tests/test_export" --write-random "$work/mid" "$work/mid.json" "$src/models/stories260K" >/dev/null
  models+=("$work/mid:bf16")
fi

printf "%-12s %6s %14s %14s %8s\n" model batch "vkft tok/s" "llama.cpp tok/s" ratio
for entry in "${models[@]}"; do
  dir=${entry%%:*} type=${entry##*:}
  name=$(basename "$dir")
  "$vkft" export --model "$dir" --to gguf --type "$type" --out "$work/$name.gguf" >/dev/null
  "$vkft" bench generate --model "$dir" --batch 1,32 --new-tokens "$new" --prompt "$prompt" --json >"$work/vkft.json"
  for b in 1 32; do
    v=$(grep "\"batch\": $b," "$work/vkft.json" | grep -o '"tokens_per_s": [0-9.]*' | cut -d' ' -f2)
    l=$(node "$src/tests/llama_bench.mjs" "$work/$name.gguf" "$prompt" "$new" "$b" "$threads" | grep -o '"tokens_per_s":[0-9.]*' | cut -d: -f2)
    printf "%-12s %6d %14.1f %14.1f %8.2f\n" "$name" "$b" "$v" "$l" "$(echo "$v / $l" | bc -l)"
  done
done
