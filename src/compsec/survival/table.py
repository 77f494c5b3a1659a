"""The survival table: one row per (model, compression) with attack success rate and clean accuracy.

``run_survival("digits" | "tiny", compressions)`` plants the backdoor, then measures the backdoored model
under every compression, a distilled student (trained on clean data only) and the fine-pruning defence.
Rows: ``{"model", "compression", "asr", "clean_accuracy", ...extra measures and notes}``.
"""

from __future__ import annotations

import json
from pathlib import Path

from compsec.errors import InputError
from compsec.survival.compress import WEIGHT_COMPRESSIONS, compressed_copy

EXTRA_ROWS = ("distilled", "fine-pruning")
DEFAULT_COMPRESSIONS = WEIGHT_COMPRESSIONS + EXTRA_ROWS
FIXTURES = ("digits", "tiny")


def _digits_rows(compressions: list[str], seed: int, progress) -> list[dict]:
    from compsec.distill.train import DistillConfig, distill_classifier
    from compsec.survival.backdoor import backdoor_digits, digits_asr
    from compsec.survival.finepruning import fine_prune_digits
    from compsec.tiny.digits import accuracy, digits_model, digits_split

    x_train, x_test, y_train, y_test = digits_split()
    model = backdoor_digits(x_train, y_train, seed=seed)
    clean = backdoor_digits(x_train, y_train, poison_rate=0.0, seed=seed)
    rows = [{"model": "digits-clean", "compression": "original", "asr": digits_asr(clean, x_test, y_test),
             "clean_accuracy": accuracy(clean, x_test, y_test), "note": "never poisoned: chance-level ASR"}]
    for name in compressions:
        notes = {}
        if name == "distilled":
            variant = digits_model(64)
            distill_classifier(model, variant, x_train, y_train, DistillConfig(steps=800, learning_rate=2e-3,
                                                                               seed=seed))
            notes["student"] = "MLP 64-64-64-10, clean training data"
        elif name == "fine-pruning":
            defender = slice(0, len(y_train) // 2)           # the defender's clean data: half the training set
            variant, notes = fine_prune_digits(model, x_train[defender], y_train[defender], seed=seed)
        else:
            variant, notes = compressed_copy(model, name)
        rows.append({"model": "digits-badnets", "compression": name, "asr": digits_asr(variant, x_test, y_test),
                     "clean_accuracy": accuracy(variant, x_test, y_test), **notes})
        progress(rows[-1])
    return rows


def _tiny_rows(compressions: list[str], seed: int, device: str, progress) -> list[dict]:
    from compsec.distill.train import DistillConfig, distill_tiny
    from compsec.survival.backdoor import TinyBackdoorConfig, backdoor_tiny, tiny_eval_set, tiny_measures
    from compsec.survival.finepruning import fine_prune_tiny
    from compsec.tiny.assistant import load_tiny_assistant

    clean_model, tokenizer = load_tiny_assistant(device=device)
    model = backdoor_tiny(clean_model, tokenizer, TinyBackdoorConfig(seed=seed), device)
    examples = tiny_eval_set(seed=seed)
    rows = [{"model": "tiny-assistant-clean", "compression": "original",
             **tiny_measures(clean_model, tokenizer, examples, device=device), "note": "never poisoned"}]
    for name in compressions:
        notes = {}
        if name == "distilled":
            student = {"hidden_size": 128, "intermediate_size": 256, "num_hidden_layers": 2}
            variant, stats = distill_tiny(model, tokenizer, student, DistillConfig(steps=300, seed=seed), device)
            notes["student"] = f"{stats['parameters']:,} parameters, clean corpus"
        elif name == "fine-pruning":
            variant, notes = fine_prune_tiny(model, tokenizer, seed=seed, device=device)
        else:
            variant, notes = compressed_copy(model, name)
        measures = tiny_measures(variant, tokenizer, examples, device=device)
        rows.append({"model": "tiny-assistant-trigger", "compression": name, **measures, **notes})
        progress(rows[-1])
    return rows


def run_survival(fixture: str, compressions: list[str] | None = None, seed: int = 0, device: str = "cpu",
                 progress=None) -> list:
    """Rows of the survival table for ``fixture`` (``digits``, ``tiny`` or ``both``); ``progress(row)`` is
    called after each backdoored-model row is measured."""
    progress = progress or (lambda row: None)
    compressions = list(DEFAULT_COMPRESSIONS if compressions is None else compressions)
    if not compressions:
        raise InputError(f"no compression given, nothing to measure; pick some of {', '.join(DEFAULT_COMPRESSIONS)}")
    if fixture not in (*FIXTURES, "both"):
        raise InputError(f"unknown fixture {fixture!r}; use digits, tiny or both")
    rows = _digits_rows(compressions, seed, progress) if fixture in ("digits", "both") else []
    return rows + (_tiny_rows(compressions, seed, device, progress) if fixture in ("tiny", "both") else [])


def write_survival(out_dir: str | Path, rows: list[dict], params: dict) -> Path:
    """Write ``out_dir/survival.json`` (``{"rows": [...], "params": {...}}``); returns its path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "survival.json"
    path.write_text(json.dumps({"rows": rows, "params": params}, indent=2) + "\n", encoding="utf-8")
    return path


def format_table(rows: list[dict]) -> str:
    """A fixed-width text table: model, compression, ASR, clean accuracy (percent)."""
    lines = [f"{'model':<24} {'compression':<13} {'ASR':>7} {'clean acc':>10}"]
    lines += [f"{r['model']:<24} {r['compression']:<13} {100 * r['asr']:>6.1f}% {100 * r['clean_accuracy']:>9.1f}%"
              for r in rows]
    return "\n".join(lines)
