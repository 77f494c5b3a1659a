"""Reading a garak ``*.report.jsonl`` (garak 0.10 to 0.17 layout) without importing garak.

A report is one JSON object per line, told apart by ``entry_type``: ``start_run setup`` (the config,
e.g. ``plugins.target_name``), ``init`` (``garak_version``), ``attempt``, ``eval`` (garak's own pass / fail
counts per probe and detector), ``completion``, ``digest``. Each prompt is logged twice as an ``attempt``:
``status`` 1 after generation and 2 (complete) after the detectors ran; only status-2 lines carry
``detector_results`` (``{detector: [score per output, 0..1 or null]}``), so only those are read. Since 0.11
``prompt`` is a conversation ``{"turns": [{"role", "content": {"text", ...}}]}`` and each output a message
``{"text", ...}`` or null; older reports hold plain strings, which are read too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from compsec.errors import InputError

ATTEMPT_COMPLETE = 2


@dataclass(frozen=True)
class GarakAttempt:
    """One completed attempt: ``scores`` maps each detector to one score (or None) per output."""

    probe: str
    seq: int
    prompt: str
    outputs: tuple[str | None, ...]
    scores: dict[str, tuple[float | None, ...]]
    uuid: str = ""


@dataclass
class GarakReport:
    """The completed attempts of one report, its target, garak version and garak's own eval lines."""

    path: str
    attempts: list[GarakAttempt] = field(default_factory=list)
    target: str = ""
    garak_version: str = ""
    evals: list[dict] = field(default_factory=list)


def read_report(path: str | Path) -> GarakReport:
    """Parse ``path``; InputError when it is missing, not JSONL, or holds no completed attempt."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"garak report {path} does not exist (garak writes <prefix>.report.jsonl)")
    report = GarakReport(str(path))
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if line.strip():
                _take(report, _parse(line, path, number), path, number)
    if not report.attempts:
        raise InputError(f"{path} holds no completed garak attempt (entry_type 'attempt', status 2); "
                         "give the .report.jsonl of a finished run, not the hitlog")
    return report


def _parse(line: str, path: Path, number: int) -> dict:
    try:
        entry = json.loads(line)
    except json.JSONDecodeError as err:
        raise InputError(f"{path}:{number} is not JSON ({err.msg}); is this a garak .report.jsonl?") from err
    except RecursionError:
        raise InputError(f"{path}:{number}: JSON nested too deeply to parse; is this a garak .report.jsonl?") from None
    if not isinstance(entry, dict) or "entry_type" not in entry:
        raise InputError(f"{path}:{number} has no entry_type; is this a garak .report.jsonl?")
    return entry


def _take(report: GarakReport, entry: dict, path: Path, number: int) -> None:
    kind = entry["entry_type"]
    if kind == "start_run setup":
        report.target = _target(entry)
    elif kind == "init":
        report.garak_version = str(entry.get("garak_version", ""))
    elif kind == "eval":
        report.evals.append(entry)
    elif kind == "attempt" and entry.get("status") == ATTEMPT_COMPLETE:
        report.attempts.append(_attempt(entry, path, number))


def _attempt(entry: dict, path: Path, number: int) -> GarakAttempt:
    try:
        outputs = tuple(_message_text(o) for o in entry.get("outputs") or [])
        scores = {name: tuple(None if s is None else float(s) for s in values)
                  for name, values in (entry.get("detector_results") or {}).items()}
        return GarakAttempt(str(entry["probe_classname"]), int(entry.get("seq", -1)),
                            prompt_text(entry.get("prompt")), outputs, scores, str(entry.get("uuid", "")))
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise InputError(f"{path}:{number}: malformed garak attempt ({type(err).__name__}: {err})") from err


def prompt_text(prompt) -> str:
    """The user text of an attempt's prompt: a plain string, or the user turns of a conversation joined."""
    if prompt is None or isinstance(prompt, str):
        return prompt or ""
    turns = prompt.get("turns", [])
    users = [_message_text(t.get("content")) or "" for t in turns if t.get("role") == "user"]
    return "\n".join(users)


def _message_text(message) -> str | None:
    if message is None or isinstance(message, str):
        return message
    return message.get("text")


def _target(setup: dict) -> str:
    kind = setup.get("plugins.target_type") or setup.get("plugins.model_type") or ""
    name = setup.get("plugins.target_name") or setup.get("plugins.model_name") or ""
    return f"{kind} {name}".strip()
