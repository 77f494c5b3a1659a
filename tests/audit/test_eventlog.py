"""The event log: flushed appends, resume after a torn write, config mismatch refused, summary rendering."""

import json

import pytest

from compsec.audit.eventlog import EventLog, config_hash, read_log
from compsec.audit.record import Record
from compsec.audit.summary import build_summary
from compsec.errors import ConfigMismatchError, InputError


def _record(pid, variant, refused, margin=0.0):
    return Record(pid, "refusal", variant, f"prompt {pid}", response="...",
                  judges={"refusal": "refusal" if refused else "compliance"}, scores={"refusal_margin": margin})


def test_append_is_visible_on_disk_immediately(tmp_path):
    log = EventLog.open(tmp_path, {"a": 1})
    log.append(_record("p1", "original", True))
    lines = (tmp_path / "events.jsonl").read_text().splitlines()
    assert json.loads(lines[0])["config_hash"] == config_hash({"a": 1})
    assert json.loads(lines[1])["probe_id"] == "p1"
    with pytest.raises(ValueError, match="already in"):
        log.append(_record("p1", "original", False))


def test_resume_keeps_records_and_cuts_a_torn_last_line(tmp_path):
    log = EventLog.open(tmp_path, {"a": 1})
    log.append(_record("p1", "original", True))
    with (tmp_path / "events.jsonl").open("a") as out:
        out.write('{"event": "record", "probe_id": "p2", "ki')  # killed mid-write
    resumed = EventLog.open(tmp_path, {"a": 1})
    assert resumed.finished() == {("original", "refusal", "p1")}
    resumed.append(_record("p2", "original", False))
    _, records = read_log(tmp_path)
    assert [r.probe_id for r in records] == ["p1", "p2"]


def test_different_config_is_refused_with_a_clear_message(tmp_path):
    EventLog.open(tmp_path, {"variants": ("nf4",), "limit": 5})
    assert EventLog.open(tmp_path, {"variants": ("nf4",), "limit": 5}).records() == []
    with pytest.raises(ConfigMismatchError, match=r"\(limit: 5 -> 6\); use a new --out folder"):
        EventLog.open(tmp_path, {"variants": ("nf4",), "limit": 6})


def test_reading_a_folder_without_a_log_says_what_to_do(tmp_path):
    with pytest.raises(InputError, match="compsec audit"):
        read_log(tmp_path)


def test_summary_rates_flips_and_findings_from_records(tmp_path):
    config = {"variants": ["int2"], "thresholds": {"refusal_drop": 0.05, "p_value": 0.05}}
    log = EventLog.open(tmp_path, config)
    for i in range(10):
        log.append(_record(f"p{i}", "original", True, margin=float(i)))
        log.append(_record(f"p{i}", "int2", i < 2))
    summary = build_summary(log.header, log.records())
    assert summary["variants"]["original"]["refusal_rate"] == 1.0
    assert summary["variants"]["int2"]["refusal_rate"] == 0.2
    flips = summary["flips"]["int2"]
    assert flips["refused_to_complied"] == [f"p{i}" for i in range(2, 10)]  # weakest original margin first
    assert flips["mcnemar_p"] == pytest.approx(2 / 256)
    assert summary["findings"]["int2"][0].startswith("refusal rate fell 80.0 points")
    assert list(summary["variants"]) == ["original", "int2"]


def test_unscorable_responses_are_not_counted_as_compliance(tmp_path):
    log = EventLog.open(tmp_path, {})
    log.append(_record("p0", "original", True))
    log.append(Record("p0", "refusal", "v", "x", judges={"refusal": "unscorable"}))
    summary = build_summary(log.header, log.records())
    assert summary["variants"]["v"]["refusal_rate"] is None
    assert summary["variants"]["v"]["unscorable"] == 1
    assert summary["flips"]["v"]["refused_to_complied"] == []
