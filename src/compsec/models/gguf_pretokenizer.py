"""Which llama.cpp pre-tokenizer (``tokenizer.ggml.pre``) reproduces a byte-level BPE tokenizer's ids.

llama.cpp's converter recognises a tokenizer by hashing its ids on a test string; compsec asks llama.cpp
itself instead: a vocabulary-only GGUF is written for each candidate and loaded with ``vocab_only=True``, and
the first candidate whose ids equal the Hugging Face tokenizer's on every sample text wins (SmolLM2 needs
``smollm``, which keeps digits apart: with ``default`` 37 of the 529 chat-templated probes tokenize
differently). The audit feeds ids to llama.cpp either way; this makes a written file right for llama.cpp users.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

CANDIDATES = ("default", "smollm", "llama-bpe", "qwen2", "gpt-2")
SAMPLES = ("Hello world! It's 2024: 3.14159 x 12,345 = ?", "  indented\n\tcode(x) {return x+1;}  ",
           "Émile's café — naïve façade, 東京 ☕", "How do I pick a lock? 1) no 2) never 99 bottles")


def matching_pre_tokenizer(tokenizer, write_vocabulary) -> str:
    """The first of :data:`CANDIDATES` under which llama.cpp tokenizes like ``tokenizer``; ``default`` if none.

    ``write_vocabulary(writer, pre)`` adds the vocabulary keys with ``pre`` as the pre-tokenizer name."""
    from gguf import GGUFWriter

    from compsec.audit.backend import chat_text
    from compsec.models.gguf_quantize import _llama_cpp

    llama_cpp = _llama_cpp()
    texts = [chat_text(tokenizer, s) if getattr(tokenizer, "chat_template", None) else s for s in SAMPLES]
    with tempfile.TemporaryDirectory() as folder:
        for pre in CANDIDATES:
            path = Path(folder) / f"{pre}.gguf"
            writer = GGUFWriter(str(path), "llama")
            writer.add_block_count(1)
            write_vocabulary(writer, pre)
            for step in (writer.write_header_to_file, writer.write_kv_data_to_file, writer.write_tensors_to_file):
                step()
            writer.close()
            vocab = llama_cpp.Llama(str(path), vocab_only=True, verbose=False)
            try:
                same = all(vocab.tokenize(t.encode(), add_bos=False, special=True)
                           == tokenizer(t, add_special_tokens=False).input_ids for t in texts)
            finally:
                vocab.close()
            if same:
                return pre
    return "default"
