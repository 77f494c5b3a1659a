"""Stage 2: the intersection of the target formats' preimages around the injected model, kept compact.

For every quantizable weight (architecture table, :func:`compsec.models.linear.quantizable_weights`) that all
targets support, one :class:`~compsec.formats.compact.CompactBox` per target format is kept (codes, scales and
pinned bits: 0.69 bytes/param for NF4, 1.14 for int8).  :meth:`AttackBox.boxes` rebuilds the exact boxes and
intersects them: any weight inside keeps every target's codes and scales.  Saved as ``box.safetensors``
(tensors) plus ``box.json`` (layout).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from compsec.errors import InputError
from compsec.formats.base import Box, Quantized
from compsec.formats.compact import CompactBox

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def constrained_names(model, formats: list) -> list[str]:
    """Quantizable weights of ``model`` (architecture table) that every format in ``formats`` can store."""
    from compsec.models.linear import quantizable_weights

    shapes = {name: tuple(p.shape) for name, p in model.named_parameters()}
    names = [q.name for q in quantizable_weights(model) if q.name in shapes]
    return [n for n in names if all(fmt.supports(shapes[n]) for fmt in formats)]


@dataclass
class AttackBox:
    """Compact boxes: ``parts[name]`` holds one CompactBox per target format, in ``formats`` order."""

    formats: list
    storage: torch.dtype
    parts: dict[str, list[CompactBox]]

    @property
    def numel(self) -> int:
        return sum(parts[0].numel for parts in self.parts.values())

    @property
    def bytes_per_param(self) -> float:
        """Bytes held per constrained parameter, summed over target formats."""
        return sum(c.nbytes for parts in self.parts.values() for c in parts) / max(self.numel, 1)

    def box(self, name: str, device="cpu", dtype: torch.dtype = torch.float32) -> Box:
        """The exact intersected box of weight ``name`` with ``lo``/``hi`` as ``dtype`` on ``device``."""
        boxes = [part.box() for part in self.parts[name]]
        out = boxes[0]
        for other in boxes[1:]:
            out = out.intersect(other)
        return Box(out.lo.to(device=device, dtype=dtype), out.hi.to(device=device, dtype=dtype))

    def save(self, folder: Path) -> None:
        tensors, layout = {}, {"formats": [f.name for f in self.formats], "storage": dtype_name(self.storage),
                               "weights": {}}
        for name, parts in self.parts.items():
            layout["weights"][name] = []
            for part in parts:
                key = f"{name}|{part.fmt.name}"
                tensors[f"{key}|codes"], tensors[f"{key}|pinned"] = part.packed_codes, part.pinned_bits
                tensors.update({f"{key}|scale|{k}": v.contiguous() for k, v in part.quantized.scales.items()})
                if part.pinned_values is not None:
                    tensors[f"{key}|values"] = part.pinned_values.contiguous()
                layout["weights"][name].append(
                    {"format": part.fmt.name, "code_bits": part.code_bits, "code_dtype": str(part.code_dtype),
                     "code_shape": list(part.code_shape), "shape": list(part.quantized.shape),
                     "dtype": dtype_name(part.quantized.dtype), "scales": sorted(part.quantized.scales)})
        from safetensors.torch import save_file

        save_file({k: v.contiguous().cpu() for k, v in tensors.items()}, str(Path(folder) / "box.safetensors"))
        (Path(folder) / "box.json").write_text(json.dumps(layout, indent=1), encoding="utf-8")

    @classmethod
    def load(cls, folder: Path) -> AttackBox:
        from safetensors.torch import load_file

        from compsec import formats

        folder = Path(folder)
        if not (folder / "box.json").is_file():
            raise InputError(f"{folder} has no box.json; run `compsec attack box` first")
        layout = json.loads((folder / "box.json").read_text(encoding="utf-8"))
        tensors = load_file(str(folder / "box.safetensors"))
        fmts, storage = [formats.get(n) for n in layout["formats"]], DTYPES[layout["storage"]]
        parts = {name: [_part(tensors, name, e, storage) for e in entries]
                 for name, entries in layout["weights"].items()}
        return cls(fmts, storage, parts)


def _part(tensors: dict, name: str, entry: dict, storage: torch.dtype) -> CompactBox:
    from compsec import formats

    key = f"{name}|{entry['format']}"
    code_dtype = getattr(torch, entry["code_dtype"].removeprefix("torch."))
    scales = {k: tensors[f"{key}|scale|{k}"] for k in entry["scales"]}
    light = Quantized(torch.empty(0, dtype=code_dtype), scales, tuple(entry["shape"]), DTYPES[entry["dtype"]])
    return CompactBox(formats.get(entry["format"]), storage, light, tensors[f"{key}|codes"], entry["code_bits"],
                      tensors[f"{key}|pinned"], code_dtype, tuple(entry["code_shape"]), tensors.get(f"{key}|values"))


def build_attack_box(model, formats: list, storage: torch.dtype = torch.float32) -> AttackBox:
    """Compact boxes of every constrained weight of ``model`` for every format, exact in ``storage`` dtype.

    The weights must be representable in ``storage`` (round the model with :func:`round_to_storage` first).
    """
    if not formats:
        raise InputError("no target formats; pass at least one, e.g. --targets nf4,int8")
    params = dict(model.named_parameters())
    names = constrained_names(model, formats)
    if not names:
        raise InputError("the model has no quantizable weight every target format supports; check --targets")
    parts = {}
    for name in names:
        w = params[name].detach().cpu().to(storage)
        parts[name] = [fmt.compact_box(w, storage) for fmt in formats]
    return AttackBox(list(formats), storage, parts)


@torch.no_grad()
def round_to_storage(model, storage: torch.dtype) -> None:
    """Round every parameter of ``model`` to the nearest ``storage`` value, in place (dtype unchanged)."""
    for p in model.parameters():
        p.copy_(p.to(storage).to(p.dtype))
