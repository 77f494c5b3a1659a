"""Random access to the tensors of a safetensors file or (sharded) folder, one tensor at a time.

Headers are validated by :func:`compsec.models.stream.tensor_infos` before ``safe_open`` maps any shard.
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path


class TensorSource:
    """Context manager: ``names`` (file order) and ``get(name)`` → a CPU ``torch.Tensor`` read on demand."""

    def __init__(self, path: str | Path):
        from compsec.models.stream import tensor_infos

        infos = tensor_infos(path)
        self.names = [info.name for info in infos]
        self._shard_of = {info.name: info.file for info in infos}
        self._stack = ExitStack()
        self._handles: dict = {}
        self.nonfinite: dict[str, int] = {}  # name → NaN/Inf count of every tensor read so far (all elements)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self._stack.close()

    def get(self, name: str):
        """The tensor called ``name`` (KeyError if absent); its NaN/Inf count goes to ``nonfinite``."""
        from safetensors import safe_open

        from compsec.integrity.safetensors_check import nonfinite_count

        shard = self._shard_of[name]
        if shard not in self._handles:
            self._handles[shard] = self._stack.enter_context(safe_open(shard, framework="pt", device="cpu"))
        tensor = self._handles[shard].get_tensor(name)
        if bad := nonfinite_count(tensor):
            self.nonfinite[name] = bad
        return tensor
