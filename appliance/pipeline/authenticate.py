"""Stage 1: the API key becomes a Principal, or the request ends with HTTP 401."""

from __future__ import annotations

import asyncio
import hashlib
import time

from appliance.core.context import Context, Principal
from appliance.core.findings import Verdict
from appliance.errors import AuthenticationFailed
from appliance.keys.store import ControlPlane, KeyRecord

#: How long a verified key is trusted before revocations are looked for again.
_RECHECK_S = 1.0
#: Verified keys kept at most (the cache is dropped whole past it).
_CACHE_MAX = 100_000


class Authenticator:
    """Verifies keys against the control plane, caching verified keys by their digest.

    The cache is dropped whenever the control plane changes (another process created or
    revoked a key). PostgreSQL pushes changes (LISTEN/NOTIFY), so its version is read on
    every request at no cost; SQLite is probed at most once a second. Either way a
    revocation takes effect within a second on every server process. The control plane
    is a database: every query runs on a thread, never on the event loop; a cache hit
    costs no query at all.

    While the change feed is lost (the shared database unreachable) the cache cannot be
    trusted: revocations may be missed. Cached keys then keep working for
    ``outage_grace_s`` (0 by default: fail closed at once); every other request fails
    with 503 ``engine_unavailable``.
    """

    def __init__(self, control: ControlPlane, outage_grace_s: float = 0.0) -> None:
        self._control = control
        self._grace_s = outage_grace_s
        self._cache: dict[bytes, KeyRecord] = {}
        self._version = control.data_version()
        self._checked_at = time.monotonic()

    def _trusted_cache(self) -> bool:
        down = self._control.backend.down_for()
        return down == 0.0 or down <= self._grace_s

    def _stale_maybe(self) -> bool:
        """Whether the key cache may be stale: checked in place when the control plane
        pushes its changes, otherwise at most every ``_RECHECK_S`` (by :meth:`_drop_stale`,
        off the event loop)."""
        if self._control.pushes_changes:
            version = self._control.data_version()
            if version != self._version:
                self._version = version
                self._cache.clear()
            return False
        return time.monotonic() - self._checked_at > _RECHECK_S

    async def _drop_stale(self) -> None:
        self._checked_at = time.monotonic()
        version = await asyncio.to_thread(self._control.data_version)
        if version != self._version:
            self._version = version
            self._cache.clear()

    async def verify(self, key: str | None) -> KeyRecord:
        if not key:
            raise AuthenticationFailed(
                "Missing API key: send it as 'Authorization: Bearer <key>' or 'x-api-key'."
            )
        if self._stale_maybe():
            await self._drop_stale()
        digest = hashlib.sha256(key.encode("utf-8", "replace")).digest()
        record = self._cache.get(digest) if self._trusted_cache() else None
        if record is not None and record.expired():
            del self._cache[digest]
            raise AuthenticationFailed("Invalid or revoked API key.")
        if record is None:
            record = await asyncio.to_thread(self._control.verify, key)
            if record is None:
                raise AuthenticationFailed("Invalid or revoked API key.")
            if len(self._cache) >= _CACHE_MAX:
                self._cache.clear()
            self._cache[digest] = record
        return record


def principal_of(record: KeyRecord) -> Principal:
    return Principal(
        key_id=record.id,
        tenant=record.tenant,
        user=record.user,
        department=record.department,
        roles=record.roles,
        application=record.application,
        limits=record.limits,
    )


class AuthenticateStage:
    name = "authenticate"

    def __init__(self, authenticator: Authenticator) -> None:
        self._auth = authenticator

    async def run(self, ctx: Context) -> Verdict:
        ctx.principal = principal_of(await self._auth.verify(ctx.api_key))
        return Verdict(self.name)
