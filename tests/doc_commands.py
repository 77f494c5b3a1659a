"""The commands the documentation shows (README.md, docs/**/*.md), extracted for tests/test_readme.py.

Three places hold commands: fenced shell blocks (one command per logical line, ``\\`` continues a line, ``#``
starts a comment, ``NAME=$(...)`` sets a shell variable), the first column of a table (a usage line: ``[...]`` is
optional and kept, ``a\\|b`` lists alternatives, each checked) and inline code elsewhere (a fragment of a command:
only its verb and option names must exist). A fenced block preceded by ``<!-- readme-test: run -->`` is run by the
test; ``<!-- readme-test: parse-only (why) -->`` says why one is only parsed.
"""

from __future__ import annotations

import itertools
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MARKER = re.compile(r"<!--\s*readme-test:\s*(run|parse-only)\b")
FENCE = re.compile(r"^\s*```\s*(\w*)")
SHELL_LANGS = {"", "bash", "sh", "shell", "console"}
INLINE = re.compile(r"`([^`]+)`")
ASSIGNMENT = re.compile(r"^(\w+)=\$\((.*)\)$")
MAKE = re.compile(r"(?:^|&&\s*|;\s*)make\s+([a-z][\w-]*)")


@dataclass(frozen=True)
class DocCommand:
    """One command as a document shows it: ``where`` is ``file:line``, ``kind`` block / table / inline."""

    where: str
    kind: str
    argv: tuple[str, ...]
    comment: str = ""
    mode: str = ""  # fenced blocks: "run", "parse-only" or "" (unmarked)


def documents() -> list[Path]:
    """README.md and every Markdown file under docs/."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def split_comment(line: str) -> tuple[str, str]:
    """(command, comment) of one shell line; a ``#`` inside quotes is not a comment."""
    quote = None
    for i, char in enumerate(line):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].strip(), line[i + 1:].strip()
    return line.strip(), ""


def _block_lines(lines: list[str], start: int) -> list[tuple[int, str]]:
    """Logical lines (continuations joined) of the fenced block whose body starts at ``start``; stops at the fence."""
    out, pending, first = [], "", start
    for number in range(start, len(lines)):
        raw = lines[number]
        if FENCE.match(raw):
            break
        if not pending:
            first = number
        if raw.rstrip().endswith("\\"):
            pending += raw.rstrip()[:-1] + " "
            continue
        out.append((first + 1, pending + raw))
        pending = ""
    return out


def _commands_of_line(where: str, line: str, mode: str) -> list[DocCommand]:
    text, comment = split_comment(line)
    assigned = ASSIGNMENT.match(text)
    text = assigned.group(2) if assigned else text
    pieces = [shlex.split(part) for part in text.split("&&") if part.strip()]
    return [DocCommand(where, "block", tuple(argv), comment, mode) for argv in pieces if argv]


def block_commands(path: Path) -> list[DocCommand]:
    """Every shell command of every fenced shell block of ``path`` (compsec or not), in order."""
    lines, found, marker = path.read_text(encoding="utf-8").splitlines(), [], ""
    inside = False
    for number, line in enumerate(lines):
        fence = FENCE.match(line)
        if fence and not inside:
            inside = True
            if fence.group(1) in SHELL_LANGS:
                for line_no, text in _block_lines(lines, number + 1):
                    found += _commands_of_line(f"{_name(path)}:{line_no}", text, marker)
            marker = ""
        elif fence:
            inside = False
        elif not inside and line.strip():
            hit = MARKER.search(line)
            marker = hit.group(1) if hit else ""
    return found


def _usage_variants(span: str) -> list[tuple[str, ...]]:
    """A usage line with ``[optional]`` parts kept and one argv per combination of ``a|b`` alternatives."""
    tokens = shlex.split(span.replace("\\|", "|").replace("[", "").replace("]", ""))
    choices = [token.split("|") if "|" in token else [token] for token in tokens]
    return [tuple(combo) for combo in itertools.product(*choices)]


def _first_cell(line: str) -> str:
    """The first cell of a Markdown table row ("" for any other line); ``\\|`` does not split cells."""
    if not line.lstrip().startswith("|"):
        return ""
    cells = re.split(r"(?<!\\)\|", line.strip())
    return cells[1] if len(cells) > 2 else ""


def _prose_lines(path: Path):
    """(line number, line) of ``path`` outside fenced blocks."""
    inside = False
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if FENCE.match(line):
            inside = not inside
        elif not inside:
            yield number, line


def _name(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else path.name


def span_commands(path: Path) -> list[DocCommand]:
    """``compsec ...`` in inline code outside fenced blocks: a table's first column ("table") or prose ("inline")."""
    found = []
    for number, line in _prose_lines(path):
        first = _first_cell(line)
        for span in INLINE.findall(line):
            if span.startswith("compsec ") or span == "compsec":
                kind = "table" if f"`{span}`" in first else "inline"
                found += [DocCommand(f"{_name(path)}:{number}", kind, argv) for argv in _usage_variants(span)]
    return found


def make_targets_named(path: Path) -> set[str]:
    """``make X`` targets in inline code and in fenced blocks of ``path``."""
    pieces = [span for _, line in _prose_lines(path) for span in INLINE.findall(line)]
    pieces += [" ".join(c.argv) for c in block_commands(path)]
    return {target for piece in pieces for target in MAKE.findall(piece.strip())}
