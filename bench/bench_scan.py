"""Benchmark of ``compsec scan``.

1. Per format, on one 4096x4096 fp16 tensor: exact positions throughput (positions in the scanning box of
   :mod:`compsec.scan.scan_boxes`, K-quants' fixed-scale box included; weights/s, measured on ``--rows`` rows and
   extrapolated) and the scanner's effective throughput (parameters covered per second with the default
   row sample), each as a ratio to ``bitsandbytes.functional.quantize_4bit`` (NF4) on the whole tensor, timed in
   the same run.
2. A synthetic llama-shaped fp16 checkpoint of ``--params`` parameters (default 1e9, ~2 GB) written to a temp
   dir, scanned for the default formats, then deleted.

3. ``--detection N``: detection figures on a synthetic corpus of N seeds per (format, dtype, distribution) of
   4096-weight tensors: false-alarm rate on benign tensors, detection rate on PGD-repaired ones (20 %, 5 %, 2 %
   of weights moved within 1 % of an edge), on adaptive ones (``shrunk_0.1``: weights within 10 % of an edge
   clamped onto the shrunk edge; ``random_margin_0.2``: 20 % of weights spread within 20 % of an edge) and on
   outlier injection (1 % and 10 % of blocks), each test judged at p <= 1e-3 with the detectors' effect floors
   (no multiple-testing correction: a per-test rate).  ``CASE`` counts the edge-mass test alone,
   ``CASE:any_edge_test`` any of edge-mass, edge-depletion and edge-band.

``--keep DIR`` writes the checkpoint to DIR and keeps it (reused when present: rerun the scan without rewriting
2 GB); ``--threads N`` sets torch's intra-op threads (on a shared, loaded 2-core machine 1 thread was 3-5x
faster than 2: waiting for a descheduled second thread costs milliseconds per operation).

Usage: ``python bench/bench_scan.py [--params 1e9] [--rows 16] [--skip-model] [--detection 20] [--keep DIR]
[--threads N]``; prints JSON.

Measured 2026-11-25, 1 B params (133 tensors, 681 k weights examined), same run each, before -> after the
provenance batching and prefilter and the scipy.special tails: quiet moment (load ~1): 6.1 s -> 2.4 s inside
``scan_path`` (2 threads), ``compsec scan`` wall time 8.5 s -> 3.7 s; loaded (load ~9-10): 1 thread 47.6 s ->
12.6 s, 2 threads 141.8 s -> 27.8 s.  Where the 2.4 s go (quiet): the edge tests 1.5 s (edge-mass 0.8, edge-band
0.7), boxes 0.5 s, block outliers 0.3 s (mostly importing scipy.special), provenance 0.1 s; reading the sampled
rows is negligible.

With q4_k, q5_k and q6_k in the default formats (fixed-scale boxes through llama.cpp on the sampled rows; load ~4,
1 thread, same warm run): 1 B params 5.8 s (old defaults) -> 10.2 s (12.9 s cold); per format on the 4096x4096
tensor the sampled scan covered parameters 108-112x faster than ``quantize_4bit`` for q4_k/q5_k/q6_k, 66-121x for
the others (bitsandbytes at 11 M params/s on the loaded machine); ``--detection 10``: 0/60 benign K-quant tensors
flagged by any edge test.  After the position-spike test was added (quiet moment, load ~1.4, 1 thread):
1 B params 4.5 s for the 8 default formats (2.8 s for the old 5); per format, with ``quantize_4bit`` at 31 M
params/s in the same run: sampled scan 71x (int8), 102x (nf4), 103x (fp4), 85x (q4_0), 91x (q8_0), 88x (q4_k),
92x (q5_k), 98x (q6_k); positions of every weight 0.10-0.31x.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import torch

from compsec import formats
from compsec.scan import ScanConfig, scan_path
from compsec.scan.scan_boxes import scan_positions
from compsec.scan.tensor_scan import scan_batch


def _timed(fn, repeat: int = 1) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def bnb_quantize_4bit_seconds(w: torch.Tensor) -> float:
    import bitsandbytes.functional as bnbf

    bnbf.quantize_4bit(w[:64], blocksize=64, quant_type="nf4")  # warm-up
    return _timed(lambda: bnbf.quantize_4bit(w, blocksize=64, quant_type="nf4"), repeat=3)


def per_format(w: torch.Tensor, rows: int, cfg: ScanConfig) -> dict:
    """Throughputs on the 4096x4096 tensor ``w`` for every checked format."""
    bnb_s = bnb_quantize_4bit_seconds(w)
    bnb_rate = w.numel() / bnb_s
    out = {"bnb_quantize_4bit_s": bnb_s, "bnb_quantize_4bit_weights_per_s": bnb_rate, "formats": {}}
    candidates = [formats.get(name) for name in formats.names()]
    for name in cfg.format_names():
        fmt = formats.get(name)
        scan_positions(fmt, w[:1])  # warm-up (a K-quant's first call loads llama.cpp)
        exact_s = _timed(lambda fmt=fmt: scan_positions(fmt, w[:rows]))
        exact_rate = rows * w.shape[1] / exact_s
        sample = w[: max(1, cfg.sample_weights // w.shape[1])]
        scan_once = lambda fmt=fmt, sample=sample: scan_batch([("w", sample, True)], [fmt], candidates, cfg)
        scan_once()  # warm-up: the first format checked used to carry every lazy import (int8 looked 25x slower)
        scan_s = _timed(scan_once, repeat=3)
        out["formats"][name] = {
            "exact_positions_weights_per_s": exact_rate, "exact_vs_quantize_4bit": exact_rate / bnb_rate,
            "scan_seconds_per_tensor": scan_s, "scan_params_per_s": w.numel() / scan_s,
            "scan_vs_quantize_4bit": (w.numel() / scan_s) / bnb_rate,
        }
    return out


def llama_shapes(params: float, hidden: int = 2048, inter: int = 5632) -> dict[str, tuple[int, int]]:
    """Linear weights of a llama-like model with about ``params`` parameters (whole layers)."""
    per_layer = 4 * hidden * hidden + 3 * hidden * inter
    shapes = {}
    for i in range(max(1, round(params / per_layer))):
        for part in ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj"):
            shapes[f"model.layers.{i}.{part}.weight"] = (hidden, hidden)
        shapes[f"model.layers.{i}.mlp.gate_proj.weight"] = (inter, hidden)
        shapes[f"model.layers.{i}.mlp.up_proj.weight"] = (inter, hidden)
        shapes[f"model.layers.{i}.mlp.down_proj.weight"] = (hidden, inter)
    return shapes


def synthetic_model(params: float, folder: Path) -> int:
    """Write the fp16 checkpoint and config.json; returns the parameter count."""
    from safetensors.torch import save_file

    gen = torch.Generator().manual_seed(0)
    tensors = {name: (torch.randn(shape, generator=gen) * 0.02).half() for name, shape in
               llama_shapes(params).items()}
    (folder / "config.json").write_text(json.dumps({"model_type": "llama"}))
    save_file(tensors, str(folder / "model.safetensors"))
    return sum(t.numel() for t in tensors.values())


def whole_model(params: float, cfg: ScanConfig, keep: str | None = None) -> dict:
    folder = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="compsec-bench-"))
    try:
        start = time.perf_counter()
        if keep and (folder / "model.safetensors").is_file():
            count = sum(n for _, n in _tensor_sizes(folder / "model.safetensors"))
        else:
            folder.mkdir(parents=True, exist_ok=True)
            count = synthetic_model(params, folder)
        write_s = time.perf_counter() - start
        report = scan_path(folder, cfg)
        return {"params": count, "file_gb": (folder / "model.safetensors").stat().st_size / 1e9,
                "write_seconds": write_s, "scan_seconds": report.seconds, "verdict": report.verdict,
                "tensors": report.tensors_scanned, "weights_examined": report.weights_examined,
                "formats": report.formats_checked}
    finally:
        if not keep:
            shutil.rmtree(folder, ignore_errors=True)


def _tensor_sizes(path: Path) -> list[tuple[str, int]]:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        return [(name, handle.get_slice(name).get_shape()[0] * handle.get_slice(name).get_shape()[1])
                for name in handle.keys()]  # noqa: SIM118


def detection_rates(seeds: int, cfg: ScanConfig) -> dict:
    """Per format: benign false-alarm rate and detection rates (see the module docstring, item 3)."""
    from compsec.scan import synthetic
    from compsec.scan.block_outliers import block_outlier_test
    from compsec.scan.blocks import block_size_of
    from compsec.scan.edge_band import edge_band_test
    from compsec.scan.edge_mass import edge_mass_test
    from compsec.scan.scan_boxes import batched_boxes, depletion_testable, fixed_scale

    def hit(r) -> bool:
        return r.p_value is not None and r.p_value <= 1e-3 and r.odds_ratio >= cfg.min_odds_ratio

    def any_edge_hit(w, lo, hi, fmt) -> bool:  # edge-depletion only where its null holds (not for K-quants)
        r, band = edge_mass_test(w, lo, hi, cfg.eps), edge_band_test(w, lo, hi)
        depleted = depletion_testable(fmt) and r.depletion_p is not None and r.depletion_p <= 1e-3 and r.edge_ratio <= cfg.max_edge_ratio
        crowded = band.p_value is not None and band.p_value <= 1e-3 and band.ratio >= cfg.min_band_ratio
        return hit(r) or depleted or crowded

    out, gen = {}, torch.Generator().manual_seed(0)
    for name in cfg.format_names():
        fmt, counts = formats.get(name), {}
        for dtype in (torch.float32, torch.float16, torch.bfloat16):
            for dist in ("gaussian", "laplace"):
                benign = [synthetic.benign((8, 512), dist, dtype, gen) for _ in range(seeds)]
                cases = {"benign": benign}
                # K-quants: llama.cpp re-scales synthetic repairs, so only the false-alarm rate is measured here
                # (a repair that keeps the scales: tests/scan/test_kquant_scan.py)
                for fraction in () if fixed_scale(fmt) else (0.2, 0.05, 0.02):
                    cases[f"repaired_{fraction}"] = [synthetic.pgd_repaired(w, fmt, fraction, gen) for w in benign]
                if not fixed_scale(fmt):
                    cases["shrunk_0.1"] = [synthetic.shrunk_repaired(w, fmt, 0.1, gen) for w in benign]
                    cases["random_margin_0.2"] = [synthetic.pgd_repaired(w, fmt, 0.2, gen, eps=0.2) for w in benign]
                for case, tensors in cases.items():
                    boxes = batched_boxes(fmt, tensors)
                    flags = [hit(edge_mass_test(w, lo, hi, cfg.eps)) for w, (lo, hi) in zip(tensors, boxes)]
                    counts.setdefault(case, []).extend(flags)
                    counts.setdefault(f"{case}:any_edge_test", []).extend(
                        any_edge_hit(w, lo, hi, fmt) for w, (lo, hi) in zip(tensors, boxes))
                size = block_size_of(fmt, 512)
                for case, tensors in (("outliers_benign", benign),
                                      ("outliers_1pct", [synthetic.outlier_injected(w, size, 0.01, gen) for w in benign]),
                                      ("outliers_10pct", [synthetic.outlier_injected(w, size, 0.1, gen) for w in benign])):
                    results = [block_outlier_test(w, size, cfg.ratio_threshold) for w in tensors]
                    counts.setdefault(case, []).extend(
                        r.p_value is not None and r.p_value <= 1e-3 and r.exceeding >= cfg.min_outlier_blocks
                        for r in results)
        out[name] = {case: sum(flags) / len(flags) for case, flags in counts.items()}
        out[name]["tensors_per_case"] = len(counts["benign"])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=float, default=1e9, help="size of the synthetic checkpoint")
    parser.add_argument("--rows", type=int, default=16, help="rows of the 4096x4096 tensor for exact positions")
    parser.add_argument("--skip-model", action="store_true", help="only the per-format tensor benchmark")
    parser.add_argument("--skip-tensor", action="store_true", help="skip the 4096x4096 per-format benchmark")
    parser.add_argument("--detection", type=int, default=0, help="seeds per case for detection rates (0: skip)")
    parser.add_argument("--keep", help="write the checkpoint to this folder and keep it (reused when present)")
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = ScanConfig()
    w = (torch.randn(4096, 4096, generator=torch.Generator().manual_seed(0)) * 0.02).half()
    result = {"threads": torch.get_num_threads()}
    if not args.skip_tensor:
        result["tensor"] = per_format(w, args.rows, cfg)
    if args.detection:
        result["detection"] = detection_rates(args.detection, cfg)
    if not args.skip_model:
        result["model"] = whole_model(args.params, cfg, args.keep)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
