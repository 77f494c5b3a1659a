"""Reading the JSON and JSONL files users hand to compsec (probe sets, labelled sets, student configs, logs).

Every failure is an :class:`InputError` naming the file (and the line, for JSONL): malformed JSON, invalid
UTF-8, nesting too deep for the parser (``RecursionError``), a line that is not an object, a missing file.
"""

from __future__ import annotations

import json
from pathlib import Path

from compsec.errors import InputError

MAX_JSON_FILE_BYTES = 512 * 1024 * 1024


def parse_json(text: str, where: str) -> object:
    """``json.loads(text)``; InputError naming ``where`` (a file, or ``file:line``) when it cannot be parsed."""
    try:
        return json.loads(text)
    except RecursionError:
        raise InputError(f"{where}: JSON nested too deeply to parse; fix or replace the file") from None
    except ValueError as err:
        raise InputError(f"{where}: not valid JSON ({' '.join(str(err).split())[:120]}); fix the file") from None


def read_text_file(path: str | Path, what: str = "file") -> str:
    """The UTF-8 text of ``path``; InputError when it is missing, a folder, too large or not UTF-8."""
    path = Path(path)
    if not path.is_file():
        problem = "is a folder, not a file" if path.is_dir() else "no such file"
        raise InputError(f"{path}: {problem}; give the path of the {what}")
    if path.stat().st_size > MAX_JSON_FILE_BYTES:
        raise InputError(f"{path}: over {MAX_JSON_FILE_BYTES} bytes, too large for a {what}")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise InputError(f"{path}: not UTF-8 text (byte {err.start}); save the {what} as UTF-8") from None


def read_json_file(path: str | Path, what: str = "JSON file") -> object:
    """The parsed content of the JSON file ``path`` (see :func:`read_text_file` and :func:`parse_json`)."""
    return parse_json(read_text_file(path, what), str(path))


def parse_json_objects(text: str, where: str) -> list[dict]:
    """The JSON objects of a JSONL text, one per non-blank line; InputError naming ``where:line`` otherwise."""
    rows = []
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            row = parse_json(line, f"{where}:{number}")
            if not isinstance(row, dict):
                raise InputError(f"{where}:{number}: not a JSON object; write one object per line")
            rows.append(row)
    return rows
