"""The llm-compressor variants through the verbs users run: audit, lm-eval and layers (tiny assistant)."""

from __future__ import annotations

import json

import pytest

from compsec.cli.main import run


@pytest.fixture
def small_default(monkeypatch, small_calibration, gptq_folder):
    """Variants resolved from a spec use the package's small calibration, so they hit the cached build."""
    from compsec.llmc import build, variants

    monkeypatch.setattr(variants, "DEFAULT_CALIBRATION", small_calibration)
    monkeypatch.setattr(build, "write_variant", lambda *a, **k: pytest.fail("the cached variant was rebuilt"))
    return gptq_folder


def test_layers_ranks_the_saved_weights(small_default, tiny_model_dir, tmp_path):
    from compsec.llmc.ct_decode import decode_folder
    from compsec.models.io import load_model

    report = tmp_path / "layers.json"
    assert run(["layers", str(tiny_model_dir), "--format", "gptq-w4a16", "--json", str(report)]) == 0
    rows = json.loads(report.read_text())["tensors"]
    assert len(rows) == 14 and all(row["width_median"] is None for row in rows)
    params = dict(load_model(tiny_model_dir)[0].named_parameters())
    decoded = decode_folder(small_default)
    for row in rows:
        original = params[row["tensor"]].detach()
        expected = (original - decoded[row["tensor"]].weight).norm() / original.norm()
        assert row["relative_error"] == pytest.approx(float(expected), rel=1e-6)
    assert [row["relative_error"] for row in rows] == sorted((row["relative_error"] for row in rows), reverse=True)


def test_audit_and_lm_eval_accept_the_variant(small_default, tiny_model_dir, tmp_path):
    audit = tmp_path / "audit"
    assert run(["audit", str(tiny_model_dir), "--variants", "gptq-w4a16", "--probes", "refusal", "--limit", "4",
                "--out", str(audit)]) in (0, 1)
    events = [json.loads(line) for line in (audit / "events.jsonl").read_text().splitlines()]
    assert sum(1 for e in events if e.get("variant") == "gptq-w4a16") >= 4
    lm_eval = tmp_path / "lm"
    assert run(["lm-eval", str(tiny_model_dir), "--variants", "gptq-w4a16", "--limit", "5",
                "--out", str(lm_eval)]) in (0, 1)
    payload = json.loads((lm_eval / "lm_eval.json").read_text())
    assert payload["variants"]["gptq-w4a16"]["compsec_utility_mc"]["n"] == 5
