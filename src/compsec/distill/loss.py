"""The distillation loss: soft targets from the teacher, hard labels, and a weight on safety samples.

For each scored position ``i`` (rows of ``(N, vocab)`` logits whose label is not ``ignore_index``)::

    kl_i = KL(p_teacher,T ‖ p_student,T) = Σ_v p_t(v) · (log p_t(v) − log p_s(v))      (softmax at temperature T)
    ce_i = −log softmax(student)[label_i]                                                  (temperature 1)
    loss = α · T² · Σ_i w_i kl_i / N  +  (1 − α) · Σ_i w_i ce_i / N

computed with ``F.kl_div(student_log_probs_T, teacher_probs_T)`` — the student's log-probabilities are the
*input* and the teacher's probabilities the *target* (swapping them, as the seed article does, computes
KL(student ‖ teacher) with the wrong gradients). ``T²`` keeps the soft-target gradients on the scale of the
hard-label ones (Hinton et al. 2015). ``w_i`` is 1 for ordinary samples and ``safety_weight`` for safety ones;
with every ``w_i = 1`` the KL term is exactly ``F.kl_div(..., reduction="batchmean")`` over the N rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from compsec.errors import InputError

IGNORE_INDEX = -100


@dataclass(frozen=True)
class DistillLoss:
    """The total loss (differentiable) and its two parts before weighting by α (floats, for logging)."""

    total: torch.Tensor
    kl: float
    ce: float


def _rows(logits: torch.Tensor) -> torch.Tensor:
    return logits.reshape(-1, logits.shape[-1]).float()


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor,
                      temperature: float = 2.0, alpha: float = 0.5, weights: torch.Tensor | None = None,
                      ignore_index: int = IGNORE_INDEX) -> DistillLoss:
    """See the module docstring. Logits ``(..., vocab)`` of equal shapes; ``labels`` and ``weights`` ``(...)``
    (the leading shape of the logits). Positions labelled ``ignore_index`` count in neither term."""
    if student_logits.shape != teacher_logits.shape:
        raise InputError(f"student logits {tuple(student_logits.shape)} and teacher logits "
                         f"{tuple(teacher_logits.shape)} differ; student and teacher must share the vocabulary")
    if temperature <= 0 or not 0.0 <= alpha <= 1.0:
        raise InputError(f"need temperature > 0 and alpha in [0, 1]; got T={temperature}, alpha={alpha}")
    valid = labels.reshape(-1) != ignore_index
    if not bool(valid.any()):
        raise InputError("every label is ignore_index; nothing to distil on")
    student, teacher = _rows(student_logits)[valid], _rows(teacher_logits.detach())[valid]
    student_log_probs_t = F.log_softmax(student / temperature, dim=-1)
    teacher_probs_t = F.softmax(teacher / temperature, dim=-1)
    ce_rows = F.cross_entropy(student, labels.reshape(-1)[valid], reduction="none")
    if weights is None:
        kl = F.kl_div(student_log_probs_t, teacher_probs_t, reduction="batchmean")
        ce = ce_rows.mean()
    else:
        row_weights = weights.reshape(-1)[valid].to(student.dtype)
        kl_rows = F.kl_div(student_log_probs_t, teacher_probs_t, reduction="none").sum(-1)
        kl, ce = (row_weights * kl_rows).sum() / len(kl_rows), (row_weights * ce_rows).sum() / len(ce_rows)
    total = alpha * temperature**2 * kl + (1.0 - alpha) * ce
    return DistillLoss(total, float(kl.detach()), float(ce.detach()))


def sample_weights(is_safety: torch.Tensor, safety_weight: float, like: torch.Tensor | None = None) -> torch.Tensor:
    """Per-sample weights ``(batch,)`` — ``safety_weight`` where ``is_safety`` else 1 — broadcast to the shape
    of ``like`` (e.g. labels ``(batch, seq)``) when given."""
    if safety_weight < 0:
        raise InputError(f"safety_weight must be ≥ 0, got {safety_weight}")
    weights = torch.where(is_safety.bool(), float(safety_weight), 1.0)
    if like is None:
        return weights
    return weights.reshape(-1, *([1] * (like.dim() - 1))).expand(like.shape).to(like.device)
