"""Time to build each llm-compressor variant (oneshot on CPU in the side environment, then compsec's load).

For each recipe of :mod:`compsec.llmc.recipes` the variant folder is written into a temporary folder (never the
cache) with the built-in calibration set; printed per variant: oneshot seconds (inside the worker), wall
seconds of the whole build (side interpreter start, model load, oneshot, save, provenance), the seconds
compsec's loader takes to load the folder, and the folder size; a recipe llm-compressor cannot apply to the
model's shapes is printed with its reason. Baseline in the same run: the seconds ``nf4`` (torch simulation,
in memory) takes to round-trip the same weights, so the ratio says what calibration costs.

    python bench/bench_llmc.py [--model DIR | --smollm] [--recipes gptq-w4a16,...] [--samples 64] [--max-length 128]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path


def nf4_seconds(model_dir: str) -> float:
    """Wall seconds to round-trip every quantizable weight through compsec's nf4 simulation."""
    from compsec import formats
    from compsec.models.io import load_model
    from compsec.models.linear import quantizable_weights

    model, _ = load_model(model_dir)
    params, fmt = dict(model.named_parameters()), formats.get("nf4")
    started = time.perf_counter()
    for weight in quantizable_weights(model):
        fmt.dequantize(fmt.quantize(params[weight.name].detach()))
    return time.perf_counter() - started


def build_one(model_dir: str, name: str, calibration) -> dict:
    """Build one variant into a temporary folder; its timings, size, or the reason it cannot be built."""
    from compsec.errors import CompsecError
    from compsec.llmc.build import write_variant
    from compsec.llmc.recipes import get_recipe
    from compsec.models.io import load_model

    with tempfile.TemporaryDirectory(prefix="bench-llmc-") as tmp:
        started = time.perf_counter()
        try:
            stats = write_variant(model_dir, get_recipe(name), calibration, Path(tmp))
        except CompsecError as err:
            return {"variant": name, "refused": str(err)[:240]}
        wall = time.perf_counter() - started
        started = time.perf_counter()
        load_model(tmp)
        load = time.perf_counter() - started
        size = sum(f.stat().st_size for f in Path(tmp).glob("*.safetensors"))
    return {"variant": name, "oneshot_s": round(stats["seconds"], 1), "build_wall_s": round(wall, 1),
            "load_s": round(load, 2), "safetensors_mb": round(size / 2**20, 2)}


def main() -> None:
    from compsec.llmc.calibration import Calibration
    from compsec.llmc.recipes import RECIPES

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--smollm", action="store_true", help="SmolLM2-135M-Instruct (converted from its wheel)")
    parser.add_argument("--recipes", default=",".join(RECIPES))
    parser.add_argument("--samples", type=int, default=64)
    parser.add_argument("--max-length", type=int, default=128)
    args = parser.parse_args()
    if args.smollm:
        from compsec.models.smollm import smollm_folder
        model_dir = str(smollm_folder())
    elif args.model:
        model_dir = args.model
    else:
        from compsec.tiny.assistant import tiny_assistant_dir
        model_dir = str(tiny_assistant_dir())
    calibration = Calibration(samples=args.samples, max_length=args.max_length)
    baseline = nf4_seconds(model_dir)
    print(json.dumps({"model": model_dir, "samples": args.samples, "max_length": args.max_length,
                      "nf4_simulation_s": round(baseline, 3)}), flush=True)
    for name in args.recipes.split(","):
        row = build_one(model_dir, name.strip(), calibration)
        if "build_wall_s" in row:
            row["x_nf4"] = round(row["build_wall_s"] / max(baseline, 1e-9), 1)
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
