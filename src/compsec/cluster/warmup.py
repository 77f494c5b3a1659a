"""Compile the scan's numba kernels before a memory ceiling is armed.

numba compiles (or loads from its on-disk cache) each kernel on first call, inside LLVM: an allocation that fails
there under ``RLIMIT_DATA`` is a C++ ``std::bad_alloc``, which aborts the whole worker instead of failing one
scan.  :func:`warm_kernels` therefore scans a small synthetic checkpoint (every storage dtype, benign and with
outliers, so the finding paths run too) once per process and scan configuration, without a ceiling.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

_WARMED: set[tuple] = set()


def _write_probe(path: Path) -> None:
    import torch
    from safetensors.torch import save_file

    from compsec.scan.synthetic import benign, outlier_injected

    gen = torch.Generator().manual_seed(0)
    tensors = {}
    for layer, dtype in enumerate((torch.float16, torch.bfloat16, torch.float32)):
        w = benign((64, 256), "gaussian", dtype, gen)
        tensors[f"model.layers.{layer}.mlp.up_proj.weight"] = w
        tensors[f"model.layers.{layer}.mlp.down_proj.weight"] = outlier_injected(w.clone(), 64, 0.05, gen)
    tensors["model.norm.weight"] = torch.ones(256, dtype=torch.float16)
    save_file(tensors, str(path))


def warm_kernels(cfg) -> None:
    """Run one scan with ``cfg`` (a :class:`compsec.scan.config.ScanConfig`) on a probe checkpoint, once per
    process and configuration; whatever the probe's verdict, every kernel it reached is compiled afterwards."""
    key = (cfg.formats, cfg.sample_weights > 0)  # not format_names(): this runs before every model
    if key in _WARMED:
        return
    from compsec.scan.runner import scan_path

    with tempfile.TemporaryDirectory(prefix="compsec-warm-") as work:
        probe = Path(work) / "probe.safetensors"
        _write_probe(probe)
        scan_path(probe, cfg)
    _WARMED.add(key)
