"""The embedded engine fed by a signed OPA bundle polled from a URL (a fleet's policy).

Every ``bundle_poll_s`` the engine asks for the bundle with the ETag it holds (HTTP
``If-None-Match``, S3 ``IfNoneMatch``, a file's mtime and size). A changed bundle is
verified (signature under the trusted key, every file's hash), compiled, and its own
tests are run; only then is it swapped in with one assignment. Anything that fails
keeps the active revision, and says why: a log line, ``last_error`` in ``/readyz`` and
the admin status, and the loads/rejections counts. A replica that has never loaded a
bundle decides nothing (every request denied, fail closed) and is not ready.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import aiohttp

from appliance.config.policy import PolicyConfig
from appliance.objstore.store import (
    Fetched,
    ObjectStore,
    StoreError,
    open_store,
    split_object_url,
)
from appliance.policy import bundle
from appliance.policy.engine import EmbeddedEngine
from appliance.policy.runner import run_tests
from appliance.policy.source import PolicyLoadError, PolicySource

log = logging.getLogger(__name__)


class BundleFetcher:
    """Conditional reads of one bundle URL (http(s), s3 or a path)."""

    def __init__(self, url: str, timeout_s: float = 10.0) -> None:
        self.url = url
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._http: aiohttp.ClientSession | None = None
        self._store: ObjectStore | None = None
        self._name = ""

    async def fetch(self, etag: str | None) -> Fetched:
        if self.url.startswith(("http://", "https://")):
            if self._http is None:
                self._http = aiohttp.ClientSession(timeout=self._timeout)
            headers = {"If-None-Match": etag} if etag else {}
            try:
                async with self._http.get(self.url, headers=headers) as r:
                    if r.status == 304:
                        return Fetched(None, etag or "")
                    if r.status != 200:
                        raise StoreError(f"bundle server answered HTTP {r.status}")
                    return Fetched(await r.read(), r.headers.get("ETag", ""))
            except (aiohttp.ClientError, TimeoutError) as e:
                raise StoreError(f"bundle server unreachable ({type(e).__name__})") from None
        if self._store is None:  # one client for every poll (creating one costs ~50 ms CPU)
            root, self._name = split_object_url(self.url)
            self._store = open_store(root)
        return await asyncio.to_thread(self._store.fetch, self._name, etag)

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None


class BundleEngine(EmbeddedEngine):
    def __init__(self, config: PolicyConfig, public_pem: bytes) -> None:
        super().__init__(config)
        assert config.bundle_url is not None
        self._fetcher = BundleFetcher(config.bundle_url)
        self._public = public_pem
        self._etag: str | None = None
        self._poll: asyncio.Task[None] | None = None
        self.loads = 0
        self.rejections = 0
        self.checked_at: float | None = None

    def load(self) -> None:  # the directory loader does not apply
        raise PolicyLoadError("a bundle engine loads from its bundle_url")

    def reload_if_changed(self) -> bool:
        return False

    def accept(self, source: PolicySource) -> None:
        """Compile, run the bundle's tests, swap (blocking); raises and keeps the old set."""
        report = run_tests(source)
        if report.failed:
            names = ", ".join(r.case.name for r in report.results if not r.passed)
            raise PolicyLoadError(
                f"bundle revision {source.revision}: {report.failed} of {len(report.results)} "
                f"tests fail ({names})"
            )
        self.activate(source)

    async def refresh(self) -> bool:
        """Poll once; True when a new revision is now active."""
        try:
            got = await self._fetcher.fetch(self._etag)
        except (StoreError, ValueError) as e:
            self.last_error = f"bundle not fetched: {e}"
            log.warning("policy bundle %s: %s", self._fetcher.url, self.last_error)
            return False
        finally:
            self.checked_at = time.time()
        if got.body is None:
            return False
        self._etag = got.etag  # a broken bundle is not fetched and rejected again every poll
        try:
            source = bundle.read(got.body, self._public, key_id=self._config.bundle_key_id,
                                 origin=self._fetcher.url)
            if source.revision == self.revision:
                return False
            await asyncio.to_thread(self.accept, source)
        except PolicyLoadError as e:
            self.rejections += 1
            self.last_error = e.message
            log.warning("policy bundle rejected, keeping revision %s: %s",
                        self.revision or "(none)", e.message)
            return False
        self.loads += 1
        log.info("policy bundle revision %s active (from %s)", self.revision, self._fetcher.url)
        return True

    async def start(self) -> None:
        await self.refresh()
        self._poll = asyncio.create_task(self._polling(), name="policy-bundle-poll")
        if self._config.offload:
            from concurrent.futures import ThreadPoolExecutor

            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="policy-eval")

    async def _polling(self) -> None:
        while True:
            await asyncio.sleep(self._config.bundle_poll_s)
            try:
                await self.refresh()
            except Exception:  # a poll must never kill the poller; the old set stays
                log.exception("policy bundle poll failed, keeping revision %s", self.revision)

    async def aclose(self) -> None:
        if self._poll is not None:
            self._poll.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poll
            self._poll = None
        await self._fetcher.aclose()
        await super().aclose()

    def status(self) -> dict[str, Any]:
        return {
            **super().status(),
            "engine": "bundle",
            "dir": None,
            "bundle_url": self._fetcher.url,
            "loads": self.loads,
            "rejections": self.rejections,
            "checked_at": self.checked_at,
        }
