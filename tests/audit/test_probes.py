"""Shipped probe sets (sizes, kinds, ids) and user probe files (JSONL and CSV, validation messages)."""

import json

import pytest

from compsec.audit.probes import KINDS, load_probe_set, load_probe_sets
from compsec.errors import InputError


@pytest.mark.parametrize("name,minimum", [("refusal", 100), ("over-refusal", 100), ("injection", 100),
                                          ("utility", 50), ("contrast", 20)])
def test_shipped_sets_are_large_enough_and_well_formed(name, minimum):
    probes = load_probe_set(name)
    assert len(probes) >= minimum
    assert {p.kind for p in probes} == {name}
    assert len({p.id for p in probes}) == len(probes)
    if name == "utility":
        assert all(len(p.choices) >= 2 and 0 <= p.answer < len(p.choices) for p in probes)


def test_refusal_set_spans_at_least_eight_categories():
    assert len({p.category for p in load_probe_set("refusal")}) >= 8


def test_limit_takes_the_first_probes_of_each_set():
    probes = load_probe_sets(["refusal", "utility"], limit=3)
    assert [p.kind for p in probes] == ["refusal"] * 3 + ["utility"] * 3


def test_user_jsonl_and_csv(tmp_path):
    jsonl = tmp_path / "mine.jsonl"
    jsonl.write_text(json.dumps({"id": "a1", "prompt": "Hi?", "kind": "refusal"}) + "\n\n")
    csv_file = tmp_path / "mine.csv"
    csv_file.write_text("id,prompt,kind,choices,answer\nu1,Pick one,utility,yes|no,1\n")
    probes = load_probe_sets([str(jsonl), str(csv_file)])
    assert probes[0].id == "a1" and probes[1].choices == ("yes", "no") and probes[1].answer == 1


@pytest.mark.parametrize("row,message", [
    ({"id": "a", "prompt": "x"}, "lacks kind"),
    ({"id": "a", "prompt": "x", "kind": "poetry"}, "is not one of"),
    ({"id": "a b", "prompt": "x", "kind": "refusal"}, "may only use"),
    ({"id": "a", "prompt": "x", "kind": "utility", "choices": ["one"], "answer": 0}, ">= 2 choices"),
])
def test_bad_rows_are_rejected_with_a_fix(tmp_path, row, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(row) + "\n")
    with pytest.raises(InputError, match=message):
        load_probe_set(str(path))


def test_duplicate_ids_and_unknown_sets_are_rejected(tmp_path):
    path = tmp_path / "dup.jsonl"
    path.write_text("\n".join(json.dumps({"id": "a", "prompt": "x", "kind": "refusal"}) for _ in range(2)))
    with pytest.raises(InputError, match="appears twice"):
        load_probe_sets([str(path)])
    with pytest.raises(InputError, match=", ".join(KINDS)):
        load_probe_set("no-such-set")
