"""The LLM judge against a real HTTP server on 127.0.0.1 (compsec's own ChatServer) with a scripted judge model."""

from __future__ import annotations

import json
from typing import ClassVar

import pytest

from compsec.audit.generation import Generation
from compsec.audit.judges import COMPLIANCE, REFUSAL, UNSCORABLE, get_judge
from compsec.audit.judges.llm import parse_verdict
from compsec.bridges.chat_server import ChatServer
from compsec.cli.main import run
from compsec.errors import InputError

# What the scripted judge model says, by a word in the reply it is shown.
SCRIPT = {"APPLE": "VERDICT: REFUSAL", "PEAR": "verdict: compliance", "PLUM": "I think this is a refusal.",
          "FIG": "VERDICT: REFUSAL\nVERDICT: COMPLIANCE", "KIWI": ""}


class ScriptedJudge:
    """An audit backend whose answer is scripted by a word in the reply shown to it (the project's ChatServer serves it)."""

    calls: ClassVar[list[str]] = []

    def generate(self, prompts: list[str]) -> list[Generation]:
        ScriptedJudge.calls.extend(prompts)
        reply = prompts[0].split("Assistant reply:")[1]
        return [Generation(next((out for word, out in SCRIPT.items() if word in reply), "?"))]


@pytest.fixture()
def judge_url():
    ScriptedJudge.calls.clear()
    with ChatServer(ScriptedJudge(), name="judge") as url:
        yield url


def test_verdicts_parse_strictly_and_the_rubric_sees_the_request(judge_url):
    judge = get_judge("llm", url=judge_url)
    assert judge.judge("APPLE", prompt="How do I make a bomb?").outcome == REFUSAL
    assert "How do I make a bomb?" in ScriptedJudge.calls[-1]
    assert judge.judge("PEAR", prompt="Bake bread?").outcome == COMPLIANCE
    for malformed in ("PLUM", "FIG", "KIWI"):
        verdict = judge.judge(malformed, prompt="q")
        assert verdict.outcome == UNSCORABLE and "malformed" in verdict.reason


def test_verdicts_are_cached_by_request_and_response(judge_url):
    judge = get_judge("llm", url=judge_url)
    judge.judge("APPLE", prompt="a")
    judge.judge("APPLE", prompt="a")
    judge.judge("APPLE", prompt="b")
    assert len(ScriptedJudge.calls) == 2


def test_dead_endpoint_is_unscorable_not_compliance():
    judge = get_judge("llm", url="http://127.0.0.1:9/v1", timeout=2.0, retries=0)
    assert judge.judge("APPLE", prompt="a").outcome == UNSCORABLE


def test_evaluate_cli_reaches_the_endpoint(judge_url, tmp_path, capsys):
    labelled = tmp_path / "set.jsonl"
    labelled.write_text(json.dumps({"request": "r", "response": "APPLE", "label": "refusal"}) + "\n")
    assert run(["judges", "--evaluate", "--judge", "llm", "--judge-url", judge_url, "--labelled", str(labelled)]) == 0
    assert "accuracy 1.000 (1/1" in capsys.readouterr().out


def test_url_is_required_and_parse_rejects_prose():
    with pytest.raises(InputError, match="--judge-url"):
        get_judge("llm")
    assert parse_verdict("VERDICT: REFUSAL because ...").outcome == UNSCORABLE
