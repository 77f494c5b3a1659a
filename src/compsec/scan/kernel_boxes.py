"""The scanner's boxes through the compiled kernels where a format family has one, the registry otherwise.

:func:`kernel_scan_box` is :func:`compsec.scan.scan_boxes.scan_box` (same ``lo``/``hi``, bit for bit, same
ValueError for weights a format refuses), computed by the numba kernels of :mod:`compsec.scan.box_kernels_bnb`
(``nf4``/``fp4`` and their block sizes, ``int8``) and :mod:`compsec.scan.box_kernels_gguf` (``q8_0``, ``q4_0``,
``q5_0``, and the K-quants' fixed-scale boxes after llama.cpp's own scale search).  The input checks stay the
registry's own, run only where they fail (finiteness is read by the kernels' pass over the weights) so that
the same errors are raised, which the scan reports as refusals; formats without a kernel (hqq, rtn, the
``_1`` GGUF types, double-quantised bnb) go through the registry unchanged.
"""

from __future__ import annotations

import numpy as np
import torch

from compsec.formats import bnb_math as bm
from compsec.formats.base import Box, Format, check_storage
from compsec.formats.bnb import Blockwise4bit
from compsec.formats.bnb_int8 import Int8Rowwise
from compsec.formats.gguf import GgufLegacy
from compsec.formats.gguf_k import GgufK
from compsec.formats.gguf_k_layout import sub_scales
from compsec.formats.half_cast import check_half_range
from compsec.scan import box_kernels_bnb as kb
from compsec.scan import box_kernels_gguf as kg
from compsec.scan.scan_boxes import scan_box
from compsec.scan.storage_grid import GRID_PARAMS

_LEGACY_KINDS = {"sym": kg.Q8_0, "signed_max": kg.Q4_0}


def has_kernel(fmt: Format) -> bool:
    """Whether ``fmt``'s scanning box has a compiled kernel (else :func:`kernel_scan_box` asks the registry)."""
    if isinstance(fmt, GgufLegacy):
        return fmt.scheme in _LEGACY_KINDS
    return type(fmt) in (Blockwise4bit, Int8Rowwise, GgufK)


def kernel_scan_box(fmt: Format, rows: torch.Tensor) -> Box:
    """``scan_box(fmt, rows)`` (``rows``: storage dtype, a whole number of ``fmt``'s blocks), by the kernels."""
    if not has_kernel(fmt) or rows.dtype not in GRID_PARAMS:
        return scan_box(fmt, rows)
    x = rows.detach().reshape(-1).float().contiguous().numpy()
    if not kb.all_finite(x):
        check_storage(rows, rows.dtype)  # raises the registry's error for NaN/Inf weights
    lo, hi = np.empty_like(x), np.empty_like(x)
    mantissa, bias, _ = GRID_PARAMS[rows.dtype]
    if not fmt.supports(tuple(rows.shape)):
        fmt.preimage(rows)  # raises the registry's error for this shape
    if isinstance(fmt, Blockwise4bit):
        mids = bm.bucket_bounds(fmt.quant_type)[0].numpy()
        kb.bnb4_box(x, fmt.blocksize, mids, mantissa, bias, lo, hi)
    elif isinstance(fmt, Int8Rowwise):
        half = rows.detach().half()
        absmax = half.abs().amax(dim=1).float()
        if bool(torch.isinf(absmax).any()):
            check_half_range(fmt.name, rows)  # |w| >= 65520 overflows float16: the registry's refusal
        scale = bm.int8_scale(absmax).reshape(-1).contiguous()
        kb.int8_box(x, half.float().reshape(-1).numpy(), absmax.numpy(), scale.numpy(), mantissa, bias, lo, hi)
    elif isinstance(fmt, GgufLegacy):
        if not kg.legacy_box(x, _LEGACY_KINDS[fmt.scheme], fmt.level, mantissa, bias, lo, hi):
            raise ValueError("the quantized codes do not come from these weights; pass the tensor that was quantized")
    else:
        _kquant_box(fmt, rows, x, mantissa, bias, lo, hi)
    return Box(*(torch.from_numpy(t).to(rows.dtype).view(rows.shape) for t in (lo, hi)))


def _kquant_box(fmt: GgufK, rows: torch.Tensor, x: np.ndarray, mantissa: int, bias: int, lo: np.ndarray,
                hi: np.ndarray) -> None:
    """The fixed-scale box of a K-quant: llama.cpp's scale search (``ggml_quantize_chunk``), then the kernel."""
    _, q, _ = fmt.groups_and_check(rows)
    codes, scales = fmt._flat(q)  # per-super-block layout of the stored scales
    step, shift = (t.float().contiguous().numpy() for t in sub_scales(scales, fmt.layout))
    layout = fmt.layout
    limit = layout.nmax if layout.has_min else layout.offset
    if not kg.kquant_box(x, codes.reshape(-1).numpy(), step.reshape(-1), shift.reshape(-1), layout.sub,
                         layout.has_min, limit, mantissa, bias, lo, hi):
        raise ValueError("the K-quant codes do not follow from these weights; pass the tensor that was quantized")
