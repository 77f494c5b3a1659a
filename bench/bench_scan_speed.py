"""Full-coverage scan speed, before and after the single-pass tally kernel, against ``quantize_4bit`` in one run.

1. ``tensor``: a 4096x4096 fp16 tensor (``--rows`` of its rows scanned; the scan is linear in the weights).
   ``bitsandbytes.functional.quantize_4bit`` (NF4) on the whole tensor is the baseline, timed in the same run.
   The full-coverage scan of every default format (``TensorScan``: registry box, edge tallies, block outliers,
   evidence) is timed with the torch reference tally (``before``: ``compsec.scan.tally.edge_tally``) and with
   the numba kernel (``after``: ``compsec.scan.tally_kernel.single_pass_tally``).  Rates are weights examined
   per second; ratios are rate / quantize_4bit's rate, by wall clock and by process CPU time (the CPU ratio
   is robust to other processes on the machine; the load average is reported).
   ``stages``: where the time goes (CPU seconds per million weights) per format: box, tally before/after.
2. ``model``: a synthetic llama-shaped fp16 checkpoint of ``--params`` parameters written to a temp dir, scanned
   by ``compsec scan`` in a child process (wall, peak RSS), deleted (``bench_scan.whole_model``); the seconds
   for 1 B parameters are extrapolated linearly (``seconds_per_1e9``) when ``--params`` is smaller.

Usage: ``python bench/bench_scan_speed.py [--rows 64] [--params 2.5e7] [--skip-model] [--threads 1]``; JSON out.

Measured 2026-12-03, ``--rows 64 --skip-model`` (1 thread; 2 cores shared by 8 engineers, load average 30):
``quantize_4bit`` 25.5 M weights/s CPU (6.1 M/s wall).  Full coverage, 8 default formats: before 0.22 M/s CPU
(0.0088x ``quantize_4bit``; wall 0.0081x), after 0.51 M/s CPU (0.020x; wall 0.018x).  CPU seconds per million
weights, summed over the 8 formats: tally 2.44 -> 0.36 (6.8x), registry box 1.29 (now 2/3 of the scan; the
K-quants' fixed-scale boxes 0.70 of it): the 3x goal needs boxes ~100x faster, not done.  Model, ``--rows 64
--params 1e7`` (one llama layer at hidden 2048: 51.4 M fp16 parameters, an earlier commit of the same kernel,
load ~20-30): ``compsec scan`` 1011 s, clean, every weight examined, peak RSS 979 MB; ~5.5 h per 1 B at that
load (about 33 CPU-minutes by the CPU rate above).
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch
from bench_scan import bnb_quantize_4bit_seconds, whole_model

from compsec import formats
from compsec.scan import ScanConfig, synthetic
from compsec.scan.scan_boxes import scan_box
from compsec.scan.tally import edge_tally
from compsec.scan.tally_kernel import single_pass_tally
from compsec.scan.tensor_plan import start_tensor


def _clocks(fn) -> tuple[float, float]:
    """(wall, CPU) seconds of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def full_scan(part: torch.Tensor, cfg: ScanConfig, tally) -> tuple[float, float]:
    """(wall, CPU) seconds of the full-coverage scan of ``part`` for every default format with ``tally``."""

    def run():
        scan, _ = start_tensor("w", part, tuple(part.shape), [formats.get(n) for n in cfg.format_names()], [], cfg)
        scan.tally = tally
        scan.add(part)
        scan.evidence()

    return _clocks(run)


def stages(part: torch.Tensor, cfg: ScanConfig) -> dict:
    """CPU seconds per million weights, per format: registry box, reference tally, kernel tally."""
    out, million = {}, part.numel() / 1e6
    for name in cfg.format_names():
        fmt = formats.get(name)
        box_s = _clocks(lambda fmt=fmt: scan_box(fmt, part))[1]
        box = scan_box(fmt, part)
        before = _clocks(lambda box=box: edge_tally(part, box.lo, box.hi, cfg.eps))[1]
        after = _clocks(lambda box=box: single_pass_tally(part, box.lo, box.hi, cfg.eps))[1]
        out[name] = {"box": box_s / million, "tally_before": before / million, "tally_after": after / million}
    return out


def tensor_speed(rows: int, cfg: ScanConfig) -> dict:
    from bitsandbytes.functional import quantize_4bit

    w = synthetic.benign((4096, 4096), "gaussian", torch.float16, torch.Generator().manual_seed(0))
    part = w[:rows].contiguous()
    full_scan(part[:8], cfg, single_pass_tally)  # warm-up: numba cache load, llama.cpp, lazy imports
    full_scan(part[:8], cfg, edge_tally)
    bnb_wall = bnb_quantize_4bit_seconds(w)  # best of 3 after a warm-up
    bnb_cpu = min(_clocks(lambda: quantize_4bit(w, blocksize=64, quant_type="nf4"))[1] for _ in range(3))
    out = {"load_average_before": os.getloadavg()[0], "rows": rows, "weights": part.numel(),
           "quantize_4bit_weights_per_s": {"wall": w.numel() / bnb_wall, "cpu": w.numel() / bnb_cpu}}
    for label, tally in (("before", edge_tally), ("after", single_pass_tally)):
        wall, cpu = full_scan(part, cfg, tally)
        rate = {"wall": part.numel() / wall, "cpu": part.numel() / cpu}
        out[label] = {"weights_per_s": rate, **{f"vs_quantize_4bit_{k}": rate[k] / out["quantize_4bit_weights_per_s"][k]
                                                for k in rate}}
    out["stages_cpu_s_per_million"] = stages(part, cfg)
    out["load_average_after"] = os.getloadavg()[0]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=64, help="rows of the 4096x4096 tensor scanned")
    parser.add_argument("--params", type=float, default=2.5e7, help="size of the synthetic checkpoint")
    parser.add_argument("--skip-model", action="store_true", help="only the single-tensor benchmark")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cfg = ScanConfig()
    result = {"threads": args.threads, "formats": cfg.format_names(), "tensor": tensor_speed(args.rows, cfg)}
    if not args.skip_model:
        model = whole_model(args.params, args.threads)
        model["seconds_per_1e9"] = model["scan_seconds"] * 1e9 / model["params"]
        result["model"] = model
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
