"""The side environment that runs llm-compressor, and the JSON contract with its worker script.

llm-compressor 0.14 pins ``transformers<=5.17`` while compsec resolves a newer one, so ``make llmc`` builds
``.venv-llmc`` beside compsec's ``.venv`` (reusing its torch) with ``pip install llmcompressor==0.14.0.1``.
compsec finds its Python at ``$COMPSEC_LLMC_PYTHON``, else ``.venv-llmc/bin/python`` next to the running
environment or at the root of the source checkout. The worker (:mod:`compsec.llmc.oneshot_worker`) gets one
JSON request file and prints one JSON line; anything else it prints is kept for the error message.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from compsec.errors import CompsecError

ENV_VAR = "COMPSEC_LLMC_PYTHON"
SIDE_VENV = ".venv-llmc"
WORKER = Path(__file__).with_name("oneshot_worker.py")
FIX = (f"build it with `make llmc` (python3 -m venv {SIDE_VENV} && {SIDE_VENV}/bin/pip install "
       f"llmcompressor==0.14.0.1) or point ${ENV_VAR} at a Python that has llm-compressor")


def side_python() -> Path:
    """The side environment's interpreter; CompsecError saying how to build it when none is found."""
    configured = os.environ.get(ENV_VAR)
    if configured:
        candidates = [Path(configured)]
    else:
        checkout = Path(__file__).resolve().parents[3]
        candidates = [Path(sys.prefix).parent / SIDE_VENV / "bin" / "python", checkout / SIDE_VENV / "bin" / "python"]
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise CompsecError(f"llm-compressor's environment was not found (looked at "
                       f"{', '.join(map(str, candidates))}); {FIX}")


def run_worker(request: dict, timeout_s: float = 3600) -> dict:
    """Run the worker on ``request`` (see its docstring) and return its JSON answer.

    CompsecError with the worker's last output lines when it fails (e.g. llm-compressor refusing a shape)."""
    python = side_python()
    with tempfile.TemporaryDirectory(prefix="compsec-llmc-") as tmp:
        request_file = Path(tmp) / "request.json"
        request_file.write_text(json.dumps(request), encoding="utf-8")
        env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1", "PYTHONPATH": ""}
        try:
            done = subprocess.run([str(python), str(WORKER), str(request_file)], capture_output=True, text=True,
                                  timeout=timeout_s, env=env, check=False)
        except subprocess.TimeoutExpired:
            raise CompsecError(f"llm-compressor did not finish within {timeout_s:.0f} s") from None
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        tail = " | ".join((done.stderr.strip().splitlines() or ["no output"])[-3:])
        raise CompsecError(f"llm-compressor failed (exit {done.returncode}): {tail[-600:]}")
    return json.loads(lines[-1])
