"""llama.cpp's own quantizer on a model: convert to an F32 GGUF, then ``llama_model_quantize`` to a llama type.

The type names are llama.cpp's (``llama-quantize``'s list, lower case): ``q4_k_m``, ``q5_k_m``, ``q6_k``, ``q8_0``,
``q4_0``, ``f16``... read from llama-cpp-python's ``LLAMA_FTYPE_*`` constants, so a type libllama adds is
accepted with no code change. libllama picks the type of each tensor itself (Q4_K_M: Q4_K with Q6_K for half of
``attn_v`` / ``ffn_down`` and the output; K-quants fall back to Q5_0 / Q8_0... on rows that are not a multiple of
256), without an importance matrix. Results are cached under ``cache_dir()/gguf`` by (model digest, type): the
digest is sha256 over every parameter (name, dtype, shape, bytes), the config and the tokenizer's vocabulary.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import json
import os
import tempfile
from pathlib import Path

import torch

from compsec.errors import CompsecError, InputError, MissingDependencyError
from compsec.paths import cache_dir

PREFIX = "LLAMA_FTYPE_MOSTLY_"
CONVERTER_VERSION = "compsec-gguf-write-2"


def _llama_cpp():
    try:
        import llama_cpp
    except ImportError as err:
        raise MissingDependencyError("llama-cpp-python", extra="gguf-k",
                                     purpose="GGUF variants run and quantized by llama.cpp") from err
    return llama_cpp


@functools.cache
def llama_types() -> dict[str, int]:
    """``{type name: llama_ftype}`` for every type llama-cpp-python's libllama names (``q4_k_m`` -> 15...)."""
    llama_cpp = _llama_cpp()
    types = {name[len(PREFIX):].lower(): int(getattr(llama_cpp, name))
             for name in dir(llama_cpp) if name.startswith(PREFIX)}
    types["f32"] = int(llama_cpp.LLAMA_FTYPE_ALL_F32)
    return types


def llama_type(name: str) -> str:
    """``name`` normalised (``Q4_K_M`` -> ``q4_k_m``); InputError listing the accepted names when unknown."""
    key = name.strip().lower()
    if key not in llama_types():
        raise InputError(f"gguf:{name}: not a llama.cpp quantization type; use one of "
                         f"{', '.join(sorted(llama_types()))}")
    return key


def model_digest(model, tokenizer) -> str:
    """sha256 hex of every parameter (name, dtype, shape, raw bytes), the config and the vocabulary."""
    digest = hashlib.sha256(CONVERTER_VERSION.encode())
    for name, param in model.named_parameters():
        tensor = param.detach().to("cpu").contiguous()
        digest.update(f"{name}\0{tensor.dtype}\0{tuple(tensor.shape)}\0".encode())
        digest.update(tensor.view(-1).view(dtype=torch.uint8).numpy().tobytes())
    digest.update(json.dumps(model.config.to_dict(), sort_keys=True, default=str).encode())
    digest.update(json.dumps(tokenizer.get_vocab(), sort_keys=True).encode())
    digest.update(str(getattr(tokenizer, "chat_template", "")).encode())
    return digest.hexdigest()


def quantize_file(source: str | Path, out: str | Path, type_name: str, threads: int = 1) -> Path:
    """``llama_model_quantize(source, out)`` to ``type_name`` (llama.cpp's per-tensor choices, no imatrix)."""
    llama_cpp = _llama_cpp()
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype, params.nthread = llama_types()[llama_type(type_name)], threads
    status = llama_cpp.llama_model_quantize(str(source).encode(), str(out).encode(), ctypes.byref(params))
    if status != 0:
        raise CompsecError(f"llama.cpp could not quantize to {type_name} (status {status}); types that need an "
                           "importance matrix (iq1_*, iq2_*) are not supported: pick q4_k_m, q5_k_m, q8_0...")
    return Path(out)


def quantized_gguf(model, tokenizer, type_name: str, out: str | Path | None = None) -> Path:
    """The GGUF of ``model`` quantized by llama.cpp to ``type_name``: from the cache, else converted + quantized.

    With ``out`` the cached file's bytes are also copied there (``compsec quantize --format gguf:TYPE``).
    """
    from compsec.models.gguf_write import write_gguf

    key = llama_type(type_name)
    folder = cache_dir() / "gguf"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{model_digest(model, tokenizer)[:24]}-{key}.gguf"
    if not target.is_file():
        with tempfile.TemporaryDirectory(dir=folder) as staging:
            converted = write_gguf(model, tokenizer, Path(staging) / "f32.gguf")
            quantized = quantize_file(converted, Path(staging) / "q.gguf", key, threads=min(2, os.cpu_count() or 1))
            os.replace(quantized, target)  # atomic: a concurrent run finds either nothing or the whole file
    if out is not None:
        _copy_atomically(target, Path(out))
    return target


def _copy_atomically(source: Path, out: Path) -> None:
    import shutil

    out.absolute().parent.mkdir(parents=True, exist_ok=True)
    handle, staging = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.absolute().parent)
    os.close(handle)
    try:
        shutil.copyfile(source, staging)
        os.replace(staging, out)
    finally:
        if os.path.exists(staging):
            os.unlink(staging)
