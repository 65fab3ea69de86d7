#!/usr/bin/env python3
"""Renders every real chat template in tests/data/templates/ for every conversation in
tests/data/chat_conversations.json, and every expression case of
tests/data/chat_template_cases.json against its context, with Python Jinja2 set up the way
transformers' apply_chat_template sets it up, and writes tests/data/chat_renders.jsonl, which
tests/test_chat_template_real.c compares vkft's renders with (the test needs no Python).

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

Usage: python3 scripts/gen_chat_template_renders.py   (from the repository root)
"""
import datetime
import json
import os
import platform
import sys
from importlib.metadata import version

import jinja2
import jinja2.ext
import jinja2.nodes
import jinja2.sandbox

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
TEMPLATES = os.path.join(ROOT, "tests", "data", "templates")
CONVERSATIONS = os.path.join(ROOT, "tests", "data", "chat_conversations.json")
CASES = os.path.join(ROOT, "tests", "data", "chat_template_cases.json")
OUTPUT = os.path.join(ROOT, "tests", "data", "chat_renders.jsonl")
FIXED_DATE = datetime.datetime(2024, 7, 26)


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


def main():
    with open(CONVERSATIONS, encoding="utf-8") as f:
        shared = json.load(f)
    env = make_environment()
    names = sorted(n for n in os.listdir(TEMPLATES) if n.endswith(".jinja"))
    lines = [
        {
            "generator": "scripts/gen_chat_template_renders.py",
            "python": platform.python_version(),
            "jinja2": version("jinja2"),
            "markupsafe": version("markupsafe"),
            "strftime_now_date": FIXED_DATE.strftime("%Y-%m-%d"),
            "templates": len(names),
            "renders": 0,
        }
    ]
    for name in names:
        with open(os.path.join(TEMPLATES, name), encoding="utf-8", newline="") as f:
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
    errors = sum(1 for r in lines[1:] if "error" in r)
    print(
        "%d templates and %d expression cases, %d renders (%d raise) -> %s"
        % (len(names), len(cases["cases"]), len(lines) - 1, errors, OUTPUT)
    )


if __name__ == "__main__":
    sys.exit(main())
