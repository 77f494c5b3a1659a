"""Defence-matrix cells for pruning-conditioned rows (``compsec attack --targets prune-*``).

A cell measures the defended dense model and the model each real pruner makes of it: compsec's pruner for the
row's target, and in the ``none`` column llm-compressor's recipes for that target (Wanda / SparseGPT) twice —
with the built-in calibration set and with **security-aware calibration**: the texts the evaluated dense model
itself answers (:func:`self_answer_texts`; its refusals and its clean answers), so SparseGPT's reconstruction
of each layer's dense outputs is asked to keep exactly the behaviour that was evaluated.  ``noise-1e-3`` adds
seeded N(0, 1e-3²) noise to the prunable weights before pruning (it can reorder weights near the threshold).
The quantization defences (``noise-auto``, ``clip``, ``mixed``) calibrate on a quantization grid that pruning
does not have: their cells say ``applicable: false``.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import torch

QUANT_ONLY = ("noise-auto", "clip", "mixed")
NOISE_SIGMA = 1e-3
CALIBRATION_PROMPTS = 64


def is_prune_row(row) -> bool:
    from compsec.attack.prune_plan import is_prune_target

    return any(is_prune_target(t) for t in row.targets)


def self_answer_texts(model, tokenizer, device="cpu", limit: int = CALIBRATION_PROMPTS) -> list[str]:
    """Chat-templated corpus prompts (training phrasings, not the audit's probes) with the model's own greedy
    answers: what the deployer evaluated and wants the pruned model to keep."""
    from compsec.attack.data import clean_pairs
    from compsec.audit.backend import chat_text
    from compsec.tiny.chat import generate

    prompts = [p for p, _ in clean_pairs()[:limit]]
    answers = generate(model, tokenizer, prompts, 40, 16, device)
    return [chat_text(tokenizer, p) + a for p, a in zip(prompts, answers)]


def _write_texts(texts: list[str], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts), encoding="utf-8")
    return path


def _llmc_model(model_dir: str, recipe: str, calibration, out: Path):
    from compsec.llmc.build import write_variant
    from compsec.llmc.recipes import get_recipe
    from compsec.models.io import load_model

    if not (out / "config.json").is_file():
        out.mkdir(parents=True, exist_ok=True)
        write_variant(model_dir, get_recipe(recipe), calibration, out)
    model, tokenizer = load_model(out)
    return model.float(), tokenizer


def _pruned_models(row, model, tokenizer, defence: str, config):
    """``(label, model, tokenizer)`` for every pruner the cell measures (models built lazily, one at a time)."""
    from compsec.attack.prune_plan import PRUNE_TARGETS
    from compsec.attack.prune_stages import prunable
    from compsec.attack.prune_verify import compsec_pruned_weights
    from compsec.llmc.calibration import Calibration

    target = row.targets[0]
    weights = compsec_pruned_weights(model, tokenizer, target, config.device)
    pruned = copy.deepcopy(model)
    with torch.no_grad():
        for name, p in prunable(pruned).items():
            p.copy_(weights[name])
    yield "compsec", pruned.eval(), tokenizer
    if defence != "none":
        return
    folder = Path(config.out) / "llmc" / row.label.replace(":", "_").replace("/", "_")
    secure = _write_texts(self_answer_texts(model, tokenizer, config.device), folder / "self_answers.jsonl")
    for recipe in PRUNE_TARGETS[target][2]:
        safe = recipe.replace(":", "_")
        yield recipe, *_llmc_model(row.model_dir, recipe, Calibration(), folder / safe)
        yield f"{recipe}+secure-calibration", *_llmc_model(row.model_dir, recipe, Calibration(str(secure)),
                                                           folder / f"{safe}-secure")


def measure_prune_cell(row, defence: str, config, baseline: dict | None) -> dict:
    """The cell for a pruning row: ``malicious`` holds fp32 and each pruner's rate (see the module doc)."""
    from compsec.attack.measure import MeasureConfig, behaviour
    from compsec.defend.cells import _utility_change
    from compsec.defend.matrix import MALICIOUS_METRIC
    from compsec.models.io import load_model

    if defence in QUANT_ONLY:
        return {"defence": defence, "applicable": False, "malicious": {}, "utility_change_points": {},
                "note": "a quantization defence: pruning has no grid for it to act on"}
    model, tokenizer = load_model(row.model_dir, device=config.device)
    model = model.float().eval()
    if defence == "noise-1e-3":
        from compsec.attack.prune_stages import prunable

        generator = torch.Generator().manual_seed(config.seed)
        with torch.no_grad():
            for p in prunable(model).values():
                p.add_(torch.randn(p.shape, generator=generator).to(p.device) * NOISE_SIGMA)
    key = MALICIOUS_METRIC[row.scenario]
    settings = MeasureConfig(row.keyword, config.probe_limit, max_new_tokens=config.max_new_tokens)
    fp = behaviour(model, tokenizer, settings, config.device)
    pruned = {label: behaviour(m, t, settings, config.device)
              for label, m, t in _pruned_models(row, model, tokenizer, defence, config)}
    return {"defence": defence, "applicable": True, "malicious": {"fp32": fp[key], **{k: m[key] for k, m in
                                                                                   pruned.items()}},
            "utility_change_points": _utility_change(fp, baseline), "fp": fp, "pruned": pruned}
