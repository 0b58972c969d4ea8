"""The embedded engine with the regorus VM deciding: reload, fail closed, fallbacks, threads."""

from __future__ import annotations

import asyncio
import copy
import threading
from pathlib import Path
from typing import Any

import pytest

from appliance.config.policy import PolicyConfig
from appliance.policy.engine import EmbeddedEngine
from appliance.policy.input import example_input
from appliance.policy.rego import UNDEFINED
from appliance.policy.rvm import RvmPolicy
from tests.policy.test_engine import _touch_later, _wait_for


def _intern() -> dict[str, Any]:
    doc = copy.deepcopy(example_input())
    doc["principal"]["department"] = "interns"
    return doc


def test_vm_decides_the_shipped_policies(policy_config: PolicyConfig) -> None:
    engine = EmbeddedEngine(policy_config)
    engine.load()
    assert engine.evaluator == "regorus" and engine.status()["evaluator"] == "regorus"
    assert engine.decide_sync(example_input()).allow
    d = engine.decide_sync(_intern())
    assert not d.allow and "access_model" in d.rules


def test_regopy_only_when_configured(policy_config: PolicyConfig) -> None:
    engine = EmbeddedEngine(policy_config.model_copy(update={"evaluator": "regopy"}))
    engine.load()
    assert engine.evaluator == "regopy" and engine.evaluator_note is None
    assert engine.decide_sync(example_input()).allow


async def test_data_edit_reaches_the_vm_and_bad_edit_keeps_it(policy_config: PolicyConfig) -> None:
    engine = EmbeddedEngine(policy_config)
    await engine.start()
    try:
        assert not (await engine.decide(_intern())).allow
        first = engine.revision
        access = policy_config.directory / "data" / "access.yaml"
        _touch_later(access, access.read_text().replace('models: ["local-*"]', 'models: ["*"]', 1)
                     .replace('providers: ["local"]', 'providers: ["*"]', 1))
        await _wait_for(lambda: engine.revision != first)
        assert engine.evaluator == "regorus"
        assert (await engine.decide(_intern())).allow
        second = engine.revision
        bad = policy_config.directory / "access.rego"
        _touch_later(bad, bad.read_text() + "\ngranted(x if {\n")
        await _wait_for(lambda: engine.last_error is not None)
        assert engine.revision == second and engine.evaluator == "regorus"
        assert (await engine.decide(_intern())).allow
    finally:
        await engine.aclose()


def test_policy_the_vm_cannot_compile_is_decided_by_regopy(policy_config: PolicyConfig) -> None:
    """crypto.sha256 exists in rego-cpp, not in regorus' VM: regopy decides, status says why."""
    extra = policy_config.directory / "fingerprint.rego"
    extra.write_text(
        "package appliance.main\n\nimport rego.v1\n\n"
        'obligation_extras contains ["fingerprint", {"tenant_hash": crypto.sha256(input.principal.tenant)}] if {\n'
        "\tis_string(input.principal.tenant)\n}\n"
    )
    engine = EmbeddedEngine(policy_config)
    engine.load()
    assert engine.evaluator == "regopy"
    assert "cannot compile" in (engine.evaluator_note or "")
    d = engine.decide_sync(example_input())
    assert d.allow and len(d.obligations["tenant_hash"]) == 64


def test_policy_the_engines_disagree_on_is_decided_by_regopy(policy_config: PolicyConfig) -> None:
    """rego-cpp 1.5.2 ignores format_int's base ("10"); OPA and regorus say "1010"."""
    extra = policy_config.directory / "binary.rego"
    extra.write_text(
        "package appliance.main\n\nimport rego.v1\n\n"
        'obligation_extras contains ["binary", {"ten_in_binary": format_int(10, 2)}] if {\n'
        "\tinput.request.model\n}\n"
    )
    engine = EmbeddedEngine(policy_config)
    engine.load()
    assert engine.evaluator == "regopy"
    assert "disagree on the example input" in (engine.evaluator_note or "")
    assert engine.decide_sync(example_input()).obligations["ten_in_binary"] == "10"


def test_no_policy_loaded_denies(policy_config: PolicyConfig) -> None:
    engine = EmbeddedEngine(policy_config)
    d = engine.decide_sync(example_input())
    assert not d.allow and d.rules == ("appliance.fail_closed",)


def test_one_compiled_program_evaluates_on_many_threads(policy_dir: Path) -> None:
    """regorus' VM objects are bound to their thread: each thread gets its own copy."""
    from appliance.policy.source import load_source

    source = load_source(policy_dir)
    policy = RvmPolicy(source.modules, source.data, "appliance/main/decision")
    results: list[Any] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for doc in (example_input(), _intern(), {}):
                results.append(policy.evaluate(doc))
        except BaseException as e:  # noqa: BLE001 - a pyo3 panic is a BaseException
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(results) == 12 and UNDEFINED not in results
    assert [r["allow"] for r in results[:3]] == [True, False, False]
    assert all(r == results[i % 3] for i, r in enumerate(results))


async def test_offloaded_and_inline_vm_decisions_agree(policy_config: PolicyConfig) -> None:
    engine = EmbeddedEngine(policy_config.model_copy(update={"offload": True}))
    await engine.start()
    try:
        docs = [example_input(), _intern(), {}]
        offloaded = await asyncio.gather(*(engine.decide(d) for d in docs))
        in_thread = await asyncio.to_thread(lambda: [engine.decide_sync(d) for d in docs])
        inline = [engine.decide_sync(d) for d in docs]
        assert offloaded == in_thread == inline
        assert [d.allow for d in inline] == [True, False, False]
    finally:
        await engine.aclose()


@pytest.mark.parametrize("bad", [object(), {"k": {1, 2}}])
def test_input_the_vm_cannot_take_fails_closed(policy_config: PolicyConfig, bad: Any) -> None:
    engine = EmbeddedEngine(policy_config)
    engine.load()
    doc = example_input()
    doc["request"]["tools"] = [bad]
    d = engine.decide_sync(doc)
    assert not d.allow and d.rules == ("appliance.fail_closed",)
