#!/usr/bin/env bash
# vkft lr-find end to end on the bundled stories260K with the demo's LoRA config: the ramp's
# learning rates, a suggestion in a stated range, lr_find.jsonl valid JSON whose numbers match
# the printed ones, lr_find.html (in headless chromium when installed), nothing of the model
# saved, a folder holding a finished run left as it was, bad options refused. About 25 s.
# Usage: tests/lr_find.sh path/to/vkft (run from the build folder). Prints "N passed, N failed".
set -u
source "$(dirname "$0")/lib.sh"
begin_test "$1"
common=(--config models/demo/zip_lora.json --skip-selftest --set data.max_len=128)

# ---- bad options: one line, exit 2
for bad in "--min 1 --max 0.1" "--steps 3" "--max abc" "--diverge 1" "--resume auto"; do
  # shellcheck disable=SC2086
  run "$vkft" lr-find "${common[@]}" $bad --set output.dir="$work/bad"
  check "lr-find $bad: exit 2 (got $rc: $(tail -1 <<<"$out"))" test $rc -eq $EXIT_USAGE
done
check "a refused option writes nothing" test ! -e "$work/bad/lr_find.jsonl"

# ---- the ramp: 1e-5 to 1 in 24 steps (half a decade a step); the demo's loss diverges past
# about 0.03 (measured: the smoothed minimum at lr 0.01-0.03), so the suggestion is 1e-3..1e-2
run "$vkft" lr-find "${common[@]}" --set output.dir="$work/a" --min 1e-5 --max 1 --steps 24
check "lr-find exits 0 ($(tail -1 <<<"$out"))" test $rc -eq 0
printed=$(sed -n 's/^suggested lr: \([0-9.e+-]*\) .*/\1/p' <<<"$out")
verdicts=$(python3 - "$work/a/lr_find.jsonl" "$printed" <<'EOF'
import json, math, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
steps, summary = lines[:-1], lines[-1]
def say(ok, what): print(("PASS " if ok else "FAIL ") + what)
say(len(steps) >= 5 and [s["step"] for s in steps] == list(range(1, len(steps) + 1)),
    f"{len(steps)} step lines, numbered from 1")
say(abs(steps[0]["lr"] - 1e-5) < 1e-14, f"the ramp starts at --min ({steps[0]['lr']})")
ratios = [b["lr"] / a["lr"] for a, b in zip(steps, steps[1:])]
step = 10 ** (5 / 23)  # the file's numbers have 9 digits: a ratio of two is good to 1e-8
say(all(abs(r / step - 1) < 1e-8 for r in ratios), "each lr is the last times 10^(5/23)")
say(summary["rule"] == "minimum/10" and abs(summary["suggested_lr"] * 10 / summary["min_loss_lr"] - 1) < 1e-8,
    "the suggestion is the minimum's lr / 10")
s = summary["suggested_lr"]
say(1e-3 <= s <= 1e-2, f"the suggestion {s:.3g} is within [1e-3, 1e-2]")
say(sys.argv[2] != "" and abs(float(sys.argv[2]) / s - 1) < 2e-3, f"printed {sys.argv[2]} = the file's")
best = min(steps, key=lambda x: x["smoothed_loss"])
say(best["lr"] == summary["min_loss_lr"], "min_loss_lr is the lowest smoothed loss's")
say(summary["diverged"] == (len(steps) < 24), f"stopped early ({len(steps)} steps) iff it diverged")
say(all(math.isfinite(x["loss"]) for x in steps), "finite losses in the file")
EOF
)
while read -r verdict what; do
  [ -n "$verdict" ] && check "$what" test "$verdict" = PASS
done <<<"$verdicts"
check "lr_find.html has the suggestion and the curve" \
  bash -c "grep -q 'id=\"suggested\"' '$work/a/lr_find.html' && grep -q 'id=\"chart-lr\"' '$work/a/lr_find.html'"
# the curve marks the suggestion (a vertical line at log10 of it, labelled with its value) and,
# when the ramp stopped there, the learning rate at which the loss diverged
marks=$(python3 - "$work/a/lr_find.jsonl" "$work/a/lr_find.html" <<'EOF'
import json, math, re, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
summary, html = lines[-1], open(sys.argv[2]).read()
def say(ok, what): print(("PASS " if ok else "FAIL ") + what)
m = re.search(r'<g class="mark" id="mark-suggested" data-x="([^"]+)"><line[^>]*/><text[^>]*>suggested ([^<]+)</text>', html)
say(m is not None, "lr_find.html marks the suggested lr on the curve")
if m:
    say(abs(float(m.group(1)) - math.log10(summary["suggested_lr"])) < 1e-5,
        f"the mark stands at log10 of the suggestion ({m.group(1)})")
    say(abs(float(m.group(2)) / summary["suggested_lr"] - 1) < 1e-2, f"its label is the value ({m.group(2)})")
d = re.search(r'id="mark-diverged" data-x="([^"]+)"><line[^>]*/><text[^>]*>diverged at ([^<]+)<', html)
say((d is not None) == summary["diverged"], f"a divergence mark iff the ramp diverged ({summary['diverged']})")
if d:
    last = lines[-2]["lr"]
    say(abs(float(d.group(1)) - math.log10(last)) < 1e-5, "the divergence mark is at the last step's lr")
EOF
)
while read -r verdict what; do
  [ -n "$verdict" ] && check "$what" test "$verdict" = PASS
done <<<"$marks"
for f in adapter_model.safetensors adapter_config.json metrics.jsonl report.html checkpoint-1; do
  check "nothing of the model saved: no $f" test ! -e "$work/a/$f"
done

# ---- into a folder that holds a finished run: the run's files stay as they were
run "$vkft" train "${common[@]}" --set output.dir="$work/run" --set train.max_steps=2
check "a short training run (exit $rc)" test $rc -eq 0
sum_before=$(cat "$work/run/adapter_model.safetensors" "$work/run/metrics.jsonl" | md5sum)
run "$vkft" lr-find "${common[@]}" --set output.dir="$work/run" --steps 6
check "lr-find beside a finished run exits 0 ($(tail -1 <<<"$out"))" test $rc -eq 0
check "the run's adapter and metrics are untouched" \
  test "$(cat "$work/run/adapter_model.safetensors" "$work/run/metrics.jsonl" | md5sum)" = "$sum_before"
check "its lr_find.jsonl has 6 steps and the summary" test "$(wc -l <"$work/run/lr_find.jsonl")" -eq 7

# ---- in the browser: the page renders the suggestion and the curve's points
if need_browser; then
  browser --dump-dom "file://$work/a/lr_find.html" >"$work/dom"
  check "chromium renders lr_find.html: the suggestion and the curve's path" \
    bash -c "grep -q 'id=\"suggested\">[0-9]' '$work/dom' && grep -q '<path' '$work/dom'"
  check "chromium renders the suggestion's mark with its value" \
    bash -c "grep -q 'id=\"mark-suggested\".*>suggested [0-9]' '$work/dom'"
fi
finish
