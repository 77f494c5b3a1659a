"""The audit's shrinking-batch greedy decoder answers exactly as ``generate`` does one prompt at a time."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compsec.audit.backend import LocalBackend, chat_text
from compsec.audit.greedy import greedy_answers
from compsec.audit.probes import load_probe_sets
from compsec.tiny.chat import generate

PROBES = [p.prompt for p in load_probe_sets(["refusal", "over-refusal", "utility"], limit=8)]


@pytest.fixture(scope="module")
def one_by_one(tiny_assistant):
    """The reference: transformers' ``generate``, one prompt per call, 24 new tokens."""
    model, tokenizer = tiny_assistant
    return generate(model, tokenizer, PROBES, max_new_tokens=24, batch_size=1)


def _templated(tokenizer, prompts):
    return [chat_text(tokenizer, p) for p in prompts]


@pytest.mark.behaviour
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch_size=st.integers(1, 24), picks=st.lists(st.integers(0, len(PROBES) - 1), min_size=1, max_size=12))
def test_any_batching_of_any_prompts_answers_as_one_by_one_generate(tiny_assistant, one_by_one, batch_size, picks):
    model, tokenizer = tiny_assistant
    answers = greedy_answers(model, tokenizer, _templated(tokenizer, [PROBES[i] for i in picks]), 24, batch_size)
    assert answers == [one_by_one[i] for i in picks]


@pytest.mark.behaviour
def test_rows_that_end_early_leave_the_batch_without_changing_the_others(tiny_assistant, one_by_one):
    model, tokenizer = tiny_assistant
    ends = [len(tokenizer(a, add_special_tokens=False).input_ids) for a in one_by_one]
    assert min(ends) < 24 and max(ends) >= 24  # some refusals end early, some answers run to the limit
    assert greedy_answers(model, tokenizer, _templated(tokenizer, PROBES), 24, len(PROBES)) == one_by_one


def test_token_limit_and_bad_arguments(tiny_assistant):
    model, tokenizer = tiny_assistant
    short = greedy_answers(model, tokenizer, _templated(tokenizer, PROBES[-1:]), 2, 4)[0]
    assert len(tokenizer(short, add_special_tokens=False).input_ids) <= 2
    with pytest.raises(ValueError, match="must be positive"):
        greedy_answers(model, tokenizer, ["x"], 0, 4)
    backend = LocalBackend(model, tokenizer, "cpu", 4, 3)
    assert [g.truncated for g in backend.generate(PROBES[:2])] == [True, True]


@pytest.mark.real_model
@pytest.mark.slow
def test_safety_tuned_smollm2_answers_as_one_by_one_generate():
    """SmolLM2 (30 layers, grouped-query attention) on 12 probes: refusals end early, answers run on."""
    from compsec.models.io import load_model
    from compsec.safety.fixture import safe_smollm_dir

    model, tokenizer = load_model(safe_smollm_dir())
    prompts = PROBES[::2]
    reference = generate(model, tokenizer, prompts, max_new_tokens=20, batch_size=1)
    assert greedy_answers(model, tokenizer, _templated(tokenizer, prompts), 20, 5) == reference
