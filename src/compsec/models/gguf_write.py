"""Write a Llama-architecture model (HF module + tokenizer) as a GGUF file llama.cpp loads, as its converter would.

What ``convert_hf_to_gguf.py`` does for ``LlamaForCausalLM``, reimplemented on the ``gguf`` package: hyper-parameters
under ``llama.*``, tensors renamed with gguf's tensor-name map, the rows of ``attn_q`` / ``attn_k`` permuted to
llama.cpp's rotary layout (:func:`compsec.integrity.gguf_provenance._permute`), 2-D weights in ``outtype`` (F32 or
F16), 1-D tensors in F32, a tied ``lm_head`` left out (llama.cpp reuses ``token_embd``). The vocabulary is
written from ``tokenizer.json``: a byte-level BPE as ``gpt2`` (tokens + merges; the pre-tokenizer name that
makes llama.cpp's ids equal the tokenizer's, :mod:`compsec.models.gguf_pretokenizer`), a Metaspace (``▁``) BPE as
``llama`` (SentencePiece-style: tokens with score ``-rank`` of the merge that makes them), special tokens as
CONTROL, plus bos / eos / pad ids and the chat template. Other tokenizers are refused.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import torch

from compsec.errors import InputError

OUTTYPES = {"f32": (np.float32, 0), "f16": (np.float16, 1)}  # numpy dtype, llama_ftype of the file


def _hyper_parameters(writer, config) -> None:
    heads = config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    rope = getattr(config, "rope_parameters", None) or {}
    writer.add_block_count(config.num_hidden_layers)
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(heads)
    writer.add_head_count_kv(getattr(config, "num_key_value_heads", None) or heads)
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    writer.add_rope_dimension_count(head_dim)
    writer.add_rope_freq_base(float(rope.get("rope_theta", getattr(config, "rope_theta", 10000.0))))
    writer.add_vocab_size(config.vocab_size)


def _vocabulary(writer, tokenizer, vocab_size: int, pre: str | None = None) -> None:
    """Tokens, types, merges / scores, special ids and chat template from the tokenizer's ``tokenizer.json``."""
    from gguf import TokenType

    with tempfile.TemporaryDirectory() as folder:
        tokenizer.save_pretrained(folder)
        spec = json.loads((Path(folder) / "tokenizer.json").read_text(encoding="utf-8"))
    model, decoder = spec.get("model", {}), (spec.get("decoder") or {}).get("type")
    if model.get("type") != "BPE" or decoder not in ("ByteLevel", "Metaspace"):
        raise InputError(f"tokenizer ({model.get('type')} model, {decoder} decoder) has no GGUF writer here; "
                         "compsec writes byte-level or Metaspace BPE vocabularies: convert with llama.cpp's "
                         "convert_hf_to_gguf.py and pass the file as gguf-file:PATH")
    tokens = {i: f"[PAD{i}]" for i in range(vocab_size)}
    tokens.update({i: t for t, i in model["vocab"].items() if i < vocab_size})
    special = {t["id"] for t in spec.get("added_tokens", []) if t.get("special")}
    tokens.update({t["id"]: t["content"] for t in spec.get("added_tokens", []) if t["id"] < vocab_size})
    merges = [m if isinstance(m, str) else " ".join(m) for m in model.get("merges", [])]
    known = set(model["vocab"].values()) | {t["id"] for t in spec.get("added_tokens", [])}
    kinds = [TokenType.CONTROL if i in special else TokenType.NORMAL if i in known else TokenType.UNUSED
             for i in range(vocab_size)]
    writer.add_token_list([tokens[i] for i in range(vocab_size)])
    writer.add_token_types(kinds)
    if decoder == "ByteLevel":
        writer.add_tokenizer_model("gpt2")
        writer.add_tokenizer_pre(pre or _pre_tokenizer(tokenizer, vocab_size))
        writer.add_token_merges(merges)
    else:
        rank = {m.replace(" ", ""): -float(r) for r, m in enumerate(merges)}
        writer.add_tokenizer_model("llama")
        writer.add_token_scores([rank.get(tokens[i], -1e6) for i in range(vocab_size)])
    _special_ids(writer, tokenizer)


def _pre_tokenizer(tokenizer, vocab_size: int) -> str:
    from compsec.models.gguf_pretokenizer import matching_pre_tokenizer

    return matching_pre_tokenizer(tokenizer, lambda writer, pre: _vocabulary(writer, tokenizer, vocab_size, pre))


def _special_ids(writer, tokenizer) -> None:
    for role in ("bos", "eos", "pad", "unk"):
        token_id = getattr(tokenizer, f"{role}_token_id", None)
        if token_id is not None:
            getattr(writer, f"add_{role}_token_id")(int(token_id))
    writer.add_add_bos_token(False)  # the chat template writes bos itself; compsec feeds token ids
    if getattr(tokenizer, "chat_template", None):
        writer.add_chat_template(tokenizer.chat_template)


def _tensors(writer, model, outtype: str) -> None:
    from gguf import MODEL_ARCH, get_tensor_name_map

    from compsec.integrity.gguf_provenance import _permute

    config = model.config
    names = get_tensor_name_map(MODEL_ARCH.LLAMA, config.num_hidden_layers)
    heads = {"attn_q": config.num_attention_heads,
             "attn_k": getattr(config, "num_key_value_heads", None) or config.num_attention_heads}
    for hf_name, param in model.named_parameters():  # a tied lm_head is the embedding: listed once
        name = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if name is None:
            raise InputError(f"{hf_name}: no GGUF name for this tensor; only Llama-architecture models convert")
        w = param.detach().to("cpu", torch.float32)
        kind = name.split(".")[-2]
        if kind in heads:
            w = _permute(w, heads[kind])
        dtype = OUTTYPES[outtype][0] if w.dim() == 2 else np.float32
        writer.add_tensor(name, np.ascontiguousarray(w.numpy().astype(dtype)))


def write_gguf(model, tokenizer, path: str | Path, outtype: str = "f32") -> Path:
    """Write ``model`` (a ``LlamaForCausalLM``, any device) and ``tokenizer`` to ``path`` as an ``outtype`` GGUF."""
    from gguf import GGUFWriter

    if outtype not in OUTTYPES:
        raise InputError(f"GGUF outtype {outtype!r}: use one of {', '.join(OUTTYPES)}")
    if getattr(model.config, "model_type", None) != "llama":
        raise InputError(f"model type {getattr(model.config, 'model_type', None)!r}: compsec converts Llama-"
                         "architecture models to GGUF; convert others with llama.cpp and pass gguf-file:PATH")
    path = Path(path)
    writer = GGUFWriter(str(path), "llama")
    writer.add_name(getattr(model.config, "_name_or_path", "") or "compsec")
    writer.add_file_type(OUTTYPES[outtype][1])
    _hyper_parameters(writer, model.config)
    _vocabulary(writer, tokenizer, model.config.vocab_size)
    _tensors(writer, model, outtype)
    for step in (writer.write_header_to_file, writer.write_kv_data_to_file, writer.write_tensors_to_file):
        step()
    writer.close()
    return path
