"""The verdict of "was this quantized artifact made from that source?", shared by every artifact kind.

- ``faithful``: every tensor checked and equal to the re-quantized source. A source change small enough to stay
  inside the tensor's quantization box gives the same bytes and is rightly faithful: the quantized artifact is
  what this source yields.
- ``not derived``: some tensor differs (named, with the number of differing blocks or rows): the artifact was
  not made from this source, or one of the two was altered.
- ``cannot tell``: a tensor is missing from the source or cannot be re-derived here; nothing differs among
  those checked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from compsec.errors import InputError


@dataclass
class QuantizedProvenance:
    """``verdict`` (see the module doc) and one line per tensor that differs or could not be checked."""

    verdict: str = "cannot tell"
    differs: list[str] = field(default_factory=list)
    unchecked: list[str] = field(default_factory=list)
    checked: int = 0

    def add(self, name: str, kind: str, outcome: tuple[int, int] | str, unit: str) -> None:
        """Record one re-derived tensor: ``outcome`` is (differing units, units) or why it cannot be compared."""
        if isinstance(outcome, str):
            self.differs.append(f"{name}: {outcome}")
            return
        self.checked += 1
        if outcome[0]:
            self.differs.append(f"{name}: {kind} differs from the re-quantized source "
                                f"({outcome[0]} of {outcome[1]} {unit})")

    def compare_plain(self, name: str, stored: torch.Tensor, w: torch.Tensor) -> None:
        """A tensor stored unquantized must equal the source cast to its stored dtype."""
        if stored.shape != w.shape:
            self.add(name, "", f"shape {list(stored.shape)} vs source {list(w.shape)}", "")
            return
        self.checked += 1
        bad = int((stored != w.to(stored.dtype)).sum())
        if bad:
            self.differs.append(f"{name}: stored {str(stored.dtype).removeprefix('torch.')} differs from the "
                                f"source ({bad} of {stored.numel()} elements)")

    def decided(self, unknown: str = "cannot tell") -> QuantizedProvenance:
        """Set the verdict from what was recorded; ``unknown`` names why nothing could be decided."""
        failed = self.unchecked or not self.checked
        self.verdict = "not derived" if self.differs else unknown if failed else "faithful"
        return self


class SourceTensors:
    """The tensors of a source model (a .safetensors file or a folder of them), read one at a time by name."""

    def __init__(self, source: str | Path) -> None:
        from safetensors import safe_open

        from compsec.integrity.path_policy import checked_input

        source = checked_input(source, "source model file or folder")
        files = [source] if source.is_file() else sorted(source.glob("*.safetensors"))
        if not files:
            raise InputError(f"{source}: no .safetensors weights to compare with; give the original model folder")
        self.files: dict[str, Path] = {}
        for file in files:
            with safe_open(str(file), "pt") as handle:
                self.files.update({name: file for name in handle.keys()})  # noqa: SIM118 (not a mapping)

    def get(self, name: str) -> torch.Tensor | None:
        """The source tensor ``name`` (None when the source has none)."""
        from safetensors import safe_open

        if name not in self.files:
            return None
        with safe_open(str(self.files[name]), "pt") as handle:
            return handle.get_tensor(name)
