"""``compsec search``: exit codes, outputs, the digits mode and one-line input errors."""

from __future__ import annotations

import json

import pytest

from compsec.cli.main import run


@pytest.mark.slow
def test_search_cli_writes_the_log_summary_and_probe_file(tmp_path, tiny_model_dir):
    out = tmp_path / "run"
    code = run(["search", str(tiny_model_dir), "--variant", "int2-rtn", "--budget", "30", "--seed-limit", "3",
                "--seeds", "refusal,over-refusal", "--max-new-tokens", "8", "--out", str(out)])
    summary = json.loads((out / "summary.json").read_text())
    assert code == (1 if summary["divergent_count"] else 0)
    assert summary["evaluations"] <= 30 and (out / "events.jsonl").is_file()
    assert (out / "divergent_probes.jsonl").is_file()


@pytest.mark.behaviour
def test_search_cli_digits_mode(tmp_path):
    code = run(["search", "--digits", "--variant", "int2-rtn", "--eps", "0.1", "--pgd-steps", "10",
                "--out", str(tmp_path)])
    rows = json.loads((tmp_path / "digits_boundary.json").read_text())["rows"]
    assert [(r["format"], r["eps"]) for r in rows] == [("int2-rtn", 0.1)]
    assert code == (1 if rows[0]["flipped"] else 0) and rows[0]["eligible"] > 300


def test_search_cli_bad_input_is_exit_2(tmp_path, tiny_model_dir, capsys):
    assert run(["search", str(tiny_model_dir), "--objective", "accuracy", "--out", str(tmp_path)]) == 2
    assert "objective" in capsys.readouterr().err
    assert run(["search", "--out", str(tmp_path)]) == 2
