"""``policy explain``: which rules decided a past request, with the articles behind them.

The decide stage stores the ids of the rules that fired and the policy revision in its
verdict facts; the audit record keeps them (``policy_rules``, ``policy_revision``). Here
they are joined with the ``# METADATA`` annotations of the policy files, so an auditor
reads "denied by gdpr_art9_art44_special_category_transfer (GDPR Art. 9(1), Art. 44)".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from appliance.config import Config
from appliance.policy.rego_source import parse_module
from appliance.policy.source import PolicySource


def rule_annotations(source: PolicySource) -> dict[str, dict[str, Any]]:
    """Rule id (``custom.id`` of a METADATA block) -> {title, article, description, file, line}."""
    out: dict[str, dict[str, Any]] = {}
    for file, text in source.modules.items():
        for rule in parse_module(file, text).rules:
            custom = rule.annotations.get("custom") or {}
            rid = custom.get("id") if isinstance(custom, dict) else None
            if rid:
                out[str(rid)] = {
                    "title": rule.annotations.get("title", ""),
                    "description": rule.annotations.get("description", ""),
                    "article": custom.get("article", ""),
                    "file": file,
                    "line": rule.line,
                }
    return out


def _as_list(value: Any) -> list[str]:
    return [str(x) for x in value] if isinstance(value, (list, tuple)) else []


def decision_facts(record: Mapping[str, Any]) -> dict[str, Any]:
    """The decide facts from an audit record (row columns) or from verdict facts."""
    if "policy_rules" in record or "policy_revision" in record:
        return {
            "allow": record.get("decision") == "allow",
            "decision": record.get("decision"),
            "reasons": _as_list(record.get("reasons")),
            "rules": _as_list(record.get("policy_rules")),
            "revision": record.get("policy_revision"),
            "obligations": record.get("obligations") or {},
        }
    return {
        "allow": bool(record.get("allow")),
        "decision": "allow" if record.get("allow") else "deny",
        "reasons": _as_list(record.get("reasons")),
        "rules": _as_list(record.get("rules")),
        "revision": record.get("revision"),
        "obligations": record.get("obligations") or {},
    }


def explain_record(record: Mapping[str, Any], source: PolicySource | None) -> str:
    """A readable account of one decision (``record``: audit row or decide facts)."""
    facts = decision_facts(record)
    notes = rule_annotations(source) if source else {}
    lines = [f"decision: {facts['decision']}", f"policy revision: {facts['revision'] or 'unknown'}"]
    if source is not None and facts["revision"] and facts["revision"] != source.revision:
        lines.append(
            f"  (the policy directory is now at revision {source.revision}; "
            "rule texts below may have changed since)"
        )
    if facts["reasons"]:
        lines.append("reasons:")
        lines += [f"  - {r}" for r in facts["reasons"]]
    lines.append("rules that fired:" if facts["rules"] else "rules that fired: none")
    for rid in facts["rules"]:
        n = notes.get(rid)
        if n:
            lines.append(f"  - {rid}: {n['title']} [{n['article']}] ({n['file']}:{n['line']})")
        else:
            lines.append(f"  - {rid}")
    if facts["obligations"]:
        lines.append("obligations:")
        lines += [f"  {k}: {v}" for k, v in sorted(dict(facts["obligations"]).items())]
    return "\n".join(lines)


def find_record(config: Config, request_id: str) -> dict[str, Any] | None:
    """The audit record of ``request_id`` (hook: reads the audit log's reader API)."""
    from appliance.audit.reader import open_reader

    with open_reader(config) as reader:
        return reader.get(request_id)


def explain(request_id: str, config: Config, source: PolicySource | None) -> str | None:
    record = find_record(config, request_id)
    return None if record is None else explain_record(record, source)
