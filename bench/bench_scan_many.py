"""scan-many throughput on Ray against direct scans, and a paper estimate for 1 M model versions a day.

Writes ``--models`` small fp16 safetensors models (benign and nf4-planted, ``--shape``) into a temporary folder, then
times on the SAME models, every phase with the SAME torch thread count per scanning process (``--threads``, default
1: one Ray worker holds one CPU):

- ``direct``: ``scan_path`` on each model in this process (what ``compsec scan`` does per model; the baseline);
- ``task_in_process``: :func:`compsec.cluster.task.scan_one` in this process (the scan-many per-model function
  without Ray: digest, deadline, memory ceiling) -- so the overhead splits into the task's and Ray's;
- ``ray_1w`` / ``ray_2w``: :func:`compsec.cluster.driver.scan_many` on a local Ray instance of 1 / 2 CPUs, with
  ``--batch`` models per Ray task (default 0: scan-many's default, sized from the measured seconds per model);
- ``ray_1w_batch1`` / ``ray_2w_batch1``: the same with one model per Ray task (``compsec scan-many --batch 1``).

Each phase is timed ``--repeats`` times and its fastest run is used (on a shared machine noise only adds time);
warm-ups (lazy imports, Ray start-up and the workers' imports: paid once per worker, not per model) are excluded
from the timed runs and reported apart, with the load average.  The ratios come from this one run:

    PYTHONPATH=src python bench/bench_scan_many.py --models 200     # under 5 min on a quiet 2-core machine

Output: one JSON object: per phase models/s, params/s, per-model seconds; ``overhead_1w`` (ray_1w / direct - 1,
goal <= 0.10), ``speedup_2w`` (direct / ray_2w, goal >= 1.7 on 2 cores), the same two for one model per task
(``overhead_1w_batch1``, ``speedup_2w_batch1``) and ``speedup_2w_vs_1w``; the cores
(and 32-core nodes) needed for 1 M models a day at the measured per-model cost, and at the cost of a sampled
1 B model from ``bench/bench_ranged_read.py`` when ``--ranged-s`` is given.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
import time
from pathlib import Path

import torch
from safetensors.torch import save_file

DAY_S = 86_400
NODE_CORES = 32
GOALS = {"overhead_1w": 0.10, "speedup_2w": 1.7}


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


def fastest(run, repeats: int) -> tuple[float, list[float], object]:
    """``run()`` timed ``repeats`` times: (fastest seconds, every time, the last result)."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - start)
    return min(times), [round(t, 3) for t in times], result


def in_process(paths: list[str], repeats: int, per_model) -> dict:
    per_model(paths[0])  # warm-up: lazy imports, numba compilation
    best, times, verdicts = fastest(lambda: [per_model(p) for p in paths], repeats)
    return {"seconds": best, "times": times, "verdicts": verdicts}


def on_ray(paths: list[str], workers: int, threads: int, repeats: int, out: Path, batch: int) -> dict:
    import ray

    from compsec.cluster.config import ScanManyConfig
    from compsec.cluster.driver import scan_many
    from compsec.cluster.session import OBJECT_STORE_BYTES
    from compsec.cluster.table import ResultsTable

    run, tables = ScanManyConfig(workers=workers, batch=batch), iter(range(repeats + 1))
    start = time.perf_counter()
    ray.init(address="local", num_cpus=workers, object_store_memory=OBJECT_STORE_BYTES, include_dashboard=False,
             log_to_driver=False, runtime_env={"env_vars": thread_env(threads)})
    try:
        warm = time.perf_counter()
        warm_models = paths[:2 * workers * max(batch, 1)]
        scan_many(warm_models, ResultsTable(out / f"warm{workers}-{batch}"), run)  # starts Ray, warms the workers
        worker_threads = ray.get(ray.remote(num_cpus=1)(torch_threads).remote())
        timed = time.perf_counter()
        best, times, result = fastest(lambda: scan_many(paths, ResultsTable(out / f"run{workers}-{batch}-{next(tables)}"),
                                                        run), repeats)
    finally:
        ray.shutdown()
    return {"seconds": best, "times": times, "ray_start_s": round(warm - start, 2),
            "warm_up_s": round(timed - warm, 2), "worker_threads": worker_threads,
            "verdicts": [row["verdict"] for row in sorted(result.written, key=lambda r: r["source"])]}


def torch_threads() -> int:
    return torch.get_num_threads()


def thread_env(threads: int) -> dict[str, str]:
    return {name: str(threads) for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")}


def rates(seconds: float, models: int, params: int) -> dict:
    return {"models_per_s": models / seconds, "params_per_s": models * params / seconds,
            "per_model_s": seconds / models}


def cluster_estimate(core_s_per_model: float, extra_s: float = 0.0) -> dict:
    """Cores (and 32-core nodes) that vet 1 M models a day at ``core_s_per_model`` (+ ``extra_s``) each."""
    cores = 1e6 * (core_s_per_model + extra_s) / DAY_S
    return {"core_s_per_model": core_s_per_model + extra_s, "cores": cores,
            "nodes_32_cores": math.ceil(cores / NODE_CORES)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=200)
    parser.add_argument("--shape", type=int, nargs=2, default=(128, 256))
    parser.add_argument("--threads", type=int, default=1, help="torch threads of every scanning process")
    parser.add_argument("--repeats", type=int, default=1, help="timed runs per phase (the fastest is used)")
    parser.add_argument("--batch", type=int, default=0,
                        help="models per Ray task of the ray_1w / ray_2w phases (0: scan-many's automatic size)")
    parser.add_argument("--ranged-s", type=float, default=None,
                        help="seconds of a sampled ranged scan of a 1 B model (bench_ranged_read.py's ranged_s)")
    args = parser.parse_args()
    began = time.perf_counter()
    os.environ.update(thread_env(args.threads))  # numba (imported later) and Ray's workers read these
    torch.set_num_threads(args.threads)
    params = args.shape[0] * args.shape[1]
    out = {"models": args.models, "params_per_model": params, "cpus": os.cpu_count(), "threads": args.threads,
           "repeats": args.repeats, "load_before": os.getloadavg()}
    with tempfile.TemporaryDirectory(prefix="bench-scan-many-", dir="/tmp") as folder:
        phases = measure(write_models(Path(folder), args.models, tuple(args.shape)), args, Path(folder), out)
    for name, phase in phases.items():
        out[name] = {**phase, **rates(phase["seconds"], args.models, params)}
    direct_s = phases["direct"]["seconds"]
    out["overhead_1w"] = phases["ray_1w"]["seconds"] / direct_s - 1
    out["overhead_1w_of_the_task"] = phases["task_in_process"]["seconds"] / direct_s - 1
    out["speedup_2w"] = direct_s / phases["ray_2w"]["seconds"]
    out["speedup_2w_vs_1w"] = phases["ray_1w"]["seconds"] / phases["ray_2w"]["seconds"]
    out["overhead_1w_batch1"] = phases["ray_1w_batch1"]["seconds"] / direct_s - 1
    out["speedup_2w_batch1"] = direct_s / phases["ray_2w_batch1"]["seconds"]
    out["goals_met"] = {"overhead_1w <= 0.10": out["overhead_1w"] <= GOALS["overhead_1w"],
                        "speedup_2w >= 1.7": out["speedup_2w"] >= GOALS["speedup_2w"]}
    per_model = phases["ray_1w"]["seconds"] / args.models  # one worker = one core
    out["for_1M_models_per_day"] = cluster_estimate(per_model)
    if args.ranged_s is not None:
        out["for_1M_models_per_day_sampled_1B"] = cluster_estimate(per_model, args.ranged_s)
    out["bench_seconds"] = round(time.perf_counter() - began, 1)
    print(json.dumps(out, indent=1))


def measure(paths: list[str], args, folder: Path, out: dict) -> dict:
    """Every phase on ``paths``, verdicts checked against the direct scans'."""
    from compsec.cluster.config import ScanManyConfig
    from compsec.cluster.task import scan_one
    from compsec.scan import scan_path

    run = ScanManyConfig()
    phases = {"direct": in_process(paths, args.repeats, lambda p: scan_path(p).verdict),
              "task_in_process": in_process(paths, args.repeats, lambda p: scan_one(p, run)["verdict"])}
    out["load_after_in_process"] = os.getloadavg()
    for workers in (1, 2):
        phases[f"ray_{workers}w"] = on_ray(paths, workers, args.threads, args.repeats, folder, args.batch)
        phases[f"ray_{workers}w_batch1"] = on_ray(paths, workers, args.threads, args.repeats, folder, 1)
        out[f"load_after_{workers}w"] = os.getloadavg()
    out["batch"] = args.batch
    expected = phases["direct"]["verdicts"]
    for name, phase in phases.items():
        if phase.pop("verdicts") != expected:
            raise SystemExit(f"verdicts of {name} differ from the direct scans'")
    return phases


if __name__ == "__main__":
    main()
