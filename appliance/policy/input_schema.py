"""The policy input as typed models: the source of ``docs/policy-input.schema.json``.

Used to validate inputs (``policy check``, ``policy eval``, tests) and to generate the
JSON schema auditors read. The hot path builds plain dicts (see :mod:`.input`); these
models only check them.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PrincipalIn(_Strict):
    """Who calls (from the API key)."""

    key_id: str | None = Field(description="API key id (not the key)")
    tenant: str | None
    user: str | None
    department: str | None
    roles: list[str]


class RequestIn(_Strict):
    """What is asked: metadata only, never the prompt text."""

    route: Literal[
        "chat.completions", "completions", "embeddings", "messages", "moderations", "responses",
        "mcp.tools/call",
    ]
    model: str = Field(description="model that will be called (after aliasing)")
    requested_model: str = Field(description="model the caller named")
    provider: str = Field(description="provider name from the config")
    provider_kind: str | None = Field(description="openai, anthropic, local, bedrock, ...")
    provider_region: str = Field(description="region of the provider, e.g. eu, us, on-premises")
    token_estimate: int = Field(ge=0, description="prompt size estimate: characters / 4")
    max_tokens: int | None = Field(description="max_tokens the caller asked for")
    stream: bool
    tools: list[str] = Field(description="names of the tools the caller offers the model")


class PiiIn(_Strict):
    """What the PII detector found: types and counts, never values."""

    scanned: bool = Field(description="false when the PII stage is switched off")
    counts: dict[str, int] = Field(description="entity type -> number of findings")
    types: list[str] = Field(description="sorted entity types with at least one finding")
    languages: list[str]
    special_categories: list[str] = Field(
        default_factory=list,
        description="GDPR Art. 9 special categories among `types` (HEALTH, ETHNIC_ORIGIN, "
        "POLITICAL_OPINION, RELIGION, TRADE_UNION, GENETIC, BIOMETRIC, SEX_LIFE)",
    )
    special_linked: list[str] = Field(
        default_factory=list,
        description="special categories with a finding tied to a person named in the request",
    )


class RiskIn(_Strict):
    """EU AI Act risk tagging of the request."""

    assessed: bool = Field(description="false when the classify stage is switched off")
    class_: Literal["prohibited", "high", "limited", "minimal"] | None = Field(alias="class")
    areas: list[str] = Field(description="Annex III / Art. 5 area ids that matched")
    articles: list[str] = Field(description="articles of those areas")
    declared_class: str | None = Field(description="risk class the application declared")
    drift: bool = Field(description="content does not match the declared class")
    safety_flags: list[str]
    safety_blocked: list[str]


class PromptAttackIn(_Strict):
    """The prompt-attack screen (injection and jailbreak attempts, EN + DE) on what the
    request supplied: the caller's own words, tool results, retrieved documents."""

    scanned: bool = Field(
        description="false where the route is not screened (embeddings, moderations, MCP "
        "tool calls) or the classify stage is off"
    )
    score: float = Field(ge=0.0, le=1.0, description="score of the strongest attack text; 0: none")
    where: Literal["request", "tool_result", "retrieved"] | None = Field(
        description="where that text arrived: the caller's own turn, a tool result, a "
        "document pasted after the caller's question; null when nothing was found"
    )
    technique: str | None = Field(
        description="instruction_override, prompt_extraction, persona_jailbreak, "
        "policy_bypass, delimiter_injection, indirect_injection, exfiltration, encoding, ..."
    )
    scores: dict[str, float] = Field(
        description="the best score per place (request, tool_result, retrieved)"
    )


class ApplicationIn(_Strict):
    id: str | None = Field(description="registered application the key belongs to, if any")
    art9_basis: dict[str, str] = Field(
        default_factory=dict,
        description="the application's registered GDPR Art. 9(2) legal bases: special "
        'category (or "*" for all) -> basis, e.g. {"HEALTH": "health_care"}',
    )


class ToolAnnotationsIn(_Strict):
    """The tool's annotations: the server's hints, the operator's config overriding,
    MCP's defaults where neither says (so an unannotated tool counts as destructive)."""

    read_only: bool = Field(description="the tool does not change its environment")
    destructive: bool = Field(description="the tool may delete or overwrite data")
    idempotent: bool = Field(description="calling it twice has no further effect")
    open_world: bool = Field(description="the tool reaches beyond a closed domain")


class ToolIn(_Strict):
    """The MCP tool a tools/call asks for (route mcp.tools/call); null on other routes."""

    server: str = Field(description="name of the MCP server ([mcp.servers.NAME])")
    name: str = Field(description="name of the tool")
    annotations: ToolAnnotationsIn


class TimeIn(_Strict):
    now: str = Field(description="request start, RFC 3339, UTC")
    hour: int = Field(ge=0, le=23)
    weekday: Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]


class PolicyInput(_Strict):
    """The document a policy sees as ``input``."""

    principal: PrincipalIn
    request: RequestIn
    pii: PiiIn
    risk: RiskIn
    prompt_attack: PromptAttackIn | None = Field(
        default=None, description="the prompt-attack screen's finding"
    )
    application: ApplicationIn
    tool: ToolIn | None = Field(
        default=None, description="the MCP tool called (mcp.tools/call only), else null"
    )
    time: TimeIn


def validate_input(doc: dict[str, Any]) -> list[str]:
    """Problems of ``doc`` against the input schema (empty list: valid)."""
    try:
        PolicyInput.model_validate(doc)
    except ValidationError as e:
        return [
            f"{'.'.join(str(p) for p in err['loc']).replace('class_', 'class')}: {err['msg']}"
            for err in e.errors()
        ]
    return []


def json_schema() -> dict[str, Any]:
    schema = PolicyInput.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://appliance.local/schemas/policy-input.schema.json"
    return schema


def json_schema_text() -> str:
    return json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"
