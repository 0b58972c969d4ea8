"""pii_detect: find personal data in every text piece of the request (nothing is changed yet).

Runs before the policy decision so that policies can see what was found (counts and
types, never values). The findings wait in the request's state (``DETECTED``) for the
redact stage, which applies the actions the policy chose.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

from appliance.config import Config
from appliance.core.context import Context, StateKey
from appliance.core.findings import PiiFindings, Verdict
from appliance.pii.findings import Finding
from appliance.pii.language import detect_language
from appliance.pii.slots import request_slots

if TYPE_CHECKING:
    from appliance.pii.pool import AnalyzerPool


@dataclass(frozen=True, slots=True)
class DetectState:
    """What pii_detect leaves for redact: the analysed texts and their findings."""

    texts: tuple[str, ...]
    languages: tuple[str, ...]
    findings: tuple[tuple[Finding, ...], ...]


#: pii_detect's findings with their texts, for redact.
DETECTED: StateKey[DetectState] = StateKey("pii_detect.detected")


class PiiDetect:
    """Request stage, on the process's analyzer pool (None: PII detection is off)."""

    name = "pii_detect"

    def __init__(self, config: Config, analyzer: AnalyzerPool | None) -> None:
        self._config = config.pii
        self._pool = analyzer

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
        if self._pool is None:
            return Verdict(self.name, findings=PiiFindings(scanned=False))
        texts = request_slots(ctx.route, ctx.body).texts
        languages = [self.language_for(ctx, t) for t in texts]
        tenant = ctx.principal.tenant if ctx.principal else None
        detected = self._config.language == "auto" and tenant not in self._config.tenant_languages
        findings = await self._pool.analyze(texts, languages, tenant=tenant, detect_pieces=detected)
        ctx.put(DETECTED, DetectState(
            tuple(texts), tuple(languages), tuple(tuple(f) for f in findings)
        ))
        return Verdict(self.name, findings=detection_findings(findings, languages))


def detection_findings(
    findings: list[list[Finding]], languages: list[str]
) -> PiiFindings:
    counts: Counter[str] = Counter()
    linked: Counter[str] = Counter()  # special categories tied to a named person
    recognizers: dict[str, set[str]] = {}
    for per_text in findings:
        for f in per_text:
            counts[f.entity_type] += 1
            linked[f.entity_type] += f.person is not None
            recognizers.setdefault(f.entity_type, set()).add(f.recognizer)
    return PiiFindings(
        scanned=True,
        counts=dict(counts),
        linked={k: n for k, n in linked.items() if n},
        recognizers={k: tuple(sorted(v)) for k, v in recognizers.items()},
        languages=tuple(sorted(set(languages))),
    )
