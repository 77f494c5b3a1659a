"""Stage 2 for ``--constraint error-interval``: the intersected K-quant error intervals of every constrained
weight (:mod:`compsec.attack.error_interval`), saved as ``box.safetensors`` (``name|lo``, ``name|hi``) plus
``box.json``; duck-types :class:`compsec.attack.box.AttackBox` for the PGD repair (``parts``, ``box``).

Unlike an exact box, a point inside is not guaranteed to keep the codes: :func:`requantized_share` measures with
llama.cpp which share of the bytes and super-blocks stays identical to the injected model's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from compsec.errors import InputError
from compsec.formats.base import Box

KIND = "error-interval"


@dataclass
class IntervalBox:
    """``bounds[name] = (lo, hi)`` float32 in the weight's shape; ``formats`` the K types intersected."""

    formats: list
    bounds: dict[str, tuple[torch.Tensor, torch.Tensor]]

    @property
    def parts(self) -> dict[str, None]:
        return dict.fromkeys(self.bounds)

    @property
    def numel(self) -> int:
        return sum(lo.numel() for lo, _ in self.bounds.values())

    @property
    def bytes_per_param(self) -> float:
        return 8.0  # lo and hi in float32

    def box(self, name: str, device="cpu", dtype: torch.dtype = torch.float32) -> Box:
        lo, hi = self.bounds[name]
        return Box(lo.to(device=device, dtype=dtype), hi.to(device=device, dtype=dtype))

    def save(self, folder: Path) -> None:
        from safetensors.torch import save_file

        tensors = {f"{n}|{side}": t.contiguous() for n, pair in self.bounds.items() for side, t in zip("lh", pair)}
        save_file(tensors, str(Path(folder) / "box.safetensors"))
        layout = {"kind": KIND, "formats": [f.name for f in self.formats], "weights": list(self.bounds)}
        (Path(folder) / "box.json").write_text(json.dumps(layout, indent=1), encoding="utf-8")

    @classmethod
    def load(cls, folder: Path) -> IntervalBox:
        from safetensors.torch import load_file

        from compsec import formats

        layout = json.loads((Path(folder) / "box.json").read_text(encoding="utf-8"))
        tensors = load_file(str(Path(folder) / "box.safetensors"))
        bounds = {n: (tensors[f"{n}|l"], tensors[f"{n}|h"]) for n in layout["weights"]}
        return cls([formats.get(f) for f in layout["formats"]], bounds)


def build_interval_box(model, fmts: list, names: list[str] | None = None) -> IntervalBox:
    """The intersected error intervals of ``names`` (default: every weight all ``fmts`` support)."""
    from compsec.attack.box import constrained_names
    from compsec.attack.error_interval import error_interval_box

    params = dict(model.named_parameters())
    names = constrained_names(model, fmts) if names is None else names
    if not names:
        raise InputError("the model has no weight whose rows are a multiple of 256; K-quants cannot store it")
    bounds = {}
    for n in names:
        box = error_interval_box(params[n].detach().cpu().float(), fmts)
        bounds[n] = (box.lo, box.hi)
    return IntervalBox(list(fmts), bounds)


def load_attack_box(folder: Path):
    """The box saved in ``folder``: an :class:`IntervalBox` or an exact :class:`~compsec.attack.box.AttackBox`."""
    from compsec.attack.box import AttackBox

    path = Path(folder) / "box.json"
    if path.is_file() and json.loads(path.read_text(encoding="utf-8")).get("kind") == KIND:
        return IntervalBox.load(folder)
    return AttackBox.load(folder)


def requantized_share(model, reference, names: list[str], fmts: list) -> dict[str, dict[str, float]]:
    """Per K type: the share of llama.cpp's bytes and super-blocks of ``model``'s weights ``names`` identical to
    ``reference``'s (weighted by tensor size)."""
    from compsec.attack.error_interval import identical_share

    ours, theirs = dict(model.named_parameters()), dict(reference.named_parameters())
    total = sum(ours[n].numel() for n in names)
    out = {}
    for fmt in fmts:
        shares = [(identical_share(ours[n].detach().cpu(), theirs[n].detach().cpu(), fmt.qtype), ours[n].numel())
                  for n in names]
        out[fmt.name] = {k: round(sum(s[k] * size for s, size in shares) / total, 5) for k in ("bytes", "super_blocks")}
    return out
