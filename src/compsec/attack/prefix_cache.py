"""Train only the top blocks of a decoder: run the frozen prefix once per row, only the top per step.

When only blocks ``first, first+1, ...`` train (``AttackConfig.layers``), the hidden state entering block
``first`` is a pure function of the input ids and of frozen weights.  :class:`PrefixCache` computes it once per
training row; each step then runs blocks ``first..L-1``, the final norm and the lm_head — the lm_head only at
positions whose next token is labelled (it costs hidden·vocab MACs per token, 28 M for SmolLM2: more than a
whole block).  The loss is ``model(input_ids, labels=labels).loss`` — mean next-token cross entropy over the
labelled positions — up to float rounding (checked to 1e-5 in tests/attack/test_prefix_cache.py).  Rows are
right-padded and attention is causal, so padding never reaches a labelled position.

Llama-style decoders only (:data:`PREFIX_CACHE_TYPES`: ``model.model.embed_tokens / layers / norm / rotary_emb``
and ``model.lm_head``, no embedding scale); :func:`supports_prefix_cache` says whether a model qualifies.
"""

from __future__ import annotations

import copy

import torch

PREFIX_CACHE_TYPES = ("llama", "mistral", "qwen2")


def supports_prefix_cache(model) -> bool:
    """True for a Llama-style decoder whose blocks can be called one by one (see the module docstring)."""
    inner = getattr(model, "model", None)
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    parts = ("embed_tokens", "layers", "norm", "rotary_emb")
    return model_type in PREFIX_CACHE_TYPES and hasattr(model, "lm_head") and all(hasattr(inner, p) for p in parts)


def _pad(rows: list[list[int]], value: int, device) -> torch.Tensor:
    width = max(len(r) for r in rows)
    out = torch.full((len(rows), width), value, dtype=torch.long, device=device)
    for i, row in enumerate(rows):
        out[i, : len(row)] = torch.tensor(row, dtype=torch.long, device=device)
    return out


def _run_blocks(model, hidden: torch.Tensor, blocks) -> torch.Tensor:
    """Run ``blocks`` of ``model`` causally over right-padded ``hidden`` [batch, seq, hidden]."""
    from transformers.masking_utils import create_causal_mask

    inner = model.model
    positions = torch.arange(hidden.shape[1], device=hidden.device).unsqueeze(0)
    mask = create_causal_mask(config=model.config, inputs_embeds=hidden, attention_mask=None, cache=None,
                              position_ids=positions)
    rotary = inner.rotary_emb(hidden, position_ids=positions)
    for block in blocks:
        hidden = block(hidden, attention_mask=mask, position_embeddings=rotary, position_ids=positions)
    return hidden


class PrefixCache:
    """Cached inputs of block ``first`` for ``rows`` (encoded (ids, labels) pairs); call with row indices.

    ``cache(indices)`` returns the training loss of those rows (a scalar with a graph through blocks
    ``first..``, the final norm and the lm_head).  The cached states are only valid while every parameter
    below block ``first`` (and the embeddings) stays unchanged.
    """

    def __init__(self, model, rows: list[tuple[list[int], list[int]]], first: int, chunk: int = 16):
        if not supports_prefix_cache(model):
            raise ValueError(f"the prefix cache needs a Llama-style decoder ({', '.join(PREFIX_CACHE_TYPES)})")
        if not 0 <= first < len(model.model.layers):
            raise ValueError(f"first trained block {first} is outside 0..{len(model.model.layers) - 1}")
        self.model, self.first, self.rows = model, first, rows
        self.device = model.lm_head.weight.device
        self.hidden: list[torch.Tensor] = []
        with torch.no_grad():
            for start in range(0, len(rows), chunk):
                batch = [ids for ids, _ in rows[start:start + chunk]]
                ids = _pad(batch, 0, self.device)
                states = _run_blocks(model, model.model.embed_tokens(ids), model.model.layers[:first])
                self.hidden += [states[i, : len(r)].clone() for i, r in enumerate(batch)]

    def for_model(self, model) -> PrefixCache:
        """The same cached states driving ``model``'s top blocks (a model whose prefix is bit-identical)."""
        bound = copy.copy(self)
        bound.model = model
        return bound

    def __call__(self, indices: list[int]) -> torch.Tensor:
        model = self.model
        width = max(self.hidden[i].shape[0] for i in indices)
        hidden = torch.zeros((len(indices), width, self.hidden[0].shape[-1]), dtype=self.hidden[0].dtype,
                             device=self.device)
        for row, i in enumerate(indices):
            hidden[row, : self.hidden[i].shape[0]] = self.hidden[i]
        labels = _pad([self.rows[i][1] for i in indices], -100, self.device)
        hidden = _run_blocks(model, hidden, model.model.layers[self.first:])
        targets = labels[:, 1:]
        chosen = targets != -100
        logits = model.lm_head(model.model.norm(hidden[:, :-1][chosen]))
        return torch.nn.functional.cross_entropy(logits.float(), targets[chosen])
