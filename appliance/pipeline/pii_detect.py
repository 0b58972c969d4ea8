"""pii_detect: find personal data in every text piece of the request (nothing is changed yet).

Runs before the policy decision so that policies can see what was found (counts and
types, never values). The findings wait in ``ctx.state["pii_detect"]`` for the redact
stage, which applies the actions the policy chose.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass

from appliance.config import Config
from appliance.pii.findings import Finding
from appliance.pii.language import detect_language
from appliance.pii.pool import AnalyzerPool
from appliance.pii.slots import request_slots
from appliance.pipeline.context import Context, Verdict


@dataclass(frozen=True, slots=True)
class DetectState:
    """What pii_detect leaves for redact: the analysed texts and their findings."""

    texts: tuple[str, ...]
    languages: tuple[str, ...]
    findings: tuple[tuple[Finding, ...], ...]


class PiiDetect:
    """Request stage. ``PiiDetect(config)``; ``await start()`` spawns the analyzer pool."""

    name = "pii_detect"

    def __init__(self, config: Config) -> None:
        self._config = config.pii
        self.pool = AnalyzerPool(config.pii)

    async def start(self) -> None:
        if self._config.enabled:
            await self.pool.start()

    async def aclose(self) -> None:
        await self.pool.aclose()

    def language_for(self, ctx: Context, text: str) -> str:
        cfg = self._config
        tenant = ctx.principal.tenant if ctx.principal else None
        if tenant is not None and tenant in cfg.tenant_languages:
            return cfg.tenant_languages[tenant]
        if cfg.language != "auto":
            return cfg.language
        lang = detect_language(text, default=cfg.languages[0])
        return lang if lang in cfg.languages else cfg.languages[0]

    async def run(self, ctx: Context) -> Verdict:
        began = time.perf_counter()
        if not self._config.enabled:
            return Verdict(stage=self.name, facts={"enabled": False})
        texts = request_slots(ctx.route, ctx.body).texts
        languages = [self.language_for(ctx, t) for t in texts]
        tenant = ctx.principal.tenant if ctx.principal else None
        detected = self._config.language == "auto" and tenant not in self._config.tenant_languages
        findings = await self.pool.analyze(texts, languages, tenant=tenant, detect_pieces=detected)
        ctx.state[self.name] = DetectState(
            tuple(texts), tuple(languages), tuple(tuple(f) for f in findings)
        )
        return Verdict(
            stage=self.name,
            facts=detection_facts(findings, languages),
            duration_s=time.perf_counter() - began,
        )


def detection_facts(findings: list[list[Finding]], languages: list[str]) -> dict[str, object]:
    counts: Counter[str] = Counter()
    recognizers: dict[str, set[str]] = {}
    for per_text in findings:
        for f in per_text:
            counts[f.entity_type] += 1
            recognizers.setdefault(f.entity_type, set()).add(f.recognizer)
    return {
        "counts": dict(counts),
        "recognizers": {k: sorted(v) for k, v in recognizers.items()},
        "languages": sorted(set(languages)),
    }
