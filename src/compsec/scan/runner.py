"""``scan_path``: stream a checkpoint's tensors one at a time and run the detectors on every weight.

Tensors are read from the mmap'd file in chunks of whole rows (:mod:`compsec.scan.reader`), so memory stays at
one chunk's boxes whatever the checkpoint's size.  By default every weight of every quantizable tensor is
examined for every checked format (``weights_examined == params_scanned``); ``ScanConfig.sample_weights`` asks
for a quick look at blocks drawn from every row with a fresh random seed (:mod:`compsec.scan.coverage`).
Tensors come from :func:`compsec.models.linear.quantizable_weights` (the architecture table, or every 2-D linear
weight when the architecture is unknown); every tensor not examined is listed with the reason.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from compsec.errors import CompsecError, InputError
from compsec.scan.aggregate import decide
from compsec.scan.config import ScanConfig
from compsec.scan.findings import Evidence, ScanFinding, ScanReport


@dataclass
class ScanState:
    """What a scan has gathered so far (one per :func:`scan_path` call)."""

    evidence: list[Evidence] = field(default_factory=list)
    findings: list[ScanFinding] = field(default_factory=list)  # non-finite weights and information
    skipped: list[dict] = field(default_factory=list)
    misses: list[dict] = field(default_factory=list)
    params: int = 0
    examined: int = 0
    tensors: int = 0

    def skip(self, name: str, reason: str) -> None:
        self.skipped.append({"tensor": name, "reason": reason})


def behavioural_contrast(path: Path, cfg: ScanConfig) -> list[Evidence]:
    """``--behaviour``: the Monte-Carlo rank test of :mod:`compsec.scan.behaviour` for every checked format."""
    from compsec.scan.behaviour import behaviour_evidence

    return behaviour_evidence(path, list(cfg.format_names()), seed=cfg.seed or 0)


def integrity_notes(path: Path) -> list[str]:
    """Refuse hostile or malformed files (InputError naming the first error) and return warnings as notes;
    tensor values are not read here (the scan reads them, NaN/Inf included)."""
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
    from compsec.scan.coverage import fresh_seed, worst_miss
    from compsec.scan.near_dequantized import error_interval_evidence
    from compsec.scan.prequantized_read import prequantized_method
    from compsec.scan.prune_gap import prune_gap_evidence
    from compsec.scan.reader import stored_tensors
    from compsec.scan.tensor_stream import scan_stored

    cfg, path, start = cfg or ScanConfig(), Path(path), time.perf_counter()
    checked = [formats.get(name) for name in cfg.format_names()]
    if not checked:
        raise CompsecError("no quantization format is registered; reinstall compsec (formats import failed)")
    candidates = [fmt for fmt in map(formats.get, formats.names())  # K-quants need llama-cpp-python
                  if getattr(fmt, "available", lambda: True)()]
    notes: list[str] = integrity_notes(path)
    if path.is_file() and path.suffix == ".gguf":
        return _scan_gguf(path, cfg, candidates, notes, start)
    method = prequantized_method(path) if path.is_dir() else None
    if method is not None:
        return _scan_prequantized(path, method, cfg, notes, start)
    if cfg.behaviour and not (path / "config.json").is_file():  # refuse before the work, not after
        raise InputError(f"--behaviour needs a model folder with config.json and tokenizer files; {path} is not one")
    seed = None if not cfg.sample_weights else (cfg.seed if cfg.seed is not None else fresh_seed())
    state = ScanState()
    k_formats = [fmt for fmt in candidates if getattr(fmt, "family", "") == "gguf-k"]
    for tensor in stored_tensors(path, notes):
        scan_stored(tensor, checked, candidates, cfg, seed, state)
        if k_formats and tensor.skip_reason() is None:  # the error-interval test reads the whole tensor
            state.evidence += error_interval_evidence(tensor.name, tensor.slice[:], k_formats)
        if tensor.skip_reason() is None:  # the pruning-gap tests also read the whole tensor
            state.evidence += prune_gap_evidence(tensor.name, tensor.slice[:])
        if on_tensor is not None and tensor.not_quantizable is None:
            on_tensor(tensor.name, math.prod(tensor.shape))
    suspicious, score = decide(state.evidence, cfg.alpha)
    suspicious = [f for f in state.findings if f.severity == "suspicious"] + suspicious
    info = [f for f in state.findings if f.severity == "info"]
    if cfg.behaviour:
        suspicious, info, score = _with_behaviour(path, cfg, suspicious, info, score)
    testable = sum(e.p_value is not None for e in state.evidence)
    verdict = "suspicious" if suspicious else ("clean" if testable else "not scanned")
    if suspicious and any(f.detector == "nonfinite" for f in suspicious):
        score = max(score, 300.0)
    return ScanReport(str(path), verdict, score, suspicious + info, [f.name for f in checked], state.params,
                      time.perf_counter() - start, state.tensors, state.examined, len(state.evidence), notes,
                      settings=_settings(cfg, seed), skipped=state.skipped, sample_seed=seed,
                      miss_probability=worst_miss(state.misses))


def _scan_gguf(path: Path, cfg: ScanConfig, candidates: list, notes: list[str], start: float) -> ScanReport:
    """A GGUF file: the tests its quantized (or F32) weights allow (:mod:`compsec.scan.gguf_scan`)."""
    from compsec.scan.gguf_scan import CANNOT_SEE, gguf_evidence

    if cfg.behaviour:
        raise InputError("--behaviour needs a model folder; a .gguf file is scanned statically only")
    k_formats = [fmt for fmt in candidates if getattr(fmt, "family", "") == "gguf-k"]
    evidence, weights, tensors = gguf_evidence(path, k_formats)
    return _static_report(path, evidence, weights, tensors, notes + [CANNOT_SEE], cfg, start)


def _scan_prequantized(path: Path, method: str, cfg: ScanConfig, notes: list[str], start: float) -> ScanReport:
    """A pre-quantized folder: the tests its stored codes and scales allow (:mod:`compsec.scan.prequantized_scan`)."""
    from compsec.scan.prequantized_scan import CANNOT_SEE, prequantized_evidence

    if cfg.behaviour:
        raise InputError("--behaviour compares a model with its quantized variants; this folder is already "
                         "quantized, so it is scanned statically only (drop --behaviour)")
    evidence, weights, tensors, more = prequantized_evidence(path, method)
    return _static_report(path, evidence, weights, tensors, notes + more + [CANNOT_SEE], cfg, start)


def _static_report(path: Path, evidence: list[Evidence], weights: int, tensors: int, notes: list[str],
                   cfg: ScanConfig, start: float) -> ScanReport:
    """The report of a scan that read quantized weights (GGUF, pre-quantized folder): never clean untested."""
    if cfg.formats or cfg.sample_weights:
        notes = notes + ["--formats and --sample do not apply to stored quantized weights (every one is examined)"]
    suspicious, score = decide(evidence, cfg.alpha)
    testable = sum(e.p_value is not None for e in evidence)
    verdict = "suspicious" if suspicious else ("clean" if testable else "not scanned")
    return ScanReport(str(path), verdict, score, suspicious, sorted({e.format for e in evidence}), weights,
                      time.perf_counter() - start, tensors, weights, len(evidence), notes,
                      settings=_settings(cfg, None))


def _with_behaviour(path: Path, cfg: ScanConfig, suspicious: list, info: list, score: float):
    from compsec.scan.behaviour import behaviour_findings
    from compsec.scan.wanda_gap import wanda_gap_evidence

    gaps, gap_score = decide(wanda_gap_evidence(path), cfg.alpha)  # a family of its own (BH over tensors)
    suspicious, score = suspicious + gaps, max(score, gap_score)
    judged = behaviour_findings(behavioural_contrast(path, cfg))
    suspicious = suspicious + [f for f in judged if f.severity == "suspicious"]
    info = info + [f for f in judged if f.severity == "info"]
    score = max([score] + [min(300.0, -math.log10(f.p_value * len(judged))) for f in judged
                           if f.severity == "suspicious"])
    return suspicious, info, score


def _settings(cfg: ScanConfig, seed: int | None) -> dict:
    from dataclasses import asdict

    out = {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(cfg).items()}
    out["seed"] = seed
    return out
