"""A thin, fast wrapper over regopy (Microsoft rego-cpp), the embedded Rego engine.

Two uses: a :class:`CompiledPolicy` is built once per policy revision (modules + data
compiled into a bundle with one entrypoint) and then evaluated per request; a
:class:`RegoSession` answers ad-hoc queries (tests, coverage probes, ``GET /v1/data``).

Why not regopy's own ``Input``/``Output`` helpers: building the input document through
them costs ~100 µs for our input (one wrapped ctypes call per node), and ``Output``
crashes on some error results; calling the C API directly halves the input cost and
lets errors surface as exceptions. Neither object is thread-safe: one owner at a time.
"""

from __future__ import annotations

import ctypes
import re
from typing import Any

import orjson
from regopy import Interpreter, LogLevel, RegoError
from regopy import rego_shared as _c

_lib = _c.rego
_STR = _lib.regoInputString
_INT = _lib.regoInputInt
_FLOAT = _lib.regoInputFloat
_BOOL = _lib.regoInputBoolean
_NULL = _lib.regoInputNull
_ITEM = _lib.regoInputObjectItem
_OBJ = _lib.regoInputObject
_ARR = _lib.regoInputArray
_lib.regoSetInput.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
_ERRMSG = re.compile(r"\(errormsg \d+:([^)]*)\)")


class RegoEvalError(Exception):
    """The engine failed to evaluate (a broken rule, a runtime error)."""


class Undefined:
    """Marker for an undefined result (distinct from ``null`` and ``false``)."""

    def __repr__(self) -> str:
        return "undefined"


UNDEFINED = Undefined()


def _push(p: int, v: Any) -> None:
    t = type(v)
    if t is str:
        _STR(p, v.encode())
    elif t is dict:
        for k, x in v.items():
            _STR(p, str(k).encode())
            _push(p, x)
            _ITEM(p)
        _OBJ(p, len(v))
    elif t is list or t is tuple:
        for x in v:
            _push(p, x)
        _ARR(p, len(v))
    elif t is bool:
        _BOOL(p, v)
    elif t is int:
        _INT(p, v)
    elif t is float:
        _FLOAT(p, v)
    elif v is None:
        _NULL(p)
    else:
        raise TypeError(f"cannot pass {t.__name__} to Rego")


def _set_input(interp: Interpreter, value: Any) -> None:
    p = _c.rego_new_input()
    try:
        _push(p, value)
        _lib.regoSetInput(interp._impl, p)
    finally:
        _lib.regoFreeInput(p)


def _read_output(impl: int) -> Any:
    """Decode a rego-cpp output handle (and free it): the value, or UNDEFINED."""
    try:
        ok = _c.rego_output_ok(impl)
        text = _c.rego_output_string(impl) if ok else ""
    finally:
        _c.rego_free_output(impl)
    if not ok:
        raise RegoEvalError("evaluation failed")
    if text == "undefined":
        return UNDEFINED
    if text.startswith(("(error", "<error")):
        msgs = _ERRMSG.findall(text)
        raise RegoEvalError("; ".join(msgs) or "evaluation error")
    try:
        out = orjson.loads(text)
    except orjson.JSONDecodeError:  # rego-cpp does not escape some strings it builds
        raise RegoEvalError("the engine returned malformed JSON") from None
    if isinstance(out, list):  # several results (a query with alternatives): take the first
        out = out[0] if out else {}
    exprs = out.get("expressions") or []
    if not exprs:
        return UNDEFINED
    return exprs[-1] if len(exprs) > 1 else exprs[0]


def error_text(e: RegoError, sources: dict[str, str] | None = None) -> str:
    """A readable text from a RegoError: ``file:line:col: message; ...``.

    rego-cpp reports byte offsets; with the module ``sources`` they become line:col.
    """
    raw = str(e)
    found = re.findall(r"\(error \d+:([^|\s]*)\|(\d+)\|\d+\s*\(errormsg \d+:([^)]*)\)", raw)
    if not found:
        return raw.strip().splitlines()[0] if raw.strip() else "Rego error"
    parts = []
    for file, off, msg in found:
        text = (sources or {}).get(file)
        if text is None:
            parts.append(f"{file} (offset {off}): {msg}")
            continue
        head = text.encode()[: int(off)].decode("utf-8", "replace")
        line = head.count("\n") + 1
        col = len(head) - (head.rfind("\n") + 1) + 1
        parts.append(f"{file}:{line}:{col}: {msg}")
    return "; ".join(parts)


def new_interpreter(modules: dict[str, str], data: dict[str, Any]) -> Interpreter:
    """An interpreter loaded with ``modules`` and ``data``; raises RegoError on syntax errors."""
    interp = Interpreter()
    interp.log_level = LogLevel.NONE
    interp.add_data_json(orjson.dumps(data).decode())
    for name, text in modules.items():
        interp.add_module(name, text)
    return interp


class CompiledPolicy:
    """Modules and data compiled once into a bundle; evaluates one entrypoint per call."""

    def __init__(self, modules: dict[str, str], data: dict[str, Any], entrypoint: str) -> None:
        self.entrypoint = entrypoint
        self._interp = new_interpreter(modules, data)
        self._bundle = self._interp.build(None, [entrypoint])
        if not self._bundle.ok():
            raise RegoEvalError("bundle build failed")
        self._ep = entrypoint.encode()

    def evaluate(self, input_doc: dict[str, Any]) -> Any:
        """Evaluate the entrypoint for ``input_doc``: the value, or UNDEFINED."""
        _set_input(self._interp, input_doc)
        impl = _lib.regoBundleQueryEntrypoint(self._interp._impl, self._bundle._impl, self._ep)
        if not impl:
            raise RegoEvalError("evaluation failed")
        return _read_output(impl)


class RegoSession:
    """Ad-hoc queries over modules and data (no bundle: any expression may be asked)."""

    def __init__(self, modules: dict[str, str], data: dict[str, Any]) -> None:
        self._interp = new_interpreter(modules, data)

    def query(self, query: str, input_doc: Any = None) -> Any:
        _set_input(self._interp, {} if input_doc is None else input_doc)
        try:
            impl = _c.rego_query(self._interp._impl, query)
        except RegoError as e:
            raise RegoEvalError(error_text(e)) from None
        return _read_output(impl)


class BundleSession:
    """Many named rules compiled once into one bundle, each evaluated per input.

    rego-cpp recompiles every module on each ad-hoc query (~0.1 s for our policies);
    compiling the rules a caller needs as bundle entrypoints makes each call microseconds.
    """

    def __init__(self, modules: dict[str, str], data: dict[str, Any], entrypoints: list[str]) -> None:
        self._interp = new_interpreter(modules, data)
        self._bundle = self._interp.build(None, entrypoints)
        if not self._bundle.ok():
            raise RegoEvalError("bundle build failed")

    def evaluate(self, entrypoint: str, input_doc: Any = None) -> Any:
        _set_input(self._interp, {} if input_doc is None else input_doc)
        impl = _lib.regoBundleQueryEntrypoint(
            self._interp._impl, self._bundle._impl, entrypoint.encode()
        )
        if not impl:
            raise RegoEvalError("evaluation failed")
        return _read_output(impl)

