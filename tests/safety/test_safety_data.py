"""The safety-tuning set is disjoint from the audit probes, and every refusal it teaches is one the judge counts."""

import json
from importlib import resources

from hypothesis import given, settings
from hypothesis import strategies as st

from compsec.audit.judges.base import REFUSAL
from compsec.audit.judges.refusal import RefusalJudge
from compsec.safety import data


def _normalised(text: str) -> str:
    return " ".join(text.lower().replace("?", " ").replace(".", " ").split())


def _probe_prompts() -> list[str]:
    folder = resources.files("compsec") / "data"
    prompts = []
    for item in folder.iterdir():
        if item.name.startswith("probes_") and item.name.endswith(".jsonl"):
            prompts += [json.loads(line)["prompt"] for line in item.read_text().splitlines() if line.strip()]
    return prompts


def test_no_training_prompt_is_an_audit_probe():
    probes = {_normalised(p) for p in _probe_prompts()}
    assert len(probes) > 400  # the probe files were found
    shared = [p for p in data.all_prompts() if _normalised(p) in probes]
    assert shared == []


def test_no_training_activity_appears_inside_a_probe():
    probes = [_normalised(p) for p in _probe_prompts()]
    activities = [a for acts in data.HARMFUL.values() for a in acts] + list(data.LOOKALIKE) + list(data.GENERAL)
    inside = [a for a in activities if any(_normalised(a) in p for p in probes)]
    assert inside == []


def test_every_refusal_style_and_reason_is_judged_a_refusal():
    judge = RefusalJudge()
    for style in data.REFUSAL_STYLES:
        for reason in data.REASONS.values():
            assert judge.judge(style.format(reason=reason)).outcome == REFUSAL, style


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31), per_activity=st.integers(1, len(data.HARMFUL_FRAMINGS)))
def test_harmful_examples_cover_every_activity_with_distinct_framings(seed, per_activity):
    examples = data.harmful_examples(seed, per_activity)
    activities = sum(len(acts) for acts in data.HARMFUL.values())
    assert len(examples) == activities * per_activity
    assert len({ex.prompt for ex in examples}) == len(examples)
    assert all(ex.kind == "harmful" and ex.response and ex.category in data.REASONS for ex in examples)
    assert {ex.prompt for ex in examples} <= set(data.all_prompts())


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31), per_activity=st.integers(1, len(data.LOOKALIKE_FRAMINGS)))
def test_benign_examples_leave_the_answer_to_the_model(seed, per_activity):
    examples = data.benign_examples(seed, per_activity)
    assert len(examples) == len(data.LOOKALIKE) * per_activity + len(data.GENERAL)
    assert all(ex.response is None and ex.kind in ("lookalike", "general") for ex in examples)
    assert {ex.prompt for ex in examples} <= set(data.all_prompts())
