"""redact: apply the policy's PII actions to the request before it leaves the appliance.

Reads the findings of pii_detect, resolves an action per entity type (policy obligation
``pii_actions``, then config), rewrites every text piece in place and keeps the
placeholder vault for this request only, in its state (``REDACTED``). A type whose action
is ``block`` rejects the request; the reason names the type, never the value. The
obligations stage has already resolved the model the request goes to, so whether it
leaves the premises is read from the provider in force.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from appliance.config import Config, secret
from appliance.core.context import Context, StateKey
from appliance.core.findings import RedactionFindings, Verdict
from appliance.errors import PermissionDenied, StageFailed
from appliance.pii.actions import ActionTable, Outcome, apply_actions
from appliance.pii.slots import request_slots
from appliance.pii.vault import Vault
from appliance.pipeline.pii_detect import DETECTED


@dataclass
class RedactState:
    """Per-request state for pii_output: the vault and the actions in force."""

    vault: Vault
    actions: ActionTable
    salt: bytes


#: The vault and actions of this request, for pii_output.
REDACTED: StateKey[RedactState] = StateKey("redact.state")


class Redact:
    """Request stage. ``Redact(config)``; no resources of its own."""

    name = "redact"

    def __init__(self, config: Config) -> None:
        self._config = config
        self._pii = config.pii

    def _salt(self) -> bytes:
        fixed = secret(self._pii.hash_salt_env)
        return fixed.encode("utf-8") if fixed else os.urandom(16)

    def _goes_local(self, ctx: Context) -> bool:
        provider = self._config.providers.get(ctx.provider)
        return provider is not None and provider.kind == "local"

    async def run(self, ctx: Context) -> Verdict:
        if not self._pii.enabled:
            return Verdict(self.name, findings=RedactionFindings(applied=False))
        detected = ctx.get(DETECTED)
        if detected is None:
            raise StageFailed("redact ran without pii_detect")
        actions = ActionTable.resolve(self._pii, ctx.obligations.get("pii_actions"))
        if not self._pii.redact_for_local and self._goes_local(ctx):
            actions = ActionTable(
                {t: a for t, a in actions.by_type.items() if a == "block"},
                "block" if actions.default == "block" else "allow",
            )
        slots = request_slots(ctx.route, ctx.body)
        if tuple(slots.texts) != detected.texts:
            raise StageFailed("request changed between pii_detect and redact")
        state = RedactState(Vault.reserving(slots.texts), actions, self._salt())
        outcome = Outcome()
        rewritten = [
            apply_actions(slot.text, found, actions, state.vault, state.salt, outcome)
            for slot, found in zip(slots.slots, detected.findings, strict=True)
        ]
        if outcome.blocked:
            types = sorted(outcome.blocked)
            raise PermissionDenied(
                "the request contains personal data that policy does not allow to be sent: "
                + ", ".join(types),
                reasons=tuple(f"pii_blocked:{t}" for t in types),
            )
        for slot, text in zip(slots.slots, rewritten, strict=True):
            if text != slot.text:
                slot.write(text)
        slots.commit()
        ctx.put(REDACTED, state)
        return Verdict(
            self.name,
            findings=RedactionFindings(
                applied=True,
                actions={t: actions(t) for t in sorted(outcome.types)},
                masked=outcome.masked,
                hashed=outcome.hashed,
                redacted=outcome.redacted,
            ),
        )
