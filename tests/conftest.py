"""Session-wide fixtures: the embedded tiny assistant and the digits classifier.

Both are built once into the compsec cache (``$COMPSEC_CACHE`` or ``~/.cache/compsec``) and reused by later
sessions; a cold build takes about a minute on 2 CPU cores. The loaded objects are shared by every test of
the session: tests that modify weights (quantize, attack...) must work on a ``copy.deepcopy``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_model_dir() -> Path:
    """Path of the cached tiny assistant's Hugging Face folder (trained on first use)."""
    from compsec.tiny.assistant import tiny_assistant_dir

    return tiny_assistant_dir()


@pytest.fixture(scope="session")
def tiny_assistant(tiny_model_dir):
    """(model, tokenizer) of the tiny assistant, fp32 on CPU, eval mode. Do not modify in place."""
    from compsec.tiny.assistant import load_tiny_assistant

    return load_tiny_assistant(tiny_model_dir)


@dataclass(frozen=True)
class DigitsFixture:
    """The cached digits MLP and its data: images (n, 64) floats in [0, 1], labels (n,) int64."""

    folder: Path
    model: object
    x_train: object
    x_test: object
    y_train: object
    y_test: object


@pytest.fixture(scope="session")
def digits_fixture() -> DigitsFixture:
    """The digits classifier (cached) with its seeded train / held-out split. Do not modify in place."""
    from compsec.tiny.digits import digits_dir, digits_split, load_digits_classifier

    folder = digits_dir()
    x_train, x_test, y_train, y_test = digits_split()
    return DigitsFixture(folder, load_digits_classifier(folder), x_train, x_test, y_train, y_test)


@pytest.fixture(scope="session")
def bad_models(tiny_model_dir, tmp_path_factory):
    """``{input class: BadModel}``: malformed copies of the tiny assistant (see tests/inputs/corpus.py). Read only."""
    from inputs.corpus import build_bad_models

    return build_bad_models(tiny_model_dir, tmp_path_factory.mktemp("bad-models"))
