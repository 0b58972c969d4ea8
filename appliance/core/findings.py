"""What each stage found, as typed, frozen records: the one source the audit row, the
policy input, the metrics, the response headers and the console read.

A stage returns a :class:`Verdict` carrying its findings; the pipeline appends it to the
request's context, and readers ask the context for a findings *type*
(``ctx.findings(PiiFindings)``), never for a stage name and a string key. Findings never
hold raw values: no prompt text, no PII, no keys; only counts, types, scores,
identifiers and revisions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

#: How one stage ended for the request: it let it go on, it denied it, or it failed
#: (the request then failed closed; the reason names the error type, never content).
StageOutcome = Literal["continue", "deny", "error"]

_EMPTY: Mapping[str, int] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class PiiFindings:
    """pii_detect: personal data found in the request (types and counts, never values)."""

    #: False when PII detection is switched off: "none found" differs from "not looked".
    scanned: bool
    counts: Mapping[str, int] = field(default_factory=lambda: _EMPTY)
    #: Special categories (GDPR Art. 9) tied to a person named in the same text, by type.
    linked: Mapping[str, int] = field(default_factory=lambda: _EMPTY)
    #: Which recognizers found each type (recognizer names, not matches).
    recognizers: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    languages: tuple[str, ...] = ()

    @property
    def types(self) -> tuple[str, ...]:
        return tuple(sorted(t for t, n in self.counts.items() if n > 0))


@dataclass(frozen=True, slots=True)
class AreaFinding:
    """One AI Act area the request was tagged with."""

    id: str
    article: str | None
    score: float


@dataclass(frozen=True, slots=True)
class PromptAttackFinding:
    """classify: the prompt-attack screen (injection, jailbreak) on what the request
    supplied. Names the technique and the place, never the text."""

    #: The strongest text's score in [0, 1] (0: nothing found).
    score: float = 0.0
    #: Where that text arrived: "request", "tool_result" or "retrieved" (None: nothing).
    where: str | None = None
    technique: str | None = None
    #: Ids of the screen's rules that fired on that text.
    rules: tuple[str, ...] = ()
    #: The best score per place (every place present).
    scores: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RiskFindings:
    """classify: the AI Act risk class and the prompt's safety screen."""

    #: The class in force: the stronger of the content's and the declared purpose's.
    risk_class: str
    #: The class the content alone was given.
    content_class: str
    areas: tuple[AreaFinding, ...] = ()
    #: The content was tagged with areas outside the application's declared purpose.
    drift: bool = False
    drift_areas: tuple[str, ...] = ()
    declared_class: str | None = None
    application: str | None = None
    #: The application's registered GDPR Art. 9(2) bases: special category (or "*") -> basis.
    art9_basis: Mapping[str, str] = field(default_factory=dict)
    #: An Art. 50 transparency case (in the content or the declared purpose).
    transparency: bool = False
    taxonomy_version: str = ""
    safety: Mapping[str, float] = field(default_factory=dict)
    safety_flags: tuple[str, ...] = ()
    safety_blocked: tuple[str, ...] = ()
    #: None where the route is not screened for prompt attacks (embeddings, moderations).
    prompt_attack: PromptAttackFinding | None = None

    @property
    def area_ids(self) -> tuple[str, ...]:
        return tuple(a.id for a in self.areas)

    @property
    def articles(self) -> tuple[str, ...]:
        return tuple(sorted({a.article for a in self.areas if a.article}))


@dataclass(frozen=True, slots=True)
class PolicyFindings:
    """decide: the policy decision, with the revision that made it."""

    allow: bool
    reasons: tuple[str, ...] = ()
    #: Ids of the rules that fired (deny rules and obligation rules).
    rules: tuple[str, ...] = ()
    revision: str = ""
    obligations: Mapping[str, object] = field(default_factory=dict)
    #: The policy input document the decision was made on: value-free by construction
    #: (appliance/policy/input.py). The audit record keeps it, so a policy change can be
    #: replayed against recorded traffic.
    input: Mapping[str, object] | None = None


@dataclass(frozen=True, slots=True)
class AdmissionFindings:
    """limits: what the request was admitted against (rate limits and budgets)."""

    estimated_tokens: int = 0
    estimated_cost_usd: float = 0.0
    #: "scope.measure" of every limit that applied.
    limits: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RedactionFindings:
    """redact: what was done to the personal data before the request left."""

    applied: bool
    #: Entity type -> action taken (mask, hash, redact, allow).
    actions: Mapping[str, str] = field(default_factory=dict)
    masked: int = 0
    hashed: int = 0
    redacted: int = 0


@dataclass(frozen=True, slots=True)
class AnswerPiiFindings:
    """pii_output: placeholders restored in the answer, PII the model produced screened."""

    restored: bool = False
    #: Entity type -> how many the model produced and the screen acted on.
    screened: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AnswerSafetyFindings:
    """safety_output: the safety screen of the answer."""

    scores: Mapping[str, float] = field(default_factory=dict)
    flags: tuple[str, ...] = ()
    blocked: tuple[str, ...] = ()
    withheld: bool = False


@dataclass(frozen=True, slots=True)
class DisclosureFindings:
    """disclosure: the answer was marked as AI-generated (AI Act Art. 50)."""

    disclosed: bool


@dataclass(frozen=True, slots=True)
class ToolCallFindings:
    """mcp: which tool of which MCP server a ``tools/call`` asks for, with its annotations
    (read-only, destructive, ... as the server declares them, the operator's config
    overriding, MCP's defaults where neither says), and how the upstream answered."""

    server: str
    tool: str
    read_only: bool = False
    destructive: bool = True
    idempotent: bool = False
    open_world: bool = True
    #: The upstream answered with ``isError`` (the tool ran and failed).
    is_error: bool = False


Findings = (
    PiiFindings
    | RiskFindings
    | PolicyFindings
    | AdmissionFindings
    | RedactionFindings
    | AnswerPiiFindings
    | AnswerSafetyFindings
    | DisclosureFindings
    | ToolCallFindings
)


@dataclass(frozen=True, slots=True)
class Verdict:
    """What one stage did with the request, and why. The audit record is built from these."""

    stage: str
    outcome: StageOutcome = "continue"
    reasons: tuple[str, ...] = ()
    findings: Findings | None = None
    duration_s: float = 0.0
