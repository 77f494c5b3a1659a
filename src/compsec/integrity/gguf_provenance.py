"""Was this legacy-type GGUF quantized from that source? Re-quantize each source tensor and compare.

For every GGUF tensor of a legacy block type (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1) the source tensor of the same
name (Hugging Face names are mapped with the ``gguf`` package's tensor map; llama.cpp's converter permutes the
rows of ``attn_q`` / ``attn_k``, so that permutation is tried too) is quantized with compsec's registry format
(:mod:`compsec.formats.gguf`, bit-exact with ggml) and its codes and scales compared with the stored blocks.
F32 / F16 tensors are compared with the source's values. Verdict:

- ``faithful``: every tensor checked and equal. A source change small enough to stay inside the tensor's
  quantization box gives the same bytes and is rightly faithful: the quantized file is what this source yields.
- ``not derived``: some tensor differs (named, with the number of differing blocks): the file was not made from
  this source, or one of the two was altered.
- ``cannot tell``: a tensor is missing from the source or stored in a type re-quantization cannot reproduce
  (K-quants, which need llama.cpp, or an importance matrix); nothing differs among those checked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from compsec.errors import InputError
from compsec.formats.gguf import BLOCK, parse_blocks

LEGACY = {"Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1"}
PERMUTED = {"attn_q": "llama.attention.head_count", "attn_k": "llama.attention.head_count_kv"}


@dataclass
class GgufProvenance:
    """``verdict`` (see the module doc) and one line per tensor that differs or could not be checked."""

    verdict: str = "cannot tell"
    differs: list[str] = field(default_factory=list)
    unchecked: list[str] = field(default_factory=list)
    checked: int = 0


def _source_tensors(source: Path, arch: str, n_blocks: int) -> dict[str, tuple[Path, str]]:
    """GGUF name -> (safetensors file, tensor name) for every tensor of ``source`` (HF or GGUF naming)."""
    from gguf import MODEL_ARCH_NAMES, get_tensor_name_map
    from safetensors import safe_open

    arch_enum = next((a for a, name in MODEL_ARCH_NAMES.items() if name == arch), None)
    names = get_tensor_name_map(arch_enum, n_blocks) if arch_enum is not None else None
    files = [source] if source.is_file() else sorted(source.glob("*.safetensors"))
    if not files:
        raise InputError(f"{source}: no .safetensors weights to compare with; give the original model folder")
    found = {}
    for file in files:
        with safe_open(str(file), "pt") as handle:
            for name in handle.keys():  # noqa: SIM118  (safe_open is not a mapping)
                mapped = names.get_name(name, try_suffixes=(".weight", ".bias")) if names else None
                found[mapped or name] = (file, name)
    return found


def _permute(w: torch.Tensor, heads: int) -> torch.Tensor:
    """llama.cpp's converter's q/k row permutation (interleaved -> halves rotary layout)."""
    return w.reshape(heads, 2, w.shape[0] // heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def _differing_blocks(raw: np.ndarray, qtype: str, w: torch.Tensor) -> int:
    from compsec.formats import get

    codes, d, m = parse_blocks(raw.reshape(-1, raw.size // (w.numel() // BLOCK)), qtype)
    q = get(qtype.lower()).quantize(w.float())
    same = (q.codes.reshape(-1, BLOCK).long() == codes).all(1) & (q.scales["d"].reshape(-1) == d.reshape(-1))
    if m is not None:
        same &= q.scales["m"].reshape(-1) == m.reshape(-1)
    return int((~same).sum())


def _compare(raw: np.ndarray, qtype: str, w: torch.Tensor, heads: int | None) -> int | None:
    """Blocks (or elements, for F32/F16) that differ; None when this type cannot be re-derived."""
    if qtype in ("F32", "F16"):
        stored = torch.from_numpy(raw.view(np.float32 if qtype == "F32" else np.float16).copy()).reshape(w.shape)
        return int((stored != w.to(stored.dtype)).sum())
    if qtype not in LEGACY:
        return None
    counts = [_differing_blocks(raw, qtype, w)]
    if heads and counts[0]:
        counts.append(_differing_blocks(raw, qtype, _permute(w, heads)))
    return min(counts)


def _check_tensor(result: GgufProvenance, name: str, qtype: str, dims: tuple, raw: np.ndarray,
                  w: torch.Tensor, heads: int | None) -> None:
    """Add one tensor's outcome to ``result``."""
    if tuple(w.shape) != tuple(dims[::-1]):
        result.differs.append(f"{name}: shape {list(dims[::-1])} vs source {list(w.shape)}")
        return
    bad = _compare(raw, qtype, w, heads)
    if bad is None:
        result.unchecked.append(f"{name}: {qtype} cannot be re-derived here (K-quant / imatrix)")
        return
    result.checked += 1
    if bad:
        unit = "elements" if qtype in ("F32", "F16") else f"of {w.numel() // BLOCK} blocks"
        result.differs.append(f"{name}: {qtype} differs from the re-quantized source ({bad} {unit})")


def gguf_provenance(quantized: str | Path, source: str | Path) -> GgufProvenance:
    """Decide whether ``quantized`` (a .gguf) was made from ``source`` (safetensors file or folder)."""
    from gguf.constants import GGMLQuantizationType
    from safetensors import safe_open

    from compsec.integrity.gguf_check import read_gguf_header

    quantized, source = Path(quantized), Path(source)
    summary = read_gguf_header(quantized)
    arch = str(summary.metadata.get("general.architecture", ""))
    sources = _source_tensors(source, arch, int(summary.metadata.get(f"{arch}.block_count", 0) or 0))
    result = GgufProvenance()
    with quantized.open("rb") as handle:
        for name, ggml_type, dims, offset, nbytes in summary.tensors:
            if name not in sources:
                result.unchecked.append(f"{name}: not in the source")
                continue
            with safe_open(str(sources[name][0]), "pt") as tensors:
                w = tensors.get_tensor(sources[name][1])
            handle.seek(offset)
            raw = np.frombuffer(handle.read(nbytes), dtype=np.uint8)
            kind = name.split(".")[-2] if name.count(".") >= 2 else ""
            heads = summary.metadata.get(PERMUTED[kind].replace("llama", arch)) if kind in PERMUTED else None
            _check_tensor(result, name, GGMLQuantizationType(ggml_type).name, dims, raw, w, heads)
    failed = result.unchecked or not result.checked
    result.verdict = "not derived" if result.differs else "cannot tell" if failed else "faithful"
    return result
