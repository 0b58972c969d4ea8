"""Policy engines: embedded (in-process, hot-reloaded) and remote (an OPA server).

Both answer ``await engine.decide(input) -> Decision`` and never raise for a request:
any failure to decide becomes a deny with a reason (fail closed). The embedded engine
compiles every revision with regopy (the reference) and, by default, also into a regorus
VM program that decides the hot path (see :mod:`appliance.policy.rvm`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from regopy import RegoError

from appliance.config import secret
from appliance.config.policy import PolicyConfig
from appliance.policy.decision import Decision, deny, from_result
from appliance.policy.input import example_input
from appliance.policy.rego import UNDEFINED, CompiledPolicy, RegoEvalError, error_text
from appliance.policy.rego_source import with_keyword_line
from appliance.policy.runner import test_inputs
from appliance.policy.rvm import RvmPolicy
from appliance.policy.source import PolicyLoadError, PolicySource, load_source, signature

log = logging.getLogger(__name__)


class PolicyEngine(Protocol):
    @property
    def revision(self) -> str: ...

    async def start(self) -> None: ...

    async def aclose(self) -> None: ...

    async def decide(self, input_doc: dict[str, Any]) -> Decision: ...


def entrypoint_path(config: PolicyConfig) -> str:
    """``appliance.main`` + ``decision`` -> ``appliance/main/decision`` (bundle and REST form)."""
    return f"{config.package.replace('.', '/')}/{config.entrypoint}"


def compile_source(source: PolicySource, entrypoint: str) -> CompiledPolicy:
    """Compile and smoke-test a policy set; raises PolicyLoadError saying what is wrong.

    rego-cpp reports syntax errors at load but some mistakes (an unknown rule name) only
    at evaluation, so the set must also decide the documented example input.
    """
    for name, text in source.modules.items():
        line = with_keyword_line(text)
        if line is not None:
            raise PolicyLoadError(
                f"{name}:{line}: `with` is only supported in *_test.rego files by the embedded engine"
            )
    try:
        compiled = CompiledPolicy(source.modules, source.data, entrypoint)
    except RegoError as e:
        raise PolicyLoadError(f"policy does not compile: {error_text(e, source.modules)}") from None
    except RegoEvalError as e:
        raise PolicyLoadError(f"policy does not compile: {e}") from None
    try:
        result = compiled.evaluate(example_input())
    except RegoEvalError as e:
        raise PolicyLoadError(f"policy fails on the example input: {e}") from None
    if not isinstance(result, dict) or not isinstance(result.get("allow"), bool):
        raise PolicyLoadError(
            f"entrypoint {entrypoint} gives no {{allow: bool, ...}} object for the example input"
        )
    return compiled


#: compile_fast's verdicts by (revision, entrypoint). A revision is a content hash of every
#: policy file, so the same key always compiles and probes alike; remembering the verdict
#: spares the probe (~0.1-1 s) when a process loads one revision many times (tests, a
#: policy server next to the appliance, a reload that reverts an edit).
_PROBED: OrderedDict[tuple[str, str], str | None] = OrderedDict()
_PROBED_MAX = 64


def compile_fast(
    source: PolicySource, entrypoint: str, reference: CompiledPolicy
) -> tuple[RvmPolicy | None, str | None]:
    """The revision as a regorus VM program, if it decides exactly as ``reference`` does.

    Checked on the documented example input and on every input of the revision's own
    tests (those that leave ``data`` alone). Returns ``(None, why)`` when regorus cannot
    compile the set or disagrees on any of them: regopy then decides alone.
    """
    try:
        fast = RvmPolicy(source.modules, source.data, entrypoint)
    except RegoEvalError as e:
        return None, f"regorus cannot compile this policy set, regopy decides: {e}"
    key = (source.revision, entrypoint)
    if key not in _PROBED:
        _PROBED[key] = _probe(source, fast, reference)
        while len(_PROBED) > _PROBED_MAX:
            _PROBED.popitem(last=False)
    note = _PROBED[key]
    return (None, note) if note is not None else (fast, None)


def _probe(source: PolicySource, fast: RvmPolicy, reference: CompiledPolicy) -> str | None:
    """Why ``fast`` may not decide (a disagreement with ``reference``), or None."""
    probes = [("the example input", example_input())]
    probes += [(f"the input of {t.name}", t.input) for t in test_inputs(source) if not t.data_patched]
    for name, doc in probes:
        try:
            expected = reference.evaluate(doc)
        except (RegoEvalError, TypeError):
            continue
        try:
            got = fast.evaluate(doc)
        except (RegoEvalError, TypeError):
            got = UNDEFINED
        if got is not UNDEFINED and got != expected:
            return f"regorus and regopy disagree on {name}, regopy decides"
    return None


class _Loaded:
    """One policy revision, compiled: swapped as a whole, never mutated."""

    __slots__ = ("compiled", "fast", "source")

    def __init__(self, source: PolicySource, compiled: CompiledPolicy, fast: RvmPolicy | None) -> None:
        self.source = source
        self.compiled = compiled
        self.fast = fast

    def evaluate(self, input_doc: dict[str, Any]) -> Any:
        """The entrypoint's value: from the VM when it has one, else from regopy.

        The VM answers the normal case; its values were checked equal to regopy's on the
        revision's example and test inputs when it loaded. Whatever it cannot answer (an
        error, an undefined result, an input it cannot serialise) goes to regopy, the
        engine the tests ran on. On malformed inputs the two may still give different
        reasons for the same deny (tests/policy/test_differential.py lists them).
        """
        if self.fast is not None:
            try:
                value = self.fast.evaluate(input_doc)
            except (RegoEvalError, TypeError):
                value = UNDEFINED
            if value is not UNDEFINED:
                return value
        return self.compiled.evaluate(input_doc)


class EmbeddedEngine:
    """Rego evaluated in-process; reloads when the policy directory changes.

    A background task (owned here, started by :meth:`start`) polls file mtimes every
    ``reload_interval_s``. A new revision is read and compiled off the event loop and
    swapped in with one assignment, so a decision sees either the old or the new set,
    never a mix. A broken edit keeps the last good set and is kept in ``last_error``.
    """

    def __init__(self, config: PolicyConfig, root: Path | None = None) -> None:
        self._config = config
        self._root = root if root is not None else config.directory
        self._entrypoint = entrypoint_path(config)
        self._loaded: _Loaded | None = None
        self._signature: tuple[tuple[str, int, int], ...] = ()
        self._task: asyncio.Task[None] | None = None
        #: Why the active revision is decided by regopy alone although regorus is configured.
        self.evaluator_note: str | None = None
        #: One worker thread: the only user of the interpreter, so no lock is needed.
        self._executor: ThreadPoolExecutor | None = None
        #: Why the latest change was rejected (None once a change loads cleanly).
        self.last_error: str | None = None

    @property
    def revision(self) -> str:
        return self._loaded.source.revision if self._loaded else ""

    @property
    def source(self) -> PolicySource | None:
        return self._loaded.source if self._loaded else None

    @property
    def evaluator(self) -> str:
        """Which engine decides the active revision: "regorus" (VM, regopy behind it) or "regopy"."""
        return "regorus" if self._loaded is not None and self._loaded.fast is not None else "regopy"

    def load(self) -> None:
        """Load and compile now (blocking); raises PolicyLoadError and keeps the old set."""
        sig = signature(self._root)
        self.activate(load_source(self._root))
        self._signature = sig

    def activate(self, source: PolicySource) -> None:
        """Compile ``source`` and swap it in (blocking); raises PolicyLoadError, keeps the old set."""
        compiled = compile_source(source, self._entrypoint)
        fast, note = None, None
        if self._config.evaluator == "regorus":
            fast, note = compile_fast(source, self._entrypoint, compiled)
            if note is not None:
                log.warning("policy revision %s: %s", source.revision, note)
        self._loaded = _Loaded(source, compiled, fast)
        self.last_error = None
        self.evaluator_note = note

    def reload_if_changed(self) -> bool:
        """Reload when files changed; True when a new revision is now active (blocking)."""
        sig = signature(self._root)
        if sig == self._signature:
            return False
        try:
            self.load()
        except PolicyLoadError as e:
            self._signature = sig  # do not recompile the same broken files every tick
            self.last_error = e.message
            log.warning("policy reload rejected, keeping revision %s: %s", self.revision, e.message)
            return False
        log.info("policy revision %s loaded from %s", self.revision, self._root)
        return True

    async def start(self) -> None:
        await asyncio.to_thread(self.load)
        log.info("policy revision %s loaded from %s", self.revision, self._root)
        self._task = asyncio.create_task(self._watch(), name="policy-reload")
        if self._config.offload:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="policy-eval")

    async def aclose(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self._config.reload_interval_s)
            try:
                await asyncio.to_thread(self.reload_if_changed)
            except Exception:  # a reload must never kill the watcher; the old set stays
                log.exception("policy reload failed, keeping revision %s", self.revision)

    def status(self) -> dict[str, Any]:
        """For health and admin endpoints: which revision decides, and why an edit was refused."""
        return {
            "engine": "embedded",
            "dir": str(self._root),
            "revision": self.revision,
            "evaluator": self.evaluator,
            "evaluator_note": self.evaluator_note,
            "last_error": self.last_error,
        }

    def decide_sync(self, input_doc: dict[str, Any]) -> Decision:
        loaded = self._loaded
        if loaded is None:
            return deny("no policy loaded (fail closed)")
        try:
            result = loaded.evaluate(input_doc)
        except (RegoEvalError, TypeError) as e:
            log.error("policy evaluation failed (revision %s): %s", loaded.source.revision, e)
            return deny("policy evaluation failed (fail closed)", loaded.source.revision)
        return from_result(result, loaded.source.revision)

    def evaluate_raw(self, input_doc: dict[str, Any]) -> Any:
        """The entrypoint's raw value (UNDEFINED possible); for the REST server."""
        if self._loaded is None:
            raise PolicyLoadError("no policy loaded")
        return self._loaded.evaluate(input_doc)

    async def decide(self, input_doc: dict[str, Any]) -> Decision:
        """Decide on the worker thread (``offload``) or inline; see benchmarks/policy_eval.py."""
        if self._executor is None:
            return self.decide_sync(input_doc)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self.decide_sync, input_doc)


class OpaEngine:
    """Decisions from an OPA server (any server speaking OPA's REST API).

    Unreachable, slow (over ``opa_timeout_s``) or erroring means deny: fail closed.
    """

    def __init__(self, config: PolicyConfig) -> None:
        self._config = config
        url = urlsplit(config.opa_url)
        self._host = url.hostname or "127.0.0.1"
        self._port = url.port or (443 if url.scheme == "https" else 8181)
        self._ssl = url.scheme == "https"
        self._client: Any = None

    @property
    def revision(self) -> str:
        return f"opa:{self._config.opa_url}"

    def status(self) -> dict[str, Any]:
        return {"engine": "opa", "url": self._config.opa_url, "revision": self.revision, "last_error": None}

    async def start(self) -> None:
        from opa_client.opa_async import AsyncOpaClient

        client = AsyncOpaClient(
            host=self._host,
            port=self._port,
            ssl=self._ssl,
            token=secret(self._config.opa_token_env),
            retries=0,
            timeout=self._config.opa_timeout_s,
        )
        await client._init_session()
        self._client = client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close_connection()
            self._client = None

    async def decide(self, input_doc: dict[str, Any]) -> Decision:
        if self._client is None:
            return deny("policy server not started (fail closed)", self.revision)
        started = time.perf_counter()
        try:
            answer = await asyncio.wait_for(
                self._client.query_rule(
                    input_doc, self._config.package, self._config.entrypoint
                ),
                timeout=self._config.opa_timeout_s,
            )
        except Exception as e:  # noqa: BLE001 - any transport/HTTP error: deny, say why
            log.warning(
                "OPA at %s failed after %.0f ms: %s",
                self._config.opa_url,
                (time.perf_counter() - started) * 1000,
                type(e).__name__,
            )
            return deny(
                f"policy server unreachable or failing ({type(e).__name__}): denied (fail closed)",
                self.revision,
                "appliance.opa_unavailable",
            )
        result = answer.get("result") if isinstance(answer, dict) else None
        return from_result(result, self.revision)


def make_engine(config: PolicyConfig, data_dir: Path | None = None) -> EmbeddedEngine | OpaEngine:
    """The engine the config names; ``bundle_url`` makes it a polled, signed bundle."""
    if config.engine == "opa":
        return OpaEngine(config)
    if config.bundle_url is not None and config.bundle_public_key_file is not None:
        from appliance.policy.bundle_engine import BundleEngine

        key = config.bundle_public_key_file
        if not key.is_absolute() and data_dir is not None:
            key = data_dir / key
        try:
            public = key.read_bytes()
        except OSError as e:
            raise PolicyLoadError(f"bundle public key {key}: {e.strerror}") from None
        return BundleEngine(config, public)
    return EmbeddedEngine(config)
