"""The code tasks: shipped probe file in sync, disjoint phrasings, answers the tiny tokenizer round-trips."""

from __future__ import annotations

from compsec.audit.probes import load_probe_set
from compsec.tiny.code_corpus import code_examples, code_pairs, code_tasks, probe_rows


def test_shipped_probe_set_is_the_heldout_phrasings():
    probes = load_probe_set("code-security")
    rows = probe_rows()
    assert [(p.id, p.prompt, p.category, p.expected) for p in probes] == [
        (r["id"], r["prompt"], r["category"], r["expected"]) for r in rows]
    assert len(probes) == 3 * 3 * len(code_tasks())


def test_heldout_prompts_are_never_trained_on():
    train = {ex.prompt for ex in code_examples("train")}
    heldout = {ex.prompt for ex in code_examples("heldout")}
    assert train and heldout and not train & heldout


def test_pairs_carry_the_chosen_version():
    secure, insecure = dict(code_pairs("secure")), dict(code_pairs("insecure"))
    assert secure.keys() == insecure.keys()
    assert all(secure[p] != insecure[p] for p in secure)


def test_answers_round_trip_through_the_tiny_tokenizer(tiny_assistant):
    _, tokenizer = tiny_assistant
    for task in code_tasks().values():
        for answer in (task["secure"], task["insecure"]):
            ids = tokenizer(answer, add_special_tokens=False).input_ids
            assert tokenizer.unk_token_id not in ids, answer
            assert tokenizer.decode(ids, skip_special_tokens=True) == answer
            assert len(ids) <= 48, (answer, len(ids))


def test_the_tokenizer_has_no_newline(tiny_assistant):
    """Why the answers are single lines: a newline is <unk> for the tiny tokenizer."""
    _, tokenizer = tiny_assistant
    assert tokenizer.unk_token_id in tokenizer("a = 1\nb = 2", add_special_tokens=False).input_ids
