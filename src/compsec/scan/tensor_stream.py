"""Scan one tensor streamed from a checkpoint: NaN/Inf and storage pass, then every chunk (or its sampled blocks)
through the detectors; everything not examined is recorded with the reason."""

from __future__ import annotations

import math

from compsec.formats.base import Format
from compsec.integrity.safetensors_check import nonfinite_message
from compsec.scan.blocks import block_size_of
from compsec.scan.config import ScanConfig
from compsec.scan.coverage import miss_probabilities, sample_block, sample_layout, tensor_generator
from compsec.scan.findings import ScanFinding
from compsec.scan.reader import StoredTensor, values_check
from compsec.scan.tensor_plan import sampled_chunk, start_tensor
from compsec.scan.tensor_scan import rows_per_chunk


def scan_stored(tensor: StoredTensor, checked: list[Format], candidates: list[Format], cfg: ScanConfig,
                seed: int | None, state) -> None:
    """Scan ``tensor`` into ``state`` (:class:`compsec.scan.runner.ScanState`); ``seed`` None = every weight."""
    per_chunk = rows_per_chunk(checked, tensor.shape[0], tensor.shape[-1]) if len(tensor.shape) == 2 else 1
    bad, storage = values_check(tensor, per_chunk)
    if bad:
        state.findings.append(ScanFinding(tensor.name, "-", "nonfinite", float(bad), None,
                                          nonfinite_message(bad, tensor.name)))
    reason = tensor.skip_reason()
    if reason or bad:
        state.skip(tensor.name, reason or f"{bad} NaN/Inf values (reported as a finding): no quantization box exists")
        return
    shape = tuple(tensor.shape)
    block = None
    if seed is not None:
        block = sample_block(shape[1], [block_size_of(f, shape[1]) for f in checked
                                        if block_size_of(f, shape[1]) < shape[1]])
    probe = next(tensor.chunks(per_chunk))[1].to(storage)
    scan, info = start_tensor(tensor.name, probe, shape, checked, candidates, cfg, block)
    state.findings += info
    if scan is None:
        names = ", ".join(f.name for f in checked)
        state.skip(tensor.name, f"no checked format ({names}) quantizes shape {list(shape)}")
        return
    if seed is None:
        for _, rows in tensor.chunks(per_chunk):
            scan.add(rows.to(storage))
    else:
        rows_, columns = sample_layout(shape[0], shape[1], cfg.sample_weights, block,
                                       tensor_generator(seed, tensor.name))
        for first, rows in tensor.chunks(per_chunk):
            picked, with_absmax = sampled_chunk(rows.to(storage), first, rows_, columns, block)
            if picked.numel():
                scan.add(picked, with_absmax)
        state.misses.append(miss_probabilities(shape[0], len(rows_), columns.numel()))
    found = scan.evidence()
    state.findings += [ScanFinding(tensor.name, name, "format-refused", 0.0, None, why, severity="info")
                       for name, why in scan.refused.items()]
    if not any(e.p_value is not None for e in found):
        state.skip(tensor.name, f"too few weights ({math.prod(shape)}) for any test to have a null to compare with")
    state.evidence += found
    state.params += math.prod(shape)
    state.examined += scan.examined
    state.tensors += 1
