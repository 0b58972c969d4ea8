"""The report kinds: which queries they run and how their results are presented.

Data comes only from the SQL files (``audit/reports/<kind>.sql``); this module holds the
presentation: titles, the labels of the headline figures, which section gets which chart,
and the few sentences a reader of the summary page needs. Adding a kind is adding a SQL
file and one :class:`KindSpec` to :func:`kinds`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal

ChartType = Literal["line", "bar", "barh", "stacked"]


@dataclass(frozen=True)
class ChartSpec:
    type: ChartType
    x: str
    y: tuple[str, ...]
    title: str
    ylabel: str = ""


@dataclass(frozen=True)
class SectionSpec:
    query: str
    title: str
    note: str = ""
    chart: ChartSpec | None = None


Findings = Callable[[Mapping[str, Any]], list[str]]


@dataclass(frozen=True)
class KindSpec:
    name: str
    title: str
    #: The legal provision the report serves, stated on its first page.
    basis: str
    description: str
    #: Headline figures: (summary column, label), in display order.
    summary: tuple[tuple[str, str], ...]
    sections: tuple[SectionSpec, ...]
    detail_title: str
    #: Statements of the SQL file run before the queries (helper views).
    prepare: tuple[str, ...] = ()
    findings: Findings | None = None
    #: Detail columns shown in HTML/PDF (empty: all); the data formats keep every column.
    preview_columns: tuple[str, ...] = ()


def _n(value: Any) -> int:
    return int(value or 0)


def _pct(part: Any, whole: Any) -> str:
    return f"{100.0 * _n(part) / _n(whole):.1f} %" if _n(whole) else "0.0 %"


def _usage_findings(s: Mapping[str, Any]) -> list[str]:
    return [
        (
            f"{_n(s['requests']):,} requests from {_n(s['tenants'])} tenant(s) and "
            f"{_n(s['applications'])} application(s) used {_n(s['models'])} model(s)."
        ),
        (
            f"{_n(s['total_tokens']):,} tokens were processed at a recorded cost of "
            f"USD {float(s['cost_usd'] or 0):,.2f}."
        ),
        (
            f"{_n(s['denied']):,} requests ({_pct(s['denied'], s['requests'])}) were denied, "
            f"{_n(s['rate_limited']):,} refused by a rate limit or budget and "
            f"{_n(s['errors']):,} failed."
        ),
    ]


def _art30_findings(s: Mapping[str, Any]) -> list[str]:
    out = [
        (
            f"{_n(s['applications'])} application(s) processed {_n(s['requests']):,} requests, "
            f"{_n(s['requests_with_personal_data']):,} of them with personal data "
            f"({_pct(s['requests_with_personal_data'], s['requests'])})."
        ),
        f"Requests went to {_n(s['recipients'])} recipient(s) (model providers).",
        (
            f"{_n(s['requests_with_special_categories']):,} request(s) held special categories "
            "of personal data (GDPR Art. 9); the applications section names them and the "
            "Art. 9(2) basis each application is registered with."
        ),
    ]
    if _n(s["third_country_recipients"]):
        out.append(
            f"{_n(s['third_country_recipients'])} recipient(s) are outside the EU/EEA and received "
            f"{_n(s['third_country_requests']):,} requests: check the Chapter V transfer basis."
        )
    else:
        out.append("No request was transferred to a recipient outside the EU/EEA.")
    return out


def _art12_findings(s: Mapping[str, Any]) -> list[str]:
    return [
        (
            f"{_n(s['records']):,} log records of {_n(s['users'])} user(s) in "
            f"{_n(s['segments'])} segment(s) fall in the period."
        ),
        (
            f"{_n(s['allowed']):,} requests were served, {_n(s['denied']):,} denied, "
            f"{_n(s['errors']):,} failed."
        ),
    ]


def _risk_findings(s: Mapping[str, Any]) -> list[str]:
    out = [
        (
            f"Of {_n(s['requests']):,} requests, {_n(s['prohibited']):,} touched a prohibited "
            f"practice (Art. 5) and {_n(s['high']):,} a high-risk area (Annex III)."
        ),
        f"{_n(s['drift']):,} requests drifted from their application's declared purpose.",
    ]
    if _n(s["prohibited_not_denied"]):
        out.append(
            f"ATTENTION: {_n(s['prohibited_not_denied']):,} request(s) classified as prohibited "
            "were not denied."
        )
    else:
        out.append("Every request classified as a prohibited practice was denied.")
    if _n(s.get("registration_needed")):
        out.append(
            f"Registration needed: {_n(s['registration_needed']):,} high-risk request(s) from "
            f"{_n(s['applications_needing_registration'])} application(s) not registered as "
            "high-risk were served (AI Act Art. 26, 49): register them or review their use."
        )
    return out


def _pii_findings(s: Mapping[str, Any]) -> list[str]:
    return [
        (
            f"{_n(s['requests_with_pii']):,} of {_n(s['requests']):,} requests "
            f"({_pct(s['requests_with_pii'], s['requests'])}) contained personal data."
        ),
        (
            f"{_n(s['findings']):,} findings of {_n(s['entity_types'])} entity type(s); "
            f"{_n(s['findings_not_forwarded']):,} were in requests that were not forwarded."
        ),
        (
            f"{_n(s['requests_with_special_categories']):,} request(s) held special categories "
            f"of personal data (GDPR Art. 9, {_n(s['special_category_findings']):,} findings); "
            f"{_n(s['special_category_requests_not_forwarded']):,} of them were not forwarded."
        ),
    ]


def _policy_findings(s: Mapping[str, Any]) -> list[str]:
    return [
        (
            f"{_n(s['decisions']):,} decisions: {_n(s['allowed']):,} allowed, {_n(s['denied']):,} "
            f"denied ({_pct(s['denied'], s['decisions'])}), {_n(s['rate_limited']):,} rate "
            f"limited, {_n(s['errors']):,} errors."
        ),
        f"{_n(s['revisions'])} policy revision(s) were in force during the period.",
    ]


def _incident_findings(s: Mapping[str, Any]) -> list[str]:
    return [
        (
            f"The draft concerns {_n(s['requests']):,} request(s) of {_n(s['applications'])} "
            f"application(s) and {_n(s['models'])} model(s)."
        ),
        f"{_n(s['answered']):,} were answered, {_n(s['denied']):,} denied.",
    ]


_OVER_TIME = "period_start"

_KINDS: tuple[KindSpec, ...] = (
    KindSpec(
        name="usage",
        title="Usage report",
        basis="Operational record; cost allocation",
        description="Requests, tokens and cost by tenant, department, application, model and provider.",
        summary=(
            ("requests", "Requests"),
            ("allowed", "Allowed"),
            ("denied", "Denied"),
            ("errors", "Errors"),
            ("prompt_tokens", "Prompt tokens"),
            ("completion_tokens", "Completion tokens"),
            ("total_tokens", "Total tokens"),
            ("cost_usd", "Cost (USD)"),
            ("tenants", "Tenants"),
            ("applications", "Applications"),
            ("models", "Models"),
        ),
        sections=(
            SectionSpec(
                "over_time",
                "Usage over time",
                chart=ChartSpec(
                    "line", _OVER_TIME, ("requests", "denied"), "Requests over time", "requests"
                ),
            ),
            SectionSpec(
                "by_tenant",
                "By tenant",
                chart=ChartSpec("barh", "tenant", ("cost_usd",), "Cost by tenant", "USD"),
            ),
            SectionSpec("by_department", "By department"),
            SectionSpec("by_application", "By application"),
            SectionSpec(
                "by_model",
                "By model and provider",
                chart=ChartSpec("barh", "model", ("requests",), "Requests by model"),
            ),
        ),
        detail_title="Usage by period, tenant, department, application, model and provider",
        preview_columns=(
            "period_start",
            "tenant",
            "department",
            "application",
            "model",
            "requests",
            "total_tokens",
            "cost_usd",
        ),
        findings=_usage_findings,
    ),
    KindSpec(
        name="art30",
        title="Record of processing activities",
        basis="GDPR Art. 30",
        description="Per application: purposes, categories of personal data, recipients, "
        "third-country transfers, retention and security measures.",
        summary=(
            ("applications", "Applications"),
            ("requests", "Requests"),
            ("requests_with_personal_data", "Requests with personal data"),
            ("requests_with_special_categories", "Requests with special categories (Art. 9)"),
            ("recipients", "Recipients"),
            ("third_country_recipients", "Recipients outside EU/EEA"),
            ("third_country_requests", "Requests to recipients outside EU/EEA"),
        ),
        sections=(
            SectionSpec(
                "applications",
                "Applications and purposes (Art. 30(1)(b))",
                note="Special categories: the GDPR Art. 9 categories found in the "
                "application's requests; Art. 9(2) basis: as registered for it.",
            ),
            SectionSpec(
                "data_categories",
                "Categories of personal data (Art. 30(1)(c))",
                note="Entity types found by the PII detector; counts only, never values. "
                "Special categories of Art. 9(1) are marked.",
                chart=ChartSpec(
                    "barh", "data_category", ("findings",), "Personal data findings by category"
                ),
            ),
            SectionSpec(
                "recipients",
                "Recipients and transfers to third countries (Art. 30(1)(d), (e))",
                note="Only forwarded requests reached a recipient.",
            ),
        ),
        detail_title="Record of processing: application, recipient, region",
        preview_columns=(
            "tenant",
            "application",
            "purpose",
            "data_categories",
            "special_categories",
            "recipient",
            "region",
            "third_country",
            "requests",
            "retention_days",
        ),
        findings=_art30_findings,
    ),
    KindSpec(
        name="art12",
        title="AI system log extract",
        basis="AI Act Art. 12 (record-keeping), Art. 19 and 26(6) (retention)",
        description="The automatically recorded events of the period, record by record, "
        "with the result of the hash-chain verification and the signed checkpoints they rest on.",
        summary=(
            ("records", "Records"),
            ("first_record", "First record (UTC)"),
            ("last_record", "Last record (UTC)"),
            ("allowed", "Allowed"),
            ("denied", "Denied"),
            ("errors", "Errors"),
            ("users", "Users"),
            ("models", "Models"),
            ("segments", "Segments"),
            ("tool_calls", "Tool calls (MCP)"),
        ),
        sections=(
            SectionSpec(
                "over_time",
                "Records over time",
                chart=ChartSpec(
                    "stacked", _OVER_TIME, ("records",), "Log records over time", "records"
                ),
            ),
            SectionSpec("by_decision", "Outcomes"),
        ),
        detail_title="Log records",
        preview_columns=(
            "ts_start",
            "request_id",
            "tenant",
            "user_id",
            "application",
            "model",
            "decision",
            "status",
            "risk_class",
            "record_hash",
        ),
        findings=_art12_findings,
    ),
    KindSpec(
        name="risk",
        title="AI Act risk report",
        basis="AI Act Art. 5, Art. 6 and Annex III, Art. 9",
        description="Classification of applications and requests, drift from the declared "
        "purpose, denials of prohibited practices, and high-risk use from applications that "
        "need registration.",
        summary=(
            ("requests", "Requests"),
            ("prohibited", "Prohibited practice (Art. 5)"),
            ("high", "High risk (Annex III)"),
            ("limited", "Limited risk (Art. 50)"),
            ("minimal", "Minimal risk"),
            ("unclassified", "Unclassified"),
            ("drift", "Drift from declared purpose"),
            ("prohibited_denied", "Prohibited and denied"),
            ("prohibited_not_denied", "Prohibited and NOT denied"),
            ("registration_needed", "High risk, registration needed"),
            ("applications_needing_registration", "Applications needing registration"),
        ),
        sections=(
            SectionSpec(
                "by_class",
                "Requests by risk class",
                chart=ChartSpec(
                    "bar", "risk_class", ("requests", "denied"), "Requests by risk class"
                ),
            ),
            SectionSpec(
                "over_time",
                "Risk classes over time",
                chart=ChartSpec(
                    "stacked",
                    _OVER_TIME,
                    ("prohibited", "high", "limited", "minimal"),
                    "Risk classes over time",
                    "requests",
                ),
            ),
            SectionSpec("applications", "Applications: declared and observed class"),
            SectionSpec(
                "registration",
                "Registration needed: high-risk use from unregistered applications",
                note="Served because policies/data/ai_act.yaml says unregistered_high_risk: "
                "allow; register the application as high-risk or review its use.",
            ),
            SectionSpec("areas", "AI Act areas matched"),
        ),
        prepare=("flagged",),
        detail_title="Prohibited, high-risk and drifting requests",
        preview_columns=(
            "ts_start",
            "request_id",
            "tenant",
            "application",
            "declared_class",
            "risk_class",
            "drift",
            "decision",
            "registration_needed",
            "reasons",
        ),
        findings=_risk_findings,
    ),
    KindSpec(
        name="pii",
        title="Personal data (PII) report",
        basis="GDPR Art. 5(1)(c) (data minimisation), Art. 25, Art. 32",
        description="Personal-data findings by entity type and the action taken, over time.",
        summary=(
            ("requests", "Requests"),
            ("requests_with_pii", "Requests with personal data"),
            ("findings", "Findings"),
            ("entity_types", "Entity types"),
            ("findings_not_forwarded", "Findings in requests not forwarded"),
            ("special_category_findings", "Special-category findings (Art. 9)"),
            ("requests_with_special_categories", "Requests with special categories"),
            (
                "special_category_requests_not_forwarded",
                "Requests with special categories not forwarded",
            ),
        ),
        sections=(
            SectionSpec(
                "by_entity",
                "Findings by entity type",
                chart=ChartSpec(
                    "barh", "entity_type", ("findings",), "PII findings by entity type"
                ),
            ),
            SectionSpec(
                "by_special_category",
                "Special categories of personal data (GDPR Art. 9)",
                note="Facts about a person (health, religion, ...), counted apart from "
                "identifiers; not forwarded: denied, e.g. for want of an Art. 9(2) basis.",
                chart=ChartSpec(
                    "barh", "special_category", ("requests",),
                    "Requests with special categories",
                ),
            ),
            SectionSpec("by_action", "Findings by action taken"),
            SectionSpec(
                "over_time",
                "Findings over time",
                chart=ChartSpec(
                    "line", _OVER_TIME, ("findings",), "PII findings over time", "findings"
                ),
            ),
        ),
        detail_title="Findings by period, tenant, application, entity type and action",
        prepare=("findings",),
        findings=_pii_findings,
    ),
    KindSpec(
        name="policy",
        title="Policy decisions report",
        basis="AI Act Art. 9 and 14; GDPR Art. 24, 32",
        description="Decisions and denial reasons; the policy revisions in force over the period.",
        summary=(
            ("decisions", "Decisions"),
            ("allowed", "Allowed"),
            ("denied", "Denied"),
            ("errors", "Errors"),
            ("revisions", "Policy revisions"),
        ),
        sections=(
            SectionSpec(
                "over_time",
                "Decisions over time",
                chart=ChartSpec(
                    "stacked",
                    _OVER_TIME,
                    ("allowed", "denied", "errors"),
                    "Decisions over time",
                    "requests",
                ),
            ),
            SectionSpec(
                "reasons",
                "Denial reasons",
                chart=ChartSpec("barh", "reason", ("denials",), "Denials by reason"),
            ),
            SectionSpec("rules", "Policy rules that fired"),
            SectionSpec("revisions", "Policy revisions in force"),
        ),
        detail_title="Decisions other than allow",
        preview_columns=(
            "ts_start",
            "request_id",
            "tenant",
            "application",
            "decision",
            "status",
            "policy_revision",
            "reasons",
        ),
        findings=_policy_findings,
    ),
    KindSpec(
        name="incident",
        title="Serious incident report (draft)",
        basis="AI Act Art. 73",
        description="Draft notification of a serious incident to the market surveillance "
        "authority, with the requests concerned and the reporting deadlines.",
        summary=(
            ("requests", "Requests concerned"),
            ("first_request", "First request (UTC)"),
            ("last_request", "Last request (UTC)"),
            ("tenants", "Tenants"),
            ("applications", "Applications"),
            ("models", "Models"),
            ("answered", "Answered"),
            ("denied", "Denied"),
        ),
        sections=(SectionSpec("systems", "AI systems involved"),),
        detail_title="Requests concerned",
        preview_columns=(
            "ts_start",
            "request_id",
            "application",
            "user_id",
            "model",
            "decision",
            "status",
            "risk_class",
            "safety_flags",
            "record_hash",
        ),
        prepare=("selection",),
        findings=_incident_findings,
    ),
)


def kinds() -> Mapping[str, KindSpec]:
    """Every report kind by name (read-only)."""
    return MappingProxyType({k.name: k for k in _KINDS})
