#!/usr/bin/env bash
# Fuzzes every parser of user files with libFuzzer (clang's -fsanitize=fuzzer with
# AddressSanitizer and UBSan): safetensors, config.json and training configs (with --set),
# tokenizer.json, chat templates, dataset records of every format, preference records of every
# format, checkpoint manifests, the metrics.jsonl `vkft report` reads, GGUF models (metadata,
# tensors, the config and tokenizer read from them) and bitsandbytes 4-bit checkpoints.
# Seeds are the files vkft ships (and the shared data when present) plus tests/corpus/. A crash
# is copied to tests/corpus/<target>/ (ctest replays that folder in every build) and fails.
# Targets run side by side, one per core (FUZZ_JOBS, default nproc): each gets its SECONDS.
# Usage: scripts/fuzz.sh [SECONDS per target (default 60)] [TARGET ...]
# FUZZ_RUNS=N: a target also stops after N executions (the long runs that reach a count).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(safetensors config tokenizer chat_template dataset manifest report pref gguf bnb)
command -v clang >/dev/null || { echo "fuzz: clang is needed (apt-get install clang)"; exit 1; }
# (-O1 -g, as libFuzzer advises: 1.2-1.6x the executions per second of -O0 here)
CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_FLAGS_DEBUG="-g -O1" -DVKFT_FUZZ=ON -DVKFT_WERROR=ON >/dev/null
cmake --build build-fuzz -j"$(nproc)" --target "${targets[@]/#/fuzz_}" >/dev/null
data=${VKFT_TEST_DATA:-../shared/data}

# seed corpora: copies of shipped files, assembled fresh (build-fuzz is ignored by git)
seeds() {
  local t=$1 dir=build-fuzz/corpus/$t
  rm -rf "$dir" && mkdir -p "$dir"
  cp tests/corpus/$t/* "$dir"/ 2>/dev/null || true
  case $t in
  safetensors) head -c 4096 models/stories260K/model.safetensors >"$dir/stories.head" ;;
  config)
    cp models/stories260K/config.json "$dir/stories.json"
    cp models/demo/zip_lora.json "$dir/zip_lora.json"
    for f in "$data"/tokenizers/*/config.json; do
      if [ -f "$f" ]; then cp "$f" "$dir/$(basename "$(dirname "$f")").json"; fi
    done
    ;;
  tokenizer) cp models/stories260K/tokenizer.json "$dir/stories.json" ;;
  chat_template)
    for f in "$data"/tokenizers/chat_templates/*.jinja .deps/llama.cpp/models/templates/*.jinja; do
      if [ -f "$f" ]; then cp "$f" "$dir/"; fi
    done
    ;;
  dataset)
    { printf '\0'; head -20 models/demo/zip_stories.jsonl; } >"$dir/zip.jsonl"
    for f in "$data"/sft/*.json*; do
      if [ -f "$f" ]; then { printf '\0'; head -c 8000 "$f"; } >"$dir/$(basename "$f")"; fi
    done
    ;;
  # gguf, bnb: tests/corpus/ holds seeds written with vkft's own writers (a 5 KB Llama GGUF with
  # an SPM and one with a GPT-2 BPE vocabulary; NF4 double-quantized and FP4 plain weights)
  pref) # (tests/corpus/pref holds the demo's pairs)
    for f in "$data"/pref/*.json* "$data"/pref/pref_formats/*.json*; do
      if [ -f "$f" ]; then { printf '\0'; head -c 8000 "$f"; } >"$dir/$(basename "$f")"; fi
    done
    ;;
  esac
}

# one TARGET: fuzzes it, prints its line, saves its crashes; returns non-zero when it found any
fuzz_one() {
  local t=$1 log=build-fuzz/fuzz_$1.log rc tmp=/tmp
  seeds "$t"
  rm -rf build-fuzz/artifacts/$t && mkdir -p build-fuzz/artifacts/$t # this run's crashes only
  # the inputs reach path-based parsers through files: keep them in memory when possible
  [ -d /dev/shm ] && [ -w /dev/shm ] && tmp=/dev/shm
  set +e
  (cd build-fuzz && TMPDIR=$tmp ASAN_OPTIONS=detect_leaks=0 ./fuzz/fuzz_$t -max_total_time="$seconds" -runs="${FUZZ_RUNS:--1}" -timeout=20 \
    -rss_limit_mb=4096 -max_len=$(case $t in dataset | pref) echo 4096 ;; *) echo 65536 ;; esac) -print_final_stats=1 -artifact_prefix=artifacts/$t/ \
    corpus/$t) >"$log" 2>&1
  rc=$?
  set -e
  local execs rate crashes
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
  rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
  crashes=$(ls build-fuzz/artifacts/$t 2>/dev/null | wc -l)
  printf 'fuzz %-14s %9s execs %7s/s  %s crash(es)\n' "$t" "$execs" "$rate" "$crashes"
  if [ $rc -ne 0 ] || [ "$crashes" -gt 0 ]; then
    mkdir -p tests/corpus/$t
    cp build-fuzz/artifacts/$t/* tests/corpus/$t/ 2>/dev/null || true
    echo "fuzz $t: FAILED (exit $rc); inputs saved in tests/corpus/$t; the log: $log"
    grep -m5 -A8 "ERROR:\|runtime error" "$log" || true
    return 1
  fi
}

jobs=${FUZZ_JOBS:-$(nproc)}
status=0 running=0
for t in "${targets[@]}"; do
  if [ $running -ge "$jobs" ]; then
    wait -n || status=1
    running=$((running - 1))
  fi
  fuzz_one "$t" >"build-fuzz/result_$t" &
  running=$((running + 1))
done
while [ $running -gt 0 ]; do
  wait -n || status=1
  running=$((running - 1))
done
for t in "${targets[@]}"; do cat "build-fuzz/result_$t"; done
exit $status
