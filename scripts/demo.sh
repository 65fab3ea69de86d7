#!/usr/bin/env bash
# The README's first command: set up, build, check the device, and fine-tune the bundled
# stories260K model with LoRA on stories about a new character (Zip the robot), showing the
# model's own story before and after.
set -euo pipefail
cd "$(dirname "$0")/.."
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
