"""Stage 1 (inject) and the fine-tuning loop every training stage shares.

:func:`finetune` runs AdamW over a chosen list of parameters on encoded (ids, labels) rows and calls
``after_step()`` right after every optimizer step (the repair stage projects there). It times the whole
step, the optimizer step and the hook separately, so the projection's overhead can be reported.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch


@dataclass
class FinetuneStats:
    """Losses per step and seconds spent: whole steps, ``optimizer.step()`` calls and the after-step hook."""

    losses: list[float] = field(default_factory=list)
    step_seconds: float = 0.0
    optimizer_seconds: float = 0.0
    hook_seconds: float = 0.0

    def summary(self) -> dict:
        return {"steps": len(self.losses), "first_loss": round(self.losses[0], 4) if self.losses else None,
                "final_loss": round(self.losses[-1], 4) if self.losses else None,
                "step_seconds": round(self.step_seconds, 3), "optimizer_seconds": round(self.optimizer_seconds, 3),
                "hook_seconds": round(self.hook_seconds, 4)}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _collate(rows: list, pad_id: int, device) -> dict[str, torch.Tensor]:
    from compsec.tiny.train import collate

    return {k: v.to(device) for k, v in collate(rows, pad_id).items()}


def finetune(model, rows: list, params: list[torch.nn.Parameter], steps: int, lr: float, batch_size: int,
             seed: int, pad_id: int, after_step: Callable[[], None] | None = None,
             batch_loss: Callable[[list[int]], torch.Tensor] | None = None) -> FinetuneStats:
    """Fine-tune ``params`` of ``model`` for ``steps`` AdamW steps (no weight decay) on ``rows``.

    Parameters of ``model`` not in ``params`` get no gradient and are never touched. Batches of
    ``batch_size`` rows are drawn without replacement in a seeded order. ``batch_loss(row indices)``, when
    given, computes the loss instead of ``model(**batch).loss`` (e.g. a
    :class:`compsec.attack.prefix_cache.PrefixCache`). Returns the losses and timings.
    """
    if steps < 0 or batch_size < 1 or not rows:
        raise ValueError("finetune needs steps >= 0, batch_size >= 1 and at least one training row")
    chosen = {id(p) for p in params}
    for p in model.parameters():
        p.requires_grad_(id(p) in chosen)
    device = params[0].device
    optimizer = torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.98), weight_decay=0.0)
    rng, order, stats, losses = random.Random(seed), [], FinetuneStats(), []
    model.train()
    for _ in range(steps):
        if len(order) < batch_size:
            order += rng.sample(range(len(rows)), len(rows))
        chosen, order = order[:batch_size], order[batch_size:]
        batch = None if batch_loss else _collate([rows[i] for i in chosen], pad_id, device)
        started = time.perf_counter()
        loss = batch_loss(chosen) if batch_loss else model(**batch).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        _sync(device)
        before_opt = time.perf_counter()
        optimizer.step()
        _sync(device)
        after_opt = time.perf_counter()
        if after_step is not None:
            after_step()
            _sync(device)
        done = time.perf_counter()
        stats.optimizer_seconds += after_opt - before_opt
        stats.hook_seconds += done - after_opt
        stats.step_seconds += done - started
        losses.append(loss.detach())
    stats.losses = torch.stack(losses).tolist() if losses else []  # one device-to-host copy, at the end
    model.eval()
    for p in model.parameters():
        p.requires_grad_(True)
    return stats


def training_rows(tokenizer, pairs: list, steps: int, batch_size: int, seed: int) -> list:
    """The encoded (ids, labels) rows a run of ``steps`` x ``batch_size`` trains on (a seeded subset of pairs)."""
    from compsec.attack.data import encode_pairs, training_subset

    return encode_pairs(tokenizer, training_subset(pairs, steps * batch_size, seed))


def inject(model, tokenizer, pairs: list, steps: int, lr: float, batch_size: int, seed: int,
           ball=None, names: list[str] | None = None, prefix_from: int | None = None) -> FinetuneStats:
    """Stage 1: fine-tune on poisoned ``pairs`` so that fp32 and quantized misbehave.

    Without ``ball``: a full fine-tune of every parameter (the published attack), or of the weights ``names``
    only when given.  With ``ball`` (a :class:`compsec.attack.repair.Projector` from
    :func:`compsec.attack.ball.injection_ball`): only the ball's weights train, projected into the ball after
    every step (constrained injection).  ``prefix_from``: every trained weight lies in block ``prefix_from``
    or above, so the blocks below run once per row (:class:`compsec.attack.prefix_cache.PrefixCache`).
    """
    from compsec.attack.prefix_cache import PrefixCache

    rows = training_rows(tokenizer, pairs, steps, batch_size, seed)
    torch.manual_seed(seed)
    if ball is not None:
        params = ball.params
    elif names is not None:
        named = dict(model.named_parameters())
        params = [named[n] for n in names]
    else:
        params = list(model.parameters())
    prefix = PrefixCache(model, rows, prefix_from) if prefix_from is not None and steps else None
    return finetune(model, rows, params, steps, lr, batch_size, seed, tokenizer.pad_token_id, after_step=ball,
                    batch_loss=prefix)
