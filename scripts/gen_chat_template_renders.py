#!/usr/bin/env python3
"""Renders the real chat templates of llama.cpp's models/templates folder for every conversation in
tests/data/chat_conversations.json, and every expression case of
tests/data/chat_template_cases.json against its context, with Python Jinja2 set up the way
transformers' apply_chat_template sets it up, and writes tests/data/chat_renders.jsonl, which
tests/test_chat_template_real.c compares vkft's renders with (the test needs no Python), and
tests/data/chat_templates.md, which says where each template comes from.

The templates are not part of vkft: `scripts/setup.sh test` takes them from the copy of llama.cpp
that the npm package node-llama-cpp ships (llama/gitRelease.bundle). Which of them are rendered is
decided by SOURCES below: a template is used when its model's licence lets us publish text made
from it (the renders are such text); byte-identical duplicates are rendered once. A template of
the folder that SOURCES does not name is an error: a newer llama.cpp needs a decision first.

The environment follows transformers' src/transformers/utils/chat_template_utils.py
(_compile_jinja_template and render_jinja_template, transformers 4.5x):
  - jinja2.sandbox.ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True) with the
    loopcontrols extension and a {% generation %} block that renders its body (transformers'
    AssistantTracker does the same when no assistant mask is asked for);
  - a `tojson` filter that is json.dumps(x, ensure_ascii=False, indent=None, separators=None,
    sort_keys=False) with those keyword arguments exposed;
  - globals raise_exception(message) (raises jinja2.exceptions.TemplateError) and
    strftime_now(format); transformers formats datetime.now(), here a fixed date (the one vkft
    uses by default, 26 July 2024) so that renders repeat;
  - render(messages=..., tools=... or None, documents=... or None, add_generation_prompt=...,
    **special_tokens, **kwargs).
A render that raises is stored as {"error": "<ExceptionType>: <message>"}.

Usage (from the repository root, after `scripts/setup.sh test`):
  python3 scripts/gen_chat_template_renders.py .deps/llama.cpp/models/templates
"""
import datetime
import hashlib
import json
import os
import platform
import subprocess
import sys
from importlib.metadata import version

import jinja2
import jinja2.ext
import jinja2.nodes
import jinja2.sandbox

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
CONVERSATIONS = os.path.join(ROOT, "tests", "data", "chat_conversations.json")
CASES = os.path.join(ROOT, "tests", "data", "chat_template_cases.json")
OUTPUT = os.path.join(ROOT, "tests", "data", "chat_renders.jsonl")
SOURCES_MD = os.path.join(ROOT, "tests", "data", "chat_templates.md")
PACKAGE = "node-llama-cpp@3.21.1"  # `scripts/setup.sh test` installs this one
FIXED_DATE = datetime.datetime(2024, 7, 26)

# Every template of models/templates: the model (Hugging Face repository) it was taken from, the
# licence that model is published under as its model card states it ("(?)": not verified, the
# pages could not be read from here), and whether we render it. Not rendered: licences that do
# not let us publish text derived from the template (non-commercial, custom terms), and unknown
# ones.
SOURCES = {
    "Apertus-8B-Instruct.jinja": ("swiss-ai/Apertus-8B-Instruct-2509", "Apache-2.0", True),
    "Apriel-1.6-15b-Thinker-fixed.jinja": (
        "ServiceNow-AI/Apriel-1.6-15b-Thinker (fixed by llama.cpp)", "MIT", True
    ),
    "Bielik-11B-v3.0-Instruct.jinja": (
        "speakleash/Bielik-11B-v3.0-Instruct", "Apache-2.0 (?)", True
    ),
    "ByteDance-Seed-OSS.jinja": ("ByteDance-Seed/Seed-OSS-36B-Instruct", "Apache-2.0", True),
    "Cohere2MoE.jinja": ("CohereLabs Command A family", "CC-BY-NC-4.0", False),
    "CohereForAI-c4ai-command-r-plus-tool_use.jinja": (
        "CohereForAI/c4ai-command-r-plus (tool_use)", "CC-BY-NC-4.0", False
    ),
    "CohereForAI-c4ai-command-r7b-12-2024-tool_use.jinja": (
        "CohereForAI/c4ai-command-r7b-12-2024 (tool_use)", "CC-BY-NC-4.0", False
    ),
    "GLM-4.6.jinja": ("zai-org/GLM-4.6", "MIT", True),
    "GLM-4.7-Flash.jinja": ("zai-org/GLM-4.7-Flash", "MIT (?)", True),
    "GigaChat3-10B-A1.8B.jinja": ("ai-sage/GigaChat3-10B-A1.8B", "MIT", True),
    "GigaChat3.1-10B-A1.8B.jinja": ("ai-sage/GigaChat3.1-10B-A1.8B", "MIT (?)", True),
    "HuggingFaceTB-SmolLM3-3B.jinja": ("HuggingFaceTB/SmolLM3-3B", "Apache-2.0", True),
    "Kimi-K2-Instruct.jinja": ("moonshotai/Kimi-K2-Instruct", "Modified MIT", True),
    "Kimi-K2-Thinking.jinja": ("moonshotai/Kimi-K2-Thinking", "Modified MIT", True),
    "Kimi-K3.jinja": ("moonshotai Kimi K3", "Modified MIT (?)", True),
    "LFM2-8B-A1B.jinja": ("LiquidAI/LFM2-8B-A1B", "LFM Open License v1.0", False),
    "LFM2.5-8B-A1B.jinja": ("LiquidAI/LFM2.5-8B-A1B", "LFM Open License v1.0", False),
    "LFM2.5-Instruct.jinja": ("LiquidAI LFM2.5 Instruct", "LFM Open License v1.0", False),
    "MiMo-VL.jinja": ("XiaomiMiMo/MiMo-VL-7B", "MIT", True),
    "MiniMax-M1.jinja": ("MiniMaxAI/MiniMax-M1", "Apache-2.0", True),
    "MiniMax-M2.jinja": ("MiniMaxAI/MiniMax-M2", "MIT", True),
    "MiniMax-M3.jinja": ("MiniMaxAI/MiniMax-M3", "unknown", False),
    "Mistral-Small-3.2-24B-Instruct-2506.jinja": (
        "mistralai/Mistral-Small-3.2-24B-Instruct-2506", "Apache-2.0", True
    ),
    "NVIDIA-Nemotron-3-Nano-30B-A3B-BF16.jinja": (
        "nvidia/NVIDIA-Nemotron-3-Nano-30B-A3B-BF16", "NVIDIA Open Model License", False
    ),
    "NVIDIA-Nemotron-Nano-v2.jinja": (
        "nvidia/NVIDIA-Nemotron-Nano-9B-v2", "NVIDIA Open Model License", False
    ),
    "NousResearch-Hermes-2-Pro-Llama-3-8B-tool_use.jinja": (
        "NousResearch/Hermes-2-Pro-Llama-3-8B (tool_use)", "Llama 3 Community License", True
    ),
    "NousResearch-Hermes-3-Llama-3.1-8B-tool_use.jinja": (
        "NousResearch/Hermes-3-Llama-3.1-8B (tool_use)", "Llama 3 Community License", True
    ),
    "Qwen-QwQ-32B.jinja": ("Qwen/QwQ-32B", "Apache-2.0", True),
    "Qwen-Qwen2.5-7B-Instruct.jinja": ("Qwen/Qwen2.5-7B-Instruct", "Apache-2.0", True),
    "Qwen-Qwen3-0.6B.jinja": ("Qwen/Qwen3-0.6B", "Apache-2.0", True),
    "Qwen3-Coder.jinja": ("Qwen/Qwen3-Coder", "Apache-2.0", True),
    "Qwen3.5-4B.jinja": ("Qwen/Qwen3.5-4B", "Apache-2.0 (?)", True),
    "Reka-Edge.jinja": ("RekaAI Reka Edge", "unknown", False),
    "StepFun3.5-Flash.jinja": ("stepfun-ai/Step-3.5-Flash", "Apache-2.0 (?)", True),
    "deepseek-ai-DeepSeek-R1-Distill-Llama-8B.jinja": (
        "deepseek-ai/DeepSeek-R1-Distill-Llama-8B",
        "MIT (weights also under the Llama 3.1 licence)",
        True,
    ),
    "deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja": (
        "deepseek-ai/DeepSeek-R1-Distill-Qwen-32B", "MIT", True
    ),
    "deepseek-ai-DeepSeek-V3.1.jinja": ("deepseek-ai/DeepSeek-V3.1", "MIT", True),
    "deepseek-ai-DeepSeek-V3.2.jinja": ("deepseek-ai/DeepSeek-V3.2", "MIT", True),
    "deepseek-ai-DeepSeek-V4-Flash-0731.jinja": ("deepseek-ai DeepSeek-V4-Flash", "MIT (?)", True),
    "deepseek-ai-DeepSeek-V4.jinja": ("deepseek-ai DeepSeek-V4", "MIT (?)", True),
    "fireworks-ai-llama-3-firefunction-v2.jinja": (
        "fireworks-ai/llama-3-firefunction-v2", "Llama 3 Community License", True
    ),
    "google-gemma-2-2b-it.jinja": ("google/gemma-2-2b-it", "Gemma Terms of Use", False),
    "google-gemma-4-31B-it-interleaved.jinja": (
        "google Gemma 4 31B it (interleaved thinking)", "Gemma licence (?)", False
    ),
    "google-gemma-4-31B-it.jinja": ("google Gemma 4 31B it", "Gemma licence (?)", False),
    "ibm-granite-granite-3.3-2B-Instruct.jinja": (
        "ibm-granite/granite-3.3-2b-instruct", "Apache-2.0", True
    ),
    "ibm-granite-granite-4.0.jinja": ("ibm-granite granite-4.0 family", "Apache-2.0", True),
    "ibm-granite-granite-4.1.jinja": ("ibm-granite granite-4.1 family", "Apache-2.0 (?)", True),
    "llama-cpp-deepseek-r1.jinja": (
        "llama.cpp's own DeepSeek R1 template", "MIT (llama.cpp)", True
    ),
    "llama-cpp-rwkv-world.jinja": ("llama.cpp's own RWKV World template", "MIT (llama.cpp)", True),
    "meetkai-functionary-medium-v3.1.jinja": ("meetkai/functionary-medium-v3.1", "MIT", True),
    "meetkai-functionary-medium-v3.2.jinja": ("meetkai/functionary-medium-v3.2", "MIT", True),
    "meta-llama-Llama-3.1-8B-Instruct.jinja": (
        "meta-llama/Llama-3.1-8B-Instruct", "Llama 3.1 Community License", True
    ),
    "meta-llama-Llama-3.2-3B-Instruct.jinja": (
        "meta-llama/Llama-3.2-3B-Instruct", "Llama 3.2 Community License", True
    ),
    "meta-llama-Llama-3.3-70B-Instruct.jinja": (
        "meta-llama/Llama-3.3-70B-Instruct", "Llama 3.3 Community License", True
    ),
    "microsoft-Phi-3.5-mini-instruct.jinja": ("microsoft/Phi-3.5-mini-instruct", "MIT", True),
    "mistralai-Ministral-3-14B-Reasoning-2512.jinja": (
        "mistralai/Ministral-3-14B-Reasoning-2512", "Apache-2.0", True
    ),
    "mistralai-Mistral-Nemo-Instruct-2407.jinja": (
        "mistralai/Mistral-Nemo-Instruct-2407", "Apache-2.0", True
    ),
    "moonshotai-Kimi-K2.jinja": (
        "moonshotai/Kimi-K2-Instruct (older revision)", "Modified MIT", True
    ),
    "muse-glimmer.jinja": ("Muse Glimmer (origin not found)", "unknown", False),
    "openai-gpt-oss-120b.jinja": ("openai/gpt-oss-120b", "Apache-2.0", True),
    "openbmb-MiniCPM5-1B.jinja": ("openbmb/MiniCPM5-1B", "Apache-2.0", True),
    "poolside-Laguna-S-2.1.jinja": ("poolside Laguna S.2.1", "Apache-2.0 (?)", True),
    "poolside-Laguna-XS-2.1.jinja": ("poolside Laguna XS.2.1", "Apache-2.0 (?)", True),
    "poolside-Laguna-XS.2.jinja": ("poolside/Laguna-XS.2", "Apache-2.0", True),
    "tencent-Hy3.jinja": (
        "tencent/Hy3-preview", "Tencent Hy Community License (territory limits)", False
    ),
    "unsloth-Apriel-1.5.jinja": (
        "unsloth copy of ServiceNow-AI/Apriel-1.5-15b-Thinker", "MIT", True
    ),
    "unsloth-mistral-Devstral-Small-2507.jinja": (
        "unsloth copy of mistralai/Devstral-Small-2507", "Apache-2.0", True
    ),
    "upstage-Solar-Open-100B.jinja": (
        "upstage/Solar-Open-100B",
        "Upstage Solar License (Apache-2.0 terms, plus naming the Solar brand in derived models)",
        True,
    ),
}


class GenerationBlock(jinja2.ext.Extension):
    """{% generation %}...{% endgeneration %}: the body, rendered in place."""

    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        call = self.call_method("_body")
        return jinja2.nodes.CallBlock(call, [], [], body).set_lineno(lineno)

    def _body(self, caller):
        return caller()


def make_environment():
    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(
            x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys
        )

    def strftime_now(format):
        return FIXED_DATE.strftime(format)

    env = jinja2.sandbox.ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[GenerationBlock, jinja2.ext.loopcontrols]
    )
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


def render(env, source, case, shared, prompt):
    messages = case["messages"]
    ends_with_reply = bool(messages) and messages[-1]["role"] == "assistant"
    if prompt and ends_with_reply:
        messages = messages[:-1]
    kwargs = dict(shared["special_tokens"])
    kwargs.update(case.get("kwargs", {}))
    try:
        template = env.from_string(source)
        text = template.render(
            messages=messages,
            tools=shared["tools"] if case.get("tools") else None,
            documents=case.get("documents"),
            add_generation_prompt=prompt,
            **kwargs,
        )
        return {"output": text}
    except Exception as e:  # the reference outcome of this render is "it raises"
        return {"error": "%s: %s" % (type(e).__name__, e)}


def render_case(env, source, context):
    try:
        return {"output": env.from_string(source).render(**context)}
    except Exception as e:
        return {"error": "%s: %s" % (type(e).__name__, e)}


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def git_commit(folder):
    """The commit of the llama.cpp checkout that holds folder, or None."""
    try:
        out = subprocess.run(
            ["git", "-C", folder, "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        )
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def choose(folder):
    """Every template of folder as (name, bytes, sha256, verdict), verdict None for the ones
    rendered; and the names rendered."""
    env = make_environment()
    names = sorted(n for n in os.listdir(folder) if n.endswith(".jinja"))
    unknown = [n for n in names if n not in SOURCES]
    if unknown:
        sys.exit("not in SOURCES (add its model and licence first): " + ", ".join(unknown))
    rows, used, seen = [], [], {}
    for name in names:
        with open(os.path.join(folder, name), "rb") as f:
            data = f.read()
        digest = sha256(data)
        verdict = None
        if not SOURCES[name][2]:
            verdict = "not rendered: licence " + (
                "unknown" if SOURCES[name][1] == "unknown" else "terms")
        elif digest in seen:
            verdict = "not rendered: the same bytes as `%s`" % seen[digest]
        else:
            try:
                env.from_string(data.decode("utf-8"))
            except Exception as e:  # Jinja2 itself cannot compile it: nothing to compare with
                verdict = "not rendered: Jinja2 cannot compile it (%s)" % type(e).__name__
        seen.setdefault(digest, name)
        rows.append((name, len(data), digest, verdict))
        if verdict is None:
            used.append(name)
    return rows, used


def write_sources(rows, used, commit):
    """tests/data/chat_templates.md: where each template comes from (no template text)."""
    out = [
        "# Real chat templates: sources and licences",
        "",
        "Written by `scripts/gen_chat_template_renders.py`; do not edit by hand.",
        "",
        "tests/test_chat_template_real.c renders the chat templates of llama.cpp's",
        "`models/templates/` folder and compares vkft's renders with Python Jinja2's",
        "(`chat_renders.jsonl`). The templates are not kept in this repository:",
        "`scripts/setup.sh test` installs the npm package `%s` (into `.deps/npm`, or" % PACKAGE,
        "`$VKFT_NPM_DIR`), whose `llama/gitRelease.bundle` holds llama.cpp's source (llama.cpp,",
        "MIT licence), and checks out its `models/templates` into `.deps/llama.cpp` (or",
        "`$VKFT_LLAMA_CPP_DIR`).",
        "The renders were made from llama.cpp commit `%s`." % (commit or "unknown"),
        "The test checks every template's SHA-256 against the one below (also stored in",
        "`chat_renders.jsonl`), so that renders and templates never silently disagree.",
        "",
        "llama.cpp's scripts/get_chat_template.py took each template from the Hugging Face model",
        "repository in the \"model\" column (`tokenizer_config.json` or `chat_template.jinja`).",
        "Licence: the model's licence as its model card states it, (?) where it could not be",
        "verified from here. Templates whose licence does not let us publish text derived from",
        "them (non-commercial or custom terms), or whose licence is unknown, are not rendered: the",
        "renders are such text.",
        "",
        "%d templates in the folder, %d rendered." % (len(rows), len(used)),
        "",
        "| file | bytes | SHA-256 | model | licence | use |",
        "|---|---:|---|---|---|---|",
    ]
    for name, size, digest, verdict in rows:
        model, licence, _ = SOURCES[name]
        out.append(
            "| `%s` | %d | `%s` | %s | %s | %s |"
            % (name, size, digest, model, licence, verdict or "rendered")
        )
    with open(SOURCES_MD, "w", encoding="utf-8", newline="\n") as f:
        f.write("\n".join(out) + "\n")


def main(argv):
    if len(argv) != 2 or not os.path.isdir(argv[1]):
        sys.exit("usage: gen_chat_template_renders.py TEMPLATES_DIR (llama.cpp's models/templates)")
    folder = argv[1]
    with open(CONVERSATIONS, encoding="utf-8") as f:
        shared = json.load(f)
    env = make_environment()
    rows, names = choose(folder)
    commit = git_commit(folder)
    lines = [
        {
            "generator": "scripts/gen_chat_template_renders.py",
            "python": platform.python_version(),
            "jinja2": version("jinja2"),
            "markupsafe": version("markupsafe"),
            "strftime_now_date": FIXED_DATE.strftime("%Y-%m-%d"),
            "llama_cpp_commit": commit,
            "templates": len(names),
            "renders": 0,
            "sha256": {name: digest for name, _, digest, verdict in rows if verdict is None},
        }
    ]
    for name in names:
        with open(os.path.join(folder, name), encoding="utf-8", newline="") as f:
            source = f.read()
        for case in shared["cases"]:
            for prompt in (False, True):
                record = {"template": name, "case": case["id"], "prompt": prompt}
                record.update(render(env, source, case, shared, prompt))
                lines.append(record)
    with open(CASES, encoding="utf-8") as f:
        cases = json.load(f)
    for source in cases["cases"]:
        record = {"source": source}
        record.update(render_case(env, source, cases["context"]))
        lines.append(record)
    lines[0]["renders"] = len(lines) - 1  # the test checks these counts: no silent truncation
    with open(OUTPUT, "w", encoding="utf-8", newline="\n") as f:
        for record in lines:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
    write_sources(rows, names, commit)
    errors = sum(1 for r in lines[1:] if "error" in r)
    print(
        "%d of %d templates and %d expression cases, %d renders (%d raise) -> %s, %s"
        % (len(names), len(rows), len(cases["cases"]), len(lines) - 1, errors, OUTPUT, SOURCES_MD)
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv))
