"""The documentation's commands hold against the real CLI, and the README's tiny-assistant tour runs as written.

- Every ``compsec ...`` command in README.md and docs/**/*.md (fenced shell blocks, the first column of tables,
  inline code) is parsed by the real click command behind ``compsec`` (``typer.main.get_command``): unknown verbs,
  options or bad values fail. Whole commands (blocks, table rows) must be complete; inline fragments only need
  existing verbs and options. A placeholder in capitals in a positional slot must be the argument name ``--help``
  shows for that slot, so ``compsec attack MODEL`` (whose positional is STAGE) fails.
- The blocks marked ``<!-- readme-test: run -->`` are run in order in an empty folder, in process, and each
  command's exit code must be one its comment announces (``(exit 0)``, ``(exit 0 or 1)``).
- Parse-only, never run here: blocks marked ``<!-- readme-test: parse-only (why) -->`` (the attack, which trains
  for minutes, and the SmolLM2 tour, which converts and loads a 135 M-parameter model), ``compsec demo``, every
  table row and every command in docs/ (each has its own tests or benchmark). Their ``python -c`` one-liners are
  compiled and their imports resolved.
- Every ``make X`` the documents name is a Makefile target.
"""

from __future__ import annotations

import ast
import importlib
import re

import pytest
from doc_commands import ROOT, DocCommand, block_commands, documents, make_targets_named, span_commands

from compsec.cli.main import _register_verbs, app, run

PLACEHOLDER = re.compile(r"^[A-Z][A-Z0-9_]*$")
EXIT_CLAIM = re.compile(r"\(exit (\d)(?: or (\d))?\)")
README = ROOT / "README.md"


def _root_command():
    import typer.main

    _register_verbs()
    return typer.main.get_command(app)


def cli_problem(command: DocCommand, tmp_path) -> str | None:
    """Why ``command`` does not parse against the real CLI (None when it does)."""
    args = [str(tmp_path / a.strip("$")) if a.startswith("$") else a for a in command.argv[1:]]
    cmd, name = _root_command(), "compsec"
    while hasattr(cmd, "commands"):  # a group: the root, or manifest / provenance
        if not args:
            return None if command.kind == "inline" else f"{name} needs a sub-command"
        if args[0] not in cmd.commands:
            return f"{name} has no sub-command {args[0]!r}"
        name = args.pop(0)
        cmd = cmd.commands[name]
    try:
        ctx = cmd.make_context(name, args, resilient_parsing=command.kind == "inline")
    except Exception as err:  # click's usage errors (typer vendors click: no click import)
        if not hasattr(err, "format_message"):
            raise
        return err.format_message()
    for param in cmd.params:
        values = ctx.params.get(param.name)
        values = values if isinstance(values, (list, tuple)) else [values]
        wrong = [v for v in values if param.param_type_name == "argument" and isinstance(v, str)
                 and PLACEHOLDER.match(v) and v.lower() != param.name]
        if wrong:
            return f"{wrong[0]} sits where {name} takes {param.name.upper()} (see compsec {name} --help)"
    return None


def all_commands() -> list[DocCommand]:
    return [c for path in documents() for c in block_commands(path) + span_commands(path)
            if c.argv and c.argv[0] == "compsec"]


def test_every_documented_compsec_command_parses(tmp_path):
    commands = all_commands()
    kinds = {(c.where.split(":")[0], c.kind) for c in commands}
    assert {("README.md", "block"), ("README.md", "table"), ("docs/results.md", "inline")} <= kinds
    problems = [f"{c.where} `{' '.join(c.argv)}`: {p}" for c in commands if (p := cli_problem(c, tmp_path))]
    assert problems == []


def test_the_checker_catches_drift(tmp_path):
    """Usage lines the README once showed, and plain mistakes: each must be refused."""
    stale = ["compsec attack MODEL --targets nf4 --inject-radius 4 --out DIR",
             "compsec provenance show ARTIFACT --source ORIGINAL", "compsec scan MODEL --sample-rows 4",
             "compsec no-such-verb", "compsec audit --out DIR", "compsec search MODEL --budget N"]
    for line in stale:
        assert cli_problem(DocCommand("test", "table", tuple(line.split())), tmp_path), line
    good = DocCommand("test", "table", ("compsec", "attack", "verify", "--model", "M", "--out", "DIR"))
    assert cli_problem(good, tmp_path) is None


def test_every_verb_has_a_row_in_the_readme_table():
    rows = {c.argv[1] for c in span_commands(README) if c.kind == "table" and len(c.argv) > 1}
    assert set(_root_command().commands) - rows == set()


def test_python_one_liners_compile_and_import():
    liners = [c for path in documents() for c in block_commands(path) if c.argv[0].startswith("python")
              and "-c" in c.argv]
    assert liners, "the README's real-model tour makes its folder with a python -c one-liner"
    for liner in liners:
        tree = ast.parse(liner.argv[liner.argv.index("-c") + 1])
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                module = importlib.import_module(node.module)
                assert all(hasattr(module, alias.name) for alias in node.names), liner.where


def test_every_make_target_named_exists():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    targets = set(re.findall(r"^([\w.-]+)\s*:(?!=)", makefile, flags=re.MULTILINE))
    named = {t for path in documents() for t in make_targets_named(path)}
    assert {"demo", "test"} <= named
    assert named - targets == set()


def test_parse_only_blocks_say_why():
    marked = [c for c in block_commands(README) if c.argv[0] == "compsec"]
    assert {c.mode for c in marked} <= {"run", "parse-only"}, "mark every README block run or parse-only"
    assert any(c.mode == "parse-only" and c.argv[1] == "attack" for c in marked)


@pytest.mark.slow  # tiny assistant cached, 2 shared cores: 52 s at load average 7, 76 s at 10 (about 36 s CPU)
def test_the_readme_tour_runs_as_written(tmp_path, monkeypatch, tiny_model_dir):
    """The tiny-assistant tour in order, in an empty folder; ``tiny_model_dir`` only makes sure it is cached."""
    tour = [c for c in block_commands(README) if c.mode == "run"]
    assert [c.argv[:2] for c in tour[:1]] == [("compsec", "tiny")]
    monkeypatch.chdir(tmp_path)
    for command in tour:
        assert command.argv[0] == "compsec", f"{command.where}: a run block holds only compsec commands"
        claim = EXIT_CLAIM.search(command.comment)
        assert claim, f"{command.where}: say the exit code in the comment, e.g. (exit 0)"
        allowed = {int(code) for code in claim.groups() if code}
        code = run(list(command.argv[1:]))
        assert code in allowed, f"{command.where} `{' '.join(command.argv)}` exited {code}, the README says {allowed}"
    assert (tmp_path / "audit" / "report.html").is_file() and (tmp_path / "m.manifest.json").is_file()


@pytest.mark.parametrize("path", documents(), ids=lambda p: p.name)
def test_documents_show_commands_only_in_shell_blocks_we_read(path):
    """A non-shell fenced block with a compsec command would escape the checks above."""
    text = path.read_text(encoding="utf-8")
    other = re.findall(r"^\s*```(\w+)\n(.*?)^\s*```", text, flags=re.MULTILINE | re.DOTALL)
    assert not [lang for lang, body in other if lang not in {"bash", "sh", "shell", "console"}
                and re.search(r"^\s*compsec ", body, flags=re.MULTILINE)]
