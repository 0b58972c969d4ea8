"""Shared helpers: a real audit log written through the RecordStage, copied per test."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest

from appliance.audit.segments import AuditPaths
from appliance.config import Config, load_config
from appliance.core.context import Context, Payload, Principal, Usage
from appliance.core.findings import AreaFinding, PiiFindings, PolicyFindings, RiskFindings, Verdict
from appliance.pipeline.record import RecordStage

DAY = 86_400.0
PII_NAME = "Jonathan Quibblesworth"
PII_IBAN = "DE89370400440532013000"
API_KEY = "ak-test-4f1d9c2b7e0a53c8d61f"


def make_ctx(
    i: int,
    *,
    tenant: str = "acme",
    user: str = "alice",
    age_days: float = 0.0,
    decision: bool = True,
    risk: str = "minimal",
    model: str = "gpt-4o",
    payload: bool = False,
    application: str | None = "helpdesk",
) -> Context:
    start = time.time() - age_days * DAY
    ctx = Context(
        request_id=f"req_{tenant}_{i:05d}",
        route="chat.completions",
        body={"messages": [{"role": "user", "content": f"my name is {PII_NAME}"}]},
        api_key=API_KEY,
        started_at=start,
    )
    ctx.principal = Principal(key_id=f"key-{user}", tenant=tenant, user=user, roles=("dev",), application=application)
    ctx.requested_model = ctx.model = model
    ctx.provider, ctx.provider_region = "openai", "us"
    ctx.verdicts += [
        Verdict("pii_detect", findings=PiiFindings(
            scanned=True, counts={"PERSON": 1, "IBAN_CODE": 1},
            recognizers={"PERSON": ("SpacyRecognizer",), "IBAN_CODE": ("IbanRecognizer",)},
            languages=("en",))),
        Verdict("classify", findings=RiskFindings(
            risk_class=risk, content_class=risk,
            areas=(AreaFinding("employment", "Annex III 4", 0.8),))),
        Verdict("decide", outcome="continue" if decision else "deny",
                reasons=() if decision else ("high-risk use needs approval",),
                findings=PolicyFindings(
                    allow=decision, reasons=() if decision else ("high-risk use needs approval",),
                    revision="rev-7", rules=("r1",))),
    ]
    ctx.usage = Usage(12, 7)
    ctx.cost_usd = 0.00042
    ctx.status = 200 if decision else 403
    ctx.finished_at = start + 0.05
    if payload:
        ctx.obligations["store_payloads"] = True
        ctx.payload = Payload({"messages": [{"role": "user", "content": f"{PII_NAME} {PII_IBAN}"}]},
                              f"Hello {PII_NAME}")
    return ctx


def record_all(config: Config, contexts: Iterable[Context]) -> None:
    """Record contexts through a real RecordStage, then close it (sealing the segment)."""

    async def go() -> None:
        stage = RecordStage(config)
        await stage.start()
        try:
            await asyncio.gather(*(stage.record(c) for c in contexts))
        finally:
            await stage.aclose()

    asyncio.run(go())


def audit_config(data_dir: Path, **audit: Any) -> Config:
    return load_config(None, data_dir=data_dir, overrides={"audit": audit} if audit else None)


@pytest.fixture(scope="session")
def sealed_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir with one sealed segment of 40 records (built once per session)."""
    data = tmp_path_factory.mktemp("sealed") / "data"
    config = audit_config(data)
    record_all(config, [make_ctx(i, payload=(i % 3 == 0)) for i in range(40)])
    return data


@pytest.fixture
def log_copy(sealed_log: Path, tmp_path: Path) -> Callable[[], tuple[Config, AuditPaths]]:
    def copy() -> tuple[Config, AuditPaths]:
        data = tmp_path / "data"
        shutil.copytree(sealed_log, data)
        config = audit_config(data)
        return config, AuditPaths.from_config(config)

    return copy
