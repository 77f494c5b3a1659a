"""Real SmolLM2 answers to label for the judge's dev set (docs/judge_data.md, "Real answers").

Greedy answers (48 new tokens) of SmolLM2-135M-Instruct, the safety-tuned SmolLM2 fixture and that fixture in nf4
to refusal / over-refusal probes 24..63 -- the frozen real-answer test set used probes 0..23, so no request is
shared. One JSON line per answer: request, response, model, variant, kind. Labels are added by hand afterwards.

    PYTHONPATH=src python bench/judge_real_answers.py OUT.jsonl
"""

from __future__ import annotations

import json
import sys

import torch

from compsec import formats
from compsec.audit.probes import load_probe_set
from compsec.models.io import load_model
from compsec.models.linear import quantizable_weights
from compsec.paths import cache_dir
from compsec.tiny.chat import generate

MODELS = (("smollm2-135m-instruct", "original"), ("smollm2-135m-safety-v1", "original"),
          ("smollm2-135m-safety-v1", "nf4"))
PROBES = slice(24, 64)


def quantize_in_place(model, variant: str) -> None:
    fmt, params = formats.get(variant), dict(model.named_parameters())
    with torch.no_grad():
        for weight in quantizable_weights(model):
            param = params[weight.name]
            param.copy_(fmt.dequantize(fmt.quantize(param.detach().clone())).to(param.dtype))


def main(out_path: str) -> None:
    probes = {kind: [p.prompt for p in load_probe_set(kind)[PROBES]] for kind in ("refusal", "over-refusal")}
    with open(out_path, "w") as out:
        for folder, variant in MODELS:
            model, tokenizer = load_model(cache_dir() / folder)
            if variant != "original":
                quantize_in_place(model, variant)
            for kind, prompts in probes.items():
                answers = generate(model, tokenizer, prompts, 48, batch_size=16)
                out.writelines(json.dumps({"request": q, "response": a, "model": folder, "variant": variant,
                                           "kind": kind}) + "\n" for q, a in zip(prompts, answers))
            print(folder, variant, "done", flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
