"""What happens to each finding: mask, hash, redact, block or allow.

The action per entity type comes from the policy's ``pii_actions`` obligation ("*" is
its default), then the ``[pii]`` config, then ``pii.default_action``; callers cannot
change it. Replacement values never contain the original.

"*" is the default for identifiers only. GDPR Art. 9 special categories (HEALTH,
RELIGION, ...) are facts about a person, not identifiers: a type the policy or config
does not name explicitly is left in the text (``allow``), and the policy decides whether
the request may leave the premises at all (:mod:`appliance.pii.special`).
"""

from __future__ import annotations

import hashlib
import hmac
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from appliance.config.pii import Action, PiiConfig
from appliance.pii.findings import Finding
from appliance.pii.special.categories import DEFAULT_ACTION, SPECIAL_CATEGORIES
from appliance.pii.vault import Vault

ACTIONS: frozenset[str] = frozenset({"mask", "hash", "redact", "block", "allow"})


@dataclass(frozen=True)
class ActionTable:
    """Resolved actions for one request."""

    by_type: Mapping[str, Action]
    default: Action

    def __call__(self, entity_type: str) -> Action:
        if entity_type in SPECIAL_CATEGORIES:
            return self.by_type.get(entity_type, DEFAULT_ACTION)
        return self.by_type.get(entity_type, self.default)

    @classmethod
    def resolve(cls, config: PiiConfig, obligation: Any) -> ActionTable:
        by_type: dict[str, Action] = {k: v for k, v in config.actions.items() if k != "*"}
        default: Action = config.actions.get("*", config.default_action)
        if isinstance(obligation, Mapping):
            for k, v in obligation.items():
                if v not in ACTIONS:
                    continue  # an unknown action from policy data is ignored, not obeyed
                if k == "*":
                    default = v
                else:
                    by_type[str(k).upper()] = v
        return cls(by_type, default)


@dataclass
class Outcome:
    """Counts of what was done (facts for the verdict, never values)."""

    masked: int = 0
    hashed: int = 0
    redacted: int = 0
    blocked: set[str] = field(default_factory=set)
    types: Counter[str] = field(default_factory=Counter)


def hash_token(entity_type: str, value: str, salt: bytes) -> str:
    digest = hmac.new(salt, value.encode("utf-8"), hashlib.sha256).hexdigest()[:12]
    return f"<{entity_type}#{digest}>"


def apply_actions(
    text: str,
    findings: Sequence[Finding],
    actions: ActionTable,
    vault: Vault,
    salt: bytes,
    outcome: Outcome,
) -> str:
    """``text`` with every finding replaced per its action.

    Identifier findings do not overlap; special-category findings may overlap them. A
    finding that starts inside an earlier replacement is replaced only for the part that
    sticks out of it, so no character of it survives.
    """
    vault.reserve_literals(text)
    pieces: list[str] = []
    pos = 0
    for f in sorted(findings, key=lambda f: f.start):
        if f.end <= pos:
            continue
        action = actions(f.entity_type)
        if action == "allow":
            continue
        if f.start < pos:
            f = replace(f, start=pos)
        value = text[f.start:f.end]
        outcome.types[f.entity_type] += 1
        if action == "block":
            outcome.blocked.add(f.entity_type)
            replacement = f"<{f.entity_type}>"
        elif action == "mask":
            replacement = vault.placeholder(f.entity_type, value)
            outcome.masked += 1
        elif action == "hash":
            replacement = hash_token(f.entity_type, value, salt)
            outcome.hashed += 1
        else:
            replacement = f"<{f.entity_type}>"
            outcome.redacted += 1
        pieces.append(text[pos:f.start])
        pieces.append(replacement)
        pos = f.end
    pieces.append(text[pos:])
    return "".join(pieces)
