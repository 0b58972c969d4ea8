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
    if ctx.status == 429:
        return Decision.RATE_LIMITED
    policy = ctx.findings(PolicyFindings)
    if (
        ctx.status in (401, 403)
        or (policy is not None and not policy.allow)
        or any(v.outcome == "deny" for v in ctx.verdicts)
    ):
        return Decision.DENY
    if ctx.status >= 400:
        return Decision.ERROR
    return Decision.ALLOW
