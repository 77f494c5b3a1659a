"""Which weights a scan examines: every one by default; with ``--sample N``, blocks drawn from every row with a
fresh random seed per run (recorded, so ``--seed`` repeats the run).

Why not a fixed sample.  A sample chosen by a generator seeded with a constant and the tensor's name is the same
on every run and machine: an attacker who reads the source plants the fingerprint everywhere else and the scan
says clean.  The default examines every weight; a sample is only a quick look, and then an unpredictable one.

Sample layout.  ``N`` weights per tensor become ``s = ceil(N / block)`` blocks of ``block`` consecutive weights of
a row (``block``: a multiple of every checked block format's block, so each sampled block quantizes exactly as in
the whole tensor).  When ``s`` reaches the row count every row gets ``ceil(s / rows)`` blocks, at random columns;
else ``s`` distinct random rows get one block each.  Row-wise formats (LLM.int8) scale a row by its abs-max, so
the row's abs-max weight is appended to its sampled blocks (see :mod:`compsec.scan.tensor_scan`).

Miss probability.  For a fingerprint covering a fraction ``f`` of a tensor's rows, the chance that the sample
holds none of its rows is hypergeometric, ``C(R - fR, r) / C(R, r)`` for ``r`` sampled rows out of ``R`` (0 when
every row is sampled); for one covering a fraction ``f`` of the blocks anywhere, ``(1 - f) ** s``.  The report
gives both for ``f`` = 1 %, 10 %, 50 %, for the tensor where they are largest.  Holding some fingerprinted
weights is necessary, not sufficient: the detection-power table (``bench/bench_scan_power.py``) measures the rest.
"""

from __future__ import annotations

import math
import secrets
import zlib

import torch

MISS_FRACTIONS = (0.01, 0.1, 0.5)


def fresh_seed() -> int:
    """A random seed for one sampled run (from the OS's entropy: no attacker can predict it)."""
    return secrets.randbits(62)


def tensor_generator(seed: int, name: str) -> torch.Generator:
    """The generator of one tensor's sample: the run's seed mixed with the tensor's name."""
    return torch.Generator().manual_seed((seed * 1_000_003 + zlib.crc32(name.encode())) % (1 << 63))


def sample_block(row_length: int, format_blocks: list[int]) -> int:
    """Width of a sampled block: the least common multiple of the checked formats' blocks when it divides
    ``row_length`` (so sampled blocks quantize exactly as in the tensor), else the whole row."""
    size = math.lcm(*format_blocks) if format_blocks else row_length
    return size if size < row_length and row_length % size == 0 else row_length


def sample_layout(n_rows: int, row_length: int, budget: int, block: int, gen: torch.Generator,
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(rows, columns)``: the sampled rows (sorted, int64) and, per sampled row, the sorted indices of its sampled
    blocks (``(len(rows), k)`` int64, block ``c`` covering weights ``c * block .. (c + 1) * block - 1``)."""
    per_row = row_length // block
    wanted = max(1, -(-budget // block))
    if wanted >= n_rows:
        rows = torch.arange(n_rows)
        k = min(per_row, -(-wanted // n_rows))
    else:
        rows = torch.randperm(n_rows, generator=gen)[:wanted].sort().values
        k = 1
    columns = torch.rand(len(rows), per_row, generator=gen).argsort(dim=1)[:, :k].sort(dim=1).values
    return rows, columns


def miss_probabilities(n_rows: int, sampled_rows: int, sampled_blocks: int) -> dict[str, dict[str, float]]:
    """``{"rows": {f: P}, "blocks": {f: P}}`` for ``f`` in ``MISS_FRACTIONS`` (see the module docs)."""
    rows = {}
    for f in MISS_FRACTIONS:
        covered = max(1, round(f * n_rows))
        rows[str(f)] = _hypergeometric_none(n_rows, covered, sampled_rows)
    return {"rows": rows, "blocks": {str(f): (1 - f) ** sampled_blocks for f in MISS_FRACTIONS}}


def _hypergeometric_none(total: int, marked: int, drawn: int) -> float:
    """P(no marked item among ``drawn`` of ``total``) = C(total - marked, drawn) / C(total, drawn)."""
    if drawn > total - marked:
        return 0.0
    log_p = (math.lgamma(total - marked + 1) - math.lgamma(total - marked - drawn + 1)
             - math.lgamma(total + 1) + math.lgamma(total - drawn + 1))
    return math.exp(log_p)


def worst_miss(per_tensor: list[dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    """The largest miss probability over tensors, per kind and fraction ({} when nothing was sampled)."""
    if not per_tensor:
        return {}
    return {kind: {f: max(m[kind][f] for m in per_tensor) for f in per_tensor[0][kind]} for kind in per_tensor[0]}
