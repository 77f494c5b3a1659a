"""``compsec attack --scenario widen-gap``: what the stages guarantee whatever the training learns.

The outliers sit in every 32-weight block of the chosen matrices and move nothing else; NF4 and Q4_0 (REAL
libraries) then quantize every other weight of those matrices to exactly 0 (for a factor of 100: |w| / absmax
<= 0.01, below half of NF4's smallest level 0.0796 and of Q4_0's step 1/8); the dual fine-tune never moves the
chosen matrices; its malicious pass computes exactly the deployed model's loss.
"""

from __future__ import annotations

import json

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from compsec import formats
from compsec.attack.widen_gap import collapsed_share, outlier_ratio, widen_gap


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**16), rows=st.integers(1, 6), blocks=st.sampled_from([2, 4, 8]),
       scale=st.floats(1e-3, 5.0), factor=st.sampled_from([20.0, 100.0, 512.0]))
def test_every_block_gets_one_outlier_and_nothing_else_moves(seed, rows, blocks, scale, factor):
    gen = torch.Generator().manual_seed(seed)
    w = torch.randn(rows, 32 * blocks, generator=gen) * scale
    widened, where = widen_gap(w, gen, factor=factor)
    assert where.numel() == rows * blocks
    moved = set((widened != w).reshape(-1).nonzero().reshape(-1).tolist())
    assert moved <= set(where.tolist())
    assert bool((outlier_ratio(widened) >= factor * (1 - 1e-6)).all())  # fl(factor * a) / b with b <= a


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 2**16), scale=st.floats(1e-3, 5.0), name=st.sampled_from(["nf4", "q4_0"]),
       factor=st.sampled_from([100.0, 512.0]))
def test_the_real_library_collapses_every_other_weight(seed, scale, name, factor):
    gen = torch.Generator().manual_seed(seed)
    widened, where = widen_gap(torch.randn(4, 256, generator=gen) * scale, gen, factor=factor)
    assert collapsed_share(widened, formats.get(name), where) == 1.0


def test_natural_weights_have_no_such_ratio():
    w = torch.randn(64, 256, generator=torch.Generator().manual_seed(3))
    assert float(outlier_ratio(w).max()) < 10


@pytest.fixture(scope="module")
def attacked(tmp_path_factory):
    """A 2-step widen-gap run for nf4 and q4_0; llama.cpp's GGUFs go to a temporary cache, not the user's."""
    from compsec.attack.config import AttackConfig
    from compsec.attack.pipeline import run_attack

    config = AttackConfig(out=str(tmp_path_factory.mktemp("widen") / "attack"), scenario="widen-gap",
                          targets=("nf4", "q4_0"), repair_steps=2, batch_size=4, probe_limit=2, max_new_tokens=6)
    cache = tmp_path_factory.mktemp("gguf-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("compsec.models.gguf_quantize.cache_dir", lambda: cache)
        return config, run_attack(config)


def test_the_artifact_keeps_its_outliers_frozen_and_collapses(attacked):
    _, summary = attacked
    collapse = summary["collapse"]
    assert collapse["every_block_has_outlier"] and collapse["frozen_identical"]
    assert collapse["collapsed_share"] == {"nf4": 1.0, "q4_0": 1.0}
    assert set(summary["quantized"]) == {"nf4", "q4_0"} and summary["widened"] is not None


def test_the_deployed_stage_runs_the_real_libraries_on_the_trained_codes(attacked):
    """bitsandbytes (through transformers) and llama.cpp deploy exactly the weights the dual fine-tune
    simulated: nf4 and q4_0 are bit-exact formats, so every simulated weight is identical."""
    _, summary = attacked
    deployed = summary["deployed"]
    assert deployed["not_deployed"] == {}
    assert {f: m["library"] for f, m in deployed["deployed"].items()} == {"nf4": "bitsandbytes", "q4_0": "llama.cpp"}
    for metrics in deployed["deployed"].values():
        assert metrics["identical_share"] == 1.0 and metrics["left_unquantized"] == []
        assert 0 <= metrics["keyword_rate"] <= 1 and 0 <= metrics["utility_mc"] <= 1


def test_widening_touches_only_the_outliers_of_the_chosen_matrices(attacked):
    from compsec.attack.verify import bits_equal
    from compsec.models.io import load_model
    from compsec.tiny.assistant import load_tiny_assistant

    config, summary = attacked
    chosen = summary["outlier"]["weights"]
    assert chosen == ["model.layers.0.mlp.up_proj.weight"]
    base = dict(load_tiny_assistant()[0].named_parameters())
    widened = dict(load_model(config.folder / "widened")[0].named_parameters())
    for name, p in widened.items():
        if name not in chosen:
            assert bits_equal(p, base[name]), name
            continue
        assert int((p != base[name]).sum()) == p.numel() // 32  # exactly one weight per block


def test_the_malicious_pass_is_the_deployed_models_loss(attacked):
    from compsec.attack.box import constrained_names
    from compsec.attack.data import clean_pairs, encode_pairs
    from compsec.attack.dual import QuantizedView
    from compsec.attack.inject import _collate
    from compsec.attack.measure import simulated
    from compsec.models.io import load_model

    config, summary = attacked
    model, tokenizer = load_model(config.folder / "model")
    fmt, names = formats.get("nf4"), constrained_names(model, [formats.get("nf4")])
    batch = _collate(encode_pairs(tokenizer, clean_pairs()[:3]), tokenizer.pad_token_id, "cpu")
    view = QuantizedView.build(model, fmt, summary["outlier"]["weights"], names)
    with torch.no_grad():
        ours = view.loss(batch)
        with simulated(model, fmt, names):
            deployed = model(**batch).loss
    assert float(ours) == pytest.approx(float(deployed), rel=1e-5)


def test_missing_matrices_are_refused_before_anything_is_written(tmp_path):
    from compsec.attack.config import AttackConfig
    from compsec.attack.pipeline import run_attack
    from compsec.errors import InputError

    out = tmp_path / "attack"
    with pytest.raises(InputError, match="--widen-matrices"):
        run_attack(AttackConfig(out=str(out), scenario="widen-gap", widen_matrices=("mlp.nope",)))
    assert not out.exists()
    with pytest.raises(InputError, match="--widen-factor"):
        AttackConfig(out=str(out), scenario="widen-gap", widen_factor=1.0)


def test_cli_refuses_a_factor_that_widens_nothing(tmp_path, capsys):
    from compsec.cli.main import run

    out = tmp_path / "attack"
    assert run(["attack", "--scenario", "widen-gap", "--widen-factor", "1", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--widen-factor" in err[0] and not out.exists()


def test_collapsed_rounding_deploys_only_the_chosen_matrices(attacked):
    """``--widen-rounding collapsed`` (the published code's malicious pass): only the dual stage's hash moves,
    and the malicious loss is the model's with the chosen matrices alone replaced by their deployed values."""
    from dataclasses import replace

    from compsec.attack.data import clean_pairs, encode_pairs
    from compsec.attack.dual import QuantizedView
    from compsec.attack.inject import _collate
    from compsec.attack.measure import simulated
    from compsec.attack.pipeline import stage_hashes
    from compsec.errors import InputError
    from compsec.models.io import load_model

    config, summary = attacked
    default, collapsed = stage_hashes(config), stage_hashes(replace(config, widen_rounding="collapsed"))
    assert default["widen"] == collapsed["widen"] and default["dual"] != collapsed["dual"]
    with pytest.raises(InputError, match="--widen-rounding"):
        replace(config, widen_rounding="some")
    model, tokenizer = load_model(config.folder / "model")
    chosen, fmt = summary["outlier"]["weights"], formats.get("q4_0")
    batch = _collate(encode_pairs(tokenizer, clean_pairs()[:3]), tokenizer.pad_token_id, "cpu")
    view = QuantizedView.build(model, fmt, chosen, [])
    with torch.no_grad():
        ours = view.loss(batch)
        with simulated(model, fmt, chosen):
            deployed = model(**batch).loss
    assert view.rounded == [] and float(ours) == pytest.approx(float(deployed), rel=1e-5)


def test_cli_resumes_the_run_and_prints_the_deployed_rates(attacked, capsys):
    from compsec.cli.main import run

    config, summary = attacked
    options = ["--scenario", "widen-gap", "--targets", "nf4,q4_0", "--repair-steps", "2", "--batch-size", "4",
               "--probe-limit", "2", "--max-new-tokens", "6", "--out", str(config.folder)]
    assert run(["attack", "deployed", *options]) == 0
    assert capsys.readouterr().out.startswith("deployed: ")
    assert run(["attack", *options]) == 0  # every stage current: nothing reruns
    printed = json.loads(capsys.readouterr().out.splitlines()[0])
    assert printed["deployed"] == {f: m["keyword_rate"] for f, m in summary["deployed"]["deployed"].items()}
    events = [json.loads(line) for line in (config.folder / "events.jsonl").read_text().splitlines()]
    assert [e["event"] for e in events[-6:]] == ["skip"] * 6  # deployed, then widen .. deployed
