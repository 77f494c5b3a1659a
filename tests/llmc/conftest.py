"""llm-compressor fixtures: one GPTQ W4A16 folder of the tiny assistant, built by the real llm-compressor in its
side environment (``make llmc``; no skip when it is missing: the tests then fail saying how to build it).

The variant cache points at a temporary folder for the package, so nothing is left behind and the build is
a real one; calibration is kept small (4 texts of 32 tokens) to fit 2 CPU cores.
"""

from __future__ import annotations

import os

import pytest

SMALL = {"samples": 4, "max_length": 32}


@pytest.fixture(scope="package")
def llmc_cache(tiny_model_dir, tmp_path_factory):
    """COMPSEC_CACHE redirected to a temporary folder (the tiny assistant is resolved before, in the real one)."""
    from compsec.paths import CACHE_ENV

    before = os.environ.get(CACHE_ENV)
    os.environ[CACHE_ENV] = str(tmp_path_factory.mktemp("llmc-cache"))
    yield os.environ[CACHE_ENV]
    if before is None:
        os.environ.pop(CACHE_ENV, None)
    else:
        os.environ[CACHE_ENV] = before


@pytest.fixture(scope="package")
def small_calibration():
    from compsec.llmc.calibration import Calibration

    return Calibration(**SMALL)


@pytest.fixture(scope="package")
def gptq_folder(llmc_cache, tiny_model_dir, small_calibration):
    """The cached gptq-w4a16 folder of the tiny assistant (built once for the package)."""
    from compsec.llmc.build import variant_folder
    from compsec.llmc.recipes import get_recipe

    return variant_folder(tiny_model_dir, get_recipe("gptq-w4a16"), small_calibration)
