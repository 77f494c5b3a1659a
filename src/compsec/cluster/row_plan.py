"""Which bytes of a safetensors file a sampled scan reads, from the header alone.

For every 2-D float tensor: the probe rows of grid provenance (:func:`compsec.scan.grid_provenance.probe_of`) and
the rows of the sample layout the scan draws for that tensor (:func:`compsec.scan.coverage.sample_layout` with
the run's seed and the tensor's name, exactly as :func:`compsec.scan.tensor_stream.scan_stored` does), whole rows
(row-wise formats need each sampled row's abs-max).  Other tensors (norms, biases) are read whole when small,
else not at all.  Everything else of the file stays zeros in the sparse copy, which the scan does not look at.

Worked example: a 2048 x 2048 fp16 tensor at ``--sample 4096`` under blocks of 64 -> 64 random rows + 2 probe rows
= 66 rows of 4 KiB = 264 KiB of its 8 MiB (3.2 %).
"""

from __future__ import annotations

import math

from compsec.scan.config import ScanConfig

ITEM_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1,
              "U16": 2, "U32": 4, "U64": 8, "F8_E4M3": 1, "F8_E5M2": 1}
SCANNED_DTYPES = ("F32", "F16", "BF16")
SMALL_TENSOR_BYTES = 1 << 20


def needed_ranges(header: dict, cfg: ScanConfig, seed: int) -> list[tuple[int, int]]:
    """``(begin, end)`` byte ranges of the data buffer (after the header) that a scan with ``cfg`` and ``seed``
    reads; ``header``: the validated safetensors header."""
    from compsec import formats

    checked = [formats.get(name) for name in cfg.format_names()]
    ranges = []
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        begin, end = entry["data_offsets"]
        shape = entry["shape"]
        if len(shape) == 2 and entry["dtype"] in SCANNED_DTYPES and 0 not in shape:
            row_bytes = shape[1] * ITEM_BYTES[entry["dtype"]]
            ranges += [(begin + row * row_bytes, begin + (row + 1) * row_bytes)
                       for row in sampled_rows(name, tuple(shape), checked, cfg.sample_weights, seed)]
        elif end - begin <= SMALL_TENSOR_BYTES:
            ranges.append((begin, end))
    return [r for r in ranges if r[1] > r[0]]


def sampled_rows(name: str, shape: tuple[int, int], checked: list, budget: int, seed: int) -> list[int]:
    """The rows of tensor ``name`` a sampled scan reads: its probe rows and its sampled rows, sorted."""
    from compsec.scan.blocks import block_size_of
    from compsec.scan.coverage import sample_block, sample_layout, tensor_generator
    from compsec.scan.grid_provenance import PROBE_WEIGHTS

    n_rows, row_length = shape
    probe = range(min(n_rows, max(2, math.ceil(PROBE_WEIGHTS / max(row_length, 1)))))
    blocks = [block_size_of(f, row_length) for f in checked]
    block = sample_block(row_length, [size for size in blocks if size < row_length])
    rows, _ = sample_layout(n_rows, row_length, budget, block, tensor_generator(seed, name))
    return sorted(set(probe) | set(rows.tolist()))
