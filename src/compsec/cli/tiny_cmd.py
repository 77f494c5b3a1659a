"""``compsec tiny --out DIR``: write the embedded tiny assistant as a Hugging Face folder.

The folder loads with ``AutoModelForCausalLM.from_pretrained(DIR)`` / ``AutoTokenizer.from_pretrained(DIR)``.
The first call trains the assistant (about a minute on 2 CPU cores) and caches it.
"""

from __future__ import annotations

from pathlib import Path

import typer

from compsec.cli.main import EXIT_OK, app


@app.command("tiny")
def tiny(
    out: str = typer.Option(..., "--out", help="Folder to write the model and tokenizer files into."),
    force: bool = typer.Option(False, "--force", help="Replace OUT even when it already holds files."),
) -> int:
    """Write the tiny assistant (trained once, then cached) into OUT."""
    from compsec.outputs import check_output_folder, staged_folder
    from compsec.tiny.assistant import export_tiny_assistant
    from compsec.tiny.cache import read_meta

    check_output_folder(out, force=force)
    with staged_folder(out) as staging:
        export_tiny_assistant(staging)
    folder = Path(out)
    stats = read_meta(folder)["stats"]
    typer.echo(
        f"wrote the tiny assistant to {folder} ({stats['parameters']:,} parameters, "
        f"trained in {stats['train_seconds']} s)"
    )
    return EXIT_OK
