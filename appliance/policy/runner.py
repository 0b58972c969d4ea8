"""``policy test``: run the Rego unit tests and measure which rules they exercise.

No ``opa`` binary exists here, and rego-cpp's ``with`` keyword breaks as soon as a
policy rule refers to another rule, so the runner applies ``with`` itself. Tests are
ordinary OPA tests (they pass unchanged under ``opa test``) in one common form:

    test_x if {
        inp := object.union(fixture, {...})       # build the input (no `with` yet)
        d := main.decision with input as inp      # evaluate under it
        not d.allow                               # check
    }

Every ``with`` in one test must name the same ``input`` term (and the same ``data``
overrides). The runner evaluates that term, then evaluates the test body, ``with``
clauses removed, with the term's value as the input (and the data overrides applied to
a fresh interpreter).

Rule coverage: every rule definition outside the test files (one per body; functions are
not measured) is copied into a probe ``__cov contains "<id>" if { <its body> }`` in its
package. Under each test's input the probe says which bodies succeed: a rule is
*exercised* when its body holds for at least one test input; a ``default`` rule when,
for some test input, no other definition of its name holds (the default value decided);
a rule without a body when its value is defined. rego-cpp gives no trace, so there is
no line coverage.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from regopy import RegoError

from appliance.policy.rego import UNDEFINED, BundleSession, RegoEvalError, error_text
from appliance.policy.rego_source import (
    Module,
    RuleDef,
    parse_module,
    split_expressions,
    with_keyword_line,
)
from appliance.policy.source import PolicySource, load_source


@dataclass(frozen=True)
class TestCase:
    file: str
    package: str
    name: str
    input_term: str | None
    data_overrides: tuple[tuple[str, str], ...]
    error: str | None = None


@dataclass(frozen=True)
class TestResult:
    case: TestCase
    passed: bool
    message: str = ""


@dataclass
class Report:
    results: list[TestResult] = field(default_factory=list)
    measured: list[RuleDef] = field(default_factory=list)
    covered: set[str] = field(default_factory=set)
    unmeasured: list[RuleDef] = field(default_factory=list)

    @property
    def passed(self) -> int:
        return sum(r.passed for r in self.results)

    @property
    def failed(self) -> int:
        return len(self.results) - self.passed

    @property
    def coverage_pct(self) -> float:
        return 100.0 * len(self.covered) / len(self.measured) if self.measured else 100.0

    @property
    def uncovered(self) -> list[RuleDef]:
        return [r for r in self.measured if r.rule_id not in self.covered]


def _test_case(module: Module, rule: RuleDef) -> tuple[TestCase, str]:
    """The case and the generated Rego (input/data term rules and the stripped body)."""
    case, terms, body = _test_parts(module, rule)
    return case, "\n\n".join([*terms, body])


def _test_parts(module: Module, rule: RuleDef) -> tuple[TestCase, list[str], str]:
    """The case, the rules giving its input/data terms, and the rule of its stripped body."""
    exprs = split_expressions(rule.body or "")
    input_terms = {t for e in exprs for tgt, t in e.withs if tgt == "input"}
    data_over = sorted({(tgt, t) for e in exprs for tgt, t in e.withs if tgt.startswith("data.")})
    other = sorted({tgt for e in exprs for tgt, _ in e.withs if tgt != "input" and not tgt.startswith("data.")})
    name = rule.name
    error = None
    if len(input_terms) > 1:
        error = "uses more than one `with input as` term (split it into several tests)"
    elif other:
        error = f"`with {other[0]}` is not supported by this runner"
    first = next((i for i, e in enumerate(exprs) if e.withs), len(exprs))
    pre = "\n\t".join(e.text for e in exprs[:first])
    gen: list[str] = []
    input_term = next(iter(input_terms)) if input_terms else None
    if input_term is not None:
        gen.append(f"__input_{name} := {input_term} if {{\n\t{pre or 'true'}\n}}")
    for i, (_, term) in enumerate(data_over):
        gen.append(f"__data_{i}_{name} := {term} if {{\n\t{pre or 'true'}\n}}")
    body = "\n\t".join(e.text for e in exprs) or "true"
    case = TestCase(rule.file, module.package, name, input_term, tuple(data_over), error)
    return case, gen, f"__body_{name} if {{\n\t{body}\n}}"


def _module_header(module: Module) -> str:
    return "\n".join([f"package {module.package}", *module.imports]) + "\n\n"


def _probe(module: Module) -> tuple[str, list[RuleDef], list[RuleDef]]:
    """Coverage probe module for one policy module: (text, measured rules, unmeasured)."""
    lines: list[str] = []
    measured: list[RuleDef] = []
    unmeasured: list[RuleDef] = []
    for rule in module.rules:
        if rule.is_function:
            unmeasured.append(rule)
            continue
        measured.append(rule)
        if rule.is_default:
            continue
        if rule.body is not None:
            lines.append(f'__cov contains "{rule.rule_id}" if {{\n{rule.body}\n}}')
        else:
            var = "__cov_value"
            lines.append(f'__cov contains "{rule.rule_id}" if {{\n\t{var} := {rule.name}\n}}')
    return _module_header(module) + "\n\n".join(lines) + "\n", measured, unmeasured


def _patched(data: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    out = copy.deepcopy(data)
    keys = path.split(".")[1:]
    node = out
    for k in keys[:-1]:
        node = node.setdefault(k, {})
    node[keys[-1]] = value
    return out


def run_tests(source: PolicySource) -> Report:
    """Run every ``test_*`` rule of ``source.tests``; measure rule coverage of ``source.modules``."""
    report = Report()
    for file, text in source.modules.items():
        line = with_keyword_line(text)
        if line is not None:
            raise RegoEvalError(f"{file}:{line}: `with` belongs in *_test.rego files only")
    policy_modules = [parse_module(f, t) for f, t in source.modules.items()]
    gen_modules: dict[str, str] = dict(source.modules)
    cases: list[TestCase] = []
    for file, text in source.tests.items():
        mod = parse_module(file, text)
        keep = [r.text for r in mod.rules if not r.is_test]
        for rule in mod.rules:
            line = None if rule.is_test else with_keyword_line(rule.text)
            if line is not None:
                raise RegoEvalError(
                    f"{file}:{rule.line + line - 1}: `with` is supported only as "
                    "`<expr> with input as X` or `with data.x as Y` at the top level of a test_ rule body"
                )
        generated: list[str] = []
        for rule in mod.rules:
            if rule.is_test:
                case, gen = _test_case(mod, rule)
                if case.error is None and with_keyword_line(gen) is not None:
                    case = replace(case, error="`with` nested inside an expression is not supported")
                cases.append(case)
                if case.error is None:
                    generated.append(gen)
        gen_modules[file] = _module_header(mod) + "\n\n".join(keep + generated) + "\n"
    probe_packages: set[str] = set()
    for mod in policy_modules:
        text, measured, unmeasured = _probe(mod)
        gen_modules[f"__coverage__/{mod.file}"] = text
        report.measured.extend(measured)
        report.unmeasured.extend(unmeasured)
        probe_packages.add(mod.package)
    def path(package: str, rule: str) -> str:
        return f"{package.replace('.', '/')}/{rule}"

    entrypoints = [path(pkg, "__cov") for pkg in sorted(probe_packages)]
    for case in cases:
        if case.error is None:
            entrypoints.append(path(case.package, f"__body_{case.name}"))
            if case.input_term is not None:
                entrypoints.append(path(case.package, f"__input_{case.name}"))
            entrypoints += [
                path(case.package, f"__data_{i}_{case.name}") for i in range(len(case.data_overrides))
            ]
    try:
        base = BundleSession(gen_modules, source.data, entrypoints)
    except RegoError as e:
        raise RegoEvalError(f"tests do not compile: {error_text(e, {**source.modules, **source.tests})}") from None
    runs: list[set[str]] = []
    sessions: dict[tuple[tuple[str, str], ...], BundleSession] = {(): base}
    for case in cases:
        if case.error is not None:
            report.results.append(TestResult(case, False, case.error))
            continue
        try:
            input_doc: Any = {}
            if case.input_term is not None:
                input_doc = base.evaluate(path(case.package, f"__input_{case.name}"))
                if input_doc is UNDEFINED:
                    report.results.append(TestResult(case, False, "the input term is undefined"))
                    continue
            session = sessions.get(case.data_overrides)
            if session is None:
                data = source.data
                for i, (target, _) in enumerate(case.data_overrides):
                    value = base.evaluate(path(case.package, f"__data_{i}_{case.name}"))
                    data = _patched(data, target, None if value is UNDEFINED else value)
                session = BundleSession(gen_modules, data, entrypoints)
                sessions[case.data_overrides] = session
            value = session.evaluate(path(case.package, f"__body_{case.name}"), input_doc)
            ok = value is True
            report.results.append(TestResult(case, ok, "" if ok else f"result: {value!r}"))
            covered: set[str] = set()
            for pkg in probe_packages:
                got = session.evaluate(path(pkg, "__cov"), input_doc)
                if isinstance(got, list):
                    covered.update(str(x) for x in got)
            runs.append(covered)
        except (RegoEvalError, RegoError) as e:
            report.results.append(TestResult(case, False, f"error: {e}"))
    for run in runs:
        report.covered |= run
    for rule in report.measured:
        if not rule.is_default:
            continue
        others = {
            r.rule_id
            for r in report.measured
            if r.name == rule.name and r.package == rule.package and not r.is_default
        }
        if any(not (others & run) for run in runs):
            report.covered.add(rule.rule_id)
    return report


@dataclass(frozen=True)
class TestInput:
    """The input (and the ``data`` document) one test evaluates its policy under."""

    name: str
    input: Any
    data: dict[str, Any]
    #: True when the test replaces parts of ``data`` (``with data.x as y``).
    data_patched: bool


def test_inputs(source: PolicySource) -> list[TestInput]:
    """The input and data of every test that sets an input with ``with input as``.

    The engine checks a revision's fast evaluator against regopy on these (the inputs
    the policy's own authors thought worth testing), and the differential tests replay
    them. A test whose terms cannot be read is skipped (``policy test`` reports it).
    """
    modules = dict(source.modules)
    cases: list[TestCase] = []
    for file, text in source.tests.items():
        try:
            mod = parse_module(file, text)
        except (ValueError, IndexError):
            continue
        gen: list[str] = [r.text for r in mod.rules if not r.is_test]
        for rule in mod.rules:
            if not rule.is_test:
                continue
            case, terms, _ = _test_parts(mod, rule)
            if case.error is None and case.input_term is not None:
                gen += terms
                cases.append(case)
        modules[file] = _module_header(mod) + "\n\n".join(gen) + "\n"

    def path(case: TestCase, rule: str) -> str:
        return f"{case.package.replace('.', '/')}/{rule}_{case.name}"

    entrypoints: list[str] = []
    for case in cases:
        entrypoints.append(path(case, "__input"))
        entrypoints += [path(case, f"__data_{i}") for i in range(len(case.data_overrides))]
    if not entrypoints:
        return []
    try:
        session = BundleSession(modules, source.data, entrypoints)
    except (RegoError, RegoEvalError):
        return []
    out: list[TestInput] = []
    for case in cases:
        try:
            value = session.evaluate(path(case, "__input"))
            data = source.data
            for i, (target, _) in enumerate(case.data_overrides):
                over = session.evaluate(path(case, f"__data_{i}"))
                data = _patched(data, target, None if over is UNDEFINED else over)
        except RegoEvalError:
            continue
        if value is not UNDEFINED:
            out.append(TestInput(case.name, value, data, bool(case.data_overrides)))
    return out


def format_report(report: Report) -> str:
    lines = []
    for r in report.results:
        status = "PASS" if r.passed else "FAIL"
        extra = f"  ({r.message})" if r.message else ""
        lines.append(f"{status}  {r.case.file}: {r.case.name}{extra}")
    lines.append(f"tests: {report.passed} passed, {report.failed} failed")
    lines.append(
        f"coverage: {report.coverage_pct:.0f}% "
        f"({len(report.covered)}/{len(report.measured)} rules exercised; "
        "the embedded engine gives no line coverage)"
    )
    if report.uncovered:
        lines.append("rules no test reaches:")
        lines += [f"  {r.rule_id}" for r in report.uncovered]
    if report.unmeasured:
        lines.append("functions (not measured):")
        lines += [f"  {r.rule_id}" for r in report.unmeasured]
    return "\n".join(lines)


def run_dir(root: Path) -> Report:
    return run_tests(load_source(root))
