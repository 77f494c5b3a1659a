"""False-positive check of the error-interval detector (:mod:`compsec.scan.near_dequantized`) alone, on benign
checkpoints: every quantizable tensor under q2_k..q6_k, flagged as ``compsec scan`` would flag it (effect floor
met and Bonferroni p below ``alpha`` over the tests run: stricter than the scan's Benjamini-Hochberg only when
other tests fire too).

    PYTHONPATH=src python bench/error_interval_fpr.py FOLDER [FOLDER ...] [--smollm]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def folder_report(folder: Path, alpha: float = 1e-3) -> dict:
    from safetensors import safe_open

    from compsec import formats
    from compsec.models.linear import quantizable_weights
    from compsec.models.stream import safetensors_files
    from compsec.scan.near_dequantized import error_interval_evidence

    started = time.perf_counter()
    k_formats = [formats.get(n) for n in ("q2_k", "q3_k", "q4_k", "q5_k", "q6_k")]
    wanted = {q.name for q in quantizable_weights(folder)}
    evidence = []
    for shard in safetensors_files(folder):
        with safe_open(str(shard), framework="pt") as handle:
            for name in handle.keys():  # noqa: SIM118
                if name in wanted:
                    evidence += error_interval_evidence(name, handle.get_tensor(name), k_formats)
    tested = [e for e in evidence if e.p_value is not None]
    flagged = [e for e in tested if e.effect_ok and e.p_value * len(tested) < alpha]
    return {"folder": str(folder), "tests": len(evidence), "tested": len(tested), "flagged": len(flagged),
            "max_score": max((e.score for e in tested), default=0.0),
            "first": [e.explanation for e in flagged[:2]], "seconds": round(time.perf_counter() - started, 1)}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="*", type=Path)
    parser.add_argument("--smollm", action="store_true", help="also SmolLM2-135M-Instruct (compsec[smollm])")
    args = parser.parse_args(argv)
    folders = list(args.folders)
    if args.smollm:
        from compsec.models.smollm import smollm_folder

        folders.append(Path(smollm_folder()))
    for folder in folders:
        print(json.dumps(folder_report(folder)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
