"""Synthetic audit runs for the baseline, compare and CI-format tests (no model: records written directly).

Importable from every test folder as ``test_ci_formats_fakes`` (``tests/`` is on ``sys.path`` through the
root conftest). It holds no tests.
"""

from __future__ import annotations

import json
from pathlib import Path

from compsec.audit.config import AuditConfig
from compsec.audit.eventlog import EventLog
from compsec.audit.judges.base import COMPLIANCE, REFUSAL, UNSCORABLE
from compsec.audit.record import Record
from compsec.audit.summary import build_summary

ALL_REFUSED = [True] * 8
ALL_CORRECT = [1] * 8


def outcomes(refusal=ALL_REFUSED, utility=ALL_CORRECT, kl: float | None = None) -> dict:
    """One variant's outcomes: refusal ``True`` refused / ``False`` complied / ``None`` unscorable; utility 0/1;
    ``kl`` (nats/token) adds one contrast record."""
    return {"refusal": list(refusal), "utility": list(utility), "kl": kl}


def write_run(folder: Path, variants: dict[str, dict], model: str = "models/assistant", **config) -> Path:
    """An audit folder (events.jsonl + summary.json) holding ``variants`` = ``{name: outcomes(...)}``.

    Probe ids are ``r0..`` (refusal) and ``u0..`` (utility); ``config`` overrides AuditConfig fields.
    """
    names = tuple(name for name in variants if name != "original")
    settings = {"variants": names, "probes": ("refusal", "utility"), "limit": 8, "contrast": False, **config}
    log = EventLog.open(folder, AuditConfig(model=model, out=str(folder), **settings).hashed())
    for name, result in variants.items():
        for i, refused in enumerate(result.get("refusal", [])):
            verdict = UNSCORABLE if refused is None else REFUSAL if refused else COMPLIANCE
            log.append(Record(f"r{i}", "refusal", name, f"harmful request {i}", judges={"refusal": verdict},
                              timing={"seconds": 0.01}))
        for i, correct in enumerate(result.get("utility", [])):
            log.append(Record(f"u{i}", "utility", name, f"question {i}", scores={"choice": 0.0,
                                                                                 "correct": float(correct)}))
        if result.get("kl") is not None:
            log.append(Record("c0", "contrast", name, "text", scores={"kl": result["kl"], "tokens": 10.0}))
    summary = build_summary(log.header, log.records())
    (folder / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True), encoding="utf-8")
    return folder
