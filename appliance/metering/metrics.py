"""Prometheus metrics of the appliance, served at ``GET /metrics``.

Each app owns its registry (no process-wide default registry), so several apps in one
process (tests) never mix counts. Labels carry only bounded, non-secret values: route,
configured model names, tenant, HTTP status, entity types, rule ids, risk classes.
Never a user id, a key, a prompt or a requested model name the config does not know.
With ``server.workers > 1`` every process keeps its own counts: scrape each one.
"""

from __future__ import annotations

import hmac
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from appliance.pipeline.context import Context

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
_STAGE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5)


def decision_of(ctx: Context) -> str:
    if ctx.status == 429:
        return "rate_limited"
    if ctx.fact("decide", "allow") is False or ctx.status in (401, 403):
        return "deny"
    if ctx.status >= 400:
        return "error"
    return "allow"


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "appliance_requests", "Requests by route, model, HTTP status and decision",
            ("route", "model", "status", "decision"), registry=r,
        )
        self.tokens = Counter(
            "appliance_tokens", "Tokens by tenant, model and type (prompt|completion)",
            ("tenant", "model", "type"), registry=r,
        )
        self.cost = Counter(
            "appliance_cost_usd", "Cost in USD by tenant and model", ("tenant", "model"), registry=r
        )
        self.latency = Histogram(
            "appliance_request_duration_seconds", "Time from request to recorded response",
            ("route",), buckets=_LATENCY_BUCKETS, registry=r,
        )
        self.stage_latency = Histogram(
            "appliance_stage_duration_seconds", "Time spent in each request stage",
            ("stage",), buckets=_STAGE_BUCKETS, registry=r,
        )
        self.pii = Counter(
            "appliance_pii_findings", "PII findings in requests by entity type",
            ("entity_type",), registry=r,
        )
        self.denials = Counter(
            "appliance_policy_denials", "Policy denials by rule (or reason)", ("reason",), registry=r
        )
        self.risk = Counter(
            "appliance_risk_class", "Requests by EU AI Act risk class", ("risk_class",), registry=r
        )
        self.upstream_errors = Counter(
            "appliance_upstream_errors", "Failed upstream calls by provider and error code",
            ("provider", "code"), registry=r,
        )
        self.rate_limited = Counter(
            "appliance_rate_limited", "Requests refused by a limit (scope kind and limit)",
            ("scope", "limit"), registry=r,
        )
        self.notifications = Counter(
            "appliance_budget_notifications", "Budget notifications sent (soft limit, exhausted)",
            ("event", "scope"), registry=r,
        )
        self.unpriced = Counter(
            "appliance_unpriced_requests", "Requests to models the price table does not know",
            ("model",), registry=r,
        )

    def observe(self, ctx: Context) -> None:
        """Count one finished request from what the stages left on the context."""
        model = ctx.model or ""
        self.requests.labels(ctx.route, model, str(ctx.status), decision_of(ctx)).inc()
        if ctx.finished_at is not None:
            self.latency.labels(ctx.route).observe(max(0.0, ctx.finished_at - ctx.started_at))
        for v in ctx.verdicts:
            self.stage_latency.labels(v.stage).observe(v.duration_s)
        tenant = ctx.principal.tenant if ctx.principal else ""
        if ctx.usage.prompt_tokens:
            self.tokens.labels(tenant, model, "prompt").inc(ctx.usage.prompt_tokens)
        if ctx.usage.completion_tokens:
            self.tokens.labels(tenant, model, "completion").inc(ctx.usage.completion_tokens)
        if ctx.cost_usd:
            self.cost.labels(tenant, model).inc(ctx.cost_usd)
        counts = ctx.fact("pii_detect", "counts")
        if isinstance(counts, dict):
            for entity, n in counts.items():
                if isinstance(n, int) and n > 0:
                    self.pii.labels(str(entity)).inc(n)
        if ctx.fact("decide", "allow") is False:
            # "deny_rules" (only the rules that denied) when the policy stage gives it;
            # "rules" also holds the obligation rules that fired on the same request.
            rules = ctx.fact("decide", "deny_rules") or ctx.fact("decide", "rules") or ()
            for rule in rules if isinstance(rules, list | tuple) and rules else ("unspecified",):
                self.denials.labels(str(rule)[:80]).inc()
        risk = ctx.fact("classify", "risk_class")
        if isinstance(risk, str):
            self.risk.labels(risk).inc()
        if ctx.error and (ctx.status in (502, 504) or ctx.error.startswith("upstream")):
            self.upstream_errors.labels(ctx.provider or "", ctx.error).inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def _find(app: web.Application) -> Metrics | None:
    from appliance.server.services import SERVICES

    services = app.get(SERVICES)
    if services is None:
        return None
    found = services.extras.get("metrics")
    if isinstance(found, Metrics):
        return found
    for stage in services.pipeline.request_stages:
        m: Any = getattr(stage, "metrics", None)
        if isinstance(m, Metrics):
            return m
    return None


async def metrics_handler(request: web.Request) -> web.Response:
    from appliance.server.services import SERVICES

    metrics = _find(request.app)
    if metrics is None:
        raise web.HTTPNotFound(text="metrics need the limits stage ([pipeline] limits = true)")
    services = request.app[SERVICES]
    if services.config.limits.metrics_require_admin_key:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not services.admin_key or not hmac.compare_digest(given, services.admin_key):
            raise web.HTTPUnauthorized(text="the admin key is required for /metrics")
    return web.Response(
        body=metrics.exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST}
    )


def add_routes(app: web.Application) -> None:
    app.router.add_get("/metrics", metrics_handler)
