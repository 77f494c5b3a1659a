"""``compsec layers MODEL --format gptq-w4a16``: per-tensor error of an llm-compressor variant, as saved.

The variant folder is built (or found in the cache) and decoded (:mod:`compsec.llmc.ct_decode`); each
quantizable weight of the original is compared with the weight the folder holds. Calibration-based formats have
no preimage box (the codes depend on the calibration data), so the width columns are NaN and ``pinned`` is the
fraction of weights the variant sets to exactly zero (sparsity, for SparseGPT / Wanda).
"""

from __future__ import annotations

from pathlib import Path

from compsec.formats.apply import LayerStats
from compsec.llmc.calibration import Calibration


def llmc_layer_report(model_dir: str | Path, name: str, calibration: Calibration | None = None) -> list[LayerStats]:
    """Rows sorted by relative error ‖w − w_variant‖ / ‖w‖ (largest first), one per weight the variant holds."""
    from compsec.llmc.ct_decode import decode_folder
    from compsec.llmc.recipes import get_recipe
    from compsec.llmc.variants import DEFAULT_CALIBRATION, LlmcVariant
    from compsec.models.io import load_model
    from compsec.models.variant_layers import changed_weight_rows

    recipe = get_recipe(name)
    folder = LlmcVariant(recipe.name, recipe, calibration or DEFAULT_CALIBRATION).folder(model_dir)
    decoded = decode_folder(folder)
    model, _ = load_model(model_dir)
    return changed_weight_rows(model, {key: value.weight for key, value in decoded.items()})
