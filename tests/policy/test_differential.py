"""regorus (the hot-path VM) and regopy (the reference) decide the shipped policies alike.

Replayed on every input of the shipped Rego tests (under the test's own ``data``) and
on a generated table of inputs: every department, role set, model/provider/region,
PII mix, risk class, application, tenant and token size the policies tell apart, plus
malformed inputs. Both the VM alone (wherever it gives a value) and the engine's
combined evaluator (VM, regopy behind it) must equal regopy, value for value.
"""

from __future__ import annotations

import copy
import itertools
import random
from typing import Any

import pytest

from appliance.policy.decision import from_result
from appliance.policy.engine import _Loaded, compile_source
from appliance.policy.input import example_input
from appliance.policy.rego import UNDEFINED, CompiledPolicy, RegoEvalError
from appliance.policy import runner
from appliance.policy.rvm import RvmPolicy
from appliance.policy.source import PolicySource, load_source
from tests.policy.conftest import SHIPPED

ENTRYPOINT = "appliance/main/decision"

PRINCIPALS: list[dict[str, Any]] = [
    {"tenant": tenant, "department": dept, "roles": roles}
    for tenant, dept, roles in itertools.product(
        ["acme", "trial", "globex"],
        ["engineering", "interns", "contractors", None, "unlisted-dept"],
        [[], ["developer"], ["ai-admin"], ["developer", "ai-admin"], ["auditor"]],
    )
]
REQUESTS: list[dict[str, Any]] = [
    {"model": "gpt-4o-mini", "provider": "openai", "provider_kind": "openai", "provider_region": "us"},
    {"model": "gpt-4.1", "provider": "azure-openai", "provider_kind": "azure_openai", "provider_region": "westeurope"},
    {"model": "anthropic.claude-3-5:v2", "provider": "bedrock", "provider_kind": "bedrock", "provider_region": "us-east-1"},
    {"model": "local-llama", "provider": "local", "provider_kind": "local", "provider_region": "on-premises"},
    {"model": "local-llama", "provider": "openai", "provider_kind": "openai", "provider_region": "eu"},
    {"model": "gemini-1.5-pro", "provider": "vertex", "provider_kind": "vertex", "provider_region": "europe-west4"},
]
PII_TYPES: list[list[str]] = [[], ["PERSON"], ["HEALTH"], ["API_KEY", "PERSON"], ["EMAIL_ADDRESS", "RELIGION"], ["PASSWORD", "GENETIC"]]
RISKS: list[dict[str, Any]] = [
    {"class": "minimal", "areas": [], "declared_class": None, "safety_flags": []},
    {"class": "limited", "areas": [], "declared_class": None, "safety_flags": ["health"]},
    {"class": "high", "areas": ["employment"], "declared_class": None, "safety_flags": []},
    {"class": "high", "areas": ["annex3_1"], "declared_class": "high", "safety_flags": []},
    {"class": "high", "areas": ["employment"], "declared_class": "minimal", "safety_flags": []},
    {"class": "prohibited", "areas": ["social_scoring", "art5_1_g"], "declared_class": None, "safety_flags": []},
]
APPLICATIONS = [None, "hr-screening", "cv-screener"]
SIZES = [(100, None), (420, 100), (5000, 4000), (200_000, 20_000)]

#: Data variants beyond the shipped files: re-routing on, PII action overrides.
DATA_VARIANTS: list[dict[str, Any]] = [
    {},
    {"gdpr": {"reroute_model": "local-llama"}},
    {"pii": {"actions": {"provider_kinds": {"local": {"*": "allow"}}, "providers": {"openai": {"PERSON": "redact"}}}}},
]


ATTACKS: list[dict[str, Any] | None] = [
    None,
    {"scanned": True, "score": 0.95, "where": "request", "technique": "instruction_override",
     "scores": {"request": 0.95, "tool_result": 0.0, "retrieved": 0.0}},
    {"scanned": True, "score": 0.75, "where": "tool_result", "technique": "indirect_injection",
     "scores": {"request": 0.6, "tool_result": 0.75, "retrieved": 0.0}},
    {"scanned": True, "score": 0.6, "where": "request", "technique": "persona_jailbreak",
     "scores": {"request": 0.6, "tool_result": 0.0, "retrieved": 0.0}},
]


def _doc(principal: dict[str, Any], request: dict[str, Any], pii: list[str], risk: dict[str, Any],
         app: str | None, size: tuple[int, int | None],
         attack: dict[str, Any] | None = None) -> dict[str, Any]:
    doc = copy.deepcopy(example_input())
    if attack is not None:
        doc["prompt_attack"] = attack
    doc["principal"].update(principal)
    doc["request"].update(request, requested_model=request["model"], token_estimate=size[0], max_tokens=size[1])
    doc["pii"].update(types=pii, counts={t: 1 for t in pii})
    doc["risk"].update(risk)
    doc["application"] = {"id": app}
    return doc


def generated_inputs(n: int, seed: int = 5) -> list[dict[str, Any]]:
    """Every principal with every request, then seeded random mixes of the other parts."""
    rng = random.Random(seed)
    docs = [
        _doc(p, r, rng.choice(PII_TYPES), rng.choice(RISKS), rng.choice(APPLICATIONS), rng.choice(SIZES))
        for p, r in itertools.product(PRINCIPALS, REQUESTS)
    ]
    while len(docs) < n:
        docs.append(_doc(rng.choice(PRINCIPALS), rng.choice(REQUESTS), rng.choice(PII_TYPES),
                         rng.choice(RISKS), rng.choice(APPLICATIONS), rng.choice(SIZES),
                         rng.choice(ATTACKS)))
    return docs


def malformed_inputs() -> list[Any]:
    """Inputs a broken caller could send: missing parts, wrong types (regopy decides these)."""
    base = example_input()
    docs: list[Any] = [{}, {"principal": None}, {"request": []}]
    for part, key, value in [
        ("request", "model", 5),
        ("request", "provider", None),
        ("request", "provider_region", ["eu"]),
        ("request", "token_estimate", "many"),
        ("request", "max_tokens", True),
        ("principal", "roles", "ai-admin"),
        ("principal", "department", {"name": "x"}),
        ("pii", "types", "HEALTH"),
        ("risk", "areas", None),
        ("risk", "class", 3),
    ]:
        doc = copy.deepcopy(base)
        doc[part][key] = value
        docs.append(doc)
    doc = copy.deepcopy(base)
    del doc["pii"]
    docs.append(doc)
    return docs


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _engines(source: PolicySource, data: dict[str, Any]) -> tuple[CompiledPolicy, RvmPolicy, _Loaded]:
    reference = CompiledPolicy(source.modules, data, ENTRYPOINT)
    fast = RvmPolicy(source.modules, data, ENTRYPOINT)
    return reference, fast, _Loaded(source, reference, fast)


def _reference(reference: CompiledPolicy, doc: Any) -> Any:
    try:
        return reference.evaluate(doc)
    except (RegoEvalError, TypeError) as e:
        return f"error: {type(e).__name__}"


def _assert_same(reference: CompiledPolicy, fast: RvmPolicy, loaded: _Loaded, docs: list[Any]) -> int:
    """Compare on each input; returns how many the VM decided itself."""
    by_vm = 0
    for doc in docs:
        expected = _reference(reference, doc)
        try:
            got = fast.evaluate(doc)
        except (RegoEvalError, TypeError):
            got = UNDEFINED
        if got is not UNDEFINED:
            by_vm += 1
            assert got == expected, doc
        try:
            combined = loaded.evaluate(doc)
        except (RegoEvalError, TypeError) as e:
            combined = f"error: {type(e).__name__}"
        assert combined == expected, doc
    return by_vm


@pytest.fixture(scope="module")
def shipped() -> PolicySource:
    return load_source(SHIPPED)


def test_every_shipped_test_input_decided_alike(shipped: PolicySource) -> None:
    cases = runner.test_inputs(shipped)
    names = {c.name for c in cases}
    assert len(cases) >= 30 and "test_special_category_rerouted_to_local_model_when_configured" in names
    assert any(c.data_patched for c in cases)
    for case in cases:
        reference, fast, loaded = _engines(shipped, case.data)
        assert _assert_same(reference, fast, loaded, [case.input]) == 1, case.name


@pytest.mark.parametrize(("variant", "n"), [(0, 1000), (1, 500), (2, 500)])
def test_generated_table_decided_alike(shipped: PolicySource, variant: int, n: int) -> None:
    data = _merge(shipped.data, DATA_VARIANTS[variant])
    reference, fast, loaded = _engines(shipped, data)
    docs = generated_inputs(n, seed=variant)
    assert _assert_same(reference, fast, loaded, docs) == len(docs)
    outcomes = {(d["allow"], tuple(d["rules"])) for d in map(reference.evaluate, docs)}
    assert len(outcomes) > 20  # the table reaches many different decisions, not one


def test_malformed_inputs_allowed_or_denied_alike(shipped: PolicySource) -> None:
    """Broken inputs get the same allow/deny whichever engine decides; reasons may differ.

    rego-cpp fails on some (``model: 5`` makes it emit malformed JSON: a fail-closed
    deny) and drops rules OPA keeps (``"many" > 100000`` is true in OPA and in the VM,
    undefined in rego-cpp), so these are the one place the engines are not identical.
    """
    reference, _, loaded = _engines(shipped, shipped.data)
    outcomes = []
    for doc in malformed_inputs():
        expected = _reference(reference, doc)
        by_regopy = from_result(expected if isinstance(expected, dict) else UNDEFINED, "r")
        combined = from_result(loaded.evaluate(doc), "r")
        assert combined.allow is by_regopy.allow, doc
        outcomes.append(combined.allow)
    assert outcomes.count(False) >= 8 and True in outcomes


def test_shipped_revision_checks_out_for_the_vm(shipped: PolicySource) -> None:
    from appliance.policy.engine import compile_fast

    fast, note = compile_fast(shipped, ENTRYPOINT, compile_source(shipped, ENTRYPOINT))
    assert note is None and fast is not None
