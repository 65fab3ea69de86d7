#!/usr/bin/env bash
# scripts/gpu-check.sh RESULTS_DIR: one short, time-bounded measurement of vkft on a GPU, with
# PyTorch + PEFT on the same GPU in the same run for comparison (docs/GPU.md says how to run it in
# a device session). It writes into RESULTS_DIR:
#   devices.txt      `vkft devices`: the device, its cooperative-matrix shapes, the kernels chosen
#   selftest.txt     `vkft selftest`: every kernel the device uses against the C reference
#   optests.txt      `vkft selftest --full`: the whole op test table on the device
#   bench_ops.jsonl  `vkft bench ops --json`
#   bench_ops_large.jsonl  `vkft bench ops --json --large` once per matmul kernel the device uses
#   bench_attention.jsonl  the attention rows of `vkft bench ops --json` once per attention kernel
#   train.jsonl      `vkft bench train --json` per model shape: LoRA on the bf16 base, QLoRA nf4
#   torch.jsonl      scripts/gpu_check_torch.py: PyTorch's bf16 matmul ceiling and the same LoRA
#                    steps with transformers + PEFT (bf16, SDPA attention)
#   results.json     all of it side by side, with the ratios the goals are stated in
#   log.txt          what ran, for how long, and every command's exit status
# Every phase has a time limit and the whole a budget, so the run ends even when one hangs.
# Environment (defaults for the H200 in brackets):
#   VKFT                 the vkft binary [build-portable/vkft, else build/vkft]
#   GPU_CHECK_SHAPES     model shapes for bench train [qwen2.5-0.5b,llama-3.2-1b,llama-3.1-8b]
#   GPU_CHECK_ROWS, GPU_CHECK_SEQ, GPU_CHECK_STEPS   tokens per step and timed steps [4, 1024, 5]
#   GPU_CHECK_BUDGET_S   seconds for everything [480]
#   GPU_CHECK_QUICK=1    a CPU driver (lavapipe): one matmul row (dYᵀ·X 1024³), no --large, no
#                        --full, no attention rows (the script's test, not a measurement)
#   GPU_CHECK_TORCH=0    skip the PyTorch side
set -uo pipefail
if [ $# -ne 1 ]; then
  echo "usage: scripts/gpu-check.sh RESULTS_DIR" >&2
  exit 2
fi
root=$(cd "$(dirname "$0")/.." && pwd)
out=$1
mkdir -p "$out" || exit 1
out=$(cd "$out" && pwd)
vkft=${VKFT:-}
if [ -z "$vkft" ]; then
  vkft=$root/build-portable/vkft
  [ -x "$vkft" ] || vkft=$root/build/vkft
fi
shapes=${GPU_CHECK_SHAPES:-qwen2.5-0.5b,llama-3.2-1b,llama-3.1-8b}
rows=${GPU_CHECK_ROWS:-4}
seq=${GPU_CHECK_SEQ:-1024}
steps=${GPU_CHECK_STEPS:-5}
budget=${GPU_CHECK_BUDGET_S:-480}
quick=${GPU_CHECK_QUICK:-0}
started=$(date +%s)
: >"$out/log.txt"
log() { echo "gpu-check: $*" | tee -a "$out/log.txt" >&2; }

# On the device machine: the Vulkan loader comes as Debian packages carried in .gl/ (nothing can
# be installed there) and the NVIDIA driver's ICD file is not where the loader looks.
if ! ldconfig -p 2>/dev/null | grep -q libvulkan.so.1 && ls "$root"/.gl/*.deb >/dev/null 2>&1; then
  log "unpacking the Vulkan loader from .gl/"
  for f in "$root"/.gl/*.deb; do dpkg -x "$f" /; done
  ldconfig
fi
nvidia_icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
if [ -z "${VK_DRIVER_FILES:-}" ] && [ -f "$nvidia_icd" ]; then
  export VK_DRIVER_FILES=$nvidia_icd
fi
export VKFT_PIPELINE_CACHE=${VKFT_PIPELINE_CACHE:-${TMPDIR:-/tmp}/vkft-gpu-check-pipelines.bin}

# phase NAME LIMIT_S OUTPUT COMMAND...: runs within min(LIMIT_S, what is left of the budget)
phase() {
  local name=$1 limit=$2 file=$3 left rc t0
  shift 3
  left=$((budget - ($(date +%s) - started)))
  [ "$limit" -gt "$left" ] && limit=$left
  if [ "$limit" -le 5 ]; then
    log "$name: skipped (the budget of ${budget} s is spent)"
    return 0
  fi
  t0=$(date +%s)
  timeout --kill-after=10 "$limit" "$@" >>"$file" 2>>"$out/log.txt"
  rc=$?
  log "$name: exit $rc after $(($(date +%s) - t0)) s (limit ${limit} s)"
  return 0
}

log "vkft: $vkft; shapes $shapes, $rows x $seq tokens, $steps steps, budget ${budget} s"
phase devices 60 "$out/devices.txt" "$vkft" devices
phase selftest 120 "$out/selftest.txt" "$vkft" selftest
if [ "$quick" = 1 ]; then
  phase bench-ops 120 "$out/bench_ops.jsonl" "$vkft" bench ops --json --filter matmul_tn
else
  phase op-tests 150 "$out/optests.txt" "$vkft" selftest --full
  phase bench-ops 150 "$out/bench_ops.jsonl" "$vkft" bench ops --json
  # the GPU-sized matmuls once per kernel the device uses, that kernel forced
  for k in $(sed -n 's/^ *matmul_\([a-z_0-9]*\) *used .*/\1/p' "$out/devices.txt" | sort -u); do
    [ "$k" = register ] && continue
    phase "bench-ops-large $k" 90 "$out/bench_ops_large.jsonl" bash -c \
      'VKFT_MATMUL=$1 "$2" bench ops --json --large | sed "s/\"kernel\": \"auto\"/\"kernel\": \"$1\"/"' \
      _ "$k" "$vkft"
  done
  # the attention rows once per attention kernel (the flat one, for CPU drivers, as a baseline)
  for k in $(sed -n 's/^ *attention_\([a-z]*\) *\(used\|available\) .*/\1/p' "$out/devices.txt"); do
    phase "bench-attention $k" 60 "$out/bench_attention.jsonl" bash -c \
      'VKFT_ATTENTION=$1 "$2" bench ops --json --filter attention | sed "s/\"kernel\": \"auto\"/\"kernel\": \"$1\"/"' \
      _ "$k" "$vkft"
  done
fi
IFS=, read -r -a shape_list <<<"$shapes"
for s in "${shape_list[@]}"; do
  phase "bench-train $s" 240 "$out/train.jsonl" "$vkft" bench train --json --no-baseline \
    --shape "$s" --rows "$rows" --seq "$seq" --steps "$steps" --methods lora,qlora --quant nf4
done
if [ "${GPU_CHECK_TORCH:-1}" != 0 ] && command -v python3 >/dev/null; then
  phase torch 240 "$out/torch.jsonl" python3 "$root/scripts/gpu_check_torch.py" --shapes "$shapes" \
    --rows "$rows" --seq "$seq" --steps "$steps"
fi

# results.json: every JSON line, and the ratios of the goals (docs/GPU.md)
python3 - "$out" "$budget" "$(($(date +%s) - started))" <<'EOF'
import glob, json, os, sys
out, budget, elapsed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])

def lines(pattern):
    rows = []
    for path in sorted(glob.glob(os.path.join(out, pattern))):
        for line in open(path, errors="replace"):
            line = line.strip()
            if line.startswith("{"):
                try:
                    row = json.loads(line)
                except ValueError:
                    continue
                rows.append(row)
    return rows

def text(name):
    path = os.path.join(out, name)
    return open(path, errors="replace").read() if os.path.exists(path) else ""

devices = text("devices.txt")
ops = lines("bench_ops.jsonl")
large = lines("bench_ops_large.jsonl")
train = lines("train.jsonl")
torch = lines("torch.jsonl")
attention = {}  # "op shape" -> GFLOP/s per attention kernel
for r in lines("bench_attention.jsonl"):
    if r.get("ok"):
        attention.setdefault(f'{r["op"]} {r["shape"]}', {})[r.get("kernel", "auto")] = r["gflops"]
ceiling = next((r["tflops"] for r in torch if r.get("bench") == "matmul"), None)
best = {}
for r in large + ops:
    if r.get("op", "").startswith("matmul") and r.get("ok"):
        key = f'{r["op"]} {r["dtype"]} {r["shape"]}'
        tf = r["gflops"] / 1e3
        if tf > best.get(key, {}).get("tflops", -1):
            best[key] = {"tflops": round(tf, 3), "kernel": r.get("kernel", "auto")}
bf16 = max((v["tflops"] for k, v in best.items() if " bf16 " in k), default=None)
compare = []
for s in sorted({r.get("shape") for r in train + torch if r.get("bench") == "train"}):
    v = next((r for r in train if r.get("shape") == s and r.get("method") == "lora"), {})
    q = next((r for r in train if r.get("shape") == s and r.get("method", "").startswith("qlora")), {})
    t = next((r for r in torch if r.get("shape") == s and "tokens_per_s" in r), {})
    row = {"shape": s, "vkft_lora_tokens_per_s": v.get("tokens_per_s"),
           "vkft_qlora_nf4_tokens_per_s": q.get("tokens_per_s"),
           "torch_lora_tokens_per_s": t.get("tokens_per_s"),
           "vkft_lora_mib": v.get("device_mib"), "vkft_qlora_mib": q.get("device_mib"),
           "torch_lora_peak_mib": t.get("device_mib"),
           "vkft_lora_tflops": v.get("tflops"), "torch_lora_tflops": t.get("tflops")}
    if v.get("tokens_per_s") and t.get("tokens_per_s"):
        row["tokens_per_s_ratio"] = round(v["tokens_per_s"] / t["tokens_per_s"], 3)
    if v.get("device_mib") and t.get("device_mib"):
        row["memory_ratio"] = round(v["device_mib"] / t["device_mib"], 3)
    compare.append(row)
selftest = text("selftest.txt")
summary = {
    "elapsed_s": elapsed, "budget_s": budget,
    "device": next((l.split(": ", 1)[1].split("   <-")[0] for l in devices.splitlines()
                    if "<- vkft uses this one" in l), None),
    "selftest": next((l for l in selftest.splitlines() if "op cases passed" in l), None),
    "kernels_disabled": [l.split()[0] for l in selftest.splitlines() if "failed the self-check" in l],
    "optests": next((l for l in text("optests.txt").splitlines() if "op cases passed" in l), None),
    "matmul_best_tflops": best,
    "matmul_bf16_best_tflops": bf16,
    "torch_bf16_matmul_tflops": ceiling,
    "matmul_ratio_to_torch": round(bf16 / ceiling, 3) if bf16 and ceiling else None,
    "train": compare,
    "attention_gflops": attention,
    "goals": "matmul >= 0.40 of torch bf16; LoRA tokens/s >= 0.50 of torch+PEFT on 1B and 8B; "
             "device memory <= torch's peak",
    "raw": {"bench_ops": ops, "bench_ops_large": large, "train": train, "torch": torch},
}
with open(os.path.join(out, "results.json"), "w") as f:
    json.dump(summary, f, indent=1)
print(json.dumps({k: summary[k] for k in ("device", "selftest", "kernels_disabled",
                                          "matmul_bf16_best_tflops", "torch_bf16_matmul_tflops",
                                          "matmul_ratio_to_torch", "attention_gflops", "train",
                                          "elapsed_s")}, indent=1))
EOF
