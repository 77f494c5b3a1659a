"""lm-evaluation-harness tasks on every audit variant, offline, through lm-eval's Python API.

Variants (``original`` first, then formats such as ``nf4`` or other model folders) are resolved and opened
exactly as ``compsec audit`` does, so a format variant is the one loaded model with its weights round-tripped
in place. Each open variant's model object is wrapped in lm-eval's ``HFLM`` and ``lm_eval.simple_evaluate``
runs the tasks with per-document logging, which gives compsec's paired view (documents lost and gained
against the original, exact McNemar) beside lm-eval's own aggregate scores.

Tasks are indexed by lm-eval's ``TaskManager`` from compsec's shipped folder
(``compsec/data/lm_eval_tasks``: ``compsec_utility_mc``, ``compsec_capitals_gen``) plus any ``include``
folders of your own; lm-eval's built-in tasks are not indexed (they download from the hub). The hub is
switched off (``HF_HUB_OFFLINE=1``, ``HF_DATASETS_OFFLINE=1``) while the tasks run.
"""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from compsec.errors import InputError, MissingDependencyError

SHIPPED_TASKS = ("compsec_utility_mc", "compsec_capitals_gen")
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


@dataclass(frozen=True)
class LmEvalRun:
    """What to evaluate: ``tasks`` (lm-eval task names) on the original ``model`` and each of ``variants``."""

    model: str
    tasks: tuple[str, ...] = SHIPPED_TASKS
    variants: tuple[str, ...] = ("nf4", "int8")
    include: tuple[str, ...] = field(default=())
    limit: int | None = None
    device: str = "cpu"
    batch_size: int = 16
    chat_template: bool = True

    def __post_init__(self) -> None:
        if not self.tasks:
            raise InputError("no lm-eval task given; shipped tasks: " + ", ".join(SHIPPED_TASKS))
        if self.limit is not None and self.limit < 1:
            raise InputError(f"limit must be >= 1 (or None for every document), got {self.limit}")
        if self.batch_size < 1:
            raise InputError(f"batch_size must be >= 1, got {self.batch_size}")
        for folder in self.include:
            if not Path(folder).is_dir():
                raise InputError(f"lm-eval task folder {folder!r} does not exist")


def shipped_tasks_dir() -> Path:
    """The folder of compsec's lm-eval task YAML files (an include_path for lm-eval's TaskManager)."""
    return Path(str(resources.files("compsec").joinpath("data/lm_eval_tasks")))


def require_lm_eval():
    """The ``lm_eval`` module, or MissingDependencyError with the pip line."""
    try:
        import lm_eval
    except ImportError as err:
        raise MissingDependencyError("lm_eval", extra="lm-eval", purpose="compsec lm-eval") from err
    return lm_eval


@contextmanager
def hub_offline():
    """Set the Hugging Face offline variables for the duration (previous values restored after)."""
    previous = {name: os.environ.get(name) for name in OFFLINE_ENV}
    os.environ.update(OFFLINE_ENV)
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def run_lm_eval(run: LmEvalRun, *, model=None, tokenizer=None) -> dict:
    """Evaluate every variant; returns the ``lm_eval.json`` payload (see :mod:`compsec.bridges.lm_eval_scores`).

    ``model``/``tokenizer`` may be passed preloaded (they are modified in place per variant and restored).
    """
    import compsec.llmc.variants
    import compsec.prune.variants  # noqa: F401  (prune-50, prune-2:4 ... variants)
    from compsec.audit.config import AuditConfig
    from compsec.audit.context import AuditContext
    from compsec.audit.variants import ORIGINAL, resolve_variant
    from compsec.bridges.lm_eval_scores import build_payload

    with hub_offline():
        lm_eval = require_lm_eval()
        manager = task_manager(run)
        config = AuditConfig(model=run.model, variants=run.variants, device=run.device, batch_size=run.batch_size)
        context = AuditContext(config, model, tokenizer)
        outputs, seconds = {}, {}
        for variant in [resolve_variant(spec) for spec in (ORIGINAL, *run.variants)]:
            started = time.perf_counter()
            with variant.open(context) as backend:
                outputs[variant.name] = _evaluate(lm_eval, manager, backend, run, variant.name)
            seconds[variant.name] = round(time.perf_counter() - started, 3)
    return build_payload(run, outputs, seconds, version=_version())


def task_manager(run: LmEvalRun):
    """lm-eval's TaskManager over the shipped folder and ``run.include``; InputError for unknown task names."""
    from lm_eval.tasks import TaskManager

    manager = TaskManager(include_path=[str(shipped_tasks_dir()), *run.include], include_defaults=False)
    unknown = [name for name in run.tasks if name not in manager.all_tasks]
    if unknown:
        raise InputError(f"unknown lm-eval task(s) {', '.join(unknown)}; available: "
                         f"{', '.join(manager.all_tasks)} (add folders of YAML tasks with --include)")
    return manager


def _evaluate(lm_eval, manager, backend, run: LmEvalRun, name: str) -> dict:
    from lm_eval.models.huggingface import HFLM

    if hasattr(backend, "lm_eval_model"):  # a backend with its own lm-eval LM (llama.cpp running a GGUF)
        lm = backend.lm_eval_model()
    elif getattr(backend, "model", None) is None:
        raise InputError(f"variant {name!r} has no local model (an endpoint?); lm-eval tasks need model weights")
    else:
        lm = HFLM(pretrained=backend.model, tokenizer=backend.tokenizer, device=run.device,
                  batch_size=run.batch_size)
    chat = run.chat_template and bool(getattr(backend.tokenizer, "chat_template", None))
    return lm_eval.simple_evaluate(model=lm, tasks=list(run.tasks), task_manager=manager, limit=run.limit,
                                   apply_chat_template=chat, log_samples=True, bootstrap_iters=1000,
                                   random_seed=0, numpy_random_seed=0, torch_random_seed=0,
                                   fewshot_random_seed=0)


def _version() -> str:
    from importlib.metadata import version

    return version("lm_eval")
