"""Stage 3: repair the full-precision model with projected gradient descent (PGD) inside the attack box.

Only the constrained (quantizable) weights are trained; everything a deployment never quantizes (embeddings,
norms, biases, lm_head) gets no gradient and stays bit-identical to the injected model.  After every optimizer
step each constrained weight is projected into its box in place with one fused ``torch.clamp_`` whose
tensor bounds live on the model's device (no host-device copies per step).  ``project=False`` is the
ablation: the same clean fine-tuning without the projection.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from compsec.attack.box import AttackBox
from compsec.attack.inject import FinetuneStats, finetune, training_rows
from compsec.errors import InputError


@dataclass
class Projector:
    """The PGD projection: ``bounds`` holds (parameter, lo, hi) with lo/hi on the parameter's device/dtype."""

    bounds: list[tuple[torch.nn.Parameter, torch.Tensor, torch.Tensor]]

    @classmethod
    def build(cls, model, attack_box: AttackBox) -> Projector:
        """Rebuild each constrained weight's exact box next to the weight; checks the model starts inside."""
        params = dict(model.named_parameters())
        bounds = []
        for name in attack_box.parts:
            if name not in params:
                raise InputError(f"the box constrains {name!r}, which this model lacks; rebuild the box for it")
            p = params[name]
            box = attack_box.box(name, device=p.device, dtype=p.dtype)
            if not box.contains(p.detach()):
                raise InputError(f"{name} lies outside its box: the box was built from another model")
            bounds.append((p, box.lo, box.hi))
        return cls(bounds)

    @property
    def params(self) -> list[torch.nn.Parameter]:
        return [p for p, _, _ in self.bounds]

    @torch.no_grad()
    def __call__(self) -> None:
        """Clamp every constrained weight into its box, in place (one fused kernel per tensor)."""
        for p, lo, hi in self.bounds:
            torch.clamp_(p, min=lo, max=hi)

    def contains(self) -> bool:
        return all(bool(((p >= lo) & (p <= hi)).all()) for p, lo, hi in self.bounds)


def repair(model, tokenizer, attack_box: AttackBox, pairs: list, steps: int, lr: float, batch_size: int,
           seed: int, project: bool = True, prefix=None) -> tuple[FinetuneStats, dict]:
    """Fine-tune the constrained weights on clean ``pairs``, projecting after each step when ``project``.

    Returns the training stats and a dict with ``projection_overhead`` (clamp seconds / whole training-step
    seconds), ``projection_vs_optimizer`` (clamp seconds / ``optimizer.step()`` seconds) and
    ``inside_box`` (whether every constrained weight ends inside its box).  ``prefix``: a
    :class:`compsec.attack.prefix_cache.PrefixCache` over the same rows (:func:`training_rows`) whose first
    block lies at or below every constrained weight; it is bound to ``model`` and computes the losses.
    """
    projector = Projector.build(model, attack_box)
    rows = training_rows(tokenizer, pairs, steps, batch_size, seed)
    if prefix is not None and prefix.rows != rows:
        raise ValueError("the prefix cache was built over other rows; build it from training_rows(...)")
    torch.manual_seed(seed)
    stats = finetune(model, rows, projector.params, steps, lr, batch_size, seed, tokenizer.pad_token_id,
                     after_step=projector if project else None,
                     batch_loss=prefix.for_model(model) if prefix is not None else None)
    steps_done = max(stats.step_seconds, 1e-12)
    report = {
        "projected": project,
        "projection_overhead": round(stats.hook_seconds / steps_done, 5),
        "projection_vs_optimizer": round(stats.hook_seconds / max(stats.optimizer_seconds, 1e-12), 5),
        "inside_box": projector.contains(),
    }
    return stats, report
