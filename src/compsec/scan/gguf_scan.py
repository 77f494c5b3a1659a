"""``compsec scan FILE.gguf``: what a quantized GGUF's own weights can show.

The file is validated first (:func:`compsec.integrity.gguf_check.read_gguf_header`: hostile headers, counts and
offsets are refused with one line, exit 2), then read with the gguf package (memory-mapped; nothing executed).
Per 2-D weight tensor (names ``blk.N.attn_*`` / ``blk.N.ffn_*`` / ``output``):

- quantized types (Q4_0 ... Q8_0, Q2_K ... Q6_K): ``gguf.quants.dequantize`` and the **collapsed-blocks** test:
  blocks (32 weights; K-quant sub-blocks of 16 or 32) in which one weight is non-zero-coded and every other weight
  dequantizes to one single value: what an outlier scaled ~100x leaves once the block's scale is set by it
  ("Widening the Gap"), or where every other weight is at most 1/8 of it (outliers x8 instead of x100 leave a few
  weights on the first codes).  Benign weights quantize to >= 4 levels per block; the null share of collapsed
  blocks is taken as ``NULL_COLLAPSED`` (conservative: measured 0 of 61k blocks on a benign Q4_K_M and 0 on a
  Q8_0, ``tests/scan/test_gguf_scan.py``; SmolLM2-135M in Q4_K_M by libllama: at most 0.048 % per tensor).
- F32 weights: the error-interval test (:mod:`compsec.scan.near_dequantized`).

**What cannot be seen without the full-precision source.**  The quantization-conditioned attacks (the NeurIPS 2024
box repair and "Mind the Gap") live in the *full-precision* weights: the GGUF a user makes from such a model is
what the attacker injected, an ordinary-looking quantized model.  Box-edge mass, position spikes and the
error-interval fingerprint need the fp weights; behavioural differences need both; provenance against a claimed
source is ``compsec provenance``.  A GGUF scan can show only structural tampering visible in the codes (collapsed
blocks) and NaN/Inf.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch

from compsec.errors import InputError
from compsec.scan.findings import Evidence
from compsec.scan.gap_ratio import GAP_BLOCK, gap_ratio_of
from compsec.scan.null import binomial_tail

WEIGHT_NAME = re.compile(r"^(blk\.\d+\.(attn_(q|k|v|output|qkv)|ffn_(gate|up|down))|output)\.weight$")
FLOATS = {"F32", "F16", "BF16"}
NULL_COLLAPSED, MIN_COLLAPSED, MIN_SHARE = 1e-3, 8, 0.01
SUB_BLOCK = {"Q2_K": 16, "Q3_K": 16, "Q6_K": 16}  # every other type: 32-weight (sub-)blocks
DETECTOR = "collapsed-blocks"
CANNOT_SEE = ("GGUF scanned from its quantized weights: collapsed blocks and (F32 tensors) the error-interval test; "
              "box-edge, position and error-interval fingerprints of a quantization-conditioned attack live in the "
              "full-precision model and cannot be seen here: scan the fp source, or check it with compsec provenance")


def gguf_tensors(path: Path):
    """``(name, ggml type name, dequantized float32 (rows, cols))`` of every 2-D weight of the GGUF at ``path``,
    after validating its header."""
    from gguf import GGUFReader, quants

    from compsec.integrity.gguf_check import read_gguf_header

    read_gguf_header(path)
    try:
        reader = GGUFReader(str(path))
    except (ValueError, KeyError, IndexError, OSError) as err:
        raise InputError(f"{path}: the gguf reader refuses it ({' '.join(str(err).split())[:120]})") from None
    for t in reader.tensors:
        if not WEIGHT_NAME.match(t.name) or len(t.shape) != 2:
            continue
        values = quants.dequantize(np.asarray(t.data), t.tensor_type)
        cols = int(t.shape[0])
        yield t.name, t.tensor_type.name, torch.from_numpy(np.ascontiguousarray(values, dtype=np.float32)).reshape(-1, cols)


def collapsed_blocks(w: torch.Tensor, block: int) -> tuple[int, int]:
    """``(collapsed, blocks)``: blocks of ``block`` weights along rows whose abs-max weight is non-zero and all
    other weights are one single value, or at most 1/8 of it (:func:`compsec.scan.prequantized_scan.dominated_mask`:
    outliers x8 leave a few weights on the first non-zero codes)."""
    from compsec.scan.prequantized_scan import dominated_mask

    blocks = w.reshape(-1, block)
    top = blocks.abs().argmax(-1, keepdim=True)
    rest = blocks.scatter(-1, top, float("nan"))
    lo = torch.nan_to_num(rest, nan=float("inf")).amin(-1)
    hi = torch.nan_to_num(rest, nan=float("-inf")).amax(-1)
    dominated, live = dominated_mask(w, block)
    return int(((lo == hi) | dominated).logical_and(live).sum()), int(live.sum())


def collapsed_evidence(name: str, qtype: str, w: torch.Tensor) -> Evidence:
    block = SUB_BLOCK.get(qtype, 32)
    collapsed, n = collapsed_blocks(w, block)
    share = collapsed / max(n, 1)
    explanation = (f"{collapsed} of {n} {block}-weight blocks of this {qtype} tensor hold one outlier and a single "
                   f"value (or values 8x smaller) everywhere else: an outlier set the block's scale and collapsed the rest (outlier "
                   f"injection, 'Widening the Gap'); <= {NULL_COLLAPSED:g} expected in benign quantized weights")
    return Evidence(name, qtype.lower(), DETECTOR, round(share, 5), binomial_tail(collapsed, n, NULL_COLLAPSED) if n else None,
                    collapsed >= MIN_COLLAPSED and share >= MIN_SHARE, explanation)


def gguf_evidence(path: Path, k_formats: list) -> tuple[list[Evidence], int, int]:
    """Every test's evidence, the weights examined and the tensors scanned."""
    from compsec.scan.near_dequantized import error_interval_evidence

    evidence, weights, tensors = [], 0, 0
    for name, qtype, w in gguf_tensors(path):
        if qtype == "F32":
            evidence += error_interval_evidence(name, w, k_formats)
        elif qtype not in FLOATS and w.shape[-1] % SUB_BLOCK.get(qtype, 32) == 0:
            evidence.append(collapsed_evidence(name, qtype, w))
            evidence += [gap_ratio_of(name, qtype.lower(), w)] if w.shape[-1] % GAP_BLOCK == 0 else []
        else:
            continue
        weights, tensors = weights + w.numel(), tensors + 1
    return evidence, weights, tensors
