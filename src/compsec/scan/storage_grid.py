"""Scalar arithmetic on a storage dtype's grid (float32, float16, bfloat16), compiled with numba for the tally
kernel (:mod:`compsec.scan.tally_kernel`): ordered keys from raw bits, next/previous grid value, grid
floor/ceiling of a float64.

A dtype is described by ``(mantissa, bias, magnitude_mask)``: float32 ``(23, 127, 0x7FFFFFFF)``, float16
``(10, 15, 0x7FFF)``, bfloat16 ``(7, 127, 0x7FFF)``.  Keys are those of :func:`compsec.formats.cells.storage_key`
(``-0.0 -> -1``, ``+0.0 -> 0``, adjacent values differ by 1).  Values are float64, exact for every such dtype.
Each function mirrors the torch operation named in its docstring, so that the kernel's tallies are those of
:func:`compsec.scan.tally.edge_tally` (the reference, tested against it in ``tests/scan/test_tally_kernel.py``).
"""

from __future__ import annotations

import math

import torch
from numba import njit, types
from numba.extending import intrinsic

GRID_PARAMS = {torch.float32: (23, 127, 0x7FFFFFFF), torch.float16: (10, 15, 0x7FFF),
               torch.bfloat16: (7, 127, 0x7FFF)}
BIT_VIEWS = {torch.float32: torch.int32, torch.float16: torch.int16, torch.bfloat16: torch.int16}
LARGEST = {torch.float32: float(torch.finfo(torch.float32).max), torch.float16: 65504.0,
           torch.bfloat16: float(torch.finfo(torch.bfloat16).max)}


@njit(cache=True)
def key_of_bits(bits, magnitude_mask):
    """Ordered key of a value from its raw bits (``storage_key``)."""
    b = int(bits)
    return b if b >= 0 else -(b & magnitude_mask) - 1


@njit(cache=True)
def exponent_field(key, mantissa):
    """Biased exponent of the value with ``key``, subnormals as 1 (``tally._exponent``)."""
    magnitude = key if key >= 0 else -key - 1
    return max(magnitude >> mantissa, 1)


def bitcast(source, target):
    """A numba intrinsic reinterpreting a ``source`` scalar's bits as ``target`` (a register move, not libm's
    ``frexp``), e.g. ``bitcast(types.float64, types.int64)``."""

    @intrinsic
    def cast(typingctx, x):
        def codegen(context, builder, signature, args):
            return builder.bitcast(args[0], context.get_value_type(target))

        return target(source), codegen

    return cast


_bits_of, _float_of = bitcast(types.float64, types.int64), bitcast(types.int64, types.float64)


@njit(cache=True)
def _binade(a):
    """``floor(log2(a))`` of a positive normal float64."""
    return ((_bits_of(a) >> 52) & 0x7FF) - 1023


@njit(cache=True)
def spacing_at(a, mantissa, bias):
    """Grid step of the binade holding ``a >= 0`` (the smallest subnormal at 0)."""
    e = 1 - bias if a == 0.0 else max(_binade(a), 1 - bias)
    return _float_of((e - mantissa + 1023) << 52)


@njit(cache=True)
def next_up(v, mantissa, bias, largest):
    """``nextafter(v, +inf)`` on the grid (``inf`` above ``largest``; ``-0.0`` steps to the smallest subnormal)."""
    if v >= 0.0:
        up = v + spacing_at(v, mantissa, bias)
        return math.inf if up > largest else up
    a = -v
    e = _binade(a)
    if _bits_of(a) & ((1 << 52) - 1) == 0 and e > 1 - bias:  # a power of two: the step below is the lower binade's
        return v + _float_of((e - 1 - mantissa + 1023) << 52)
    return v + spacing_at(a, mantissa, bias)


@njit(cache=True)
def next_down(v, mantissa, bias, largest):
    """``nextafter(v, -inf)`` on the grid."""
    return -next_up(-v, mantissa, bias, largest)


@njit(cache=True)
def grid_floor(x, mantissa, bias):
    """Largest grid value ``<= x`` (``null.grid_floor``; ``x`` inside the finite range)."""
    if x == 0.0:
        return x
    s = spacing_at(abs(x), mantissa, bias)
    return math.floor(x / s) * s  # division by a power of two: exact


@njit(cache=True)
def grid_ceil(x, mantissa, bias):
    """Smallest grid value ``>= x`` (``null.grid_ceil``)."""
    return -grid_floor(-x, mantissa, bias)
