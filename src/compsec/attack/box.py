"""Stage 2: the intersection of the target formats' preimages around the injected model, kept compact.

For every quantizable weight (architecture table, :func:`compsec.models.linear.quantizable_weights`) that all
targets support, one :class:`~compsec.formats.compact.CompactBox` per target format is kept (codes, scales and
pinned bits: 0.69 bytes/param for NF4, 1.14 for int8).  :meth:`AttackBox.boxes` rebuilds the exact boxes and
intersects them: any weight inside keeps every target's codes and scales.  Saved as ``box.safetensors``
(tensors) plus ``box.json`` (layout).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
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
        """Write ``box.safetensors`` (every tensor) and ``box.json`` (formats, layout, other fields)."""
        from safetensors.torch import save_file

        tensors, layout = {}, {"formats": [f.name for f in self.formats], "storage": dtype_name(self.storage),
                               "weights": {}}
        for name, parts in self.parts.items():
            layout["weights"][name] = [_part_to_json(part, f"{name}|{part.fmt.name}", tensors) for part in parts]
        save_file({k: v.contiguous().cpu() for k, v in tensors.items()}, str(Path(folder) / "box.safetensors"))
        (Path(folder) / "box.json").write_text(json.dumps(layout, indent=1), encoding="utf-8")

    @classmethod
    def load(cls, folder: Path) -> AttackBox:
        """Read a box written by :meth:`save`."""
        from safetensors.torch import load_file

        from compsec import formats

        folder = Path(folder)
        if not (folder / "box.json").is_file():
            raise InputError(f"{folder} has no box.json; run `compsec attack box` first")
        layout = json.loads((folder / "box.json").read_text(encoding="utf-8"))
        tensors = load_file(str(folder / "box.safetensors"))
        fmts, storage = [formats.get(n) for n in layout["formats"]], DTYPES[layout["storage"]]
        parts = {name: [_part_from_json(entry, f"{name}|{entry['fmt']}", tensors) for entry in entries]
                 for name, entries in layout["weights"].items()}
        return cls(fmts, storage, parts)


def _part_to_json(part: CompactBox, key: str, tensors: dict) -> dict:
    """Every field of ``part``: tensors go to ``tensors`` under ``key|field``, the rest into the returned dict."""
    entry = {}
    for f in fields(part):
        value = getattr(part, f.name)
        if f.name == "fmt":
            entry["fmt"] = value.name
        elif f.name == "quantized":
            entry["quantized"] = {"shape": list(value.shape), "dtype": dtype_name(value.dtype),
                                  "code_dtype": dtype_name(value.codes.dtype), "scales": sorted(value.scales)}
            tensors.update({f"{key}|scale|{k}": v for k, v in value.scales.items()})
        elif isinstance(value, torch.Tensor):
            tensors[f"{key}|{f.name}"], entry[f.name] = value, "tensor"
        elif isinstance(value, torch.dtype):
            entry[f.name] = {"dtype": dtype_name(value)}
        else:
            entry[f.name] = list(value) if isinstance(value, tuple) else value
    return entry


def _part_from_json(entry: dict, key: str, tensors: dict) -> CompactBox:
    from compsec import formats

    values = {}
    for f in fields(CompactBox):
        raw = entry.get(f.name)
        if f.name == "fmt":
            values["fmt"] = formats.get(raw)
        elif f.name == "quantized":
            scales = {k: tensors[f"{key}|scale|{k}"] for k in raw["scales"]}
            codes = torch.empty(0, dtype=_dtype(raw["code_dtype"]))
            values["quantized"] = Quantized(codes, scales, tuple(raw["shape"]), _dtype(raw["dtype"]))
        elif raw == "tensor":
            values[f.name] = tensors[f"{key}|{f.name}"]
        elif isinstance(raw, dict):
            values[f.name] = _dtype(raw["dtype"])
        elif f.name in entry:
            values[f.name] = tuple(raw) if isinstance(raw, list) else raw
    return CompactBox(**values)


def _dtype(name: str) -> torch.dtype:
    dtype = getattr(torch, name, None)
    if not isinstance(dtype, torch.dtype):
        raise InputError(f"box.json names an unknown dtype {name!r}; rebuild the box with `compsec attack box`")
    return dtype


def build_attack_box(model, formats: list, storage: torch.dtype = torch.float32,
                     names: list[str] | None = None) -> AttackBox:
    """Compact boxes of every constrained weight of ``model`` (or only ``names``) for every format, exact in
    ``storage`` dtype.

    The weights must be representable in ``storage`` (round the model with :func:`round_to_storage` first).
    """
    if not formats:
        raise InputError("no target formats; pass at least one, e.g. --targets nf4,int8")
    params = dict(model.named_parameters())
    names = constrained_names(model, formats) if names is None else names
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
