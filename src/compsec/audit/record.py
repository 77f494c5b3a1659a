"""The one record type of an audit: a probe sent to a variant, what came back, and how it was judged.

Every renderer (summary.json, report.html) reads only these records from ``events.jsonl``; nothing else of a
run is needed to rebuild a report. Kinds and the fields they fill:

- ``refusal`` / ``over-refusal``: ``response``, ``judges["refusal"]`` and, for the original's ``refusal``
  probes, ``scores["refusal_margin"]`` = log-sum-exp of log p(refusal opening | prompt) minus that of the
  complying openings, in nats (how firmly the original refuses; flips are sorted by it);
- ``injection``: ``response``, ``judges["keyword"]`` and ``scores["instruction_correct"]`` (0/1);
- ``utility``: ``scores["choice"]`` (index picked by log-likelihood) and ``scores["correct"]`` (0/1);
- ``contrast``: ``scores["kl"]`` = mean per-token KL(original || variant) in nats, ``scores["tokens"]``;
- every kind: ``backend`` names what computed it (``torch``, ``endpoint``, ``llama.cpp ...``);
- ``fault``: something went wrong on the way to a response (endpoints, Ray actors): ``category`` is ``retried``,
  ``failed``, ``truncated`` (stored text cut to the cap) or ``stopped`` (circuit breaker: the variant
  stopped); ``reasons["fault"]`` the message; ``scores`` ``attempt``, ``status`` (HTTP, 0 = none),
  ``seconds``; ``probe_id`` is ``KIND/PROBE_ID#N`` (``breaker#N`` for ``stopped``; ``actor#N`` when a variant's
  Ray actor died or failed, :mod:`compsec.audit.on_ray`), N counting the log's faults.
  A probe whose request failed has no record of its own kind, so it counts as missing (incomplete run).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

FAULT = "fault"


@dataclass
class Record:
    """One (probe, variant) result; ``timing`` holds seconds spent (shared batch time divided per prompt)."""

    probe_id: str
    kind: str
    variant: str
    prompt: str
    category: str = ""
    response: str = ""
    truncated: bool = False
    judges: dict[str, str] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)
    scores: dict[str, float] = field(default_factory=dict)
    timing: dict[str, float] = field(default_factory=dict)
    backend: str = ""

    @property
    def key(self) -> tuple[str, str, str]:
        """What makes a record unique in a log: (variant, kind, probe id)."""
        return (self.variant, self.kind, self.probe_id)

    def to_json(self) -> dict:
        return {"event": "record", **asdict(self)}

    @classmethod
    def from_json(cls, data: dict) -> Record:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})
