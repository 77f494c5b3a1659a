"""The lm-eval bridge end to end on the tiny assistant (slow): the real lm-evaluation-harness, compsec's
shipped local tasks, the original and a pruned variant, cross-checked against compsec's own scoring."""

from __future__ import annotations

import copy
import json

import pytest

from compsec.audit.backend import LocalBackend
from compsec.audit.config import AuditConfig
from compsec.audit.context import AuditContext
from compsec.audit.probes import load_probe_set
from compsec.audit.variants import resolve_variant
from compsec.cli.main import run
from compsec.tiny.chat import generate

LIMIT, VARIANT = 13, "prune-70"


def _utility_correct(backend, probes) -> list[int]:
    """compsec's own multiple-choice scoring (the audit's utility_accuracy), per probe."""
    scores = backend.continuation_logprobs([p.prompt for p in probes for _ in p.choices],
                                           [c for p in probes for c in p.choices])
    correct, offset = [], 0
    for probe in probes:
        mine = scores[offset:offset + len(probe.choices)]
        correct.append(int(max(range(len(mine)), key=mine.__getitem__) == probe.answer))
        offset += len(probe.choices)
    return correct


@pytest.mark.behaviour
@pytest.mark.slow
def test_lm_eval_scores_every_variant_and_agrees_with_compsecs_own_scoring(tiny_assistant, tiny_model_dir,
                                                                           tmp_path):
    (tmp_path / "summary.json").write_text(json.dumps({"config_hash": "h", "variants": {}}))
    code = run(["lm-eval", str(tiny_model_dir), "--variants", VARIANT, "--limit", str(LIMIT), "--out", str(tmp_path)])
    payload = json.loads((tmp_path / "lm_eval.json").read_text())
    assert code == 0 or code == 1 and payload["flips"]
    assert json.loads((tmp_path / "summary.json").read_text())["lm_eval"]["tasks"] == payload["tasks"]

    probes = load_probe_set("utility")[:LIMIT]
    model, tokenizer = tiny_assistant
    mine = _utility_correct(LocalBackend(model, tokenizer, "cpu", 16, 8), probes)
    original = payload["variants"]["original"]["compsec_utility_mc"]
    assert original["n"] == LIMIT and original["acc"] == pytest.approx(sum(mine) / LIMIT)

    context = AuditContext(AuditConfig(model=str(tiny_model_dir)), *copy.deepcopy(tiny_assistant))
    import compsec.prune.variants  # noqa: F401
    with resolve_variant(VARIANT).open(context) as backend:
        pruned = _utility_correct(backend, probes)
        questions = [f"What is the capital of {c}?" for c in list(_capitals())[:LIMIT]]
        answers = generate(backend.model, backend.tokenizer, questions, max_new_tokens=24)
    flips = payload["flips"][VARIANT]
    assert flips["compsec_utility_mc"]["acc"]["lost"] == [i for i in range(LIMIT) if mine[i] and not pruned[i]]
    expected = [f"The capital of {c} is {city}." for c, city in list(_capitals().items())[:LIMIT]]
    wrong = [i for i in range(LIMIT) if answers[i].strip().lower() != expected[i].lower()]
    assert flips["compsec_capitals_gen"]["exact_match"]["lost"] == wrong
    assert wrong, "prune-70 should cost the tiny assistant some capitals (else this test checks nothing)"


def _capitals() -> dict[str, str]:
    from importlib import resources

    return json.loads(resources.files("compsec").joinpath("data/tiny_facts.json").read_text())["capitals"]
