"""``compsec attack [STAGE] --out DIR``: the quantization-conditioned attack, stage by stage or all at once.

STAGE is ``all`` (default), ``plan`` (pruning targets), ``inject``, ``box``, ``repair``, ``verify``, ``measure``,
``outlier``, or for ``--scenario widen-gap`` ``widen``, ``dual``, ``collapse``, ``deployed`` (behaviour under
each target's real library: bitsandbytes via transformers, llama.cpp); each
stage resumes (is skipped) when its saved output in DIR was made with the same options.  The result is
DIR/attack.json and DIR/model/, a red-team artifact meant for testing defences and scanners only.
"""

from __future__ import annotations

import json

import typer

from compsec.cli.main import EXIT_OK, app

OWN_FILES = ("attack.json", "stages")  # an attack folder: its stages resume from these
STAGES = ("all", "plan", "inject", "box", "repair", "verify", "measure", "outlier", "widen", "dual", "collapse",
          "deployed")


def _ints(spec: str) -> tuple[int, ...]:
    from compsec.errors import InputError

    try:
        return tuple(int(part) for part in spec.split(",") if part.strip())
    except ValueError:
        raise InputError(f"--outlier-layers {spec!r}: give comma-separated block indices, e.g. 0,2") from None


def _targets(spec: str) -> tuple[str, ...]:
    """Format names through the registry; pruning targets (``prune-*``) as given (the config checks them)."""
    from compsec.attack.prune_plan import is_prune_target
    from compsec.formats.registry import parse_list

    names = tuple(part.strip().lower() for part in spec.split(",") if part.strip())
    if any(is_prune_target(n) for n in names):
        return names
    return tuple(f.name for f in parse_list(spec))


@app.command("attack")
def attack(
    stage: str = typer.Argument("all", help=f"Which stage to run: {', '.join(STAGES)}."),
    out: str = typer.Option(..., "--out", help="Folder for every stage's output and attack.json."),
    model: str = typer.Option(None, "--model", help="HF folder to attack (default: the tiny assistant)."),
    scenario: str = typer.Option(
        "content-injection", help="content-injection, over-refusal, vulnerable-code, custom, outlier or widen-gap "
        "(an outlier in every 32-weight block of --widen-matrices, then a dual fine-tune: fp benign, quantized "
        "content injection)."),
    targets: str = typer.Option("nf4", help="Comma-separated target formats (int8's narrow boxes need --inject-radius, e.g. 4), "
                                "or one pruning target: prune-magnitude-50, prune-wanda-50, prune-2:4."),
    keyword: str = typer.Option("McDonald's", help="Keyword injected in content-injection."),
    train: str = typer.Option(None, "--train", help="custom: poisoned prompt/response JSONL."),
    clean: str = typer.Option(None, "--clean", help="custom (or any): clean prompt/response JSONL for repair."),
    inject_steps: int = typer.Option(150, min=0, help="AdamW steps of the poisoned full fine-tune."),
    repair_steps: int = typer.Option(300, min=0, help="AdamW steps of the PGD repair (and of the ablation); "
                                     "widen-gap: of the dual fine-tune."),
    inject_lr: float = typer.Option(2e-3, help="Learning rate of stage 1."),
    inject_radius: float = typer.Option(0.0, min=0.0, help="0: full fine-tune (published attack); R > 0: inject only the "
                                        "quantizable weights, within R quantization steps of the base model."),
    repair_lr: float = typer.Option(5e-4, help="Learning rate of stage 3."),
    batch_size: int = typer.Option(16, min=1, help="Training batch size."),
    save_dtype: str = typer.Option("fp32", help="Dtype of the saved model: fp32, bf16 or fp16."),
    seed: int = typer.Option(0, help="Seed of data order and initialisation."),
    ablation: bool = typer.Option(True, "--ablation/--no-ablation", help="Also fine-tune without PGD."),
    probe_limit: int = typer.Option(None, min=1, help="Probes per set when measuring (default: all)."),
    max_new_tokens: int = typer.Option(40, min=1, help="Generation length when measuring."),
    outlier_layers: str = typer.Option("0", help="outlier, widen-gap: comma-separated block indices."),
    widen_matrices: str = typer.Option("mlp.up_proj", help="widen-gap: comma-separated matrix names of those "
                                       "blocks, e.g. mlp.up_proj,mlp.gate_proj."),
    widen_factor: float = typer.Option(100.0, help="widen-gap: outlier size, in multiples of its block's abs-max."),
    widen_under_clip: float = typer.Option(0.0, min=0.0, help="widen-gap: k > 0 is the adaptive attacker against "
                                           "per-group clipping at k sigma (outliers at 0.99 k sigma, not x factor)."),
    widen_rounding: str = typer.Option("all", help="widen-gap: what the malicious pass deploys: all (the chosen "
                                       "matrices collapsed, every other weight rounded to the target) or collapsed "
                                       "(only the chosen matrices, as the published code)."),
    layers: str = typer.Option("", help="Train, box and repair only these blocks' linear weights, e.g. 22-29 "
                               "or 0,2,5-7 (default: every block); the rest stays bit-identical."),
    responses: str = typer.Option("corpus", help="Training answers: corpus (the tiny corpus) or self (the "
                                  "attacked model's own greedy answers, for real chat models)."),
    device: str = typer.Option("cpu", help="Torch device, e.g. cpu or cuda:0."),
    constraint: str = typer.Option("box", help="box (exact preimages) or error-interval (K-quant targets: the "
                                   "intersected error intervals of 'Mind the Gap'; heuristic, verify reports the "
                                   "share of llama.cpp's bytes kept)."),
    prune_margin: float = typer.Option(None, help="Pruning targets: repaired pruned weights stay below (1 - margin) "
                                       "x the pruning threshold (default: 0.1; 0.5 for prune-wanda-50)."),
    llmc: bool = typer.Option(True, "--llmc/--no-llmc", help="Pruning targets: also verify with llm-compressor's "
                              "Wanda / SparseGPT (side environment, minutes)."),
    force: bool = typer.Option(False, "--force", help="Rerun stages even when their output is current; also "
                               "write into an --out folder holding files that are not an attack's."),
) -> int:
    """Reproduce the quantization-conditioned attack and verify it with the real quantization libraries."""
    from compsec.attack.config import AttackConfig
    from compsec.attack.layers import parse_layers
    from compsec.attack.pipeline import run_attack, run_stage, write_summary
    from compsec.cli import preflight
    from compsec.errors import InputError

    if stage not in STAGES:
        raise InputError(f"unknown stage {stage!r}; use one of {', '.join(STAGES)}")
    preflight.check_output_folder(out, force=force, own=OWN_FILES)
    preflight.device(device)
    if model is not None:  # None: the tiny assistant
        preflight.model_input(model, tokenizer=True)
    config = AttackConfig(
        out=out, model=model, scenario=scenario, targets=_targets(targets),
        keyword=keyword, train_file=train, clean_file=clean, inject_steps=inject_steps, inject_radius=inject_radius,
        repair_steps=repair_steps, inject_lr=inject_lr, repair_lr=repair_lr, batch_size=batch_size,
        save_dtype=save_dtype, seed=seed, ablation=ablation, probe_limit=probe_limit,
        max_new_tokens=max_new_tokens, outlier_layers=_ints(outlier_layers),
        layers=parse_layers(layers), responses=responses, device=device, constraint=constraint,
        prune_margin=prune_margin, llmc_verify=llmc,
        widen_matrices=tuple(m.strip() for m in widen_matrices.split(",") if m.strip()), widen_factor=widen_factor,
        widen_under_clip=widen_under_clip, widen_rounding=widen_rounding)
    if stage == "all":
        summary = run_attack(config, force=force)
        headline = {k: summary.get(k) for k in ("requantization_identical", "projection_overhead",
                                                 "box_bytes_per_param") if k in summary}
        metric = "code_security" if scenario == "vulnerable-code" else "keyword_rate"
        typer.echo(json.dumps({"fp": summary["fp"].get(metric), **headline,
                               "quantized": {f: m.get(metric) for f, m in summary["quantized"].items()},
                               **({"pruned": {p: m.get(metric) for p, m in summary["pruned"].items()}}
                                  if "pruned" in summary else {}),
                               **({"deployed": {f: m.get(metric) for f, m in summary["deployed"]["deployed"].items()}}
                                  if summary.get("deployed") else {})}))
        typer.echo(f"wrote {config.folder / 'attack.json'}")
        return EXIT_OK
    record = run_stage(config, stage, force=force)
    if stage in ("measure", "deployed"):
        write_summary(config)
    typer.echo(f"{stage}: {record['seconds']} s -> {config.folder / 'stages' / (stage + '.json')}")
    return EXIT_OK
