"""Shared HTTP plumbing for the external provider adapters.

Every adapter talks to its upstream through these few helpers so that timeouts, error
mapping and SSE parsing behave the same everywhere: one place where aiohttp's exceptions
become :class:`UpstreamError` / :class:`UpstreamTimeout`, and where an upstream's error
body is reduced to a short message that never carries our credentials.
"""

from __future__ import annotations

import asyncio
import email.utils
import functools
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, ParamSpec, Protocol, TypeVar

import aiohttp
import orjson
from yarl import URL

from appliance.errors import ApplianceError, InvalidRequest, UpstreamError, UpstreamTimeout

P = ParamSpec("P")
R = TypeVar("R")

#: Longest upstream error message passed on to the client.
MAX_MESSAGE_CHARS = 500

JSON_HEADERS: Mapping[str, str] = {"Content-Type": "application/json"}


class TimeoutSettings(Protocol):
    """The timeout fields every provider's config has (``config._ProviderBase``)."""

    timeout_s: float
    connect_timeout_s: float
    first_byte_timeout_s: float | None
    idle_timeout_s: float | None


@dataclass(frozen=True)
class Upstream:
    """What every adapter needs to reach its provider: who it is and how long to wait.

    Four bounds, each its own failure: ``connect_timeout_s`` on opening the connection;
    ``first_byte_timeout_s`` on the wait for the response headers (and, for a stream, once
    more for its first event); ``idle_timeout_s`` on each later silence of a stream; and
    ``timeout_s`` on a whole plain call. A stream may run far longer than ``timeout_s`` in
    total as long as it keeps talking.
    """

    provider: str
    timeout_s: float
    connect_timeout_s: float
    #: Secret values scrubbed from any message we pass on (API keys, tokens).
    secrets: tuple[str, ...] = ()
    first_byte_timeout_s: float | None = None
    idle_timeout_s: float | None = None

    @classmethod
    def of(cls, provider: str, config: TimeoutSettings, secrets: tuple[str, ...] = ()) -> Upstream:
        return cls(
            provider,
            config.timeout_s,
            config.connect_timeout_s,
            secrets,
            config.first_byte_timeout_s,
            config.idle_timeout_s,
        )

    @property
    def first_byte_s(self) -> float:
        return self.first_byte_timeout_s or self.timeout_s

    @property
    def idle_s(self) -> float:
        return self.idle_timeout_s or self.timeout_s

    def timeout(self, *, stream: bool = False) -> aiohttp.ClientTimeout:
        """aiohttp's own bounds: the whole call for plain calls, only the connection for
        streams (their silences are bounded event by event, see :func:`guarded`)."""
        return self._stream_timeout if stream else self._call_timeout

    @functools.cached_property
    def _call_timeout(self) -> aiohttp.ClientTimeout:
        return aiohttp.ClientTimeout(total=self.timeout_s, connect=self.connect_timeout_s)

    @functools.cached_property
    def _stream_timeout(self) -> aiohttp.ClientTimeout:
        return aiohttp.ClientTimeout(total=None, connect=self.connect_timeout_s)

    def scrub(self, text: str) -> str:
        for s in self.secrets:
            if s:
                text = text.replace(s, "***")
        return text[:MAX_MESSAGE_CHARS]


def dumps(obj: Any) -> bytes:
    return orjson.dumps(obj)


def upstream_message(body: bytes) -> str:
    """Pull the human message out of any provider's error body (OpenAI, Anthropic, AWS, Google)."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body.decode("utf-8", "replace").strip()
    if isinstance(data, dict):
        err = data.get("error")
        if isinstance(err, dict) and isinstance(err.get("message"), str):
            return str(err["message"])
        if isinstance(err, str):
            return err
        for key in ("message", "Message", "detail"):
            value = data.get(key)
            if isinstance(value, str):
                return value
    return body.decode("utf-8", "replace").strip()


def status_error(
    up: Upstream, status: int, body: bytes, headers: Mapping[str, str] | None = None
) -> UpstreamError:
    """Map an upstream HTTP error status: 408/409/429/5xx are worth retrying, other 4xx
    not; the upstream's Retry-After travels with the error (the router honours it)."""
    message = up.scrub(upstream_message(body)) or f"HTTP {status}"
    retryable = status in (408, 409, 429) or status >= 500
    return UpstreamError(
        f"{up.provider} upstream returned HTTP {status}: {message}",
        upstream_status=status,
        retryable=retryable,
        retry_after_s=retry_after(headers) if headers is not None else None,
    )


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date), or from
    OpenAI's ``retry-after-ms``; None when absent or unreadable."""
    ms = headers.get("retry-after-ms")
    if ms is not None:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    value = headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - time.time())


def transport_error(up: Upstream, exc: BaseException) -> UpstreamError:
    """Translate aiohttp / asyncio failures into the appliance's error tree."""
    if isinstance(exc, asyncio.TimeoutError | aiohttp.ServerTimeoutError):
        return UpstreamTimeout(f"{up.provider} upstream timed out")
    if isinstance(exc, aiohttp.ClientPayloadError):
        return UpstreamError(f"{up.provider} upstream broke off the response", retryable=True)
    return UpstreamError(
        f"{up.provider} upstream unreachable: {type(exc).__name__}", retryable=True
    )


_TRANSPORT_ERRORS = (aiohttp.ClientError, asyncio.TimeoutError, OSError)


def as_url(url: str, *, encoded: bool = False) -> URL:
    return URL(url, encoded=encoded)


async def post_json(
    http: aiohttp.ClientSession,
    up: Upstream,
    url: str | URL,
    payload: bytes,
    headers: Mapping[str, str],
) -> Any:
    """POST a JSON body, return the decoded JSON answer, or raise a mapped error."""
    try:
        async with await _send(http, up, url, payload, headers, up.timeout()) as resp:
            body = await resp.read()
            if resp.status >= 400:
                raise status_error(up, resp.status, body, resp.headers)
    except ApplianceError:
        raise
    except _TRANSPORT_ERRORS as e:
        raise transport_error(up, e) from None
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        raise UpstreamError(f"{up.provider} upstream sent a body that is not JSON") from None


async def _send(
    http: aiohttp.ClientSession,
    up: Upstream,
    url: str | URL,
    payload: bytes,
    headers: Mapping[str, str],
    timeout: aiohttp.ClientTimeout,
) -> aiohttp.ClientResponse:
    """POST and wait for the response headers, at most ``first_byte_s`` (an upstream that
    accepted the connection and then stalls is given up on)."""
    if timeout.total is not None and timeout.total <= up.first_byte_s:
        # aiohttp's bound on the whole call ends the wait first (a plain call without a
        # shorter first-byte timeout): no second timer on the hot path.
        return await http.post(url, data=payload, headers=headers, timeout=timeout)
    try:
        async with asyncio.timeout(up.first_byte_s):
            return await http.post(url, data=payload, headers=headers, timeout=timeout)
    except TimeoutError:
        raise UpstreamTimeout(
            f"{up.provider} upstream sent no answer within {up.first_byte_s:g} s"
        ) from None


@asynccontextmanager
async def open_stream(
    http: aiohttp.ClientSession,
    up: Upstream,
    url: str | URL,
    payload: bytes,
    headers: Mapping[str, str],
) -> AsyncIterator[aiohttp.ClientResponse]:
    """POST and hand over the open response once its status is known good."""
    try:
        async with await _send(http, up, url, payload, headers, up.timeout(stream=True)) as resp:
            if resp.status >= 400:
                async with asyncio.timeout(up.idle_s):
                    body = await resp.read()
                raise status_error(up, resp.status, body, resp.headers)
            yield resp
    except ApplianceError:
        raise
    except _TRANSPORT_ERRORS as e:
        raise transport_error(up, e) from None


async def iter_sse(resp: aiohttp.ClientResponse) -> AsyncGenerator[tuple[str | None, str], None]:
    """Yield ``(event, data)`` for each Server-Sent Event as soon as its blank line arrives.

    Follows the SSE framing rules: ``data:`` lines of one event are joined with newlines,
    comment lines (``:``) are skipped, a single space after the colon is dropped, and CRLF
    and LF line ends are both accepted.
    """
    event: str | None = None
    data: list[str] = []
    pending = b""
    # Lines are cut here rather than by readline(): one event may be larger than
    # aiohttp's line limit (a big tool call arrives in a single Gemini event).
    # Splitting UTF-8 at b"\n" never cuts a character in two.
    async for received in resp.content.iter_any():
        lines = (pending + received).split(b"\n")
        pending = lines.pop()
        for raw in lines:
            line = raw.decode("utf-8", "replace").rstrip("\r")
            if not line:
                if data:
                    yield event, "\n".join(data)
                event, data = None, []
                continue
            if line.startswith(":"):
                continue
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "data":
                data.append(value)
            elif field == "event":
                event = value
    tail = pending.decode("utf-8", "replace").rstrip("\r")
    if tail.startswith("data:"):
        data.append(tail[5:].removeprefix(" "))
    if data:
        yield event, "\n".join(data)


async def guarded(up: Upstream, events: AsyncGenerator[Any, None]) -> AsyncIterator[Any]:
    """Re-raise transport failures that happen mid-stream as appliance errors, and bound
    each silence: the first event within ``first_byte_s``, every later one within
    ``idle_s`` of the one before (an upstream that stalls mid-stream is cut off)."""
    wait = up.first_byte_s
    try:
        while True:
            try:
                async with asyncio.timeout(wait):
                    item = await anext(events)
            except StopAsyncIteration:
                return
            except TimeoutError:
                raise UpstreamTimeout(
                    f"{up.provider} upstream went silent for {wait:g} s mid-stream"
                ) from None
            wait = up.idle_s
            yield item
    except ApplianceError:
        raise
    except _TRANSPORT_ERRORS as e:
        raise transport_error(up, e) from None
    finally:
        await events.aclose()


def loads_event(up: Upstream, data: str | bytes) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        raise UpstreamError(f"{up.provider} upstream sent a malformed stream event") from None


def rejects_malformed(fn: Callable[P, R]) -> Callable[P, R]:
    """A request translator that meets a shape it cannot read raises a 400, never a 500."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except ApplianceError:
            raise
        except (AttributeError, KeyError, TypeError, ValueError, IndexError):
            raise InvalidRequest(
                "the request does not have the expected shape and cannot be translated"
            ) from None

    return wrapper


def reads_upstream(fn: Callable[P, R]) -> Callable[P, R]:
    """A response translator that meets an unexpected upstream shape raises a 502."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except ApplianceError:
            raise
        except (AttributeError, KeyError, TypeError, ValueError, IndexError):
            raise UpstreamError("the upstream answer does not have the expected shape") from None

    return wrapper


def ended_early(up: Upstream) -> UpstreamError:
    """A stream that closed cleanly before its own end marker (``[DONE]``,
    ``message_stop``, ``response.completed``): truncated, never taken as a whole answer."""
    return UpstreamError(
        f"{up.provider} upstream ended the stream before its end", retryable=True
    )
