"""Compliance reports for auditors, computed from the signed audit log.

Public API: :func:`appliance.reports.export.export` (one call: request -> file),
:func:`appliance.reports.report.open_report` (the report as data, detail rows streamed),
:func:`appliance.reports.formats.formats` (json, csv, parquet, html, pdf) and
:func:`appliance.reports.kinds.kinds` (usage, art30, art12, risk, pii, policy, incident).
The queries are the SQL files under ``audit/reports/``.
"""
