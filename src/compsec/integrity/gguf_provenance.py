"""Was this GGUF quantized from that source? Re-quantize each source tensor and compare.

For every GGUF tensor the source tensor of the same name (Hugging Face names are mapped with the ``gguf``
package's tensor map; llama.cpp's converter permutes the rows of ``attn_q`` / ``attn_k``, so that permutation is
tried too) is quantized in the type the GGUF stores *that tensor* in, so a mixture such as Q4_K_M (llama-quantize
picks Q4_K / Q6_K / ... per tensor) needs no special case. Legacy block types (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1) go
through compsec's registry format (:mod:`compsec.formats.gguf`, bit-exact with ggml) and codes and scales are
compared; K-quants (Q2_K ... Q6_K) through llama.cpp's own ``ggml_quantize_chunk`` without an importance matrix
(:mod:`compsec.formats.gguf_k_lib`) and the super-blocks compared byte for byte. F32 / F16 tensors are
compared with the source's values. llama.cpp's converter first writes an F16 / BF16 GGUF (``--outtype``) that
``llama-quantize`` then reads: give that type as ``via`` and every quantized tensor is re-derived from the source
rounded to it (norms and other F32 tensors are kept as they are, as the converter keeps them). A GGUF whose metadata says llama-quantize used an importance matrix
(``quantize.imatrix.*`` keys) cannot be re-derived without it: its K-quant tensors get the bounds check of
:mod:`compsec.integrity.kquant_bounds` (each code must be the source weight's code under the stored scales):
``not derived`` when one is not, else ``consistent (importance matrix)``; legacy types quantized with a matrix
stay unchecked (``cannot tell (importance matrix)``). Verdicts: see
:mod:`compsec.integrity.provenance_result` (a source change inside a tensor's quantization box is rightly faithful).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from compsec.errors import InputError
from compsec.formats import gguf_k_lib
from compsec.formats.gguf import BLOCK, parse_blocks
from compsec.integrity.provenance_result import QuantizedProvenance

LEGACY = {"Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1"}
KQUANTS = {"Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K"}
IMATRIX_KEYS = "quantize.imatrix."
IMATRIX = "cannot tell (importance matrix)"
CONSISTENT = "consistent (importance matrix)"
VIA = {"f16": torch.float16, "bf16": torch.bfloat16, "f32": torch.float32}
PERMUTED = {"attn_q": "llama.attention.head_count", "attn_k": "llama.attention.head_count_kv"}


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


def _differing_super_blocks(raw: np.ndarray, qtype: str, w: torch.Tensor) -> int:
    """K-quant super-blocks that llama.cpp, quantizing ``w`` row by row without an imatrix, writes differently."""
    mine = gguf_k_lib.quantize_rows(w.reshape(-1, w.shape[-1]), qtype)
    return int((mine != raw.reshape(mine.shape)).any(1).sum())


def _block_size(qtype: str, w: torch.Tensor) -> int | None:
    """Weights per block of ``qtype`` for ``w``; None when this type (or this row length) cannot be re-derived."""
    if qtype in KQUANTS:
        return gguf_k_lib.QK_K if gguf_k_lib.available() and w.shape[-1] % gguf_k_lib.QK_K == 0 else None
    return BLOCK if qtype in LEGACY else None


def _compare(raw: np.ndarray, qtype: str, w: torch.Tensor, heads: int | None, via: str | None,
             imatrix: bool = False) -> int | None:
    """Blocks (or elements, for F32/F16) that differ; None when this type cannot be re-derived."""
    if qtype in ("F32", "F16"):
        stored = torch.from_numpy(raw.view(np.float32 if qtype == "F32" else np.float16).copy()).reshape(w.shape)
        return int((stored != w.to(stored.dtype)).sum())
    if _block_size(qtype, w) is None or (imatrix and qtype not in KQUANTS):
        return None
    w = w.to(VIA[via]).float() if via else w
    differing = _differing_super_blocks if qtype in KQUANTS else _differing_blocks
    if imatrix:  # scales chosen with the matrix: check the codes under the stored scales instead
        from compsec.integrity.kquant_bounds import inconsistent_super_blocks as differing
    counts = [differing(raw, qtype, w)]
    if heads and counts[0]:
        counts.append(differing(raw, qtype, _permute(w, heads)))
    return min(counts)


def _check_tensor(result: QuantizedProvenance, name: str, qtype: str, dims: tuple, raw: np.ndarray,
                  w: torch.Tensor, heads: int | None, imatrix: bool, via: str | None) -> None:
    """Add one tensor's outcome to ``result``."""
    if tuple(w.shape) != tuple(dims[::-1]):
        result.differs.append(f"{name}: shape {list(dims[::-1])} vs source {list(w.shape)}")
        return
    bad = _compare(raw, qtype, w, heads, via, imatrix)
    if bad is None and imatrix and qtype not in ("F32", "F16"):
        result.unchecked.append(f"{name}: {qtype} was quantized with an importance matrix; not re-derived")
        return
    if bad is None:
        why = "install llama-cpp-python (compsec[gguf-k])" if qtype in KQUANTS and not gguf_k_lib.available() else \
            "no re-quantizer for this type / row length"
        result.unchecked.append(f"{name}: {qtype} cannot be re-derived here ({why})")
        return
    result.checked += 1
    if bad:
        unit = "elements" if qtype in ("F32", "F16") else f"of {w.numel() // _block_size(qtype, w)} blocks"
        result.differs.append(f"{name}: {qtype} differs from the re-quantized source ({bad} {unit})")


def gguf_provenance(quantized: str | Path, source: str | Path, via: str | None = None) -> QuantizedProvenance:
    """Decide whether ``quantized`` (a .gguf) was made from ``source`` (safetensors file or folder), through the
    converter's ``via`` type (``"f16"``, ``"bf16"``, ``"f32"``; None: the source's own precision)."""
    if via is not None and via not in VIA:
        raise InputError(f"--via {via}: not a converter output type; give one of {', '.join(VIA)}")
    from gguf.constants import GGMLQuantizationType
    from safetensors import safe_open

    from compsec.integrity.gguf_check import read_gguf_header

    quantized, source = Path(quantized), Path(source)
    summary = read_gguf_header(quantized)
    arch = str(summary.metadata.get("general.architecture", ""))
    sources = _source_tensors(source, arch, int(summary.metadata.get(f"{arch}.block_count", 0) or 0))
    imatrix = any(str(key).startswith(IMATRIX_KEYS) for key in summary.metadata)
    result = QuantizedProvenance()
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
            _check_tensor(result, name, GGMLQuantizationType(ggml_type).name, dims, raw, w, heads, imatrix, via)
    result.decided(IMATRIX if imatrix else "cannot tell")
    if imatrix and result.verdict == "faithful":
        result.verdict = CONSISTENT  # every code checked under the stored scales; the scales themselves not
    return result
