#!/usr/bin/env bash
# The README's first command: set up, build, check the device, and fine-tune the bundled
# stories260K model with LoRA on stories about a new character (Zip the robot), showing the
# model's own story before and after. --dpo / --orpo: preference training on 48 pairs about Zip
# instead (models/demo/zip_dpo.yaml, zip_orpo.yaml), showing the reward margin and the stories.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=sft
case "${1:-}" in
  "") ;;
  --dpo) mode=dpo ;;
  --orpo) mode=orpo ;;
  *) echo "usage: scripts/demo.sh [--dpo | --orpo]" >&2; exit 2 ;;
esac
bash scripts/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)"
vkft=build/vkft
echo
echo "== vkft devices"
$vkft devices
echo
echo "== vkft selftest (every op on the device against the C reference)"
$vkft selftest
prompt="Once upon a time,"
if [ "$mode" != sft ]; then
  prompts=("Once upon a time," "One day," "Tell a story about a robot.")
  echo
  echo "== before: the base model continues each prompt (greedy)"
  for p in "${prompts[@]}"; do $vkft generate --model models/stories260K --prompt "$p" --max-new-tokens 40; done
  echo
  echo "== ${mode^^} with LoRA on models/demo/zip_pref.jsonl (config models/demo/zip_$mode.yaml)"
  rm -rf "out/zip-$mode"
  $vkft train --config "models/demo/zip_$mode.yaml" --skip-selftest
  echo
  echo "== the reward margin (chosen - rejected) per step, and on the held-out pairs"
  grep -o '"step": [0-9]*, "loss"\|"rewards/margins": [-0-9.e+]*' "out/zip-$mode/metrics.jsonl" |
    paste -d' ' - - | awk '{printf "step %3d  margin %9.4f\n", $2, $5}' | sed -n '1p;2p;3p;$p'
  grep -o '"eval_rewards/accuracies": [0-9.e+-]*\|"eval_rewards/margins": [-0-9.e+]*' "out/zip-$mode/metrics.jsonl" | tr '\n' ' '
  echo
  echo
  echo "== after: the same prompts with the trained adapter (out/zip-$mode, PEFT format)"
  for p in "${prompts[@]}"; do $vkft generate --model models/stories260K --adapter "out/zip-$mode" --prompt "$p" --max-new-tokens 40; done
  exit 0
fi
echo
echo "== before: the base model continues \"$prompt\" (greedy)"
$vkft generate --model models/stories260K --prompt "$prompt" --max-new-tokens 60
echo
echo "== fine-tuning: LoRA on models/demo/zip_stories.jsonl (config models/demo/zip_lora.json)"
rm -rf out/zip-lora
$vkft train --config models/demo/zip_lora.json --skip-selftest
echo
echo "== after: the same prompt with the trained adapter (out/zip-lora, PEFT format)"
$vkft generate --model models/stories260K --adapter out/zip-lora --prompt "$prompt" --max-new-tokens 60
echo
echo "== loss on the stories before and after"
echo -n "base:    "; $vkft eval --model models/stories260K --data models/demo/zip_stories.jsonl | tail -1
echo -n "adapter: "; $vkft eval --model models/stories260K --adapter out/zip-lora --data models/demo/zip_stories.jsonl | tail -1
