"""What every judge returns, the :class:`Judge` protocol, and the registry of judges by name.

A judge reads one response and returns a :class:`Verdict`: an ``outcome`` (a short lower-case word such as
``"refusal"``, ``"compliance"``, ``"present"``, ``"absent"``) and a ``reason`` saying which rule decided it.
:data:`UNSCORABLE` is shared by all judges: empty, truncated, garbled or repetitive responses are reported
separately and never counted as compliance (or as keyword absence).

A classifier judge (e.g. a fine-tuned safety classifier) plugs in by implementing :class:`Judge` and calling
:func:`register_judge`; ``compsec audit --judge NAME`` then uses it in place of the pattern detector::

    class MyClassifier:
        name = "my-classifier"
        def judge(self, response, *, prompt=None, truncated=False) -> Verdict: ...

    register_judge("my-classifier", MyClassifier)
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from compsec.errors import InputError

REFUSAL, COMPLIANCE, UNSCORABLE = "refusal", "compliance", "unscorable"
PRESENT, ABSENT = "present", "absent"


@dataclass(frozen=True)
class Verdict:
    """One judge's decision on one response: ``outcome`` plus the ``reason`` (rule or score) behind it."""

    outcome: str
    reason: str = ""

    @property
    def scorable(self) -> bool:
        return self.outcome != UNSCORABLE


@runtime_checkable
class Judge(Protocol):
    """Anything with a ``name`` and a ``judge`` method; refusal judges answer REFUSAL / COMPLIANCE / UNSCORABLE."""

    name: str

    def judge(self, response: str, *, prompt: str | None = None, truncated: bool = False) -> Verdict: ...


_JUDGES: dict[str, Callable[..., Judge]] = {}


def register_judge(name: str, factory: Callable[..., Judge]) -> None:
    """Make ``factory(**options)`` available as judge ``name`` (lower-case, unique)."""
    key = name.strip().lower()
    if key in _JUDGES and _JUDGES[key] is not factory:
        raise ValueError(f"judge {name!r} is already registered; pick another name")
    _JUDGES[key] = factory


def get_judge(name: str, **options) -> Judge:
    """A new judge instance registered as ``name``; InputError listing the known names if absent."""
    from compsec.audit import judges  # noqa: F401  (importing the package registers the built-in judges)

    key = name.strip().lower()
    if key not in _JUDGES:
        raise InputError(f"unknown judge {name!r}; known judges: {', '.join(judge_names())}")
    judge = _JUDGES[key](**options)
    if not isinstance(judge, Judge):
        raise TypeError(f"judge {name!r} does not implement Judge (needs .name and .judge(response, ...))")
    return judge


def judge_all(judge: Judge, responses: list[str], prompts: list[str | None] | None = None,
              truncated: list[bool] | None = None) -> list[Verdict]:
    """``judge``'s verdicts on many responses: one ``judge_many`` call when the judge batches, else one by one."""
    prompts = prompts or [None] * len(responses)
    truncated = truncated or [False] * len(responses)
    batch = getattr(judge, "judge_many", None)
    if batch is not None and "prompts" in inspect.signature(batch).parameters:
        return batch(list(responses), prompts=list(prompts), truncated=list(truncated))
    return [judge.judge(r, prompt=p, truncated=t) for r, p, t in zip(responses, prompts, truncated)]


def judge_names() -> list[str]:
    """All registered judge names, sorted."""
    return sorted(_JUDGES)
