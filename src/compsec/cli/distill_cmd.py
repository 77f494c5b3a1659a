"""``compsec distill TEACHER --student CONFIG.json --out DIR``: distil TEACHER into a smaller student.

CONFIG.json overrides fields of the teacher's config (e.g. ``{"hidden_size": 128, "num_hidden_layers": 1}``);
the student shares the teacher's tokenizer. Data: the tiny assistant's training corpus through the teacher's
chat template; its harmful requests (answered with refusals) are the safety samples weighted by
``--safety-weight``. The student is saved as a safetensors Hugging Face folder with a provenance record.
"""

from __future__ import annotations

from dataclasses import asdict

import typer

from compsec.cli.main import EXIT_OK, app


def _student_overrides(path: str) -> dict:
    from compsec.errors import InputError
    from compsec.jsonfiles import read_json_file

    overrides = read_json_file(path, "student config JSON")
    if not isinstance(overrides, dict):
        raise InputError(f"{path}: the student config must be a JSON object of config fields")
    return overrides


@app.command("distill")
def distill(
    teacher: str = typer.Argument(..., help="Teacher model folder (safetensors + config.json + tokenizer)."),
    student: str = typer.Option(..., "--student", help="JSON file of teacher-config fields to override."),
    out: str = typer.Option(..., "--out", help="Output folder for the student."),
    steps: int = typer.Option(300, "--steps", min=1, help="Optimiser steps."),
    batch_size: int = typer.Option(32, "--batch-size", min=1, help="Sequences per step."),
    learning_rate: float = typer.Option(3e-3, "--lr", min=0.0, help="AdamW learning rate."),
    temperature: float = typer.Option(2.0, "--temperature", min=0.0, help="Softmax temperature T of the soft targets."),
    alpha: float = typer.Option(0.5, "--alpha", min=0.0, max=1.0, help="Weight of the KL term (1 − alpha on hard-label CE)."),
    safety_weight: float = typer.Option(1.0, "--safety-weight", min=0.0, help="Loss weight of safety (refusal) samples."),
    seed: int = typer.Option(0, "--seed", help="Seed of initialisation and batch order."),
    device: str = typer.Option("cpu", "--device", help="torch device: cpu, cuda, mps."),
    force: bool = typer.Option(False, "--force", help="Replace OUT even when it already holds files."),
) -> int:
    """Distil TEACHER into a student described by --student and save it to OUT."""
    from compsec.cli import preflight
    from compsec.distill.train import DistillConfig, distill_tiny
    from compsec.errors import InputError
    from compsec.integrity.provenance import record_provenance
    from compsec.models.io import load_model, save_model
    from compsec.outputs import staged_folder

    preflight.check_output_folder(out, force=force)
    preflight.device(device)
    preflight.model_input(teacher, "teacher", tokenizer=True)
    if learning_rate <= 0 or temperature <= 0:
        raise InputError("--lr and --temperature must be above 0")
    overrides = _student_overrides(student)
    config = DistillConfig(temperature, alpha, safety_weight, steps, batch_size, learning_rate, seed)
    model, tokenizer = load_model(teacher, device=device)
    if tokenizer is None:
        raise InputError(f"{teacher}: no tokenizer files; distillation needs the teacher's tokenizer")
    trained, stats = distill_tiny(model, tokenizer, overrides, config, device)
    with staged_folder(out) as staging:
        save_model(trained, tokenizer, staging)
        record_provenance(staging, teacher, "distill", {**asdict(config), "student": stats["student"]}, seed=seed)
    typer.echo(f"distilled {teacher} → {out}: {stats['parameters']:,} parameters, final loss {stats['final_loss']}")
    return EXIT_OK
