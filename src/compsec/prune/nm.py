"""N:M semi-structured sparsity (NVIDIA's 2:4): in every group of M consecutive inputs of an output row,
keep the N of largest magnitude.

Groups run along the *input* dimension, as sparse tensor cores expect: the last dimension of an ``nn.Linear``
weight ``(out, in)``, the first of a GPT-2 ``Conv1D`` weight stored ``(in, out)`` (pass ``transposed=True``).
"""

from __future__ import annotations

import torch

from compsec.errors import InputError


def parse_nm(spec: str) -> tuple[int, int]:
    """``"2:4"`` → ``(2, 4)``; InputError for anything that is not ``N:M`` with 0 < N < M."""
    try:
        n, m = (int(part) for part in spec.split(":"))
    except ValueError:
        raise InputError(f"N:M pattern {spec!r} must look like '2:4'") from None
    if not 0 < n < m:
        raise InputError(f"N:M pattern {spec!r} needs 0 < N < M (e.g. 2:4)")
    return n, m


def nm_mask(weight: torch.Tensor, n: int = 2, m: int = 4, transposed: bool = False) -> torch.Tensor:
    """Keep-mask of ``weight``'s shape: exactly ``n`` True per group of ``m`` consecutive inputs.

    Example: a row ``[0.1, -3, 2, 0.5]`` with 2:4 keeps ``-3`` and ``2``. Ties keep the lower index.
    """
    rows = weight.detach().t() if transposed else weight.detach()
    if rows.dim() != 2 or rows.shape[1] % m:
        raise InputError(f"N:M pruning needs a 2-D weight whose input size is a multiple of {m}; "
                         f"got shape {tuple(weight.shape)}")
    groups = rows.abs().reshape(rows.shape[0], -1, m)
    order = torch.argsort(groups, dim=-1, descending=True, stable=True)
    keep = torch.zeros_like(groups, dtype=torch.bool).scatter_(-1, order[..., :n], True)
    keep = keep.reshape(rows.shape)
    return keep.t().contiguous() if transposed else keep


def nm_masks(weights: dict[str, torch.Tensor], spec: str = "2:4", transposed: bool = False) -> dict:
    """``{name: keep-mask}`` for every tensor of ``weights``, with the pattern ``spec`` (``"2:4"``)."""
    n, m = parse_nm(spec)
    return {name: nm_mask(w, n, m, transposed) for name, w in weights.items()}
