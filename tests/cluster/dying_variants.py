"""Audit variants whose Ray actor dies or fails on purpose (for ``compsec audit --ray`` tests).

``dying-N``: the original weights; its actor process exits (``os._exit``) the first N times any actor runs it:
the first time at its second generation batch (after one batch was logged), later at its first (deaths are counted as files in ``TALLY["dir"]/dying-N``, which actors share
with the test). Every prompt it really generates for is appended to ``sent.txt`` there. ``broken``: opening
it raises a CompsecError. The module is pickled by value, so Ray workers need not import the tests package.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from compsec.audit.variants import register_variant
from compsec.errors import CompsecError

TALLY: dict[str, Path] = {}
_REGISTERED: list[str] = []


class _DyingBackend:
    label = "torch"

    def __init__(self, inner, tally: Path, deaths: int):
        self.inner, self.tally, self.deaths, self.calls = inner, tally, deaths, 0

    def generate(self, prompts: list[str]):
        self.calls += 1
        died = len(list(self.tally.glob("death*")))
        if died < self.deaths and (self.calls == 2 or died > 0):  # the first death after one batch
            (self.tally / f"death{died}").touch()
            os._exit(1)
        with (self.tally / "sent.txt").open("a", encoding="utf-8") as sent:
            sent.writelines(p.replace("\n", " ") + "\n" for p in prompts)
        return self.inner.generate(prompts)

    def __getattr__(self, name: str):
        return getattr(self.inner, name)


@dataclass(frozen=True)
class DyingVariant:
    name: str
    tally: str
    deaths: int

    @contextmanager
    def open(self, context):
        yield _DyingBackend(context.local_backend(), Path(self.tally), self.deaths)


@dataclass(frozen=True)
class BrokenVariant:
    name: str = "broken"

    @contextmanager
    def open(self, context):
        raise CompsecError("this variant cannot be opened (test)")
        yield


def _factory(spec: str):
    if spec.startswith("dying-"):
        tally = TALLY["dir"] / spec
        tally.mkdir(parents=True, exist_ok=True)
        return DyingVariant(spec, str(tally), int(spec.split("-")[1]))
    return BrokenVariant() if spec == "broken" else None


def register_once() -> None:
    """Register the factory (once per process) and pickle this module by value for Ray's workers."""
    import sys

    from ray import cloudpickle

    if not _REGISTERED:
        register_variant("test-dying", _factory)
        _REGISTERED.append("test-dying")
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
