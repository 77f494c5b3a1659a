"""The vocabulary compsec writes into a GGUF tokenizes, in llama.cpp itself, as the Hugging Face tokenizer does.

The tiny assistant's Metaspace BPE (written as a SentencePiece-style ``llama`` vocabulary) is checked in
tests/audit/test_llamacpp.py; here SmolLM2's byte-level BPE, whose llama.cpp pre-tokenizer (``smollm``) is
picked by asking llama.cpp (:mod:`compsec.models.gguf_pretokenizer`). Only the tokenizer is loaded."""

import pytest

from compsec.audit.backend import chat_text
from compsec.audit.probes import KINDS, load_probe_set


@pytest.mark.real_model
def test_smollm2_vocabulary_picks_smollm_and_tokenizes_every_probe_alike(tmp_path):
    from gguf import GGUFWriter
    from llama_cpp import Llama
    from transformers import AutoTokenizer

    from compsec.models.gguf_write import _vocabulary
    from compsec.models.smollm import smollm_folder

    tokenizer = AutoTokenizer.from_pretrained(str(smollm_folder()))
    writer = GGUFWriter(str(tmp_path / "vocab.gguf"), "llama")
    writer.add_block_count(1)
    _vocabulary(writer, tokenizer, len(tokenizer))
    for step in (writer.write_header_to_file, writer.write_kv_data_to_file, writer.write_tensors_to_file):
        step()
    writer.close()
    vocab = Llama(str(tmp_path / "vocab.gguf"), vocab_only=True, verbose=False)
    try:
        assert vocab.metadata["tokenizer.ggml.pre"] == "smollm"
        for probe in [p for kind in KINDS for p in load_probe_set(kind)]:
            text = chat_text(tokenizer, probe.prompt)
            assert vocab.tokenize(text.encode(), add_bos=False, special=True) == \
                tokenizer(text, add_special_tokens=False).input_ids, probe.id
    finally:
        vocab.close()
