"""Shared pieces of the format contract tests: every test taking ``fmt`` runs once per registered format."""

from __future__ import annotations

import os

import pytest
import torch

from compsec import formats

STORAGE = (torch.float32, torch.float16, torch.bfloat16)
CANDIDATE_SHAPES = ((8, 256), (16, 512), (4, 1024), (2048,), (8, 32, 32))
#: hypothesis examples per property test: modest by default, more with ``HYPOTHESIS_PROFILE=ci``.
MAX_EXAMPLES = 50 if os.environ.get("HYPOTHESIS_PROFILE") == "ci" else 10


def _is_verified(fmt: formats.Format) -> bool:
    return getattr(fmt, "guarantee", "exact") == "verified"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """``fmt``: every registered format; ``exact_fmt`` / ``verified_fmt``: those with exact / verified boxes."""
    for fixture, keep in (("fmt", lambda f: True), ("exact_fmt", lambda f: not _is_verified(f)),
                          ("verified_fmt", _is_verified)):
        if fixture in metafunc.fixturenames:
            names = [n for n in formats.names() if keep(formats.get(n))]
            metafunc.parametrize(fixture, [formats.get(n) for n in names], ids=names)


def shapes_for(fmt: formats.Format, count: int = 2) -> list[tuple[int, ...]]:
    """The first ``count`` candidate shapes the format can store (fails the test if there is none)."""
    shapes = [s for s in CANDIDATE_SHAPES if fmt.supports(s)][:count]
    if not shapes:
        pytest.fail(f"format {fmt.name} supports none of {CANDIDATE_SHAPES}; add a shape it supports")
    return shapes


def random_weights(shape: tuple[int, ...], dtype: torch.dtype, seed: int, scale: float = 0.05) -> torch.Tensor:
    """Gaussian weights with a few outliers per row, cast to ``dtype`` (deterministic in ``seed``)."""
    gen = torch.Generator().manual_seed(seed)
    w = torch.randn(shape, generator=gen) * scale
    outliers = torch.rand(shape, generator=gen) < 0.01
    w = torch.where(outliers, w * 8, w)
    return w.to(dtype)


@pytest.fixture(autouse=True)
def _one_thread():
    """Format tests use small tensors: one thread is fastest and immune to a busy machine's thread contention."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
