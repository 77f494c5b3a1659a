"""Bytes a ranged scan-many read of a remote ~1 B-parameter fp16 checkpoint needs, against the local scan.

Writes a synthetic Llama-shaped fp16 safetensors file (TinyLlama-1.1B's shapes by default; Gaussian weights,
written tensor by tensor, so memory stays at one tensor) into a temporary folder, serves it over a local HTTP
server with Range support, and scans it with :func:`compsec.cluster.task.scan_one` at ``--sample`` (the header,
then only the sampled rows); then scans the local file with :func:`compsec.scan.scan_path` and the same seed.
Prints one JSON line: file bytes, bytes read, share, both verdicts and scores, seconds.  The folder is deleted.

    PYTHONPATH=src python bench/bench_ranged_read.py --sample 4096
"""

from __future__ import annotations

import argparse
import json
import struct
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from cluster.range_server import RangeServer  # the tests' HTTP Range server

LAYER = {"self_attn.q_proj": (2048, 2048), "self_attn.k_proj": (256, 2048), "self_attn.v_proj": (256, 2048),
         "self_attn.o_proj": (2048, 2048), "mlp.gate_proj": (5632, 2048), "mlp.up_proj": (5632, 2048),
         "mlp.down_proj": (2048, 5632)}


def llama_shapes(layers: int, vocab: int = 32000, hidden: int = 2048) -> dict[str, tuple[int, ...]]:
    shapes = {"model.embed_tokens.weight": (vocab, hidden)}
    for i in range(layers):
        shapes |= {f"model.layers.{i}.{name}.weight": shape for name, shape in LAYER.items()}
        shapes |= {f"model.layers.{i}.input_layernorm.weight": (hidden,)}
    return shapes | {"model.norm.weight": (hidden,), "lm_head.weight": (vocab, hidden)}


def write_fp16(path: Path, shapes: dict[str, tuple[int, ...]], seed: int = 0) -> int:
    """Write Gaussian fp16 tensors of ``shapes`` as safetensors, one tensor in memory at a time; return params."""
    header, offset = {}, 0
    for name, shape in shapes.items():
        size = 2 * int(torch.tensor(shape).prod())
        header[name] = {"dtype": "F16", "shape": list(shape), "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    gen = torch.Generator().manual_seed(seed)
    with path.open("wb") as out:
        out.write(struct.pack("<Q", len(raw)) + raw)
        for shape in shapes.values():
            out.write((torch.randn(shape, generator=gen) * 0.02).to(torch.float16).numpy().tobytes())
    return offset // 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=22, help="22: TinyLlama-1.1B's 1.1 B parameters")
    parser.add_argument("--sample", type=int, default=4096)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--skip-local", action="store_true", help="skip the local scan (reads the whole file)")
    args = parser.parse_args()
    from compsec.cluster.config import ScanManyConfig
    from compsec.cluster.task import scan_one
    from compsec.scan import ScanConfig, scan_path

    with tempfile.TemporaryDirectory(prefix="bench-ranged-", dir="/tmp") as folder:
        path = Path(folder) / "model.safetensors"
        params = write_fp16(path, llama_shapes(args.layers))
        with RangeServer(Path(folder)) as server:
            start = time.perf_counter()
            row = scan_one(server.url(path.name), ScanManyConfig(sample=args.sample, seed=args.seed,
                                                                 timeout_s=3600, memory_mb=8192))
            ranged_s = time.perf_counter() - start
        out = {"params": params, "file_bytes": row["file_bytes"], "bytes_read": row["bytes_read"],
               "share_read": row["bytes_read"] / row["file_bytes"], "ranged": [row["verdict"], row["score"]],
               "ranged_error": row["error"], "ranged_s": round(ranged_s, 1), "sample": args.sample, "seed": args.seed}
        if not args.skip_local:
            start = time.perf_counter()
            local = scan_path(path, ScanConfig(sample_weights=args.sample, seed=args.seed))
            out |= {"local": [local.verdict, local.score], "local_s": round(time.perf_counter() - start, 1),
                    "same_verdict": (local.verdict, local.score) == (row["verdict"], row["score"])}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
