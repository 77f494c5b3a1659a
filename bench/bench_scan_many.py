"""scan-many throughput on Ray against direct scans, and a paper estimate for 1 M model versions a day.

Writes ``--models`` small fp16 safetensors models (benign and nf4-planted, ``--shape``) into a temporary folder, then
times, in this order: ``scan_path`` on each in this process (the direct scan, the baseline), and
:func:`compsec.cluster.driver.scan_many` on a local Ray instance of 1 then 2 CPUs, each after a warm-up run that
starts the workers (Ray's start-up and the workers' imports are reported apart: paid once per worker, not per
model).  The machine is shared: the load average before and after each phase is printed with the figures.

    PYTHONPATH=src python bench/bench_scan_many.py --models 200

Output: one JSON object (models/s, params/s, per-model seconds, Ray overhead at 1 worker, speed-up at 2 workers,
cores needed for 1 M models a day at the measured per-model cost and at the cost of a sampled 1 B model from
``bench/bench_ranged_read.py`` when ``--ranged-s`` is given).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import torch
from safetensors.torch import save_file

DAY_S = 86_400


def write_models(folder: Path, count: int, shape: tuple[int, int]) -> list[str]:
    from compsec import formats
    from compsec.scan.synthetic import benign, pgd_repaired

    paths = []
    for index in range(count):
        gen = torch.Generator().manual_seed(index)
        w = benign(shape, "gaussian", torch.float16, gen)
        if index % 10 == 9:
            w = pgd_repaired(w, formats.get("nf4"), 0.4, gen)
        path = folder / f"m{index:04d}.safetensors"
        save_file({"model.layers.0.mlp.up_proj.weight": w}, str(path))
        paths.append(str(path))
    return paths


def direct(paths: list[str]) -> tuple[float, list[str]]:
    from compsec.scan import scan_path

    scan_path(paths[0])  # warm-up: lazy imports
    start = time.perf_counter()
    verdicts = [scan_path(path).verdict for path in paths]
    return time.perf_counter() - start, verdicts


def on_ray(paths: list[str], workers: int, out: Path) -> dict:
    import ray

    from compsec.cluster.config import ScanManyConfig
    from compsec.cluster.driver import OBJECT_STORE_BYTES, scan_many
    from compsec.cluster.table import ResultsTable

    run = ScanManyConfig(workers=workers)
    start = time.perf_counter()
    ray.init(num_cpus=workers, object_store_memory=OBJECT_STORE_BYTES, include_dashboard=False, log_to_driver=False)
    try:
        warm = time.perf_counter()
        scan_many(paths[:2 * workers], ResultsTable(out / f"warm{workers}"), run)  # starts and warms the workers
        timed = time.perf_counter()
        result = scan_many(paths, ResultsTable(out / f"run{workers}"), run)
        done = time.perf_counter()
    finally:
        ray.shutdown()
    return {"ray_start_s": round(warm - start, 2), "warm_up_s": round(timed - warm, 2), "seconds": done - timed,
            "verdicts": [row["verdict"] for row in sorted(result.written, key=lambda r: r["source"])]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=200)
    parser.add_argument("--shape", type=int, nargs=2, default=(128, 256))
    parser.add_argument("--ranged-s", type=float, default=None,
                        help="seconds of a sampled ranged scan of a 1 B model (bench_ranged_read.py's ranged_s)")
    args = parser.parse_args()
    params = args.shape[0] * args.shape[1]
    out = {"models": args.models, "params_per_model": params, "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="bench-scan-many-", dir="/tmp") as folder:
        paths = write_models(Path(folder), args.models, tuple(args.shape))
        out["load_before"] = os.getloadavg()
        direct_s, expected = direct(paths)
        out["load_after_direct"] = os.getloadavg()
        phases = {}
        for workers in (1, 2):
            phases[workers] = on_ray(paths, workers, Path(folder))
            out[f"load_after_{workers}w"] = os.getloadavg()
            if phases[workers].pop("verdicts") != expected:
                raise SystemExit(f"verdicts on Ray with {workers} worker(s) differ from the direct scans")
    out["direct"] = {"seconds": round(direct_s, 2), "models_per_s": args.models / direct_s,
                     "params_per_s": args.models * params / direct_s, "per_model_s": direct_s / args.models}
    for workers, phase in phases.items():
        phase |= {"models_per_s": args.models / phase["seconds"], "params_per_s": args.models * params / phase["seconds"],
                  "per_model_s": phase["seconds"] / args.models}
        out[f"ray_{workers}w"] = phase
    out["overhead_1w"] = phases[1]["seconds"] / direct_s - 1
    out["speedup_2w_vs_1w"] = phases[1]["seconds"] / phases[2]["seconds"]
    per_model_cpu_s = phases[1]["seconds"] / args.models
    out["cores_for_1M_per_day_at_this_size"] = 1e6 * per_model_cpu_s / DAY_S
    if args.ranged_s is not None:
        out["cores_for_1M_per_day_sampled_1B"] = 1e6 * (args.ranged_s + per_model_cpu_s) / DAY_S
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
