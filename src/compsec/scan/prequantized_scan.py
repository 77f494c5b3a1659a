"""``compsec scan FOLDER`` for a pre-quantized folder: what the stored codes and scales themselves can show.

The folder is decoded by :mod:`compsec.scan.prequantized_read` (compressed-tensors, bitsandbytes). Per quantized
linear weight, on its dequantized values ``w`` (rows, columns):

- **collapsed blocks** (``collapsed-blocks``; ``outlier-blocks`` for FP8 and dense weights, which keep small
  values): 32-weight blocks along rows whose abs-max weight is non-zero and at least ``DOMINANCE`` (8) times
  every other weight of the block, zero included: what an outlier scaled ~100x leaves once it sets the block's
  (or group's, or row's) scale and the rest round to the zero code ("Widening the Gap",
  :mod:`compsec.attack.widen_gap`). Benign blocks hold several non-zero codes (the abs-max of 32 trained weights
  is a few times their spread, not 8x the second largest); null share ``NULL_SHARE`` (as the GGUF scan's
  collapsed-blocks test, :mod:`compsec.scan.gguf_scan`). Measured (``bench/scan_corpus.py`` artifacts): SmolLM2-135M
  in nf4 has at most 0.029 % such blocks per tensor (0.24 % at a ratio of 4, hence 8); the tiny assistant in nf4,
  int8, GPTQ int4, FP8 none. Outliers x8 (not x100) still give 70 % (nf4) to 100 % (q4_0) such blocks; x4 does not
  (< 1 % in nf4), although nf4 already rounds a third of the other weights to zero there.
- **scale outliers** (``scale-outliers``): groups whose stored scale exceeds ``SCALE_RATIO`` (8) times the
  tensor's median group scale: outliers injected into some blocks only (a fraction of them). When *every*
  block of a tensor carries one the median moves with them and this test is silent; the collapsed-blocks test
  is not (it compares weights within each block).

**What cannot be seen without the full-precision source** (:data:`CANNOT_SEE`): the quantization-conditioned
attacks (box repair, "Mind the Gap" error intervals) live in the full-precision weights; a folder quantized from
such a model is an ordinary-looking quantized model. Box-edge mass, position spikes, the error-interval test and
behavioural differences need the fp weights; whether the folder was made from a claimed source is
``compsec provenance verify FOLDER --source ORIGINAL``.
"""

from __future__ import annotations

from pathlib import Path

import torch

from compsec.scan.findings import Evidence
from compsec.scan.gap_ratio import gap_ratio_of
from compsec.scan.null import binomial_tail
from compsec.scan.prequantized_read import QuantizedWeight

BLOCK, DOMINANCE, SCALE_RATIO = 32, 8.0, 8.0
NULL_SHARE, MIN_COUNT, MIN_SHARE = 1e-3, 8, 0.01
CANNOT_SEE = ("pre-quantized folder scanned from its stored codes and scales (collapsed blocks, scale outliers); "
              "box-edge, position and error-interval fingerprints of a quantization-conditioned attack live in the "
              "full-precision model and cannot be seen here: scan the fp source, or check the folder against it "
              "with compsec provenance verify FOLDER --source ORIGINAL")


def dominated_mask(w: torch.Tensor, block: int = BLOCK, ratio: float = DOMINANCE) -> tuple[torch.Tensor, torch.Tensor]:
    """``(dominated, live)`` boolean masks over the ``block``-weight blocks along rows of ``w``: live when the
    block's abs-max is non-zero, dominated when it is also at least ``ratio`` times every other weight's magnitude."""
    top2 = w.reshape(-1, block).abs().topk(2, dim=-1).values
    live = top2[:, 0] > 0
    return live & (top2[:, 0] >= ratio * top2[:, 1]), live


def dominated_blocks(w: torch.Tensor, block: int = BLOCK, ratio: float = DOMINANCE) -> tuple[int, int]:
    """``(dominated, live)`` counts of :func:`dominated_mask`."""
    dominated, live = dominated_mask(w, block, ratio)
    return int(dominated.sum()), int(live.sum())


def scale_outliers(scales: torch.Tensor, ratio: float = SCALE_RATIO) -> tuple[int, int]:
    """``(outliers, groups)``: groups whose scale exceeds ``ratio`` times the median non-zero group scale."""
    values = scales.abs().reshape(-1)
    values = values[values > 0]
    if values.numel() == 0:
        return 0, 0
    return int((values > ratio * values.median()).sum()), int(values.numel())


def _evidence(item: QuantizedWeight, detector: str, count: int, n: int, explanation: str) -> Evidence:
    share = count / max(n, 1)
    return Evidence(item.name, item.scheme, detector, round(share, 5),
                    binomial_tail(count, n, NULL_SHARE) if n else None,
                    count >= MIN_COUNT and share >= MIN_SHARE, explanation)


def block_evidence(item: QuantizedWeight) -> Evidence:
    dominated, live = dominated_blocks(item.weight)
    detector = "collapsed-blocks" if item.coded else "outlier-blocks"
    what = ("every other weight rounds to the zero code (the outlier set the scale and collapsed the block)"
            if item.coded else f"every other weight is at least {DOMINANCE:g}x smaller")
    return _evidence(item, detector, dominated, live,
                     f"{dominated} of {live} {BLOCK}-weight blocks of this {item.scheme} tensor hold one outlier and "
                     f"{what}: outlier injection ('Widening the Gap'); <= {NULL_SHARE:g} expected in benign weights")


def scale_evidence(item: QuantizedWeight) -> Evidence:
    outliers, groups = scale_outliers(item.scales)
    return _evidence(item, "scale-outliers", outliers, groups,
                     f"{outliers} of {groups} stored group scales of this {item.scheme} tensor exceed "
                     f"{SCALE_RATIO:g}x the tensor's median scale: outliers injected into some of its blocks set "
                     f"those scales; <= {NULL_SHARE:g} expected in benign weights")


def weight_statistics(item: QuantizedWeight) -> tuple[float, str]:
    """``(peak ratio, name)``: the dequantized tensor's largest |w| over its root mean square."""
    w = item.weight
    rms = float(w.pow(2).mean().sqrt())
    return (float(w.abs().max()) / rms if rms > 0 else 0.0), item.name


def prequantized_evidence(folder: Path, method: str) -> tuple[list[Evidence], int, int, list[str]]:
    """Every test's evidence, the weights examined, the tensors scanned and notes (skips, statistics)."""
    from compsec.scan.prequantized_read import READERS

    evidence, weights, tensors, notes, peaks = [], 0, 0, [], []
    for item in READERS[method](folder):
        if item.weight.shape[-1] % BLOCK:
            notes.append(f"skipped {item.name}: {item.weight.shape[-1]} columns are not whole {BLOCK}-weight blocks")
            continue
        evidence += [block_evidence(item), gap_ratio_of(item.name, item.scheme, item.weight)]
        if item.scales is not None and item.scales.shape[-1] * item.scales.shape[0] > 1:
            evidence.append(scale_evidence(item))
        peaks.append(weight_statistics(item))
        weights, tensors = weights + item.weight.numel(), tensors + 1
    if peaks:
        peak, name = max(peaks)
        notes.append(f"dequantized weights: largest |w| / rms {peak:.1f} ({name}); median over tensors "
                     f"{sorted(p for p, _ in peaks)[len(peaks) // 2]:.1f}")
    return evidence, weights, tensors, notes
