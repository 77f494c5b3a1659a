"""``compsec audit --ray`` on a real local Ray cluster (a head and one worker node) with the tiny assistant:
the same records and summary as the in-process audit, resume from the event log, and actors that die or fail."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from compsec.audit import AuditConfig, run_audit
from compsec.audit.eventlog import LOG_NAME, read_log
from compsec.cli.main import run

from . import dying_variants

QUICK = {"probes": ("refusal", "over-refusal", "utility"), "limit": 2, "max_new_tokens": 8, "batch_size": 2}
FLAGS = ["--probes", "refusal,over-refusal,utility", "--limit", "2", "--max-new-tokens", "8", "--batch-size", "2"]


def _in_process(tiny_model_dir, out, **extra):
    """The in-process audit with one torch thread, as each 1-CPU actor runs (the same float sums)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return run_audit(AuditConfig(model=str(tiny_model_dir), out=str(out), variants=("int8",), **QUICK, **extra))
    finally:
        torch.set_num_threads(threads)


def _results(folder) -> dict:
    """Every record of a log without its timing, by key."""
    records = read_log(folder)[1]
    return {r.key: {**r.to_json(), "timing": {}} for r in records}


@pytest.mark.slow
def test_audit_on_ray_equals_the_in_process_audit_and_resumes_only_what_is_missing(ray_cluster, tiny_model_dir,
                                                                                  tmp_path, capsys):
    local = _in_process(tiny_model_dir, tmp_path / "local")
    code = run(["audit", str(tiny_model_dir), "--variants", "int8", *FLAGS, "--out", str(tmp_path / "ray"),
                "--ray", ray_cluster.address])
    assert code == (1 if local.findings else 0)
    assert _results(tmp_path / "ray") == _results(tmp_path / "local")
    assert (tmp_path / "ray" / "summary.json").read_text() == (tmp_path / "local" / "summary.json").read_text()

    resumed = tmp_path / "resumed"  # the local log less int8's refusal records: only those are computed again
    resumed.mkdir()
    lines = (tmp_path / "local" / LOG_NAME).read_text().splitlines()
    dropped = [json.loads(line) for line in lines[1:]]
    dropped = {(r["variant"], r["kind"], r["probe_id"]) for r in dropped if r["variant"] == "int8" and r["kind"] == "refusal"}
    kept = [line for line in lines if tuple(json.loads(line).get(k) for k in ("variant", "kind", "probe_id")) not in dropped]
    (resumed / LOG_NAME).write_text("\n".join(kept) + "\n")
    logged = []
    config = AuditConfig(model=str(tiny_model_dir), out=str(resumed), variants=("int8",), ray=ray_cluster.address,
                         **QUICK)
    run_audit(config, on_record=logged.append)
    assert {r.key for r in logged} == dropped and len(dropped) == 2
    assert _results(resumed) == _results(tmp_path / "local")
    run_audit(config, on_record=logged.append)  # complete: no actor starts, nothing is logged
    assert len(logged) == 2

    capsys.readouterr()
    assert run(["audit", str(tiny_model_dir), "--variants", "int8", *FLAGS, "--out", str(tmp_path / "gpu"),
                "--ray", ray_cluster.address, "--device", "cuda"]) == 2
    assert "has no GPU" in capsys.readouterr().err and not (tmp_path / "gpu" / LOG_NAME).exists()


@pytest.mark.slow
def test_a_dead_actor_is_replaced_and_a_failing_variant_stops_alone(ray_cluster, tiny_model_dir, tmp_path, capsys):
    dying_variants.TALLY["dir"] = tmp_path / "tally"
    dying_variants.register_once()
    out = tmp_path / "out"
    args = ["audit", str(tiny_model_dir), "--variants", "dying-1,dying-9,broken", *FLAGS, "--no-contrast",
            "--out", str(out), "--ray", ray_cluster.address, "--ray-workers", "2"]
    assert run(args) == 2  # incomplete: dying-9 and broken stopped; the run itself ended
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "dying-9" in error and "its Ray actor died 2 times" in error, error
    assert "broken" in error and "this variant cannot be opened" in error
    _, records = read_log(out)
    keys = [r.key for r in records]
    assert len(keys) == len(set(keys))
    answers = {r.key[1:]: r.response for r in records if r.variant == "original"}
    revived = {r.key[1:]: r.response for r in records if r.variant == "dying-1"}
    assert revived == answers and len(answers) == 6  # dying-1 died once, a fresh actor finished it
    sent = (tmp_path / "tally" / "dying-1" / "sent.txt").read_text().splitlines()
    assert len(sent) == len(set(sent)) == 4  # the batch logged before the death was not generated again
    assert len(list((tmp_path / "tally" / "dying-9").glob("death*"))) == 2
    assert not [r for r in records if r.variant == "broken" and r.kind != "fault"]
    shutil.rmtree(tmp_path / "tally")
