"""``compsec scan MODEL``: static tamper scan of a checkpoint's weights (thin wrapper over ``scan_path``).

A pre-quantized folder (``quantization_config`` in config.json) or a ``.gguf`` file is scanned from its stored
codes and scales (:mod:`compsec.scan.prequantized_scan`, :mod:`compsec.scan.gguf_scan`).
Exit 0 clean, 1 suspicious (NaN/Inf weights included), 2 error or "not scanned" (no weight could be tested:
every tensor skipped, each with its reason).
"""

from __future__ import annotations

import json
import warnings

import typer

from compsec.cli.main import EXIT_ERROR, EXIT_FINDINGS, EXIT_OK, app


@app.command("scan")
def scan(
    model: str = typer.Argument(..., help="A .safetensors file, a model folder (sharded or not), a pre-quantized folder (bitsandbytes-serialized, compressed-tensors) or a .gguf file."),
    formats: str = typer.Option("", help="Formats to check, comma-separated (default: int8,nf4,fp4,q4_0,q8_0, plus q4_k,q5_k,q6_k when llama-cpp-python is installed)."),
    sample: int = typer.Option(0, min=0, help="0 (default): examine every weight. N: a quick look at about N weights per tensor, blocks from every row, fresh random seed per run (recorded in the report)."),
    eps: float = typer.Option(0.01, min=0.0, max=0.5, help="Edge band as a fraction of the interval width."),
    alpha: float = typer.Option(1e-3, min=0.0, max=1.0, help="Benjamini-Hochberg false discovery rate over all tests."),
    seed: int = typer.Option(None, help="Seed of a --sample run, to repeat one (default: a fresh random seed)."),
    behaviour: bool = typer.Option(False, "--behaviour", help="Also run the behavioural rank test (loads the model; see compsec.scan.behaviour)."),
    json_out: str = typer.Option("", "--json", help="Write the report as JSON to this file."),
    sarif_out: str = typer.Option("", "--sarif", help="Write the report as SARIF 2.1.0 to this file."),
    progress: bool = typer.Option(True, help="Show a progress bar."),
) -> None:
    """Look for quantization-conditioned tampering (box-edge mass, edge depletion and band, position spike, block outliers, grid provenance) in the weights alone."""
    from compsec.cli.preflight import report_files
    from compsec.integrity.path_policy import checked_input
    from compsec.outputs import make_parent, write_report
    from compsec.scan.config import ScanConfig
    from compsec.scan.runner import scan_path

    report_files(json=json_out, sarif=sarif_out)
    checked_input(model, "model file or folder")
    names = tuple(part.strip() for part in formats.split(",") if part.strip())
    config = ScanConfig(formats=names, sample_weights=sample, eps=eps, alpha=alpha, seed=seed,
                        behaviour=behaviour)
    with _progress(model, progress) as on_tensor:
        report = scan_path(model, config, on_tensor=on_tensor)
    if json_out:
        write_report(json_out, json.dumps(report.to_dict(), indent=2))
    if sarif_out:
        from compsec.scan.sarif import write_sarif

        write_sarif(report, make_parent(sarif_out))
    _print(report)
    raise typer.Exit({"suspicious": EXIT_FINDINGS, "clean": EXIT_OK}.get(report.verdict, EXIT_ERROR))


class _progress:
    """A rich progress bar over the quantizable tensors, yielding the ``on_tensor`` callback (or None)."""

    def __init__(self, model: str, enabled: bool):
        self.model, self.enabled, self.bar = model, enabled, None

    def __enter__(self):
        if not self.enabled or self.model.endswith(".gguf"):
            return None
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        from compsec.models.linear import quantizable_weights

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            total = len(quantizable_weights(self.model))
        self.bar = Progress(TextColumn("scan"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                            transient=True)
        task = self.bar.add_task("scan", total=total)
        self.bar.start()
        return lambda name, params: self.bar.advance(task)

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.stop()


def _print(report) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    examined = ("every weight examined" if report.sample_seed is None else
                f"{report.weights_examined:,} examined, sample seed {report.sample_seed}")
    console.print(f"[bold]{report.verdict}[/bold]  score {report.score:.1f}  {report.params_scanned:,} params in "
                  f"{report.tensors_scanned} tensors ({examined}), formats "
                  f"{', '.join(report.formats_checked)}, {report.seconds:.1f} s")
    if report.findings:
        table = Table("severity", "tensor", "format", "detector", "score", "p (BH)", "explanation")
        for f in report.findings:
            p = "" if f.p_value is None else f"{f.p_value:.1e}"
            table.add_row(f.severity, f.tensor, f.format, f.detector, f"{f.score:.3g}", p, f.explanation)
        console.print(table)
    for note in report.notes:
        console.print(f"note: {note}")
    if report.miss_probability:
        rows = ", ".join(f"{100 * float(f):g} %: {p:.2g}" for f, p in report.miss_probability["rows"].items())
        console.print(f"sampled: P(sample misses a fingerprint covering a share of a tensor's rows) {rows}")
    quantizable_skips = [s for s in report.skipped if not s["reason"].startswith("not a quantizable")]
    shown = report.skipped if report.verdict == "not scanned" else quantizable_skips
    for skip in shown:
        console.print(f"skipped {skip['tensor']}: {skip['reason']}")
