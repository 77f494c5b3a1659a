"""An adaptive attacker against the edge-mass scanner: PGD repair inside boxes shrunk by a fraction of each interval.

The scanner (:mod:`compsec.scan.edge_mass`) looks for weights pressed within 1 % of an interval edge.  An attacker
who knows this repairs inside ``[lo + f * (hi - lo), hi - f * (hi - lo)]`` (``f`` per side: 0.01, 0.1, 0.2), so
the projection never clamps a weight onto the real edge.  The injected weight itself is always kept inside (an
interval too narrow to shrink collapses onto it: that weight cannot be repaired, the attacker's price, paid in
full-precision stealth).  The shrunk box is :class:`compsec.defend.adaptive.ShrunkBox` (built there for ``k``
noise sigmas per tensor); only the margin differs: ``f`` times each interval's own width.

Output: ``OUT/<attack>-shrink{f}/model`` plus ``shrink.json`` (re-quantization check against the injected
model, training stats, and — when ``probe_limit`` is given — fp32 and target-format keyword rates).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from compsec.errors import InputError


def fraction_margins(attack_box, fraction: float, seed: int | None = None) -> dict[str, torch.Tensor]:
    """Per-weight margins ``fraction * (hi - lo)`` (float32) of every constrained weight of ``attack_box``, for
    :class:`compsec.defend.adaptive.ShrunkBox` (which takes a margin per side and keeps the anchor inside).
    With ``seed``, each margin is instead drawn uniformly from ``[0, fraction * (hi - lo)]`` (a randomised
    attacker: clamped weights spread over the band instead of piling onto one shrunk edge).

    ``fraction`` must be in ``[0, 0.5)``.  Example: an interval ``[0, 1]`` with ``fraction = 0.1`` becomes
    ``[0.1, 0.9]`` (snapped inward to the storage grid); pinned intervals (``lo == hi``) get margin 0.
    """
    if not 0 <= fraction < 0.5:
        raise InputError(f"fraction={fraction} must be in [0, 0.5): it is the margin per side, as a share of "
                         "each interval (0.1 = stay 10 % of the interval away from both edges)")
    margins, gen = {}, None if seed is None else torch.Generator().manual_seed(seed)
    for name in attack_box.parts:
        box = attack_box.box(name)
        width = box.hi.float() - box.lo.float()
        margins[name] = fraction * width * (1 if gen is None else torch.rand(width.shape, generator=gen))
    return margins


def shrink_attack(attack_dir, out_root, fraction: float, steps: int | None = None,
                  probe_limit: int | None = None, randomized: bool = False) -> Path:
    """Repair the injected model of the attack in ``attack_dir`` inside boxes shrunk by ``fraction`` into
    ``out_root/<attack folder name>-shrink{fraction}/`` (reused when ``shrink.json`` exists); returns its model
    folder.  ``probe_limit``: also measure keyword rates on that many probes per set (None: skip measuring);
    ``randomized``: margins drawn per weight (see :func:`fraction_margins`, seeded by the attack's seed)."""
    from compsec.attack.box import constrained_names
    from compsec.attack.verify import save_attacked
    from compsec.defend.adaptive import attack_config, shrunk_repair

    config = attack_config(Path(attack_dir))
    out = Path(out_root) / f"{Path(attack_dir).name}-shrink{'-rand' if randomized else ''}{fraction:g}"
    if (out / "shrink.json").is_file():
        return out / "model"
    seed = config.seed if randomized else None
    model, tokenizer, box, _, result = shrunk_repair(
        config, lambda attack_box, _anchors: fraction_margins(attack_box, fraction, seed), steps)
    record = {"fraction": fraction, "randomized": randomized, **result}
    if probe_limit is not None:
        from compsec.attack.measure import MeasureConfig, measure_all

        names = constrained_names(model, box.formats)
        measured = measure_all(model, tokenizer, box.formats, names, MeasureConfig(config.keyword, probe_limit))
        record["keyword_rate"] = {"fp32": measured["fp"]["keyword_rate"],
                                  **{f: m["keyword_rate"] for f, m in measured["quantized"].items()}}
    save_attacked(model, tokenizer, out / "model", config.storage, {"scenario": f"adaptive-shrink{fraction:g}"})
    (out / "shrink.json").write_text(json.dumps(record, indent=1, default=str), encoding="utf-8")
    return out / "model"
