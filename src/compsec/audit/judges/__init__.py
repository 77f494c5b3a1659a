"""Judges of model responses: the refusal detector, the keyword-occurrence judge, and a registry for more.

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
from compsec.audit.judges.refusal import RefusalJudge

register_judge("refusal", RefusalJudge)
register_judge("keyword", KeywordJudge)
register_judge("code-security", CodeSecurityJudge)

__all__ = [
    "ABSENT", "COMPLIANCE", "PRESENT", "REFUSAL", "UNSCORABLE", "Judge", "KeywordJudge", "RefusalJudge",
    "Verdict", "get_judge", "judge_names", "register_judge",
]
