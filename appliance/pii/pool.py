"""A pool of warm Presidio analyzer processes, driven straight from the event loop.

Analysis is CPU-bound Python (spaCy, regexes), so threads would serialize on the GIL:
the work runs in worker processes forked from one analyzer template
(:mod:`appliance.pii.worker`), which loads the models once for all of them. A request's
texts are cut into pieces (:mod:`appliance.pii.pieces`; a text under ``piece_chars`` is
one piece), pieces seen before are answered from the tenant's findings cache
(:mod:`appliance.pii.cache`), and the rest queue as jobs; a worker that frees up takes
the queued jobs at once, up to ``batch_chars`` characters and its share of the queue, so
one long prompt keeps every worker busy and many short ones share one spaCy ``pipe``.

Why not ``ProcessPoolExecutor``: its manager and feeder threads hand every call from
thread to thread, and each hand-over is a GIL switch that can cost up to the
interpreter's switch interval (5 ms) while another thread computes. Here the event loop
writes to an idle worker's socket and a reader callback on the same loop collects the
answer, frame by frame, without blocking: the socket is non-blocking (uvloop makes every
watched descriptor so), and a long answer arrives in several reads. (Reading it with
``Connection.recv_bytes`` in the callback, as this pool once did, broke under uvloop on
any answer larger than the socket buffer: a 49 KB prompt failed as if its worker had
died.)

Concurrent requests that carry the same text for the same tenant (a system prompt, a
tool's description: every request of a burst against a cold cache) share one job: the
text is analysed once and every caller gets the findings. Without this, a burst of 256
requests with one 8 KB system prompt queued 256 copies of it, and a request arriving
after the burst waited minutes behind them (the clients had long gone; their handlers
had not).

A worker call is limited to ``timeout_s`` plus ``timeout_per_char_us`` per character it
carries, counted in CPU time the worker spends on the batch (``/proc``), not in time on
the clock: a worker starved of CPU by a saturated machine is slow, not hung, and killing
it would only throw its work away and fail its requests. A worker that has used its
limit, or that does not run at all for ``_STALLED_S`` (blocked, stopped), is hung. Where
``/proc`` is not readable the limit counts on the clock. A call past its limit, or a
worker that dies, fails the requests in its batch (closed: they are not forwarded); the
worker is killed if need be, the log says why (the time limit and the batch's size, or
the exit code or signal, never text), and a new worker is forked from the template.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pickle
import signal
import socket
import subprocess
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from appliance.children import child_env, module_command
from appliance.errors import StageFailed
from appliance.pii.cache import FindingsCache
from appliance.config.pii import PiiConfig
from appliance.pii.findings import Finding
from appliance.pii.pieces import Piece, known_spans, merge, plan_text
from appliance.pii.worker import CONTROL_BYTES, HEADER, ONE_THREAD_ENV, READY

log = logging.getLogger(__name__)

#: How long a forked worker may take to warm up (open the German tagger's session).
_WARM_UP_S = 120.0
#: How long the template may take to answer a control message.
_CONTROL_S = 30.0
#: A worker on a batch that gets no CPU at all for this long is hung (blocked or stopped),
#: not starved: a runnable process gets some CPU within this even on a saturated machine.
_STALLED_S = 5.0
#: The shortest wait between two looks at a busy worker's CPU time.
_RECHECK_S = 0.001


def _cpu_seconds(pid: int) -> float | None:
    """CPU time process ``pid`` has run so far (None: ``/proc`` cannot tell, or it is gone)."""
    try:
        with open(f"/proc/{pid}/schedstat", "rb") as f:  # nanoseconds
            return int(f.read().split()[0]) / 1e9
    except (OSError, ValueError, IndexError):
        pass
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:  # clock ticks, after the command's ")"
            fields = f.read().rsplit(b")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


@dataclass(frozen=True)
class PoolStats:
    """What the pool did since it started (observable in tests and benchmarks)."""

    texts: int
    pieces: int
    pieces_analysed: int
    chars_analysed: int
    batches: int
    cache_hits: int
    cache_misses: int
    skipped_chars: int
    workers_replaced: int
    #: Workers swapped for a fresh fork after ``recycle_after_words`` new words.
    workers_recycled: int
    #: Worker processes that analysed at least one batch.
    workers_used: int


class _Template:
    """The analyzer template process and its control socket (blocking calls: run them
    in a thread; one request at a time)."""

    def __init__(self, config_json: str) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        env = child_env({**os.environ, **ONE_THREAD_ENV})
        self.process = subprocess.Popen(
            module_command("appliance.pii.worker", str(theirs.fileno())),
            pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, env=env,
        )
        theirs.close()
        self._ctl = ours
        self._lock = threading.Lock()
        self._ctl.send(config_json.encode())
        self.revision = ""

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def wait_ready(self) -> str:
        """Block until the analyzer is loaded; its revision."""
        msg = self._ctl.recv(CONTROL_BYTES)
        if not msg:
            raise RuntimeError("PII analyzer template exited "
                               f"({_describe_returncode(self.process.wait())})")
        reply = pickle.loads(msg)
        if reply[0] != "ready":
            raise RuntimeError(f"PII analyzer template could not load: {reply[1]}")
        self.revision = str(reply[1])
        return self.revision

    def _request(self, command: tuple[Any, ...], fds: Sequence[int] = ()) -> tuple[Any, ...]:
        with self._lock:
            self._ctl.settimeout(_CONTROL_S)
            socket.send_fds(self._ctl, [pickle.dumps(command)], list(fds))
            msg = self._ctl.recv(CONTROL_BYTES)
        if not msg:
            raise EOFError("PII analyzer template exited")
        return tuple(pickle.loads(msg))

    def fork(self) -> tuple[int, socket.socket]:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            reply = self._request(("fork",), [theirs.fileno()])
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        if reply[0] != "forked":
            ours.close()
            raise RuntimeError(f"PII analyzer template did not fork: {reply[1]}")
        return int(reply[1]), ours

    def kill(self, pid: int) -> int | None:
        """Kill worker ``pid`` (if it still runs) and collect its wait status."""
        status: int | None = self._request(("kill", pid))[2]
        return status

    def reap(self, pid: int, wait_s: float = 2.0) -> int | None:
        """The wait status of worker ``pid``, which is exiting (None: unknown)."""
        status: int | None = self._request(("reap", pid, wait_s))[2]
        return status

    def close(self) -> None:
        """End of file on the control socket: the template kills its workers and exits."""
        with contextlib.suppress(OSError):
            self._ctl.close()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)


def _describe(status: int | None, killed_here: bool = False) -> str:
    """A wait status in words (``killed_here``: the pool sent the signal itself)."""
    if status is None:
        return "exit status unknown"
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
        if killed_here:
            return f"killed (signal {name})"
        hint = " (the kernel's out-of-memory killer sends it too)" if sig == signal.SIGKILL else ""
        return f"killed by signal {name}{hint}"
    if os.WIFEXITED(status):
        return f"exit code {os.WEXITSTATUS(status)}"
    return f"wait status {status}"


def _describe_returncode(rc: int | None) -> str:
    """A ``Popen.returncode`` in words (negative: the signal that ended the process)."""
    if rc is None:
        return "exit status unknown"
    if rc < 0:
        sig = -rc
        name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
        return f"killed by signal {name}"
    return f"exit code {rc}"


class _Worker:
    """One forked analyzer process and the socket to it; at most one call in flight."""

    def __init__(self, pid: int, sock: socket.socket) -> None:
        self.pid = pid
        self.sock = sock
        self.sock.setblocking(False)
        self._buffer = bytearray()
        self._frames: deque[bytes] = deque()
        self._waiter: asyncio.Future[bytes] | None = None
        self._reading: asyncio.AbstractEventLoop | None = None  # the loop watching the socket
        self.dead = False
        #: A fresh fork is being made to take this worker's place.
        self.renewing = False
        #: Its replacement is ready: the worker leaves once its batch (if any) is done.
        self.retired = False

    def _watch(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._reading is not loop:
            self._stop_reading()
            loop.add_reader(self.sock.fileno(), self._on_readable)
            self._reading = loop

    def _on_readable(self) -> None:
        """Take what the socket holds; hand complete frames to the waiting call."""
        eof = False
        while True:
            try:
                chunk = self.sock.recv(1 << 20)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                eof = True
                break
            if not chunk:
                eof = True
                break
            self._buffer += chunk
        while len(self._buffer) >= HEADER.size:
            (size,) = HEADER.unpack_from(self._buffer)
            if len(self._buffer) < HEADER.size + size:
                break
            self._frames.append(bytes(self._buffer[HEADER.size:HEADER.size + size]))
            del self._buffer[:HEADER.size + size]
        fut = self._waiter
        if fut is not None and not fut.done() and self._frames:
            self._waiter = None
            fut.set_result(self._frames.popleft())
        if eof:
            self.dead = True
            self._stop_reading()
            fut, self._waiter = self._waiter, None
            if fut is not None and not fut.done():
                fut.set_exception(EOFError("PII worker exited"))

    def _stop_reading(self) -> None:
        loop, self._reading = self._reading, None
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(Exception):
                loop.remove_reader(self.sock.fileno())

    async def receive(self) -> bytes:
        if self._frames:
            return self._frames.popleft()
        if self.dead:
            raise EOFError("PII worker exited")
        loop = asyncio.get_running_loop()
        self._watch(loop)
        fut: asyncio.Future[bytes] = loop.create_future()
        self._waiter = fut
        try:
            return await fut
        finally:
            if self._waiter is fut:
                self._waiter = None

    async def call(self, payload: bytes) -> bytes:
        """Send one frame and await the answer."""
        loop = asyncio.get_running_loop()
        self._watch(loop)
        self._frames.clear()  # a late answer to an abandoned call is no answer to this one
        await loop.sock_sendall(self.sock, HEADER.pack(len(payload)) + payload)
        return await self.receive()

    def close(self) -> None:
        self._stop_reading()
        with contextlib.suppress(OSError):
            self.sock.close()


@dataclass(eq=False)
class _Job:
    """One piece of text to analyse, waiting for (or riding in) a batch; one future per
    caller waiting for it (callers with the same text share the job)."""

    text: str
    language: str
    futures: list[asyncio.Future[list[Finding]]]
    #: The cache key of the piece (None: not shared, not cached).
    key: bytes | None = None
    size: int = field(init=False)

    def __post_init__(self) -> None:
        self.size = len(self.text)

    @property
    def abandoned(self) -> bool:
        """Every caller gave up (cancelled, or another piece of its request failed)."""
        return all(fut.done() for fut in self.futures)

    def settle(self, result: list[Finding] | None, error: BaseException | None) -> None:
        """Resolve each caller's future on its own loop (the pool serves several loops)."""
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        for fut in self.futures:
            loop = fut.get_loop()
            if loop is running:
                _resolve(fut, result, error)
            elif not loop.is_closed():
                loop.call_soon_threadsafe(_resolve, fut, result, error)


def _resolve(fut: asyncio.Future[list[Finding]], result: list[Finding] | None,
             error: BaseException | None) -> None:
    if fut.done():  # the caller gave up (cancelled, or another piece failed) meanwhile
        return
    if error is not None:
        fut.set_exception(error)
    else:
        fut.set_result(result or [])


@dataclass
class _Text:
    """One text of a call: its pieces, and per piece cached findings or a pending job;
    or, for a whole text seen before, its findings (``done``)."""

    pieces: list[Piece]
    #: Per piece its cached findings, or the caller's future for them.
    parts: list[tuple[Finding, ...] | asyncio.Future[list[Finding]]]
    keys: list[bytes | None]
    #: The cache key of the whole text (None: not cached whole).
    whole: bytes | None = None
    done: tuple[Finding, ...] | None = None


class AnalyzerPool:
    """``await start()`` once, ``await analyze(texts, languages)`` per request, ``aclose()``.

    Requests that arrive while every worker is busy wait in one queue; a worker that
    frees up takes queued pieces at once (up to ``batch_chars`` characters and an even
    share of the queue), so spaCy tags them in one ``pipe`` call. Under load that cuts
    its cost per text by two thirds (a batch of 32 short prompts costs 0.63 ms CPU each
    in spaCy, one alone 1.96 ms); an idle pool still answers a lone request at once.
    """

    def __init__(self, config: PiiConfig) -> None:
        self._config = config
        self._config_json = config.model_dump_json()
        self._started = False
        self._template: _Template | None = None
        self._template_lock = threading.Lock()
        self._all: set[_Worker] = set()
        # Not asyncio queues: those bind to one event loop, and tests (and CLI commands)
        # start the pool once and use it from several loops.
        self._idle: deque[_Worker] = deque()
        self._jobs: deque[_Job] = deque()
        #: Jobs queued or in a batch, by cache key: a caller with the same piece joins one.
        self._inflight: dict[bytes, _Job] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._cache = FindingsCache(config.cache_entries_per_tenant, config.cache_tenants)
        self._counts = {"texts": 0, "pieces": 0, "pieces_analysed": 0, "chars_analysed": 0,
                        "batches": 0, "skipped_chars": 0, "workers_replaced": 0,
                        "workers_recycled": 0}
        self._used: set[int] = set()

    @property
    def workers(self) -> int:
        return self._config.workers or os.cpu_count() or 1

    @property
    def revision(self) -> str:
        """The analyzer's revision (see :mod:`appliance.pii.revision`); "" before start."""
        return self._template.revision if self._template else ""

    def pids(self) -> list[int]:
        return sorted(w.pid for w in self._all)

    def template_pid(self) -> int | None:
        return self._template.process.pid if self._template else None

    def stats(self) -> PoolStats:
        c = self._counts
        return PoolStats(texts=c["texts"], pieces=c["pieces"],
                         pieces_analysed=c["pieces_analysed"], chars_analysed=c["chars_analysed"],
                         batches=c["batches"], cache_hits=self._cache.stats.hits,
                         cache_misses=self._cache.stats.misses, skipped_chars=c["skipped_chars"],
                         workers_replaced=c["workers_replaced"],
                         workers_recycled=c["workers_recycled"], workers_used=len(self._used))

    # -- processes ---------------------------------------------------------------------

    def _ready_template(self) -> _Template:
        """The running template, started (and loaded) first if there is none (blocking)."""
        with self._template_lock:
            template = self._template
            if template is None or not template.alive:
                if template is not None:
                    log.error("PII analyzer template exited (%s); starting a new one",
                              _describe_returncode(template.process.returncode))
                    template.close()
                template = _Template(self._config_json)
                try:
                    template.wait_ready()
                except BaseException:
                    template.close()
                    raise
                self._template = template
            return template

    def _fork(self) -> tuple[int, socket.socket]:
        try:
            return self._ready_template().fork()
        except (OSError, EOFError):  # the template died since: one fresh start
            return self._ready_template().fork()

    async def _spawn(self) -> _Worker:
        pid, sock = await asyncio.to_thread(self._fork)
        worker = _Worker(pid, sock)
        self._all.add(worker)
        try:
            if await asyncio.wait_for(worker.receive(), _WARM_UP_S) != READY:
                raise RuntimeError("PII worker did not start")
        except BaseException:
            self._all.discard(worker)
            worker.close()
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self._kill, pid)
            raise
        return worker

    def _kill(self, pid: int) -> int | None:
        template = self._template
        return template.kill(pid) if template is not None and template.alive else None

    async def start(self) -> None:
        """Start the template and every worker now (models load once, in the template)."""
        if self._started:
            return
        await asyncio.to_thread(self._ready_template)
        self._idle.extend(await asyncio.gather(*(self._spawn() for _ in range(self.workers))))
        self._started = True

    # -- analysis ----------------------------------------------------------------------

    async def analyze(
        self,
        texts: Sequence[str],
        languages: Sequence[str],
        *,
        tenant: str | None = None,
        detect_pieces: bool = False,
        known: frozenset[bytes] = frozenset(),
    ) -> list[list[Finding]]:
        """Findings per text, as one analysis of each whole text would report them.

        ``tenant``: cache findings for this tenant (None: no cache). ``detect_pieces``:
        the languages were detected, not configured, so each piece of a long text gets
        its own (a German contract quoted in an English e-mail is read as German).
        ``known``: digests of paragraphs already screened
        (:func:`appliance.pii.pieces.known_digests`), which are not analysed again.
        """
        if not any(t.strip() for t in texts):
            return [[] for _ in texts]
        if not self._started:
            raise StageFailed("PII analyzer pool is not started")
        loop = asyncio.get_running_loop()
        plans: list[_Text | None] = []
        waits: list[asyncio.Future[list[Finding]]] = []
        fresh: list[_Job] = []
        for text, language in zip(texts, languages, strict=True):
            if not text.strip():
                plans.append(None)
                continue
            plans.append(self._plan(text, language, tenant, detect_pieces, known, loop,
                                    waits, fresh))
        self._counts["texts"] += len(texts)
        if fresh:
            self._jobs.extend(fresh)
            self._dispatch()
        if waits:
            try:
                await asyncio.gather(*waits)
            except BaseException:
                for fut in waits:  # a queued piece nobody waits for is not analysed
                    if not fut.done():
                        fut.cancel()
                raise
        out: list[list[Finding]] = []
        for plan in plans:
            if plan is None:
                out.append([])
                continue
            if plan.done is not None:
                out.append(list(plan.done))
                continue
            found: list[tuple[Finding, ...]] = []
            for part, key in zip(plan.parts, plan.keys, strict=True):
                if isinstance(part, asyncio.Future):
                    result = tuple(part.result())
                    if key is not None and tenant is not None:
                        self._cache.put(tenant, key, result)
                    found.append(result)
                else:
                    found.append(part)
            merged = merge(plan.pieces, found)
            if plan.whole is not None and tenant is not None:
                self._cache.put(tenant, plan.whole, tuple(merged))
            out.append(merged)
        return out

    def _plan(self, text: str, language: str, tenant: str | None, detect_pieces: bool,
              known: frozenset[bytes], loop: asyncio.AbstractEventLoop,
              waits: list[asyncio.Future[list[Finding]]], fresh: list[_Job]) -> _Text:
        cfg = self._config
        skip = known_spans(text, known)
        self._counts["skipped_chars"] += sum(e - s for s, e in skip)
        whole = None
        if tenant is not None and self._cache.enabled and not skip:
            # A text seen whole before (a system prompt, a tool's description) is one
            # digest and one look-up: no planning, no language runs, no pieces.
            how = f"{language}/{'runs' if detect_pieces else 'fixed'}/whole"
            whole = FindingsCache.key(tenant, self.revision, how, text)
            hit = self._cache.get(tenant, whole)
            if hit is not None:
                return _Text([], [], [], done=hit)
        planned = plan_text(text, language, cfg, detect=detect_pieces, skip=skip)
        pieces = [piece for piece, _ in planned]
        plan = _Text(pieces, [], [], whole=whole)
        for piece, lang in planned:
            window = text[piece.start:piece.end]
            key = None
            if tenant is not None and self._cache.enabled:
                key = FindingsCache.key(tenant, self.revision, lang, window)
                hit = self._cache.get(tenant, key)
                if hit is not None:
                    plan.parts.append(hit)
                    plan.keys.append(None)
                    continue
            fut: asyncio.Future[list[Finding]] = loop.create_future()
            waits.append(fut)
            job = self._inflight.get(key) if key is not None else None
            if job is not None and not job.abandoned:
                job.futures.append(fut)  # the same piece is queued or in a batch: join it
            else:
                job = _Job(window, lang, [fut], key)
                fresh.append(job)
                if key is not None:
                    self._inflight[key] = job
            plan.parts.append(fut)
            plan.keys.append(key)
        self._counts["pieces"] += len(pieces)
        return plan

    def _dispatch(self) -> None:
        """Hand queued jobs to idle workers, each its share of the queue."""
        while self._idle and self._jobs:
            batch = self._take_batch()
            if not batch:
                return
            # The worker that finished last: its caches are still warm (at low load one
            # worker then serves every request instead of each in turn).
            worker = self._idle.pop()
            if worker.dead:  # died while idle: replace it, try the next
                self._jobs.extendleft(reversed(batch))
                self._retire(worker, "exited while idle")
                continue
            task = asyncio.get_running_loop().create_task(self._run(worker, batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _take_batch(self) -> list[_Job]:
        """The jobs at the head of the queue, up to ``batch_chars`` characters and an even
        share of what is queued (so that a long prompt's pieces go to every worker)."""
        queued = sum(job.size for job in self._jobs if not job.abandoned)
        limit = min(self._config.batch_chars, max(1, -(-queued // self.workers)))
        batch: list[_Job] = []
        size = 0
        while self._jobs:
            job = self._jobs[0]
            if job.abandoned:  # every caller gave up while it was queued
                self._forget(self._jobs.popleft())
                continue
            if batch and size + job.size > limit:
                break
            batch.append(self._jobs.popleft())
            size += job.size
        return batch

    def _forget(self, job: _Job) -> None:
        """The job is settled or dropped: a later caller with its piece starts a new one."""
        if job.key is not None and self._inflight.get(job.key) is job:
            del self._inflight[job.key]

    def time_limit(self, chars: int) -> float:
        """Seconds of CPU a worker call carrying ``chars`` characters may take."""
        return self._config.timeout_s + chars * self._config.timeout_per_char_us / 1e6

    @staticmethod
    async def _call_within(worker: _Worker, payload: bytes, limit: float) -> bytes:
        """The worker's answer; TimeoutError once it has spent ``limit`` seconds of CPU
        on the call, or has not run for ``_STALLED_S`` (on the clock where ``/proc``
        cannot tell CPU time)."""
        loop = asyncio.get_running_loop()
        call = asyncio.ensure_future(worker.call(payload))
        started = _cpu_seconds(worker.pid)
        ran, ran_at = started, loop.time()
        wait = limit if started is None else min(limit, _STALLED_S)
        try:
            while True:
                done, _ = await asyncio.wait({call}, timeout=wait)
                if done:
                    return call.result()
                now = _cpu_seconds(worker.pid)
                if started is None or now is None or now - started >= limit:
                    raise TimeoutError
                if ran is not None and now > ran:
                    ran, ran_at = now, loop.time()
                elif loop.time() - ran_at >= _STALLED_S:
                    raise TimeoutError(f"did not run for {_STALLED_S:.0f} s")
                wait = min(max(limit - (now - started), _RECHECK_S), _STALLED_S)
        finally:
            if not call.done():  # the task must not run on once the worker is retired
                call.cancel()
                await asyncio.wait({call})
            if not call.cancelled():
                call.exception()  # seen: its error, if any, was the worker's end

    async def _run(self, worker: _Worker, batch: list[_Job]) -> None:
        payload = pickle.dumps([(job.text, job.language) for job in batch],
                               protocol=pickle.HIGHEST_PROTOCOL)
        chars = sum(job.size for job in batch)
        limit = self.time_limit(chars)
        what = f"a batch of {len(batch)} text{'s' if len(batch) != 1 else ''}, {chars} characters"
        healthy = False
        spent = False
        overran = False
        reason = ""
        error: BaseException | None = None
        replies: list[list[Finding]] = []
        try:
            data = await self._call_within(worker, payload, limit)
            healthy = True
            status, value, *more = pickle.loads(data)
            if status == "ok":
                spent = bool(more and more[0])
                replies = [[Finding(*t) for t in per_text] for per_text in value]
                self._used.add(worker.pid)
                self._counts["pieces_analysed"] += len(batch)
                self._counts["chars_analysed"] += chars
            else:
                log.error("PII analysis failed in analyzer worker %d: %s (%s); the worker stays",
                          worker.pid, value, what)
                error = StageFailed("PII analysis failed")
        except TimeoutError as e:
            reason = f"{str(e) or f'timed out after {limit:.1f} s of CPU'} on {what}"
            overran = True
            error = StageFailed("PII analysis timed out")
        except (EOFError, OSError):
            reason = f"died while analysing {what}"
            error = StageFailed("PII analysis failed")
        except asyncio.CancelledError:
            reason = f"was interrupted while analysing {what}"
            error = StageFailed("PII analysis was interrupted")
            raise
        finally:
            self._counts["batches"] += 1
            for k, job in enumerate(batch):
                self._forget(job)
                job.settle(replies[k] if error is None else None, error)
            if healthy and worker.retired:
                self._dismiss(worker)
            elif healthy:
                self._return(worker)
                if spent:
                    self._renew(worker)
            else:
                self._retire(worker, reason, overran)
            if self._started:
                self._dispatch()

    def _return(self, worker: _Worker) -> None:
        if self._started:
            self._idle.append(worker)
        else:
            worker.close()

    def _retire(self, worker: _Worker, reason: str, overran: bool = False) -> None:
        """Take a dead or overrunning worker out, say why, and fork a replacement."""
        self._all.discard(worker)
        worker.close()
        if not self._started:
            return
        if worker.retired:  # recycled: its replacement already serves, so fork none
            log.warning("PII analyzer worker %d %s after it was recycled", worker.pid, reason)
            self._dismiss(worker)
            return
        task = asyncio.get_running_loop().create_task(self._replace(worker.pid, reason, overran))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _replace(self, pid: int, reason: str, overran: bool) -> None:
        try:
            status = await asyncio.to_thread(self._kill, pid)
        except Exception as e:  # noqa: BLE001 - the status is only for the log
            status = None
            log.debug("no exit status for PII worker %d: %s", pid, type(e).__name__)
        log.warning("PII analyzer worker %d %s: %s; replacing it", pid, reason,
                    _describe(status, killed_here=overran))
        self._counts["workers_replaced"] += 1
        try:
            worker = await self._spawn()
        except Exception as e:  # noqa: BLE001 - the pool runs on with fewer workers
            log.error("PII analyzer worker could not be replaced: %s", type(e).__name__)
            return
        if self._started:
            self._idle.append(worker)
            self._dispatch()
        else:
            worker.close()

    def _renew(self, worker: _Worker) -> None:
        """Fork a fresh worker to take ``worker``'s place; ``worker`` serves until it is ready."""
        if worker.renewing or not self._started:
            return
        worker.renewing = True
        task = asyncio.get_running_loop().create_task(self._swap(worker))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _swap(self, old: _Worker) -> None:
        try:
            new = await self._spawn()
        except Exception as e:  # noqa: BLE001 - the old worker serves on; its next batch asks again
            log.error("PII analyzer worker %d could not be recycled: %s", old.pid, type(e).__name__)
            old.renewing = False
            return
        if not self._started or old not in self._all:
            # Closed meanwhile, or the old worker died or hung and was replaced meanwhile.
            self._dismiss(new)
            return
        self._counts["workers_recycled"] += 1
        log.info("PII analyzer worker %d recycled after %d new words; worker %d takes over",
                 old.pid, self._config.recycle_after_words, new.pid)
        old.retired = True
        if old in self._idle:
            self._idle.remove(old)
            self._dismiss(old)
        self._idle.append(new)
        self._dispatch()

    def _dismiss(self, worker: _Worker) -> None:
        """Let a worker go that is not replaced: close its socket, and have the template
        end and collect it (it holds no state, so it is killed rather than waited for)."""
        self._all.discard(worker)
        worker.close()
        task = asyncio.get_running_loop().create_task(asyncio.to_thread(self._kill_quietly, worker.pid))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _kill_quietly(self, pid: int) -> None:
        with contextlib.suppress(Exception):  # a template that is gone took its workers along
            self._kill(pid)

    async def aclose(self) -> None:
        if not self._started:
            return
        self._started = False
        self._idle.clear()
        error = StageFailed("PII analyzer pool is closed")
        while self._jobs:
            self._jobs.popleft().settle(None, error)
        self._inflight.clear()
        workers, self._all = list(self._all), set()
        for worker in workers:
            worker.close()  # end of file: the worker returns
        template, self._template = self._template, None
        if template is not None:
            await asyncio.to_thread(template.close)
