"""Both catalogues say the same things: the same keys, the same placeholders."""

from __future__ import annotations

import re
from pathlib import Path

from appliance.console.i18n import Translator, catalogue

TEMPLATES = Path(__file__).resolve().parents[2] / "appliance" / "console" / "templates"
PAGES = Path(__file__).resolve().parents[2] / "appliance" / "console"


def test_german_has_every_english_key_with_the_same_placeholders() -> None:
    en, de = catalogue("en"), catalogue("de")
    assert set(en) == set(de), (set(en) ^ set(de))
    for key, text in en.items():
        assert set(re.findall(r"\{(\w+)\}", text)) == set(re.findall(r"\{(\w+)\}", de[key])), key


def test_every_key_the_code_uses_exists() -> None:
    used: set[str] = set()
    for path in [*TEMPLATES.glob("*.html"), *PAGES.rglob("*.py")]:
        text = path.read_text("utf-8")
        used |= set(re.findall(r"""\bt\(\s*["']([a-z_]+\.[a-z_0-9.]+)["']""", text))
        used |= set(re.findall(r"""ConsoleError\(\d+, "([a-z_]+\.[a-z_0-9.]+)\"""", text))
    dynamic = {k for k in used if k.endswith(("_", "."))}  # completed at run time: t("keys.limit_" ~ f)
    missing = sorted(k for k in used - dynamic if k not in catalogue("en"))
    assert not missing, missing


def test_numbers_and_times_read_as_each_language_writes_them() -> None:
    assert Translator("en").number(1234567.5, 1) == "1,234,567.5"
    assert Translator("de").number(1234567.5, 1) == "1.234.567,5"
    assert Translator("de").when("2026-12-07T10:05:00Z") == "07.12.2026 10:05:00 UTC"
