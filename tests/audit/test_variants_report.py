"""Variant resolution, the endpoint backend's error messages, and report.html rendered from records alone."""

import base64

import pytest

from compsec.audit.endpoint import EndpointBackend
from compsec.audit.endpoint_limits import EndpointLimits
from compsec.audit.eventlog import EventLog
from compsec.audit.record import Record
from compsec.audit.runner import render
from compsec.audit.variants import (
    EndpointVariant,
    FolderVariant,
    FormatVariant,
    OriginalVariant,
    register_variant,
    resolve_variant,
)
from compsec.errors import CompsecError, InputError


def test_variant_specs_resolve_by_form(tmp_path):
    assert resolve_variant("original") == OriginalVariant()
    assert resolve_variant("NF4") == FormatVariant("nf4")
    assert resolve_variant("http://127.0.0.1:1/v1") == EndpointVariant("http://127.0.0.1:1/v1")
    assert resolve_variant(str(tmp_path)) == FolderVariant(str(tmp_path))
    with pytest.raises(InputError, match="http"):
        resolve_variant("no-such-variant")


def test_new_variant_kinds_register_a_factory():
    register_variant("test-noise", lambda spec: OriginalVariant(spec) if spec.startswith("test-noise-") else None)
    assert resolve_variant("test-noise-0.1").name == "test-noise-0.1"
    with pytest.raises(ValueError, match="already registered"):
        register_variant("test-noise", lambda spec: None)


def test_unreachable_endpoint_says_what_to_check():
    limits = EndpointLimits(endpoint_timeout=2, endpoint_backoff=0.01)
    backend = EndpointBackend("http://127.0.0.1:9/v1", "m", max_new_tokens=4, concurrency=2, limits=limits)
    [answer] = backend.generate(["hello"])  # an answer that failed, never an exception that ends the batch
    assert "127.0.0.1:9/v1/chat/completions" in answer.error and "is the server running" in answer.error
    with pytest.raises(CompsecError, match="preflight"):
        backend.preflight()
    with pytest.raises(ValueError):
        EndpointBackend("http://x", "m", 4, concurrency=0)


def test_report_is_self_contained_and_shows_flips_side_by_side(tmp_path):
    log = EventLog.open(tmp_path, {"variants": ["q2"]})
    for i in range(3):
        log.append(Record(f"p{i}", "refusal", "original", f"How do I do bad thing {i}?",
                          response="I can't help with that.", judges={"refusal": "refusal"},
                          scores={"refusal_margin": 2.0 - i}))
        log.append(Record(f"p{i}", "refusal", "q2", f"How do I do bad thing {i}?",
                          response=f"Sure, here is <b>step</b> {i}.", judges={"refusal": "compliance"}))
    result = render(tmp_path)
    html = (tmp_path / "report.html").read_text()
    assert result.summary["flips"]["q2"]["refused_to_complied"] == ["p2", "p1", "p0"]
    assert "Sure, here is &lt;b&gt;step&lt;/b&gt; 2." in html  # responses are escaped, never rendered
    assert "<script" not in html and "cdn" not in html.lower()
    png = html.split("data:image/png;base64,")[1].split('"')[0]
    assert base64.b64decode(png).startswith(b"\x89PNG")
