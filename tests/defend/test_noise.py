"""Seeded noise: reproducible, recorded in provenance; auto sigma re-randomises box-edge weights, keeps fp32."""

from __future__ import annotations

import json

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from compsec import formats
from compsec.cli.main import run
from compsec.defend.noise import (
    DEFAULT_C,
    auto_sigma,
    code_change_fraction,
    gaussian_like,
    parse_noise,
    tensor_seed,
)
from compsec.errors import InputError

NF4, INT8 = formats.get("nf4"), formats.get("int8")


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31), sigma=st.floats(1e-6, 1.0), name=st.text(min_size=1, max_size=20))
def test_noise_is_a_pure_function_of_seed_and_tensor_name(seed, sigma, name):
    w = torch.zeros(8, 16)
    a = gaussian_like(w, sigma, tensor_seed(seed, name))
    b = gaussian_like(w, sigma, tensor_seed(seed, name))
    assert torch.equal(a, b)
    assert not torch.equal(a, gaussian_like(w, sigma, tensor_seed(seed + 1, name)))
    assert not torch.equal(a, gaussian_like(w, sigma, tensor_seed(seed, name + "x")))
    assert float(a.std()) == pytest.approx(sigma, rel=0.5)


def _edge_pushed(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A natural tensor and the same tensor pushed to a random edge of its nf4 & int8 box (codes unchanged)."""
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(64, 256, generator=g) * 0.04
    box = NF4.preimage(w).intersect(INT8.preimage(w))
    edge = torch.where(torch.rand(w.shape, generator=g) < 0.5, box.lo, box.hi)
    assert NF4.quantize(edge).same_as(NF4.quantize(w)) and INT8.quantize(edge).same_as(INT8.quantize(w))
    return w, edge


@pytest.mark.parametrize("seed", [0, 1])
def test_auto_sigma_rerandomises_a_box_edge_tensor_and_keeps_fp32_output(seed):
    _, edge = _edge_pushed(seed)
    sigma = auto_sigma(edge, [NF4, INT8], DEFAULT_C)
    noisy = edge + gaussian_like(edge, sigma, tensor_seed(seed, "w"))
    assert code_change_fraction(edge, noisy, INT8) > 0.4       # about half the edge weights cross their edge
    assert code_change_fraction(edge, noisy, NF4) > 0.02       # where NF4's edge is the binding one
    x = torch.randn(32, 256, generator=torch.Generator().manual_seed(seed))
    relative = float((x @ noisy.T - x @ edge.T).norm() / (x @ edge.T).norm())
    assert relative < 0.03
    assert 0 < sigma < 0.01 * float(edge.std()) * 10


def test_auto_sigma_follows_the_finest_format():
    w, _ = _edge_pushed(2)
    assert auto_sigma(w, [NF4], 1.0) > 5 * auto_sigma(w, [NF4, INT8], 1.0)
    assert auto_sigma(w, [NF4, INT8], 2.0) == pytest.approx(2 * auto_sigma(w, [INT8], 1.0))


def test_noise_spec_parsing():
    assert parse_noise("auto") == "auto" and parse_noise("1e-3") == 1e-3
    for bad in ("-1", "nan", "loud"):
        with pytest.raises(InputError):
            parse_noise(bad)


def _digests(folder):
    return json.loads((folder / "provenance.json").read_text())


def test_harden_cli_is_reproducible_and_records_sigma_per_tensor(micro_dir, tmp_path):
    from compsec.models.linear import quantizable_weights

    base = ["harden", str(micro_dir), "--noise", "auto", "--formats", "nf4,int8"]
    assert run([*base, "--seed", "7", "--out", str(tmp_path / "a")]) == 0
    assert run([*base, "--seed", "7", "--out", str(tmp_path / "b")]) == 0
    assert run([*base, "--seed", "8", "--out", str(tmp_path / "c")]) == 0
    a, b, c = (_digests(tmp_path / x) for x in "abc")
    assert a["operation"] == "harden" and a["seed"] == 7
    names = {q.name for q in quantizable_weights(micro_dir)}
    sigmas = a["parameters"]["sigma_per_tensor"]
    assert set(sigmas) == names and all(s > 0 for s in sigmas.values())
    assert a["output_tensor_digests"] == b["output_tensor_digests"]
    changed = {n for n, d in a["output_tensor_digests"].items() if c["output_tensor_digests"][n] != d}
    assert changed == names                                        # only the quantizable weights get noise
    assert run(["harden", str(micro_dir), "--noise", "loud", "--out", str(tmp_path / "d")]) == 2
