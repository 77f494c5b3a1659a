"""Widening the Gap on the tiny assistant: collapsed share per format (REAL libraries) before / after defences.

    PYTHONPATH=src .venv/bin/python bench/widen_gap_collapse.py [--layers 0] [--formats nf4,fp4,int8,q4_0,hqq]

Injects the published layout (:mod:`compsec.attack.widen_gap`: x100, random sign, every 32-block of every row)
into the quantizable weights of ``--layers`` and prints, per format, the share of the NON-outlier weights that the
format's reference library (bitsandbytes, gguf, hqq) quantizes to exactly zero: clean model, attacked, attacked
then group-clipped (zero / divide, :mod:`compsec.defend.group_clip`), attacked plus Gaussian noise (sigma = 1e-3),
and the adaptive attacker whose outliers sit just under the clip threshold (``0.99 * k * sigma`` of the group).
"""

from __future__ import annotations

import argparse
import time

import torch


def main() -> None:
    from compsec import formats
    from compsec.attack.widen_gap import collapsed_share, widen_gap
    from compsec.defend.group_clip import K_SIGMA, clip_group_outliers, group_sigma
    from compsec.models.io import load_model
    from compsec.models.linear import quantizable_weights
    from compsec.tiny.assistant import tiny_assistant_dir

    ap = argparse.ArgumentParser()
    ap.add_argument("--layers", default="0")
    ap.add_argument("--formats", default="nf4,fp4,int8,q4_0,hqq")
    args = ap.parse_args()
    layers = {int(i) for i in args.layers.split(",")}
    model, _ = load_model(tiny_assistant_dir())
    params = dict(model.named_parameters())
    weights = [params[q.name].detach().float() for q in quantizable_weights(model) if q.layer in layers]
    gen = torch.Generator().manual_seed(0)
    variants = {"clean": [], "attacked": [], "clip-zero": [], "clip-divide": [], "noise-1e-3": [], "adaptive": []}
    for w in weights:
        attacked, where = widen_gap(w, gen)
        sigma = group_sigma(w).reshape(-1)
        blocks = torch.arange(where.numel())
        adaptive = w.reshape(-1).clone()
        adaptive[where] = torch.sign(attacked.reshape(-1)[where]) * 0.99 * K_SIGMA * sigma[blocks]
        noisy = attacked + 1e-3 * torch.randn(w.shape, generator=gen)
        for key, value in (("clean", w), ("attacked", attacked), ("clip-zero", clip_group_outliers(attacked)[0]),
                           ("clip-divide", clip_group_outliers(attacked, "divide")[0]), ("noise-1e-3", noisy),
                           ("adaptive", adaptive.reshape(w.shape))):
            variants[key].append((value, where))
    print("| format | " + " | ".join(variants) + " | seconds |")
    print("|---" * (len(variants) + 2) + "|")
    for name in args.formats.split(","):
        fmt, start = formats.get(name), time.perf_counter()
        cells = []
        for pairs in variants.values():
            shares = [collapsed_share(v, fmt, where) for v, where in pairs]
            sizes = [v.numel() for v, _ in pairs]
            cells.append(f"{sum(s * n for s, n in zip(shares, sizes)) / sum(sizes):.1%}")
        print(f"| {name} | " + " | ".join(cells) + f" | {time.perf_counter() - start:.1f} |")


if __name__ == "__main__":
    main()
