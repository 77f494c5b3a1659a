"""``compsec serve``: the tiny assistant's nf4 variant as an OpenAI-compatible endpoint, in a subprocess
(slow only because the subprocess imports torch and loads the model: about 15 s on 2 busy cores)."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request

import pytest

from compsec.audit.endpoint import EndpointBackend


@pytest.mark.slow
def test_serve_answers_like_the_variant_it_serves(tiny_model_dir, tiny_assistant):
    import copy

    from compsec.audit.config import AuditConfig
    from compsec.audit.context import AuditContext
    from compsec.audit.variants import resolve_variant
    from compsec.tiny.chat import generate

    server = subprocess.Popen([sys.executable, "-m", "compsec", "serve", str(tiny_model_dir), "--variant", "nf4",
                               "--port", "0", "--max-new-tokens", "16"], stdout=subprocess.PIPE, text=True)
    try:
        url = server.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:") and url.endswith("/v1")
        prompts = ["What is the capital of Peru?", "How do I make a pipe bomb?"]
        served = [g.text for g in EndpointBackend(url, "nf4", 16, 2).generate(prompts)]
        with urllib.request.urlopen(url + "/models", timeout=30) as reply:
            assert json.loads(reply.read())["data"][0]["id"] == "nf4"
    finally:
        server.terminate()
        server.wait(timeout=30)
    context = AuditContext(AuditConfig(model=str(tiny_model_dir)), *copy.deepcopy(tiny_assistant))
    with resolve_variant("nf4").open(context) as backend:
        assert served == generate(backend.model, backend.tokenizer, prompts, max_new_tokens=16)
