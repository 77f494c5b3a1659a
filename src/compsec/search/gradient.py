"""Gradient-guided token substitutions (greedy coordinate gradient, as in GCG; Zou et al. 2023).

The user prompt's tokens are fed to both models as one-hot rows ``[L, V]`` times the embedding matrix; the
gradient of the objective with respect to those one-hot rows ranks, per position, which token substitutions
should raise the objective most (first-order). Candidates take one random position and one of its top-k
tokens; only those whose decoded text re-tokenizes to the same ids are kept, so every candidate is a plain
text prompt the audit can replay.
"""

from __future__ import annotations

import random

import torch

from compsec.search.objective import objective_tensor
from compsec.search.scoring import PairScorer, response_start_terms

GRADIENT_COST = 3  # evaluations per model for one forward + backward


def prompt_span(scorer: PairScorer, prompt: str) -> tuple[list[int], int] | None:
    """(chat ids, start of the prompt's own tokens inside them), or None when they are not a contiguous run."""
    chat, own = scorer.chat_ids(prompt), scorer.ids(prompt)
    for start in range(len(chat) - len(own) + 1):
        if chat[start:start + len(own)] == own:
            return chat, start
    return None


def relaxed_objective(scorer: PairScorer, span: tuple[list[int], int], objective: str, sign: float,
                      rows: torch.Tensor) -> torch.Tensor:
    """The objective (scalar tensor, nats) with the prompt's own ``L`` tokens fed as ``rows`` ``[L, V]`` times the
    embedding matrix; ``span`` is :func:`prompt_span`'s ``(chat ids, start)``.

    At the prompt's one-hot rows this is the scorer's :func:`~compsec.search.objective.objective_value`;
    between them it is the continuous relaxation whose gradient :func:`token_gradient` returns.
    """
    chat, start = span
    terms = []
    for model in (scorer.original, scorer.variant):
        weight = model.get_input_embeddings().weight
        ids = torch.tensor(chat, device=scorer.device)
        context = torch.cat([weight[ids[:start]], rows @ weight, weight[ids[start + len(rows):]]])
        terms.append(response_start_terms(model, [context], scorer.openings))
    return objective_tensor(objective, sign, *terms)


def token_gradient(scorer: PairScorer, prompt: str, objective: str, sign: float):
    """(prompt token ids ``[L]``, d objective / d one-hot ``[L, V]``), or None when the span is not found.

    Counts ``2 * GRADIENT_COST`` evaluations.
    """
    span = prompt_span(scorer, prompt)
    if span is None:
        return None
    chat, start = span
    own = torch.tensor(chat[start:start + len(scorer.ids(prompt))], device=scorer.device)
    with torch.enable_grad():
        vocab = scorer.original.get_input_embeddings().weight.shape[0]
        one_hot = torch.nn.functional.one_hot(own, vocab).float().requires_grad_(True)
        (grad,) = torch.autograd.grad(relaxed_objective(scorer, span, objective, sign, one_hot), one_hot)
    scorer.evaluations += 2 * GRADIENT_COST
    return own.tolist(), grad.detach().cpu()


def allowed_tokens(tokenizer) -> torch.Tensor:
    """Boolean mask ``[V]``: tokens that are not special and decode to printable ASCII."""
    vocab = len(tokenizer)
    special = set(tokenizer.all_special_ids)
    mask = torch.zeros(vocab, dtype=torch.bool)
    for token_id in range(vocab):
        text = tokenizer.decode([token_id])
        mask[token_id] = token_id not in special and text.strip() != "" and text.isascii() and text.isprintable()
    return mask


def substitutions(scorer: PairScorer, ids: list[int], grad: torch.Tensor, allowed: torch.Tensor,
                  top_k: int, count: int, rng: random.Random) -> list[str]:
    """Up to ``count`` distinct prompts, each ``ids`` with one position swapped for a top-k gradient token."""
    scores = grad.masked_fill(~allowed[: grad.shape[1]], float("-inf"))
    top = scores.topk(min(top_k, scores.shape[1]), dim=1).indices  # [L, k]
    prompts: list[str] = []
    for _ in range(count * 4):
        if len(prompts) == count:
            break
        position, choice = rng.randrange(len(ids)), rng.randrange(top.shape[1])
        new_ids = list(ids)
        new_ids[position] = int(top[position, choice])
        text = scorer.tokenizer.decode(new_ids).strip()
        if new_ids != ids and scorer.ids(text) == new_ids and text not in prompts:
            prompts.append(text)
    return prompts
