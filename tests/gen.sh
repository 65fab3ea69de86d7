#!/usr/bin/env bash
# vkft generate --batch end to end on the bundled stories260K: output lines keep the input
# fields in input order and add the generation; the greedy batch equals `vkft generate
# --prompt` run on each prompt alone, and equals itself at --max-batch 1 byte for byte (also
# with per-record sampling: n samples, seeds, stop strings); a LoRA adapter saved by a short
# training run gives the same batched and single outputs; chat records render with the chat
# template; --as-dataset messages writes SFT records that vkft data stats reads; bad records
# are one line naming file:line and exit 1; bench generate --json and --profile. About 25 s.
# Usage: tests/gen.sh path/to/vkft. Prints "N passed, N failed".
set -u
source "$(dirname "$0")/lib.sh"
begin_test "$1"
model=models/stories260K

python3 - "$work" <<'EOF'
import json, sys
work = sys.argv[1]
starts = ["Once upon a time,", "The little dog", "Tom and Sue went to the", "One day, a big",
          "Lily saw a bird", "The sun was", "Max liked to", "There was a tiny"]
with open(work + "/prompts.jsonl", "w") as f:
    for i, s in enumerate(starts):
        f.write(json.dumps({"id": i, "prompt": s, "meta": {"k": [i]}}) + "\n")
with open(work + "/mixed.jsonl", "w") as f:
    f.write(json.dumps({"id": 0, "prompt": "Once upon a time,", "n": 3, "temperature": 0.8,
                        "seed": 5}) + "\n")
    f.write(json.dumps({"id": 1, "prompt": "The little dog", "stop": [" the", "."]}) + "\n")
    f.write(json.dumps({"id": 2, "messages": [{"role": "system", "content": "Be brief."},
                                              {"role": "user", "content": "Tell a story."}],
                        "max_new_tokens": 5}) + "\n")
    f.write(json.dumps({"id": 3, "instruction": "Say hi", "input": "to Tom", "top_k": 3,
                        "temperature": 1.0, "min_p": 0.1, "repetition_penalty": 1.3}) + "\n")
with open(work + "/bad.jsonl", "w") as f:
    f.write(json.dumps({"prompt": "ok"}) + "\n")
    f.write(json.dumps({"prompt": "ok", "top_p": 2}) + "\n")
EOF

# 1. a greedy batch: fields kept, order kept, equal to one prompt at a time
run "$vkft" generate --model $model --batch "$work/prompts.jsonl" --out "$work/out.jsonl" --max-new-tokens 40
check "batch exits 0 ($out)" test $rc -eq 0
check "batch summary line ($out)" grep -q "tokens generated in .* tokens/s" <<<"$out"
check "one output line per prompt" test "$(wc -l <"$work/out.jsonl")" -eq 8
fields=$(python3 -c '
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
ok = [r["id"] for r in rows] == list(range(8)) and all(r["meta"] == {"k": [r["id"]]} for r in rows)
ok = ok and all(r["finish_reason"] in ("stop", "length") and r["completion_tokens"] > 0 for r in rows)
print("ok" if ok else rows[0])' "$work/out.jsonl")
check "input fields and order kept, generation fields added ($fields)" test "$fields" = ok
single_ok=0
for i in 0 3 6; do
  prompt=$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readlines()[int(sys.argv[2])])["prompt"])' "$work/prompts.jsonl" $i)
  want=$("$vkft" generate --model $model --prompt "$prompt" --max-new-tokens 40 2>&1)
  got=$(python3 -c '
import json, sys
r = json.loads(open(sys.argv[1]).readlines()[int(sys.argv[2])])
print(r["prompt"] + " " + r["generation"])' "$work/out.jsonl" $i)
  [ "$want" = "$got" ] && single_ok=$((single_ok + 1)) || echo "  prompt $i: --prompt: $want | batch: $got"
done
check "batched greedy equals generate --prompt ($single_ok of 3)" test $single_ok -eq 3
run "$vkft" generate --model $model --batch "$work/prompts.jsonl" --out "$work/out1.jsonl" --max-new-tokens 40 --max-batch 1
check "--max-batch 1 gives the same file" cmp -s "$work/out.jsonl" "$work/out1.jsonl"

# 2. per-record sampling, chat and alpaca records (the built-in chatml template)
run "$vkft" generate --model $model --batch "$work/mixed.jsonl" --out "$work/mixed.out" --chat-template chatml --max-new-tokens 24
check "mixed batch exits 0 ($out)" test $rc -eq 0
run "$vkft" generate --model $model --batch "$work/mixed.jsonl" --out "$work/mixed1.out" --chat-template chatml --max-new-tokens 24 --max-batch 1
check "mixed batch: --max-batch 1 gives the same file (sampled too)" cmp -s "$work/mixed.out" "$work/mixed1.out"
verdict=$(python3 -c '
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
bad = []
if [r["id"] for r in rows] != [0, 0, 0, 1, 2, 3]: bad.append("order")
if [r.get("sample") for r in rows[:3]] != [0, 1, 2]: bad.append("samples")
if len({r["generation"] for r in rows[:3]}) < 2: bad.append("samples all equal")
r = rows[3]
if r["finish_reason"] != "stop" or " the" in r["generation"] or "." in r["generation"]: bad.append("stop: " + r["generation"])
if rows[4]["completion_tokens"] > 5: bad.append("max_new_tokens")
if rows[4]["prompt_tokens"] < 10: bad.append("chat prompt not rendered")
print(" ".join(bad) or "ok")' "$work/mixed.out")
check "samples, stop strings, per-record max_new_tokens, chat rendering ($verdict)" test "$verdict" = ok
run "$vkft" generate --model $model --batch "$work/mixed.jsonl" --out "$work/nochat.out"
check "chat records without a template: exit $EXIT_INPUT ($out)" test $rc -eq $EXIT_INPUT
check "... naming the record's line" grep -q "mixed.jsonl:3: .*chat template" <<<"$out"
check "... and no output file" test ! -e "$work/nochat.out"

# 3. --as-dataset messages: SFT records that the dataset loader reads
run "$vkft" generate --model $model --batch "$work/mixed.jsonl" --out "$work/sft.jsonl" --chat-template chatml --max-new-tokens 8 --as-dataset messages
check "--as-dataset exits 0 ($out)" test $rc -eq 0
verdict=$(python3 -c '
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
ok = all(r["messages"][-1]["role"] == "assistant" and "prompt" not in r and "generation" not in r for r in rows)
ok = ok and rows[4]["messages"][0] == {"role": "system", "content": "Be brief."}
ok = ok and rows[5]["messages"][0]["content"] == "Say hi\nto Tom"
print("ok" if ok else rows)' "$work/sft.jsonl")
check "SFT records: messages + assistant reply ($verdict)" test "$verdict" = ok
run "$vkft" data stats --model $model --data "$work/sft.jsonl" --template chatml --json
check "data stats reads them ($out)" grep -q '"ok":6,' <<<"$out"

# 4. a LoRA adapter (20 steps on the demo data): batched equals single, and differs from base
cat >"$work/lora.json" <<EOF
{"model": "$model", "method": "lora",
 "lora": {"r": 4, "alpha": 8, "targets": ["q_proj", "v_proj", "down_proj"]},
 "data": {"train": "models/demo/zip_stories.jsonl", "max_len": 128},
 "train": {"micro_batch": 2, "max_steps": 20, "lr": 1e-2, "seed": 1},
 "output": {"dir": "$work/lora", "save_every": 0, "eval_every": 0}}
EOF
run "$vkft" train --config "$work/lora.json"
check "a LoRA trains ($(tail -1 <<<"$out"))" test $rc -eq 0
run "$vkft" generate --model $model --adapter "$work/lora" --batch "$work/prompts.jsonl" --out "$work/lora.out" --max-new-tokens 24
check "batch with the adapter exits 0 ($out)" test $rc -eq 0
run "$vkft" generate --model $model --adapter "$work/lora" --batch "$work/prompts.jsonl" --out "$work/lora1.out" --max-new-tokens 24 --max-batch 1
check "adapter: --max-batch 1 gives the same file" cmp -s "$work/lora.out" "$work/lora1.out"
want=$("$vkft" generate --model $model --adapter "$work/lora" --prompt "Once upon a time," --max-new-tokens 24 2>&1)
got=$(python3 -c 'import json,sys; r=json.loads(open(sys.argv[1]).readline()); print(r["prompt"]+" "+r["generation"])' "$work/lora.out")
check "adapter: batched equals generate --prompt ($want | $got)" test "$want" = "$got"
check "adapter: the output differs from the base model's" test "$(head -c 300 "$work/lora.out")" != "$(head -c 300 "$work/out.jsonl")"

# 5. bad input: one line naming file:line and field, exit 1, no output
run "$vkft" generate --model $model --batch "$work/bad.jsonl" --out "$work/bad.out"
check "bad sampling value: exit $EXIT_INPUT ($out)" test $rc -eq $EXIT_INPUT
check "... one line naming bad.jsonl:2 and top_p" grep -q "bad.jsonl:2: .*top_p" <<<"$out"
check "... no output file" test ! -e "$work/bad.out"
run "$vkft" generate --model $model --batch "$work/prompts.jsonl"
check "--batch without --out: usage error" test $rc -eq $EXIT_USAGE
# 6. bench generate --json: every batch size generates exactly B x N tokens (checked inside)
run "$vkft" bench generate --model $model --batch 1,4 --new-tokens 8 --json
check "bench generate exits 0 ($out)" test $rc -eq 0
check "... one JSON line per batch size" test "$(grep -c '"bench": "generate"' <<<"$out")" -eq 2
check "... batch 4 with its tokens/s" grep -q '"batch": 4, .*"new_tokens": 8, .*"tokens_per_s": [0-9]' <<<"$out"
run "$vkft" bench generate --model $model --batch 1 --new-tokens 2 --profile
# the names of shaders whose callers build them in a stack buffer (read after the stream)
check "--profile names embedding and rmsnorm ($out)" \
  grep -q "^    embedding_f32 .* dispatches" <<<"$out"
check "... rmsnorm" grep -q "^    rmsnorm_f32 .* dispatches" <<<"$out"
check "... and every line has a shader name" \
  test "$(grep -c "dispatches" <<<"$out")" -eq "$(grep -c "^    [a-z][a-z_0-9]* *[0-9]* dispatches" <<<"$out")"
run "$vkft" bench generate --model $model --batch 1,0
check "bench generate --batch 1,0: usage error ($out)" test $rc -eq $EXIT_USAGE
finish
