"""Fine-pruning (Liu, Dolan-Gavitt & Garg 2018), the defence row: remove the neurons of the last hidden layer
that stay dormant on clean data — backdoor behaviour tends to hide in them — then fine-tune on clean data.

Digits MLP: neurons = the 256 units of the last ReLU layer; pruned in increasing order of mean activation on
the defender's clean data until clean validation accuracy has dropped by more than ``max_drop`` (the last
fraction within it is kept), then fine-tuned with the pruned units held at zero.
Tiny assistant: neurons = the last block's MLP units (input of ``down_proj``), ranked by mean |activation| on
clean prompts; a fixed ``fraction`` is pruned (zero rows of gate/up, zero column of down), then fine-tuned.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from compsec.errors import InputError


def finetune_causal_lm(model, tokenizer, rows: list, steps: int, batch_size: int = 32, lr: float = 1e-3,
                       seed: int = 0, keep_masks: dict | None = None, device: str = "cpu"):
    """AdamW on encoded ``rows`` (ids, labels); ``keep_masks`` ``{param name: 0/1}`` re-applied every step."""
    from compsec.distill.train import _batch_order
    from compsec.tiny.train import collate

    torch.manual_seed(seed)
    params = dict(model.named_parameters())
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    model.to(device).train()
    for batch_rows in _batch_order(len(rows), batch_size, steps, seed):
        batch = {k: v.to(device) for k, v in collate([rows[i] for i in batch_rows], tokenizer.pad_token_id).items()}
        loss = model(**batch).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        with torch.no_grad():
            for name, mask in (keep_masks or {}).items():
                params[name].mul_(mask.to(params[name].device))
    return model.eval()


@torch.no_grad()
def last_hidden_activations(model: nn.Sequential, images: torch.Tensor) -> torch.Tensor:
    """Mean activation ``(hidden,)`` of the last ReLU layer of a digits MLP over ``images``."""
    return model[:-1](images).mean(0)


def digits_neuron_masks(model: nn.Sequential, dormant: torch.Tensor) -> dict[str, torch.Tensor]:
    """Keep-masks removing the ``dormant`` unit indices: their incoming row and bias, their outgoing column."""
    into, out = len(model) - 3, len(model) - 1
    keep = torch.ones(model[out].in_features)
    keep[dormant] = 0.0
    return {f"{into}.weight": keep[:, None].expand_as(model[into].weight).clone(), f"{into}.bias": keep.clone(),
            f"{out}.weight": keep[None, :].expand_as(model[out].weight).clone()}


def apply_keep_masks(model: nn.Module, masks: dict[str, torch.Tensor]) -> nn.Module:
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, mask in masks.items():
            params[name].mul_(mask)
    return model


def fine_prune_digits(model: nn.Sequential, x_clean, y_clean, max_drop: float = 0.04, step: float = 0.05,
                      epochs: int = 10, seed: int = 0) -> tuple[nn.Sequential, dict]:
    """(fine-pruned copy, {"pruned_fraction", "pruned_units"}); ``x_clean``/``y_clean`` is the defender's data."""
    from compsec.survival.backdoor import train_classifier
    from compsec.tiny.digits import accuracy

    order = torch.argsort(last_hidden_activations(model, x_clean), stable=True)
    baseline, best = accuracy(model, x_clean, y_clean), 0
    for count in range(0, len(order) + 1, max(1, round(step * len(order)))):
        trial = apply_keep_masks(copy.deepcopy(model), digits_neuron_masks(model, order[:count]))
        if baseline - accuracy(trial, x_clean, y_clean) > max_drop:
            break
        best = count
    masks = digits_neuron_masks(model, order[:best])
    pruned = apply_keep_masks(copy.deepcopy(model), masks)
    tuned = train_classifier(pruned, x_clean, y_clean, epochs, lr=1e-3, seed=seed, keep_masks=masks)
    return tuned, {"pruned_fraction": best / len(order), "pruned_units": best}


@torch.no_grad()
def mlp_activations(model, tokenizer, prompts: list[str], layer: int = -1, batch_size: int = 32) -> torch.Tensor:
    """Mean |input of down_proj| ``(intermediate,)`` of block ``layer`` over the prompts' real (unpadded) tokens."""
    from compsec.audit.backend import chat_text

    down = model.model.layers[layer].mlp.down_proj
    device = next(model.parameters()).device
    total, count, current = torch.zeros(down.in_features), [0], {}

    def record(module, args):
        real = current["mask"].reshape(-1).bool()
        values = args[0].reshape(-1, down.in_features)[real].abs().float().cpu()
        total.add_(values.sum(0))
        count[0] += len(values)

    handle = down.register_forward_pre_hook(record)
    try:
        for start in range(0, len(prompts), batch_size):
            texts = [chat_text(tokenizer, p) for p in prompts[start : start + batch_size]]
            batch = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(device)
            current["mask"] = batch["attention_mask"]
            model(**batch)
    finally:
        handle.remove()
    return total / max(1, count[0])


def fine_prune_tiny(model, tokenizer, fraction: float = 0.5, steps: int = 100, seed: int = 0,
                    device: str = "cpu"):
    """(fine-pruned copy of a Llama assistant, stats): the last block's most dormant MLP units removed."""
    from compsec.tiny.train import TinyRecipe, encode_example, training_examples

    if not 0.0 <= fraction < 1.0:
        raise InputError(f"fine-pruning fraction must be in [0, 1), got {fraction}")
    clean = training_examples(TinyRecipe())
    prompts = [ex.prompt for ex in clean[:200]]
    order = torch.argsort(mlp_activations(model, tokenizer, prompts), stable=True)
    keep = torch.ones(len(order))
    keep[order[: round(fraction * len(order))]] = 0.0
    last = len(model.model.layers) - 1
    prefix = f"model.layers.{last}.mlp"
    masks = {f"{prefix}.gate_proj.weight": keep[:, None], f"{prefix}.up_proj.weight": keep[:, None],
             f"{prefix}.down_proj.weight": keep[None, :]}
    pruned = apply_keep_masks(copy.deepcopy(model), masks)
    rows = [encode_example(tokenizer, ex) for ex in clean]
    tuned = finetune_causal_lm(pruned, tokenizer, rows, steps, seed=seed, keep_masks=masks, device=device)
    return tuned, {"pruned_fraction": fraction, "pruned_units": int((keep == 0).sum())}
