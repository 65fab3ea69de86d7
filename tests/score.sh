#!/usr/bin/env bash
# vkft data score on the bundled stories260K and its demo data: every record comes back with its
# fields and "scores"; a record's loss equals `vkft eval` on that record alone (digit for digit)
# and its IFD equals that loss over `vkft eval` of the response alone (a pre-tokenized record
# built from `data prepare`'s ids); text records (every token trained) have IFD exactly 1; the
# file does not depend on --batch (byte for byte); a bad record is named and left out and
# counted; bad options are usage errors and leave no output; data filter --min/--max keeps
# exactly the records inside bounds on the scores. About 25 s.
# Usage: tests/score.sh path/to/vkft. Prints "N passed, N failed".
set -u
source "$(dirname "$0")/lib.sh"
begin_test "$1"
model=models/stories260K
data=models/demo/zip_stories.jsonl

# 1. the demo data: 64 records, fields kept, scores added
run "$vkft" data score --model $model --data $data --out "$work/s8.jsonl" --batch 8
check "score exits 0 ($out)" test $rc -eq 0
check "summary line" grep -q "^score: 64 records scored .* 0 left out" <<<"$out"
verdict=$(python3 - "$data" "$work/s8.jsonl" <<'PY'
import json, math, sys
src = [json.loads(l) for l in open(sys.argv[1])]
out = [json.loads(l) for l in open(sys.argv[2])]
bad = []
if len(out) != len(src): bad.append("count %d" % len(out))
for a, b in zip(src, out):
    s = b.pop("scores")
    if a != b: bad.append("fields"); break
    # C's exp and Python's may round the last bit differently
    if abs(s["ppl"] - math.exp(s["loss"])) > 1e-14 * s["ppl"] or not (0 < s["loss"] < 10):
        bad.append("loss/ppl %r" % s); break
    if not s["ifd"] or not (0 < s["ifd"] < 10) or not (0 < s["response_tokens"] < s["tokens"]): bad.append("%r" % s); break
print(" ".join(bad) or "ok")
PY
)
check "fields kept, loss, ppl = exp(loss), ifd, token counts ($verdict)" test "$verdict" = ok
run "$vkft" data score --model $model --data $data --out "$work/s1.jsonl" --batch 1
check "--batch 1 gives the same file byte for byte" cmp -s "$work/s8.jsonl" "$work/s1.jsonl"

# 2. loss = eval of the record alone; ifd = loss / eval of the response alone
"$vkft" data prepare --model $model --data $data --out "$work/prep.jsonl" >/dev/null 2>&1
same=0
for i in 0 17 63; do
  sed -n "$((i + 1))p" $data >"$work/one.jsonl"
  python3 - "$work/prep.jsonl" $i >"$work/alone.jsonl" <<'PY'
import json, sys
ex = json.loads(open(sys.argv[1]).readlines()[int(sys.argv[2])])
resp = [t for t, l in zip(ex["input_ids"], ex["labels"]) if l != -100]
print(json.dumps({"input_ids": [1] + resp, "labels": [-100] + resp}))  # 1: stories260K's BOS
PY
  cond=$("$vkft" eval --model $model --data "$work/one.jsonl" 2>/dev/null | tail -1)
  alone=$("$vkft" eval --model $model --data "$work/alone.jsonl" --format tokens 2>/dev/null | tail -1)
  verdict=$(python3 - "$work/s8.jsonl" $i "$cond" "$alone" <<'PY'
import json, sys
s = json.loads(open(sys.argv[1]).readlines()[int(sys.argv[2])])["scores"]
cond, alone = json.loads(sys.argv[3]), json.loads(sys.argv[4])
ok = "%.9g" % s["loss"] == "%.9g" % cond["loss"] and s["response_tokens"] == cond["tokens"]
# eval prints 9 significant digits: the ratio of two such values is good to ~1e-8
ok = ok and abs(s["ifd"] - cond["loss"] / alone["loss"]) <= 1e-7 * s["ifd"]
print("ok" if ok else "%r | eval %r | alone %r" % (s, cond, alone))
PY
)
  [ "$verdict" = ok ] && same=$((same + 1)) || echo "  record $i: $verdict"
done
check "loss = eval alone, ifd = loss / eval of the response alone ($same of 3)" test $same -eq 3

# 3. text records train every token: the response alone is the record itself, IFD exactly 1;
#    a record without its field is named and left out
python3 - "$work" <<'PY'
import json, sys
with open(sys.argv[1] + "/text.jsonl", "w") as f:
    for t in ["Once upon a time, there was a cat.", "Tom saw a big dog. The dog was happy."]:
        f.write(json.dumps({"text": t}) + "\n")
    f.write(json.dumps({"txt": "no text field"}) + "\n")
PY
run "$vkft" data score --model $model --data "$work/text.jsonl" --out "$work/text.out"
check "text records: exit 0 ($out)" test $rc -eq 0
check "... the bad record named by file:line" grep -q "text.jsonl:3: " <<<"$out"
check "... and counted as left out" grep -q "2 records scored .* 1 left out" <<<"$out"
verdict=$(python3 -c '
import json, sys
rows = [json.loads(l)["scores"] for l in open(sys.argv[1])]
print("ok" if len(rows) == 2 and all(r["ifd"] == 1 for r in rows) else rows)' "$work/text.out")
check "text records: ifd is exactly 1 ($verdict)" test "$verdict" = ok

# 4. bad options: usage errors, no output file
run "$vkft" data score --model $model --data $data
check "no --out: usage error ($rc)" test $rc -eq $EXIT_USAGE
run "$vkft" data score --model $model --data $data --out "$work/x.jsonl" --batch 33
check "--batch 33: usage error ($out)" test $rc -eq $EXIT_USAGE
run "$vkft" data score --model $model --data $data --out "$work/x.jsonl" --train-on some
check "--train-on some: usage error ($out)" test $rc -eq $EXIT_USAGE
run "$vkft" data score --model "$work/nomodel" --data $data --out "$work/x.jsonl"
check "a missing model: exit $EXIT_INPUT or $EXIT_IO ($out)" test $rc -eq $EXIT_INPUT -o $rc -eq $EXIT_IO
check "... no output file" test ! -e "$work/x.jsonl"
# 5. data filter --min/--max on the scores: exactly the records inside the bounds are kept
run "$vkft" data filter --data "$work/s8.jsonl" --out "$work/kept.jsonl" --max ppl=4 --min ifd=0.9 --json
check "filter on scores exits 0 ($out)" test $rc -eq 0
verdict=$(python3 - "$work/s8.jsonl" "$work/kept.jsonl" "$work/kept.jsonl.report.jsonl" "$out" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
want = [r for r in rows if r["scores"]["ppl"] <= 4 and r["scores"]["ifd"] >= 0.9]
got = [json.loads(l) for l in open(sys.argv[2])]
report = [json.loads(l)["reason"] for l in open(sys.argv[3])]
summary = json.loads(sys.argv[4])
low = sum(r["scores"]["ppl"] <= 4 and r["scores"]["ifd"] < 0.9 for r in rows)
ok = got == want and 0 < len(want) < len(rows) and report.count("score below min") == low
ok = ok and len(report) == len(rows) - len(want) and summary["kept"] == len(want)
print("ok" if ok else "kept %d of %d, want %d; %r" % (len(got), len(rows), len(want), summary))
PY
)
check "kept = the records within the bounds, reasons in the report ($verdict)" test "$verdict" = ok
run "$vkft" data filter --data $data --out "$work/none.jsonl" --max ppl=4
check "unscored records are removed as \"no score\" ($out)" grep -q "kept 0 of 64 records; removed: 64 no score" <<<"$out"
run "$vkft" data filter --data $data --out "$work/none.jsonl" --max ppl
check "--max without =V: one line naming the option ($out)" grep -q -- '--max: "ppl" is not FIELD=NUMBER' <<<"$out"
finish
