"""The layers users deploy, as the oracles of the bitsandbytes formats: weights go in the way transformers'
``load_in_8bit`` / ``load_in_4bit`` put them there, and the stored codes and statistics come back out.

transformers (``integrations/bitsandbytes.py``) wraps the checkpoint tensor, in the dtype it was loaded in, in
``Int8Params(value, requires_grad=False)`` / ``Params4bit(value, requires_grad=False, ...)`` on the layer and
moves it to the device; the move runs ``_quantize``.  On CPU (bitsandbytes 0.50):

- ``Int8Params._quantize`` casts to **float16** first, then ``int8_vectorwise_quant``: ``CB`` (int8 codes of the
  float16 weights) and ``SCB`` (their row abs-max, float32);
- ``Params4bit._quantize`` hands the weight to ``quantize_4bit`` in its own dtype (upcast to float32 there):
  packed codes (two per byte, high nibble first) and ``quant_state`` (``absmax``, or nested statistics with
  ``compress_statistics=True``, which is ``Linear4bit``'s default).
"""

from __future__ import annotations

import torch

from compsec.errors import MissingDependencyError


def load_nn():
    """``bitsandbytes.nn`` (``Linear8bitLt``, ``Linear4bit`` and their parameters), imported on first use."""
    try:
        import bitsandbytes.nn as bnb_nn
    except ImportError as err:
        raise MissingDependencyError("bitsandbytes", purpose="the deployed bitsandbytes layers") from err
    return bnb_nn


def linear8bitlt_quantize(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(CB, SCB)`` a CPU ``Linear8bitLt`` stores for the 2-D weight ``w`` (``out, in``)."""
    nn = load_nn()
    layer = nn.Linear8bitLt(w.shape[1], w.shape[0], bias=False, has_fp16_weights=False, device="meta")
    layer.weight = nn.Int8Params(w.detach().cpu().clone(), requires_grad=False, has_fp16_weights=False)
    weight = layer.to("cpu").weight
    return weight.CB, weight.SCB


def linear4bit_quantize(w: torch.Tensor, quant_type: str, blocksize: int, compress_statistics: bool):
    """``(codes, quant_state)`` a CPU ``Linear4bit`` stores for ``w``: codes unpacked to one uint8 per weight in
    ``w``'s shape.  Any shape: the layer sees ``w`` as ``(-1, w.shape[-1])`` rows, the same flat blocks."""
    weight = linear4bit_weight(w, quant_type, blocksize, compress_statistics)
    packed = weight.data.reshape(-1)
    codes = torch.stack([packed >> 4, packed & 0xF], dim=1).reshape(-1)[: w.numel()]
    return codes.view(w.shape), weight.quant_state


def linear4bit_weight(w: torch.Tensor, quant_type: str, blocksize: int, compress_statistics: bool):
    """The quantized ``Params4bit`` a CPU ``Linear4bit`` holds for ``w`` (packed codes in ``.data``, statistics in
    ``.quant_state``): what ``save_pretrained`` of a ``load_in_4bit`` model writes."""
    nn = load_nn()
    rows = w.reshape(-1, w.shape[-1]) if w.dim() else w.reshape(1, 1)
    layer = nn.Linear4bit(rows.shape[1], rows.shape[0], bias=False, compress_statistics=compress_statistics,
                          quant_type=quant_type, device="meta")
    layer.weight = nn.Params4bit(rows.detach().cpu().clone(), requires_grad=False, blocksize=blocksize,
                                 compress_statistics=compress_statistics, quant_type=quant_type, module=layer)
    return layer.to("cpu").weight
