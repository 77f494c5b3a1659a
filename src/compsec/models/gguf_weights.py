"""The weights a GGUF file holds, dequantized into a torch model: the torch simulation of *that file*.

Every tensor is read with ``gguf.GGUFReader`` and dequantized by ``gguf.quants.dequantize`` (the reference
arithmetic of llama.cpp's blocks, any type), the converter's ``attn_q`` / ``attn_k`` row permutation is undone,
and the result is copied into the matching parameter of a Llama model of the same shape. What is left between
this model and llama.cpp running the file is the runtime: llama.cpp rounds activations to Q8 blocks for its
quantized matrix products and accumulates in its own order.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from compsec.errors import InputError


def unpermute(w: torch.Tensor, heads: int) -> torch.Tensor:
    """Inverse of :func:`compsec.integrity.gguf_provenance._permute` (halves -> interleaved rotary rows)."""
    return w.reshape(heads, w.shape[0] // heads // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def gguf_tensors(path: str | Path, model) -> dict[str, torch.Tensor]:
    """``{parameter name of model: float32 weights}`` for every GGUF tensor (dequantized, rows un-permuted)."""
    from gguf import MODEL_ARCH, GGUFReader, get_tensor_name_map, quants

    config = model.config
    names = get_tensor_name_map(MODEL_ARCH.LLAMA, config.num_hidden_layers)
    by_gguf = {names.get_name(n, try_suffixes=(".weight", ".bias")): n for n, _ in model.named_parameters()}
    heads = {"attn_q": config.num_attention_heads,
             "attn_k": getattr(config, "num_key_value_heads", None) or config.num_attention_heads}
    out = {}
    for tensor in GGUFReader(str(path)).tensors:
        if tensor.name not in by_gguf:
            raise InputError(f"{path}: tensor {tensor.name} has no parameter in the model; not the same architecture")
        shape = tuple(int(d) for d in reversed(tensor.shape))
        values = quants.dequantize(tensor.data, tensor.tensor_type)
        w = torch.from_numpy(np.array(values, dtype=np.float32)).reshape(shape)
        kind = tensor.name.split(".")[-2] if tensor.name.count(".") >= 2 else ""
        out[by_gguf[tensor.name]] = unpermute(w, heads[kind]) if kind in heads else w
    return out


@torch.no_grad()
def load_gguf_weights(model, path: str | Path) -> None:
    """Overwrite ``model``'s parameters with the GGUF's dequantized tensors (same shapes required)."""
    params = dict(model.named_parameters())
    for name, w in gguf_tensors(path, model).items():
        if tuple(params[name].shape) != tuple(w.shape):
            raise InputError(f"{path}: {name} is {list(w.shape)} in the GGUF, {list(params[name].shape)} in the model")
        params[name].copy_(w.to(params[name].dtype))
