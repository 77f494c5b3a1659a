"""bitsandbytes arithmetic, reproduced operation for operation in pure torch (bitsandbytes 0.50 CPU path).

Read from ``bitsandbytes/backends/default/ops.py`` (the CPU backend registers no quantize kernel of its own):

- **LLM.int8()** ``int8_vectorwise_quant``: ``a = max|row|`` (input dtype, exact) cast to fp32;
  ``code = int8(round(A * (127.0 / a)))``; ``A`` (fp16/bf16) times the fp32 ``127/a`` promotes to **fp32**, so every
  input dtype is quantized in fp32 arithmetic.  ``round`` is half-to-even.  Dequant: ``code * a * 7.874015718698502e-3``.
  The deployed layer (``Int8Params._quantize``) feeds it ``w.half()`` whatever ``w``'s dtype (see ``bnb_int8``).
- **NF4/FP4** ``quantize_4bit``: input upcast with ``.float()``; per block of ``blocksize`` flat elements
  ``a = max|block|``, ``scaled = clamp(x * (1.0 / max(a, 1e-38)), -1, 1)`` (multiply by the fp32 reciprocal);
  a last partial block instead *divides*: ``clamp(x / max(a, 1e-38), -1, 1)`` and stores the clamped ``a``.
  The bucket is ``torch.bucketize(scaled, midpoints)`` with ``right=False``: a value exactly on a midpoint goes to
  the *lower* bucket (level = number of midpoints strictly below it).  Midpoints are ``(c[i] + c[i+1]) / 2`` in
  fp32 over the sorted code table; FP4 maps the bucket back to its code with ``argsort(code)``.
"""

from __future__ import annotations

import torch

from compsec.errors import MissingDependencyError
from compsec.formats.base import Box

NF4_TABLE = [-1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
             -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
             0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941,
             0.7229568362236023, 1.0]
FP4_TABLE = [0, 0.0625, 8.0, 12.0, 4.0, 6.0, 2.0, 3.0, -0, -0.0625, -8.0, -12.0, -4.0, -6.0, -2.0, -3.0]
INT8_DEQUANT = 7.874015718698502e-3
TINY_ABSMAX = 1e-38


def code_table(quant_type: str) -> torch.Tensor:
    """The 16 code values (fp32, CPU), normalised to [-1, 1] exactly as ``get_4bit_type`` does."""
    tables = {"nf4": NF4_TABLE, "fp4": FP4_TABLE}
    if quant_type not in tables:
        raise ValueError(f"quant_type {quant_type!r} is not a bitsandbytes 4-bit type; use 'nf4' or 'fp4'")
    data = torch.tensor(tables[quant_type])
    return data.div_(data.abs().max())


def bucket_bounds(quant_type: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(midpoints (15,) fp32, order (16,) int64): bucket ``b`` stores code ``order[b]`` (CPU tensors)."""
    code = code_table(quant_type)
    order = torch.argsort(code)
    return (code[order[:-1]] + code[order[1:]]) / 2, order


def split_tail(n: int, blocksize: int) -> tuple[int, int]:
    """(number of full blocks, length of the last partial block) for ``n`` flat elements."""
    return n // blocksize, n % blocksize


def absmax_4bit(flat: torch.Tensor, blocksize: int) -> torch.Tensor:
    """Stored per-block abs-max (fp32, one per block incl. a partial last block, which is clamped to 1e-38)."""
    full, rem = split_tail(flat.numel(), blocksize)
    absmax = flat[: full * blocksize].reshape(full, blocksize).abs().max(dim=-1)[0]
    if rem:
        tail = flat[full * blocksize:].abs().max().clamp(min=TINY_ABSMAX)
        absmax = torch.cat([absmax, tail.unsqueeze(0)])
    return absmax


def scale_4bit(x: torch.Tensor, absmax: torch.Tensor, blocksize: int, clamp: bool = True) -> torch.Tensor:
    """``scaled`` of every element of flat fp32 ``x``, exactly as ``quantize_4bit`` computes it.

    ``clamp=False`` skips the final clamp to [-1, 1]: comparing with a midpoint (all lie inside (-1, 1)) or
    with ``±inf`` gives the same answer either way, one pass cheaper."""
    full, rem = split_tail(x.numel(), blocksize)
    recip = 1.0 / absmax[:full].clamp(min=TINY_ABSMAX)
    scaled = (x[: full * blocksize].reshape(full, blocksize) * recip.view(-1, 1)).reshape(-1)
    if rem:
        scaled = torch.cat([scaled, x[full * blocksize:] / absmax[full]])
    return torch.clamp(scaled, -1, 1) if clamp else scaled


def scale_4bit_at(x: torch.Tensor, recip: torch.Tensor, in_tail: torch.Tensor, tail_absmax: torch.Tensor,
                  ) -> torch.Tensor:
    """Unclamped ``scaled`` of loose elements ``x`` given their block's ``1/max(a, 1e-38)`` (``recip``), whether
    they sit in the partial last block (``in_tail``, divided by ``tail_absmax`` there instead)."""
    return torch.where(in_tail, x / tail_absmax, x * recip)


def buckets_4bit(x: torch.Tensor, absmax: torch.Tensor, blocksize: int, bounds: torch.Tensor) -> torch.Tensor:
    """Bucket index (int32) of each element: the number of midpoints strictly below its scaled value."""
    return torch.bucketize(scale_4bit(x, absmax, blocksize), bounds, out_int32=True)


def int8_scale(absmax: torch.Tensor) -> torch.Tensor:
    """Per-row multiplier ``127.0 / a`` (fp32), as in ``int8_vectorwise_quant``."""
    return 127.0 / absmax.unsqueeze(-1)


def int8_codes_at(x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Stored int8 code of elements ``x`` with row multipliers ``scale``, widened to int16 so it can be negated.

    The cast is part of the code: when ``1/a`` overflows (``a`` below ~2.9e-39) the multiplier is ``inf`` and
    the cast of ``±inf``/``NaN`` decides the code (0 on x86), so the whole row shares one code.
    """
    return torch.round(x * scale).to(torch.int8).to(torch.int16)


def load_functional():
    """``bitsandbytes.functional``, imported on first use (MissingDependencyError with the pip line)."""
    try:
        import bitsandbytes.functional as bnb_functional
    except ImportError as err:
        raise MissingDependencyError("bitsandbytes", purpose="the bitsandbytes reference quantizer") from err
    return bnb_functional


def check_weights(w: torch.Tensor) -> None:
    """ValueError for dtypes bitsandbytes does not quantize and for NaN/Inf weights."""
    if w.dtype not in (torch.float32, torch.float16, torch.bfloat16):
        raise ValueError(f"bitsandbytes quantizes float32/float16/bfloat16 weights, got {w.dtype}; cast first")
    if not bool(torch.isfinite(w).all()):
        raise ValueError("tensor contains NaN or Inf; bitsandbytes would store garbage for it, fix the weights")


def box_with_pinned(lo: torch.Tensor, hi: torch.Tensor, pinned: torch.Tensor, values: torch.Tensor,
                    shape: tuple[int, ...]) -> Box:
    """Flat edges ``lo``/``hi`` with the pinned weights set to their own values, shaped ``shape``."""
    mask = pinned.reshape(-1)
    lo[mask] = values.float()
    hi[mask] = values.float()
    return Box(lo.view(shape), hi.view(shape))
