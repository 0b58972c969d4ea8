"""The analyzer processes: one template that loads the analyzer, and workers forked from it.

``python -m appliance.pii.worker FD`` is the *template*: a fresh interpreter (started by
:class:`appliance.pii.pool.AnalyzerPool`, never forked from the server, whose event
loop and threads must not be copied) that builds the Presidio analyzer once (spaCy,
word lists, the German tagger's vocabulary: about 300 MB), warms it up, freezes the
garbage collector's view of it, and then forks a worker whenever the pool asks. A
worker shares every page it does not write with the template and its siblings, so two
workers cost little more than one, and a worker that died is replaced in milliseconds
instead of the seconds a fresh load takes.

Forking is only safe in a process with one thread. Importing ONNX Runtime starts one,
so the German tagger opens its session in each worker after the fork
(:class:`appliance.pii.de.recognizer.GermanTagger`), and the template refuses to fork
if it finds a second thread. PyTorch, transformers and the other machine-learning
frameworks that spaCy's and Presidio's optional integrations import when installed are
kept out (about 370 MB per process); the analyzer uses none of them.

Control messages (template <-> pool, a ``SOCK_SEQPACKET`` pair, one pickle each):
``("fork",)`` with the worker's socket attached -> ``("forked", pid)``;
``("kill", pid)`` / ``("reap", pid)`` -> ``("exited", pid, wait status or None)``.
The template is the workers' parent, so only it can collect their exit status, and a
pid it has not collected cannot be reused: the pool kills workers through it.

Worker messages (a ``SOCK_STREAM`` pair, 8-byte length + pickle): the worker sends
``b"ready"`` once warm, then answers each list of ``(text, language)`` with
``("ok", [[finding tuple, ...], ...], spent)`` or ``("error", exception type name)``
(never a text or a value). ``spent``: the worker has read ``recycle_after_words`` new
words and asks to be replaced by a fresh fork (see :class:`appliance.config.pii.PiiConfig`).
"""

from __future__ import annotations

import gc
import logging
import os
import pickle
import signal
import socket
import struct
import sys
import time
from typing import Any

from appliance.core.logline import setup_logging

log = logging.getLogger("appliance.pii.worker")

READY = b"ready"
HEADER = struct.Struct("!Q")
#: Largest control message (a configuration, a command): far above what they need.
CONTROL_BYTES = 1 << 16
#: Optional integrations of spaCy (thinc), Presidio and transformers that import these
#: frameworks if they are installed; the analyzer calls none of them.
HEAVY_MODULES = ("torch", "transformers", "tensorflow", "jax", "cupy", "mxnet")
#: Environment for the template: BLAS on one thread from its first import.
ONE_THREAD_ENV = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
#: Exit code of a worker that stopped on an unexpected error (its type is logged).
EXIT_ERROR = 70


def send_frame(sock: socket.socket, data: bytes) -> None:
    sock.sendall(HEADER.pack(len(data)))
    sock.sendall(data)


def recv_frame(sock: socket.socket) -> bytes | None:
    """The next frame, or None at end of file (the pool closed the pipe)."""
    head = _recv_exact(sock, HEADER.size)
    if head is None:
        return None
    (size,) = HEADER.unpack(head)
    body = _recv_exact(sock, size)
    if body is None:
        raise EOFError("the pipe closed inside a frame")
    return body


def _recv_exact(sock: socket.socket, size: int) -> bytes | None:
    buf = bytearray(size)
    view = memoryview(buf)
    got = 0
    while got < size:
        n = sock.recv_into(view[got:])
        if n == 0:
            if got == 0:
                return None
            raise EOFError("the pipe closed inside a frame")
        got += n
    return bytes(buf)


def thread_count() -> int:
    """Threads of this process (the kernel's count: native threads included)."""
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:  # not Linux: Python's own count is the best there is
        import threading

        return threading.active_count()


class Template:
    """The loaded analyzer and the workers forked from it."""

    def __init__(self, config_json: str) -> None:
        from appliance.config.pii import PiiConfig
        from appliance.pii.engine import analyze_texts, build_analyzer
        from appliance.pii.revision import analyzer_revision
        from appliance.pii.special.detector import build_special_detector

        config = PiiConfig.model_validate_json(config_json)
        self.languages = tuple(config.languages)
        self.ignore = frozenset(config.ignore_entities)
        self.recycle_words = config.recycle_after_words
        self.analyzer = build_analyzer(config)
        self.special = build_special_detector(config)
        # Loads what the first analysis loads lazily, so that the workers share it. German
        # is left to the workers: its tagger session cannot cross a fork.
        if "en" in self.languages:
            analyze_texts(self.analyzer, ["Warm up, John Smith, 1 Main Street."], ["en"],
                          special=self.special)
        self.revision = analyzer_revision(config, _model_files(config))
        self.children: set[int] = set()
        #: The control socket's descriptor, closed in each worker right after the fork.
        self.control_fd = -1
        gc.collect()
        gc.freeze()  # the collector never writes to these objects' pages again

    def fork(self, fd: int) -> tuple[Any, ...]:
        threads = thread_count()
        if threads != 1:
            os.close(fd)
            log.error("PII analyzer template has %d threads; refusing to fork a worker", threads)
            return ("error", f"template has {threads} threads")
        pid = os.fork()
        if pid == 0:  # the worker
            code = EXIT_ERROR
            try:
                if self.control_fd >= 0:
                    os.close(self.control_fd)
                code = self._serve(socket.socket(fileno=fd))
            except (BrokenPipeError, ConnectionResetError):
                code = 0  # the pool closed the socket first: it is shutting down
            except BaseException as e:  # noqa: BLE001 - logged by type, then the process ends
                log.error("PII analyzer worker %d stopped: %s", os.getpid(), type(e).__name__)
            finally:
                logging.shutdown()
                os._exit(code)
        os.close(fd)
        self.children.add(pid)
        return ("forked", pid)

    def _serve(self, sock: socket.socket) -> int:
        from appliance.pii.engine import analyze_texts

        if "de" in self.languages:
            analyze_texts(self.analyzer, ["Warm up, Herr Müller."], ["de"])
        words_at_start = self._words_added()
        send_frame(sock, READY)
        while True:
            data = recv_frame(sock)
            if data is None:
                return 0
            jobs: list[tuple[str, str]] = pickle.loads(data)
            try:
                found = analyze_texts(self.analyzer, [t for t, _ in jobs], [lang for _, lang in jobs],
                                      self.ignore, resolve=False, special=self.special)
                spent = bool(self.recycle_words) and (
                    self._words_added() - words_at_start >= self.recycle_words)
                reply: tuple[Any, ...] = ("ok", [
                    [(f.entity_type, f.start, f.end, f.score, f.recognizer, f.person)
                     for f in per_text]
                    for per_text in found], spent)
            except Exception as e:  # noqa: BLE001 - reported to the pool by type only (no content)
                reply = ("error", type(e).__name__)
            send_frame(sock, pickle.dumps(reply, protocol=pickle.HIGHEST_PROTOCOL))

    def _words_added(self) -> int:
        """Words spaCy has ever added to this process's vocabularies (the count never goes
        down: a memory zone frees a word, its hash slot stays marked until the table grows)."""
        pipelines = self.analyzer.nlp_engine.nlp  # type: ignore[attr-defined]
        return sum(nlp.vocab.length for nlp in pipelines.values())

    def reap(self, pid: int, wait_s: float) -> int | None:
        """The wait status of ``pid`` once it has exited (None: still running, or unknown)."""
        deadline = time.monotonic() + wait_s
        while True:
            try:
                done, status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                self.children.discard(pid)
                return None
            if done:
                self.children.discard(pid)
                return status
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.005)

    def kill(self, pid: int) -> int | None:
        if pid not in self.children:
            return None
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        return self.reap(pid, 10.0)

    def close(self) -> None:
        for pid in list(self.children):
            self.kill(pid)


def _model_files(config: Any) -> list[Any]:
    """The German tagger's files, as the analyzer loaded them."""
    if "de" not in config.languages:
        return []
    from appliance.pii.de.build import default_model_dir
    from appliance.pii.de.train import META_FILE, MODEL_FILE

    model_dir = default_model_dir()
    return [model_dir / META_FILE, model_dir / MODEL_FILE]


def _block_heavy_imports() -> None:
    for name in HEAVY_MODULES:
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]  # "import torch" fails


def main(argv: list[str] | None = None) -> int:
    """Template main: read the configuration, load, then serve control messages until EOF."""
    args = sys.argv[1:] if argv is None else argv
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the server shuts its pool down itself
    setup_logging(logging.WARNING)
    _block_heavy_imports()
    ctl = socket.socket(fileno=int(args[0]))
    config_json = ctl.recv(CONTROL_BYTES).decode()
    try:
        template = Template(config_json)
    except Exception as e:  # noqa: BLE001 - the pool reports the type; the traceback goes to the log
        log.exception("PII analyzer template could not load")
        ctl.send(pickle.dumps(("error", type(e).__name__)))
        return 1
    template.control_fd = ctl.fileno()
    ctl.send(pickle.dumps(("ready", template.revision)))
    try:
        while True:
            try:
                msg, fds, _, _ = socket.recv_fds(ctl, CONTROL_BYTES, 1)
            except ConnectionResetError:
                break
            if not msg:
                break  # the pool is gone
            command: tuple[Any, ...] = pickle.loads(msg)
            if command[0] == "fork" and fds:
                reply = template.fork(fds[0])
            elif command[0] == "kill":
                reply = ("exited", command[1], template.kill(command[1]))
            elif command[0] == "reap":
                reply = ("exited", command[1], template.reap(command[1], float(command[2])))
            else:
                for fd in fds:
                    os.close(fd)
                reply = ("error", "unknown command")
            ctl.send(pickle.dumps(reply))
    finally:
        template.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
