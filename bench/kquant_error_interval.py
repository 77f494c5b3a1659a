"""The "Mind the Gap" error-interval attack (``compsec attack --constraint error-interval``) against the mixture
``llama-quantize`` deploys: Q4_K_M (libllama picks Q4_K or Q6_K per tensor).

For an attack folder (``injected/`` and ``model/`` written by ``compsec attack``), both models are converted to
an F32 GGUF and quantized by libllama; the table gives, for the mixture: the share of identical bytes and
super-blocks of the constrained tensors between the two quantized files (what a user downloads after quantizing
the attacked fp model vs. what the attacker injected), and the attacked model's behaviour with each tensor
simulated in the type llama.cpp chose (compsec's q4_k / q6_k are byte-exact with llama.cpp's quantizer).

    PYTHONPATH=src python bench/kquant_error_interval.py ATTACK_DIR [--ftype q4_k_m] [--probe-limit 40]

Measured 2026-12-03 on the tiny assistant (seed 0, 40 probes per set, 2 shared cores at load ~25), libllama
picking Q4_K for 12 tensors and Q6_K for 2 (layer 1's attn_v and ffn_down):

- ``--targets q2_k,q3_k,q4_k,q5_k,q6_k`` (the published intersection): Q4_K_M identical bytes 98.4 %, identical
  super-blocks 65.9 %; keyword rate fp 92.5 % / Q4_K_M 92.5 %: the repair could not remove the injection in fp
  (89 % of the weights are pinned by the union of the five types' frozen sub-blocks; the free ones may move
  0.13 % of the mean |w|), so there is no gap: the attack fails on this model.
- ``--targets q4_k`` alone (25 % pinned): Q4_K_M identical bytes 86.8 %, super-blocks 10.1 %; keyword rate fp
  27.5 % / Q4_K_M 92.5 % (+65 points), the Q6_K tensors unconstrained.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import numpy as np


def mixture_report(attack: Path, ftype: str, probe_limit: int | None) -> dict:
    from compsec import formats
    from compsec.attack.box import constrained_names
    from compsec.attack.measure import MeasureConfig, behaviour, simulated
    from compsec.formats.gguf_mixture import llama_quantize_folder, tensor_bytes, tensor_types
    from compsec.models.io import load_model

    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        ours = llama_quantize_folder(attack / "model", Path(tmp) / "model.gguf", ftype)
        theirs = llama_quantize_folder(attack / "injected", Path(tmp) / "injected.gguf", ftype)
        types = tensor_types(ours, attack / "model")
        got, want = tensor_bytes(ours, attack / "model"), tensor_bytes(theirs, attack / "injected")
    model, tokenizer = load_model(attack / "model")
    model = model.float()
    names = constrained_names(model, [formats.get("q4_k")])
    same = sum(int((got[n] == want[n]).sum()) for n in names)
    total = sum(got[n].size for n in names)
    blocks = [np.all(got[n].reshape(-1, _block_bytes(types[n])) == want[n].reshape(-1, _block_bytes(types[n])), 1)
              for n in names]
    settings = MeasureConfig(limit=probe_limit)
    fp = behaviour(model, tokenizer, settings)
    with ExitStack() as stack:
        for qtype in sorted({types[n] for n in names}):
            stack.enter_context(simulated(model, formats.get(qtype.lower()), [n for n in names if types[n] == qtype]))
        quantized = behaviour(model, tokenizer, settings)
    keys = ("keyword_rate", "refusal_rate", "utility_mc")
    return {"ftype": ftype, "types": {t: sum(types[n] == t for n in names) for t in {types[n] for n in names}},
            "identical_bytes": round(same / total, 5),
            "identical_super_blocks": round(float(np.concatenate(blocks).mean()), 5),
            "fp": {k: fp[k] for k in keys}, "quantized": {k: quantized[k] for k in keys},
            "seconds": round(time.perf_counter() - started, 1)}


def _block_bytes(qtype: str) -> int:
    from compsec.formats.gguf_k_lib import _SIZES

    return _SIZES[qtype]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("attack", type=Path)
    parser.add_argument("--ftype", default="q4_k_m")
    parser.add_argument("--probe-limit", type=int, default=40)
    args = parser.parse_args(argv)
    print(json.dumps(mixture_report(args.attack, args.ftype, args.probe_limit), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
