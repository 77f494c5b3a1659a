"""The defence matrix: rows = attack artifacts, columns = defences, cells = what a deployment would see.

Rows come from ``compsec attack`` folders (``DIR/attack.json`` + ``DIR/model``): box-constrained injection
(measured under each of its target formats), the adaptive shrunk-box variant (:mod:`compsec.defend.adaptive`,
with ``adaptive_k``) and outlier injection.  Columns: ``none``, ``noise-1e-3``, ``noise-auto`` (harden's
calibrated sigma), ``clip`` (block-outlier clipping), ``group-clip-zero`` / ``group-clip-divide`` (per-group
clipping, :mod:`compsec.defend.group_clip`; opt-in) and ``mixed`` (the KL-ranked budget of tensors kept in
full precision, the rest quantized).  Each cell holds the attack's malicious rate in fp32 and in every target
format (content injection: keyword rate; over-refusal: refusal rate; outlier: fraction of weights the REAL
library quantizes to zero in the attacked layers), the fp32 utility change against the undefended model in
points (instruction accuracy and multiple-choice utility), and the fraction of codes the defence changed.

Pruning-conditioned rows (``--targets prune-*``) are measured under real pruners instead of formats
(:mod:`compsec.defend.prune_cells`, security-aware calibration for llm-compressor included).

``DIR/defense.json`` is rewritten after every cell, and cells already there are reused (resumable).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from compsec.defend.noise import DEFAULT_C
from compsec.errors import InputError

DEFENCES = ("none", "noise-1e-3", "noise-auto", "clip", "mixed")
GROUP_CLIP = ("group-clip-zero", "group-clip-divide")  # "Widening the Gap"'s per-group clipping (opt-in columns)
MALICIOUS_METRIC = {"content-injection": "keyword_rate", "custom": "keyword_rate", "over-refusal": "refusal_rate",
                    "outlier": "zero_code_fraction", "widen-gap": "keyword_rate"}


@dataclass(frozen=True)
class MatrixConfig:
    """``attack_dirs``: ``compsec attack`` output folders; ``adaptive_k``: also build and test the shrunk-box
    variant of each box-constrained attack (None: skip); ``probe_limit``: probes per set when measuring."""

    attack_dirs: tuple[str, ...]
    out: str
    defences: tuple[str, ...] = DEFENCES
    c: float = DEFAULT_C
    seed: int = 0
    budget: float = 0.05
    adaptive_k: float | None = 3.0
    probe_limit: int | None = 40
    max_new_tokens: int = 40
    device: str = "cpu"

    def __post_init__(self) -> None:
        unknown = [d for d in self.defences if d not in DEFENCES + GROUP_CLIP]
        if unknown:
            raise InputError(f"unknown defence {unknown[0]!r}; use some of {', '.join(DEFENCES + GROUP_CLIP)}")
        for folder in self.attack_dirs:
            if not (Path(folder) / "attack.json").is_file():
                raise InputError(f"{folder} has no attack.json; run `compsec attack --out {folder}` first")


@dataclass(frozen=True)
class Row:
    """One attack artifact: its label, scenario, target formats, keyword, model folder and attacked weights."""

    label: str
    scenario: str
    targets: tuple[str, ...]
    keyword: str
    model_dir: str
    outlier_weights: tuple[str, ...] = ()


def rows_for(config: MatrixConfig) -> list[Row]:
    """The rows: one per attack folder, plus its adaptive variant when asked and the attack has a box."""
    rows = []
    folders = [Path(f) for f in config.attack_dirs]
    for folder in folders:
        summary = json.loads((folder / "attack.json").read_text(encoding="utf-8"))
        base = {"scenario": summary["scenario"], "targets": tuple(summary["targets"]), "keyword": summary["keyword"]}
        weights = tuple(summary.get("outlier", {}).get("weights", ()))
        rows.append(Row(f"{_row_name(folder, folders)}:{summary['scenario']}", model_dir=str(folder / "model"),
                        outlier_weights=weights, **base))
        if config.adaptive_k is not None and (folder / "box" / "box.json").is_file():
            if _row_name(folder, folders) != folder.name:  # adaptive variants are stored by folder name
                raise InputError(f"two attack folders are named {folder.name!r}; give them distinct names (a "
                                 "symlink works) or pass --adaptive-k 0")
            from compsec.defend.adaptive import adaptive_attack

            model_dir = adaptive_attack(folder, config.out, k=config.adaptive_k, c=config.c)
            rows.append(Row(f"{_row_name(folder, folders)}:adaptive-k{config.adaptive_k:g}", model_dir=str(model_dir), **base))
    return rows


def _row_name(folder: Path, folders: list[Path]) -> str:
    """The folder's name, with its parent's when another attack folder has the same name (e.g. ``x/run``)."""
    clash = sum(f.name == folder.name for f in folders) > 1
    return f"{folder.parent.name}/{folder.name}" if clash else folder.name


def _load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def run_matrix(config: MatrixConfig) -> dict:
    """Fill every (row, defence) cell, resuming from ``out/defense.json``; returns the whole document."""
    from compsec.defend.cells import measure_cell

    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "defense.json"
    document = _load(path)
    document.update({"config": asdict(config), "defences": list(config.defences), "metric": MALICIOUS_METRIC})
    cells = document.setdefault("cells", {})
    for row in rows_for(config):
        document.setdefault("rows", {})[row.label] = asdict(row)
        row_cells = cells.setdefault(row.label, {})
        for defence in ("none", *[d for d in config.defences if d != "none"]):
            if defence in row_cells:
                continue
            started = time.perf_counter()
            row_cells[defence] = measure_cell(row, defence, config, row_cells.get("none"))
            row_cells[defence]["seconds"] = round(time.perf_counter() - started, 1)
            path.write_text(json.dumps(document, indent=1, default=str), encoding="utf-8")
    document["headline"] = headline(document)
    path.write_text(json.dumps(document, indent=1, default=str), encoding="utf-8")
    return document


def headline(document: dict) -> dict:
    """Per row and defence: malicious rate (fp32 and each format) and fp32 utility change, for a quick read."""
    return {label: {d: {"malicious": cell["malicious"], "utility_change_points": cell["utility_change_points"]}
                    for d, cell in row.items()} for label, row in document.get("cells", {}).items()}
