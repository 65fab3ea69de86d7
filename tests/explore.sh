#!/usr/bin/env bash
# vkft data explore on the bundled stories260K and tests/data/explore_topics.jsonl (42 records of
# four kinds — children's stories, Chinese instructions from the shared alpaca_zh_demo, arithmetic,
# code — plus a near-duplicate and a record holding </script><b>&"'): with --k 4 the clusters are
# exactly the four kinds; with k chosen by silhouette no kind is split and k is the best score's;
# map.json has every record; --select writes exactly the chosen clusters' records, byte for byte;
# the near-duplicate pair is a group; map.html in headless chromium (as tests/report.sh): the
# script ran, one point per record, k legend entries and table rows, the escaped text present
# and nothing injected, the hover tooltip and the selection count; a screenshot (kept in
# $VKFT_EXPLORE_SHOTS when set); bad options are usage errors. About 15 s.
# Usage: tests/explore.sh path/to/vkft. Prints "N passed, N failed".
set -u
vkft=$(realpath "$1")
source "$(dirname "$0")/lib.sh"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
shots=${VKFT_EXPLORE_SHOTS:-$work}
mkdir -p "$shots"
cd "$src"
model=models/stories260K
data=tests/data/explore_topics.jsonl

# 1. k = 4: the four kinds, and a selection
run "$vkft" data explore --model $model --data $data --out "$work/map.html" --json "$work/map.json" \
  --k 4 --select 1,3 --select-out "$work/sel.jsonl"
check "explore --k 4 exits 0 ($out)" test $rc -eq 0
check "summary line with the tokens/s" grep -q "^explore: 42 records embedded (.* tokens/s); k = 4" <<<"$out"
verdict=$(python3 - "$data" "$work/map.json" "$work/sel.jsonl" <<'PY'
import json, sys
lines = open(sys.argv[1], encoding="utf-8").read().splitlines()
recs = [json.loads(l) for l in lines]
m = json.load(open(sys.argv[2]))
bad = []
if len(m["records"]) != len(recs): bad.append("records %d" % len(m["records"]))
pairs = {(r["topic"], x["cluster"]) for r, x in zip(recs, m["records"])}
if len(pairs) != 4 or len({t for t, _ in pairs}) != 4 or len({c for _, c in pairs}) != 4:
    bad.append("kinds vs clusters %r" % sorted(pairs))
if m["k"] != 4 or sorted(c["size"] for c in m["clusters"]) != sorted(
        sum(x["cluster"] == c for x in m["records"]) for c in range(4)):
    bad.append("cluster sizes")
if not all(isinstance(x["x"], float) and isinstance(x["y"], float) for x in m["records"]): bad.append("x, y")
want = [l for l, x in zip(lines, m["records"]) if x["cluster"] in (1, 3)]
got = open(sys.argv[3], encoding="utf-8").read().splitlines()
if got != want: bad.append("selection %d lines, want %d" % (len(got), len(want)))
story = next(c for c in m["clusters"] if c["cluster"] == m["records"][0]["cluster"])
if "story" not in story["terms"][:3]: bad.append("story terms %r" % story["terms"])
groups = m["duplicate_groups"]
if groups != [[f"{sys.argv[1]}:1", f"{sys.argv[1]}:41"]]: bad.append("duplicates %r" % groups)
print(" ".join(bad) or "ok")
PY
)
check "clusters = the four kinds, json, selection, terms, the duplicate group ($verdict)" test "$verdict" = ok
selected=$(wc -l <"$work/sel.jsonl")
check "the selection summary counts $selected records" grep -q "explore: $selected records of clusters 1,3" <<<"$out"

# 2. k chosen by silhouette: no kind split, k the best score's
run "$vkft" data explore --model $model --data $data --out "$work/auto.html" --json "$work/auto.json"
check "explore (k by silhouette) exits 0 ($out)" test $rc -eq 0
verdict=$(python3 - "$data" "$work/auto.json" <<'PY'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8")]
m = json.load(open(sys.argv[2]))
s = {int(k): v for k, v in m["silhouette"].items()}
ok = sorted(s) == list(range(2, 7)) and m["k"] == max(s, key=lambda k: (s[k], -k))
split = [t for t in {r["topic"] for r in recs}
         if len({x["cluster"] for r, x in zip(recs, m["records"]) if r["topic"] == t}) > 1]
print("ok" if ok and not split and m["k"] >= 3 else "k %d, silhouette %r, split %r" % (m["k"], s, split))
PY
)
check "silhouette: k is the best score's (2..sqrt(42)), no kind split ($verdict)" test "$verdict" = ok

# 3. bad options
run "$vkft" data explore --model $model --data $data
check "no --out: usage error ($rc)" test $rc -eq $EXIT_USAGE
run "$vkft" data explore --model $model --data $data --out "$work/x.html" --k 0
check "--k 0: usage error ($rc)" test $rc -eq $EXIT_USAGE
run "$vkft" data explore --model $model --data $data --out "$work/x.html" --select 1
check "--select without --select-out: usage error ($rc)" test $rc -eq $EXIT_USAGE
run "$vkft" data explore --model $model --data $data --out "$work/x.html" --k 4 --select 7 \
  --select-out "$work/x.jsonl"
check "--select 7 of 4 clusters: exit $EXIT_INPUT naming it ($out)" \
  bash -c '[ '$rc' -eq '$EXIT_INPUT' ] && grep -q -- "--select: \"7\"" <<<"$1"' _ "$out"
check "... no selection file" test ! -e "$work/x.jsonl"

# 4. in the browser
if ! need_browser; then
  finish
  exit
fi
browser --dump-dom "file://$work/map.html#hover=41&select=1,3" >"$work/map.dom"
browser --screenshot="$shots/explore.png" --window-size=1200,1800 "file://$work/map.html#hover=41&select=1,3"
check "a screenshot ($(stat -c %s "$shots/explore.png" 2>/dev/null) bytes)" \
  bash -c "[ \$(stat -c %s '$shots/explore.png') -gt 20000 ]"
verdicts=$(python3 - "$work/map.dom" "$work/map.json" "$selected" <<'PY'
import json, re, sys
dom = open(sys.argv[1], encoding="utf-8").read()
m = json.load(open(sys.argv[2]))
def say(ok, what): print(("PASS " if ok else "FAIL ") + what)
say('data-js="ok"' in dom, "the page's script ran")
say(len(re.findall(r'<circle class="pt', dom)) == len(m["records"]), "one point per record")
legend = re.search(r'<ul class="legend" id="legend">(.*?)</ul>', dom, re.S)
say(legend and len(re.findall(r"<li data-cluster=", legend.group(1))) == m["k"], "k legend entries")
say(len(re.findall(r'<tr data-cluster="\d+">', dom)) == m["k"], "k rows in the cluster table")
say(len(re.findall(r'<input type="checkbox" class="sel"', dom)) == m["k"], "a check box per cluster")
escaped = "&lt;/script&gt;&lt;b&gt;&amp;\"'"  # the instruction's text, escaped by the DOM dump
say(escaped in dom, "the record's </script><b>&\"' is in the page as text")
say("</script><b>" not in dom and not re.search(r"<b>&amp;", dom), "no element injected")
tip = re.search(r'<div class="tip"[^>]*>(.*?)</div>', dom, re.S)
say(tip and "hidden" not in tip.group(0) and "cluster" in tip.group(1) and "&lt;/script&gt;" in tip.group(1),
    "#hover=41: the tooltip shows that record")
count = re.search(r'<span id="selcount">(\d+) records? selected</span>', dom)
say(count and count.group(1) == sys.argv[3], "#select=1,3 ticks %s records (%s)" % (sys.argv[3], count and count.group(1)))
say(re.search(r'Near-duplicate groups \(1\)', dom) is not None, "the near-duplicate group listed")
PY
)
while read -r verdict what; do
  [ -n "$verdict" ] && check "$what" test "$verdict" = PASS
done <<<"$verdicts"
finish
