"""Build the labelled evaluation corpus of ``compsec scan``: real benign and tampered checkpoints.

    .venv/bin/python bench/scan_corpus.py [--root DIR] [--only NAME,...] [--list] [--threads 1]

Measured 2026-11-25 (2 shared cores, load ~9, 1 torch thread): 54 artifacts in about 17 minutes of wall time
(the attacks dominate: ~100 s for a seed's nf4 attack with its injection, 20-70 s for each other target, ~20 s
for each adaptive repair with its keyword measurement).  Scored by ``bench/bench_scan_corpus.py``.

Cached under ``$COMPSEC_CACHE/scan-corpus`` (default ``~/.cache/compsec/scan-corpus``), one folder per artifact
holding ``label.json`` (written last: a folder without it is rebuilt, a folder with it is skipped, so the build
resumes).  ``label.json``: ``name``, ``label`` (``benign`` | ``attacked``), ``kind`` (the attack kind, or the
benign family), ``model_dir`` (the folder to scan) and what the builder measured.

Benign: the tiny assistant (fp32, fp16, bf16 casts), the tiny assistant retrained from scratch at seeds 1 and 2
(corpus, tokenizer, init and batch order all follow the seed) and at hidden size 512 (MLP 1024, 8 heads; seed 0;
each cached inside its artifact folder, ~2 min and ~10 min on 1 thread), benign full fine-tunes on its own clean data (40 AdamW
steps, lr 5e-4, seeds 1-3), random initialisations of its config (seeds 0-4) and of a twice-wider one (hidden
512, seeds 0-1), ``compsec harden --noise auto`` (seeds 0-3), SmolLM2-135M-Instruct (its weights are dequantized
Q4_1: clean with a provenance note expected).
Attacked: content injection against nf4, fp4, int8 and q4_0 separately (inject 100 steps shared by all four,
60 PGD repair steps at lr 1e-3, as the README's attack bench), the adaptive attacker repairing inside boxes
shrunk by 1 %, 10 %, 20 % of each interval (from the nf4 attack; keyword rates measured on ``PROBES`` probes per
set) and by a randomised attacker drawing each weight's margin in ``[0, f]`` (f = 10 %, 20 %), and outlier
injection (targets nf4, q4_0, fp4; block 0 and block 1); ``widen-gap-100/50/10``: the "Widening the Gap" layout
(:mod:`compsec.attack.widen_gap`) in 100 / 50 / 10 % of block 0's 32-weight blocks.  Attacks run at seeds 0-2 (nf4 also saved as bf16).
``attack-int8-r4``: constrained injection within 4 quantization steps (:mod:`compsec.attack.ball`, 150 + 300 steps),
the int8 attack that keeps fp32 benign.  ``attack-nf4-tiny-*``: the nf4 attack against each retrained variant
(kind ``attack-nf4``).  ``attack-q4_k``: PGD repair inside q4_k's fixed-scale boxes keeping llama.cpp's bytes
(moves that make llama.cpp re-scale a sub-block are rolled back; ``bench/kquant_attack.py``, reusing each seed's
nf4 injection, ``KQUANT_STEPS`` steps); ``attack-q4_k-rescaled``: the same without roll-back, which llama.cpp
re-scales, so the behaviour does not survive in q4_k either (``attack_failed`` in the scores);
``adaptive-q4_k-0.1``: the scale-keeping attacker inside fixed-scale boxes shrunk by 10 % per side (seed 0).
``attack-error-interval``: "Mind the Gap" (``compsec attack --constraint error-interval``, q2_k..q6_k intersected).
GGUF files, pre-quantized folders (benign and widen-gap) and a cheap error-interval attack:
``bench/scan_corpus_quantized.py``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import torch

FINETUNE_STEPS, FINETUNE_LR = 40, 5e-4
INJECT_STEPS, REPAIR_STEPS, REPAIR_LR = 100, 60, 1e-3
SHRINK_FRACTIONS = (0.01, 0.1, 0.2)
RANDOM_SHRINK_FRACTIONS = (0.1, 0.2)  # margins drawn per weight in [0, f * width]: no pile-up at one shrunk edge
PROBES = 10
ATTACK_SEEDS = (0, 1, 2)
KQUANT_STEPS = 240  # the scale-keeping q4_k attacker rolls most moves back: 4x the repair steps
TINY_VARIANTS = (("tiny-s1", 1, 256), ("tiny-s2", 2, 256), ("tiny-h512", 0, 512))  # (name, seed, hidden size)


def corpus_root(root: str | None = None) -> Path:
    from compsec.paths import cache_dir

    return Path(root) if root else cache_dir() / "scan-corpus"


def tiny_dir() -> Path:
    from compsec.tiny.assistant import tiny_assistant_dir

    return tiny_assistant_dir()


def save(model, tokenizer, folder: Path, dtype: torch.dtype = torch.float32) -> Path:
    from compsec.models.io import save_model

    model.to(dtype)
    return save_model(model, tokenizer, folder / "model")


def build_tiny(folder: Path) -> dict:
    return {"model_dir": str(tiny_dir())}


def tiny_recipe(seed: int = 0, hidden: int = 256):
    """The tiny assistant's recipe at another seed (corpus, tokenizer, init, batch order) and hidden size (MLP width
    and heads scaled with it)."""
    from compsec.tiny.train import TinyRecipe

    scale = hidden // 256
    return TinyRecipe(seed=seed, hidden_size=hidden, intermediate_size=512 * scale, num_heads=4 * scale)


def tiny_variant_dir(root: Path, name: str) -> Path:
    """Where the variant ``name`` (an artifact of :func:`artifacts`) caches its trained assistant."""
    return root / name / "assistant"


def build_tiny_variant(seed: int, hidden: int):
    def build(folder: Path) -> dict:
        from compsec.tiny.assistant import tiny_assistant_dir

        recipe = tiny_recipe(seed, hidden)
        return {"model_dir": str(tiny_assistant_dir(recipe, folder / "assistant")), "seed": seed, "hidden": hidden}
    return build


def build_cast(dtype: torch.dtype):
    def build(folder: Path) -> dict:
        from compsec.tiny.assistant import load_tiny_assistant

        model, tokenizer = load_tiny_assistant()
        return {"model_dir": str(save(model, tokenizer, folder, dtype))}
    return build


def build_finetune(seed: int):
    def build(folder: Path) -> dict:
        from compsec.attack.data import clean_pairs, encode_pairs, training_subset
        from compsec.attack.inject import finetune
        from compsec.tiny.assistant import load_tiny_assistant

        model, tokenizer = load_tiny_assistant()
        rows = encode_pairs(tokenizer, training_subset(clean_pairs(seed), FINETUNE_STEPS * 16, seed))
        torch.manual_seed(seed)
        stats = finetune(model, rows, list(model.parameters()), FINETUNE_STEPS, FINETUNE_LR, 16, seed,
                         tokenizer.pad_token_id)
        return {"model_dir": str(save(model, tokenizer, folder)), "train": stats.summary()}
    return build


def build_random(seed: int, hidden: int | None = None):
    def build(folder: Path) -> dict:
        from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

        config = AutoConfig.from_pretrained(tiny_dir())
        if hidden:  # another size of the same architecture: MLP width and heads scaled with the hidden size
            scale = hidden // config.hidden_size
            config.hidden_size, config.intermediate_size = hidden, config.intermediate_size * scale
            config.num_attention_heads *= scale
            config.num_key_value_heads = getattr(config, "num_key_value_heads", 1) * scale
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(config)
        return {"model_dir": str(save(model, AutoTokenizer.from_pretrained(tiny_dir()), folder))}
    return build


def build_harden(seed: int):
    def build(folder: Path) -> dict:
        from compsec.defend.harden import HardenConfig, harden_folder

        report = harden_folder(tiny_dir(), folder / "model", HardenConfig(noise="auto", seed=seed))
        return {"model_dir": str(folder / "model"), "codes_changed": report.codes_changed}
    return build


def build_smollm(folder: Path) -> dict:
    from compsec.models.smollm import smollm_folder

    return {"model_dir": str(smollm_folder())}


def attack_config(folder: Path, target: str, scenario: str = "content-injection", seed: int = 0,
                  save_dtype: str = "fp32", layer: int = 0, radius: float = 0.0, model: str | None = None):
    """The corpus's attack settings; ``radius`` > 0: constrained injection (:mod:`compsec.attack.ball`) with the
    steps its docstring measured (150 + 300, repair lr 5e-4); ``model``: the folder attacked (None: the tiny
    assistant)."""
    from compsec.attack.config import AttackConfig

    steps = {"inject_steps": 150, "repair_steps": 300, "repair_lr": 5e-4, "inject_radius": radius} if radius else {
        "inject_steps": INJECT_STEPS, "repair_steps": REPAIR_STEPS, "repair_lr": REPAIR_LR}
    return AttackConfig(out=str(folder / "run"), model=model, scenario=scenario, targets=(target,), ablation=False, seed=seed,
                        save_dtype=save_dtype, outlier_layers=(layer,), **steps)


def keyword_rates(model_dir: Path, target: str) -> dict:
    """fp32 and ``target`` keyword rates of the model in ``model_dir`` on ``PROBES`` probes per set."""
    from compsec import formats
    from compsec.attack.box import constrained_names
    from compsec.attack.measure import MeasureConfig, measure_all
    from compsec.models.io import load_model

    model, tokenizer = load_model(model_dir)
    fmt = formats.get(target)
    names = constrained_names(model, [fmt])
    measured = measure_all(model.float(), tokenizer, [fmt], names, MeasureConfig(limit=PROBES))
    return {"fp32": measured["fp"]["keyword_rate"], target: measured["quantized"][target]["keyword_rate"]}


def share_injection(source: Path, run: Path) -> None:
    """Reuse the nf4 attack's injected model (the inject stage does not depend on the targets)."""
    if (run / "stages" / "inject.json").is_file() or not (source / "stages" / "inject.json").is_file():
        return
    (run / "stages").mkdir(parents=True, exist_ok=True)
    shutil.copytree(source / "injected", run / "injected", dirs_exist_ok=True)
    shutil.copy2(source / "stages" / "inject.json", run / "stages" / "inject.json")


def build_attack(target: str, root: Path, seed: int = 0, save_dtype: str = "fp32", radius: float = 0.0,
                 base: str | None = None):
    """``base``: another artifact of the corpus (a tiny-assistant variant) attacked instead of the tiny assistant."""
    def build(folder: Path) -> dict:
        from compsec.attack.pipeline import run_stage, write_summary

        model = json.loads((root / base / "label.json").read_text(encoding="utf-8"))["model_dir"] if base else None
        config = attack_config(folder, target, seed=seed, save_dtype=save_dtype, radius=radius, model=model)
        if not radius and not base:
            share_injection(root / _seeded("attack-nf4", seed) / "run", config.folder)
        verify = {}
        for stage in ("inject", "box", "repair", "verify"):
            verify = run_stage(config, stage)["result"]
        write_summary(config)
        return {"model_dir": str(config.folder / "model"), "target": target, "seed": seed, "save_dtype": save_dtype,
                "inject_radius": radius, "base": base or "tiny",
                "requantization_identical": verify["requantization_identical"],
                "keyword_rate": keyword_rates(config.folder / "model", target)}
    return build


def build_shrink(fraction: float, root: Path, seed: int = 0, randomized: bool = False):
    def build(folder: Path) -> dict:
        from compsec.attack.adaptive_shrink import shrink_attack

        model_dir = shrink_attack(root / _seeded("attack-nf4", seed) / "run", folder, fraction, probe_limit=PROBES,
                                  randomized=randomized)
        record = json.loads((model_dir.parent / "shrink.json").read_text(encoding="utf-8"))
        return {"model_dir": str(model_dir), "fraction": fraction, "seed": seed, "randomized": randomized,
                "keyword_rate": record.get("keyword_rate"),
                "requantization_identical": record.get("requantization_identical")}
    return build


def build_kquant_attack(root: Path, seed: int = 0, target: str = "q4_k", keep_scales: bool = True,
                        shrink: float = 0.0):
    """``keep_scales``: the attacker who keeps llama.cpp's bytes (``KQUANT_STEPS`` steps); else plain PGD in the
    fixed-scale boxes (the corpus's repair steps), which llama.cpp re-scales.  ``shrink``: adaptive margin."""
    def build(folder: Path) -> dict:
        from kquant_attack import kquant_attack

        injected = root / _seeded("attack-nf4", seed) / "run" / "injected"
        steps = KQUANT_STEPS if keep_scales else REPAIR_STEPS
        record = kquant_attack(injected, folder, target, steps, REPAIR_LR, seed, keep_scales=keep_scales,
                               shrink=shrink)
        return {**record, "keyword_rate": keyword_rates(Path(record["model_dir"]), target)}
    return build


def build_error_interval(root: Path, seed: int = 0):
    """"Mind the Gap": PGD repair inside the K-quant error intervals intersected over q2_k..q6_k
    (``compsec attack --constraint error-interval``), reusing the seed's nf4 injection."""
    def build(folder: Path) -> dict:
        from compsec.attack.config import AttackConfig
        from compsec.attack.error_interval import K_TYPES
        from compsec.attack.pipeline import run_stage, write_summary

        config = AttackConfig(out=str(folder / "run"), targets=K_TYPES, constraint="error-interval", ablation=False,
                              seed=seed, inject_steps=INJECT_STEPS, repair_steps=REPAIR_STEPS, repair_lr=REPAIR_LR)
        share_injection(root / _seeded("attack-nf4", seed) / "run", config.folder)
        verify = {}
        for stage in ("inject", "box", "repair", "verify"):
            verify = run_stage(config, stage)["result"]
        write_summary(config)
        return {"model_dir": str(config.folder / "model"), "seed": seed, "identical_share": verify["identical_share"],
                "keyword_rate": keyword_rates(config.folder / "model", "q6_k")}
    return build


def build_outlier(target: str, layer: int = 0):
    def build(folder: Path) -> dict:
        from compsec.attack.pipeline import run_stage

        result = run_stage(attack_config(folder, target, "outlier", layer=layer), "outlier")["result"]
        return {"model_dir": str(folder / "run" / "model"), "target": target, "layer": layer,
                "zero_code_fraction": result["zero_code_fraction"]}
    return build


def build_widen_gap(fraction: float, layer: int = 0, factor: float = 100.0, under_clip: float = 0.0):
    """The "Widening the Gap" layout (x``factor``, random sign; the paper's 100 by default) in ``fraction`` of the
    32-blocks of block ``layer``'s quantizable weights (injection only: the dual fine-tune moves the other
    weights, not the outliers); ``under_clip`` = k > 0: the adaptive attacker's layout instead (every block's
    abs-max at 0.99 k sigma of its group, :func:`compsec.attack.widen_gap.widen_under_clip`)."""
    def build(folder: Path) -> dict:
        from compsec.attack.widen_gap import widen_gap, widen_under_clip
        from compsec.models.linear import quantizable_weights
        from compsec.tiny.assistant import load_tiny_assistant

        model, tokenizer = load_tiny_assistant()
        params, gen = dict(model.named_parameters()), torch.Generator().manual_seed(layer)
        with torch.no_grad():
            for q in (q for q in quantizable_weights(model) if q.layer == layer):
                w = params[q.name]
                params[q.name].copy_((widen_under_clip(w, gen, under_clip) if under_clip
                                      else widen_gap(w, gen, fraction=fraction, factor=factor))[0])
        return {"model_dir": str(save(model, tokenizer, folder)), "fraction": fraction, "layer": layer,
                "factor": factor, "under_clip": under_clip}
    return build


def _seeded(name: str, seed: int) -> str:
    return name if seed == 0 else f"{name}-s{seed}"


def artifacts(root: Path) -> list[tuple[str, str, str, object]]:
    """``(name, label, kind, builder)`` in build order (each seed's nf4 attack before the ones reusing it)."""
    items = [("tiny", "benign", "tiny", build_tiny),
             ("tiny-fp16", "benign", "cast", build_cast(torch.float16)),
             ("tiny-bf16", "benign", "cast", build_cast(torch.bfloat16))]
    items += [(name, "benign", "tiny", build_tiny_variant(seed, hidden)) for name, seed, hidden in TINY_VARIANTS]
    items += [(f"attack-nf4-{name}", "attacked", "attack-nf4", build_attack("nf4", root, base=name))
              for name, _, _ in TINY_VARIANTS]
    items += [(f"finetune-s{s}", "benign", "finetune", build_finetune(s)) for s in (1, 2, 3)]
    items += [(f"random-s{s}", "benign", "random-init", build_random(s)) for s in (0, 1, 2, 3, 4)]
    items += [(f"random-h512-s{s}", "benign", "random-init", build_random(s, 512)) for s in (0, 1)]
    items += [(f"harden-s{s}", "benign", "harden", build_harden(s)) for s in (0, 1, 2, 3)]
    items += [("smollm2-135m", "benign", "smollm2", build_smollm)]
    for seed in ATTACK_SEEDS:
        items += [(_seeded(f"attack-{t}", seed), "attacked", f"attack-{t}", build_attack(t, root, seed))
                  for t in ("nf4", "fp4", "int8", "q4_0")]
        items += [(_seeded("attack-nf4-bf16", seed), "attacked", "attack-nf4-bf16",
                   build_attack("nf4", root, seed, "bf16"))]
        items += [(_seeded(f"adaptive-{f:g}", seed), "attacked", f"adaptive-{f:g}", build_shrink(f, root, seed))
                  for f in SHRINK_FRACTIONS]
        items += [(_seeded(f"adaptive-rand-{f:g}", seed), "attacked", f"adaptive-rand-{f:g}",
                   build_shrink(f, root, seed, randomized=True)) for f in RANDOM_SHRINK_FRACTIONS]
    items += [(_seeded("attack-q4_k", seed), "attacked", "attack-q4_k", build_kquant_attack(root, seed))
              for seed in ATTACK_SEEDS]
    items += [(_seeded("attack-q4_k-rescaled", seed), "attacked", "attack-q4_k-rescaled",
               build_kquant_attack(root, seed, keep_scales=False)) for seed in ATTACK_SEEDS]
    items += [("adaptive-q4_k-0.1", "attacked", "adaptive-q4_k-0.1", build_kquant_attack(root, 0, shrink=0.1))]
    items += [(_seeded("attack-error-interval", seed), "attacked", "attack-error-interval",
               build_error_interval(root, seed)) for seed in ATTACK_SEEDS]
    items += [(_seeded("attack-int8-r4", seed), "attacked", "attack-int8-r4", build_attack("int8", root, seed, radius=4))
              for seed in ATTACK_SEEDS]
    for layer in (0, 1):
        items += [(f"outlier-{t}" + ("" if layer == 0 else f"-l{layer}"), "attacked", "outlier",
                   build_outlier(t, layer)) for t in ("nf4", "q4_0", "fp4")]
    items += [(f"widen-gap-{round(f * 100)}", "attacked", "widen-gap", build_widen_gap(f)) for f in (1.0, 0.5, 0.1)]
    items += [(f"widen-gap-100-x{x}", "attacked", f"widen-gap-x{x}", build_widen_gap(1.0, factor=x)) for x in (8, 4)]
    items += [("widen-gap-under-clip-10", "attacked", "widen-gap-under-clip", build_widen_gap(1.0, under_clip=10.0))]
    # GGUF files and pre-quantized folders (bench/ is on the path)
    from scan_corpus_quantized import quantized_artifacts

    return items + quantized_artifacts(root)


def build_corpus(root: Path, only: set[str] | None = None) -> list[dict]:
    """Build every missing artifact (resumable); returns the labels of all finished ones."""
    labels = []
    for name, label, kind, builder in artifacts(root):
        folder, done = root / name, root / name / "label.json"
        if not done.is_file() and (only is None or name in only):
            folder.mkdir(parents=True, exist_ok=True)
            torch.manual_seed(0)
            started = time.perf_counter()
            print(f"building {name} ...", flush=True)
            record = {"name": name, "label": label, "kind": kind, **builder(folder)}
            record["build_seconds"] = round(time.perf_counter() - started, 1)
            done.write_text(json.dumps(record, indent=1, default=str), encoding="utf-8")
            print(f"  {name}: {record['build_seconds']} s", flush=True)
        if done.is_file():
            labels.append(json.loads(done.read_text(encoding="utf-8")))
    return labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", help="corpus folder (default: $COMPSEC_CACHE/scan-corpus)")
    parser.add_argument("--only", help="comma-separated artifact names to build (default: all)")
    parser.add_argument("--list", action="store_true", help="list artifacts and whether they are built")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a shared machine)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    root = corpus_root(args.root)
    if args.list:
        for name, label, kind, _ in artifacts(root):
            print(f"{name:16} {label:9} {kind:14} {'done' if (root / name / 'label.json').is_file() else '-'}")
        return
    root.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    labels = build_corpus(root, set(args.only.split(",")) if args.only else None)
    print(json.dumps({"root": str(root), "artifacts": len(labels),
                      "seconds": round(time.perf_counter() - started, 1)}))


if __name__ == "__main__":
    main()
