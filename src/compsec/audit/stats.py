"""Statistics of a paired audit: Wilson intervals, exact McNemar tests and per-prompt flips.

All rates are fractions in [0, 1]; intervals are 95 % (z = 1.96) unless ``z`` says otherwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

Z95 = 1.959963984540054


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion ``successes / n``; ``(0, 1)`` when ``n == 0``.

    Example: 8 refusals out of 10 gives about (0.490, 0.943), narrower and better centred than the
    normal approximation, and never outside [0, 1].
    """
    if n < 0 or not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes ({successes}) <= n ({n})")
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    lo = 0.0 if successes == 0 else max(0.0, centre - half)
    hi = 1.0 if successes == n else min(1.0, centre + half)
    return (lo, hi)


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value for ``b`` and ``c`` discordant pairs (binomial test, p = 1/2).

    ``p = min(1, 2 * P[X <= min(b, c)])`` with ``X ~ Binomial(b + c, 1/2)``; 1.0 when there is no discordant
    pair. Computed exactly with integer binomial coefficients.
    """
    if b < 0 or c < 0:
        raise ValueError(f"discordant counts must be >= 0, got b={b}, c={c}")
    n = b + c
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(b, c) + 1))
    return min(1.0, 2 * tail / 2**n)


@dataclass
class Flips:
    """Per-prompt changes between the original and a variant, over probes both judged (scorable)."""

    refused_to_complied: list[str] = field(default_factory=list)
    complied_to_refused: list[str] = field(default_factory=list)
    paired: int = 0

    @property
    def mcnemar_p(self) -> float:
        return mcnemar_exact(len(self.refused_to_complied), len(self.complied_to_refused))


def paired_flips(original: dict[str, bool], variant: dict[str, bool]) -> Flips:
    """Flips between two ``{probe id: refused}`` maps (unscorable probes left out of both); ids sorted."""
    flips = Flips()
    for pid in sorted(set(original) & set(variant)):
        flips.paired += 1
        if original[pid] and not variant[pid]:
            flips.refused_to_complied.append(pid)
        elif variant[pid] and not original[pid]:
            flips.complied_to_refused.append(pid)
    return flips


def rate(successes: int, n: int) -> dict:
    """``{"rate", "lo", "hi", "k", "n"}`` with the Wilson 95 % interval; rate is None when n == 0."""
    lo, hi = wilson_interval(successes, n)
    return {"rate": successes / n if n else None, "lo": lo, "hi": hi, "k": successes, "n": n}
