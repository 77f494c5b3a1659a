"""Chat-template injection patterns are flagged; ordinary chat templates are not."""

import json

import pytest

from compsec.integrity import check_file
from compsec.integrity.template_check import template_findings

CLEAN = [
    ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"),
    ("{{ bos_token }}{% for message in messages %}{% if message['role'] == 'system' %}{{ message['content'] }}"
    "{% else %}[INST] {{ message['content'] | trim }} [/INST]{% endif %}{% endfor %}"),
    ("{%- set ns = namespace(found=false) -%}{%- for message in messages -%}{%- if message['role'] == 'system' -%}"
    "{%- set ns.found = true -%}{%- endif -%}{%- endfor -%}{{ raise_exception('x') if not ns.found }}"),
]
INJECTIONS = [
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ lipsum.__globals__['os'].system('id') }}",
    "{{ x|attr('\\x5f\\x5fclass\\x5f\\x5f') }}",
    "{{ self._TemplateReference__context }}",
    "{% set a = '_' ~ '_builtins' ~ '_' ~ '_' %}{{ x[a] }}",
    "{{ joiner.__init__.__globals__['__builtins__']['__import__']('subprocess') }}",
    "{{ namespace.__init__.__globals__.os.system('id') }}",
]


@pytest.mark.parametrize("template", CLEAN)
def test_ordinary_templates_are_clean(template):
    assert template_findings(template, "t") == []


@pytest.mark.parametrize("template", INJECTIONS)
def test_injection_templates_are_flagged(template):
    findings = template_findings(template, "t")
    assert findings and all(f.severity == "error" and "\n" not in f.message for f in findings)


def test_real_smollm2_template_is_clean():
    from compsec.integrity.gguf_check import read_gguf_header
    from compsec.models.smollm import smollm_gguf_path

    template = read_gguf_header(smollm_gguf_path()).metadata["tokenizer.chat_template"]
    assert "<|im_start|>" in template and template_findings(template, "t") == []


def test_tokenizer_config_and_jinja_files_are_checked(tmp_path):
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(
        {"chat_template": [{"name": "default", "template": CLEAN[0]}, {"name": "tool", "template": INJECTIONS[0]}]}))
    (tmp_path / "chat_template.jinja").write_text(INJECTIONS[1])
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "x", "auto_map": {"AutoModel": "m.M"}}))
    findings = check_file(tmp_path)
    kinds = {(f.tensor, f.kind, f.severity) for f in findings}
    assert ("chat_template.tool", "template-injection", "error") in kinds
    assert ("chat_template.jinja", "template-injection", "error") in kinds
    assert ("auto_map", "remote-code", "warning") in kinds
    assert not any(f.tensor == "chat_template.default" for f in findings)
