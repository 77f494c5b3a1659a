"""Defences against "Widening the Gap": the adaptive attacker slips under per-group clipping; matrix columns."""

from __future__ import annotations

import json

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from compsec import formats
from compsec.attack.widen_gap import collapsed_share, widen_gap, widen_under_clip
from compsec.defend.group_clip import K_SIGMA, clip_group_outliers, group_clip_model_
from compsec.scan import synthetic


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), dist=st.sampled_from(["gaussian", "laplace"]),
       mode=st.sampled_from(["zero", "divide"]))
def test_outliers_just_under_the_threshold_are_never_clipped(seed, dist, mode):
    gen = torch.Generator().manual_seed(seed)
    w = synthetic.benign((8, 128), dist, torch.float32, gen)
    natural = clip_group_outliers(w, mode)[0] != w
    adaptive, where = widen_under_clip(w, gen, K_SIGMA)
    clipped = clip_group_outliers(adaptive, mode)[0]
    assert torch.equal(clipped != adaptive, natural)   # clipped: only what nature already put past k sigma
    assert bool((adaptive.reshape(-1)[where].abs() >= w.reshape(-1)[where].abs()).all())


def test_the_adaptive_layout_still_collapses_part_of_nf4():
    gen = torch.Generator().manual_seed(2)
    w = synthetic.benign((64, 256), "gaussian", torch.float32, gen)
    adaptive, where = widen_under_clip(w, gen, K_SIGMA)
    nf4 = formats.get("nf4")
    assert collapsed_share(adaptive, nf4, where) > collapsed_share(w, nf4, where) + 0.1


def test_group_clipping_a_model_reaches_only_the_widened_matrix(micro_dir):
    from compsec.models.io import load_model

    model, _ = load_model(micro_dir)
    params = dict(model.named_parameters())
    name = "model.layers.0.mlp.up_proj.weight"
    with torch.no_grad():
        params[name].copy_(widen_gap(params[name].detach(), torch.Generator().manual_seed(0))[0])
    clipped = group_clip_model_(model, "zero")
    assert list(clipped) == [name] and clipped[name] >= params[name].numel() // 32


def test_defend_matrix_group_clip_columns_on_a_widen_gap_row(micro_dir, tmp_path):
    from compsec.cli.main import run
    from compsec.models.io import load_model, save_model

    model, tokenizer = load_model(micro_dir)
    params = dict(model.named_parameters())
    name = "model.layers.0.mlp.up_proj.weight"
    with torch.no_grad():
        params[name].copy_(widen_gap(params[name].detach(), torch.Generator().manual_seed(0))[0])
    folder = tmp_path / "wg"
    save_model(model, tokenizer, folder / "model")
    (folder / "attack.json").write_text(json.dumps(
        {"scenario": "widen-gap", "targets": ["nf4"], "keyword": "McDonald's", "outlier": {"weights": [name]}}))
    out = tmp_path / "matrix"
    assert run(["defend-matrix", "--attack-dir", str(folder), "--out", str(out), "--defences",
                "none,group-clip-zero,group-clip-divide", "--probe-limit", "2", "--max-new-tokens", "2"]) == 0
    row = json.loads((out / "defense.json").read_text())["cells"]["wg:widen-gap"]
    assert set(row) == {"none", "group-clip-zero", "group-clip-divide"}
    assert row["group-clip-zero"]["clipped_outliers"] >= params[name].numel() // 32
    assert set(row["group-clip-divide"]["malicious"]) == {"fp32", "nf4"}       # keyword rates
    assert run(["defend-matrix", "--attack-dir", str(folder), "--out", str(out), "--defences", "group-clip"]) == 2


def test_harden_group_clip_writes_a_model_without_the_outliers(micro_dir, tmp_path, capsys):
    from compsec.attack.widen_gap import outlier_ratio
    from compsec.cli.main import run
    from compsec.models.io import load_model, save_model

    model, tokenizer = load_model(micro_dir)
    params = dict(model.named_parameters())
    name = "model.layers.0.mlp.up_proj.weight"
    with torch.no_grad():
        params[name].copy_(widen_gap(params[name].detach(), torch.Generator().manual_seed(0))[0])
    save_model(model, tokenizer, tmp_path / "wg")
    assert run(["harden", str(tmp_path / "wg"), "--noise", "0", "--group-clip", "zero", "--out",
                str(tmp_path / "clipped")]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[0])["group_clipped"] >= params[name].numel() // 32
    clipped = dict(load_model(tmp_path / "clipped")[0].named_parameters())[name]
    assert float(outlier_ratio(clipped).max()) < 10
    assert run(["harden", str(tmp_path / "wg"), "--group-clip", "halve", "--out", str(tmp_path / "x")]) == 2
