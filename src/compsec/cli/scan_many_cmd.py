"""``compsec scan-many SOURCES --out DIR``: the scan over many models on Ray, results in ``DIR/results.parquet``.

Exit 0 every model clean, 1 any suspicious, 2 any error row or nothing scanned (bad input: 2, one line, nothing
written).  ``compsec scan-many --report DIR`` re-renders ``DIR/report.html`` from the table alone.
"""

from __future__ import annotations

import typer

from compsec.cli.main import EXIT_ERROR, app

OWN_STATE = ("results.parquet",)


@app.command("scan-many")
def scan_many(
    sources: str = typer.Argument("", help="A list file (one path or fsspec URL a line, or JSONL with a 'source' field) or a folder tree of models."),
    out: str = typer.Option("", "--out", help="Results folder: results.parquet (appended to; a rerun skips digests already there) and report.html."),
    report: str = typer.Option("", "--report", help="Only re-render report.html of this results folder from its table (no SOURCES)."),
    workers: int = typer.Option(1, min=1, help="Models scanned at once (one Ray task and CPU each)."),
    batch: int = typer.Option(0, min=0, help="Models per Ray task. 0 (default): sized from the measured seconds per model (about 2 s of scanning a task, smaller near the end). More saves per-task work on many small models; a batch whose worker dies is rerun one model per task."),
    ray_address: str = typer.Option("", "--ray", help="Ray cluster to join: 'auto' (the running one) or HOST:PORT. Default: a local Ray instance with --workers CPUs, started and stopped with the run."),
    sample: int = typer.Option(0, min=0, help="0 (default): examine every weight, whole files are read. N: the scan's quick look at about N weights per tensor; remote files are then read by ranges (header + sampled rows)."),
    seed: int = typer.Option(None, help="Seed of a --sample run (default: a fresh random seed per model, recorded in the table)."),
    timeout: float = typer.Option(600.0, min=0.001, help="Seconds one model may take (read and scan); past it its task is killed and the row is an error."),
    memory_mb: int = typer.Option(4096, min=1, help="MiB one model's scan may allocate (Linux RLIMIT_DATA; the mmap'd file does not count); more gives an error row."),
    formats: str = typer.Option("", help="Formats to check, comma-separated (default: the scan's)."),
    retry_errors: bool = typer.Option(False, "--retry-errors", help="Scan again sources whose newest row is an error (default: any digest in the table is skipped)."),
    force: bool = typer.Option(False, "--force", help="Use a --out folder that holds other files (never deletes anything)."),
) -> None:
    """Scan many models (local paths or fsspec URLs) on Ray, one isolated task per model with a time and memory limit; one results row per (model, digest)."""
    from compsec.cluster.config import ScanManyConfig
    from compsec.cluster.report import render_report
    from compsec.errors import InputError

    if report:
        if sources or out:
            raise InputError("--report DIR re-renders a results folder; give no SOURCES or --out with it")
        path, facts = render_report(report)
        _print_summary(facts, path)
        raise typer.Exit(_exit_of_facts(facts))
    if not sources or not out:
        raise InputError("give SOURCES and --out DIR (or --report DIR to re-render a report)")
    names = tuple(part.strip() for part in formats.split(",") if part.strip())
    run = ScanManyConfig(workers=workers, batch=batch, ray=ray_address, sample=sample, seed=seed, timeout_s=timeout,
                         memory_mb=memory_mb, formats=names, retry_errors=retry_errors)
    raise typer.Exit(_run(sources, out, run, force))


def _run(sources: str, out: str, run, force: bool) -> int:
    from compsec.cluster.driver import exit_code, run_rows
    from compsec.cluster.driver import scan_many as scan_on_ray
    from compsec.cluster.report import render_report, summary
    from compsec.cluster.sources import read_sources
    from compsec.cluster.table import ResultsTable
    from compsec.outputs import check_output_folder
    from compsec.scan.config import ScanConfig

    entries = read_sources(sources)
    ScanConfig(formats=run.formats).format_names()  # unknown format names fail here, before Ray starts
    check_output_folder(out, "--out", force=force, own=OWN_STATE)
    table = ResultsTable(out, run.flush_rows)
    result = scan_on_ray(entries, table, run, on_row=_print_row)
    rows = run_rows(result, table.rows())
    path, _ = render_report(out)
    _print_summary(summary(rows), path, len(result.skipped))
    return exit_code(rows)


def _print_row(row: dict) -> None:
    what = "already in the table" if row.get("skipped") else (row["verdict"] + (f": {row['error']}"
                                                                               if row["error"] else ""))
    typer.echo(f"{row['source']}: {what}", err=True)


def _print_summary(facts: dict, report_path, skipped: int = 0) -> None:
    share = facts["bytes_read"] / facts["file_bytes"] if facts["file_bytes"] else 0.0
    typer.echo(f"{facts['models']} models ({skipped} already in the table): clean {facts['clean']}, suspicious "
               f"{facts['suspicious']}, error {facts['error']}; {facts['bytes_read']:,} of {facts['file_bytes']:,} "
               f"bytes read ({100 * share:.1f} %); report {report_path}")


def _exit_of_facts(facts: dict) -> int:
    if facts["error"] or not facts["models"]:
        return EXIT_ERROR
    return 1 if facts["suspicious"] else 0
