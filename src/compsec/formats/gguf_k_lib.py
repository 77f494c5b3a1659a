"""llama.cpp's own K-quant quantizer, called through ctypes on the ggml library that llama-cpp-python ships.

``ggml_quantize_chunk(type, src, dst, start, nrows, n_per_row, imatrix)`` with ``imatrix = NULL`` runs
``quantize_row_qN_K_ref`` from ``ggml-quants.c``: the code path ``llama-quantize`` takes without an importance
matrix.  Rows are float32 (fp16/bf16 weights are widened exactly first, as llama.cpp's converter does).
The ggml type numbers are read from ``gguf.GGMLQuantizationType`` and checked against ggml's own type traits
(block size and bytes per block) when the library is loaded.
"""

from __future__ import annotations

import ctypes
import functools
from pathlib import Path

import numpy as np
import torch

from compsec.errors import MissingDependencyError

QK_K = 256
_SIZES = {"Q2_K": 84, "Q3_K": 110, "Q4_K": 144, "Q5_K": 176, "Q6_K": 210}


def _library_dir() -> Path:
    try:
        import llama_cpp
    except ImportError as err:
        raise MissingDependencyError("llama-cpp-python", extra="gguf-k",
                                     purpose="llama.cpp's K-quant quantizer (q2_k ... q6_k); it builds from "
                                     "source, ~7 min; CMAKE_ARGS='-DGGML_NATIVE=OFF' gives a portable build") from err
    return Path(llama_cpp.__file__).parent / "lib"


def available() -> bool:
    """Whether llama-cpp-python (and so ggml) is installed, without raising."""
    import importlib.util

    return importlib.util.find_spec("llama_cpp") is not None


@functools.cache
def ggml() -> ctypes.CDLL:
    """``libggml-base`` with the signatures compsec calls, loaded once."""
    lib = ctypes.CDLL(str(_library_dir() / "libggml-base.so"))
    lib.ggml_quantize_chunk.restype = ctypes.c_size_t
    lib.ggml_quantize_chunk.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64,
                                        ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p]
    lib.ggml_row_size.restype = ctypes.c_size_t
    lib.ggml_row_size.argtypes = [ctypes.c_int, ctypes.c_int64]
    lib.ggml_blck_size.restype = ctypes.c_int64
    lib.ggml_blck_size.argtypes = [ctypes.c_int]
    lib.ggml_quantize_requires_imatrix.restype = ctypes.c_bool
    lib.ggml_quantize_requires_imatrix.argtypes = [ctypes.c_int]
    return lib


@functools.cache
def type_id(qtype: str) -> int:
    """ggml's enum value of ``qtype`` (e.g. ``"Q4_K"``), checked against the library's type traits."""
    from gguf import GGMLQuantizationType

    value = int(GGMLQuantizationType[qtype])
    lib = ggml()
    if lib.ggml_blck_size(value) != QK_K or lib.ggml_row_size(value, QK_K) != _SIZES[qtype]:
        raise RuntimeError(f"the ggml library's type {value} is not {qtype} (block {lib.ggml_blck_size(value)}, "
                           f"{lib.ggml_row_size(value, QK_K)} bytes); llama-cpp-python and gguf disagree")
    if lib.ggml_quantize_requires_imatrix(value):
        raise RuntimeError(f"ggml says {qtype} needs an importance matrix; compsec quantizes without one")
    return value


def quantize_rows(rows: torch.Tensor, qtype: str) -> np.ndarray:
    """Quantize ``rows`` (any float dtype, shape ``(n, k)`` with ``k % 256 == 0``) with llama.cpp.

    Returns the raw blocks, uint8 of shape ``(n * k // 256, bytes_per_block)``."""
    x = np.ascontiguousarray(rows.detach().cpu().float().numpy(), dtype=np.float32)
    n, k = x.shape
    out = np.empty((n * k // QK_K, _SIZES[qtype]), dtype=np.uint8)
    written = ggml().ggml_quantize_chunk(type_id(qtype), x.ctypes.data, out.ctypes.data, 0, n, k, None)
    if written != out.nbytes:
        raise RuntimeError(f"ggml_quantize_chunk wrote {written} bytes for {qtype}, expected {out.nbytes}")
    return out


def dequantize_blocks(raw: np.ndarray, qtype: str) -> torch.Tensor:
    """What llama.cpp computes with: ``gguf.quants.dequantize`` of raw blocks, float32 ``(n_blocks, 256)``."""
    from gguf import GGMLQuantizationType, quants

    flat = quants.dequantize(np.ascontiguousarray(raw).reshape(-1), GGMLQuantizationType[qtype])
    return torch.from_numpy(np.ascontiguousarray(flat, dtype=np.float32)).reshape(-1, QK_K)


def quantize_rows_direct(rows: torch.Tensor, qtype: str) -> np.ndarray:
    """The same through ggml's exported ``quantize_qN_K(src, dst, nrow, n_per_row, NULL)`` (no type dispatch):
    the second entry point the contract tests compare :func:`quantize_rows` with."""
    x = np.ascontiguousarray(rows.detach().cpu().float().numpy(), dtype=np.float32)
    n, k = x.shape
    out = np.empty((n * k // QK_K, _SIZES[qtype]), dtype=np.uint8)
    fn = getattr(ggml(), f"quantize_{qtype[:2].lower()}_K")
    fn.restype = ctypes.c_size_t
    fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p]
    if fn(x.ctypes.data, out.ctypes.data, n, k, None) != out.nbytes:
        raise RuntimeError(f"quantize_{qtype} wrote an unexpected number of bytes")
    return out
