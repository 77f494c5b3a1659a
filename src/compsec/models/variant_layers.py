"""Per-tensor rows of ``compsec layers`` for a variant whose weights were written by another tool.

llm-compressor folders and llama.cpp's GGUF files hold weights chosen by their own code (calibration, or
llama.cpp's per-tensor type mixture), so there is no preimage box to report: the width columns are NaN
(null in JSON) and ``pinned`` is the fraction of weights the variant sets to exactly zero.
"""

from __future__ import annotations

import math

import torch

from compsec.formats.apply import LayerStats


def changed_weight_rows(model, changed: dict[str, torch.Tensor]) -> list[LayerStats]:
    """One row per quantizable weight of ``model`` (name -> the variant's float weight in ``changed``),
    sorted by relative error ‖w − w_variant‖ / ‖w‖, largest first."""
    from compsec.models.linear import quantizable_weights

    params = dict(model.named_parameters())
    rows = []
    for weight in quantizable_weights(model):
        original = params[weight.name].detach().float()
        variant = changed[weight.name].float()
        error = (original - variant).norm() / original.norm().clamp_min(1e-30)
        magnitudes = original.abs().reshape(-1)
        rows.append(LayerStats(weight.name, float(error), float(magnitudes.median()),
                               float(magnitudes.quantile(0.99)), math.nan, math.nan,
                               float((variant == 0).float().mean())))
    return sorted(rows, key=lambda r: r.relative_error, reverse=True)


def json_row(row: LayerStats) -> dict:
    """``row.to_json()`` with NaN (no preimage) written as null."""
    return {key: None if isinstance(value, float) and math.isnan(value) else value
            for key, value in row.to_json().items()}


def gguf_layer_report(model_dir, type_name: str) -> list[LayerStats]:
    """Rows for ``gguf:TYPE``: the model quantized by llama.cpp (cached file), its tensors dequantized with the
    ``gguf`` package's reference arithmetic (:func:`compsec.models.gguf_weights.gguf_tensors`)."""
    from compsec.models.gguf_quantize import quantized_gguf
    from compsec.models.gguf_weights import gguf_tensors
    from compsec.models.io import load_model

    model, tokenizer = load_model(model_dir)
    return changed_weight_rows(model, gguf_tensors(quantized_gguf(model, tokenizer, type_name), model))
