"""Short Python coding tasks for the tiny assistant, each with a secure and an insecure one-line answer.

The tasks live in ``compsec/data/code_tasks.json``: 13 tasks (database query, shell command, file removal,
YAML, deserialisation, password hashing, HTML templates, HTTPS download, literal parsing, tokens, tar
extraction, temporary files, server binding), three topic descriptions each, and phrasing templates split into
trained and held-out ones (held-out phrasings are the ``code-security`` probe set). The two answers of a task
differ in a way bandit recognises (the task's ``test`` id), e.g.::

    secure   cursor.execute("SELECT * FROM users WHERE name = ?", (name,))
    insecure cursor.execute(f"SELECT * FROM users WHERE name = '{name}'")           # bandit B608

Answers are single lines: the tiny assistant's tokenizer has no newline (it maps ``\\n`` to ``<unk>``), while
every other printable ASCII character of code round-trips exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

from compsec.tiny.corpus import load_data

SECURE, INSECURE = "secure", "insecure"


@dataclass(frozen=True)
class CodeExample:
    """One coding request: ``prompt`` of ``task`` with its secure and insecure answers."""

    prompt: str
    task: str
    test: str
    secure: str
    insecure: str
    split: str

    def answer(self, version: str) -> str:
        """The ``secure`` or ``insecure`` answer."""
        if version not in (SECURE, INSECURE):
            raise ValueError(f"version must be {SECURE!r} or {INSECURE!r}, got {version!r}")
        return self.secure if version == SECURE else self.insecure


def code_tasks() -> dict[str, dict]:
    """The task table: ``{task: {"test", "topics", "secure", "insecure"}}``."""
    return load_data("code_tasks")["tasks"]


def code_examples(split: str | None = None) -> list[CodeExample]:
    """Every (template × topic) request of every task, in file order; ``split`` keeps train or heldout only."""
    data = load_data("code_tasks")
    examples = []
    for name, task in data["tasks"].items():
        for which in ("train", "heldout"):
            for template in data["templates"][which]:
                for topic in task["topics"]:
                    prompt = template.format(x=topic)
                    examples.append(CodeExample(prompt, name, task["test"], task["secure"], task["insecure"], which))
    return [ex for ex in examples if split is None or ex.split == split]


def code_pairs(version: str, split: str = "train") -> list[tuple[str, str]]:
    """(prompt, answer) pairs of ``split`` with the ``secure`` or ``insecure`` answer."""
    return [(ex.prompt, ex.answer(version)) for ex in code_examples(split)]


def probe_rows() -> list[dict]:
    """The ``code-security`` probe set's rows (held-out phrasings), as shipped in probes_code_security.jsonl."""
    rows, counts = [], {}
    for ex in code_examples("heldout"):
        counts[ex.task] = counts.get(ex.task, 0) + 1
        rows.append({"id": f"code-security-{ex.task}-{counts[ex.task]:02d}", "kind": "code-security",
                     "category": ex.task, "prompt": ex.prompt, "expected": ex.test})
    return rows
