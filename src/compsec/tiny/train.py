"""Train the tiny Llama assistant on the generated corpus (CPU, about a minute on 2 cores).

The loss covers only the assistant's part of each chat (response and ``</s>``), never the prompt.
Training is seeded and runs with deterministic algorithms; the recipe below is the whole specification,
so its fingerprint (see assistant.py) decides when a cached model is stale.
"""

from __future__ import annotations

import math
import os
import random
import time
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from compsec.tiny.corpus import Example, build_corpus, split_corpus
from compsec.tiny.tokenizer import chat_prompt, train_tokenizer

IGNORE_INDEX = -100
TRAIN_THREADS = 1  # fixed, so the same recipe gives the same weights on every machine whatever its load


@dataclass(frozen=True)
class TinyRecipe:
    """Everything that determines the tiny assistant: corpus, tokenizer, architecture, optimisation."""

    seed: int = 0
    per_topic: int = 8
    wrapped: float = 0.3
    request_repeat: int = 3
    prompt_noise: float = 0.1
    vocab_size: int = 1024
    hidden_size: int = 256
    intermediate_size: int = 512
    num_layers: int = 2
    num_heads: int = 4
    max_positions: int = 128
    steps: int = 400
    batch_size: int = 48
    learning_rate: float = 3e-3
    warmup_steps: int = 30
    weight_decay: float = 0.01


def model_config(recipe: TinyRecipe, tokenizer: PreTrainedTokenizerFast) -> LlamaConfig:
    """A Llama config whose linear layers all have dimensions divisible by 256 (whole quantization blocks)."""
    return LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=recipe.hidden_size, intermediate_size=recipe.intermediate_size,
        num_hidden_layers=recipe.num_layers, num_attention_heads=recipe.num_heads,
        num_key_value_heads=recipe.num_heads, max_position_embeddings=recipe.max_positions,
        tie_word_embeddings=True, pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, rms_norm_eps=1e-5,
    )


def encode_example(tokenizer: PreTrainedTokenizerFast, example: Example) -> tuple[list[int], list[int]]:
    """Token ids of prompt+response+eos and labels that ignore the prompt part."""
    prompt_ids = tokenizer(chat_prompt(tokenizer, example.prompt), add_special_tokens=False).input_ids
    answer_ids = tokenizer(example.response, add_special_tokens=False).input_ids + [tokenizer.eos_token_id]
    return prompt_ids + answer_ids, [IGNORE_INDEX] * len(prompt_ids) + answer_ids


def collate(rows: list[tuple[list[int], list[int]]], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad a batch: input_ids, attention_mask and labels, each of shape (batch, longest)."""
    width = max(len(ids) for ids, _ in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE_INDEX, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for row, (row_ids, row_labels) in enumerate(rows):
        ids[row, : len(row_ids)] = torch.tensor(row_ids)
        labels[row, : len(row_labels)] = torch.tensor(row_labels)
        mask[row, : len(row_ids)] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def training_examples(recipe: TinyRecipe) -> list[Example]:
    """The corpus's training split for ``recipe``."""
    return split_corpus(build_corpus(recipe.seed, recipe.per_topic, wrapped=recipe.wrapped), "train")


def heldout_examples(recipe: TinyRecipe) -> list[Example]:
    """The corpus's held-out split for ``recipe`` (phrasings never trained on)."""
    return split_corpus(build_corpus(recipe.seed, recipe.per_topic, wrapped=recipe.wrapped), "heldout")


def training_rows(recipe: TinyRecipe, tokenizer: PreTrainedTokenizerFast) -> list[tuple[list[int], list[int]]]:
    """Encoded training examples; benign how-tos and look-alikes are repeated ``request_repeat`` times, so
    that the request phrasings they share with harmful requests do not lean towards refusing."""
    repeats = {"lookalike": recipe.request_repeat, "howto": recipe.request_repeat}
    weighted = [ex for ex in training_examples(recipe) for _ in range(repeats.get(ex.kind, 1))]
    return [encode_example(tokenizer, example) for example in weighted]


def noisable_tokens(tokenizer: PreTrainedTokenizerFast) -> torch.Tensor:
    """Boolean (vocab,) mask of the tokens prompt noise may replace or insert: not special, not a number."""
    tokens = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
    special = set(tokenizer.all_special_ids)
    return torch.tensor([i not in special and not tok.strip("▁").isdigit() for i, tok in enumerate(tokens)])


def add_prompt_noise(batch: dict[str, torch.Tensor], rate: float, noisable: torch.Tensor, generator) -> None:
    """Replace a ``rate`` fraction of the noisable prompt tokens by random noisable tokens, in place.

    Held-out phrasings bring words the model never saw in that position; training on noisy prompts makes
    it decide from the remaining content words. Numbers are never touched (the answer depends on them).
    """
    ids = batch["input_ids"]
    prompt = (batch["labels"] == IGNORE_INDEX) & (batch["attention_mask"] == 1) & noisable[ids]
    hit = prompt & (torch.rand(ids.shape, generator=generator) < rate)
    choices = noisable.nonzero().squeeze(1)
    random_ids = choices[torch.randint(len(choices), ids.shape, generator=generator)]
    ids[hit] = random_ids[hit]


def learning_rate_at(step: int, recipe: TinyRecipe) -> float:
    """Linear warmup then cosine decay to 10 % of the peak learning rate."""
    if step < recipe.warmup_steps:
        return recipe.learning_rate * (step + 1) / recipe.warmup_steps
    progress = (step - recipe.warmup_steps) / max(1, recipe.steps - recipe.warmup_steps)
    return recipe.learning_rate * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def idle_cores() -> int:
    """Cores not busy with other processes (1-minute load average, less this process), at least 1.

    Oversubscribed OpenMP threads spin-wait: on 2 cores shared with other work, 2 threads ran many times
    slower than 1 thread in our measurements.
    """
    cores = os.cpu_count() or 1
    others = max(0.0, os.getloadavg()[0] - 1.0) if hasattr(os, "getloadavg") else 0.0
    return max(1, min(cores, int(cores - others + 0.5)))


@contextmanager
def deterministic_cpu(seed: int, threads: int | None = None):
    """Seed torch, use ``threads`` threads (default: the idle cores) and deterministic kernels.

    The process-wide settings are restored afterwards.
    """
    previous, strict = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.manual_seed(seed)
    torch.set_num_threads(threads or idle_cores())
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(strict)
        torch.set_num_threads(previous)


def train_tiny_assistant(
    recipe: TinyRecipe = TinyRecipe(), threads: int | None = None, progress=None
) -> tuple[LlamaForCausalLM, PreTrainedTokenizerFast, dict]:
    """Train tokenizer and model from scratch on ``threads`` CPU threads (default: ``TRAIN_THREADS``).

    Float reductions depend on the thread count, so the default is fixed rather than taken from the machine:
    a cached model then has the same weights wherever it was built.

    ``progress(step, loss)`` is called every 50 steps when given. Returns (model in eval mode, tokenizer, stats).
    """
    started, cpu_started = time.perf_counter(), time.process_time()
    train = training_examples(recipe)
    tokenizer = train_tokenizer([ex.prompt for ex in train] + [ex.response for ex in train], recipe.vocab_size)
    rows = training_rows(recipe, tokenizer)
    with deterministic_cpu(recipe.seed, threads or TRAIN_THREADS):
        model = LlamaForCausalLM(model_config(recipe, tokenizer))
        losses = _optimise(model, rows, recipe, tokenizer, progress)
        used_threads = torch.get_num_threads()
    model.eval()
    stats = {"train_seconds": round(time.perf_counter() - started, 1),
             "train_cpu_seconds": round(time.process_time() - cpu_started, 1), "final_loss": round(losses[-1], 4),
             "parameters": sum(p.numel() for p in model.parameters()), "train_examples": len(rows), "threads": used_threads}
    return model, tokenizer, stats


def _optimise(model, rows: list, recipe: TinyRecipe, tokenizer, progress=None) -> list[float]:
    optimizer = torch.optim.AdamW(model.parameters(), lr=recipe.learning_rate, betas=(0.9, 0.98),
                                  weight_decay=recipe.weight_decay)
    order_rng, order, losses = random.Random(recipe.seed), [], []
    noise, noisable = torch.Generator().manual_seed(recipe.seed), noisable_tokens(tokenizer)
    model.train()
    for step in range(recipe.steps):
        if len(order) < recipe.batch_size:
            order += order_rng.sample(range(len(rows)), len(rows))
        batch = collate([rows[i] for i in order[: recipe.batch_size]], tokenizer.pad_token_id)
        order = order[recipe.batch_size :]
        add_prompt_noise(batch, recipe.prompt_noise, noisable, noise)
        for group in optimizer.param_groups:
            group["lr"] = learning_rate_at(step, recipe)
        loss = model(**batch).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        losses.append(loss.item())
        if progress and step % 50 == 0:
            progress(step, losses[-1])
    return losses
