"""Whole audits (the tiny assistant as the original) against misbehaving endpoints on 127.0.0.1: failures are
retried and counted, a stopped variant keeps its answers and is incomplete, a rerun fills in only what is
missing, a dead endpoint fails before any model runs, and report / compare never pass an incomplete run."""

from __future__ import annotations

import json
import time

import pytest
from faulty_server import ANSWER, free_port
from test_ci_formats import junit_errors

from compsec.audit import AuditConfig, run_audit
from compsec.audit.endpoint import PREFLIGHT_PROMPT
from compsec.audit.eventlog import EventLog, read_log
from compsec.audit.judges.base import COMPLIANCE
from compsec.audit.probes import load_probe_sets
from compsec.audit.record import FAULT, Record
from compsec.cli.main import run

DEADLINE = 5.0  # every answer here must come: room for busy shared CPUs (the bound is still 2x this)
QUICK = {"probes": ("over-refusal", "injection"), "limit": 6, "contrast": False, "max_new_tokens": 8,
         "batch_size": 4, "endpoint_timeout": DEADLINE, "endpoint_backoff": 0.02}
PROBES = 12  # 6 over-refusal + 6 injection (refusal probes would make the original score margins: slow)


class Killed(RuntimeError):
    pass


class Phases:
    """``progress`` callback: seconds from the audit's start to each variant's last batch."""

    def __call__(self, variant: str, done: int, total: int) -> None:
        self.last[variant] = time.monotonic()

    def __init__(self):
        self.started, self.last = time.monotonic(), {}

    def seconds(self, variant: str) -> float:
        return self.last[variant] - self.started


def _original_records(config: AuditConfig) -> list[Record]:
    """The original's records for the config's probes, already judged (these tests are about the endpoint's
    side; the tiny model would spend most of this file's time generating them on busy CPUs)."""
    probes = load_probe_sets(list(config.probes), config.limit)
    return [Record(p.id, p.kind, "original", p.prompt, response=ANSWER, judges={"refusal": COMPLIANCE},
                   reasons={"refusal": "test data"}) for p in probes]


def _audit(out, url, on_record=None, **extra):
    """run_audit of the endpoint ``url``, resumed from a log already holding the original's records."""
    config = AuditConfig(model="tiny", out=str(out), variants=(url,), **{**QUICK, **extra})
    if not (out / "events.jsonl").exists():
        original = _original_records(config)
        plan = {"variants": ["original", url], "probes": [f"{r.kind}/{r.probe_id}" for r in original]}
        log = EventLog.open(out, config.hashed(), plan=plan)
        for record in original:
            log.append(record)
    phases = Phases()
    never_used = object()  # the original's records are all in the log: no model may be touched
    result = run_audit(config, model=never_used, on_record=on_record, progress=phases)
    return result, phases


def _faults(out, category: str) -> list:
    return [r for r in read_log(out)[1] if r.kind == FAULT and r.category == category]


def test_20_percent_http_500_complete_in_one_run_with_every_retry_counted(faulty_server, tmp_path):
    served_500 = []

    def every_fifth_fails(reply, n):
        if reply.prompt != PREFLIGHT_PROMPT and n % 5 == 0:
            served_500.append(n)
            return reply.status(500)
        return reply.ok()

    server = faulty_server(every_fifth_fails)
    result, phases = _audit(tmp_path, server.url, endpoint_retries=5)
    assert phases.seconds(server.url) <= 2 * DEADLINE
    row = result.summary["variants"][server.url]
    assert result.summary["incomplete"] == {} and row["n"] == PROBES
    assert row["requests"] == {"failed": 0, "retried": len(served_500), "truncated": 0} and len(served_500) >= 2
    assert len(_faults(tmp_path, "retried")) == len(served_500)


def test_a_stopped_variant_keeps_its_answers_is_incomplete_and_a_rerun_sends_only_the_missing(
        faulty_server, tmp_path, capsys):
    state = {"broken_after": 6}  # the preflight and five probes are answered, then HTTP 503 for good

    def breaks(reply, n):
        return reply.status(503) if n > state["broken_after"] else reply.ok()

    server = faulty_server(breaks)
    limits = {"concurrency": 2, "endpoint_breaker": 3, "endpoint_retries": 1}
    result, phases = _audit(tmp_path, server.url, **limits)
    assert phases.seconds(server.url) <= 2 * DEADLINE
    missing = result.summary["incomplete"][server.url]
    assert missing["answered"] == 5 and missing["missing"] == PROBES - 5 == len(missing["missing_probes"])
    assert "circuit breaker opened after 3" in missing["stopped"] and server.url in missing["stopped"]
    assert 3 <= result.summary["variants"][server.url]["requests"]["failed"] <= missing["missing"]
    assert run(["report", str(tmp_path)]) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and server.url in error and "7 of 12 prompts missing" in error
    assert "rerun the same `compsec audit` command" in error
    answered = {r.prompt for r in read_log(tmp_path)[1] if r.variant == server.url and r.kind != FAULT}
    state["broken_after"] = 10**9
    sent_before = len(server.prompts)
    rerun, _ = _audit(tmp_path, server.url, **limits)
    assert rerun.summary["incomplete"] == {} and rerun.summary["variants"][server.url]["n"] == PROBES
    preflight, *sent = server.prompts[sent_before:]  # the preflight, then only the missing prompts
    assert preflight == PREFLIGHT_PROMPT and len(sent) == missing["missing"] and not answered & set(sent)
    keys = [r.key for r in read_log(tmp_path)[1]]
    assert len(keys) == len(set(keys))


def test_a_dead_endpoint_fails_the_preflight_before_any_model_runs(tiny_model_dir, tmp_path, capsys):
    url = f"http://127.0.0.1:{free_port()}/v1"
    out = tmp_path / "never"
    started = time.monotonic()
    code = run(["audit", str(tiny_model_dir), "--variants", url, "--probes", "refusal", "--limit", "2",
                "--out", str(out), "--endpoint-timeout", str(DEADLINE), "--endpoint-backoff", "0.02"])
    seconds = time.monotonic() - started
    error = capsys.readouterr().err.strip()
    assert code == 2 and seconds <= 2 * DEADLINE and not out.exists()
    assert error.count("\n") == 0 and url in error and "preflight" in error and "is the server running" in error


def test_interrupted_and_header_only_logs_are_incomplete_for_report_and_compare(
        faulty_server, tmp_path, capsys):
    server = faulty_server(lambda reply, n: reply.ok())
    _audit(tmp_path / "whole", server.url)
    seen = []

    def kill_after_three_endpoint_records(record):
        seen.append(record)
        if sum(r.variant == server.url for r in seen) == 3:
            raise Killed("simulated kill")

    with pytest.raises(Killed):
        _audit(tmp_path / "cut", server.url, on_record=kill_after_three_endpoint_records)
    junit, sarif = tmp_path / "gates.xml", tmp_path / "gates.sarif"
    assert run(["report", str(tmp_path / "cut"), "--junit", str(junit), "--sarif", str(sarif)]) == 2
    assert f"{server.url}: 9 of 12 prompts missing" in capsys.readouterr().err
    assert junit_errors(junit.read_text()) == [] and 'type="incomplete"' in junit.read_text()
    assert json.loads(sarif.read_text())["runs"][0]["properties"]["incomplete"][server.url]["missing"] == 9
    summary = json.loads((tmp_path / "cut" / "summary.json").read_text())
    assert summary["incomplete"][server.url]["missing"] == 9 and "original" not in summary["incomplete"]
    page = (tmp_path / "cut" / "report.html").read_text()
    assert "Incomplete run: 1 variant(s) missing records" in page and "No variant degrades" not in page
    assert run(["compare", str(tmp_path / "whole"), str(tmp_path / "cut")]) == 2
    out = capsys.readouterr().out
    assert "drift gate passed" not in out and "NOT EVALUATED" in out
    config = AuditConfig(model="tiny", out=str(tmp_path / "empty"), variants=(server.url,), **QUICK)
    EventLog.open(tmp_path / "empty", config.hashed())  # the header only, without a plan (an older log)
    assert run(["report", str(tmp_path / "empty")]) == 2
    assert "original: no records" in capsys.readouterr().err
    assert run(["compare", str(tmp_path / "whole"), str(tmp_path / "empty")]) == 2
    assert "drift gate passed" not in capsys.readouterr().out


def test_compsec_serve_answers_are_cut_to_the_stored_cap_and_marked(tiny_assistant, tiny_model_dir, tmp_path):
    from compsec.bridges.chat_server import serve_variant

    with serve_variant(str(tiny_model_dir), "original", loaded=tiny_assistant, max_new_tokens=8) as url:
        # the server generates one answer at a time: one request in flight, and a deadline for busy CPUs
        result, _ = _audit(tmp_path, url, max_stored_chars=6, concurrency=1, endpoint_timeout=60.0, limit=2)
    assert result.summary["incomplete"] == {}
    records = [r for r in read_log(tmp_path)[1] if r.variant == url and r.kind != FAULT]
    assert len(records) == 4 and all(len(r.response) <= 6 for r in records)
    truncated = _faults(tmp_path, "truncated")
    assert all(r.truncated for r in records if any(f.probe_id.startswith(f"{r.kind}/{r.probe_id}#")
                                                   for f in truncated))
    assert result.summary["variants"][url]["requests"]["truncated"] == len(truncated) > 0
