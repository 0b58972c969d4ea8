"""The recorder: the last step of every request, allowed, denied or failed.

``record`` returns only once the request's audit row is committed to this process's
segment (group commit, see :mod:`appliance.audit.writer`). If the row cannot be made
durable it raises :class:`StageFailed`, so the request is not acknowledged.
"""

from __future__ import annotations

import asyncio
from typing import Any

from appliance.audit.envelope import TenantKeyStore
from appliance.audit.keys import key_bytes, load_secret
from appliance.audit.rows import request_row
from appliance.audit.writer import AuditWriter
from appliance.config import Config
from appliance.core.context import Context, Payload
from appliance.core.readiness import Readiness
from appliance.errors import AuditUnavailable, StageFailed

_NO_TENANT = "_none"


class RecordStage:
    name = "record"

    def __init__(self, config: Config) -> None:
        self._config = config
        self._writer: AuditWriter | None = None
        self._keystore: TenantKeyStore | None = None
        #: Back-pressure: at most this many records of this process in flight; the disk
        #: is the limit, and a request waits for a slot rather than polling for one.
        self._in_flight = asyncio.Semaphore(config.audit.queue_max_records)

    async def start(self) -> None:
        if not self._config.audit.enabled:
            return
        writer = AuditWriter(self._config)
        await asyncio.to_thread(writer.start)
        self._writer = writer
        await asyncio.to_thread(self._keys)

    async def aclose(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            await asyncio.to_thread(writer.close)

    async def readiness(self) -> Readiness:
        """The audit writer, and in a fleet its archive: a backlog of sealed segments that
        cannot be shipped is degraded (records stay safe on this replica's disk)."""
        writer = self._writer
        if writer is None:
            return Readiness("audit", ready=not self._config.audit.enabled)
        detail: dict[str, object] = {"records": writer.stats.records, "errors": writer.stats.errors}
        degraded = False
        if writer.shipper is not None:
            detail["archive"] = writer.shipper.status()
            degraded = writer.shipper.stats.last_error is not None
        return Readiness("audit", degraded=degraded, detail=detail)

    def _keys(self) -> TenantKeyStore:
        if self._keystore is None:
            assert self._writer is not None
            secret = load_secret(self._config.audit.master_key, self._config.storage.data_dir, "audit master")
            self._keystore = TenantKeyStore(self._writer.paths.keystore, key_bytes(secret, "audit master"))
        return self._keystore

    def _seal_payload(self, row: dict[str, Any], ctx: Context, payload: Payload) -> None:
        tenant = ctx.principal.tenant if ctx.principal else _NO_TENANT
        sealed = self._keys().seal(
            tenant, ctx.request_id, {"request": payload.request, "response": payload.response}
        )
        row["payload_key_id"] = sealed.key_id
        row["payload_nonce"] = sealed.nonce
        row["payload_ct"] = sealed.ciphertext

    def unready(self) -> str | None:
        """Gate: why the log cannot take records now (disk full, read-only, failing)."""
        writer = self._writer
        return writer.unready() if writer is not None else None

    async def record(self, ctx: Context) -> None:
        writer = self._writer
        if writer is None:
            if not self._config.audit.enabled:
                return
            raise StageFailed("The audit log is not running; the request was not recorded.")
        if ctx.error == AuditUnavailable.code and writer.unready() is not None:
            # Refused because the log cannot write: trying would only fail again.
            raise AuditUnavailable("The audit log cannot take records now.")
        row = request_row(ctx)
        payload = ctx.payload
        if payload is not None and ctx.obligations.get("store_payloads"):
            try:
                if self._keys().has_key(ctx.principal.tenant if ctx.principal else _NO_TENANT):
                    self._seal_payload(row, ctx, payload)  # AES-GCM of a few KB: microseconds
                else:  # first payload of a tenant: creates its data key (file I/O)
                    await asyncio.to_thread(self._seal_payload, row, ctx, payload)
            except Exception:  # noqa: BLE001 - translated at this boundary, no content leaks
                raise StageFailed("The audit payload could not be encrypted.") from None
        async with self._in_flight:
            try:
                await writer.submit_async(row)
            except Exception:  # noqa: BLE001 - translated at this boundary
                raise StageFailed(
                    "The request could not be recorded in the audit log."
                ) from None

    async def record_admin(self, row: dict[str, Any]) -> None:
        """Chain an administrative row (``audit.rows.admin_row``); durable on return."""
        writer = self._writer
        if writer is None:
            raise StageFailed("The audit log is not running; the act was not recorded.")
        async with self._in_flight:
            try:
                await writer.submit_async(row)
            except Exception:  # noqa: BLE001 - translated at this boundary
                raise StageFailed("The act could not be recorded in the audit log.") from None
