"""Stage "obligations": what the policy decision requires of the request's route.

Applied right after the decision, before anything else looks at where the request goes:
limits count against the model really used, and redaction knows whether the request
leaves the premises. A forced local model replaces the requested one; the policy's cap
on answer tokens lowers the caller's own cap, or, when the caller set none, becomes a
ceiling the router fits to each model it tries; a policy that forbids streaming refuses
a streamed request with a 403 that says to retry without it.
"""

from __future__ import annotations

from appliance.core.context import Context
from appliance.core.findings import Verdict
from appliance.errors import PermissionDenied
from appliance.pipeline.router import OUTPUT_FIELDS, Router


class ObligationsStage:
    name = "obligations"

    def __init__(self, router: Router) -> None:
        self._router = router

    async def run(self, ctx: Context) -> Verdict:
        ob = ctx.obligations
        if ctx.route == "mcp.tools/call":  # a tool call has no model to re-route or cap
            if isinstance(ob.get("force_local_model"), str):
                # Where a chat would be kept on the premises, a tool's server cannot be
                # swapped for a local one: the call is refused instead (fail closed).
                raise PermissionDenied(
                    "Request denied by policy: this call may only be served on the premises, "
                    "and the tool's server is not.",
                    reasons=("tool_call_must_stay_local",),
                )
            return Verdict(self.name)
        forced = ob.get("force_local_model")
        if isinstance(forced, str) and forced != ctx.model:
            self._router.resolve(ctx, forced, ctx.operation)
        cap = ob.get("max_tokens")
        if isinstance(cap, int) and ctx.operation != "embeddings":
            asked = [f for f in OUTPUT_FIELDS if isinstance(ctx.body.get(f), int)]
            for field in asked:  # the caller's own cap, lowered to the policy's
                ctx.body[field] = min(ctx.body[field], cap)
            if not asked:  # a ceiling, not a request: the router fits it to the model
                ctx.output_ceiling = cap
        if ctx.stream and ob.get("deny_streaming"):
            raise PermissionDenied(
                "Request denied by policy: streaming is not allowed for this request; "
                "retry with stream=false.",
                reasons=("streaming denied",),
            )
        return Verdict(self.name)
