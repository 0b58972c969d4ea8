"""An application's declared purpose: its baseline class, and drift from it.

The AI Act classifies a *system* by its intended purpose, so an application registered
as "CV screening" is high-risk whatever a single prompt says, and a "marketing copy"
application that starts sending CV-screening prompts has drifted out of its declared
purpose: that is a fact for the policy and the audit log.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from appliance.risk.classifier import RiskClassifier
from appliance.risk.lexicon import load_lexicon
from appliance.risk.taxonomy import CLASS_RANK, Taxonomy, load_taxonomy, strongest

#: Areas that qualify another area rather than stand alone (Art. 6(3): an Annex III
#: system that profiles is high-risk); they never count as drift for a high-risk app.
QUALIFIERS = frozenset({"art6_3_profiling"})


def annex_iii_area(value: str, taxonomy: Taxonomy) -> str:
    """The area id an operator means by ``value``: "4", "annex3_4", "III(4)", "employment"."""
    v = value.strip().lower()
    ids = taxonomy.ids()
    if v in ids:
        return v
    m = re.fullmatch(r"(?:annex[ _-]?(?:iii|3)[ _(.-]*)?([1-8])\)?", v)
    if m and f"annex3_{m.group(1)}" in ids:
        return f"annex3_{m.group(1)}"
    for a in taxonomy.areas:
        if a.id.startswith("annex3_") and v and v in a.title.lower():
            return a.id
    choices = ", ".join(a.id for a in taxonomy.areas if a.id.startswith("annex3_"))
    raise ValueError(f"unknown Annex III area {value!r} (use 1-8 or one of: {choices})")


def baseline_class(
    purpose: str,
    annex_iii: str | None,
    *,
    classifier: RiskClassifier | None = None,
) -> tuple[str, list[dict[str, Any]]]:
    """The declared class of an application and the areas its purpose touches.

    ``annex_iii`` (the operator's own selection) always counts, with score 1. Without a
    ``classifier`` the EN+DE rules alone read the purpose (pass the server's classifier
    to add the embedding model).
    """
    clf = classifier or RiskClassifier(load_taxonomy(), load_lexicon(), None)
    result = clf.classify(purpose)
    areas = result.facts()
    if annex_iii:
        area = clf.taxonomy.area(annex_iii_area(annex_iii, clf.taxonomy))
        areas = [a for a in areas if a["id"] != area.id]
        areas.insert(0, {"id": area.id, "article": area.article, "score": 1.0})
    classes = [clf.taxonomy.area(str(a["id"])).risk_class for a in areas]
    return strongest(classes), areas


def drift(
    content_areas: Iterable[tuple[str, str]],
    declared_class: str,
    declared_areas: Sequence[Mapping[str, Any]],
) -> list[str]:
    """Content areas (id, class) outside the declared purpose: a limited-or-stronger area
    that the purpose does not declare, unless it is a qualifier of a high-risk purpose."""
    declared = {str(a.get("id")) for a in declared_areas}
    out: list[str] = []
    for area_id, risk_class in content_areas:
        if area_id in declared or CLASS_RANK[risk_class] < CLASS_RANK["limited"]:
            continue
        if area_id in QUALIFIERS and CLASS_RANK[declared_class] >= CLASS_RANK["high"]:
            continue
        out.append(area_id)
    return out
