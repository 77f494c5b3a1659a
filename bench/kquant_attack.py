"""Quantization-conditioned attacks against a GGUF K-quant (``q4_k``), for the scanner's evaluation corpus.

``compsec attack --targets q4_k`` repairs inside the *verified* K-quant box, shrunk until llama.cpp's scale search
provably keeps its scales: nearly zero-width, so the repair cannot move.  These attackers instead repair inside
the **fixed-scale box** (:func:`compsec.scan.scan_boxes.scan_box`: every weight's rounding interval under its
super-block's stored scales), with the sub-blocks that set the fp16 super-scales (largest scale or min) pinned,
starting from an injected model (the content-injection stage of an attack run):

- ``keep_scales=False`` (*rescaled*): plain PGD repair (:func:`compsec.attack.repair.repair`).  llama.cpp then
  picks other scales for 82 % of the sub-blocks (0 % of super-blocks byte-identical) and the injected behaviour
  is gone in q4_k too (keyword rate 0 % in fp32 and q4_k, seeds 0-2): the attack fails.  (The scanner, which
  recomputes the fixed-scale boxes from the weights it reads, sees no edge pile-up there.)
- ``keep_scales=True``: after every optimizer step, :class:`ScaleKeeper` re-quantizes with llama.cpp and rolls
  back the moves that made it re-scale a sub-block (keeping random subsets of them where those pass), so the
  q4_k file stays byte-identical to the injected model's.  Most moves are refused (60-87 % of sub-blocks per
  step), so the repair is slow.  Seed 0 (10 probes): 60 steps at lr 1e-3 fp32 / q4_k keyword rate 70 / 90 %;
  150 steps at lr 3e-3 60 / 90 %; **240 steps at lr 1e-3 0 / 90 %** (4.2 min on 1 thread): a working q4_k
  attack.  The weights it moves land on the fixed-scale edges: the scanner flags it by edge-mass on q4_k only
  (odds 6-8x, score 59), and the default formats without K-quants call it clean.
- ``shrink=0.1`` with ``keep_scales=True``: the adaptive attacker, repairing 10 % of each interval away from its
  edges.  Seed 0, 240 steps at lr 1e-3: fp32 / q4_k 0 / 90 %, byte-identical; edge-mass, edge-band (and
  edge-depletion, not run on K-quants, whose benign edges are already depleted) see nothing: it got through until
  the position-spike test (:mod:`compsec.scan.position_spike`: 6.8x the neighbouring density at 10 %, score 92).

Why the roll-back is needed: a single step at lr 1e-4 (1 % of an interval) already changes 9 % of the sub-block
scales and 12.5 % of the sub-blocks' codes: the scale search is an argmin over 20 candidate scales followed by a
least-squares fit, discontinuous in the weights; rolling back whole sub-blocks (no subsets) refused 92-99 % per
step and repaired nothing in 60 steps.
"""

from __future__ import annotations

from pathlib import Path

import torch


class FixedScaleBoxes:
    """Per weight name, the fixed-scale box (``lo``, ``hi``) in float32; duck-types :class:`AttackBox` for
    :func:`compsec.attack.repair.repair` (``parts`` and ``box``)."""

    def __init__(self, bounds: dict[str, tuple[torch.Tensor, torch.Tensor]]):
        self.bounds = bounds
        self.parts = dict.fromkeys(bounds)

    def box(self, name: str, device="cpu", dtype: torch.dtype = torch.float32):
        from compsec.formats.base import Box

        lo, hi = self.bounds[name]
        return Box(lo.to(device=device, dtype=dtype), hi.to(device=device, dtype=dtype))


def scale_fields(fmt, w: torch.Tensor) -> dict[str, torch.Tensor]:
    """llama.cpp's scales of ``w``: ``d``/``dmin`` ``(n_super,)`` and ``sc``/``m`` ``(n_super, n_sub)``."""
    from compsec.formats import gguf_k_layout as layouts
    from compsec.formats import gguf_k_lib as lib

    _, scales = layouts.parse(lib.quantize_rows(w.detach().reshape(-1, w.shape[-1]), fmt.qtype), fmt.qtype)
    return scales


def setters(fmt, scales: dict[str, torch.Tensor]) -> torch.Tensor:
    """Bool ``(n_super, n_sub)``: the sub-blocks whose scale (or min) is the super-block's largest: they set the
    fp16 super-scales ``d``/``dmin``, which any move of theirs changes."""
    big = scales["sc"].abs() == scales["sc"].abs().amax(-1, keepdim=True)
    if "m" in scales:
        big |= scales["m"] == scales["m"].amax(-1, keepdim=True)
    return big


def changed(fmt, w: torch.Tensor, before: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Re-quantized with llama.cpp: bool ``(n_super, n_sub)`` sub-blocks whose scale, min or a code changed, and
    bool ``(n_super,)`` super-blocks whose bytes changed at all."""
    from compsec.formats import gguf_k_layout as layouts
    from compsec.formats import gguf_k_lib as lib

    codes, now = layouts.parse(lib.quantize_rows(w.detach().reshape(-1, w.shape[-1]), fmt.qtype), fmt.qtype)
    sub = (now["sc"] != before["sc"]) | (codes != before["codes"]).reshape(*now["sc"].shape, -1).any(-1)
    whole = now["d"] != before["d"]
    if "m" in now:
        sub |= now["m"] != before["m"]
        whole |= now["dmin"] != before["dmin"]
    return sub, whole | sub.any(-1)


def per_weight(mask: torch.Tensor, fmt, shape) -> torch.Tensor:
    """A ``(n_super, n_sub)`` mask repeated over each sub-block's weights, in the tensor's ``shape``."""
    return mask.repeat_interleave(fmt.layout.sub, dim=-1).reshape(shape)


class ScaleKeeper:
    """The projection after each optimizer step of the scale-keeping attacker: clamp into the fixed-scale boxes,
    re-quantize with llama.cpp, and for every sub-block whose scale, min or codes changed (all of a super-block
    whose ``d``/``dmin`` changed) try keeping random subsets of its moves (a half, a quarter, ... ``trials``
    re-quantizations, all sub-blocks at once), keep the first subset that quantizes identically and roll the
    rest back to the weights after the previous step (which quantized identically)."""

    def __init__(self, fmt, params: dict, bounds: dict, before: dict, trials: int = 4, seed: int = 0):
        self.fmt, self.params, self.bounds, self.before, self.trials = fmt, params, bounds, before, trials
        self.previous = {n: params[n].detach().clone() for n in bounds}
        self.gen = torch.Generator().manual_seed(seed)
        self.rolled_back = self.checked = 0

    def _bad(self, w: torch.Tensor, n: str) -> torch.Tensor:
        sub, whole = changed(self.fmt, w, self.before[n])
        return sub | whole.unsqueeze(-1)

    @torch.no_grad()
    def __call__(self) -> None:
        for n, (lo, hi) in self.bounds.items():
            p, prev = self.params[n], self.previous[n]
            torch.clamp_(p, min=lo, max=hi)
            bad = self._bad(p, n)
            keep = ~per_weight(bad, self.fmt, p.shape)
            for t in range(self.trials if bool(bad.any()) else 0):
                subset = (torch.rand(p.shape, generator=self.gen) < 0.5 ** (t + 1)) & ~keep
                passed = bad & ~self._bad(torch.where(keep | subset, p, prev), n)
                keep |= subset & per_weight(passed, self.fmt, p.shape)
                bad &= ~passed
            p.copy_(torch.where(keep, p, prev))
            still = self._bad(p, n)  # a super-block whose d/dmin moved with the kept subsets: roll it back whole
            p.copy_(torch.where(per_weight(still, self.fmt, p.shape), prev, p))
            prev.copy_(p)
            self.rolled_back, self.checked = self.rolled_back + int(bad.sum()), self.checked + bad.numel()


def kquant_attack(injected_dir: Path, out: Path, target: str = "q4_k", steps: int = 60, lr: float = 1e-3,
                  seed: int = 0, keep_scales: bool = False, shrink: float = 0.0) -> dict:
    """Repair the model in ``injected_dir`` as the module docs say; saves ``out/model`` and returns the record.
    ``shrink``: the adaptive attacker's margin, a fraction of each interval kept free on both sides (the injected
    weight always stays inside)."""
    from compsec import formats
    from compsec.attack.box import constrained_names
    from compsec.attack.data import clean_pairs
    from compsec.attack.repair import repair
    from compsec.attack.verify import save_attacked
    from compsec.formats import gguf_k_layout as layouts
    from compsec.formats import gguf_k_lib as lib
    from compsec.models.io import load_model

    fmt = formats.get(target)
    model, tokenizer = load_model(injected_dir)
    model = model.float()
    params = dict(model.named_parameters())
    names = constrained_names(model, [fmt])
    before, bounds = {}, {}
    for n in names:
        anchor = params[n].detach().clone()
        codes, scales = layouts.parse(lib.quantize_rows(anchor.reshape(-1, anchor.shape[-1]), fmt.qtype), fmt.qtype)
        before[n] = {**scales, "codes": codes}
        box = fmt.candidate_box(anchor)
        pin = per_weight(setters(fmt, scales), fmt, anchor.shape)
        lo, hi = box.lo.float(), box.hi.float()
        lo, hi = torch.minimum(lo + shrink * (hi - lo), anchor), torch.maximum(hi - shrink * (hi - lo), anchor)
        bounds[n] = (torch.where(pin, anchor, lo), torch.where(pin, anchor, hi))
    keeper = None
    if keep_scales:
        from compsec.attack.data import encode_pairs, training_subset
        from compsec.attack.inject import finetune

        keeper = ScaleKeeper(fmt, params, bounds, before)
        rows = encode_pairs(tokenizer, training_subset(clean_pairs(seed), steps * 16, seed))
        torch.manual_seed(seed)
        finetune(model, rows, [params[n] for n in names], steps, lr, 16, seed, tokenizer.pad_token_id,
                 after_step=keeper)
    else:
        repair(model, tokenizer, FixedScaleBoxes(bounds), clean_pairs(seed), steps, lr, 16, seed)
    sub_changed = super_changed = subs = supers = 0
    for n in names:
        sub, whole = changed(fmt, params[n], before[n])
        sub_changed, super_changed = sub_changed + int(sub.sum()), super_changed + int(whole.sum())
        subs, supers = subs + sub.numel(), supers + whole.numel()
    save_attacked(model, tokenizer, out / "model", torch.float32, {"scenario": f"fixed-scale-{target}"})
    return {"model_dir": str(out / "model"), "target": target, "seed": seed,
            "sub_blocks_changed": round(sub_changed / subs, 4), "super_blocks_identical": round(1 - super_changed / supers, 4),
            "requantization_identical": {target: super_changed == 0}, "keep_scales": keep_scales, "shrink": shrink,
            "rolled_back_per_step": round(keeper.rolled_back / keeper.checked, 4) if keeper else None}
