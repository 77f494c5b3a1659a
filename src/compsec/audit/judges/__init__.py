"""Judges of model responses: the refusal judges, the keyword-occurrence judge, and a registry for more.

``refusal`` is the default refusal judge: rules first, then a linear probe on SmolLM2-135M's hidden states of the
(request, response) pair (:mod:`~compsec.audit.judges.hidden_state`; without SmolLM2 installed it falls back to the
TF-IDF classifier, with a warning). The earlier judges stay reachable: ``refusal-tfidf`` (rules, then TF-IDF +
request overlap) and ``refusal-rules`` (the rules alone).

>>> from compsec.audit.judges import get_judge
>>> get_judge("refusal").judge("I can't help with that.").outcome
'refusal'
"""

from compsec.audit.judges.base import (
    ABSENT,
    COMPLIANCE,
    PRESENT,
    REFUSAL,
    UNSCORABLE,
    Judge,
    Verdict,
    get_judge,
    judge_all,
    judge_names,
    register_judge,
)
from compsec.audit.judges.code_security import CodeSecurityJudge
from compsec.audit.judges.hidden_state import HiddenStateJudge, default_refusal_judge
from compsec.audit.judges.keyword import KeywordJudge
from compsec.audit.judges.llm import LLMJudge
from compsec.audit.judges.refusal import RefusalJudge
from compsec.audit.judges.request_aware import RequestAwareJudge

register_judge("refusal", default_refusal_judge)
register_judge("refusal-tfidf", lambda **options: RequestAwareJudge(**{"name": "refusal-tfidf", **options}))
register_judge("refusal-rules", lambda **options: RefusalJudge(**{"name": "refusal-rules", **options}))
register_judge("llm", LLMJudge)
register_judge("keyword", KeywordJudge)
register_judge("code-security", CodeSecurityJudge)

__all__ = [
    "ABSENT", "COMPLIANCE", "PRESENT", "REFUSAL", "UNSCORABLE", "HiddenStateJudge", "Judge", "KeywordJudge", "LLMJudge", "RefusalJudge", "RequestAwareJudge",
    "Verdict", "get_judge", "judge_all", "judge_names", "register_judge",
]
