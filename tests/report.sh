#!/usr/bin/env bash
# report.html in a real browser (Debian's chromium, headless): `vkft report` on made-up output
# folders — an SFT run with evals and a checkpoint, a preference (DPO/ORPO) run with NaN values
# and a broken line, one step, 100k steps — then the rendered DOM is checked against the metrics
# (every point of the loss curve, the eval points, the tooltip a "#hover=" URL opens, the
# clipping count, the configuration table) and screenshots are taken (kept in
# $VKFT_REPORT_SHOTS when set). Also the command's errors and a folder a run holds.
# Usage: tests/report.sh path/to/vkft. Prints "N passed, N failed".
set -u
vkft=$(realpath "$1")
source "$(dirname "$0")/lib.sh"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
shots=${VKFT_REPORT_SHOTS:-$work}
mkdir -p "$shots"

# ---- the command's errors
run "$vkft" report
check "no folder: usage, exit 2 (got $rc)" test $rc -eq $EXIT_USAGE
run "$vkft" report "$work/none"
check "a missing folder: exit 1 naming it ($out)" \
  bash -c '[ '$rc' -eq '$EXIT_INPUT' ] && grep -q "none: not a folder" <<<"$1"' _ "$out"
mkdir -p "$work/empty"
run "$vkft" report "$work/empty"
check "a folder without metrics.jsonl: exit 1 ($out)" \
  bash -c '[ '$rc' -eq '$EXIT_INPUT' ] && grep -q "no metrics.jsonl" <<<"$1"' _ "$out"

# ---- made-up runs
python3 - "$work" <<'EOF'
import json, math, os, random, sys
work = sys.argv[1]
random.seed(7)

def write(folder, lines):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "metrics.jsonl"), "w") as f:
        for line in lines:
            f.write(line if isinstance(line, str) else json.dumps(line))
            f.write("\n")

# SFT: 300 steps of a 400-step plan, an eval every 50 steps, a checkpoint with the config
sft, elapsed = [], 0.0
for step in range(1, 301):
    elapsed += 0.9 + random.random() * 0.2
    sft.append({"step": step, "loss": round(2.2 * math.exp(-step / 80) + 0.4 + random.gauss(0, 0.08), 6),
                "lr": 2e-4 * min(1, step / 20), "grad_norm": round(0.6 + random.random() * 0.8, 6),
                "tokens": 4096, "trained_tokens": random.randint(3000, 4000),
                "tokens_per_s": round(4000 + random.gauss(0, 150), 1), "elapsed_s": round(elapsed, 3)})
    if step % 50 == 0:
        sft.append({"step": step, "eval_loss": round(2.2 * math.exp(-step / 80) + 0.45, 6), "eval_tokens": 5000})
write(f"{work}/sft", sft)
os.makedirs(f"{work}/sft/checkpoint-300")
config = {"model": "models/stories260K", "method": "lora",
          "lora": {"r": 16, "alpha": 32, "targets": ["q_proj", "v_proj"]},
          "data": {"train": [{"path": "train.jsonl", "weight": 1}]},
          "train": {"lr": 0.0002, "max_grad_norm": 1.0, "schedule": "cosine"},
          "output": {"dir": f"{work}/sft"}}
json.dump({"step": 300, "total_steps": 400, "config": config},
          open(f"{work}/sft/checkpoint-300/trainer_state.json", "w"))

# DPO/ORPO as TRL names its metrics, with Python's NaN, a broken line and a key of its own
dpo = []
for step in range(1, 121):
    m = 0.05 * step ** 0.5
    dpo.append({"step": step, "loss": 0.69 - 0.3 * (1 - math.exp(-step / 40)),
                "rewards/chosen": m + random.gauss(0, 0.05), "rewards/rejected": -m + random.gauss(0, 0.05),
                "rewards/accuracies": min(1, 0.5 + step / 200), "rewards/margins": 2 * m,
                "logps/chosen": -80 + step * 0.1, "logps/rejected": -90 - step * 0.1,
                "nll_loss": 2.0 - step / 200, "log_odds_ratio": -0.7 + step / 300,
                "log_odds_chosen": step / 100, "beta_kl": float("nan") if step % 30 == 0 else 0.01 * step})
    if step % 40 == 0:
        dpo.append({"step": step, "eval_loss": 0.6, "eval_rewards/chosen": m, "eval_rewards/rejected": -m})
dpo.insert(10, '{"step": 11, "loss": 0.6')  # cut short, as by a crash
write(f"{work}/dpo", [json.dumps(x, allow_nan=True) if not isinstance(x, str) else x for x in dpo])

write(f"{work}/one", [{"step": 1, "loss": 3.2, "lr": 0.0, "grad_norm": 4.0}])

with open(f"{work}/long.jsonl", "w") as f:
    for step in range(1, 100001):
        f.write('{"step": %d, "loss": %.5f, "lr": 0.0002, "grad_norm": %.4f, "tokens_per_s": 9000}\n'
                % (step, 1.5 + math.sin(step / 500) * 0.3 + (step % 7) * 0.01, 0.5 + (step % 13) * 0.1))
os.makedirs(f"{work}/long")
os.rename(f"{work}/long.jsonl", f"{work}/long/metrics.jsonl")
EOF

run "$vkft" report "$work/sft"
check "vkft report: exit 0 ($out)" test $rc -eq 0
check "vkft report: the page is written" test -s "$work/sft/report.html"
spark=$(grep '^loss ' <<<"$out")
cells=$(python3 -c 'import sys; print(sum(0x2581 <= ord(c) <= 0x2588 for c in sys.argv[1]))' "$spark")
check "the loss sparkline has 50 cells ($spark)" test "$cells" = 50
check "the loss line ends with the steps and the last eval ($spark)" \
  grep -q "(300 steps; eval [0-9.]* at step 300)$" <<<"$spark"

# a folder a run holds: the page is the run's to write; the sparkline still prints
before=$(cksum <"$work/sft/report.html")
(flock "$work/sft/.vkft.lock" bash -c "touch '$work/held'; sleep 4") &
holder=$!
for _ in $(seq 50); do [ -e "$work/held" ] && break; sleep 0.1; done
run "$vkft" report "$work/sft"
check "a folder in use: exit 0, left to the run ($out)" \
  bash -c '[ '$rc' -eq 0 ] && grep -q "a run is training here" <<<"$1" && grep -q "^loss " <<<"$1"' _ "$out"
check "a folder in use: report.html untouched" test "$before" = "$(cksum <"$work/sft/report.html")"
wait $holder

for r in dpo one; do
  run "$vkft" report "$work/$r"
  check "vkft report $r: exit 0 ($out)" test $rc -eq 0
done
t0=$(date +%s.%N)
run "$vkft" report "$work/long"
seconds=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.2f", b - a}')
echo "vkft report on 100000 steps: $seconds s, $(stat -c %s "$work/long/report.html") bytes"
# (0.3 s in a Release build, about 2 s under the sanitizers)
check "100k steps: exit 0 in under 10 s ($seconds s)" awk -v rc=$rc -v s="$seconds" 'BEGIN {exit !(rc == 0 && s < 10)}'

# ---- in the browser
if ! need_browser; then
  finish
  exit
fi
t0=$(date +%s.%N)
for r in sft dpo one long; do
  browser --dump-dom "file://$work/$r/report.html#hover=loss:150" >"$work/$r.dom"
done
for r in sft dpo; do # what people see (look at them: VKFT_REPORT_SHOTS=DIR)
  browser --screenshot="$shots/report-$r.png" --window-size=1200,1600 "file://$work/$r/report.html#hover=loss:150"
  check "$r: a screenshot ($(stat -c %s "$shots/report-$r.png" 2>/dev/null) bytes)" \
    bash -c "[ \$(stat -c %s '$shots/report-$r.png') -gt 20000 ]"
done
echo "chromium: $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}') s (4 DOMs, 2 screenshots)"

# The DOM against the metrics: one "PASS what" or "FAIL what" line per check.
verdicts=$(python3 - "$work" <<'EOF'
import html, json, re, sys
work = sys.argv[1]

def say(ok, what):
    print(("PASS " if ok else "FAIL ") + what)

def figure(dom, chart):
    m = re.search(r'<figure class="chart" id="chart-%s">(.*?)</figure>' % re.escape(chart), dom, re.S)
    return m.group(1) if m else ""

def data(fig):
    m = re.search(r'<script type="application/json" class="chart-data">(.*?)</script>', fig, re.S)
    return json.loads(m.group(1)) if m else {"lines": []}

def line(d, name):
    return next((l for l in d["lines"] if l["name"] == name), None)

def close(a, b):
    return a is not None and abs(a - b) <= 1e-6 * max(1, abs(b))

def js(v):  # the tooltip's String(+v.toPrecision(5))
    s = repr(float("%.5g" % v))
    return s[:-2] if s.endswith(".0") else s

for run in ["sft", "dpo", "one", "long"]:
    dom = open(f"{work}/{run}.dom").read()
    say('data-js="ok"' in dom, f"{run}: the script ran")
    say('data-error="' not in dom, f"{run}: every chart's script set up")
    say("<svg" in figure(dom, "loss"), f"{run}: a loss chart")

dom = open(f"{work}/sft.dom").read()
rows = [json.loads(l) for l in open(f"{work}/sft/metrics.jsonl")]
steps = [r for r in rows if "loss" in r]
evals = [r for r in rows if "eval_loss" in r]
for chart in ["loss", "lr", "grad_norm", "throughput", "tokens"]:
    say(figure(dom, chart) != "", f"sft: chart {chart}")
loss = figure(dom, "loss")
say('class="raw"' in loss and 'class="smooth"' in loss and 'class="line eval"' in loss,
    "sft: raw, smoothed and eval curves drawn")
legend = re.search(r'<div class="legend">(.*?)</div>', loss, re.S)
say(legend and ">loss</span>" in legend.group(1) and ">eval_loss</span>" in legend.group(1),
    "sft: the legend names loss and eval_loss")
d = data(loss)
train, ev = line(d, "loss"), line(d, "eval_loss")
say(train and train["x"] == [r["step"] for r in steps], "sft: the loss curve has every step")
say(train and all(close(a, r["loss"]) for a, r in zip(train["y"], steps)), "sft: every loss value matches metrics.jsonl")
say(ev and ev["x"] == [r["step"] for r in evals] and all(close(a, r["eval_loss"]) for a, r in zip(ev["y"], evals)),
    "sft: the eval points match metrics.jsonl")
tip = re.search(r'<div class="tip"[^>]*>(.*?)</div></div>', loss, re.S)
at150 = next(r for r in steps if r["step"] == 150)
text = html.unescape(re.sub(r"<[^>]+>", " ", tip.group(1))) if tip else ""
say(tip and "step 150" in text and js(at150["loss"]) in text,
    f"sft: the tooltip at step 150 shows loss {js(at150['loss'])} ({text.strip()[:80]})")
clipped = sum(r["grad_norm"] > 1.0 for r in steps)
say(f"clipped at {clipped} of 300 steps" in figure(dom, "grad_norm"), f"sft: {clipped} clipped steps marked")
say(f"{clipped} of 300 steps had a gradient norm above 1" in dom, "sft: the clipping card counts them")
tokens = line(data(figure(dom, "tokens")), "trained_tokens")
say(tokens and close(tokens["y"][-1], sum(r["trained_tokens"] for r in steps)), "sft: cumulative trained tokens")
say("<th>max_grad_norm</th><td>1</td>" in dom and "<th>lr</th><td>0.0002</td>" in dom
    and "q_proj, v_proj" in dom, "sft: the configuration table (from the checkpoint)")
say("of 400 planned" in dom and "stories260K (lora)" in dom, "sft: the plan and title")

dom = open(f"{work}/dpo.dom").read()
for chart, name in [("rewards", "rewards/chosen"), ("rewards", "eval_rewards/rejected"),
                    ("accuracies", "rewards/accuracies"), ("margins", "rewards/margins"),
                    ("logps", "logps/rejected"), ("nll_loss", "nll_loss"), ("log_odds", "log_odds_ratio")]:
    say(line(data(figure(dom, chart)), name) is not None, f"dpo: {name} on the {chart} chart")
say(re.search(r'<span class="title">beta_kl</span>', dom) is not None, "dpo: a chart for an unknown key")
kl = next((l for l in data(re.search(r'(<span class="title">beta_kl</span>.*?)</figure>', dom, re.S).group(1))["lines"]), None) \
    if "beta_kl" in dom else None
say(kl and kl["y"][29] is None and kl["y"][28] is not None, "dpo: NaN is a gap (null), not a number")
say("1 line of metrics.jsonl is not a JSON object" in dom, "dpo: the broken line is reported")
say('<g class="pts"' in figure(open(f"{work}/one.dom").read(), "loss"), "one: the single step is a marker")
EOF
)
while read -r verdict what; do
  [ -n "$verdict" ] && check "$what" test "$verdict" = PASS
done <<<"$verdicts"
finish
