#!/usr/bin/env bash
# vkft data synth and vkft data judge end to end on the bundled stories260K (the pipeline, not the
# quality: the model writes children's stories). synth: records parse, carry their provenance,
# the summary's counts add up (prompts = kept + dropped), the file does not depend on
# --max-batch, `vkft train` trains on the output and `data stats` reads --as messages; dedup
# drops for real: greedy prompts that are all alike give one kept record and the rest
# "duplicate", and a seed equal to what the model writes is dropped as "duplicate of a seed";
# bad seed files and templates are one line naming file:line or the placeholder, exit 1, no
# output. judge: every record keeps its fields and gets scores.judge_score (a number in 1-10 or
# null with judge_error) and judge_rationale; the summary's counts add up; a prompt too long for
# the context is a null score, not a failure; data filter --min judge_score=N keeps the numbers
# in bounds and drops nulls as "no score". About 27 s. Usage: tests/synth.sh path/to/vkft.
# Prints "N passed, N failed".
set -u
source "$(dirname "$0")/lib.sh"
begin_test "$1"
model=models/stories260K
small=(--max-instruction-tokens 32 --max-new-tokens 24)

python3 - "$work" <<'EOF'
import json, sys
w = sys.argv[1]
tasks = ["Write a short story about a dog who finds a red ball in the park.",
         "Tell a story about a little girl named Lily who wants to fly like a bird.",
         "Write a story about two friends who share their toys and become happy.",
         "Describe a sunny day at the beach with a family and their big kite.",
         "Tell a story about a cat who is afraid of the dark at night.",
         "Write a short story about a boy who helps his mom bake a cake."]
with open(w + "/seeds.jsonl", "w") as f:
    for i, t in enumerate(tasks):
        f.write(json.dumps({"id": "s%d" % i, "instruction": t, "output": "..."}) + "\n")
with open(w + "/one.jsonl", "w") as f:
    f.write(json.dumps({"id": "x", "instruction": "Write a story about a dog and a ball."}) + "\n")
open(w + "/empty.jsonl", "w").close()
with open(w + "/noinstr.jsonl", "w") as f:
    f.write(json.dumps({"instruction": "fine"}) + "\n" + json.dumps({"prompt": "no"}) + "\n")
with open(w + "/bad.tmpl", "w") as f:
    f.write("Tasks:\n{{tasks}}\n{{nope}}\n")
recs = [{"id": 1, "instruction": "Name a color.", "output": "Red."},
        {"id": 2, "instruction": "Say hi to Tom.", "input": "Be nice.", "output": "Hi Tom!"},
        {"id": 3, "instruction": "What do cats eat?", "output": "Fish and milk."},
        {"id": 4, "instruction": "Tell a story.", "output": "Once upon a time " * 150,
         "scores": {"ppl": 3.5}}]
with open(w + "/judge.jsonl", "w") as f:
    for r in recs:
        f.write(json.dumps(r) + "\n")
with open(w + "/judge_bad.jsonl", "w") as f:
    f.write(json.dumps(recs[0]) + "\n" + json.dumps({"text": "a story"}) + "\n")
EOF

# 1. the pipeline with the shipped templates, sampled
run "$vkft" data synth --model $model --seed-tasks "$work/seeds.jsonl" --out "$work/syn.jsonl" --n 4 "${small[@]}" --min-words 2 --json
check "synth exits 0 ($out)" test $rc -eq 0
verdict=$(python3 - "$work/syn.jsonl" "$out" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
summary = json.loads(sys.argv[2].strip().splitlines()[-1])
seeds = {"s%d" % i for i in range(6)}
bad = []
if len(rows) != summary["kept"] or summary["kept"] != 4: bad.append("kept %d" % len(rows))
if summary["prompts"] != summary["kept"] + sum(summary["dropped"].values()): bad.append("counts %r" % summary)
if not summary["tokens_per_s"] > 0: bad.append("tokens/s")
for r in rows:
    p = r.get("synth", {})
    if r.get("source") != "synthetic" or p.get("model") != "models/stories260K": bad.append("provenance"); break
    if len(p["seed_ids"]) != 3 or not set(p["seed_ids"]) <= seeds: bad.append("seed ids %r" % p["seed_ids"]); break
    if (p["temperature"], p["top_p"], p["seed"], p["max_new_tokens"], p["max_instruction_tokens"]) != (0.7, 1, 42, 24, 32): bad.append("sampling %r" % p); break
    if not r["instruction"].strip() or not r["output"].strip() or p["finish_reason"] not in ("stop", "length"): bad.append("fields"); break
if len({r["synth"]["prompt"] for r in rows}) != len(rows): bad.append("prompt numbers repeat")
print(" ".join(bad) or "ok")
PY
)
check "records, provenance, counts add up ($verdict)" test "$verdict" = ok
run "$vkft" data synth --model $model --seed-tasks "$work/seeds.jsonl" --out "$work/syn2.jsonl" --n 4 "${small[@]}" --min-words 2 --max-batch 2
check "--max-batch 2 writes the same file (every request its own random stream)" cmp -s "$work/syn.jsonl" "$work/syn2.jsonl"
cat >"$work/train.json" <<EOF
{"model": "$model", "method": "lora", "lora": {"r": 4, "alpha": 8, "targets": ["q_proj", "v_proj"]},
 "data": {"train": "$work/syn.jsonl", "max_len": 128},
 "train": {"micro_batch": 2, "max_steps": 2, "lr": 1e-3, "seed": 1},
 "output": {"dir": "$work/lora", "save_every": 0, "eval_every": 0}}
EOF
run "$vkft" train --config "$work/train.json"
check "vkft train takes the output as data ($(tail -1 <<<"$out"))" test $rc -eq 0

# 2. dedup drops: greedy, one seed, so every prompt is the same and writes the same instruction
one=(--seed-tasks "$work/one.jsonl" --n 4 --max-prompts 4 --temperature 0 --min-words 1 --max-instruction-tokens 24 --max-new-tokens 16)
run "$vkft" data synth --model $model "${one[@]}" --out "$work/one.out" --as messages --json
check "greedy synth exits 0 ($out)" test $rc -eq 0
check "... one kept, three dropped as duplicates" \
  grep -q '"prompts":4,.*"kept":1,.*"duplicate of a seed":0,"duplicate":3,' <<<"$out"
run "$vkft" data stats --model $model --data "$work/one.out" --json
check "data stats reads --as messages ($out)" grep -q '"ok":1,' <<<"$out"
# a seed that is what the model writes from the other seed: that prompt's instruction is a
# duplicate of a seed (and kept records are never one)
python3 -c '
import json, sys
g = json.loads(open(sys.argv[1]).readline())["messages"][0]["content"]
open(sys.argv[2], "w").write(open(sys.argv[3]).read() + json.dumps({"id": "g", "instruction": g}) + "\n")' \
  "$work/one.out" "$work/two.jsonl" "$work/one.jsonl"
run "$vkft" data synth --model $model "${one[@]}" --seed-tasks "$work/two.jsonl" --seeds-per-prompt 1 --out "$work/two.out" --json
check "two seeds: exits 0 ($out)" test $rc -eq 0
dup=$(grep -o '"duplicate of a seed":[0-9]*' <<<"$out" | cut -d: -f2)
check "... the prompts showing the first seed give duplicates of the second ($dup)" test "${dup:-0}" -ge 1
check "... no kept record repeats a seed" python3 -c '
import json, sys
seeds = {json.loads(l)["instruction"].lower() for l in open(sys.argv[1])}
sys.exit(any(json.loads(l)["instruction"].lower() in seeds for l in open(sys.argv[2])))' "$work/two.jsonl" "$work/two.out"

# 3. bad input: one line naming the file (and line, field or placeholder), exit 1, no output
run "$vkft" data synth --model $model --seed-tasks "$work/missing.jsonl" --out "$work/x.out"
check "missing seed file: non-zero exit naming it ($out)" test $rc -ne 0 -a "$(grep -c missing.jsonl <<<"$out")" -eq 1
run "$vkft" data synth --model $model --seed-tasks "$work/empty.jsonl" --out "$work/x.out"
check "empty seed file: exit $EXIT_INPUT ($out)" test $rc -eq $EXIT_INPUT
check "... named" grep -q "empty.jsonl: no seed tasks" <<<"$out"
run "$vkft" data synth --model $model --seed-tasks "$work/noinstr.jsonl" --out "$work/x.out"
check "a seed without instruction: exit $EXIT_INPUT ($out)" test $rc -eq $EXIT_INPUT
check "... naming file:line and the field" grep -q 'noinstr.jsonl:2: no "instruction" field' <<<"$out"
run "$vkft" data synth --model $model --seed-tasks "$work/seeds.jsonl" --instruction-template "$work/bad.tmpl" --out "$work/x.out"
check "unknown placeholder: exit $EXIT_INPUT ($out)" test $rc -eq $EXIT_INPUT
check "... naming the file and the placeholder" grep -q "bad.tmpl: unknown placeholder {{nope}}" <<<"$out"
run "$vkft" data synth --model $model --seed-tasks "$work/seeds.jsonl" --answer-template "$work/bad.tmpl" --out "$work/x.out"
check "an answer template without {{instruction}}: exit $EXIT_INPUT ($out)" test $rc -eq $EXIT_INPUT
run "$vkft" data synth --model $model --seed-tasks "$work/seeds.jsonl" --out "$work/x.out" --as csv
check "--as csv: usage error" test $rc -eq $EXIT_USAGE
check "... and no output file in any of these" test ! -e "$work/x.out"

# 4. judge: fields kept, a score or null with its error, counts add up
run "$vkft" data judge --model $model --data "$work/judge.jsonl" --out "$work/judged.jsonl" --max-new-tokens 16 --json
check "judge exits 0 ($out)" test $rc -eq 0
verdict=$(python3 - "$work/judge.jsonl" "$work/judged.jsonl" "$out" <<'PY'
import json, sys
src = [json.loads(l) for l in open(sys.argv[1])]
out = [json.loads(l) for l in open(sys.argv[2])]
s = json.loads(sys.argv[3].strip().splitlines()[-1])
bad = []
if len(out) != 4 or s["records"] != 4: bad.append("count")
if s["scored"] + s["no_score"] + s["out_of_range"] + s["prompt_too_long"] != 4: bad.append("summary %r" % s)
if "prompt too long" not in out[3].get("judge_error", "") or s["prompt_too_long"] != 1: bad.append("long record %r" % out[3].get("judge_error"))
if out[3]["scores"] != {"ppl": 3.5, "judge_score": None}: bad.append("existing scores %r" % out[3]["scores"])
nulls = 0
for a, b in zip(src, out):
    score = b["scores"].pop("judge_score")
    rationale, model, error = b.pop("judge_rationale"), b.pop("judge_model"), b.pop("judge_error", None)
    if not b["scores"]: b.pop("scores")
    if a != b: bad.append("fields of %r" % a["id"])
    if model != "models/stories260K" or not isinstance(rationale, str): bad.append("judge fields")
    if score is None:
        nulls += 1
        if not error: bad.append("null without judge_error")
    elif not (1 <= score <= 10) or error: bad.append("score %r %r" % (score, error))
if nulls != 4 - s["scored"]: bad.append("nulls %d" % nulls)
print(" ".join(bad) or "ok")
PY
)
check "judged records: fields kept, score or null + judge_error, summary adds up ($verdict)" test "$verdict" = ok
scored=$(grep -o '"scored":[0-9]*' <<<"$out" | cut -d: -f2)
run "$vkft" data filter --data "$work/judged.jsonl" --out "$work/kept.jsonl" --min judge_score=1 --json
check "filter on the judged file: the scored records kept, nulls removed as no score ($out)" \
  grep -q "\"records\":4,\"kept\":${scored:-x},.*\"no score\":$((4 - ${scored:-0}))" <<<"$out"
# the filter's rule on judge scores, on a judged file written by hand (the tiny judge rarely scores)
python3 - "$work/scored.jsonl" <<'PY'
import json, sys
with open(sys.argv[1], "w") as f:
    for i, s in enumerate([None, 3, 7, 9.5]):
        f.write(json.dumps({"instruction": "q%d" % i, "output": "a", "scores": {"judge_score": s}}) + "\n")
PY
run "$vkft" data filter --data "$work/scored.jsonl" --out "$work/kept2.jsonl" --min judge_score=7 --json
check "--min judge_score=7: keeps 7 and 9.5, drops 3 (below) and null (no score) ($out)" \
  grep -q '"kept":2,"removed":{"no score":1,"score below min":1}' <<<"$out"
# data score after a judge: its scores join the judge's in "scores"
run "$vkft" data score --model $model --data "$work/scored.jsonl" --out "$work/rescored.jsonl"
check "data score on judged records exits 0 ($(tail -1 <<<"$out"))" test $rc -eq 0
check "... and keeps each judge_score beside loss and ppl" python3 -c '
import json, sys
rows = [json.loads(l)["scores"] for l in open(sys.argv[1])]
assert [r["judge_score"] for r in rows] == [None, 3, 7, 9.5] and all(r["ppl"] > 0 for r in rows), rows
' "$work/rescored.jsonl"
run "$vkft" data judge --model $model --data "$work/judge_bad.jsonl" --out "$work/y.out"
check "judge, a record with nothing to judge: exit $EXIT_INPUT ($out)" test $rc -eq $EXIT_INPUT
check "... naming file:line" grep -q "judge_bad.jsonl:2: a text record has no instruction and response" <<<"$out"
check "... and no output" test ! -e "$work/y.out"
finish
