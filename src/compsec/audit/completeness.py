"""Is an audit complete? What each variant is missing and what its requests went through, from the log alone.

A run is complete when every planned variant has a record for every planned probe. The plan is the log
header's ``plan`` (``{"variants": [...], "probes": ["kind/id", ...]}``, written by :func:`run_audit`); a log
without one is held to its config's variants and to the probes the original answered (it always runs first).
A probe whose request failed, or that a stopped or interrupted run never reached, has no record of its kind:
it is *missing*, and the run is incomplete until a rerun into the same folder fills it in. Incomplete runs are an error for every
verb that gates on them (exit 2: nothing can be concluded from a partial measurement, clean or not).

Faults (records of kind ``fault``, see :mod:`compsec.audit.record`) are counted per variant: requests that
``failed``, were ``retried``, and answers whose stored text was ``truncated`` to the cap.
"""

from __future__ import annotations

from compsec.audit.record import FAULT, Record
from compsec.errors import CompsecError

ORIGINAL = "original"
COUNTED = ("failed", "retried", "truncated")
SHOWN = 3  # variants named in one message line


def request_faults(records: list[Record]) -> dict[str, int]:
    """``{"failed", "retried", "truncated"}`` counts over one variant's fault records."""
    return {kind: sum(1 for r in records if r.kind == FAULT and r.category == kind) for kind in COUNTED}


def incomplete_variants(header: dict, records: list[Record]) -> dict[str, dict]:
    """``{variant: {"expected", "answered", "missing", "missing_probes", "stopped", "last_failure"}}``.

    Only incomplete variants are listed (an empty dict: the run is complete). ``expected`` is None when the
    log says neither what was planned nor anything was answered (a header-only log without a plan).
    """
    answered: dict[str, set[str]] = {}
    for r in records:
        if r.kind != FAULT:
            answered.setdefault(r.variant, set()).add(f"{r.kind}/{r.probe_id}")
    plan = header.get("plan") or {}
    variants = plan.get("variants") or _config_variants(header.get("config", {}), answered)
    probes = plan.get("probes") or sorted(answered.get(ORIGINAL, set()))
    result = {}
    for name in variants:
        done = answered.get(name, set())
        missing = [key for key in probes if key not in done]
        if missing or not done:
            result[name] = {"expected": len(probes) or None, "answered": len(done), "missing": len(missing),
                            "missing_probes": missing, **_why(name, records)}
    return result


def describe_incomplete(incomplete: dict[str, dict]) -> str:
    """One line naming the incomplete variants, what they miss and why (empty for a complete run)."""
    parts = []
    for name, entry in list(incomplete.items())[:SHOWN]:
        total = entry["expected"]
        count = f"{entry['missing']} of {total} prompts missing" if total else "no records"
        cause = entry["stopped"] or entry["last_failure"]
        parts.append(f"{name}: {count}" + (f" ({cause})" if cause else ""))
    more = f"; and {len(incomplete) - SHOWN} more variants" if len(incomplete) > SHOWN else ""
    return "; ".join(parts) + more


def _why(variant: str, records: list[Record]) -> dict:
    faults = [r for r in records if r.variant == variant and r.kind == FAULT]
    stopped = [r.reasons.get("fault", "") for r in faults if r.category == "stopped"]
    failed = [r.reasons.get("fault", "") for r in faults if r.category == "failed"]
    return {"stopped": stopped[-1] if stopped else None, "last_failure": failed[-1] if failed else None}


def _config_variants(config: dict, answered: dict) -> list[str]:
    """The variants a plan-less log was meant to hold: the original, then its config's (as records name them)."""
    names = [ORIGINAL]
    for spec in config.get("variants", []):
        spec = str(spec).strip()
        names.append(spec.lower() if spec not in answered and spec.lower() in answered else spec)
    return list(dict.fromkeys(names + sorted(answered)))


class IncompleteRunError(CompsecError):
    """An audit run (or a baseline) misses records; the CLI exits 2 with this one line."""


def require_complete(folder, incomplete: dict[str, dict], what: str = "audit") -> None:
    """Raise :class:`IncompleteRunError` naming the missing variants and the command that completes them."""
    if incomplete:
        raise IncompleteRunError(
            f"{what} {folder} is incomplete: {describe_incomplete(incomplete)}; rerun the same `compsec audit` "
            f"command with --out {folder} to fill in only what is missing (`compsec report {folder}` lists it)")
