"""``compsec tiny --out DIR [--fixture smollm2-safety]``: write a cached fixture model as a Hugging Face folder.

The folder loads with ``AutoModelForCausalLM.from_pretrained(DIR)`` / ``AutoTokenizer.from_pretrained(DIR)``.
The first call builds the fixture and caches it: the tiny assistant trains in about a minute on 2 CPU cores;
``smollm2-safety`` (SmolLM2-135M-Instruct safety-tuned, needs the ``[smollm]`` extra) in minutes.
"""

from __future__ import annotations

from pathlib import Path

import typer

from compsec.cli.main import EXIT_OK, app

FIXTURES = ("tiny-assistant", "smollm2-safety")


@app.command("tiny")
def tiny(
    out: str = typer.Option(..., "--out", help="Folder to write the model and tokenizer files into."),
    force: bool = typer.Option(False, "--force", help="Replace OUT even when it already holds files."),
    fixture: str = typer.Option("tiny-assistant", "--fixture",
                                help=f"Which cached model: {' or '.join(FIXTURES)} (SmolLM2-135M-Instruct "
                                     "safety-tuned on CPU, the [smollm] extra)."),
) -> int:
    """Write a fixture model (built once, then cached) into OUT: the tiny assistant by default."""
    from compsec.errors import InputError
    from compsec.outputs import check_output_folder, staged_folder
    from compsec.tiny.cache import copy_cached_folder, read_meta

    if fixture not in FIXTURES:
        raise InputError(f"--fixture {fixture!r} is not a fixture; choose one of {', '.join(FIXTURES)}")
    check_output_folder(out, force=force)
    with staged_folder(out) as staging:
        copy_cached_folder(_fixture_dir(fixture), staging)
    folder = Path(out)
    stats = read_meta(folder)["stats"]
    size = f"{stats['parameters']:,} parameters, " if "parameters" in stats else ""
    typer.echo(f"wrote the {fixture} model to {folder} ({size}trained in {stats['train_seconds']} s)")
    return EXIT_OK


def _fixture_dir(fixture: str) -> Path:
    if fixture == "smollm2-safety":
        from compsec.safety.fixture import safe_smollm_dir

        return safe_smollm_dir()
    from compsec.tiny.assistant import tiny_assistant_dir

    return tiny_assistant_dir()
