"""Admission (rate limits, budgets) before the model call, settlement after it.

``admit`` reserves what a request is expected to use (one request, its estimated
tokens, its estimated cost) against every limit that applies, atomically, or refuses
it with HTTP 429 naming the limit. ``settle`` replaces the estimates with the real
token counts and cost, books the usage row for ``appliance usage`` and notifies when a
budget crosses its soft limit or runs out (once per period); ``observe`` updates the
metrics once the request is recorded.
"""

from __future__ import annotations

import asyncio
import logging
import math
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Literal

from appliance.config import Config, secret
from appliance.errors import EngineUnavailable, RateLimited
from appliance.config.limits import LimitSpec
from appliance.metering.metrics import Metrics
from appliance.metering.notify import Notifier
from appliance.metering.plans import Plans
from appliance.metering.prices import PriceTable, Quote
from appliance.metering.scopes import Scope, scopes_of
from appliance.metering.sqlite_store import SqliteCounterStore
from appliance.metering.store import (
    DAY_TTL_S,
    MONTH_TTL_S,
    SECOND_TTL_S,
    WINDOW_S,
    Charge,
    CounterStore,
    CounterStoreUnavailable,
    Item,
    Outcome,
    UsageRow,
    clock,
    day_bucket,
    hour_bucket,
    month_bucket,
    nano_to_usd,
    seconds_to_next_day,
    seconds_to_next_month,
    usd_to_nano,
)
from appliance.core.tokens import estimate_prompt, requested_output
from appliance.core.context import Context, StateKey, Usage
from appliance.core.findings import AdmissionFindings, ToolCallFindings, Verdict
from appliance.core.readiness import Readiness

log = logging.getLogger(__name__)

Measure = Literal["rpm", "tpm", "budget_usd_day", "budget_usd_month"]
STATE = "limits"


@dataclass(frozen=True, slots=True)
class Slot:
    """What one reserved item stands for."""

    scope: Scope
    measure: Measure


@dataclass(frozen=True, slots=True)
class Volume:
    """The tenant's month-to-date tokens on a tiered model, counted at admission."""

    model: str
    item: Item
    before: int


@dataclass(frozen=True, slots=True)
class Reservation:
    items: tuple[Item, ...]
    slots: tuple[Slot, ...]
    tokens: int
    cost_nano: int
    volume: Volume | None = None


#: What admission booked, for ``settle`` to adjust (per request).
RESERVATION: StateKey[Reservation] = StateKey("limits.reservation")


def open_store(config: Config) -> CounterStore:
    lc = config.limits
    if lc.backend == "redis":
        from appliance.metering.redis_store import RedisCounterStore

        return RedisCounterStore(
            lc.redis_url,
            prefix=lc.redis_prefix,
            password=secret(lc.redis_password_env),
            retention_days=lc.retention_days,
            max_connections=lc.redis_max_connections,
        )
    return SqliteCounterStore(config.resolve(lc.db_file), retention_days=lc.retention_days)


def format_reset(seconds: float) -> str:
    """OpenAI's duration format: "1s", "6m0s", "1h2m3s"."""
    s = max(1, math.ceil(seconds))
    h, rest = divmod(s, 3600)
    m, sec = divmod(rest, 60)
    if h:
        return f"{h}h{m}m{sec}s"
    if m:
        return f"{m}m{sec}s"
    return f"{sec}s"


def _money(nano: int) -> str:
    return f"${nano_to_usd(nano):,.2f}"


def _tool(ctx: Context) -> str | None:
    """The MCP tool of a tool call ("<server>/<tool>"), which may have limits of its own."""
    tool = ctx.findings(ToolCallFindings)
    return f"{tool.server}/{tool.tool}" if tool is not None else None


class Meter:
    def __init__(self, config: Config, metrics: Metrics) -> None:
        self._config = config
        self._limits = config.limits
        self.metrics = metrics
        self._store: CounterStore | None = None
        self._prices: PriceTable | None = None
        self._plans: Plans | None = None
        self._notifier = Notifier(config.limits.webhook_url, config.limits.webhook_timeout_s)
        #: Settlements on their way to a shared store (see :meth:`_settle`); drained on close.
        self._booking: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._prices = PriceTable.load(self._limits.prices_file)
        self._plans = Plans.load(self._limits.plans_file, self._limits)
        store = open_store(self._config)
        await store.start()
        self._store = store
        await self._notifier.start()

    async def aclose(self) -> None:
        if self._booking:  # a draining replica books what it answered before it goes
            await asyncio.gather(*self._booking, return_exceptions=True)
        await self._notifier.aclose()
        store, self._store = self._store, None
        if store is not None:
            await store.aclose()

    @property
    def store(self) -> CounterStore:
        if self._store is None:
            raise RuntimeError("the meter is not started")
        return self._store

    @property
    def prices(self) -> PriceTable:
        assert self._prices is not None
        return self._prices

    @property
    def plans(self) -> Plans:
        assert self._plans is not None
        return self._plans

    # -- prices -----------------------------------------------------------------------

    def quote(self, ctx: Context) -> Quote | None:
        if not ctx.model:
            return None
        spec = self._config.models.get(ctx.model)
        provider = self._config.providers.get(ctx.provider)
        providers = [ctx.provider] + ([provider.kind] if provider is not None else [])
        models = [spec.upstream_model or ctx.model, ctx.model] if spec else [ctx.model]
        return self.prices.quote(providers, models)

    def _discount(self, tenant: str) -> float:
        plan = self.plans.of(tenant)
        return plan.discount if plan else 0.0

    # -- admission --------------------------------------------------------------------

    async def admit(self, ctx: Context) -> Verdict:
        p = ctx.principal
        if p is None:
            return Verdict(STATE, findings=AdmissionFindings())
        now = clock()
        scopes = scopes_of(p, p.limits, self._limits, self.plans, _tool(ctx))
        prompt = estimate_prompt(ctx.body)
        output = requested_output(ctx.body) if ctx.route != "embeddings" else 0
        tokens = prompt + output
        quote = self.quote(ctx)
        est_cost = 0.0
        if quote is not None:
            est_cost = quote.cost_usd(prompt, output) * (1 - self._discount(p.tenant))
        cost_nano = usd_to_nano(est_cost)
        items, slots = self._items(scopes, now, tokens, cost_nano)
        n = len(items)
        if quote is not None and quote.tiered:
            # Volume tiers: count the tenant's tokens on the model in the same round trip.
            items.append(self._volume_item(p.tenant, ctx.model, tokens, now))
        try:
            outcome = await self.store.admit(items)
        except CounterStoreUnavailable:
            return self._store_down(ctx, tokens, est_cost)
        # What was booked, where: settle adjusts exactly these buckets.
        booked = [it.at(b, it.amount) for it, b in zip(items, outcome.buckets, strict=True)]
        volume = None
        if len(items) > n:
            volume = Volume(ctx.model, booked[n], outcome.totals[n] - tokens)
        reservation = Reservation(tuple(booked[:n]), tuple(slots), tokens, cost_nano, volume)
        self._rate_headers(ctx, reservation, outcome, outcome.now)
        if not outcome.admitted:
            assert outcome.refused is not None
            raise self._refusal(reservation, outcome, outcome.refused, outcome.now)
        ctx.put(RESERVATION, reservation)
        return Verdict(
            STATE,
            findings=AdmissionFindings(
                estimated_tokens=tokens,
                estimated_cost_usd=round(est_cost, 6),
                limits=tuple(sorted(
                    {f"{s.scope.kind}.{s.measure}"
                     for s, it in zip(slots, items, strict=False) if it.limit is not None}
                )),
            ),
        )

    def _store_down(self, ctx: Context, tokens: int, est_cost: float) -> Verdict:
        """Redis is unreachable: refuse (``[fleet] redis_outage = "closed"``) or admit the
        request uncounted ("open"); either way the verdict, and so the audit record, says so."""
        if self._config.fleet.redis_outage != "open":
            log.error("counter store unreachable: request refused (fail closed)")
            raise EngineUnavailable(
                "The shared rate-limit counters cannot be reached; the request was refused (fail closed)."
            )
        log.error("counter store unreachable: request admitted uncounted (redis_outage = open)")
        return Verdict(
            STATE,
            reasons=("limits not enforced: the counter store is unreachable (redis_outage = open)",),
            findings=AdmissionFindings(estimated_tokens=tokens, estimated_cost_usd=round(est_cost, 6)),
        )

    async def readiness(self) -> Readiness:
        store = self._store
        if store is None:
            return Readiness("limits", ready=False, detail={"store": "not started"})
        ping = getattr(store, "ping", None)
        if ping is None:
            return Readiness("limits", detail={"backend": "local"})
        up = bool(await asyncio.wait_for(ping(), 3.0))
        return Readiness("limits", degraded=not up,
                         detail={"backend": "redis", "reachable": up,
                                 "on_outage": self._config.fleet.redis_outage})

    def _items(
        self, scopes: list[Scope], now: float, tokens: int, cost_nano: int
    ) -> tuple[list[Item], list[Slot]]:
        enforce = self._limits.enabled
        sec, day, month = int(now), day_bucket(now), month_bucket(now)
        items: list[Item] = []
        slots: list[Slot] = []
        for scope in scopes:
            lim = scope.limits
            # Rate windows: the store reads its own clock for the bucket (window_s).
            if enforce and lim.rpm is not None:
                items.append(Item(f"{scope.key}:req", sec, 1, sec, lim.rpm, SECOND_TTL_S, WINDOW_S))
                slots.append(Slot(scope, "rpm"))
            if enforce and lim.tpm is not None:
                items.append(Item(f"{scope.key}:tok", sec, tokens, sec, lim.tpm, SECOND_TTL_S, WINDOW_S))
                slots.append(Slot(scope, "tpm"))
            budgets: tuple[tuple[Measure, str, int, float | None, int], ...] = (
                ("budget_usd_day", "d", day, lim.budget_usd_day, DAY_TTL_S),
                ("budget_usd_month", "m", month, lim.budget_usd_month, MONTH_TTL_S),
            )
            for measure, period, bucket, hard, ttl in budgets:
                limit = usd_to_nano(hard) if enforce and hard is not None else None
                # A hard budget refuses once it is spent, even when the estimate is zero.
                amount = max(cost_nano, 1) if limit is not None else cost_nano
                items.append(Item(f"{scope.key}:usd:{period}", bucket, amount, bucket, limit, ttl))
                slots.append(Slot(scope, measure))
        return items, slots

    def _rate_headers(self, ctx: Context, r: Reservation, outcome: Outcome, now: float) -> None:
        for measure, suffix in (("rpm", "requests"), ("tpm", "tokens")):
            best: tuple[int, int, float] | None = None
            for i, slot in enumerate(r.slots):
                item = r.items[i]
                if slot.measure != measure or item.limit is None:
                    continue
                remaining = max(0, item.limit - outcome.totals[i])
                oldest = outcome.oldest[i]
                reset = 0.0 if oldest is None else oldest + WINDOW_S - now
                if best is None or remaining < best[1]:
                    best = (item.limit, remaining, reset)
            if best is not None:
                ctx.headers[f"x-ratelimit-limit-{suffix}"] = str(best[0])
                ctx.headers[f"x-ratelimit-remaining-{suffix}"] = str(best[1])
                ctx.headers[f"x-ratelimit-reset-{suffix}"] = format_reset(best[2])

    def _refusal(self, r: Reservation, outcome: Outcome, i: int, now: float) -> RateLimited:
        slot, item = r.slots[i], r.items[i]
        assert item.limit is not None
        who = slot.scope.described()
        self.metrics.rate_limited.labels(slot.scope.kind, slot.measure).inc()
        if slot.measure in ("rpm", "tpm"):
            oldest = outcome.oldest[i]
            wait = (oldest + WINDOW_S - now) if oldest is not None else 1.0
            if slot.measure == "rpm":
                msg = f"Rate limit reached: {who} allows {item.limit} requests per minute."
            elif item.amount > item.limit:
                return RateLimited(
                    f"Request too large: it needs about {item.amount} tokens, more than the "
                    f"{item.limit} tokens per minute {who} allows. Send a shorter request "
                    "or a smaller max_tokens.",
                    code="tokens_per_minute_exceeded",
                )
            else:
                msg = (
                    f"Rate limit reached: {who} allows {item.limit} tokens per minute; "
                    f"{outcome.totals[i]} are used and this request needs about {item.amount}."
                )
            return RateLimited(f"{msg} Retry in {format_reset(wait)}.", retry_after_s=max(1.0, wait))
        period, wait = (
            ("daily", seconds_to_next_day(now))
            if slot.measure == "budget_usd_day"
            else ("monthly", seconds_to_next_month(now))
        )
        resets = datetime.fromtimestamp(now + wait, UTC).strftime("%Y-%m-%d %H:%M UTC")
        left = item.limit - outcome.totals[i]
        if left > 0:
            return RateLimited(
                f"Budget exceeded: the {period} budget of {_money(item.limit)} for {who} has "
                f"{_money(left)} left, less than this request's estimated cost of "
                f"{_money(item.amount)}. Send a smaller request or max_tokens; the budget "
                f"resets at {resets}.",
                retry_after_s=wait,
                code="budget_exceeded",
            )
        return RateLimited(
            f"Budget exceeded: the {period} budget of {_money(item.limit)} for {who} is used up "
            f"({_money(outcome.totals[i])} spent). It resets at {resets}.",
            retry_after_s=wait,
            code="budget_exceeded",
        )

    # -- settlement -------------------------------------------------------------------

    async def settle(self, ctx: Context) -> None:
        """Book the request's real tokens and cost, once, as soon as its usage is known."""
        if ctx.principal is not None:
            await self._settle(ctx)

    async def settle_failure(self, ctx: Context) -> None:
        """Count as failed a request whose usage was booked before its answer failed."""
        if ctx.principal is not None:
            row = replace(self._usage_row(ctx, clock(), 0), requests=0, prompt_tokens=0,
                          completion_tokens=0)
            await self.store.charge(Charge(usage=row))

    async def _settle(self, ctx: Context) -> None:
        p = ctx.principal
        assert p is not None
        now = clock()
        usage = ctx.usage
        if usage.total_tokens == 0 and ctx.model and (ctx.status < 400 or ctx.status == 499):
            # The provider reported nothing (a broken stream): count the prompt at least.
            usage = ctx.usage = Usage(prompt_tokens=estimate_prompt(ctx.body))
        quote = self.quote(ctx)
        cost_nano = 0
        reservation = ctx.get(RESERVATION)
        charge = Charge()
        volume = reservation.volume if reservation is not None else None
        if volume is not None:
            # Replace the estimate counted at admission by the real count (maybe 0).
            real = usage.total_tokens if volume.model == ctx.model else 0
            charge.items.append(volume.item.at(volume.item.bucket, real - volume.item.amount))
        if quote is not None and usage.total_tokens:
            before = 0
            if quote.tiered:
                if volume is not None and volume.model == ctx.model:
                    before = volume.before
                else:
                    before = await self._month_volume(p.tenant, ctx.model, usage.total_tokens, now)
            cost = quote.cost_usd(usage.prompt_tokens, usage.completion_tokens, before)
            cost_nano = usd_to_nano(cost * (1 - self._discount(p.tenant)))
        elif quote is None and ctx.model and usage.total_tokens:
            self.metrics.unpriced.labels(ctx.model).inc()
        ctx.cost_usd = nano_to_usd(cost_nano)

        charge.usage = self._usage_row(ctx, now, cost_nano)
        head = len(charge.items)
        slots: list[Slot] = []
        if reservation is not None:
            for item, slot in zip(reservation.items, reservation.slots, strict=True):
                if slot.measure == "rpm":
                    continue
                actual = usage.total_tokens if slot.measure == "tpm" else cost_nano
                charge.items.append(item.at(item.bucket, actual - item.amount))
                slots.append(slot)
        elif cost_nano:
            scopes = scopes_of(p, p.limits, self._limits, self.plans, _tool(ctx))
            items, all_slots = self._items(scopes, now, 0, cost_nano)
            for item, slot in zip(items, all_slots, strict=True):
                if slot.measure.startswith("budget"):
                    charge.items.append(item.at(item.bucket, cost_nano))
                    slots.append(slot)
        if getattr(self.store, "remote", False):
            # A shared store (Redis) is a network round trip: the answer and its audit
            # record need only the cost computed above, so the booking goes on without
            # them. Admission already counted the request and reserved its estimate; the
            # booking replaces that estimate by the real figures a millisecond later.
            task = asyncio.create_task(self._book(charge, slots, head, cost_nano, now))
            self._booking.add(task)
            task.add_done_callback(self._booking.discard)
            return
        await self._book(charge, slots, head, cost_nano, now, raise_errors=True)

    async def _book(self, charge: Charge, slots: list[Slot], head: int, cost_nano: int, now: float,
                    *, raise_errors: bool = False) -> None:
        try:
            outcome = await self.store.charge(charge)
            if cost_nano > 0:
                await self._notify_budgets(slots, outcome.totals[head:], now)
        except Exception as e:  # noqa: BLE001 - in the background nobody else would hear of it
            if raise_errors:
                raise
            log.error("booking a settlement in the counter store failed: %s", type(e).__name__)

    @staticmethod
    def _volume_item(tenant: str, model: str, tokens: int, now: float) -> Item:
        bucket = month_bucket(now)
        return Item(f"tenant:{tenant}:model:{model}:tok", bucket, tokens, bucket, None, MONTH_TTL_S)

    async def _month_volume(self, tenant: str, model: str, tokens: int, now: float) -> int:
        """Count the tenant's tokens on a tiered model; returns the volume before them."""
        outcome = await self.store.charge(Charge(items=[self._volume_item(tenant, model, tokens, now)]))
        return outcome.totals[0] - tokens

    def _usage_row(self, ctx: Context, now: float, cost_nano: int) -> UsageRow:
        p = ctx.principal
        assert p is not None
        return UsageRow(
            hour=hour_bucket(now),
            tenant=p.tenant,
            department=p.department or "",
            user=p.user,
            application=p.application or "",
            key_id=p.key_id,
            model=ctx.model,
            route=ctx.route,
            requests=1,
            errors=1 if ctx.status >= 400 else 0,
            prompt_tokens=ctx.usage.prompt_tokens,
            completion_tokens=ctx.usage.completion_tokens,
            cost_nano=cost_nano,
        )

    async def _notify_budgets(self, slots: list[Slot], totals: tuple[int, ...], now: float) -> None:
        for slot, total in zip(slots, totals, strict=True):
            if not slot.measure.startswith("budget"):
                continue
            daily = slot.measure == "budget_usd_day"
            lim: LimitSpec = slot.scope.limits
            hard = lim.budget_usd_day if daily else lim.budget_usd_month
            soft = lim.soft_budget_usd_day if daily else lim.soft_budget_usd_month
            if soft is None and hard is not None:
                soft = hard * self._limits.soft_ratio
            period = "day" if daily else "month"
            window = (
                datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d" if daily else "%Y-%m")
            )
            ttl = int(seconds_to_next_day(now) if daily else seconds_to_next_month(now)) + 86400
            for event, threshold in (("budget.exhausted", hard), ("budget.soft_limit", soft)):
                if threshold is None or total < usd_to_nano(threshold):
                    continue
                flag = f"{event}:{slot.scope.key}:{window}"
                if not await self.store.once(flag, ttl):
                    continue
                self.metrics.notifications.labels(event, slot.scope.kind).inc()
                payload: dict[str, Any] = {
                    "event": event,
                    "scope": slot.scope.kind,
                    "subject": slot.scope.subject,
                    "period": period,
                    "window": window,
                    "spent_usd": round(nano_to_usd(total), 6),
                    "threshold_usd": threshold,
                    "soft_limit_usd": soft,
                    "hard_limit_usd": hard,
                    "at": datetime.fromtimestamp(now, UTC).isoformat(),
                }
                self._notifier.notify(
                    payload,
                    f"{event}: {slot.scope.logged()} spent {_money(total)} this {period} "
                    f"({window}), threshold {_money(usd_to_nano(threshold))}",
                )

