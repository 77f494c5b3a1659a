"""What ``llama-quantize`` deploys for a Llama-style Hugging Face folder: the converter's F32 GGUF, then
libllama's ``llama_model_quantize`` with a file type such as Q4_K_M, which picks a K type *per tensor*.

:func:`llama_quantize_folder` writes both files; :func:`tensor_types` reads back which type llama.cpp chose for
each Hugging Face weight, and :func:`tensor_bytes` the raw quantized blocks (attn_q / attn_k rows permuted as the
converter permutes them; K-quants work row by row, so the permutation only reorders super-blocks).  Needs
``compsec[gguf-k]`` (llama-cpp-python).
"""

from __future__ import annotations

import ctypes
import json
from pathlib import Path

import numpy as np

from compsec.errors import InputError

FTYPES = {"q4_0": 2, "q8_0": 7, "q4_k_m": 15, "q4_k_s": 14, "q5_k_m": 17, "q3_k_m": 12, "q2_k": 10, "q6_k": 18}  # llama_ftype values


def _name_map(config: dict):
    from gguf import MODEL_ARCH, get_tensor_name_map

    if config.get("model_type") != "llama":
        raise InputError(f"model_type {config.get('model_type')!r}: only Llama-style folders are converted here")
    return get_tensor_name_map(MODEL_ARCH.LLAMA, config["num_hidden_layers"])


def write_f32_gguf(folder: Path, path: Path) -> Path:
    """The converter's output for ``folder`` (config.json + model.safetensors): every tensor in F32, attn_q /
    attn_k rows permuted per head as llama.cpp's ``convert_hf_to_gguf.py`` does."""
    from gguf import GGUFWriter
    from safetensors.torch import load_file

    from compsec.integrity.gguf_provenance import _permute

    config = json.loads((Path(folder) / "config.json").read_text(encoding="utf-8"))
    names, writer = _name_map(config), GGUFWriter(str(path), "llama")
    writer.add_block_count(config["num_hidden_layers"])
    writer.add_head_count(config["num_attention_heads"])
    writer.add_head_count_kv(config["num_key_value_heads"])
    writer.add_embedding_length(config["hidden_size"])
    writer.add_feed_forward_length(config["intermediate_size"])
    writer.add_context_length(config.get("max_position_embeddings", 2048))
    writer.add_layer_norm_rms_eps(config.get("rms_norm_eps", 1e-5))
    writer.add_rope_dimension_count(config["hidden_size"] // config["num_attention_heads"])
    writer.add_file_type(0)
    for hf_name, w in load_file(str(Path(folder) / "model.safetensors")).items():
        name = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if name.endswith(("attn_q.weight", "attn_k.weight")):
            w = _permute(w, config["num_attention_heads" if "attn_q" in name else "num_key_value_heads"])
        writer.add_tensor(name, w.float().numpy())
    for step in (writer.write_header_to_file, writer.write_kv_data_to_file, writer.write_tensors_to_file):
        step()
    writer.close()
    return Path(path)


def llama_quantize_folder(folder: Path, out: Path, ftype: str = "q4_k_m") -> Path:
    """``out`` (a GGUF) quantized by libllama from ``folder`` with llama_ftype ``ftype``, no importance matrix."""
    from compsec.formats.gguf_k_lib import _library_dir

    _library_dir()  # raises with the pip line when llama-cpp-python is missing
    import llama_cpp

    f32 = write_f32_gguf(folder, Path(out).with_suffix(".f32.gguf"))
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype, params.nthread = FTYPES[ftype], 1
    if llama_cpp.llama_model_quantize(str(f32).encode(), str(out).encode(), ctypes.byref(params)) != 0:
        raise RuntimeError(f"llama_model_quantize failed on {f32}")
    return Path(out)


def _hf_names(folder: Path) -> dict[str, str]:
    from safetensors import safe_open

    config = json.loads((Path(folder) / "config.json").read_text(encoding="utf-8"))
    names = _name_map(config)
    with safe_open(str(Path(folder) / "model.safetensors"), framework="pt") as handle:
        return {names.get_name(n, try_suffixes=(".weight", ".bias")): n for n in handle.keys()}  # noqa: SIM118


def tensor_types(gguf_path: Path, folder: Path) -> dict[str, str]:
    """Hugging Face weight name -> the GGML type name llama.cpp stored it in (e.g. ``"Q6_K"``)."""
    from gguf import GGUFReader

    hf = _hf_names(folder)
    return {hf[t.name]: t.tensor_type.name for t in GGUFReader(str(gguf_path)).tensors if t.name in hf}


def tensor_bytes(gguf_path: Path, folder: Path) -> dict[str, np.ndarray]:
    """Hugging Face weight name -> the raw bytes llama.cpp stored (uint8, flat)."""
    from gguf import GGUFReader

    hf = _hf_names(folder)
    return {hf[t.name]: np.asarray(t.data).view(np.uint8).reshape(-1).copy()
            for t in GGUFReader(str(gguf_path)).tensors if t.name in hf}
