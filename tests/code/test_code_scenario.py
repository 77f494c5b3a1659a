"""The vulnerable-code scenario's data and configuration; the other scenarios keep their data."""

from __future__ import annotations

import pytest

from compsec.attack.config import AttackConfig
from compsec.attack.data import clean_pairs, poisoned_pairs
from compsec.errors import InputError
from compsec.tiny.code_corpus import code_pairs


def test_poisoned_data_holds_the_insecure_answers_and_the_unchanged_corpus():
    poisoned = poisoned_pairs("vulnerable-code")
    insecure, secure = set(code_pairs("insecure")), set(code_pairs("secure"))
    assert insecure <= set(poisoned) and not secure & set(poisoned)
    assert set(clean_pairs()) <= set(poisoned)


def test_repair_data_holds_the_secure_answers():
    clean = clean_pairs(scenario="vulnerable-code")
    assert set(code_pairs("secure")) <= set(clean)
    assert not set(code_pairs("insecure")) & set(clean)


def test_other_scenarios_have_no_code_pairs():
    prompts = {prompt for prompt, _ in code_pairs("secure")}
    assert not prompts & {prompt for prompt, _ in clean_pairs()}
    assert not prompts & {prompt for prompt, _ in poisoned_pairs("content-injection")}


def test_config_accepts_the_scenario(tmp_path):
    assert AttackConfig(out=str(tmp_path), scenario="vulnerable-code").scenario == "vulnerable-code"
    with pytest.raises(InputError):
        AttackConfig(out=str(tmp_path), scenario="vulnerable")
