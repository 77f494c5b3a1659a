"""Full-coverage scan speed, reference path against the compiled kernels, against ``quantize_4bit`` in one run.

1. ``tensor``: a 4096x4096 fp16 tensor (``--rows`` of its rows scanned; the scan is linear in the weights).
   ``bitsandbytes.functional.quantize_4bit`` (NF4) on the whole tensor is the baseline, timed in the same run.
   The full-coverage scan of every default format (``TensorScan``: box, edge tallies, block outliers, evidence)
   is timed three ways: ``reference`` (registry boxes ``scan_box`` + torch tally ``edge_tally``),
   ``tally_kernel`` (registry boxes + numba tally: the state before the box kernels), ``kernels`` (numba
   boxes ``kernel_scan_box`` + numba tally) and ``kernels_2_threads`` (the same, formats on 2 threads: only
   the wall rate can gain).  Rates are weights examined per second; ratios are rate /
   quantize_4bit's rate, by wall clock and by process CPU time (robust to other processes; the load average
   is reported).  ``projected_1e9_fp16_s``: seconds for 1 B weights at each rate (the scan is linear).
   ``stages``: CPU seconds per million weights per format: box (registry / kernel), tally (torch / kernel).
   ``compile``: seconds to first use of the kernels in a fresh interpreter with an empty numba cache (compiling)
   and with the filled cache (``cache=True``: loading), on an 8-row tensor.
2. ``model``: a synthetic llama-shaped fp16 checkpoint of ``--params`` parameters written to a temp dir, scanned
   by ``compsec scan`` in a child process (wall, peak RSS), deleted (``bench_scan.whole_model``); the seconds
   for 1 B parameters are extrapolated linearly (``seconds_per_1e9``) when ``--params`` is smaller.

Usage: ``python bench/bench_scan_speed.py [--rows 64] [--params 2.5e7] [--skip-model] [--skip-compile]
[--threads 1]``; JSON out.

Measured 2026-12-03, ``--rows 64 --skip-model`` (1 torch thread; 2 cores shared by 6 engineers, load average
13-14): ``quantize_4bit`` 24.3 M weights/s CPU (8.0 M/s wall).  Full coverage, 8 default formats, by CPU rate:
reference 0.24 M/s (0.0097x ``quantize_4bit``), tally kernel 0.58 M/s (0.024x), kernels 0.68 M/s (0.028x; 2.9x
the reference, 1.18x the tally kernel), kernels on 2 threads 0.033x by wall (0.030x on 1; the machine had no free
core).  CPU seconds per million weights summed over the 8 formats: box 1.63 (registry) -> 0.94 (kernels), tally
3.26 (torch) -> 0.47 (kernel); of the 0.94, the three K-quants take 0.55 (llama.cpp's own scale search about a
third of it).  1e9 fp16 weights at these rates: ~1,460 CPU-s, ~4,200 s wall.  First use with an empty numba cache
47 s (compiles every kernel), 4 s with the filled cache.  Goal (>= 3x ``quantize_4bit``, 1 B in <= 60 s) not met:
~100x short.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import torch
from bench_scan import bnb_quantize_4bit_seconds, whole_model

from compsec import formats
from compsec.scan import ScanConfig, synthetic
from compsec.scan.kernel_boxes import kernel_scan_box
from compsec.scan.scan_boxes import scan_box
from compsec.scan.tally import edge_tally
from compsec.scan.tally_kernel import single_pass_tally
from compsec.scan.tensor_plan import start_tensor


def _clocks(fn) -> tuple[float, float]:
    """(wall, CPU) seconds of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


PATHS = {"reference": (scan_box, edge_tally, 1), "tally_kernel": (scan_box, single_pass_tally, 1),
         "kernels": (kernel_scan_box, single_pass_tally, 1), "kernels_2_threads": (kernel_scan_box, single_pass_tally, 2)}


def full_scan(part: torch.Tensor, cfg: ScanConfig, box, tally, workers: int = 1) -> tuple[float, float]:
    """(wall, CPU) seconds of the full-coverage scan of ``part`` for every default format with ``box``/``tally``,
    formats counted on ``workers`` threads."""

    def run():
        scan, _ = start_tensor("w", part, tuple(part.shape), [formats.get(n) for n in cfg.format_names()], [], cfg)
        scan.box, scan.tally, scan.workers = box, tally, workers
        scan.add(part)
        scan.evidence()

    return _clocks(run)


def stages(part: torch.Tensor, cfg: ScanConfig) -> dict:
    """CPU seconds per million weights, per format: registry and kernel box, reference and kernel tally."""
    out, million = {}, part.numel() / 1e6
    for name in cfg.format_names():
        fmt = formats.get(name)
        box_ref = _clocks(lambda fmt=fmt: scan_box(fmt, part))[1]
        box_kernel = _clocks(lambda fmt=fmt: kernel_scan_box(fmt, part))[1]
        box = kernel_scan_box(fmt, part)
        before = _clocks(lambda box=box: edge_tally(part, box.lo, box.hi, cfg.eps))[1]
        after = _clocks(lambda box=box: single_pass_tally(part, box.lo, box.hi, cfg.eps))[1]
        out[name] = {"box_registry": box_ref / million, "box_kernel": box_kernel / million,
                     "tally_torch": before / million, "tally_kernel": after / million}
    return out


_FIRST_USE = """
import time, torch
t = time.perf_counter()
from compsec.scan import ScanConfig, synthetic
from compsec.scan.tensor_plan import start_tensor
from compsec import formats
cfg = ScanConfig()
w = synthetic.benign((8, 4096), "gaussian", torch.float16, torch.Generator().manual_seed(0))
scan, _ = start_tensor("w", w, tuple(w.shape), [formats.get(n) for n in cfg.format_names()], [], cfg)
scan.add(w)
print(time.perf_counter() - t)
"""


def compile_seconds() -> dict:
    """Seconds to the first scanned chunk in a fresh interpreter: numba cache empty (compiles every kernel), then
    filled by that run (loads them)."""
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        runs = [float(subprocess.run([sys.executable, "-c", _FIRST_USE], env=env, check=True, capture_output=True,
                                     text=True).stdout.split()[-1]) for _ in range(2)]
    return {"cold_cache_s": runs[0], "warm_cache_s": runs[1]}


def tensor_speed(rows: int, cfg: ScanConfig) -> dict:
    from bitsandbytes.functional import quantize_4bit

    w = synthetic.benign((4096, 4096), "gaussian", torch.float16, torch.Generator().manual_seed(0))
    part = w[:rows].contiguous()
    for path in PATHS.values():  # warm-up: numba cache load, llama.cpp, lazy imports
        full_scan(part[:8], cfg, *path)
    bnb_wall = bnb_quantize_4bit_seconds(w)  # best of 3 after a warm-up
    bnb_cpu = min(_clocks(lambda: quantize_4bit(w, blocksize=64, quant_type="nf4"))[1] for _ in range(3))
    base = {"wall": w.numel() / bnb_wall, "cpu": w.numel() / bnb_cpu}
    out = {"load_average_before": os.getloadavg()[0], "rows": rows, "weights": part.numel(),
           "quantize_4bit_weights_per_s": base}
    for label, path in PATHS.items():
        wall, cpu = full_scan(part, cfg, *path)
        rate = {"wall": part.numel() / wall, "cpu": part.numel() / cpu}
        out[label] = {"weights_per_s": rate, **{f"vs_quantize_4bit_{k}": rate[k] / base[k] for k in rate},
                      **{f"projected_1e9_fp16_s_{k}": 1e9 / rate[k] for k in rate}}
    out["kernels_vs_reference_cpu"] = out["kernels"]["weights_per_s"]["cpu"] / out["reference"]["weights_per_s"]["cpu"]
    out["kernels_vs_tally_kernel_cpu"] = (out["kernels"]["weights_per_s"]["cpu"]
                                          / out["tally_kernel"]["weights_per_s"]["cpu"])
    out["stages_cpu_s_per_million"] = stages(part, cfg)
    out["load_average_after"] = os.getloadavg()[0]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=64, help="rows of the 4096x4096 tensor scanned")
    parser.add_argument("--params", type=float, default=2.5e7, help="size of the synthetic checkpoint")
    parser.add_argument("--skip-model", action="store_true", help="only the single-tensor benchmark")
    parser.add_argument("--skip-compile", action="store_true", help="skip the first-use (numba compile) timing")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cfg = ScanConfig()
    result = {"threads": args.threads, "formats": cfg.format_names(), "tensor": tensor_speed(args.rows, cfg)}
    if not args.skip_compile:
        result["compile"] = compile_seconds()
    if not args.skip_model:
        model = whole_model(args.params, args.threads)
        model["seconds_per_1e9"] = model["scan_seconds"] * 1e9 / model["params"]
        result["model"] = model
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
