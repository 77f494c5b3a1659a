"""Throughput of exact preimages against bitsandbytes' own quantizer, and compact-box size.

Run: ``.venv/bin/python bench/bench_formats.py [--size 4096] [--repeats 3]``.  Prints, for one fp32 weight
matrix, bitsandbytes ``quantize_4bit`` (the yardstick), then compsec's ``quantize``, ``preimage`` and
``positions`` per format in M params/s with the time ratio to ``quantize_4bit`` measured in the same run, then
the compact box's bytes per parameter per storage dtype.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch

from compsec import formats

FORMATS = ("nf4", "fp4", "int8", "q8_0", "q4_0", "q4_1", "q5_0", "int8-rtn", "int4-rtn", "int2-rtn")


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


if __name__ == "__main__":
    main()
