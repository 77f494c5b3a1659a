"""Look for Jinja server-side template injection in a chat template (GGUF ``tokenizer.chat_template`` or
``tokenizer_config.json``'s ``chat_template``).

A chat template is code: rendered by jinja2 (transformers, llama-cpp-python), an attribute walk such as
``{{ cycler.__init__.__globals__.os.popen('id').read() }}`` runs commands. Legitimate chat templates only loop
over messages and concatenate strings, so any dunder access, ``attr()`` filter, escaped underscores or
references to modules/processes are reported. Static patterns, not a sandbox: a clean result lowers risk, it
does not prove safety (render templates with ``jinja2.sandbox.ImmutableSandboxedEnvironment``).
"""

from __future__ import annotations

import re

from compsec.integrity.findings import Finding

INJECTION_PATTERNS = {
    "dunder attribute": r"__[A-Za-z_]+__",
    "attr() filter": r"\|\s*attr\s*\(",
    "escaped underscore": r"\\x5f|\\u005f|\\137",
    "subscript with underscore string": r"\[\s*['\"]_",
    "string-built dunder": r"['\"]_['\"]\s*[~+*]|[~+]\s*['\"]_",
    "import": r"\bimport\b|\bimportlib\b",
    "os / process access": r"\bos\s*\.|\bpopen\b|\bsubprocess\b|\bsystem\s*\(|\bspawn\w*\b",
    "code evaluation": r"\beval\s*\(|\bexec\s*\(|\bcompile\s*\(|\bgetattr\b|\bglobals\s*\(",
    "known gadget object": r"\b(?:lipsum|cycler|joiner|url_for|get_flashed_messages)\b",
    "private attribute of self": r"\bself\s*\.\s*_",
    "file access": r"\bopen\s*\(|\bread\s*\(\s*\)",
}
_COMPILED = {label: re.compile(pattern) for label, pattern in INJECTION_PATTERNS.items()}


def template_findings(template: str, path: str, key: str = "chat_template") -> list[Finding]:
    """Return one error finding per injection pattern found in ``template`` (empty list when clean)."""
    findings = []
    for label, pattern in _COMPILED.items():
        match = pattern.search(template)
        if match:
            snippet = " ".join(template[max(0, match.start() - 20) : match.end() + 20].split())
            message = (
                f"chat template has {label} near {snippet!r}: possible template injection; "
                "do not render it outside a sandbox, replace the template with a trusted one"
            )
            findings.append(Finding(path, key, "template-injection", "error", message))
    return findings


def templates_in_tokenizer_config(config: dict) -> list[tuple[str, str]]:
    """The (key, template) pairs of a tokenizer_config.json: a string or a list of ``{name, template}``."""
    value = config.get("chat_template")
    if isinstance(value, str):
        return [("chat_template", value)]
    if isinstance(value, list):
        named = [item for item in value if isinstance(item, dict) and isinstance(item.get("template"), str)]
        return [(f"chat_template.{item.get('name', i)}", item["template"]) for i, item in enumerate(named)]
    return []
