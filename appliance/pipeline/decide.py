"""The decide stage: ask the policy engine whether this request may go, and on what terms.

Builds the policy input from the context (and the pii_detect / classify verdicts),
evaluates it, sets ``ctx.obligations`` for the later stages and returns a verdict whose
findings (allow, reasons, obligations, revision, rules) the audit record keeps, so
``appliance policy explain`` can show which rules decided a past request.
"""

from __future__ import annotations

from appliance.config import Config
from appliance.core.context import Context
from appliance.core.findings import Verdict
from appliance.core.readiness import Readiness
from appliance.policy.engine import EmbeddedEngine, OpaEngine, make_engine
from appliance.policy.input import build_input


class DecideStage:
    name = "decide"

    def __init__(self, config: Config) -> None:
        self._config = config
        self._engine: EmbeddedEngine | OpaEngine = make_engine(config.policy, config.storage.data_dir)

    @property
    def engine(self) -> EmbeddedEngine | OpaEngine:
        return self._engine

    def status(self) -> dict[str, object]:
        """Policy revision in force and the reason the latest edit was refused (if it was)."""
        return self._engine.status()

    async def readiness(self) -> Readiness:
        """Not ready without a policy (every request would be denied); the revision in force
        and why the latest change was refused otherwise."""
        status = self._engine.status()
        return Readiness("policy", ready=bool(self._engine.revision), detail=status)

    async def start(self) -> None:
        await self._engine.start()

    async def aclose(self) -> None:
        await self._engine.aclose()

    def _provider_kind(self, provider: str) -> str | None:
        cfg = self._config.providers.get(provider)
        return cfg.kind if cfg is not None else None

    async def run(self, ctx: Context) -> Verdict:
        doc = build_input(ctx, provider_kind=self._provider_kind(ctx.provider))
        decision = await self._engine.decide(doc)
        ctx.obligations = dict(decision.obligations)
        return Verdict(
            self.name,
            outcome="continue" if decision.allow else "deny",
            reasons=decision.reasons,
            findings=decision.findings(doc),
        )
