"""The distillation loss against a hand computation, its direction, safety weights, and the distill verb."""

from __future__ import annotations

import json
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from compsec.cli.main import run
from compsec.distill.loss import distillation_loss, sample_weights
from compsec.distill.train import DistillConfig, distill_classifier, student_from_teacher
from compsec.errors import InputError
from compsec.integrity.provenance import SIDECAR_NAME
from compsec.models.io import load_model


def softmax(row, t):
    exps = [math.exp(x / t) for x in row]
    return [e / sum(exps) for e in exps]


def by_hand(student, teacher, labels, t, alpha, weights):
    """The documented formula, in plain Python floats."""
    kl = ce = 0.0
    for s_row, t_row, label, w in zip(student, teacher, labels, weights):
        p_t, p_s = softmax(t_row, t), softmax(s_row, t)
        kl += w * sum(pt * (math.log(pt) - math.log(ps)) for pt, ps in zip(p_t, p_s))
        ce += w * -math.log(softmax(s_row, 1.0)[label])
    return alpha * t * t * kl / len(labels) + (1 - alpha) * ce / len(labels)


KNOWN_S = [[2.0, 0.5, -1.0], [0.0, 0.0, 3.0]]
KNOWN_T = [[1.0, 1.0, 0.0], [-2.0, 1.0, 0.5]]


def test_known_distributions_match_hand_computation():
    s, t, labels = torch.tensor(KNOWN_S), torch.tensor(KNOWN_T), torch.tensor([0, 2])
    loss = distillation_loss(s, t, labels, temperature=2.0, alpha=0.7)
    assert loss.total.item() == pytest.approx(by_hand(KNOWN_S, KNOWN_T, [0, 2], 2.0, 0.7, [1, 1]), rel=1e-5)
    weighted = distillation_loss(s, t, labels, 2.0, 0.7, weights=torch.tensor([3.0, 1.0]))
    assert weighted.total.item() == pytest.approx(by_hand(KNOWN_S, KNOWN_T, [0, 2], 2.0, 0.7, [3, 1]), rel=1e-5)
    swapped = distillation_loss(t, s, labels, temperature=2.0, alpha=1.0)   # KL is not symmetric
    assert swapped.kl != pytest.approx(loss.kl, rel=1e-3)


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 2**31 - 1), st.floats(0.5, 5.0), st.floats(0.0, 1.0))
def test_random_rows_match_hand_and_batchmean(seed, temperature, alpha):
    gen = torch.Generator().manual_seed(seed)
    s, t = 3 * torch.randn(4, 5, generator=gen), 3 * torch.randn(4, 5, generator=gen)
    labels = torch.randint(0, 5, (4,), generator=gen)
    weights = torch.rand(4, generator=gen) * 4
    loss = distillation_loss(s, t, labels, temperature, alpha, weights)
    expected = by_hand(s.tolist(), t.tolist(), labels.tolist(), temperature, alpha, weights.tolist())
    assert loss.total.item() == pytest.approx(expected, rel=1e-4, abs=1e-6)
    unit = distillation_loss(s, t, labels, temperature, alpha, torch.ones(4))
    assert unit.total.item() == pytest.approx(distillation_loss(s, t, labels, temperature, alpha).total.item(),
                                              rel=1e-5)
    assert distillation_loss(t, t, labels, temperature, 1.0).kl == pytest.approx(0.0, abs=1e-6)


def test_ignored_positions_and_errors():
    s, t = torch.randn(2, 3, 4), torch.randn(2, 3, 4)
    labels = torch.tensor([[1, -100, 2], [-100, 0, -100]])
    kept = labels.reshape(-1) != -100
    full = distillation_loss(s, t, labels)
    direct = distillation_loss(s.reshape(-1, 4)[kept], t.reshape(-1, 4)[kept], labels.reshape(-1)[kept])
    assert full.total.item() == pytest.approx(direct.total.item(), rel=1e-6)
    with pytest.raises(InputError):
        distillation_loss(s, t[..., :3], labels)
    with pytest.raises(InputError):
        distillation_loss(s, t, torch.full((2, 3), -100))
    assert sample_weights(torch.tensor([True, False]), 4.0, like=labels).tolist() == [[4.0] * 3, [1.0] * 3]


@pytest.mark.behaviour
def test_gradient_moves_student_towards_teacher():
    torch.manual_seed(0)
    teacher, student = torch.nn.Linear(6, 4), torch.nn.Linear(6, 4)
    x = torch.randn(64, 6)
    labels = teacher(x).argmax(1)
    before = distillation_loss(student(x), teacher(x), labels, alpha=1.0).kl
    distill_classifier(teacher, student, x, labels, DistillConfig(alpha=1.0, steps=30, learning_rate=0.1))
    # KL after / before measured 0.0075-0.013 over torch seeds 0-4, native AVX-512 and ATEN_CPU_CAPABILITY=default
    assert distillation_loss(student(x), teacher(x), labels, alpha=1.0).kl < 0.5 * before


def test_student_from_teacher_and_cli(tiny_model_dir, tiny_assistant, tmp_path):
    student = student_from_teacher(tiny_assistant[0], {"hidden_size": 64, "intermediate_size": 128,
                                                       "num_hidden_layers": 1})
    assert student.config.vocab_size == tiny_assistant[0].config.vocab_size and student.config.hidden_size == 64
    with pytest.raises(InputError):
        student_from_teacher(tiny_assistant[0], {"vocab_size": 10})
    config = tmp_path / "student.json"
    config.write_text(json.dumps({"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 1}))
    out = tmp_path / "student"
    assert run(["distill", str(tiny_model_dir), "--student", str(config), "--out", str(out), "--steps", "3",
                "--batch-size", "4", "--safety-weight", "3"]) == 0
    model, tokenizer = load_model(out)
    assert model.config.hidden_size == 64 and tokenizer is not None
    record = json.loads((out / SIDECAR_NAME).read_text())
    assert record["operation"] == "distill" and record["parameters"]["safety_weight"] == 3.0
