"""Stage 1: the API key becomes a Principal, or the request ends with HTTP 401."""

from __future__ import annotations

import hashlib
import time

from appliance.errors import AuthenticationFailed
from appliance.keys.store import ControlPlane, KeyRecord
from appliance.pipeline.context import Context, Principal, Verdict

#: How long a verified key is trusted before revocations are looked for again.
_RECHECK_S = 1.0


class Authenticator:
    """Verifies keys against the control plane, caching verified keys by their digest.

    The cache is dropped whenever the control plane changes (another process created or
    revoked a key), probed at most once a second, so a revocation takes effect within a
    second on every server process.
    """

    def __init__(self, control: ControlPlane) -> None:
        self._control = control
        self._cache: dict[bytes, KeyRecord] = {}
        self._version = control.data_version()
        self._checked_at = time.monotonic()

    def verify(self, key: str | None) -> KeyRecord:
        if not key:
            raise AuthenticationFailed(
                "Missing API key: send it as 'Authorization: Bearer <key>' or 'x-api-key'."
            )
        now = time.monotonic()
        if now - self._checked_at > _RECHECK_S:
            self._checked_at = now
            version = self._control.data_version()
            if version != self._version:
                self._version = version
                self._cache.clear()
        digest = hashlib.sha256(key.encode("utf-8", "replace")).digest()
        record = self._cache.get(digest)
        if record is None:
            record = self._control.verify(key)
            if record is None:
                raise AuthenticationFailed("Invalid or revoked API key.")
            if len(self._cache) > 100_000:
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
    )


class AuthenticateStage:
    name = "authenticate"

    def __init__(self, authenticator: Authenticator) -> None:
        self._auth = authenticator

    async def run(self, ctx: Context) -> Verdict:
        record = self._auth.verify(ctx.api_key)
        ctx.principal = principal_of(record)
        ctx.state["key_limits"] = record.limits
        return Verdict(self.name, facts={"key_id": record.id, "tenant": record.tenant})
