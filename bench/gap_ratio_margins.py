"""The widen-gap-ratio test's margins: share of 32-weight blocks whose largest |w| is >= 3x the second largest.

    PYTHONPATH=src python bench/gap_ratio_margins.py [--root DIR] [--json FILE]

1. ``benign``: the worst tensor of every benign artifact of the scan corpus (``bench/scan_corpus.py``: fp
   safetensors, GGUFs written by libllama, pre-quantized folders read by the scanner's own readers), SmolLM2-135M
   in fp32 and synthetic Student-t(3) / Student-t(2) / Laplace weights;
2. ``injected``: the tiny assistant's layer-0 weights with outliers xk (k = 2, 3, 4; every 32-weight block,
   :func:`compsec.attack.widen_gap.widen_gap`) in fp32 and after each format of the registry that the corpus
   deploys (bit-exact with bitsandbytes / gguf), the weakest and the strongest tensor.

Measured 2026-12-03 (2 shared cores, ~3 min): benign worst 0.96 % (SmolLM2 Q4_K_M blk.23.attn_v), SmolLM2 fp32
0.84 %, SmolLM2 nf4 0.66 %, every tiny-assistant artifact <= 0.15 %; Student-t(3) 4.8 %, t(2) 12.8 %, Laplace
0.4 %; median ratio 1.0-1.4 everywhere.  Injected, weakest tensor: x4 >= 98.8 % (nf4) and 100 % in fp32 / int8 /
q4_0 / q4_k / q6_k / q8_0; x3 >= 67.6 % (nf4); x2 4-30 % (fp4 the highest, 5-11 % elsewhere): the test
stops between x2 and x3.  Threshold (``scan/gap_ratio.py``): fires at 50 %.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

FORMATS = ("fp32", "int8", "nf4", "fp4", "q4_0", "q4_k", "q6_k", "q8_0")


def share(w: torch.Tensor) -> float:
    from compsec.scan.gap_ratio import gapped_blocks

    gapped, counted = gapped_blocks(w)
    return gapped / max(counted, 1)


def artifact_tensors(label: dict):
    """``(name, float32 2-D weight)`` as the scanner reads the artifact (dequantized for GGUF / folders)."""
    from safetensors.torch import load_file

    from compsec.scan.gguf_scan import FLOATS, gguf_tensors
    from compsec.scan.prequantized_read import READERS, prequantized_method

    path = Path(label["model_dir"])
    if path.suffix == ".gguf":
        yield from ((n, w) for n, qtype, w in gguf_tensors(path) if qtype not in FLOATS)
    elif label.get("method"):
        yield from ((q.name, q.weight) for q in READERS[prequantized_method(path)](path))
    else:
        for f in sorted(path.glob("*.safetensors")):
            yield from ((n, t.float()) for n, t in load_file(str(f)).items() if t.dim() == 2 and "embed" not in n)


def worst(tensors) -> tuple[float, str]:
    return max(((share(w), n) for n, w in tensors if w.shape[-1] % 32 == 0), default=(0.0, "-"))


def benign(root: Path) -> dict[str, tuple[float, str]]:
    from compsec.models.smollm import smollm_folder

    out = {}
    for path in sorted(root.glob("*/label.json")):
        label = json.loads(path.read_text(encoding="utf-8"))
        if label["label"] == "benign":
            out[label["name"]] = worst(artifact_tensors(label))
    out["smollm2-fp32"] = worst(artifact_tensors({"model_dir": smollm_folder()}))
    torch.manual_seed(7)
    for df in (3.0, 2.0):
        out[f"student-t({df:g})"] = (share(torch.distributions.StudentT(df).sample((256, 512))), "synthetic")
    out["laplace"] = (share(torch.distributions.Laplace(0.0, 1.0).sample((256, 512))), "synthetic")
    return out


def injected() -> dict[str, tuple[float, float]]:
    """``"xk format"`` -> (weakest, strongest) tensor's share of gapped blocks."""
    from compsec.attack.widen_gap import widen_gap
    from compsec.formats import get
    from compsec.models.linear import quantizable_weights
    from compsec.tiny.assistant import load_tiny_assistant

    model, _ = load_tiny_assistant()
    params = dict(model.named_parameters())
    weights = [params[q.name].detach().float() for q in quantizable_weights(model) if q.layer == 0]
    out = {}
    for k in (2.0, 3.0, 4.0):
        attacked = [widen_gap(w, torch.Generator().manual_seed(0), factor=k)[0] for w in weights]
        for name in FORMATS:
            fmt = None if name == "fp32" else get(name)
            seen = [a if fmt is None else fmt.dequantize(fmt.quantize(a)).reshape(a.shape) for a in attacked]
            shares = [share(w) for w in seen]
            out[f"x{k:g} {name}"] = (min(shares), max(shares))
    return out


def main() -> None:
    from compsec.paths import cache_dir

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", help="scan corpus folder (default: $COMPSEC_CACHE/scan-corpus)")
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()
    result = {"benign_worst": benign(Path(args.root) if args.root else cache_dir() / "scan-corpus"),
              "injected": injected()}
    for name, (value, tensor) in result["benign_worst"].items():
        print(f"benign   {name:34s} {value:7.2%}  {tensor}")
    for name, (weakest, strongest) in result["injected"].items():
        print(f"injected {name:34s} {weakest:7.2%} .. {strongest:7.2%}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
