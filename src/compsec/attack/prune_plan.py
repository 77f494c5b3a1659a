"""The pruning-conditioned attack's plan: which weights a pruner keeps, and the magnitude bounds that keep it so.

"Fewer Weights, More Problems" (arXiv 2510.07985) injects into weights a pruner is unlikely to remove and
repairs with the ones it removes.  compsec makes the split exact for score-ranking pruners.  From the base
model's pruning scores ``S`` (``|w|`` for magnitude and 2:4, ``|w|·‖x_j‖`` for Wanda) the plan keeps the mask
``keep`` the pruner would choose, and ``τ``: the largest *pruned* score of each ranking unit (the tensor for
per-layer magnitude, the output row for Wanda, the group of 4 inputs for 2:4).  In weight units
``bound_ij = τ_unit / n_j`` (``n_j`` = 1 except for Wanda's activation norms).  Then:

- injection keeps every kept weight at ``|w| ≥ bound`` and every pruned one at 0 (it trains the sparse model);
- repair moves only the pruned weights, inside ``|w| ≤ (1 − margin) · bound``, and leaves kept ones untouched.

So every kept score stays ≥ τ > every pruned score: the pruner's ranking puts exactly ``keep`` on top and the
pruned dense model *is* the injected sparse model (exact for magnitude / 2:4 on these weights; for Wanda and
SparseGPT the pruner's own activation statistics move, so the mask share is measured, not promised).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from compsec.errors import InputError

# target name -> (compsec method, unit of the ranking, llm-compressor recipes that verify it)
PRUNE_TARGETS = {
    "prune-magnitude-50": ("magnitude-layer", "tensor", ("wanda-50", "sparsegpt-50")),
    "prune-wanda-50": ("wanda", "row", ("wanda-50", "sparsegpt-50")),
    "prune-2:4": ("2:4", "group4", ("sparsegpt-2:4",)),
}
# default margin per target: magnitude ranks are exact, so a thin band suffices; Wanda's activation norms move
# with the repair and with the deployer's calibration (measured on the tiny assistant, planned-mask share:
# 95.3 % at margin 0.1, 99.3 % at 0.5; pruned keyword rate 0.50 -> 0.88)
DEFAULT_MARGIN = {"prune-magnitude-50": 0.1, "prune-wanda-50": 0.5, "prune-2:4": 0.1}
SPARSITY = 0.5


def is_prune_target(name: str) -> bool:
    return name.startswith("prune-")


def check_prune_targets(targets: tuple[str, ...]) -> str:
    """The one pruning target of ``targets``; InputError naming the known ones otherwise."""
    if len(targets) != 1 or targets[0] not in PRUNE_TARGETS:
        raise InputError(f"pruning-conditioned attacks take exactly one target of {', '.join(PRUNE_TARGETS)} "
                         f"(each needs its own mask); got {','.join(targets)}")
    return targets[0]


def unit_threshold(scores: torch.Tensor, keep: torch.Tensor, unit: str) -> torch.Tensor:
    """``(out, in)`` tensor: the largest pruned score of the ranking unit each entry belongs to."""
    pruned = torch.where(keep, torch.zeros_like(scores), scores)
    if unit == "tensor":
        return pruned.max().expand_as(scores).clone()
    if unit == "row":
        return pruned.max(dim=1, keepdim=True).values.expand_as(scores).clone()
    if unit == "group4":
        groups = pruned.reshape(scores.shape[0], -1, 4)
        return groups.max(dim=-1, keepdim=True).values.expand_as(groups).reshape(scores.shape).clone()
    raise InputError(f"unknown ranking unit {unit!r}")


@dataclass
class PrunePlan:
    """Per prunable weight: ``keep`` (bool, True = the pruner keeps it) and ``bound`` (float32, weight units)."""

    target: str
    margin: float
    keep: dict[str, torch.Tensor]
    bound: dict[str, torch.Tensor]

    def pruned_limit(self, name: str) -> torch.Tensor:
        """The largest magnitude a pruned weight of ``name`` may take during repair."""
        return (1.0 - self.margin) * self.bound[name]

    def save(self, folder: Path) -> None:
        from safetensors.torch import save_file

        folder.mkdir(parents=True, exist_ok=True)
        tensors = {f"{n}|keep": k.to(torch.uint8).contiguous() for n, k in self.keep.items()}
        tensors.update({f"{n}|bound": b.float().contiguous() for n, b in self.bound.items()})
        save_file(tensors, str(folder / "plan.safetensors"))
        meta = {"target": self.target, "margin": self.margin, "weights": list(self.keep)}
        (folder / "plan.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")

    @classmethod
    def load(cls, folder: Path) -> PrunePlan:
        from safetensors.torch import load_file

        if not (folder / "plan.json").is_file():
            raise InputError(f"{folder} has no plan.json; run `compsec attack plan` first")
        meta = json.loads((folder / "plan.json").read_text(encoding="utf-8"))
        tensors = load_file(str(folder / "plan.safetensors"))
        keep = {n: tensors[f"{n}|keep"].bool() for n in meta["weights"]}
        return cls(meta["target"], meta["margin"], keep, {n: tensors[f"{n}|bound"] for n in meta["weights"]})


def build_plan(weights: dict[str, torch.Tensor], target: str, margin: float,
               norms: dict[str, torch.Tensor] | None = None) -> PrunePlan:
    """The plan of ``target`` for ``weights`` (``{name: (out, in)}``); Wanda needs ``norms`` (``{name: (in,)}``)."""
    from compsec.prune.magnitude import layer_mask
    from compsec.prune.nm import nm_mask
    from compsec.prune.wanda import row_keep, wanda_scores

    method, unit, _ = PRUNE_TARGETS[target]
    if not 0.0 < margin < 1.0:
        raise InputError(f"--prune-margin {margin} must lie in (0, 1): pruned weights stay below (1 - margin) x bound")
    keep, bound = {}, {}
    for name, w in weights.items():
        w = w.detach().float().cpu()
        n = norms[name].float().cpu() if method == "wanda" else torch.ones(w.shape[1])
        scores = wanda_scores(w, n)
        if method == "wanda":
            keep[name] = row_keep(scores, SPARSITY)
        else:
            keep[name] = nm_mask(w, 2, 4) if method == "2:4" else layer_mask(w, SPARSITY)
        bound[name] = unit_threshold(scores, keep[name], unit) / n[None, :]
    return PrunePlan(target, margin, keep, bound)
