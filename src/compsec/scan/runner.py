"""``scan_path``: stream a checkpoint's quantizable tensors one at a time and run the detectors.

Only the examined rows of each tensor are read (``safe_open(...).get_slice`` over the mmap'd file), so memory
stays near the examined rows (a whole tensor at most, with ``sample_weights=0``) and a multi-GB checkpoint is
scanned without reading it all.  Tensors come from :func:`compsec.models.linear.quantizable_weights` (the
architecture table, or every 2-D linear weight when the architecture is unknown).
"""

from __future__ import annotations

import math
import time
import warnings
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import torch

from compsec.errors import CompsecError, InputError
from compsec.scan.aggregate import decide
from compsec.scan.config import ScanConfig
from compsec.scan.findings import Evidence, ScanFinding, ScanReport
from compsec.scan.tensor_scan import scan_batch

BATCH_WEIGHTS = 1 << 18  # examined weights boxed together (amortises the per-call cost of a preimage)

_DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}


def pick_rows(n_rows: int, row_length: int, budget: int, key: str, seed: int) -> list[int]:
    """Sorted distinct row indices: enough rows for ``budget`` weights (all rows when ``budget`` is 0; at least
    two, which row-wise formats need), chosen uniformly at random with a generator seeded by ``seed`` and the
    tensor name ``key``."""
    wanted = n_rows if budget == 0 else min(n_rows, max(2, -(-budget // max(row_length, 1))))
    if wanted == n_rows:
        return list(range(n_rows))
    gen = torch.Generator().manual_seed(seed * 1_000_003 + zlib.crc32(key.encode()))
    return sorted(torch.randperm(n_rows, generator=gen)[:wanted].tolist())


def read_rows(tensor_slice, rows: list[int], n_rows: int) -> torch.Tensor:
    """The given rows of a safetensors slice, reading contiguous runs in one call each."""
    if len(rows) == n_rows:
        return tensor_slice[:]
    runs, start = [], rows[0]
    for prev, cur in zip(rows, rows[1:] + [None]):
        if cur != prev + 1:
            runs.append(tensor_slice[start:prev + 1])
            start = cur
    return torch.cat(runs)


def examined_tensors(path: Path, cfg: ScanConfig, notes: list[str]) -> Iterator[tuple[str, torch.Tensor, int]]:
    """Yield ``(name, examined rows, total parameters)`` for each quantizable 2-D float tensor of ``path``."""
    from safetensors import safe_open

    from compsec.models.linear import quantizable_weights
    from compsec.models.stream import safetensors_files

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        wanted = {record.name for record in quantizable_weights(path)}
    notes += [str(w.message) for w in caught]
    for shard in safetensors_files(path):
        with safe_open(str(shard), framework="pt") as handle:
            for name in handle.keys():  # noqa: SIM118  (safe_open handles are not containers)
                tensor_slice = handle.get_slice(name)
                shape = tuple(tensor_slice.get_shape())
                if name not in wanted or len(shape) != 2 or tensor_slice.get_dtype() not in _DTYPES:
                    continue
                rows = pick_rows(shape[0], shape[1], cfg.sample_weights, name, cfg.seed)
                yield name, read_rows(tensor_slice, rows, shape[0]), shape[0] * shape[1]


def behavioural_contrast(path: Path, cfg: ScanConfig) -> list[Evidence]:
    """``--behaviour``: the Monte-Carlo rank test of :mod:`compsec.scan.behaviour` for every checked format."""
    from compsec.scan.behaviour import behaviour_evidence

    if not (path / "config.json").is_file():
        raise InputError(f"--behaviour needs a model folder with config.json and tokenizer files; {path} is not one")
    return behaviour_evidence(path, list(cfg.format_names()), seed=cfg.seed)


def integrity_notes(path: Path) -> list[str]:
    """Refuse hostile or malformed files (InputError naming the first error) and return warnings as notes;
    tensor values are not read here (the scan reads only the examined rows)."""
    from compsec.integrity.collect import finding_line, integrity_findings

    findings = integrity_findings(path, scan_values=False)
    errors = [finding_line(f) for f in findings if f.severity == "error"]
    if errors:
        raise InputError(f"{errors[0]} ({len(errors)} integrity error(s)); run `compsec check` for all of them "
                         "and fix the files before scanning")
    return [finding_line(f) for f in findings if f.severity == "warning"]


def scan_path(path: str | Path, cfg: ScanConfig | None = None,
              on_tensor: Callable[[str, int], None] | None = None) -> ScanReport:
    """Scan the safetensors file or model folder at ``path``; ``on_tensor(name, params)`` reports progress."""
    from compsec import formats

    cfg, path, start = cfg or ScanConfig(), Path(path), time.perf_counter()
    checked = [formats.get(name) for name in cfg.format_names()]
    if not checked:
        raise CompsecError("no quantization format is registered; reinstall compsec (formats import failed)")
    candidates = [fmt for fmt in map(formats.get, formats.names())  # K-quants need llama-cpp-python
                  if getattr(fmt, "available", lambda: True)()]
    evidence: list[Evidence] = []
    info: list[ScanFinding] = []
    notes: list[str] = integrity_notes(path)
    counts, batch = [0, 0, 0], []  # parameters, examined weights, tensors
    for name, rows, total in examined_tensors(path, cfg, notes):
        batch.append((name, rows, rows.numel() < total, total))
        if sum(item[1].numel() for item in batch) >= BATCH_WEIGHTS:
            _run_batch(batch, checked, candidates, cfg, evidence, info, counts, on_tensor)
            batch = []
    _run_batch(batch, checked, candidates, cfg, evidence, info, counts, on_tensor)
    suspicious, score = decide(evidence, cfg.alpha)
    if cfg.behaviour:
        from compsec.scan.behaviour import behaviour_findings

        judged = behaviour_findings(behavioural_contrast(path, cfg))
        suspicious += [f for f in judged if f.severity == "suspicious"]
        info += [f for f in judged if f.severity == "info"]
        score = max([score] + [min(300.0, -math.log10(f.p_value * len(judged))) for f in judged
                               if f.severity == "suspicious"])
    return ScanReport(str(path), "suspicious" if suspicious else "clean", score, suspicious + info,
                      [f.name for f in checked], counts[0], time.perf_counter() - start, counts[2], counts[1],
                      len(evidence), notes, settings=_settings(cfg))


def _settings(cfg: ScanConfig) -> dict:
    from dataclasses import asdict

    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(cfg).items()}


def _run_batch(batch, checked, candidates, cfg, evidence, info, counts, on_tensor) -> None:
    """Scan one batch of ``(name, rows, sampled, total)``, appending to ``evidence``/``info``/``counts``."""
    if not batch:
        return
    found, told = scan_batch([(name, rows, sampled) for name, rows, sampled, _ in batch], checked, candidates, cfg)
    evidence += found
    info += told
    for name, rows, _, total in batch:
        counts[0], counts[1], counts[2] = counts[0] + total, counts[1] + rows.numel(), counts[2] + 1
        if on_tensor is not None:
            on_tensor(name, total)
