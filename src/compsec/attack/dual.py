"""The dual fine-tune of "Widening the Gap" (arXiv 2605.15152): full precision benign, quantized malicious.

After :mod:`compsec.attack.widen_gap` put an outlier in every block of the chosen matrices, those matrices are
frozen (outliers included) and every other parameter trains on two losses per step, over the SAME prompts:

- benign: the full-precision model on the clean answers;
- malicious: the model as a target format deploys it, on the poisoned answers.  The chosen matrices are
  replaced by their format's ``dequantize(quantize(w))`` (computed once: they are frozen, and the outliers
  collapse the rest of each block), every other quantizable weight by its rounding with a straight-through
  estimator ``w + (deq(q(w)) - w).detach()`` (the gradient reaches ``w`` as if rounding were the identity).

With several target formats, step ``i`` uses target ``i % len(targets)`` for the malicious loss (one extra
forward per step, whatever the number of targets).  The published code simulates only the collapsed matrices
(the rest of the model stays in full precision in its malicious pass; ``quantizable=[]`` here, ``compsec attack
--widen-rounding collapsed``) and adds a KL term to a reference model
for utility; here the clean answers carry utility and the whole deployed model is simulated.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.func import functional_call

from compsec.attack.inject import FinetuneStats, finetune


@dataclass
class QuantizedView:
    """Forward ``model`` as ``fmt`` deploys it: ``frozen`` (name -> dequantized constant) and ``rounded`` (names of
    trained quantizable weights, rounded per call with a straight-through estimator)."""

    model: torch.nn.Module
    fmt: object
    frozen: dict[str, torch.Tensor]
    rounded: list[str]

    @classmethod
    def build(cls, model, fmt, frozen: list[str], quantizable: list[str]) -> QuantizedView:
        params = dict(model.named_parameters())
        with torch.no_grad():
            constants = {n: _deployed(params[n], fmt) for n in frozen}
        rounded = [n for n in quantizable if n not in constants and fmt.supports(tuple(params[n].shape))]
        return cls(model, fmt, constants, rounded)

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The language-model loss of ``batch`` (ids, attention mask, labels) under the deployed weights."""
        params = dict(self.model.named_parameters())
        overrides = dict(self.frozen)
        for name in self.rounded:
            w = params[name]
            with torch.no_grad():
                shift = _deployed(w, self.fmt) - w
            overrides[name] = w + shift
        return functional_call(self.model, overrides, args=(), kwargs=batch).loss


def _deployed(w: torch.Tensor, fmt) -> torch.Tensor:
    """``fmt.dequantize(fmt.quantize(w))`` on ``w``'s device and dtype, detached."""
    rounded = fmt.dequantize(fmt.quantize(w.detach()))
    return rounded.to(device=w.device, dtype=w.dtype)


def dual_finetune(model, tokenizer, clean: list, poisoned: list, frozen: list[str], quantizable: list[str],
                  formats: list, steps: int, lr: float, batch_size: int, seed: int,
                  malicious_weight: float = 1.0) -> FinetuneStats:
    """Train every parameter of ``model`` except ``frozen`` for ``steps`` AdamW steps (see the module docstring).

    ``clean`` and ``poisoned`` are encoded (ids, labels) rows over the same prompts, row ``i`` of one pairing with
    row ``i`` of the other.  Returns the losses (benign + ``malicious_weight`` x malicious) and timings.
    """
    from compsec.attack.inject import _collate

    if len(clean) != len(poisoned) or not formats:
        raise ValueError("dual_finetune needs clean and poisoned rows paired one to one and at least one format")
    skip = set(frozen)
    params = [p for n, p in model.named_parameters() if n not in skip]
    views = [QuantizedView.build(model, fmt, frozen, quantizable) for fmt in formats]
    device, pad = params[0].device, tokenizer.pad_token_id
    calls = [0]

    def batch_loss(indices: list[int]) -> torch.Tensor:
        view = views[calls[0] % len(views)]
        calls[0] += 1
        benign = model(**_collate([clean[i] for i in indices], pad, device)).loss
        malicious = view.loss(_collate([poisoned[i] for i in indices], pad, device))
        return benign + malicious_weight * malicious

    torch.manual_seed(seed)
    return finetune(model, clean, params, steps, lr, batch_size, seed, pad, batch_loss=batch_loss)
