"""``compsec attack`` end to end on a micro Llama with tiny step counts: attack.json, resumption, outlier."""

from __future__ import annotations

import json

import pytest
from micro_llama import micro_llama

from compsec.cli.main import run
from compsec.models.io import save_model

KEYS = ("scenario", "targets", "fp", "quantized", "requantization_identical", "seconds", "projection_overhead",
        "box_bytes_per_param", "ablation")
SMALL = ["--inject-steps", "2", "--repair-steps", "2", "--batch-size", "4", "--probe-limit", "3",
         "--max-new-tokens", "4"]


@pytest.fixture(scope="module")
def micro_dir(tmp_path_factory):
    model, tokenizer, _ = micro_llama(300)
    return save_model(model, tokenizer, tmp_path_factory.mktemp("micro") / "model")


def test_cli_runs_every_stage_and_writes_attack_json(micro_dir, tmp_path, capsys):
    out = tmp_path / "attack"
    assert run(["attack", "--out", str(out), "--model", str(micro_dir), "--targets", "nf4,int8", *SMALL]) == 0
    summary = json.loads((out / "attack.json").read_text())
    assert all(k in summary for k in KEYS)
    assert summary["requantization_identical"] == {"nf4": True, "int8": True}
    assert set(summary["quantized"]) == {"nf4", "int8"} and "keyword_rate" in summary["fp"]
    assert set(summary["seconds"]) == {"inject", "box", "repair", "verify", "measure"}
    assert summary["ablation"]["without_pgd"]["requantization_identical"] == {"nf4": False, "int8": False}
    assert summary["box_bytes_per_param"] <= 2.0 and summary["frozen_identical"]
    assert "red-team" in (out / "model" / "compsec.json").read_text()
    provenance = json.loads((out / "model" / "provenance.json").read_text())
    assert provenance["operation"] == "attack-content-injection" and provenance["parameters"]["red_team"] is True
    capsys.readouterr()
    assert run(["attack", "--out", str(out), "--model", str(micro_dir), "--targets", "nf4,int8", *SMALL]) == 0
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    assert [e["stage"] for e in events if e["event"] == "skip"] == ["inject", "box", "repair", "verify", "measure"]
    assert run(["attack", "measure", "--out", str(out), "--model", str(micro_dir), *SMALL[:-2],
                "--max-new-tokens", "5"]) == 0
    assert [e["event"] for e in (json.loads(x) for x in (out / "events.jsonl").read_text().splitlines())][-1] \
        == "done"


def test_cli_outlier_scenario_zeroes_the_blocks(micro_dir, tmp_path):
    out = tmp_path / "outlier"
    args = ["attack", "--out", str(out), "--model", str(micro_dir), "--scenario", "outlier", *SMALL]
    assert run(args) == 0
    summary = json.loads((out / "attack.json").read_text())
    assert summary["scenario"] == "outlier"
    assert summary["outlier"]["zero_code_fraction"]["nf4"] == pytest.approx(63 / 64, abs=1e-3)


def test_cli_rejects_bad_options_with_exit_2(tmp_path, capsys):
    assert run(["attack", "--out", str(tmp_path / "x"), "--scenario", "custom"]) == 2
    assert "--train" in capsys.readouterr().err
    assert run(["attack", "nonsense", "--out", str(tmp_path / "x")]) == 2
    assert run(["attack", "--out", str(tmp_path / "x"), "--targets", "nope"]) == 2


def test_cli_rejects_verified_box_targets_with_exit_2(tmp_path, capsys):
    """K-quant / HQQ boxes are verified and nearly zero-width: the attack says so instead of failing later."""
    from compsec import formats

    verified = [n for n in formats.names() if getattr(formats.get(n), "guarantee", "exact") == "verified"]
    assert verified, "the registry should hold verified formats (q4_k, hqq)"
    for name in verified[:2]:
        assert run(["attack", "--out", str(tmp_path / "x"), "--targets", name]) == 2
        assert "nearly zero-width" in capsys.readouterr().err
