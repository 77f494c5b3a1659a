"""Quantization-boundary adversarial examples on the digits classifier (Xu et al.'s setting).

For an image ``x`` (``[64]`` pixels in [0, 1]) that both the full-precision model ``f`` and its quantized copy
``q`` classify correctly as ``y``, find ``x'`` with ``||x' - x||_inf <= eps`` (and pixels kept in [0, 1]) such
that ``q(x') != y`` while ``f(x') == y``. Projected gradient ascent (signed steps, Madry et al.) on

    loss(x') = -margin_q(x') + min(margin_f(x'), kappa),   margin(z) = z_y - max_{j != y} z_j  (logits)

pushes the quantized model across its decision boundary while holding the full-precision one ``kappa`` inside
its own. The first step at which an example succeeds is kept.
"""

from __future__ import annotations

import torch
from torch import nn

DEFAULT_EPS = (0.01, 0.03, 0.05, 0.1)
DEFAULT_FORMATS = ("int8", "nf4", "int4-rtn", "int2-rtn")


def class_margin(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``z_y - max_{j != y} z_j`` per row of ``logits [n, classes]``; positive = correctly classified."""
    true = logits.gather(1, labels[:, None]).squeeze(1)
    others = logits.scatter(1, labels[:, None], float("-inf"))
    return true - others.max(dim=1).values


def boundary_pgd(original: nn.Module, quantized: nn.Module, images: torch.Tensor, labels: torch.Tensor,
                 eps: float, steps: int = 40, kappa: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """(perturbed images ``[n, 64]``, success mask ``[n]``) — see the module docstring.

    Images not classified correctly by both models at the start count as failures.
    """
    step = 2.5 * eps / steps
    with torch.no_grad():
        start_ok = (original(images).argmax(1) == labels) & (quantized(images).argmax(1) == labels)
    best, done = images.clone(), torch.zeros_like(labels, dtype=torch.bool)
    x = images.clone()
    for _ in range(steps):
        x.requires_grad_(True)
        logits_f, logits_q = original(x), quantized(x)
        success = start_ok & (logits_q.argmax(1) != labels) & (logits_f.argmax(1) == labels)
        fresh = success & ~done
        best[fresh], done = x.detach()[fresh], done | success
        loss = (-class_margin(logits_q, labels) + class_margin(logits_f, labels).clamp(max=kappa)).sum()
        (grad,) = torch.autograd.grad(loss, x)
        with torch.no_grad():
            x = torch.minimum(torch.maximum(x + step * grad.sign(), images - eps), images + eps).clamp(0, 1)
    with torch.no_grad():
        final = start_ok & (quantized(x).argmax(1) != labels) & (original(x).argmax(1) == labels) & ~done
        best[final], done = x[final], done | final
    return best, done


def boundary_table(model: nn.Module, images: torch.Tensor, labels: torch.Tensor,
                   formats: tuple[str, ...] = DEFAULT_FORMATS, eps_values: tuple[float, ...] = DEFAULT_EPS,
                   steps: int = 40) -> list[dict]:
    """Success rate per (format, eps) over the images both models classify correctly.

    Rows: ``{"format", "eps", "eligible", "flipped", "success_rate", "unquantized"}`` (``unquantized``: layers
    the format cannot store, left in full precision).
    """
    from compsec.survival.compress import compressed_copy

    rows = []
    for name in formats:
        quantized, notes = compressed_copy(model, name)
        with torch.no_grad():
            eligible = (model(images).argmax(1) == labels) & (quantized(images).argmax(1) == labels)
        for eps in eps_values:
            _, success = boundary_pgd(model, quantized, images, labels, eps, steps)
            rows.append({"format": name, "eps": eps, "eligible": int(eligible.sum()), "flipped": int(success.sum()),
                         "success_rate": round(float(success.sum()) / max(1, int(eligible.sum())), 4),
                         "unquantized": notes.get("unquantized", [])})
    return rows


def digits_boundary_search(out: str, formats: tuple[str, ...] = DEFAULT_FORMATS,
                           eps_values: tuple[float, ...] = DEFAULT_EPS, steps: int = 40, folder=None) -> dict:
    """Run :func:`boundary_table` on the held-out digits and write ``out/digits_boundary.json``; returns it."""
    import json
    from pathlib import Path

    from compsec.tiny.digits import digits_split, load_digits_classifier

    model = load_digits_classifier(folder)
    _, x_test, _, y_test = digits_split()
    result = {"steps": steps, "rows": boundary_table(model, x_test, y_test, formats, eps_values, steps)}
    path = Path(out) / "digits_boundary.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return result
