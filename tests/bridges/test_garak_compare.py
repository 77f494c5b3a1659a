"""The garak bridge on small hand-written reports in garak 0.17.1's layout (fast; garak not needed)."""

from __future__ import annotations

import json

import pytest
from garak_format import attempt, write_report

from compsec.audit.stats import mcnemar_exact
from compsec.bridges.garak_compare import compare_reports
from compsec.bridges.garak_report import read_report
from compsec.cli.main import run
from compsec.errors import InputError

MB = "mitigation.MitigationBypass"
PROBE = "lmrc.Bullying"


def _pair(tmp_path, original_scores: list, compressed_scores: list, extra_original=(), extra_compressed=()):
    """Two reports over the same prompts ``p0, p1...``; score lists hold one [per-output] list per prompt."""
    def attempts(scores):
        return [attempt(PROBE, seq, f"p{seq}", ["a", "b"], {MB: s}) for seq, s in enumerate(scores)]
    return (read_report(write_report(tmp_path / "orig.report.jsonl", "orig",
                                     attempts(original_scores) + list(extra_original))),
            read_report(write_report(tmp_path / "comp.report.jsonl", "comp",
                                     attempts(compressed_scores) + list(extra_compressed))))


def test_reader_keeps_completed_attempts_with_their_scores_and_run_info(tmp_path):
    path = write_report(tmp_path / "r.report.jsonl", "tiny", [attempt(PROBE, 0, "hello", ["x", None], {MB: [1.0, None]})],
                        evals=[{"entry_type": "eval", "probe": PROBE, "detector": MB, "passed": 0, "fails": 1}])
    report = read_report(path)
    assert len(report.attempts) == 1  # the status-1 copy is not read
    only = report.attempts[0]
    assert (only.probe, only.seq, only.prompt, only.outputs) == (PROBE, 0, "hello", ("x", None))
    assert only.scores == {MB: (1.0, None)}
    assert report.target == "openai.OpenAICompatible tiny" and report.garak_version == "0.17.1"
    assert report.evals[0]["fails"] == 1


def test_flips_rates_and_mcnemar_are_counted_per_attempt(tmp_path):
    original = [[0.0, 0.0], [1.0, 0.0], [0.0, 0.0], [1.0, 1.0], [None, None]]
    compressed = [[0.0, 1.0], [0.0, 0.0], [0.0, 0.0], [1.0, 1.0], [1.0, 1.0]]
    stats = compare_reports(*_pair(tmp_path, original, compressed))["probes"][PROBE][MB]
    assert stats["paired"] == 4  # the attempt with only null scores on the original is left out
    assert [f["seq"] for f in stats["became_hits"]] == [0]
    assert [f["seq"] for f in stats["stopped_hitting"]] == [1]
    assert stats["mcnemar_p"] == mcnemar_exact(1, 1) == 1.0
    assert (stats["original_hits"], stats["original_outputs"]) == (3, 8)
    assert (stats["compressed_hits"], stats["compressed_outputs"]) == (5, 10)
    assert stats["original_hit_rate"] == pytest.approx(3 / 8)


def test_repeated_prompts_pair_in_seq_order_and_strays_are_counted(tmp_path):
    stray = attempt("dan.Dan_11_0", 0, "only here", ["y"], {MB: [1.0]})
    twice_original = [attempt("x.Y", 0, "same", ["a"], {MB: [0.0]}), attempt("x.Y", 1, "same", ["b"], {MB: [1.0]})]
    twice_compressed = [attempt("x.Y", 0, "same", ["a"], {MB: [1.0]}), attempt("x.Y", 1, "same", ["b"], {MB: [1.0]})]
    comparison = compare_reports(*_pair(tmp_path, [], [], [*twice_original, stray], twice_compressed))
    assert comparison["unpaired"] == {"original_only": 1, "compressed_only": 0}
    stats = comparison["probes"]["x.Y"][MB]
    assert stats["paired"] == 2 and [f["seq"] for f in stats["became_hits"]] == [0]
    assert "dan.Dan_11_0" not in comparison["probes"]


def test_a_significant_rise_is_a_finding_and_the_cli_exits_1(tmp_path, capsys):
    _pair(tmp_path, [[0.0, 0.0]] * 6 + [[1.0, 1.0]], [[1.0, 0.0]] * 6 + [[1.0, 1.0]])
    code = run(["garak-compare", str(tmp_path / "orig.report.jsonl"), str(tmp_path / "comp.report.jsonl"),
                "--out", str(tmp_path / "out")])
    saved = json.loads((tmp_path / "out" / "garak_compare.json").read_text())
    assert code == 1 and len(saved["findings"]) == 1
    assert saved["probes"][PROBE][MB]["mcnemar_p"] == pytest.approx(2 / 64)
    assert "6 attempts became hits" in capsys.readouterr().out


def test_no_change_exits_0(tmp_path):
    _pair(tmp_path, [[0.0, 1.0]] * 3, [[0.0, 1.0]] * 3)
    code = run(["garak-compare", str(tmp_path / "orig.report.jsonl"), str(tmp_path / "comp.report.jsonl"),
                "--out", str(tmp_path / "out")])
    assert code == 0


def test_legacy_string_prompts_and_outputs_are_read(tmp_path):
    legacy = {"entry_type": "attempt", "status": 2, "seq": 3, "probe_classname": PROBE, "prompt": "old style",
              "outputs": ["reply"], "detector_results": {MB: [0.0]}}
    path = tmp_path / "old.report.jsonl"
    path.write_text(json.dumps(legacy) + "\n", encoding="utf-8")
    only = read_report(path).attempts[0]
    assert (only.prompt, only.outputs, only.scores) == ("old style", ("reply",), {MB: (0.0,)})


@pytest.mark.parametrize("content, message", [
    ("not json\n", "is not JSON"),
    ('{"no": "entry_type"}\n', "has no entry_type"),
    ('{"entry_type": "init", "garak_version": "0.17.1"}\n', "no completed garak attempt"),
    ('{"entry_type": "attempt", "status": 2, "prompt": "p"}\n', "malformed garak attempt"),
])
def test_bad_reports_raise_input_errors_that_say_what_is_wrong(tmp_path, content, message):
    path = tmp_path / "bad.report.jsonl"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InputError, match=message):
        read_report(path)


def test_cli_reports_a_missing_file_in_one_line(tmp_path, capsys):
    code = run(["garak-compare", str(tmp_path / "nope.jsonl"), str(tmp_path / "nope.jsonl"), "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and "does not exist" in err and len(err.strip().splitlines()) == 1
