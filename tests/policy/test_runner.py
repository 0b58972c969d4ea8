"""`policy test`: the Rego unit tests pass and coverage is measured (and can drop)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from appliance.policy.runner import run_dir
from tests.policy.conftest import SHIPPED

ROOT = Path(__file__).resolve().parents[2]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "appliance", "policy", *args], check=False, cwd=ROOT, capture_output=True, text=True, timeout=120
    )


def test_shipped_policies_pass_with_full_coverage() -> None:
    report = run_dir(SHIPPED)
    assert report.results and report.failed == 0, [r for r in report.results if not r.passed]
    assert report.coverage_pct >= 90
    assert report.uncovered == []


def test_every_regulatory_rule_is_annotated_and_tested() -> None:
    from appliance.policy.explain import rule_annotations
    from appliance.policy.source import load_source

    source = load_source(SHIPPED)
    notes = rule_annotations(source)
    assert {"gdpr_art9_art44_special_category_transfer", "ai_act_art5_prohibited",
            "ai_act_art26_high_risk_unregistered", "ai_act_art26_registration_needed",
            "secrets_blocked", "access_model",
            "tenant_prompt_cap"} <= set(notes)
    assert all(n["article"] for n in notes.values())
    tests = "\n".join(source.tests.values())
    for rule_id in notes:
        assert rule_id in tests, f"no test names {rule_id}"


def test_cli_test_prints_results_and_coverage() -> None:
    out = _cli("test", str(SHIPPED))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "PASS  main_test.rego: test_health_data_to_us_provider_denied" in out.stdout
    assert "coverage: 100%" in out.stdout


def test_failing_test_and_uncovered_rule_are_reported(policy_dir: Path) -> None:
    (policy_dir / "extra.rego").write_text(
        "package appliance.main\n\nimport rego.v1\n\n"
        'deny contains {"rule": "never", "reason": "x"} if {\n\tinput.request.route == "nowhere"\n}\n'
    )
    (policy_dir / "extra_test.rego").write_text(
        "package appliance.extra_test\n\nimport rego.v1\n\nimport data.appliance.main\n\n"
        "test_wrong_expectation if {\n\tinp := {}\n\td := main.decision with input as inp\n\td.allow\n}\n"
    )
    out = _cli("test", str(policy_dir))
    assert out.returncode == 1
    assert "FAIL  extra_test.rego: test_wrong_expectation" in out.stdout
    assert "extra.rego:5 deny" in out.stdout.split("rules no test reaches:")[1]
    report = run_dir(policy_dir)
    assert report.coverage_pct < 100


def test_data_override_in_tests(policy_dir: Path) -> None:
    (policy_dir / "override_test.rego").write_text(
        "package appliance.override_test\n\nimport rego.v1\n\nimport data.appliance.main\n\n"
        "test_trial_cap_from_overridden_data if {\n"
        '\tinp := {"principal": {"tenant": "acme"}}\n'
        '\tlimits := main.tenant_limits with input as inp with data.limits.tenants as {"acme": {"max_prompt_tokens": 1, "max_output_tokens": 2}}\n'
        "\tlimits.max_output_tokens == 2\n}\n"
    )
    report = run_dir(policy_dir)
    assert report.failed == 0


def test_check_reports_syntax_error_and_unknown_input_fields(policy_dir: Path) -> None:
    assert _cli("check", "--dir", str(policy_dir)).returncode == 0
    (policy_dir / "typo.rego").write_text("package appliance.main\n\nimport rego.v1\n\nuses_typo if input.request.modell == \"x\"\n")
    out = _cli("check", "--dir", str(policy_dir))
    assert out.returncode == 1 and "input.request.modell is not in the input schema" in out.stderr
    (policy_dir / "typo.rego").write_text("package appliance.main\n\nbroken if {\n")
    out = _cli("check", "--dir", str(policy_dir))
    assert out.returncode == 1 and "typo.rego" in out.stderr


def test_eval_prints_decision_with_reasons(tmp_path: Path) -> None:
    import json

    from appliance.policy.input import example_input

    doc = example_input()
    doc["pii"].update({"types": ["HEALTH"], "counts": {"HEALTH": 1}})
    doc["request"]["provider_region"] = "us"
    f = tmp_path / "in.json"
    f.write_text(json.dumps(doc))
    out = _cli("eval", "--input", str(f), "--dir", str(SHIPPED))
    assert out.returncode == 3
    assert "decision: deny" in out.stdout
    assert "GDPR Art. 9(1), Art. 44" in out.stdout


def test_docs_schema_matches_the_models() -> None:
    from appliance.policy.input_schema import json_schema_text

    assert (ROOT / "docs" / "policy-input.schema.json").read_text() == json_schema_text()


def test_wired_into_the_appliance_cli() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "appliance", "policy", "check", "--dir", str(SHIPPED)],
        check=False, cwd=ROOT, capture_output=True, text=True, timeout=280,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("ok: ")


def test_with_outside_test_rules_is_refused_not_crashing(policy_dir: Path) -> None:
    (policy_dir / "helper_test.rego").write_text(
        "package appliance.helper_test\n\nimport rego.v1\n\nimport data.appliance.main\n\n"
        'helper := main.allow with input as {"x": 1}\n\ntest_uses_helper if {\n\thelper\n}\n'
    )
    out = _cli("test", str(policy_dir))
    assert out.returncode == 1
    assert "helper_test.rego:7: `with` is supported only" in out.stderr
    (policy_dir / "helper_test.rego").unlink()
    (policy_dir / "uses_with.rego").write_text(
        "package appliance.main\n\nimport rego.v1\n\nprobe := allow with input as {}\n"
    )
    out = _cli("check", "--dir", str(policy_dir))
    assert out.returncode == 1 and "uses_with.rego:5: `with`" in out.stderr
