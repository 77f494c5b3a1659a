"""Tensor-level diff of two safetensors models, and whether each change survives quantization.

For every tensor that differs: max abs difference, relative norm ``||b - a|| / ||a||`` and the fraction of
elements whose stored bits changed; then, per chosen format, whether ``a`` and ``b`` quantize to the same codes
and scales (:meth:`compsec.formats.Quantized.same_as`). A model edited only inside the quantization boxes of a
format — what the quantization-conditioned attack does — shows "all changes invisible after nf4": the full
precision models differ, the deployed ones are bit-identical. Tensors a deployment keeps in full precision
(embeddings, norms, lm_head; see :mod:`compsec.models.linear`) or whose shape the format cannot store count as
visible. Tensors are streamed one pair at a time.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from compsec.errors import InputError
from compsec.integrity.diff_source import TensorSource

CHUNK_ELEMENTS = 1 << 22


@dataclass(frozen=True)
class TensorChange:
    """One changed tensor. ``same_after`` maps a format name to True (same codes and scales after quantizing),
    False (they differ) or None (this format does not quantize the tensor: the change is deployed as is)."""

    name: str
    shape: tuple[int, ...]
    max_abs: float
    rel_norm: float
    frac_changed: float
    same_after: dict[str, bool | None] = field(default_factory=dict)
    note: str = ""


@dataclass
class DiffReport:
    """All changed tensors of B relative to A, the tensors present in only one of them, and the formats used."""

    n_compared: int
    changed: list[TensorChange]
    only_a: list[str]
    only_b: list[str]
    formats: list[str]

    @property
    def identical(self) -> bool:
        return not (self.changed or self.only_a or self.only_b)

    def summary(self) -> list[str]:
        """Human lines; the first reads like ``3 of 40 tensors changed; all changes invisible after nf4``."""
        if self.identical:
            return [f"identical: {self.n_compared} tensors, same names, dtypes, shapes and bits"]
        invisible = [f for f in self.formats if self.changed and self._visible(f) == 0]
        lines = [f"{len(self.changed)} of {self.n_compared} tensors changed"
                 + (f"; all changes invisible after {', '.join(invisible)}" if invisible else "")]
        lines += [f"{len(names)} tensors only in {side}" for side, names in (("A", self.only_a), ("B", self.only_b))
                  if names]
        lines += [f"{self._visible(f)} of {len(self.changed)} changed tensors still differ after {f}"
                  for f in self.formats if self.changed and f not in invisible]
        return lines

    def _visible(self, fmt: str) -> int:
        return sum(c.same_after.get(fmt) is not True for c in self.changed)

    def as_json(self) -> dict:
        return {"n_compared": self.n_compared, "formats": self.formats, "summary": self.summary(),
                "changed": [asdict(c) for c in self.changed], "only_a": self.only_a, "only_b": self.only_b}


def _bits(x: torch.Tensor) -> torch.Tensor:
    views = {torch.float32: torch.int32, torch.float16: torch.int16, torch.bfloat16: torch.int16,
             torch.float64: torch.int64}
    return x.view(views[x.dtype]) if x.dtype in views else x


def change_statistics(a: torch.Tensor, b: torch.Tensor) -> tuple[float, float, float]:
    """(max |b - a|, ||b - a||_2 / ||a||_2, fraction of elements whose stored bits differ) in float64, chunked.

    The relative norm is 0 when both are zero and ``inf`` when only ``a`` is. Shapes must be equal.
    """
    flat_a, flat_b = a.reshape(-1), b.reshape(-1)
    same_dtype = a.dtype == b.dtype
    max_abs, diff_sq, base_sq, n_changed = 0.0, 0.0, 0.0, 0
    for start in range(0, flat_a.numel(), CHUNK_ELEMENTS):
        ca, cb = flat_a[start:start + CHUNK_ELEMENTS], flat_b[start:start + CHUNK_ELEMENTS]
        delta = cb.double() - ca.double()
        max_abs = max(max_abs, float(delta.abs().max()))
        diff_sq += float((delta * delta).sum())
        base_sq += float((ca.double() ** 2).sum())
        n_changed += int((_bits(ca) != _bits(cb)).sum()) if same_dtype else int((ca.double() != cb.double()).sum())
    rel = (diff_sq ** 0.5) / (base_sq ** 0.5) if base_sq else (0.0 if diff_sq == 0 else float("inf"))
    return max_abs, rel, n_changed / max(1, flat_a.numel())


def same_after(fmt, a: torch.Tensor, b: torch.Tensor) -> bool | None:
    """Whether ``fmt`` quantizes ``a`` and ``b`` identically; None when it cannot quantize them."""
    if not (a.is_floating_point() and b.is_floating_point()) or not fmt.supports(tuple(a.shape)):
        return None
    try:
        return fmt.quantize(a).same_as(fmt.quantize(b))
    except ValueError:  # NaN/Inf or an unsupported dtype: no deployment stores this tensor in this format
        return None


def _quantizable_names(path: Path) -> set[str]:
    from compsec.models.linear import quantizable_weights

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # unknown architecture: documented fallback, fine here
        return {record.name for record in quantizable_weights(path)}


def _compare_tensor(name: str, a: torch.Tensor, b: torch.Tensor, formats, quantized: bool) -> TensorChange | None:
    if a.shape != b.shape:
        return TensorChange(name, tuple(b.shape), float("inf"), float("inf"), 1.0,
                            {f.name: False for f in formats}, f"shape {list(a.shape)} -> {list(b.shape)}")
    if a.dtype == b.dtype and torch.equal(_bits(a), _bits(b)):
        return None
    note = f"dtype {a.dtype} -> {b.dtype}".replace("torch.", "") if a.dtype != b.dtype else ""
    stats = change_statistics(a, b)
    verdicts = {f.name: same_after(f, a, b) if quantized else None for f in formats}
    return TensorChange(name, tuple(a.shape), *stats, verdicts, note)


def _require_finite(*sides) -> None:
    """Read the tensors only one side has too, then refuse a side holding NaN/Inf: its statistics mean nothing."""
    from compsec.models.weights_check import nonfinite_error

    for path, source, unread in sides:
        for name in unread:
            source.get(name)
        if source.nonfinite:
            raise nonfinite_error(path, source.nonfinite)


def diff_models(path_a: str | Path, path_b: str | Path, formats=()) -> DiffReport:
    """Compare every tensor of model B with model A (safetensors files or folders); ``formats`` are
    :class:`compsec.formats.Format` instances. Raises InputError for GGUF or malformed input."""
    path_a, path_b = Path(path_a), Path(path_b)
    for path in (path_a, path_b):
        if path.suffix == ".gguf":
            raise InputError(f"{path.name}: diff compares safetensors models; load the GGUF with compsec "
                             "(compsec.models.load_model) and save it with save_model first")
    quantizable = _quantizable_names(path_a)
    with TensorSource(path_a) as source_a, TensorSource(path_b) as source_b:
        if not source_a.names and not source_b.names:
            raise InputError(f"{path_a} and {path_b} hold no tensors, so there is nothing to compare; give model weights")
        common = [n for n in source_a.names if n in source_b.names]
        changed = [c for n in common
                   if (c := _compare_tensor(n, source_a.get(n), source_b.get(n), formats, n in quantizable))]
        only_a = [n for n in source_a.names if n not in source_b.names]
        only_b = [n for n in source_b.names if n not in source_a.names]
        _require_finite((path_a, source_a, only_a), (path_b, source_b, only_b))
    return DiffReport(len(common), changed, only_a, only_b, [f.name for f in formats])
