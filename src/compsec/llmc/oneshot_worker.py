"""Run llm-compressor's ``oneshot`` on one model and save the compressed-tensors folder (side-environment side).

This file runs in the llm-compressor environment (``make llmc`` builds ``.venv-llmc``), never inside compsec's
own: llm-compressor pins an older transformers than compsec's. It imports only the standard library,
llm-compressor, transformers and datasets. The contract is one JSON request file in and one JSON line out:

request ``{"model": DIR, "out": DIR, "recipe": {"ModifierName": {kwargs}, ...}, "calibration": JSONL | null,
"samples": N, "max_length": L, "seed": S}``; the JSONL holds ``{"text": ...}`` lines. The folder is written with
``save_compressed=True`` plus the tokenizer; stdout's last line is ``{"seconds": oneshot seconds,
"llmcompressor": version, "compressed_tensors": version, "transformers": version}``.

Usage: ``python oneshot_worker.py REQUEST.json``
"""

from __future__ import annotations

import json
import sys
import time


def calibration_dataset(path: str | None, samples: int):
    """The first ``samples`` texts of the JSONL at ``path`` as a ``datasets.Dataset``, or None (data-free)."""
    if path is None:
        return None
    from datasets import Dataset

    with open(path, encoding="utf-8") as handle:
        texts = [json.loads(line)["text"] for line in handle if line.strip()]
    return Dataset.from_dict({"text": texts[:samples]})


def recipe_yaml(recipe: dict) -> str:
    """llm-compressor's own recipe format: one oneshot stage holding the modifiers in order."""
    import yaml

    return yaml.safe_dump({"compsec_stage": {"compsec_modifiers": recipe}}, sort_keys=False)


def cpu_only_workaround() -> None:
    """llm-compressor 0.14.0.1's AWQ pins cached activations (``IntermediatesCache.pin_memory``) for faster
    host-to-device copies, which raises "Cannot access accelerator device" on a machine without one. Pinning
    changes no value, so without an accelerator it is skipped."""
    import torch

    if torch.accelerator.is_available():
        return
    from llmcompressor.pipelines.cache import IntermediatesCache

    IntermediatesCache.pin_memory = lambda self, *args, **kwargs: None


def run(request: dict) -> dict:
    import compressed_tensors
    import llmcompressor
    import torch
    import transformers
    from llmcompressor import oneshot
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cpu_only_workaround()
    torch.manual_seed(request.get("seed", 0))
    model = AutoModelForCausalLM.from_pretrained(request["model"], dtype="auto", local_files_only=True)
    tokenizer = AutoTokenizer.from_pretrained(request["model"], local_files_only=True)
    dataset = calibration_dataset(request.get("calibration"), request["samples"])
    start = time.perf_counter()
    extra = {} if dataset is None else {"dataset": dataset, "num_calibration_samples": len(dataset),
                                        "max_seq_length": request["max_length"],
                                        "shuffle_calibration_samples": False}
    oneshot(model=model, processor=tokenizer, recipe=recipe_yaml(request["recipe"]), **extra)
    seconds = time.perf_counter() - start
    model.save_pretrained(request["out"], save_compressed=True)
    tokenizer.save_pretrained(request["out"])
    return {"seconds": seconds, "llmcompressor": llmcompressor.__version__,
            "compressed_tensors": compressed_tensors.__version__, "transformers": transformers.__version__}


if __name__ == "__main__":
    with open(sys.argv[1], encoding="utf-8") as request_file:
        result = run(json.load(request_file))
    print(json.dumps(result))
