"""Distil a teacher into a smaller student: causal LMs (the tiny assistant) and classifiers (digits).

The student of a causal LM is built from the teacher's config with a few fields overridden
(:func:`student_from_teacher`), so it shares the tokenizer and vocabulary. Safety samples (the corpus's
harmful requests answered with refusals) get ``safety_weight`` in both loss terms.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass

import torch

from compsec.distill.loss import distillation_loss, sample_weights
from compsec.errors import InputError

STUDENT_FIELDS = ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                  "num_key_value_heads", "n_embd", "n_layer", "n_head", "n_inner", "head_dim")


@dataclass(frozen=True)
class DistillConfig:
    """Optimisation of one distillation run."""

    temperature: float = 2.0
    alpha: float = 0.5
    safety_weight: float = 1.0
    steps: int = 300
    batch_size: int = 32
    learning_rate: float = 3e-3
    seed: int = 0


def student_from_teacher(teacher, overrides: dict):
    """A freshly initialised model of the teacher's class and config with ``overrides`` applied."""
    unknown = sorted(set(overrides) - set(STUDENT_FIELDS))
    if unknown:
        raise InputError(f"student config fields {unknown} are not supported; use {', '.join(STUDENT_FIELDS)}")
    config = teacher.config.__class__.from_dict({**teacher.config.to_dict(), **overrides})
    return type(teacher)(config)


def _batch_order(count: int, batch_size: int, steps: int, seed: int) -> list[list[int]]:
    rng, order, batches = random.Random(seed), [], []
    for _ in range(steps):
        if len(order) < batch_size:
            order += rng.sample(range(count), count)
        batches.append(order[:batch_size])
        order = order[batch_size:]
    return batches


def distill_causal_lm(teacher, student, rows: list[tuple[list[int], list[int]]], is_safety: list[bool],
                      config: DistillConfig, pad_id: int, device: str = "cpu") -> list[float]:
    """Train ``student`` on ``rows`` (token ids, labels with −100 on the prompt) against ``teacher``'s logits.

    Returns the loss per step; both models end in eval mode on ``device``.
    """
    from compsec.tiny.train import collate

    if len(rows) != len(is_safety) or not rows:
        raise InputError("need one is_safety flag per row and at least one row")
    torch.manual_seed(config.seed)
    teacher.to(device).eval()
    student.to(device).train()
    optimizer = torch.optim.AdamW(student.parameters(), lr=config.learning_rate, weight_decay=0.01)
    flags, losses = torch.tensor(is_safety), []
    for step, batch_rows in enumerate(_batch_order(len(rows), config.batch_size, config.steps, config.seed)):
        batch = {k: v.to(device) for k, v in collate([rows[i] for i in batch_rows], pad_id).items()}
        labels = batch["labels"][:, 1:]
        with torch.no_grad():
            teacher_logits = teacher(batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1]
        student_logits = student(batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1]
        weights = sample_weights(flags[batch_rows], config.safety_weight, like=labels)
        losses.append(_step(optimizer, student, distillation_loss(
            student_logits, teacher_logits, labels, config.temperature, config.alpha, weights).total, step))
    student.eval()
    return losses


def _step(optimizer, model, loss: torch.Tensor, step: int) -> float:
    """One optimiser step on ``loss``; a NaN/Inf loss stops training before it reaches the weights."""
    if not torch.isfinite(loss):
        raise InputError(f"distillation loss became {loss.item()} at step {step + 1}; nothing was saved. Lower the "
                         "learning rate (--lr) or raise --temperature, and check the teacher with `compsec check`")
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    return loss.item()


def distill_classifier(teacher, student, images: torch.Tensor, labels: torch.Tensor, config: DistillConfig,
                       is_safety: torch.Tensor | None = None) -> list[float]:
    """Train classifier ``student`` on ``images`` ``(n, features)`` / ``labels`` ``(n,)`` against ``teacher``."""
    torch.manual_seed(config.seed)
    teacher.eval()
    student.train()
    optimizer = torch.optim.Adam(student.parameters(), lr=config.learning_rate)
    flags = is_safety if is_safety is not None else torch.zeros(len(labels), dtype=torch.bool)
    losses = []
    for step, batch in enumerate(_batch_order(len(labels), config.batch_size, config.steps, config.seed)):
        with torch.no_grad():
            teacher_logits = teacher(images[batch])
        weights = sample_weights(flags[batch], config.safety_weight)
        loss = distillation_loss(student(images[batch]), teacher_logits, labels[batch], config.temperature,
                                 config.alpha, weights)
        losses.append(_step(optimizer, student, loss.total, step))
    student.eval()
    return losses


def distill_tiny(teacher, tokenizer, student_overrides: dict, config: DistillConfig, device: str = "cpu"):
    """Distil ``teacher`` on the tiny assistant's training corpus (harmful requests = safety samples).

    Returns ``(student, stats)``; the corpus prompts go through ``tokenizer``'s chat template.
    """
    from compsec.tiny.train import TinyRecipe, encode_example, training_examples

    examples = training_examples(TinyRecipe())
    rows = [encode_example(tokenizer, ex) for ex in examples]
    student = student_from_teacher(teacher, student_overrides)
    losses = distill_causal_lm(teacher, student, rows, [ex.should_refuse for ex in examples], config,
                               tokenizer.pad_token_id, device)
    stats = {"config": asdict(config), "student": student_overrides, "final_loss": round(losses[-1], 4),
             "parameters": sum(p.numel() for p in student.parameters()), "rows": len(rows)}
    return student, stats
