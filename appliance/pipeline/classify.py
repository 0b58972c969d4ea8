"""Request stage "classify": EU AI Act risk tags and the prompt safety screen.

Tags the request (areas with scores, the strongest class), compares them with the
calling application's declared purpose (drift), screens what the caller supplied for
unsafe content against the thresholds in policy data, and denies when a category's
block threshold is reached. The policy stage decides everything else from the facts.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from appliance.config import Config
from appliance.core.context import Context
from appliance.core.findings import AreaFinding, PromptAttackFinding, RiskFindings, Verdict
from appliance.risk.apps import AppDirectory, DeclaredPurpose
from appliance.risk.attacks import (
    SCREENED_ROUTES,
    AttackResult,
    PromptAttackScreen,
    attack_sources,
    latest_turn_place,
    load_attack_rules,
)
from appliance.risk.attack_head import load_attack_head
from appliance.risk.classifier import RiskClassifier, RiskResult, Segments, SafetyResult
from appliance.risk.engine import threshold_store
from appliance.risk.lexicon import ThresholdStore
from appliance.risk.purpose import drift
from appliance.risk.taxonomy import CLASS_RANK, strongest
from appliance.risk.text import request_segments

RISK_HEADER = "x-appliance-risk"


class ClassifyStage:
    """Request stage on the process's classifier and application directory; owns the
    threads the classifier runs on."""

    name = "classify"

    def __init__(
        self, config: Config, classifier: RiskClassifier | None, apps: AppDirectory
    ) -> None:
        if classifier is None:
            raise ValueError("the classify stage needs the risk classifier")
        self._config = config
        self.classifier = classifier
        self._apps = apps
        self._pool: ThreadPoolExecutor | None = None
        self._thresholds: ThresholdStore | None = None
        self.attacks = PromptAttackScreen(
            load_attack_rules(config.risk.prompt_attack_rules),
            head=load_attack_head() if config.risk.prompt_attack_head else None,
        )

    async def start(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="risk")
        self._thresholds = threshold_store(self._config, self.classifier)

    async def aclose(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    async def run(self, ctx: Context) -> Verdict:
        if self._pool is None or self._thresholds is None:
            raise RuntimeError("ClassifyStage.start() has not run")
        loop = asyncio.get_running_loop()
        segments = request_segments(ctx.body)
        screen_attacks = ctx.route in SCREENED_ROUTES
        risk, safety, attack = await loop.run_in_executor(
            self._pool, self._analyse, segments, ctx.body if screen_attacks else None
        )
        declared: DeclaredPurpose | None = None
        app_name = ctx.principal.application if ctx.principal else None
        if ctx.principal is not None and app_name:
            declared = await self._apps.lookup(ctx.principal.tenant, app_name)
        return self._verdict(ctx, risk, safety, declared, app_name, attack)

    def _analyse(
        self, segments: Segments, body: dict[str, object] | None
    ) -> tuple[RiskResult, SafetyResult, PromptAttackFinding | None]:
        """Risk tags, safety scores and, for routes a model reads as instructions, the
        prompt-attack screen, in one hop to the worker thread."""
        risk, safety, vector = self.classifier.analyse_with_vector(segments)
        if body is None:
            return risk, safety, None
        found = self.attacks.scan(attack_sources(body), vector, latest_turn_place(body))
        return risk, safety, _attack_finding(found)

    def _verdict(
        self,
        ctx: Context,
        risk: RiskResult,
        safety: SafetyResult,
        declared: DeclaredPurpose | None,
        app_name: str | None,
        attack: PromptAttackFinding | None = None,
    ) -> Verdict:
        assert self._thresholds is not None
        drifted: list[str] = []
        classes = [risk.risk_class]
        declared_ids: set[str] = set()
        if declared is not None:
            classes.append(declared.risk_class)
            declared_ids = {str(a.get("id")) for a in declared.areas}
            drifted = drift(
                ((a.id, a.risk_class) for a in risk.areas), declared.risk_class, declared.areas
            )
        risk_class = strongest(classes)
        taxonomy = self.classifier.taxonomy
        transparency = any(a.risk_class == "limited" for a in risk.areas) or any(
            taxonomy.area(i).risk_class == "limited" for i in declared_ids if i in taxonomy.ids()
        )
        thresholds = self._thresholds.current().of("prompt")
        actions = {c: thresholds[c].action(s) for c, s in safety.scores.items() if c in thresholds}
        flags = tuple(sorted(c for c, a in actions.items() if a in ("flag", "block")))
        blocked = tuple(sorted(c for c, a in actions.items() if a == "block"))
        header = risk_class
        if risk.areas:
            header += "; areas=" + ",".join(risk.area_ids())
        ctx.headers[RISK_HEADER] = header
        findings = RiskFindings(
            risk_class=risk_class,
            content_class=risk.risk_class,
            areas=tuple(AreaFinding(a.id, a.article, round(a.score, 3)) for a in risk.areas),
            drift=bool(drifted),
            drift_areas=tuple(drifted),
            declared_class=declared.risk_class if declared else None,
            application=app_name,
            art9_basis=dict(declared.art9_basis) if declared else {},
            transparency=transparency,
            taxonomy_version=taxonomy.version,
            safety=safety.rounded(),
            safety_flags=flags,
            safety_blocked=blocked,
            prompt_attack=attack,
        )
        if blocked:
            reasons = tuple(f"safety: {c} content in the request" for c in blocked)
            return Verdict(self.name, outcome="deny", reasons=reasons, findings=findings)
        reasons = ()
        if CLASS_RANK[risk_class] >= CLASS_RANK["high"]:
            reasons = (f"risk class {risk_class}",)
        return Verdict(self.name, reasons=reasons, findings=findings)


def _attack_finding(result: AttackResult) -> PromptAttackFinding:
    top = result.top
    return PromptAttackFinding(
        score=top.score,
        where=top.where,
        technique=top.technique,
        rules=top.rules,
        scores={k: round(v, 3) for k, v in result.by_place.items()},
    )
