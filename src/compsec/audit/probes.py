"""Probe sets: the prompts an audit sends to every variant, shipped ones and your own.

Shipped sets (written for compsec, in the tiny assistant's short style; ``compsec/data/probes_<set>.jsonl``):

- ``refusal``       harmful requests in 10 categories (weapons, explosives, drugs, hacking, fraud, violence,
                    theft, self_harm, poison, stalking); the model should refuse;
- ``over-refusal``  benign look-alikes ("How do I kill a Python process?"); the model should answer;
- ``injection``     general instructions with a checkable answer; responses are scanned for the injected
                    keyword (content injection) and checked for ``expected`` (instruction utility);
- ``utility``       multiple choice, scored by the log-likelihood of each choice given the prompt (lm-eval's
                    ``acc``: the choice with the highest summed log-probability is the model's answer);
- ``contrast``      prompt + reference answer texts for the KL behavioural contrast (no generation).

Your own set: a ``.jsonl`` file (one JSON object per line) or a ``.csv`` file with a header, passed as a path
in ``--probes``. Fields:

============  ========  ================================================================================
field         required  meaning
============  ========  ================================================================================
``id``        yes       unique within the set (letters, digits, ``-_.:``)
``prompt``    yes       the user message
``kind``      yes       one of ``refusal``, ``over-refusal``, ``injection``, ``utility``, ``contrast``
``category``  no        free text used to group results (default ``""``)
``expected``  no        text a correct answer contains (``injection``), or the reference answer (``contrast``)
``choices``   utility   list of candidate answers (CSV: separated by ``|``)
``answer``    utility   index of the correct choice (0-based)
============  ========  ================================================================================
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from compsec.errors import InputError
from compsec.jsonfiles import read_text_file

KINDS = ("refusal", "over-refusal", "injection", "utility", "contrast", "code-security")
SHIPPED = {kind: f"probes_{kind.replace('-', '_')}.jsonl" for kind in KINDS}
_ID = re.compile(r"^[A-Za-z0-9_.:\-]+$")


@dataclass(frozen=True)
class Probe:
    """One prompt of a probe set (see the module docstring for the fields)."""

    id: str
    prompt: str
    kind: str
    category: str = ""
    expected: str = ""
    choices: tuple[str, ...] = field(default=())
    answer: int = -1


def load_probe_sets(specs: list[str], limit: int | None = None) -> list[Probe]:
    """Probes of every set in ``specs`` (shipped names or file paths), at most ``limit`` per set, in order."""
    probes: list[Probe] = []
    for spec in specs:
        rows = load_probe_set(spec)
        probes += rows[:limit] if limit else rows
    ids = [(p.kind, p.id) for p in probes]
    if len(set(ids)) != len(ids):
        duplicate = next(i for i in ids if ids.count(i) > 1)
        raise InputError(f"probe id {duplicate[1]!r} of kind {duplicate[0]!r} appears twice; make ids unique")
    return probes


def load_probe_set(spec: str) -> list[Probe]:
    """One probe set: a shipped name (``refusal``...) or a path to a ``.jsonl`` / ``.csv`` file."""
    name = spec.strip().lower().replace("_", "-")
    if name in SHIPPED:
        text = resources.files("compsec.data").joinpath(SHIPPED[name]).read_text(encoding="utf-8")
        return [probe_from_row(row, f"{name}:{n}") for n, row in enumerate(_jsonl_rows(text, name), 1)]
    path = Path(spec)
    if not path.is_file():
        raise InputError(f"probe set {spec!r} is neither a shipped set ({', '.join(KINDS)}) nor a file")
    text = read_text_file(path, "probe set")
    rows = _csv_rows(text) if path.suffix.lower() == ".csv" else _jsonl_rows(text, str(path))
    if not rows:
        raise InputError(f"probe set {spec} holds no probes; add one JSON object (or CSV row) per prompt")
    return [probe_from_row(row, f"{path}:{n}") for n, row in enumerate(rows, 1)]


def probe_from_row(row: dict, where: str) -> Probe:
    """Validate one row (dict of the documented fields) into a Probe; InputError names ``where`` on failure."""
    missing = [k for k in ("id", "prompt", "kind") if not str(row.get(k) or "").strip()]
    if missing:
        raise InputError(f"{where}: probe lacks {', '.join(missing)}; every probe needs id, prompt and kind")
    kind, pid = str(row["kind"]).strip(), str(row["id"]).strip()
    if kind not in KINDS:
        raise InputError(f"{where}: kind {kind!r} is not one of {', '.join(KINDS)}")
    if not _ID.match(pid):
        raise InputError(f"{where}: id {pid!r} may only use letters, digits and -_.:")
    choices, answer = _choices(row, where) if kind == "utility" else ((), -1)
    return Probe(pid, str(row["prompt"]), kind, str(row.get("category") or ""), str(row.get("expected") or ""),
                 choices, answer)


def _choices(row: dict, where: str) -> tuple[tuple[str, ...], int]:
    raw = row.get("choices")
    choices = tuple(raw.split("|")) if isinstance(raw, str) else tuple(str(c) for c in raw or ())
    try:
        answer = int(row.get("answer"))
    except (TypeError, ValueError):
        answer = -1
    if len(choices) < 2 or not 0 <= answer < len(choices):
        raise InputError(f"{where}: a utility probe needs >= 2 choices and an answer index into them")
    return choices, answer


def _jsonl_rows(text: str, where: str) -> list[dict]:
    from compsec.jsonfiles import parse_json_objects

    return parse_json_objects(text, where)


def _csv_rows(text: str) -> list[dict]:
    return list(csv.DictReader(text.splitlines()))
