"""The adaptive attacker against noise: repair inside a box shrunk by ``k`` expected noise sigmas.

An attacker who knows the defender will add ``N(0, sigma^2)`` keeps every repaired weight at least ``k * sigma``
inside its interval, so noise rarely moves a code (``k = 3``: 0.13 % per weight and side).  Intervals narrower
than ``2 k sigma`` collapse onto the injected weight itself: those weights cannot be repaired at all, which is
the attacker's price, paid in full-precision stealth (the fp32 model stays closer to the injected one).

``sigma`` is what ``compsec harden --noise auto`` would use on the injected weights with the same ``c`` and
target formats.  Output: ``OUT/<attack>-adaptive-k{k}/model`` (a red-team artifact, like the attack's own), plus
``adaptive.json`` with the re-quantization check against the injected model and the training stats.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from compsec.formats.base import Box, snap_inward


@dataclass
class ShrunkBox:
    """Duck-types :class:`compsec.attack.box.AttackBox` for the repair stage: each interval of ``inner`` shrunk
    by ``margins[name]`` per side, never past ``anchors[name]`` (the injected weights, kept inside)."""

    inner: object
    margins: dict[str, float]
    anchors: dict[str, torch.Tensor]

    @property
    def parts(self) -> dict:
        return self.inner.parts

    def box(self, name: str, device="cpu", dtype: torch.dtype = torch.float32) -> Box:
        full = self.inner.box(name)
        anchor = self.anchors[name].float()
        lo = torch.minimum(full.lo + self.margins[name], anchor)
        hi = torch.maximum(full.hi - self.margins[name], anchor)
        snapped = snap_inward(Box(lo, hi), self.inner.storage)
        lo, hi = torch.minimum(snapped.lo.float(), anchor), torch.maximum(snapped.hi.float(), anchor)
        return Box(lo.to(device=device, dtype=dtype), hi.to(device=device, dtype=dtype))


def attack_config(attack_dir: Path):
    """The :class:`~compsec.attack.config.AttackConfig` recorded in ``attack_dir/attack.json``."""
    from compsec.attack.config import AttackConfig

    recorded = json.loads((Path(attack_dir) / "attack.json").read_text(encoding="utf-8"))["config"]
    recorded.update(out=str(attack_dir), targets=tuple(recorded["targets"]),
                    outlier_layers=tuple(recorded["outlier_layers"]))
    return AttackConfig(**recorded)


def shrunk_repair(config, margins_of, steps: int | None = None):
    """PGD-repair the injected model of the attack ``config`` inside its box shrunk by ``margins_of(box, anchors)``
    (``{name: margin}``, float or per-weight tensor).  Returns ``(model, tokenizer, box, margins, record)`` where
    ``record`` holds the training stats and the re-quantization check against the injected model."""
    from compsec.attack import data
    from compsec.attack.box import AttackBox
    from compsec.attack.repair import repair
    from compsec.attack.stages import load_stage_model
    from compsec.attack.verify import compare_quantization

    box = AttackBox.load(config.folder / "box")
    model, tokenizer = load_stage_model(config, "injected", rounded=True)
    params = dict(model.named_parameters())
    anchors = {n: params[n].detach().cpu().clone() for n in box.parts}
    pairs = data.read_pairs(config.clean_file) if config.clean_file else data.clean_pairs(config.seed)
    margins = margins_of(box, anchors)
    stats, report = repair(model, tokenizer, ShrunkBox(box, margins, anchors), pairs,
                           steps if steps is not None else config.repair_steps, config.repair_lr,
                           config.batch_size, config.seed, project=True)
    reference, _ = load_stage_model(config, "injected", rounded=True)
    check = compare_quantization(model, reference, list(box.parts), box.formats, config.storage)
    return model, tokenizer, box, margins, {"train": stats.summary(), **report, **check}


def adaptive_attack(attack_dir, out_root, k: float = 3.0, c: float | None = None, steps: int | None = None) -> Path:
    """Run the shrunk-box repair for the attack in ``attack_dir`` into
    ``out_root/<attack folder name>-adaptive-k{k}/`` (reused when done); returns its model folder."""
    from compsec.attack.verify import save_attacked
    from compsec.defend.noise import DEFAULT_C, auto_sigma

    config = attack_config(Path(attack_dir))
    out = Path(out_root) / f"{Path(attack_dir).name}-adaptive-k{k:g}"
    if (out / "adaptive.json").is_file():
        return out / "model"
    sigma_c = DEFAULT_C if c is None else c
    model, tokenizer, _, margins, result = shrunk_repair(
        config, lambda box, anchors: {n: k * auto_sigma(w, box.formats, sigma_c) for n, w in anchors.items()}, steps)
    save_attacked(model, tokenizer, out / "model", config.storage, {"scenario": f"adaptive-k{k:g}"})
    record = {"k": k, "c": c, **result, "median_margin": sorted(margins.values())[len(margins) // 2]}
    (out / "adaptive.json").write_text(json.dumps(record, indent=1, default=str), encoding="utf-8")
    return out / "model"
