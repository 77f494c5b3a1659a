"""Was this bitsandbytes-serialized folder quantized from that source? Re-quantize with bitsandbytes, compare bytes.

A folder written by ``save_pretrained`` of a transformers model loaded with ``load_in_4bit`` / ``load_in_8bit``
(``quantization_config.quant_method == "bitsandbytes"`` in config.json) stores, per quantized linear layer:

- 4-bit: ``X.weight`` (packed codes, two per byte) and its statistics ``X.weight.absmax`` (uint8 codes of the
  absmax when double-quantized, with ``nested_absmax`` / ``nested_quant_map``), ``quant_map`` and a JSON
  ``quant_state.bitsandbytes__nf4|fp4`` naming the quant type, block size and the dtype the weight was in;
- 8-bit: ``X.weight`` (int8 codes) and ``X.SCB`` (row abs-max), from the weight cast to float16 first.

Both are pure functions of the source weight, so each is re-derived with the layers users deploy
(:mod:`compsec.formats.bnb_layers`: ``Params4bit`` / ``Int8Params`` on CPU) from the source tensor of the same
name, in the dtype the quant state records, and compared block by block (4-bit: a block differs when its codes
or its absmax byte differ; 8-bit: a row). Every other tensor (norms, embeddings) must equal the source cast to
its stored dtype. The verdict is that of :class:`compsec.integrity.provenance_result.QuantizedProvenance`.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from compsec.errors import InputError
from compsec.integrity.provenance_result import QuantizedProvenance, SourceTensors

STATE_KEY = ".quant_state.bitsandbytes__"
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def _quant_state(stored: dict[str, torch.Tensor], weight: str) -> dict:
    """The JSON quant state saved beside a 4-bit ``weight``; InputError naming the tensor if it is damaged."""
    key = next(k for k in stored if k.startswith(weight + STATE_KEY))
    try:
        state = json.loads(bytes(stored[key].numpy()).decode("utf-8"))
        return {"quant_type": str(state["quant_type"]), "blocksize": int(state["blocksize"]),
                "dtype": DTYPES[state["dtype"]], "shape": [int(n) for n in state["shape"]]}
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as err:
        raise InputError(f"{key}: not a bitsandbytes quant state ({err!r}); the folder is damaged") from None


def _differing_4bit(stored: dict[str, torch.Tensor], weight: str, w: torch.Tensor) -> tuple[int, int] | str:
    """(differing blocks, blocks) between the stored 4-bit weight and ``w`` re-quantized; a str when shapes differ."""
    from compsec.formats.bnb_layers import linear4bit_weight

    state = _quant_state(stored, weight)
    if list(w.shape) != state["shape"]:
        return f"shape {state['shape']} vs source {list(w.shape)}"
    nested = weight + ".nested_absmax" in stored
    mine = linear4bit_weight(w.to(state["dtype"]), state["quant_type"], state["blocksize"], nested)
    half = state["blocksize"] // 2
    blocks = -(-w.numel() // state["blocksize"])
    ours, theirs = mine.data.reshape(-1), stored[weight].reshape(-1)
    if ours.numel() != theirs.numel():
        return f"{theirs.numel()} packed bytes vs {ours.numel()} re-quantized"
    pad = blocks * half - ours.numel()
    codes_differ = torch.nn.functional.pad(ours != theirs, (0, pad)).reshape(blocks, half).any(1)
    saved = mine.quant_state.as_dict(packed=True)
    absmax_differ = saved["absmax"].reshape(-1) != stored[weight + ".absmax"].reshape(-1)
    bad = int((codes_differ | absmax_differ).sum())
    if nested and (not torch.equal(saved["nested_absmax"], stored[weight + ".nested_absmax"])
                   or _nested_offset(saved) != _nested_offset(stored, weight + ".")):
        bad = max(bad, 1)  # second-level statistics (absmax codes' scale, or their mean) differ; codes agree
    return bad, blocks


def _nested_offset(state_tensors: dict[str, torch.Tensor], prefix: str = "") -> float | None:
    """The mean of the block absmaxes that double quantization subtracts (``nested_offset`` of the JSON state):
    with one block it carries the whole scale, so a change of it alone changes every weight."""
    key = next(k for k in state_tensors if k.startswith(prefix + "quant_state.bitsandbytes__"))
    return json.loads(bytes(state_tensors[key].numpy()).decode("utf-8")).get("nested_offset")


def _differing_8bit(stored: dict[str, torch.Tensor], weight: str, w: torch.Tensor) -> tuple[int, int] | str:
    """(differing rows, rows) between the stored int8 weight + SCB and ``w`` re-quantized by ``Int8Params``."""
    from compsec.formats.bnb_layers import linear8bitlt_quantize

    codes, scb = stored[weight], stored[weight.removesuffix("weight") + "SCB"]
    if codes.shape != w.shape:
        return f"shape {list(codes.shape)} vs source {list(w.shape)}"
    cb, mine_scb = linear8bitlt_quantize(w)
    rows = (cb != codes).any(1) | (mine_scb.reshape(-1) != scb.reshape(-1))
    return int(rows.sum()), codes.shape[0]


def quantized_weight_kinds(stored: dict[str, torch.Tensor]) -> dict[str, str]:
    """weight name -> "4bit" / "8bit" for every quantized weight of the folder."""
    kinds = {k.split(STATE_KEY)[0]: "4bit" for k in stored if STATE_KEY in k}
    kinds.update({k.removesuffix("SCB") + "weight": "8bit" for k in stored if k.endswith(".SCB")})
    return kinds


def is_auxiliary(name: str, quantized: dict[str, str]) -> bool:
    """Statistics tensors that belong to a quantized weight (compared with it, not on their own)."""
    return name not in quantized and any(name.startswith(w + ".") or name in (w.removesuffix("weight") + "SCB",
                                                                                 w + "_format") for w in quantized)


def bnb_provenance(folder: Path, source: str | Path) -> QuantizedProvenance:
    """Decide whether the bitsandbytes-serialized ``folder`` was quantized from ``source`` (see module doc)."""
    from safetensors.torch import load_file

    files = sorted(folder.glob("*.safetensors"))
    if not files:
        raise InputError(f"{folder}: no .safetensors weights in this bitsandbytes folder")
    stored = {name: t for f in files for name, t in load_file(str(f)).items()}
    quantized = quantized_weight_kinds(stored)
    sources = SourceTensors(source)
    result = QuantizedProvenance()
    for name in sorted(stored):
        if is_auxiliary(name, quantized):
            continue
        w = sources.get(name)
        if w is None:
            result.unchecked.append(f"{name}: not in the source")
            continue
        kind = quantized.get(name)
        if kind is None:
            result.compare_plain(name, stored[name], w)
            continue
        outcome = (_differing_4bit if kind == "4bit" else _differing_8bit)(stored, name, w)
        unit = "blocks" if kind == "4bit" else "rows"
        result.add(name, f"bitsandbytes {kind}", outcome, unit)
    return result.decided()
