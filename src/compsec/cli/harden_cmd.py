"""``compsec harden MODEL --noise auto|SIGMA --formats nf4,int8 --seed N [--clip-outliers] [--group-clip zero]
--out DIR``.

Importing this module also registers the defence audit variants (``harden-auto``, ``noise-1e-3``, ``clip``).
"""

from __future__ import annotations

import json

import typer

import compsec.defend.variants  # noqa: F401  (registers the defence audit variants)
from compsec.cli.main import EXIT_OK, app
from compsec.defend.clip import RATIO_THRESHOLD, ROBUST_K
from compsec.defend.noise import DEFAULT_C


@app.command("harden")
def harden(
    model: str = typer.Argument(..., help="Model folder (or .safetensors / .gguf) to harden."),
    out: str = typer.Option(..., "--out", help="Folder for the hardened model (safetensors + provenance)."),
    noise: str = typer.Option("auto", help="Noise sigma per weight, 'auto' (calibrated per tensor) or 0 for none."),
    formats: str = typer.Option("nf4,int8", help="Target formats: calibrate 'auto', clip layouts, code report."),
    seed: int = typer.Option(0, help="Seed of the noise (recorded in provenance)."),
    c: float = typer.Option(DEFAULT_C, min=0.0, help="auto: sigma = c x median interval half-width of the finest format."),
    clip_outliers: bool = typer.Option(False, "--clip-outliers", help="Clip block outliers before adding noise."),
    clip_ratio: float = typer.Option(RATIO_THRESHOLD, min=1.0, help="Clip blocks whose top1/top2 magnitude ratio reaches this."),
    clip_k: float = typer.Option(ROBUST_K, min=0.0, help="Clip to max(top2, k x robust block sigma)."),
    group_clip: str = typer.Option(None, help="zero or divide: first clip every weight past 10 robust sigmas of "
                                   "its 32-weight group (the 'Widening the Gap' defence)."),
    device: str = typer.Option("cpu", help="Torch device, e.g. cpu or cuda:0."),
    force: bool = typer.Option(False, "--force", help="Replace OUT even when it already holds files."),
) -> int:
    """Re-randomise a model's quantization (seeded noise) and remove block outliers, keeping fp behaviour."""
    from compsec.cli import preflight
    from compsec.defend.harden import HardenConfig, harden_folder
    from compsec.outputs import staged_folder

    preflight.check_output_folder(out, force=force)
    preflight.device(device)
    preflight.model_input(model)
    config = HardenConfig(noise=noise, formats=tuple(f.strip() for f in formats.split(",") if f.strip()),
                          seed=seed, c=c, clip_outliers=clip_outliers, clip_ratio=clip_ratio, clip_k=clip_k,
                          group_clip=group_clip)
    with staged_folder(out) as staging:
        report = harden_folder(model, staging, config, device=device)
    sigmas = sorted(report.sigmas.values())
    typer.echo(json.dumps({"tensors": len(sigmas), "median_sigma": sigmas[len(sigmas) // 2] if sigmas else 0.0,
                           "codes_changed": report.codes_changed,
                           "clipped_blocks": sum(report.clipped_blocks.values()),
                           "group_clipped": sum(report.group_clipped.values())}))
    typer.echo(f"wrote {out}")
    return EXIT_OK
