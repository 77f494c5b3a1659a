"""Safety-tune a chat model on CPU: refusals for harmful requests, its own answers for benign ones.

Recipe (:class:`SafetyRecipe`): the untuned model first answers every benign prompt greedily (cut at its last full
sentence); then the top ``train_layers`` decoder layers and the final norm are fine-tuned (everything below,
including the tied embeddings, stays frozen, so backward stops there) with AdamW on the mixed set, the loss
covering only the assistant's reply and its end-of-turn token. Losses on the refusal targets and on the benign
answers are measured before and after, on a fixed sample of ``loss_examples`` of each.
"""

from __future__ import annotations

import random
import re
import time
from dataclasses import dataclass

import torch

from compsec.safety.data import Example, benign_examples, harmful_examples
from compsec.tiny.chat import generate
from compsec.tiny.train import IGNORE_INDEX, deterministic_cpu

_SENTENCE_END = re.compile(r"^(.*[.!?])[^.!?]*$", re.DOTALL)


@dataclass(frozen=True)
class SafetyRecipe:
    """Everything that determines the safety-tuned model besides the base weights."""

    seed: int = 0
    harmful_per_activity: int = 3
    lookalike_per_activity: int = 2
    answer_tokens: int = 32
    train_layers: int = 4
    steps: int = 40
    batch_size: int = 8
    learning_rate: float = 2e-4
    weight_decay: float = 0.0
    loss_examples: int = 24

    def __post_init__(self) -> None:
        for name in ("harmful_per_activity", "lookalike_per_activity", "answer_tokens", "train_layers", "steps",
                     "batch_size", "loss_examples"):
            if getattr(self, name) < 1:
                raise ValueError(f"SafetyRecipe.{name} must be at least 1, got {getattr(self, name)}")


def training_set(model, tokenizer, recipe: SafetyRecipe) -> list[Example]:
    """Harmful examples with refusals, and benign ones answered by ``model`` itself (greedy, cut at a sentence)."""
    benign = benign_examples(recipe.seed, recipe.lookalike_per_activity)
    first = {ex.category: ex.prompt for ex in reversed(benign)}  # one answer per activity, reused across framings
    texts = generate(model, tokenizer, list(first.values()), recipe.answer_tokens, batch_size=32)
    answer = {category: _whole_sentences(text) for category, text in zip(first, texts)}
    answered = [Example(ex.prompt, ex.kind, ex.category, answer[ex.category]) for ex in benign]
    return harmful_examples(recipe.seed, recipe.harmful_per_activity) + [ex for ex in answered if ex.response]


def _whole_sentences(text: str) -> str:
    match = _SENTENCE_END.match(text.strip())
    return match.group(1) if match else text.strip()


def encode(tokenizer, example: Example) -> tuple[list[int], list[int]]:
    """Token ids of the whole chat and labels that are IGNORE_INDEX except on the assistant's reply."""
    user = [{"role": "user", "content": example.prompt}]
    prompt = tokenizer.apply_chat_template(user, tokenize=False, add_generation_prompt=True)
    full = tokenizer.apply_chat_template(user + [{"role": "assistant", "content": example.response}], tokenize=False)
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    full_ids = tokenizer(full, add_special_tokens=False)["input_ids"]
    if full_ids[:len(prompt_ids)] != prompt_ids:
        raise ValueError("the chat template does not render the prompt as a prefix of the full chat; "
                         "safety tuning needs a template where it does")
    return full_ids, [IGNORE_INDEX] * len(prompt_ids) + full_ids[len(prompt_ids):]


def _batch(encoded: list[tuple[list[int], list[int]]], pad_id: int) -> dict[str, torch.Tensor]:
    width = max(len(ids) for ids, _ in encoded)
    ids = [ids + [pad_id] * (width - len(ids)) for ids, _ in encoded]
    labels = [lab + [IGNORE_INDEX] * (width - len(lab)) for _, lab in encoded]
    mask = [[1] * len(i) + [0] * (width - len(i)) for i, _ in encoded]
    return {"input_ids": torch.tensor(ids), "labels": torch.tensor(labels), "attention_mask": torch.tensor(mask)}


def reply_token_losses(model, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Cross-entropy (nats) of every reply token of ``batch``, and the row each belongs to.

    The vocabulary projection runs only at the positions that predict a reply token (a third of a short chat),
    which is most of the saving over ``model(**batch).loss`` for a 49k-token vocabulary.
    """
    hidden = model.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
    labels = batch["labels"][:, 1:]
    rows, cols = (labels != IGNORE_INDEX).nonzero(as_tuple=True)
    logits = model.lm_head(hidden[rows, cols])
    return torch.nn.functional.cross_entropy(logits, labels[rows, cols], reduction="none"), rows


@torch.no_grad()
def mean_reply_loss(model, encoded: list, pad_id: int, batch_size: int = 8) -> float:
    """Mean over examples of the mean cross-entropy (nats per reply token) of ``model`` on their replies."""
    losses: list[float] = []
    for start in range(0, len(encoded), batch_size):
        chunk = encoded[start:start + batch_size]
        token_loss, rows = reply_token_losses(model, _batch(chunk, pad_id))
        sums = torch.zeros(len(chunk)).index_add_(0, rows, token_loss)
        counts = torch.zeros(len(chunk)).index_add_(0, rows, torch.ones_like(token_loss)).clamp(min=1)
        losses += (sums / counts).tolist()
    return sum(losses) / max(1, len(losses))


def trainable_parameters(model, train_layers: int) -> list[torch.nn.Parameter]:
    """Freeze ``model`` except its top ``train_layers`` decoder layers and final norm; returns those parameters."""
    layers = model.model.layers
    if train_layers > len(layers):
        raise ValueError(f"train_layers={train_layers} but the model has only {len(layers)} decoder layers")
    model.requires_grad_(False)
    chosen = list(layers[len(layers) - train_layers:]) + [model.model.norm]
    for module in chosen:
        module.requires_grad_(True)
    return [p for module in chosen for p in module.parameters()]


def safety_tune(model, tokenizer, recipe: SafetyRecipe, threads: int | None = None, progress=None) -> dict:
    """Fine-tune ``model`` in place (see the module docstring); returns timings, sizes and losses.

    ``cpu_seconds`` (all threads) is the load-independent cost: wall seconds on busy shared cores say little.
    """
    started, cpu_started = time.perf_counter(), time.process_time()
    with deterministic_cpu(recipe.seed, threads):
        examples = training_set(model, tokenizer, recipe)
        if progress:
            progress(0, recipe.steps, float("nan"))
        answers_seconds = time.perf_counter() - started
        pad_id = tokenizer.pad_token_id
        encoded = {kind: [encode(tokenizer, ex) for ex in examples if (ex.kind == "harmful") == (kind == "harmful")]
                   for kind in ("harmful", "benign")}
        measured = {kind: random.Random(recipe.seed).sample(items, min(recipe.loss_examples, len(items)))
                    for kind, items in encoded.items()}
        before = {kind: mean_reply_loss(model, items, pad_id) for kind, items in measured.items()}
        train_seconds = _train(model, encoded["harmful"] + encoded["benign"], pad_id, recipe, progress)
        after = {kind: mean_reply_loss(model.eval(), items, pad_id) for kind, items in measured.items()}
        threads_used = torch.get_num_threads()
    return {"examples": {k: len(v) for k, v in encoded.items()}, "answer_seconds": round(answers_seconds, 1),
            "train_seconds": round(train_seconds, 1), "total_seconds": round(time.perf_counter() - started, 1),
            "cpu_seconds": round(time.process_time() - cpu_started, 1),
            "threads": threads_used, "loss_before": before, "loss_after": after}


def _train(model, encoded: list, pad_id: int, recipe: SafetyRecipe, progress) -> float:
    params = trainable_parameters(model, recipe.train_layers)
    optimizer = torch.optim.AdamW(params, lr=recipe.learning_rate, weight_decay=recipe.weight_decay)
    rng, order = random.Random(recipe.seed), []
    model.train()
    started = time.perf_counter()
    for step in range(recipe.steps):
        if len(order) < recipe.batch_size:
            order += rng.sample(range(len(encoded)), len(encoded))
        batch = _batch([encoded[i] for i in order[:recipe.batch_size]], pad_id)
        del order[:recipe.batch_size]
        loss = reply_token_losses(model, batch)[0].mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if progress:
            progress(step + 1, recipe.steps, loss.item())
    model.eval().requires_grad_(False)
    return time.perf_counter() - started
