"""The audit trail: search, a record's detail with its proof, audited payload access.

Opening a decrypted payload asks for a reason; the access is written to the audit log
(``kind = access``, as ``appliance audit search --decrypt-payloads`` writes it) and is
durable before anything is decrypted. A payload whose tenant was shredded shows as such.
"""

from __future__ import annotations

import asyncio
import csv
import io
from typing import Any

from aiohttp import web

from appliance.audit.keys import load_public_key
from appliance.audit.segments import AuditPaths
from appliance.console.app import ConsoleError, Page, Route
from appliance.console.auditlog import LIST_COLUMNS, AuditFilters, parse_filters
from appliance.console.payloads import key_ids, open_payload
from appliance.console.policy_text import annotations_now

DECISIONS = ("allow", "deny", "rate_limited", "error")
RISK_CLASSES = ("prohibited", "high", "limited", "minimal")
KINDS = ("request", "console", "access", "purge", "shred", "rotate_key", "recover")
#: Most rows one CSV export writes.
EXPORT_MAX_ROWS = 100_000


def _filters(page: Page) -> AuditFilters:
    try:
        return parse_filters(page.request.query, page.tenant_scope)
    except ValueError:
        raise ConsoleError(400, "audit.bad_time") from None


async def trail(page: Page) -> web.StreamResponse:
    filters = _filters(page)
    try:
        number = max(1, int(page.request.query.get("page", "1")))
    except ValueError:
        raise ConsoleError(400, "error.bad_request") from None
    view = page.deps.view
    cfg = page.deps.config.console
    result = await asyncio.to_thread(
        view.search, filters, page=number, page_size=cfg.page_size, max_age_s=cfg.audit_refresh_s
    )
    scope = page.tenant_scope
    context: dict[str, Any] = {
        "result": result,
        "filters": filters,
        "query": {k: v for k, v in page.request.query.items() if k != "page" and v},
        "decisions": DECISIONS,
        "risk_classes": RISK_CLASSES,
        "kinds": KINDS,
        "tenants": [] if scope is not None else await asyncio.to_thread(view.distinct, "tenant"),
        "applications": await asyncio.to_thread(view.distinct, "application", scope),
        "models": await asyncio.to_thread(view.distinct, "model", scope),
        "pii_types": await asyncio.to_thread(view.pii_types, scope),
    }
    if page.request.headers.get("HX-Request") == "true":
        return page.render("audit_results.html", **context)
    return page.render("audit.html", **context)


def _position(page: Page) -> tuple[str, int]:
    try:
        return page.request.match_info["segment"], int(page.request.match_info["seq"])
    except ValueError:
        raise ConsoleError(404, "error.not_found") from None


def _visible(page: Page, record: dict[str, Any]) -> None:
    scope = page.tenant_scope
    if scope is not None and record.get("tenant") != scope:
        raise ConsoleError(404, "error.not_found")  # not 403: do not confirm it exists


async def by_request(page: Page) -> web.StreamResponse:
    request_id = page.request.match_info["request_id"]
    found = await asyncio.to_thread(
        page.deps.view.locate, request_id, page.tenant_scope, page.deps.config.console.audit_refresh_s
    )
    if found is None:
        raise ConsoleError(404, "audit.no_such_request", request_id=request_id)
    raise web.HTTPSeeOther(location=f"/console/audit/{found[0]}/{found[1]}")


async def record(page: Page) -> web.StreamResponse:
    segment_id, seq = _position(page)
    deps = page.deps
    public_path = AuditPaths.from_config(deps.config).public_key
    public = load_public_key(public_path) if public_path.exists() else None
    known_keys = await asyncio.to_thread(key_ids, deps.config)
    detail = await asyncio.to_thread(deps.view.detail, segment_id, seq, public, known_keys)
    if detail is None:
        raise ConsoleError(404, "error.not_found")
    _visible(page, detail.record)
    notes = await asyncio.to_thread(annotations_now, deps.config)
    status = deps.policy_status()
    return page.render(
        "audit_record.html",
        r=detail.record,
        proof=detail.proof,
        shredded=detail.shredded,
        has_payload=detail.has_payload,
        notes=notes,
        live_revision=status.get("revision"),
        may_decrypt=page.can("audit.payload"),
    )


async def payload(page: Page) -> web.StreamResponse:
    segment_id, seq = _position(page)
    reason = page.field("reason")
    if len(reason) < 5 or len(reason) > 500:
        raise ConsoleError(400, "audit.reason_required")
    deps = page.deps
    raw = await asyncio.to_thread(deps.view.raw_record, segment_id, seq)
    if raw is None or raw.get("payload_ct") is None:
        raise ConsoleError(404, "error.not_found")
    _visible(page, raw)
    # Durable before anything is decrypted, in the same shape as the CLI's access record.
    await page.audit(
        "decrypt_payloads",
        {"reason": reason, "request_ids": [raw["request_id"]], "segment_id": segment_id, "seq": seq},
        tenant=raw.get("tenant"),
        kind="access",
    )
    opened = await asyncio.to_thread(open_payload, deps.config, raw)
    return page.render("audit_payload.html", r=raw, payload=opened, reason=reason,
                       segment_id=segment_id, seq=seq)


async def export_csv(page: Page) -> web.StreamResponse:
    """The current search as CSV (metadata columns only, never payloads); audited."""
    filters = _filters(page)
    result = await asyncio.to_thread(page.deps.view.search, filters, page=1, page_size=EXPORT_MAX_ROWS)
    await page.audit("export_records", {"filters": {k: v for k, v in page.request.query.items() if v},
                                        "rows": len(result.rows)})
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(LIST_COLUMNS)
    for row in result.rows:
        writer.writerow([row.get(c) for c in LIST_COLUMNS])
    return web.Response(
        text=out.getvalue(),
        content_type="text/csv",
        headers={"Content-Disposition": 'attachment; filename="audit-records.csv"'},
    )


ROUTES = (
    Route("GET", "/audit", trail, "audit.read", "audit"),
    Route("GET", "/audit/export.csv", export_csv, "audit.export", "audit.export"),
    Route("GET", "/audit/request/{request_id}", by_request, "audit.read", "audit.request"),
    Route("GET", "/audit/{segment}/{seq}", record, "audit.read", "audit.record"),
    Route("POST", "/audit/{segment}/{seq}/payload", payload, "audit.payload", "audit.payload"),
)
