"""Judges of model responses: the refusal judges, the keyword-occurrence judge, and a registry for more.

``refusal`` is the request-aware judge (rules first, then a classifier that reads the request); the rules alone
stay reachable as ``refusal-rules``.

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
    judge_names,
    register_judge,
)
from compsec.audit.judges.code_security import CodeSecurityJudge
from compsec.audit.judges.keyword import KeywordJudge
from compsec.audit.judges.llm import LLMJudge
from compsec.audit.judges.refusal import RefusalJudge
from compsec.audit.judges.request_aware import RequestAwareJudge

register_judge("refusal", RequestAwareJudge)
register_judge("refusal-rules", lambda **options: RefusalJudge(**{"name": "refusal-rules", **options}))
register_judge("llm", LLMJudge)
register_judge("keyword", KeywordJudge)
register_judge("code-security", CodeSecurityJudge)

__all__ = [
    "ABSENT", "COMPLIANCE", "PRESENT", "REFUSAL", "UNSCORABLE", "Judge", "KeywordJudge", "LLMJudge", "RefusalJudge", "RequestAwareJudge",
    "Verdict", "get_judge", "judge_names", "register_judge",
]
