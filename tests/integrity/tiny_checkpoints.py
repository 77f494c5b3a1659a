"""Tiny Llama checkpoints (no downloads) and tampered copies of them, for the manifest/diff/provenance tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

CONFIG = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 1, "num_attention_heads": 4,
          "num_key_value_heads": 2, "vocab_size": 64, "pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 1}
TARGET = "model.layers.0.mlp.up_proj.weight"


def save_tiny_llama(folder: Path, seed: int = 0) -> Path:
    """A random 1-layer Llama saved with compsec's save_model into ``folder``."""
    from transformers import AutoModelForCausalLM, LlamaConfig

    from compsec.models.io import save_model

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(LlamaConfig(**CONFIG)).eval()
    return save_model(model, None, folder)


def rewrite_tensor(src: Path, dst: Path, name: str, change) -> torch.Tensor:
    """Copy folder ``src`` to ``dst`` with tensor ``name`` replaced by ``change(tensor)``; return the new one."""
    shutil.copytree(src, dst, dirs_exist_ok=True)
    tensors = load_file(str(src / "model.safetensors"))
    tensors[name] = change(tensors[name].clone())
    save_file(tensors, str(dst / "model.safetensors"), metadata={"format": "pt"})
    return tensors[name]


def one_ulp_inside_box(w: torch.Tensor, fmt: str = "nf4") -> torch.Tensor:
    """``w`` with its first element that has room moved up by one float32 ulp, staying inside the fmt box."""
    from compsec.formats import get

    box = get(fmt).preimage(w)
    flat, hi = w.reshape(-1), box.hi.reshape(-1)
    index = int((hi > flat).nonzero()[0, 0])
    flat[index] = torch.nextafter(flat[index], torch.tensor(float("inf")))
    return w


def past_box_edge(w: torch.Tensor, fmt: str = "nf4") -> torch.Tensor:
    """``w`` with one free element pushed one ulp above its box's upper edge (its code must change).  The element's
    box lies strictly inside its 32-weight block's abs-max: at the top code the edge is the abs-max itself, and
    moving past it only moves the scale, by less than double quantization can store (bnb nf4, seed 8902)."""
    from compsec.formats import get

    box = get(fmt).preimage(w)
    flat, lo, hi = w.reshape(-1), box.lo.reshape(-1), box.hi.reshape(-1)
    inside = flat.abs().reshape(-1, 32).amax(1).repeat_interleave(32)
    index = int(((hi > lo) & (hi < inside) & (lo > -inside)).nonzero()[0, 0])
    flat[index] = torch.nextafter(hi[index], torch.tensor(float("inf")))
    return w
