#!/usr/bin/env python3
"""The PyTorch + PEFT side of scripts/gpu-check.sh: the training steps `vkft bench train` runs,
on the same GPU, for the comparison in docs/GPU.md. A model of the named shape with random bf16
weights (transformers, SDPA attention), LoRA r=16 alpha=32 on all seven projections (PEFT), AdamW
at lr 1e-4 over rows x seq random tokens, loss on every token; one warm-up step, then the mean of
`steps` timed steps (CUDA synchronized). Prints one JSON line per run, the fields of vkft's:
tokens/s, model TFLOP/s (the same FLOP count as src/cli/bench_train.c) and peak device memory
(torch.cuda.max_memory_reserved; allocated beside it). A bf16 matmul of 8192^3 gives the
device's ceiling.

Usage: gpu_check_torch.py --shapes qwen2.5-0.5b,llama-3.2-1b --rows 4 --seq 1024 --steps 5
"""
import argparse
import json
import sys
import time

SHAPES = {  # the layer sizes of each model's config.json (as bench_train.c's table)
    "tiny": dict(arch="llama", vocab=8192, hidden=256, inter=688, layers=4, heads=8, kv=4,
                 head_dim=32, tie=False, theta=10000.0, eps=1e-5),
    "qwen2.5-0.5b": dict(arch="qwen2", vocab=151936, hidden=896, inter=4864, layers=24, heads=14,
                         kv=2, head_dim=64, tie=True, theta=1000000.0, eps=1e-6),
    "llama-3.2-1b": dict(arch="llama", vocab=128256, hidden=2048, inter=8192, layers=16,
                         heads=32, kv=8, head_dim=64, tie=True, theta=500000.0, eps=1e-5),
    "llama-3.1-8b": dict(arch="llama", vocab=128256, hidden=4096, inter=14336, layers=32,
                         heads=32, kv=8, head_dim=128, tie=False, theta=500000.0, eps=1e-5),
}
LORA_R = 16


def step_flops(s, tokens, seq):
    """Model FLOPs of a LoRA step, as step_flops() in src/cli/bench_train.c."""
    C, F, V = s["hidden"], s["inter"], s["vocab"]
    QD, KD = s["heads"] * s["head_dim"], s["kv"] * s["head_dim"]
    per_layer = C * QD + 2 * C * KD + QD * C + 3 * C * F
    weights = s["layers"] * per_layer + V * C
    flops = 4.0 * weights * tokens
    ins_outs = (C + QD) + 2 * (C + KD) + (QD + C) + 2 * (C + F) + (F + C)
    flops += 6.0 * LORA_R * ins_outs * s["layers"] * tokens
    pairs = tokens * (seq + 1) / 2.0
    flops += 3.5 * 4.0 * QD * pairs * s["layers"]
    return flops


def matmul_ceiling(torch):
    n = 8192
    a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(10):
        a @ b
    torch.cuda.synchronize()
    return 2.0 * n ** 3 * 10 / (time.perf_counter() - t0) / 1e12


def build(torch, name):
    import transformers
    s = SHAPES[name]
    common = dict(vocab_size=s["vocab"], hidden_size=s["hidden"], intermediate_size=s["inter"],
                  num_hidden_layers=s["layers"], num_attention_heads=s["heads"],
                  num_key_value_heads=s["kv"], rms_norm_eps=s["eps"], rope_theta=s["theta"],
                  tie_word_embeddings=s["tie"], max_position_embeddings=131072)
    if s["arch"] == "qwen2":
        config = transformers.Qwen2Config(**common)
    else:
        config = transformers.LlamaConfig(head_dim=s["head_dim"], **common)
    config._attn_implementation = "sdpa"
    torch.manual_seed(1)
    with torch.device("cuda"):
        model = transformers.AutoModelForCausalLM.from_config(config, torch_dtype=torch.bfloat16,
                                                              attn_implementation="sdpa")
    return model


def run(torch, name, rows, seq, steps):
    import peft
    model = build(torch, name)
    lora = peft.LoraConfig(r=LORA_R, lora_alpha=2 * LORA_R, lora_dropout=0.0,
                           target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj",
                                           "up_proj", "down_proj"])
    model = peft.get_peft_model(model, lora)
    for p in model.parameters():  # fp32 trainable weights and AdamW state, as vkft keeps them
        if p.requires_grad:
            p.data = p.data.float()
    model.train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    vocab = SHAPES[name]["vocab"]
    ids = (torch.arange(rows * seq, device="cuda") * 2654435761 % vocab).view(rows, seq)
    torch.cuda.reset_peak_memory_stats()

    def step():
        out = model(input_ids=ids, labels=ids)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)

    step()  # warm-up
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    torch.cuda.synchronize()
    ms = (time.perf_counter() - t0) / steps * 1e3
    tokens = rows * seq
    flops = step_flops(SHAPES[name], tokens, seq)
    result = {"bench": "train", "shape": name, "method": "lora", "backend": "pytorch+peft",
              "rows": rows, "seq": seq, "tokens": tokens, "steps": steps,
              "ms_per_step": round(ms, 1), "tokens_per_s": round(tokens / (ms / 1e3), 1),
              "tflops": round(flops / (ms / 1e3) / 1e12, 4),
              # what the process held at its peak (the caching allocator's reserve, as vkft's
              # device_mib counts its memory blocks), and what tensors used of it
              "device_mib": round(torch.cuda.max_memory_reserved() / 2 ** 20, 1),
              "allocated_mib": round(torch.cuda.max_memory_allocated() / 2 ** 20, 1)}
    del model, opt
    torch.cuda.empty_cache()
    return result


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shapes", default="qwen2.5-0.5b,llama-3.2-1b,llama-3.1-8b")
    ap.add_argument("--rows", type=int, default=4)
    ap.add_argument("--seq", type=int, default=1024)
    ap.add_argument("--steps", type=int, default=5)
    args = ap.parse_args()
    try:
        import torch
        import transformers  # noqa: F401
        import peft  # noqa: F401
    except ImportError as e:
        print(json.dumps({"bench": "torch", "skipped": f"no {e.name}"}))
        return 0
    if not torch.cuda.is_available():
        print(json.dumps({"bench": "torch", "skipped": "no CUDA device"}))
        return 0
    print(json.dumps({"bench": "matmul", "backend": "pytorch", "dtype": "bf16", "shape": "8192^3",
                      "tflops": round(matmul_ceiling(torch), 1),
                      "device": torch.cuda.get_device_name()}), flush=True)
    for name in args.shapes.split(","):
        try:
            print(json.dumps(run(torch, name, args.rows, args.seq, args.steps)), flush=True)
        except Exception as e:  # one shape failing (out of memory, say) does not stop the others
            print(json.dumps({"bench": "train", "shape": name, "backend": "pytorch+peft",
                              "error": f"{type(e).__name__}: {e}"[:300]}), flush=True)
            torch.cuda.empty_cache()
    return 0


if __name__ == "__main__":
    sys.exit(main())
