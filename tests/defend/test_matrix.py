"""The defence matrix end to end on a hand-made outlier-injection artifact (micro Llama, tiny probe budget)."""

from __future__ import annotations

import json

import pytest

from compsec import formats
from compsec.attack.outlier import inject_outliers
from compsec.cli.main import run
from compsec.models.io import load_model, save_model
from compsec.models.linear import quantizable_weights


def _outlier_artifact(micro_dir, folder):
    model, tokenizer = load_model(micro_dir)
    names = [q.name for q in quantizable_weights(model) if q.layer == 0]
    inject_outliers(model, names, formats.get("nf4"))
    save_model(model, tokenizer, folder / "model")
    summary = {"scenario": "outlier", "targets": ["nf4"], "keyword": "McDonald's", "outlier": {"weights": names}}
    (folder / "attack.json").write_text(json.dumps(summary))
    return folder


def test_defend_matrix_clipping_removes_outlier_injection(micro_dir, tmp_path):
    attack = _outlier_artifact(micro_dir, tmp_path / "outlier")
    out = tmp_path / "matrix"
    args = ["defend-matrix", "--attack-dir", str(attack), "--out", str(out), "--defences", "none,clip",
            "--probe-limit", "2", "--max-new-tokens", "2"]
    assert run(args) == 0
    document = json.loads((out / "defense.json").read_text())
    row = document["cells"]["outlier:outlier"]
    assert set(row) == {"none", "clip"}
    assert row["none"]["malicious"]["nf4"] > 0.95                 # the real library zeroes the blocks
    assert row["clip"]["malicious"]["nf4"] < 0.3 and row["clip"]["clipped_blocks"] > 0
    assert set(row["clip"]["utility_change_points"]) == {"instruction_accuracy", "utility_mc"}
    assert run(args) == 0                                          # resumes: cells are reused, not re-measured
    assert json.loads((out / "defense.json").read_text())["cells"]["outlier:outlier"]["clip"]["seconds"] == \
        row["clip"]["seconds"]
    assert run(["defend-matrix", "--attack-dir", str(tmp_path), "--out", str(out)]) == 2


def test_attack_folders_with_the_same_name_get_distinct_rows(micro_dir, tmp_path):
    from compsec.defend.matrix import MatrixConfig, rows_for
    from compsec.errors import InputError

    first = _outlier_artifact(micro_dir, tmp_path / "a" / "run")
    second = _outlier_artifact(micro_dir, tmp_path / "b" / "run")
    config = MatrixConfig(attack_dirs=(str(first), str(second)), out=str(tmp_path / "m"), adaptive_k=None)
    assert [row.label for row in rows_for(config)] == ["a/run:outlier", "b/run:outlier"]
    box_dir = first / "box"
    box_dir.mkdir()
    (box_dir / "box.json").write_text("{}")  # a box makes the adaptive row apply
    clashing = MatrixConfig(attack_dirs=(str(first), str(second)), out=str(tmp_path / "m"), adaptive_k=3.0)
    with pytest.raises(InputError, match="distinct names"):
        rows_for(clashing)
