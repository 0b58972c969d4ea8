"""Every config field is documented, and docs/configuration.md is generated from them."""

from __future__ import annotations

from pathlib import Path

from appliance.config.reference import render

DOC = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"


def test_every_field_has_a_comment() -> None:
    _, missing = render()
    assert not missing, f"fields without a #: comment: {missing}"


def test_reference_is_up_to_date() -> None:
    text, _ = render()
    assert DOC.read_text("utf-8") == text, (
        "docs/configuration.md is stale: python -m appliance.config.reference > docs/configuration.md"
    )
