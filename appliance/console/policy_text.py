"""The policy set in force as the console shows it: files, rules and their METADATA."""

from __future__ import annotations

from typing import Any

from appliance.config import Config
from appliance.policy.explain import rule_annotations
from appliance.policy.source import PolicyLoadError, load_source


def annotations_now(config: Config) -> dict[str, dict[str, Any]]:
    """Rule id -> {title, article, description, file, line} of the policy directory now."""
    try:
        return rule_annotations(load_source(config.policy.directory))
    except PolicyLoadError:
        return {}
