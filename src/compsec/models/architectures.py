"""Per-architecture knowledge as data: which weights are the quantizable linear layers, and their roles.

One :class:`Architecture` row per family, keyed by every ``config.model_type`` it covers. A weight name is
matched as ``<anything>.<layer_prefix>.<index>.<suffix>.weight`` where ``suffix`` is one of the row's
``linears``; ``extra_linears`` are whole-model linears outside the blocks (BERT's pooler). Roles:
``q k v o`` (attention projections), ``qkv-fused`` (one matrix for all three), ``gate up down`` (gated MLP),
``gate-up-fused``, ``mlp-in mlp-out`` (plain MLP), or a named extra. ``transposed`` marks GPT-2's Conv1D, whose
weight is stored ``(in_features, out_features)`` instead of nn.Linear's ``(out, in)``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from compsec.errors import InputError


@dataclass(frozen=True)
class Architecture:
    """One row of the table (see module docstring). Config keys name where head counts live."""

    family: str
    model_types: tuple[str, ...]
    layer_prefix: str
    linears: tuple[tuple[str, str], ...]
    extra_linears: tuple[tuple[str, str], ...] = ()
    transposed: bool = False
    heads_key: str = "num_attention_heads"
    kv_heads_key: str | None = "num_key_value_heads"
    hidden_key: str = "hidden_size"
    layers_key: str = "num_hidden_layers"

    @property
    def layer_pattern(self) -> re.Pattern:
        """Regex on a full weight name: group 1 = layer index, group 2 = module suffix inside the block."""
        return re.compile(rf"(?:^|\.){re.escape(self.layer_prefix)}\.(\d+)\.(.+)\.weight$")


_LLAMA_LINEARS = (
    ("self_attn.q_proj", "q"), ("self_attn.k_proj", "k"), ("self_attn.v_proj", "v"), ("self_attn.o_proj", "o"),
    ("mlp.gate_proj", "gate"), ("mlp.up_proj", "up"), ("mlp.down_proj", "down"),
)

ARCHITECTURES: tuple[Architecture, ...] = (
    Architecture("llama", ("llama", "mistral", "qwen2", "qwen3", "olmo", "olmo2", "granite"), "layers",
                 _LLAMA_LINEARS),
    Architecture("gpt2", ("gpt2",), "h",
                 (("attn.c_attn", "qkv-fused"), ("attn.c_proj", "o"), ("mlp.c_fc", "mlp-in"),
                  ("mlp.c_proj", "mlp-out")),
                 transposed=True, heads_key="n_head", kv_heads_key=None, hidden_key="n_embd",
                 layers_key="n_layer"),
    Architecture("bert", ("bert", "roberta"), "layer",
                 (("attention.self.query", "q"), ("attention.self.key", "k"), ("attention.self.value", "v"),
                  ("attention.output.dense", "o"), ("intermediate.dense", "mlp-in"), ("output.dense", "mlp-out")),
                 extra_linears=(("pooler.dense", "pooler"), ("cls.predictions.transform.dense", "head-transform")),
                 kv_heads_key=None),
    Architecture("phi", ("phi",), "layers",
                 (("self_attn.q_proj", "q"), ("self_attn.k_proj", "k"), ("self_attn.v_proj", "v"),
                  ("self_attn.dense", "o"), ("mlp.fc1", "mlp-in"), ("mlp.fc2", "mlp-out"))),
    Architecture("phi3", ("phi3",), "layers",
                 (("self_attn.qkv_proj", "qkv-fused"), ("self_attn.o_proj", "o"),
                  ("mlp.gate_up_proj", "gate-up-fused"), ("mlp.down_proj", "down"))),
)

# Checked in this order (first match names the reason); case-insensitive.
NEVER_QUANTIZED_PATTERNS = {
    "bias": r"(?:^|\.)bias$",
    "norm": r"norm|(?:^|\.)ln_\w+\.",
    "lm_head": r"(?:^|\.)(?:lm_head|cls\.predictions\.decoder|embed_out)\.",
    "embedding": r"embed|(?:^|\.)wte\.|(?:^|\.)wpe\.",
}


def _model_type(config) -> str | None:
    if config is None:
        return None
    return config.get("model_type") if isinstance(config, dict) else getattr(config, "model_type", None)


def architecture_for(config) -> Architecture | None:
    """The table row for ``config`` (a transformers config or a config.json dict); None if unknown."""
    model_type = _model_type(config)
    return next((arch for arch in ARCHITECTURES if model_type in arch.model_types), None)


def config_value(config, key: str, default=None):
    """Read ``key`` from a transformers config object or a config.json dict."""
    return config.get(key, default) if isinstance(config, dict) else getattr(config, key, default)


def head_counts(config) -> tuple[int, int, int]:
    """(attention heads, key/value heads, head dimension) from the config, via the table's keys.

    Example: SmolLM2-135M (llama, hidden 576, 9 heads, 3 kv heads) → ``(9, 3, 64)``.
    """
    arch = architecture_for(config)
    if arch is None:
        raise InputError(f"unknown model_type {_model_type(config)!r}; known: {', '.join(known_model_types())}")
    heads = int(config_value(config, arch.heads_key))
    kv_heads = int(config_value(config, arch.kv_heads_key) or heads) if arch.kv_heads_key else heads
    head_dim = config_value(config, "head_dim") or int(config_value(config, arch.hidden_key)) // heads
    return heads, kv_heads, int(head_dim)


def known_model_types() -> list[str]:
    """Every model_type the table covers."""
    return sorted(t for arch in ARCHITECTURES for t in arch.model_types)
