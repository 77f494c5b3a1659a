"""Who catches each case of the hostile pickle corpus: compsec's scanner, picklescan, fickling, modelscan.

    PYTHONPATH=src python bench/scanner_corpus.py      # prints a markdown table and the per-tool catch counts

A catch is a ``flagged`` verdict; ``warned`` (compsec: an unexpected, not deny-listed global), ``clean``,
``not scanned`` and ``error`` are not. Takes a few seconds (every tool runs in process).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from compsec.integrity.collect import integrity_findings
from compsec.integrity.hostile_corpus import CASES
from compsec.integrity.second_opinions import second_opinions


def main() -> None:
    rows, catches = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for index, (name, (build, kind)) in enumerate(CASES.items()):
            folder = Path(tmp) / str(index)
            folder.mkdir()
            path = build(folder)
            opinions = second_opinions(path, integrity_findings(path))
            for opinion in opinions:
                catches[opinion.tool] = catches.get(opinion.tool, 0) + (opinion.verdict == "flagged")
            rows.append(f"| {name} | {kind} | " + " | ".join(o.verdict for o in opinions) + " |")
    tools = list(catches)
    print("| case | kind | " + " | ".join(tools) + " |")
    print("|---|---|" + "---|" * len(tools))
    print("\n".join(rows))
    print(f"| **caught (of {len(CASES)})** | | " + " | ".join(str(catches[t]) for t in tools) + " |")


if __name__ == "__main__":
    main()
