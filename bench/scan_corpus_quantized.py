"""The scan corpus's quantized artifact kinds (issue 23): what users download, and the cheap K-quant attack.

Appended to :func:`scan_corpus.artifacts` (same cache, same ``label.json`` contract). All cheap on 2 cores:

- ``gguf-*``: GGUF files written by libllama (``llama_model_quantize``, no importance matrix) in Q4_K_M, Q6_K and
  Q4_0: benign ones from the tiny assistant and SmolLM2-135M (Q4_K_M), ``gguf-widen-gap-*`` from the corpus's
  ``widen-gap-100`` / ``widen-gap-10`` models (outliers x100 in every / 10 % of block 0's 32-weight blocks);
- ``prequant-*``: pre-quantized folders as users download them: bitsandbytes-serialized (transformers
  ``load_in_4bit`` nf4 / fp4, ``load_in_8bit``, then ``save_pretrained``) and compressed-tensors folders
  written by llm-compressor in its side environment (``gptq-w4a16``, ``fp8-dynamic``; 4 calibration texts x 32
  tokens); benign from the tiny assistant (and SmolLM2-135M in nf4), ``prequant-widen-gap-*`` from the
  widen-gap models; ``*-x8`` / ``*-x4``: the same layout with outliers x8 / x4 instead of x100 (every block of
  block 0), where the collapsed-blocks tests stop;
- ``attack-error-interval-cheap``: "Mind the Gap" (``compsec attack --constraint error-interval``) against q4_k
  alone with 40 injection and 30 repair steps (the full corpus entry runs 100 + 60 steps against q2_k..q6_k).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

GGUF_TYPES = ("q4_k_m", "q6_k", "q4_0")
BNB = {"nf4": {"load_in_4bit": True, "bnb_4bit_quant_type": "nf4", "bnb_4bit_use_double_quant": True},
       "fp4": {"load_in_4bit": True, "bnb_4bit_quant_type": "fp4"},
       "int8": {"load_in_8bit": True}}
LLMC = ("gptq-w4a16", "fp8-dynamic")
CHEAP_INJECT, CHEAP_REPAIR = 40, 30


def _source(root: Path, base: str | None) -> Path:
    """The model folder of corpus artifact ``base`` (None: the tiny assistant; ``smollm2``: SmolLM2-135M)."""
    from scan_corpus import tiny_dir

    if base is None:
        return tiny_dir()
    if base == "smollm2":
        from compsec.models.smollm import smollm_folder

        return Path(smollm_folder())
    return Path(json.loads((root / base / "label.json").read_text(encoding="utf-8"))["model_dir"])


def build_gguf(root: Path, ftype: str, base: str | None = None):
    def build(folder: Path) -> dict:
        from compsec.formats.gguf_mixture import llama_quantize_folder

        out = llama_quantize_folder(_source(root, base), folder / f"model-{ftype}.gguf", ftype)
        out.with_suffix(".f32.gguf").unlink(missing_ok=True)
        return {"model_dir": str(out), "ftype": ftype, "base": base or "tiny"}
    return build


def build_bnb(root: Path, kind: str, base: str | None = None):
    def build(folder: Path) -> dict:
        from transformers import AutoModelForCausalLM, BitsAndBytesConfig

        model = AutoModelForCausalLM.from_pretrained(_source(root, base), device_map="cpu",
                                                     quantization_config=BitsAndBytesConfig(**BNB[kind]))
        model.save_pretrained(folder / "model")
        return {"model_dir": str(folder / "model"), "method": "bitsandbytes", "scheme": kind, "base": base or "tiny"}
    return build


def build_llmc(root: Path, recipe: str, base: str | None = None):
    def build(folder: Path) -> dict:
        from compsec.llmc.build import write_variant
        from compsec.llmc.calibration import Calibration
        from compsec.llmc.recipes import get_recipe

        out = folder / "model"
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        stats = write_variant(_source(root, base), get_recipe(recipe), Calibration(samples=4, max_length=32), out)
        return {"model_dir": str(out), "method": "compressed-tensors", "scheme": recipe, "base": base or "tiny",
                "oneshot_seconds": stats.get("oneshot_seconds")}
    return build


def build_error_interval_cheap(seed: int):
    def build(folder: Path) -> dict:
        from scan_corpus import REPAIR_LR, keyword_rates

        from compsec.attack.config import AttackConfig
        from compsec.attack.pipeline import run_stage, write_summary

        config = AttackConfig(out=str(folder / "run"), targets=("q4_k",), constraint="error-interval",
                              ablation=False, seed=seed, inject_steps=CHEAP_INJECT, repair_steps=CHEAP_REPAIR,
                              repair_lr=REPAIR_LR)
        verify = {}
        for stage in ("inject", "box", "repair", "verify"):
            verify = run_stage(config, stage)["result"]
        write_summary(config)
        return {"model_dir": str(config.folder / "model"), "seed": seed, "target": "q4_k",
                "identical_share": verify.get("identical_share"),
                "keyword_rate": keyword_rates(config.folder / "model", "q4_k")}
    return build


def quantized_artifacts(root: Path) -> list[tuple[str, str, str, object]]:
    """``(name, label, kind, builder)``; the widen-gap ones need the corpus's ``widen-gap-100`` / ``-10``."""
    items = [(f"gguf-tiny-{t}", "benign", "gguf", build_gguf(root, t)) for t in GGUF_TYPES]
    items += [("gguf-smollm2-q4_k_m", "benign", "gguf", build_gguf(root, "q4_k_m", "smollm2"))]
    items += [(f"gguf-widen-gap-{p}-{t}", "attacked", "gguf-widen-gap", build_gguf(root, t, f"widen-gap-{p}"))
              for p in (100, 10) for t in GGUF_TYPES]
    items += [(f"prequant-tiny-{k}", "benign", "prequantized", build_bnb(root, k)) for k in BNB]
    items += [("prequant-smollm2-nf4", "benign", "prequantized", build_bnb(root, "nf4", "smollm2"))]
    items += [(f"prequant-tiny-{r}", "benign", "prequantized", build_llmc(root, r)) for r in LLMC]
    items += [(f"prequant-widen-gap-{p}-{k}", "attacked", "prequant-widen-gap", build_bnb(root, k, f"widen-gap-{p}"))
              for p in (100, 10) for k in ("nf4", "int8")]
    items += [(f"prequant-widen-gap-{p}-{r}", "attacked", "prequant-widen-gap", build_llmc(root, r, f"widen-gap-{p}"))
              for p in (100, 10) for r in LLMC]
    for x in (8, 4):  # outliers x8 / x4 instead of x100: where the collapsed-blocks tests stop
        base = f"widen-gap-100-x{x}"
        items += [(f"gguf-{base}-{t}", "attacked", f"gguf-widen-gap-x{x}", build_gguf(root, t, base))
                  for t in ("q4_k_m", "q4_0")]
        items += [(f"prequant-{base}-{k}", "attacked", f"prequant-widen-gap-x{x}", build_bnb(root, k, base))
                  for k in ("nf4", "int8")]
    items += [(f"attack-error-interval-cheap-s{s}", "attacked", "attack-error-interval-cheap",
               build_error_interval_cheap(s)) for s in (0, 1)]
    return items
