#!/usr/bin/env bash
# Command-line behaviour of the vkft binary: device listing, running from another folder
# (shaders are embedded), the no-driver error, bad arguments, selftest and the bench JSON.
# Usage: tests/cli.sh path/to/vkft. Prints "N passed, N failed" and fails if any check failed.
set -u
vkft=$(realpath "$1")
source "$(dirname "$0")/lib.sh"

run "$vkft" devices
check "devices exits 0" test $rc -eq 0
check "devices lists a device" grep -q "^device 0: " <<<"$out"
check "devices marks the chosen one" grep -q "vkft uses this one" <<<"$out"
check "devices shows maxStorageBufferRange" grep -q "maxStorageBufferRange [0-9]* [MG]iB" <<<"$out"
check "devices lists the matmul kernels" grep -q "^    matmul_register  *used" <<<"$out"
check "devices says why a kernel is absent" grep -q "^    matmul_coopmat_64  *\(absent  *[a-zA-Z]\|used\|available\)" <<<"$out"
run env VKFT_MATMUL=tiled_99 "$vkft" selftest
check "an unknown VKFT_MATMUL fails, naming it" grep -q "VKFT_MATMUL=tiled_99" <<<"$out"
check "an unknown VKFT_MATMUL: exit 1 (got $rc)" test $rc -eq 1
run env VKFT_MATMUL=tiled_64 "$vkft" selftest --filter matmul_nn
check "selftest with a forced GPU kernel passes" test $rc -eq 0
check "selftest names the kernel it checked" grep -q "^ok   matmul_nn .*\[matmul_tiled_64\]" <<<"$out"
run "$vkft" bench train --shape gpt-5
check "bench train --shape unknown: exit 2 (got $rc)" test $rc -eq 2
check "bench train --shape unknown: says so" grep -q 'no shape named "gpt-5"' <<<"$out"
run "$vkft" bench train --objective dpo --rows 3
check "bench train --objective with odd rows: exit 2 (got $rc)" test $rc -eq 2
# the random model goes to the working folder: a private one (about 3 s)
bench_dir=$(mktemp -d)
out=$(cd "$bench_dir" && "$vkft" bench train --objective dpo --rows 2 --seq 32 --methods lora \
  --no-baseline --steps 1 2>&1); rc=$?
rm -rf "$bench_dir"
check "bench train --objective dpo: exit 0 (got $rc)" test $rc -eq 0
check "bench train --objective dpo: its row" grep -q "^dpo-lora  *vulkan .* tokens/s" <<<"$out"
check "bench train --objective dpo: its cost ratio" grep -q "dpo step / SFT LoRA step .*x$" <<<"$out"

out=$(cd / && "$vkft" selftest 2>&1); rc=$?
check "selftest from / exits 0 ($out)" test $rc -eq 0
check "selftest prints per-op lines" grep -q "^ok   matmul_nt" <<<"$out"

# No driver visible: one line on stderr, the device exit status (not a crash).
out=$(VK_DRIVER_FILES=/nonexistent.json VK_ICD_FILENAMES=/nonexistent.json "$vkft" devices 2>&1 >/dev/null); rc=$?
check "no driver: exit $EXIT_DEVICE (got $rc)" test $rc -eq $EXIT_DEVICE
check "no driver: one line" test "$(wc -l <<<"$out")" -eq 1
check "no driver: says so ($out)" grep -q "no Vulkan driver found" <<<"$out"
run env VK_DRIVER_FILES=/nonexistent.json VK_ICD_FILENAMES=/nonexistent.json "$vkft" selftest
check "no driver selftest: exit $EXIT_DEVICE (got $rc)" test $rc -eq $EXIT_DEVICE

out=$("$vkft" devices --device 99 2>&1); rc=$?
check "missing device: exit 1" test $rc -eq 1
check "missing device: message" grep -q "device 99 does not exist" <<<"$out"
out=$("$vkft" frobnicate 2>&1); rc=$?
check "unknown command: exit 2" test $rc -eq 2
out=$("$vkft" 2>&1); rc=$?
check "no command: usage, exit 2" test $rc -eq 2

out=$("$vkft" bench ops --json --filter matmul_tn 2>&1); rc=$?
check "bench ops --json exits 0" test $rc -eq 0
line=$(grep '^{' <<<"$out" | head -1)
for key in op shape dtype ms gflops max_err tol ok; do
  check "bench JSON has \"$key\" ($line)" grep -q "\"$key\": " <<<"$line"
done
check "bench JSON ok is true" grep -q '"ok": true' <<<"$line"

out=$("$vkft" selftest --profile 2>&1); rc=$?
check "selftest --profile exits 0" test $rc -eq 0

# tokenize: encode/decode round trip, and --chat against a rendered vector of the shared data
out=$(echo '{"text": "Once upon a time"}' | "$vkft" tokenize --tokenizer "$src/models/stories260K")
check "tokenize encodes ($out)" grep -q '^{"ids":\[[0-9,]*\]}$' <<<"$out"
back=$("$vkft" tokenize --tokenizer "$src/models/stories260K" --decode <<<"$out")
check "tokenize decodes back ($back)" test "$back" = '{"text":"Once upon a time"}'
vectors="$test_data/vectors/qwen3.chat.jsonl"
if need_data "cli: tokenize --chat against the qwen3 vectors"; then
  want=$(head -1 "$vectors" | grep -o '"ids": *\[[^]]*\]' | tr -d ' ' | sed 's/"ids"://')
  got=$(head -1 "$vectors" | "$vkft" tokenize --tokenizer "$test_data/tokenizers/qwen3" --chat |
    grep -o '"ids":\[[^]]*\]' | sed 's/"ids"://')
  check "tokenize --chat gives the reference ids" test -n "$want" -a "$want" = "$got"
fi
out=$(echo '{"text": 5}' | "$vkft" tokenize --tokenizer "$src/models/stories260K" 2>&1); rc=$?
check "tokenize: bad line is one error naming the line ($out)" test $rc -eq 1 -a "$(grep -c 'stdin line 1' <<<"$out")" -eq 1

# data tools on the bundled demo data
tmp=$(mktemp -d)
out=$("$vkft" data prepare --model "$src/models/stories260K" --data "$src/models/demo/zip_stories.jsonl" --out "$tmp/p.jsonl" 2>&1); rc=$?
check "data prepare exits 0 ($out)" test $rc -eq 0
check "data prepare: one line per record" test "$(wc -l <"$tmp/p.jsonl")" -eq 64
check "data prepare: ids and labels, prompt masked" grep -q '^{"input_ids": \[1, [0-9, ]*\], "labels": \[-100, -100, ' "$tmp/p.jsonl"
out=$("$vkft" data stats --model "$src/models/stories260K" --data "$src/models/demo/zip_stories.jsonl" --json 2>&1)
check "data stats --json" grep -q '"records":64' <<<"$out"
out=$("$vkft" data preview --model "$src/models/stories260K" --data "$src/models/demo/zip_stories.jsonl" --count 1 2>&1)
check "data preview brackets the trained text" grep -q '\[\[there was a little robot named Zip' <<<"$out"
echo '{"instruction": "x"' >"$tmp/bad.json"
out=$("$vkft" data stats --model "$src/models/stories260K" --data "$tmp/bad.json" 2>&1); rc=$?
check "data: a file that is not JSON is one error, exit 1 ($out)" test $rc -ne 0 -a "$(grep -c bad.json <<<"$out")" -ge 1
rm -rf "$tmp"

finish
