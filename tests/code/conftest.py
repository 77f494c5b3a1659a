"""The tiny coder fixture: the tiny assistant fine-tuned to write the secure code answers (cached)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_coder_dir() -> Path:
    """Path of the cached tiny coder's Hugging Face folder (fine-tuned on first use, about 1 min CPU)."""
    from compsec.tiny.code_model import tiny_coder_dir as build

    return build()


@pytest.fixture(scope="session")
def tiny_coder(tiny_coder_dir):
    """(model, tokenizer) of the tiny coder, fp32 on CPU, eval mode. Do not modify in place."""
    from compsec.tiny.code_model import load_tiny_coder

    return load_tiny_coder(tiny_coder_dir)
