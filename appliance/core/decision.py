"""The one word for how a request ended, used everywhere: the response header
``x-appliance-decision``, the audit record, the metrics, the access log and the reports.
"""

from __future__ import annotations

from enum import StrEnum

from appliance.core.context import Context
from appliance.core.findings import PolicyFindings


class Decision(StrEnum):
    #: Served (whatever the answer's screens then withheld).
    ALLOW = "allow"
    #: Refused by a control: no or a bad key (401), the policy or a stage (403).
    DENY = "deny"
    #: Refused by a rate limit or budget (429).
    RATE_LIMITED = "rate_limited"
    #: Failed: bad input, a stage, the provider, or the caller went away.
    ERROR = "error"


def decision_of(ctx: Context) -> Decision:
    """What became of the request, from its status and the verdicts of its stages."""
    status = ctx.status
    if status == 429:
        return Decision.RATE_LIMITED
    if status in (401, 403):
        return Decision.DENY
    # One pass, newest first: a stage that denied, or the latest policy decision a deny.
    # (Asked two or three times for every request: the header, the metrics, the log.)
    policy_seen = False
    for v in reversed(ctx.verdicts):
        if v.outcome == "deny":
            return Decision.DENY
        if not policy_seen and isinstance(v.findings, PolicyFindings):
            policy_seen = True
            if not v.findings.allow:
                return Decision.DENY
    if status >= 400:
        return Decision.ERROR
    return Decision.ALLOW
