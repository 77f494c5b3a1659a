"""Every verb x every class of bad input: exit 2, one line on stderr (no "internal error", no traceback),
nothing written to the output path, no pickle ever executed.

In process (``compsec.cli.main.run``), so the ~1,500 cases take seconds: every refusal must happen before a
model is loaded. The corpus (tests/inputs/hostile_corpus.py) is built once per session.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from hostile_corpus import PICKLE_MARKER, audit_logs, build_model_inputs, json_inputs

from compsec.cli.main import run

# argv template per verb: {model} the hostile input, {out} a fresh output path, {tiny} a valid model folder
MODEL_VERBS = {
    "audit": "audit {model} --out {out} --variants nf4 --limit 1",
    "attack": "attack --model {model} --out {out}",
    "check": "check {model}",  # its --json is the findings report, written for hostile input too
    "diff-as-b": "diff {tiny} {model} --json {out}",
    "diff-as-a": "diff {model} {tiny} --json {out}",
    "distill": "distill {model} --student {student} --out {out}",
    "serve": "serve {model} --port 0",
    "harden": "harden {model} --out {out}",
    "heads": "heads {model} --out {out} --limit 1",
    "layers": "layers {model} --json {out}",
    "lm-eval": "lm-eval {model} --out {out} --limit 1",
    "manifest-create": "manifest create {model} -o {out}",
    "provenance-show": "provenance show {model}",
    "provenance-verify": "provenance verify {model} --source {tiny}",
    "prune": "prune {model} --out {out}",
    "quantize": "quantize {model} --out {out}",
    "scan": "scan {model} --no-progress --json {out} --sarif {out}.sarif",
    "search": "search {model} --out {out}",
}
# a manifest hashes any file without reading it as weights: a pickle, or a folder without weights, is fine
NOT_REFUSED = {("manifest-create", "pickle-runs-code"), ("manifest-create", "config-only")}

# file-taking options: {bad} is each hostile JSON/JSONL input
JSON_OPTIONS = {
    "audit-probes": "audit {tiny} --probes {bad} --out {out} --variants nf4 --no-contrast",
    "heads-probes": "heads {tiny} --probes {bad} --out {out}",
    "judges-labelled": "judges --evaluate --labelled {bad}",
    "distill-student": "distill {tiny} --student {bad} --out {out}",
    "garak-compare": "garak-compare {bad} {bad} --out {out}",
    "prune-protect": "prune {tiny} --method heads --protect {bad} --out {out}",
    "attack-train": "attack --scenario custom --train {bad} --out {out} --model {tiny}",
    "audit-baseline": "audit {tiny} --baseline {bad} --out {out}",
}

LOG_VERBS = {
    "report": "report {log} --sarif {out}",
    "compare-a": "compare {log} {log} --json {out}",
}

# absurd options with otherwise valid inputs; {file} an existing file, {full} a folder holding foreign files
BAD_OPTIONS = [
    "audit {tiny} --out {out} --device bogus", "audit {tiny} --out {out} --device cuda:99",
    "audit {tiny} --out {out} --batch-size 0", "audit {tiny} --out {out} --limit -1",
    "audit {tiny} --out {out} --max-new-tokens 0", "audit {tiny} --out {out} --concurrency 0",
    "audit {tiny} --out {out} --p-value 2", "audit {tiny} --out {full}", "audit {tiny} --out {file}",
    "audit {tiny} --out {out} --sarif {dir}", "audit {tiny} --out {out} --junit {file}/below/j.xml",
    "attack --out {out} --device bogus", "attack --out {out} --batch-size 0", "attack --out {out} --inject-steps -1",
    "attack --out {full}", "attack --out {file}", "attack --out {out} --probe-limit 0",
    "check {tiny} --json {dir}", "check {tiny} --json {file}/f.json",
    "compare {tiny} {tiny} --json {dir}",
    "defend-matrix --attack-dir {out}/missing --out {out}", "defend-matrix --attack-dir {tiny} --out {full}",
    "defend-matrix --attack-dir {tiny} --out {out} --device bogus",
    "defend-matrix --attack-dir {tiny} --out {out} --probe-limit -1",
    "demo --out {full} --quick", "demo --out {file} --quick", "demo --out {out} --device bogus --quick",
    "demo --out {out} --probe-limit 0",
    "diff {tiny} {tiny} --json {dir}", "diff {tiny} {out}/missing",
    "distill {tiny} --student {student} --out {out} --steps -1",
    "distill {tiny} --student {student} --out {out} --batch-size 0",
    "distill {tiny} --student {student} --out {out} --lr 0",
    "distill {tiny} --student {student} --out {out} --alpha 2",
    "distill {tiny} --student {student} --out {out} --device bogus",
    "distill {tiny} --student {student} --out {full}",
    "garak-compare {file} {file} --out {out} --threshold 2", "garak-compare {file} {file} --out {full}",
    "harden {tiny} --out {full}", "harden {tiny} --out {file}", "harden {tiny} --out {out} --device bogus",
    "heads {tiny} --limit -1", "heads {tiny} --limit 0", "heads {tiny} --out {dir}", "heads {tiny} --device bogus",
    "heads {tiny} --batch-size 0", "heads {tiny} --min-drop -1",
    "layers {tiny} --top -1", "layers {tiny} --json {dir}", "layers {tiny} --format nope",
    "lm-eval {tiny} --out {out} --limit -1", "lm-eval {tiny} --out {out} --batch-size 0",
    "lm-eval {tiny} --out {full}", "lm-eval {tiny} --out {out} --device bogus",
    "manifest create {tiny} -o {dir}", "manifest create {tiny} -o {file}/m.json", "manifest create {out}/nope",
    "manifest verify {out}/nope {file}", "manifest verify {tiny} {out}/nope.json",
    "provenance show {out}/nope", "provenance verify {tiny} --source {out}/nope",
    "prune {tiny} --out {full}", "prune {tiny} --out {file}", "prune {tiny} --out {out} --sparsity 2",
    "prune {tiny} --out {out} --sparsity -0.5", "prune {tiny} --out {out} --method bogus",
    "quantize {tiny} --out {full}", "quantize {tiny} --out {out} --texts -1", "quantize {tiny} --out {out} --texts 0",
    "quantize {tiny} --out {out} --device bogus", "quantize {tiny} --out {out} --format q4_0",
    "report {out}/nope", "report {tiny} --sarif {dir}",
    "scan {tiny} --no-progress --sample -1", "scan {tiny} --no-progress --json {dir}",
    "scan {tiny} --no-progress --sarif {file}/s.sarif", "scan {tiny} --no-progress --eps 3",
    "search {tiny} --out {out} --budget 0", "search {tiny} --out {out} --pool 0", "search {tiny} --out {out} --beam -1",
    "search {tiny} --out {full}", "search {tiny} --out {out} --device bogus", "search --out {out}",
    "search {tokenizerless} --out {out}", "search {tiny} --out {out} --variant bogus", "search --digits --out {out} --eps x",
    "prune {tiny} --out {out} --method 5:4", "attack --out {out} --outlier-layers x", "search --digits --out {out} --pgd-steps 0", "search --digits --out {full}",
    "serve {tiny} --port 70000", "serve {tiny} --port -1", "serve {tiny} --device bogus",
    "serve {tiny} --max-new-tokens 0", "serve {tokenizerless}",
    "survival --out {full} --fixture digits", "survival --out {file}", "survival --out {out} --fixture cats",
    "survival --out {out} --device bogus", "survival --out {out} --fixture digits --compressions nf4,bogus",
    "tiny --out {full}", "tiny --out {file}", "tiny --out ''",
    "judges --evaluate --labelled {out}/nope.jsonl",
    "no-such-verb", "audit", "audit {tiny} --no-such-option",
]


@pytest.fixture(scope="session")
def corpus(tmp_path_factory, tiny_model_dir):
    """Everything the cases refer to, built once: hostile inputs, a valid model, foreign-content folders."""
    import json

    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # the one-line contract is about compsec's own messages
    root = tmp_path_factory.mktemp("hostile")
    (root / "outs").mkdir()  # report files go here: their folder exists, so only the input can be refused
    tokenizerless = root / "tokenizerless"
    tokenizerless.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy2(tiny_model_dir / name, tokenizerless / name)
    full = root / "full"
    full.mkdir()
    (full / "stale.safetensors").write_bytes(b"stale model of an older run")
    student = root / "student.json"
    student.write_text(json.dumps({"num_hidden_layers": 1}))
    places = {"tiny": tiny_model_dir, "tokenizerless": tokenizerless, "full": full, "file": student,
              "dir": root, "student": student}
    yield {"root": root, "places": places, "models": build_model_inputs(root, tiny_model_dir),
           "json": json_inputs(root), "logs": audit_logs(root)}
    assert not (root / PICKLE_MARKER).exists(), "a hostile pickle was executed"


def _argv(template: str, places: dict, out: Path, **extra) -> list[str]:
    values = {**{k: str(v) for k, v in places.items()}, "out": str(out), **{k: str(v) for k, v in extra.items()}}
    return [part.format(**values) if part != "''" else "" for part in template.split()]


def _snapshot(folder: Path) -> set:
    return {(p.relative_to(folder), p.stat().st_mtime_ns if not p.is_symlink() else 0) for p in folder.rglob("*")}


def _refusal_problem(argv: list[str], out: Path, capsys) -> str | None:
    """None when ``argv`` was refused as the contract says, else what went wrong."""
    code = run(argv)
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    if code != 2 or len(lines) != 1 or "internal error" in err or "Traceback" in err:
        return f"{' '.join(argv)} -> exit {code}, stderr {err.strip()[-300:]!r}"
    if out.exists() or Path(f"{out}.sarif").exists():
        return f"{' '.join(argv)} -> wrote its output"
    return None


def _assert_refused(argv: list[str], out: Path, capsys) -> None:
    problem = _refusal_problem(argv, out, capsys)
    assert problem is None, problem


def _cases_of(table: dict, inputs: dict, skip=frozenset()) -> list:
    return [(verb, name) for verb in table for name in inputs if (verb, name.split(":")[-1]) not in skip]


def test_every_model_verb_refuses_every_hostile_model_input(corpus, capsys, monkeypatch):
    from compsec.bridges import chat_server

    monkeypatch.setattr(chat_server, "serve_variant", _never_serve)
    cases = _cases_of(MODEL_VERBS, corpus["models"], NOT_REFUSED)
    problems = [_refusal_problem(_argv(MODEL_VERBS[verb], corpus["places"], out, model=corpus["models"][name]),
                                 out, capsys)
                for n, (verb, name) in enumerate(cases) if (out := corpus["root"] / "outs" / f"{verb}-{n}")]
    assert len(cases) > 1000 and not any(problems), "\n".join(p for p in problems if p)


def test_every_file_option_refuses_every_hostile_json_input(corpus, capsys):
    cases = _cases_of(JSON_OPTIONS, corpus["json"])
    problems = [_refusal_problem(_argv(JSON_OPTIONS[option], corpus["places"], out, bad=corpus["json"][name]),
                                 out, capsys)
                for n, (option, name) in enumerate(cases) if (out := corpus["root"] / "outs" / f"{option}-{n}")]
    assert not any(problems), "\n".join(p for p in problems if p)


def test_report_and_compare_refuse_hostile_logs(corpus, capsys):
    problems = [_refusal_problem(_argv(LOG_VERBS[verb], corpus["places"], out, log=corpus["logs"][name]), out, capsys)
                for verb, name in _cases_of(LOG_VERBS, corpus["logs"])
                if (out := corpus["root"] / "outs" / f"{verb}-{name}")]
    assert not any(problems), "\n".join(p for p in problems if p)


@pytest.mark.parametrize("template", BAD_OPTIONS)
def test_absurd_options_are_refused_before_any_work(template, corpus, capsys, monkeypatch):
    from compsec.bridges import chat_server

    monkeypatch.setattr(chat_server, "serve_variant", _never_serve)
    before = _snapshot(corpus["places"]["full"]), _snapshot(corpus["places"]["tiny"])
    out = corpus["root"] / "outs" / f"option-{abs(hash(template))}"
    _assert_refused(_argv(template, corpus["places"], out), out, capsys)
    assert (_snapshot(corpus["places"]["full"]), _snapshot(corpus["places"]["tiny"])) == before


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_output_folder_is_refused_before_work(corpus, capsys, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        for template in ("harden {tiny} --out {out}", "audit {tiny} --out {out}", "layers {tiny} --json {out}"):
            _assert_refused(_argv(template, corpus["places"], locked / "out"), locked / "out", capsys)
    finally:
        locked.chmod(0o755)


def _never_serve(*args, **kwargs):
    raise AssertionError(f"serve got past validation with {args}")
