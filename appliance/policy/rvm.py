"""The hot-path evaluator: the decision rule compiled to a regorus RVM program.

Why a second engine: rego-cpp (regopy) spends ~90 µs taking in the input document and
~10 µs per rule, ~0.7 ms per decision of the shipped policies. Microsoft's regorus (Rust,
``celine-regorus`` wheels) compiles the same modules into a register-VM program that
decides in tens of microseconds. regopy stays the reference engine: it runs
``policy test``, coverage, ``with`` and ad-hoc queries, checks every revision before it
loads, and decides whenever this evaluator cannot (see ``engine._Loaded.evaluate``).

pyo3 marks regorus' ``Program`` and ``Rvm`` *unsendable*: each may only be used and
dropped on the thread that made it. So a compiled program travels between threads as
bytes, and each thread deserialises its own VM on first use (~0.3 ms) into a small
per-thread cache whose entries are replaced, and therefore dropped, on that same thread.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

import orjson
from regorus.regorus import Program, Rvm

from appliance.policy.rego import UNDEFINED, RegoEvalError

#: What ``execute_entry_point`` answers for an undefined result.
_UNDEFINED_JSON = '"<undefined>"'
#: Serialise the input as regopy's converter would take it: non-string keys as text, and
#: types it refuses (datetimes, dataclasses, str/int/dict subclasses) refused here too.
_INPUT_OPTIONS = (
    orjson.OPT_NON_STR_KEYS
    | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_SUBCLASS
)
#: VMs kept per thread: the live revision plus a few others (tests, a policy server).
_VMS_PER_THREAD = 4

#: Per-thread VMs. Module state on purpose: a thread's VMs must outlive any one policy
#: object and be dropped on that thread, which a per-object ``threading.local`` cannot
#: promise (it is cleared on whichever thread drops the object).
_THREAD_VMS = threading.local()


def _is_panic(error: BaseException) -> bool:
    """pyo3 turns a Rust panic into ``PanicException``, a BaseException: never let it escape."""
    return type(error).__name__ == "PanicException"


def engine_message(error: BaseException) -> str:
    """regorus' error text without the Rust backtrace that ``RUST_BACKTRACE`` appends."""
    text = str(error).split("Stack backtrace:", 1)[0].split("Caused by:", 1)[0]
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return " ".join(lines) or type(error).__name__


def _engine_error(error: BaseException) -> RegoEvalError | None:
    """Engine errors and Rust panics as :class:`RegoEvalError`; None for anything else."""
    if isinstance(error, RuntimeError):
        return RegoEvalError(engine_message(error))
    if _is_panic(error):
        return RegoEvalError(f"regorus failed: {engine_message(error)}")
    return None


class RvmPolicy:
    """Modules and data compiled once into an RVM program for one entrypoint.

    :meth:`evaluate` has :class:`~appliance.policy.rego.CompiledPolicy`'s contract: the
    entrypoint's value, or ``UNDEFINED``; ``RegoEvalError`` when evaluation fails. Unlike
    the regorus interpreter, the VM treats a builtin's type error as undefined, as OPA does.
    """

    def __init__(self, modules: dict[str, str], data: dict[str, Any], entrypoint: str) -> None:
        self.rule = "data." + entrypoint.replace("/", ".")
        self._data_json = orjson.dumps(data).decode()
        try:
            program = Program.compile_from_modules(self._data_json, list(modules.items()), [self.rule])
            self._binary = program.serialize_binary()
        except BaseException as e:
            if (err := _engine_error(e)) is None:
                raise
            raise err from None

    def _vm(self) -> Rvm:
        vms: OrderedDict[RvmPolicy, Rvm] | None = getattr(_THREAD_VMS, "vms", None)
        if vms is None:
            vms = OrderedDict()
            _THREAD_VMS.vms = vms
        vm = vms.get(self)
        if vm is not None:
            vms.move_to_end(self)
            return vm
        program, _ = Program.deserialize_binary(self._binary)
        vm = Rvm()
        vm.load_program(program)
        vm.set_data_json(self._data_json)
        vms[self] = vm
        while len(vms) > _VMS_PER_THREAD:
            vms.popitem(last=False)
        return vm

    def evaluate(self, input_doc: Any) -> Any:
        """The entrypoint's value for ``input_doc``, or UNDEFINED; TypeError for non-JSON input."""
        text = orjson.dumps(input_doc, option=_INPUT_OPTIONS).decode()
        try:
            vm = self._vm()
            vm.set_input_json(text)
            out = vm.execute_entry_point(self.rule)
        except BaseException as e:
            if (err := _engine_error(e)) is None:
                raise
            raise err from None
        if out == _UNDEFINED_JSON:
            return UNDEFINED
        return orjson.loads(out)
