"""Throughput of exact preimages against bitsandbytes' own quantizer, and compact-box size.

Run: ``.venv/bin/python bench/bench_formats.py [--size 4096] [--repeats 3]``.  Prints, for one fp32 weight
matrix, bitsandbytes ``quantize_4bit`` (the yardstick), then compsec's ``quantize``, ``preimage`` and
``positions`` per format in M params/s with the time ratio to ``quantize_4bit`` measured in the same run, then
the compact box's bytes per parameter per storage dtype.

Formats with *verified* boxes (K-quants through llama.cpp, HQQ; ``--verified``) re-quantize many points of the box
with the real library, so they run on a smaller matrix (``--verified-size``) with its own ``quantize_4bit``
yardstick measured on that same matrix in the same run; the table adds, per storage dtype (fp32, fp16, bf16), how
much verification shrank the candidate box (level units -- K-quant sub-blocks, HQQ groups -- shrunk and pinned
whole, summed box width over the candidate's, the 10/50/90th percentiles of the per-unit verified/candidate width
ratio, the share of zero-width elements), how often fresh random points of the box change a group (not promised:
only the verified points are) and the compact box's bytes per parameter.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch

from compsec import formats

FORMATS = ("nf4", "fp4", "nf4-dq", "fp4-dq", "int8", "q8_0", "q4_0", "q4_1", "q5_0", "int8-rtn", "int4-rtn",
           "int2-rtn")
VERIFIED = ("q2_k", "q3_k", "q4_k", "q5_k", "q6_k", "hqq")


def best_seconds(fn: Callable[[], object], repeats: int) -> float:
    """Fastest of ``repeats`` timed calls after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def report(label: str, seconds: float, numel: int, yardstick: float) -> None:
    rate = numel / seconds / 1e6
    print(f"  {label:<28} {seconds * 1e3:9.1f} ms  {rate:8.1f} M params/s  {seconds / yardstick:6.2f}x quantize_4bit")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=4096, help="the weight matrix is size x size (fp32)")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats per measurement (best is kept)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: stable on a shared machine)")
    parser.add_argument("--formats", default=",".join(FORMATS), help="comma-separated registered format names")
    parser.add_argument("--no-compact", action="store_true", help="skip the compact-box size table")
    parser.add_argument("--verified", default=",".join(VERIFIED), help="formats with verified boxes ('' to skip)")
    parser.add_argument("--verified-size", type=int, default=1024, help="their matrix is this size squared")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    names = [n.strip() for n in args.formats.split(",") if n.strip()]

    import bitsandbytes.functional as bnb_functional

    w = torch.randn(args.size, args.size, generator=torch.Generator().manual_seed(0)) * 0.02
    numel = w.numel()
    print(f"weights: {args.size}x{args.size} fp32 ({numel / 1e6:.1f} M params), torch threads: "
          f"{torch.get_num_threads()}, best of {args.repeats}")
    yardstick = best_seconds(lambda: bnb_functional.quantize_4bit(w, blocksize=64, quant_type="nf4"), args.repeats)
    report("bnb quantize_4bit (nf4)", yardstick, numel, yardstick)
    for name in names:
        fmt = formats.get(name)
        print(f"{name}:")
        report("quantize", best_seconds(lambda fmt=fmt: fmt.quantize(w), args.repeats), numel, yardstick)
        report("preimage", best_seconds(lambda fmt=fmt: fmt.preimage(w), args.repeats), numel, yardstick)
        report("positions", best_seconds(lambda fmt=fmt: fmt.positions(w), args.repeats), numel, yardstick)
    verified_section([n.strip() for n in args.verified.split(",") if n.strip()], args.verified_size, args.repeats)
    if args.no_compact:
        return
    print("compact box (bytes/param; a Box costs 2 x storage itemsize):")
    for name in names:
        fmt = formats.get(name)
        sizes = []
        for storage in (torch.float32, torch.bfloat16):
            compact = fmt.compact_box(w.to(storage))
            sizes.append(f"{str(storage).removeprefix('torch.')} {compact.bytes_per_param:.4f}")
        print(f"  {name:<6} " + "  ".join(sizes))


def verified_section(names: list[str], size: int, repeats: int) -> None:
    """Throughput ratios and shrink statistics of the verified formats on a ``size`` x ``size`` fp32 matrix."""
    if not names:
        return
    import bitsandbytes.functional as bnb_functional

    w = torch.randn(size, size, generator=torch.Generator().manual_seed(0)) * 0.02
    numel = w.numel()
    print(f"verified boxes: {size}x{size} fp32 ({numel / 1e6:.2f} M params), best of {repeats}")
    yardstick = best_seconds(lambda: bnb_functional.quantize_4bit(w, blocksize=64, quant_type="nf4"), repeats)
    report("bnb quantize_4bit (nf4)", yardstick, numel, yardstick)
    for name in names:
        fmt = formats.get(name)
        print(f"{name}:")
        report("quantize", best_seconds(lambda fmt=fmt: fmt.quantize(w), repeats), numel, yardstick)
        report("candidate box", best_seconds(lambda fmt=fmt: fmt.candidate_box(w), repeats), numel, yardstick)
        report("preimage (verified)", best_seconds(lambda fmt=fmt: fmt.preimage(w), repeats), numel, yardstick)
        report("positions (verified)", best_seconds(lambda fmt=fmt: fmt.positions(w), repeats), numel, yardstick)
        for storage in (torch.float32, torch.float16, torch.bfloat16):
            x = w.to(storage)
            v = fmt.verified(x)
            zero = float((v.lo == v.hi).float().mean())
            ratios = v.width_ratios()
            p10, p50, p90 = torch.nanquantile(ratios, torch.tensor([0.1, 0.5, 0.9], dtype=ratios.dtype)).tolist()
            compact = fmt.compact_box(x)
            print(f"    {str(storage).removeprefix('torch.'):<9} units shrunk {v.shrunk_fraction:6.1%}  pinned whole "
                  f"{v.pinned_fraction:6.1%}  width vs candidate {v.relative_width:.2e} (units p10/p50/p90 "
                  f"{p10:.1e}/{p50:.1e}/{p90:.1e})  zero-width {zero:6.1%}  fresh points change "
                  f"{fresh_failures(fmt, x, v, storage):.3%} of groups  compact {compact.bytes_per_param:.3f} B/param")


def fresh_failures(fmt, x: torch.Tensor, v, storage: torch.dtype, seeds: int = 2) -> float:
    """Share of (group, point) pairs that change under random corners and interior points never tried during
    verification (only the verified points are promised)."""
    from compsec.formats import verify

    groups, _, _, check = fmt.candidate(x)
    rows = torch.arange(groups.shape[0])
    changed = total = 0
    for seed in range(seeds):
        for point in verify.points(v.lo, v.hi, storage, 10_000 + seed)[2:]:
            changed += int((~check(point, rows)).sum())
            total += rows.numel()
    return changed / max(total, 1)


if __name__ == "__main__":
    main()
