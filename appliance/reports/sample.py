"""A synthetic but realistic audit log, written through the real audit writer.

Tests, the benchmark and demos need a log with every kind of fact a report reads
(tenants, applications with declared purposes, models in and outside the EU, PII
findings and redactions, risk classes, denials, policy revisions, safety flags). The
records go through :class:`appliance.audit.writer.AuditWriter`, so they are chained,
encrypted and checkpointed exactly like the records of a running server.
"""

from __future__ import annotations

import datetime as dt
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from appliance.audit.writer import AuditWriter
from appliance.config import Config

APPS: tuple[tuple[str, str, str, str | None, str], ...] = (
    # tenant, application, purpose, annex_iii, declared class
    ("acme", "support-bot", "Answer customer support questions about orders", None, "limited"),
    ("acme", "hr-screening", "Rank job applications for recruiters", "employment", "high"),
    ("acme", "code-assistant", "Help engineers write and review code", None, "minimal"),
    (
        "globex",
        "claims-triage",
        "Triage insurance claims for handlers",
        "essential_services",
        "high",
    ),
    ("globex", "marketing-copy", "Draft marketing texts", None, "limited"),
)
#: GDPR Art. 9(2) bases the sample applications are registered with.
ART9_BASIS: dict[tuple[str, str], dict[str, str]] = {
    ("acme", "hr-screening"): {"HEALTH": "employment", "TRADE_UNION": "employment"},
}
DEPARTMENTS = {"acme": ("support", "hr", "engineering"), "globex": ("claims", "marketing")}
MODELS: tuple[tuple[str, str, str, float], ...] = (
    # model, provider, region, USD per 1k tokens
    ("gpt-4o", "openai", "us", 0.005),
    ("claude-sonnet", "anthropic", "eu-central-1", 0.006),
    ("llama-local", "local", "on-premises", 0.0),
    ("gemini-pro", "vertex", "europe-west4", 0.004),
)
PII_TYPES = ("PERSON", "EMAIL_ADDRESS", "PHONE_NUMBER", "IBAN_CODE", "DE_TAX_ID", "LOCATION")
ACTIONS = {
    "PERSON": "mask",
    "EMAIL_ADDRESS": "mask",
    "PHONE_NUMBER": "redact",
    "IBAN_CODE": "hash",
    "DE_TAX_ID": "redact",
    "LOCATION": "allow",
    # special categories (GDPR Art. 9) stay in the text; the policy decides where they go
    "HEALTH": "allow",
    "RELIGION": "allow",
    "TRADE_UNION": "allow",
}
REVISIONS = ("rev-2026-01", "rev-2026-02")
DENY_REASONS = (
    ("prohibited_practice", "prohibited practice (AI Act Art. 5): social scoring"),
    ("pii_block", "personal data of type IBAN_CODE may not leave the EU"),
    ("budget", "monthly budget of the department exhausted"),
)
#: The reason the Art. 9 rule gives (``{}``: the special categories without a basis).
ART9_REASON = ("special-category data (GDPR Art. 9(1): {}) may go to an external provider only "
               "from an application registered with an Art. 9(2) legal basis for it")


@dataclass(frozen=True)
class SampleLog:
    records: int
    first: dt.datetime
    last: dt.datetime


def _row(rng: random.Random, i: int, ts_us: int) -> dict[str, Any]:
    tenant, app, _purpose, _annex, declared = APPS[rng.randrange(len(APPS))]
    model, provider, region, price = MODELS[rng.randrange(len(MODELS))]
    dept = rng.choice(DEPARTMENTS[tenant])
    pii: dict[str, int] = {}
    if rng.random() < 0.35:
        for t in rng.sample(PII_TYPES, rng.randint(1, 3)):
            pii[t] = rng.randint(1, 4)
    # Special categories, by position (the random stream of the other fields stays as it
    # was): sick-leave questions to the HR app, religious holidays in support chats.
    if app == "hr-screening" and i % 9 == 0:
        pii["HEALTH"] = 1
    if app == "hr-screening" and i % 37 == 0:
        pii["TRADE_UNION"] = 1
    if app == "support-bot" and i % 29 == 0:
        pii["RELIGION"] = 1
    uncovered = sorted(t for t in pii if t in ("HEALTH", "RELIGION", "TRADE_UNION")
                       and t not in ART9_BASIS.get((tenant, app), {}))
    roll = rng.random()
    risk = (
        "prohibited"
        if roll < 0.01
        else "high"
        if roll < 0.15
        else "limited"
        if roll < 0.45
        else "minimal"
    )
    drift = declared in ("minimal", "limited") and risk == "high" and rng.random() < 0.5
    areas: list[dict[str, Any]] = []
    if risk == "prohibited":
        areas = [{"id": "social_scoring", "article": "Art. 5(1)(c)", "score": 0.91}]
    elif risk == "high":
        areas = [
            {
                "id": "employment",
                "article": "Annex III 4",
                "score": round(0.5 + rng.random() / 2, 3),
            }
        ]
    revision = REVISIONS[0] if i % 2 == 0 and rng.random() < 0.5 else REVISIONS[1]
    decision, reasons, rules, status = "allow", [], ["base.allow"], 200
    if risk == "prohibited":
        decision, status = "deny", 403
        reasons, rules = [DENY_REASONS[0][1]], ["risk.deny_prohibited"]
    elif "IBAN_CODE" in pii and region == "us":
        decision, status = "deny", 403
        reasons, rules = [DENY_REASONS[1][1]], ["pii.block_iban_third_country"]
    elif uncovered and provider != "local":
        decision, status = "deny", 403
        reasons, rules = [ART9_REASON.format(", ".join(uncovered))], ["gdpr_art9_special_categories"]
    elif rng.random() < 0.02:
        decision, status = "deny", 429
        reasons, rules = [DENY_REASONS[2][1]], ["limits.budget"]
    elif rng.random() < 0.005:
        decision, status = "error", 502
    if risk == "high" and declared != "high" and decision == "allow":
        rules = [*rules, "ai_act_art26_registration_needed"]  # served, not registered
    safety = ["self_harm"] if rng.random() < 0.003 else []
    prompt = rng.randint(20, 2000) if decision == "allow" else 0
    completion = rng.randint(10, 800) if decision == "allow" else 0
    latency = rng.uniform(80, 3000)
    redaction = None
    if pii and decision == "allow":
        acts = {t: ACTIONS[t] for t in pii}
        redaction = {
            "actions": acts,
            "masked": sum(n for t, n in pii.items() if acts[t] == "mask"),
            "hashed": sum(n for t, n in pii.items() if acts[t] == "hash"),
            "redacted": sum(n for t, n in pii.items() if acts[t] == "redact"),
        }

    def js(v: object) -> str:
        return orjson.dumps(v, option=orjson.OPT_SORT_KEYS).decode()

    return {
        "kind": "request",
        "request_id": f"req-{i:08d}",
        "ts_start": ts_us,
        "ts_end": ts_us + int(latency * 1000),
        "latency_ms": round(latency, 3),
        "tenant": tenant,
        "user_id": f"user-{rng.randrange(40):02d}@{tenant}",
        "key_id": f"{rng.randrange(16):016x}",
        "department": dept,
        "roles": js(["user"]),
        "application": app,
        "route": "chat.completions",
        "stream": rng.random() < 0.4,
        "requested_model": model,
        "model": model,
        "provider": provider,
        "region": region,
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "cost_usd": round((prompt + completion) / 1000 * price, 6),
        "decision": decision,
        "reasons": js(reasons),
        "policy_revision": revision,
        "policy_rules": js(rules),
        "obligations": js({}),
        "risk_class": risk,
        "risk_areas": js(areas),
        "risk_drift": drift,
        "declared_class": declared,
        "pii_counts": js(pii) if pii else None,
        "pii_total": sum(pii.values()),
        "pii_recognizers": None,
        "pii_languages": js(["en"]),
        "redaction": js(redaction) if redaction else None,
        "safety_flags": js(safety),
        "safety_blocked": js([]),
        "status": status,
        "error": "upstream_error" if decision == "error" else None,
        "stages": None,
        "extra": None,
    }


def register_apps(config: Config) -> None:
    """Register the sample applications (declared purposes) in the control plane."""
    from appliance.keys.store import ControlPlane, control_plane_path

    control = ControlPlane.open(control_plane_path(config.storage.data_dir))
    try:
        for tenant, name, purpose, annex, declared in APPS:
            control.register_app(tenant, name, purpose, annex, declared,
                                 art9_basis=ART9_BASIS.get((tenant, name), {}))
    finally:
        control.close()


def write_sample_log(
    config: Config,
    records: int,
    *,
    first: dt.datetime,
    last: dt.datetime,
    seed: int = 7,
    on_progress: Callable[[int], None] | None = None,
) -> SampleLog:
    """Write ``records`` request records with times spread evenly over [first, last]."""
    rng = random.Random(seed)
    writer = AuditWriter(config)
    writer.start()
    lock = threading.Lock()
    errors: list[BaseException] = []

    def done(err: BaseException | None) -> None:
        if err is not None:
            with lock:
                errors.append(err)

    t0 = int(first.replace(tzinfo=dt.UTC).timestamp() * 1e6)
    span = int((last - first).total_seconds() * 1e6)
    step = span // max(records - 1, 1)
    try:
        for i in range(records):
            while writer.pending() >= 20_000:
                threading.Event().wait(0.005)
            writer.submit(_row(rng, i, t0 + i * step), done)
            if on_progress is not None and i % 10_000 == 0:
                on_progress(i)
    finally:
        writer.close()
    if errors:
        raise errors[0]
    return SampleLog(records, first, last)
