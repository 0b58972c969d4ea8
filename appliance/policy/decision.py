"""A policy decision, normalised from whatever the Rego entrypoint returned.

The entrypoint should return ``{allow, reasons, obligations, rules}``. Anything else
(undefined, not an object, ``allow`` not a boolean) is a deny: a policy that does not
say yes says no. Obligations get safe defaults for the keys later stages rely on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from appliance.core.findings import PolicyFindings
from appliance.policy.rego import Undefined

#: What later stages assume when a policy sets nothing: mask every PII type, restore
#: placeholders in the answer.
DEFAULT_OBLIGATIONS: Mapping[str, Any] = {"pii_actions": {"*": "mask"}, "restore_pii": True}

_PII_ACTIONS = {"mask", "hash", "redact", "block", "allow"}


@dataclass(frozen=True)
class Decision:
    allow: bool
    reasons: tuple[str, ...]
    obligations: dict[str, Any] = field(default_factory=dict)
    #: Ids of the rules that fired (deny rules and obligation rules).
    rules: tuple[str, ...] = ()
    revision: str = ""

    def findings(self, input_doc: Mapping[str, object] | None = None) -> PolicyFindings:
        """What the decide stage's verdict carries (and the audit record keeps), with the
        input the decision was made on."""
        return PolicyFindings(
            allow=self.allow,
            reasons=self.reasons,
            rules=self.rules,
            revision=self.revision,
            obligations=self.obligations,
            input=input_doc,
        )

    def facts(self) -> dict[str, Any]:
        """The decision as JSON, as ``appliance policy eval`` and ``explain`` print it."""
        return {
            "allow": self.allow,
            "reasons": list(self.reasons),
            "obligations": self.obligations,
            "revision": self.revision,
            "rules": list(self.rules),
        }


def deny(reason: str, revision: str = "", rule: str = "appliance.fail_closed") -> Decision:
    return Decision(False, (reason,), _obligations({}), (rule,), revision)


def _obligations(raw: Any) -> dict[str, Any]:
    obl: dict[str, Any] = dict(raw) if isinstance(raw, Mapping) else {}
    actions = obl.get("pii_actions")
    merged = dict(DEFAULT_OBLIGATIONS["pii_actions"])
    if isinstance(actions, Mapping):
        merged.update({str(k): str(v) for k, v in actions.items() if v in _PII_ACTIONS})
    obl["pii_actions"] = merged
    if not isinstance(obl.get("restore_pii"), bool):
        obl["restore_pii"] = True
    if "max_tokens" in obl and not (
        isinstance(obl["max_tokens"], int) and not isinstance(obl["max_tokens"], bool)
    ):
        del obl["max_tokens"]
    for key in ("disclosure", "deny_streaming", "store_payloads", "registration_needed"):
        if key in obl and not isinstance(obl[key], bool):
            del obl[key]
    if "force_local_model" in obl and not isinstance(obl["force_local_model"], str):
        del obl["force_local_model"]
    return obl


def from_result(result: Any, revision: str) -> Decision:
    """Normalise an entrypoint result; undefined or malformed means deny."""
    if isinstance(result, Undefined) or result is None:
        return deny("policy decision undefined: denied by default", revision, "appliance.undefined")
    if not isinstance(result, Mapping) or not isinstance(result.get("allow"), bool):
        return deny("policy decision malformed: denied by default", revision, "appliance.malformed")
    reasons = tuple(str(r) for r in result.get("reasons") or ())
    allow = bool(result["allow"])
    if not allow and not reasons:
        reasons = ("denied by policy",)
    rules = tuple(str(r) for r in result.get("rules") or ())
    return Decision(allow, reasons, _obligations(result.get("obligations")), rules, revision)
