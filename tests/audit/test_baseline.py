"""``--baseline``: comparability, drift, new vs known findings, on synthetic runs (fast, no model)."""

import json

import pytest
from test_ci_formats_fakes import outcomes, write_run

from compsec.audit.baseline import check_drift, load_run, protocol_hash
from compsec.cli.main import run
from compsec.errors import InputError

CLEAN = {"original": outcomes(), "nf4": outcomes()}
NF4_WORSE = {"original": outcomes(), "nf4": outcomes(refusal=[False] * 6 + [True] * 2)}


def test_an_identical_rerun_has_no_drift_and_passes(tmp_path, capsys):
    base, rerun = write_run(tmp_path / "base", CLEAN), write_run(tmp_path / "rerun", CLEAN)
    drift = check_drift(base / "summary.json", rerun)
    assert not drift.findings and not drift.new_findings and not drift.failed
    assert all(not d.lost and not d.gained for diffs in drift.diffs.values() for d in diffs)
    assert run(["report", str(rerun), "--baseline", str(base / "summary.json")]) == 0
    assert "drift gate passed" in capsys.readouterr().out


def test_a_degraded_run_drifts_and_fails_with_a_summary(tmp_path, capsys):
    base = write_run(tmp_path / "base", CLEAN)
    worse = write_run(tmp_path / "worse", {"original": outcomes(utility=[0] * 7 + [1]), "nf4": outcomes()})
    drift = check_drift(base, worse)
    assert list(drift.findings) == ["original"] and drift.failed
    assert drift.findings["original"][0].startswith("utility accuracy fell 87.5 points vs baseline")
    assert run(["report", str(worse), "--baseline", str(base)]) == 1
    text = capsys.readouterr().out
    assert "drift original: utility accuracy fell 87.5 points" in text and "FAILED" in text


def test_findings_the_baseline_already_had_are_known_and_do_not_fail(tmp_path, capsys):
    base = write_run(tmp_path / "base", NF4_WORSE)
    again = write_run(tmp_path / "again", NF4_WORSE)
    assert run(["report", str(again)]) == 1  # on its own the run has a finding
    drift = check_drift(base, again)
    assert list(drift.known_findings) == ["nf4"] and not drift.new_findings and not drift.failed
    assert run(["report", str(again), "--baseline", str(base)]) == 0
    assert "known finding nf4: refusal rate fell 75.0 points" in capsys.readouterr().out
    clean_base = write_run(tmp_path / "clean", CLEAN)
    drift = check_drift(clean_base, again)
    assert list(drift.new_findings) == ["nf4"] and list(drift.findings) == ["nf4"] and drift.failed


def test_runs_with_other_measurement_settings_are_refused_naming_the_fields(tmp_path, capsys):
    base = write_run(tmp_path / "base", CLEAN)
    other = write_run(tmp_path / "other", CLEAN, limit=4, max_new_tokens=20)
    with pytest.raises(InputError, match=r"limit: 8 -> 4; max_new_tokens: 48 -> 20"):
        check_drift(base, other)
    assert run(["compare", str(base), str(other)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is not comparable with baseline" in err and "limit: 8 -> 4" in err


def test_another_model_path_or_thresholds_stay_comparable(tmp_path):
    base = write_run(tmp_path / "base", CLEAN)
    moved = write_run(tmp_path / "moved", CLEAN, model="models/assistant-v2", thresholds={"refusal_drop": 0.2})
    assert load_run(base).config_hash != load_run(moved).config_hash
    assert protocol_hash(load_run(base).config) == protocol_hash(load_run(moved).config)
    assert not check_drift(base, moved).failed


def test_a_stale_summary_or_a_folder_without_log_is_refused(tmp_path):
    base, other = write_run(tmp_path / "base", CLEAN), write_run(tmp_path / "other", CLEAN, limit=4)
    (base / "summary.json").write_text((other / "summary.json").read_text())
    with pytest.raises(InputError, match="was not rendered from"):
        load_run(base / "summary.json")
    (tmp_path / "lone").mkdir()
    (tmp_path / "lone" / "summary.json").write_text(json.dumps({"config_hash": "x"}))
    with pytest.raises(InputError, match="has no events.jsonl"):
        load_run(tmp_path / "lone" / "summary.json")
    with pytest.raises(InputError, match="no audit run at"):
        load_run(tmp_path / "missing")


def test_audit_refuses_an_incomparable_baseline_before_loading_any_model(tmp_path, capsys, monkeypatch,
                                                                        tiny_model_dir):
    import compsec.models.io

    def no_load(*args, **kwargs):
        raise AssertionError("a model was loaded before the baseline was compared")

    monkeypatch.setattr(compsec.models.io, "load_model", no_load)
    base = write_run(tmp_path / "base", CLEAN)
    code = run(["audit", str(tiny_model_dir), "--variants", "nf4", "--probes", "refusal,utility",
                "--limit", "3", "--no-contrast", "--out", str(tmp_path / "new"), "--baseline", str(base)])
    assert code == 2 and "limit: 8 -> 3" in capsys.readouterr().err
    assert not (tmp_path / "new").exists()
