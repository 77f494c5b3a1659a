"""The digits classifier fixture: accurate on its held-out split, deterministic data, verified cache."""

import pytest
import torch

from compsec.tiny.cache import read_meta, sha256_file
from compsec.tiny.digits import accuracy, digits_split


@pytest.mark.behaviour
def test_heldout_accuracy_is_at_least_95_percent(digits_fixture):
    acc = accuracy(digits_fixture.model, digits_fixture.x_test, digits_fixture.y_test)
    print(f"digits held-out accuracy: {acc:.4f}")
    assert acc >= 0.95  # measured 0.969-0.976 (recipe seeds 0-2, both CPU profiles)
    assert abs(acc - read_meta(digits_fixture.folder)["stats"]["test_accuracy"]) < 1e-6


def test_split_is_deterministic_and_disjoint(digits_fixture):
    again = digits_split()
    assert torch.equal(again[1], digits_fixture.x_test) and torch.equal(again[3], digits_fixture.y_test)
    assert len(digits_fixture.x_train) + len(digits_fixture.x_test) == 1797


def test_linear_layers_and_recorded_hash(digits_fixture):
    shapes = [tuple(m.weight.shape) for m in digits_fixture.model if isinstance(m, torch.nn.Linear)]
    assert shapes == [(256, 64), (256, 256), (10, 256)]
    folder = digits_fixture.folder
    assert read_meta(folder)["sha256"]["model.safetensors"] == sha256_file(folder / "model.safetensors")
