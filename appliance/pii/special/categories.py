"""The special categories of GDPR Art. 9(1) and the exceptions of Art. 9(2), as data.

Entity types are the names the PII findings, the policy input, the audit log and the
reports use; legal bases are the names `appliance apps register --art9-basis` stores.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Final

from appliance.config.pii import Action

#: Entity type -> what Art. 9(1) calls it.
CATEGORIES: Final = MappingProxyType({
    "HEALTH": "data concerning health",
    "ETHNIC_ORIGIN": "racial or ethnic origin",
    "POLITICAL_OPINION": "political opinions",
    "RELIGION": "religious or philosophical beliefs",
    "TRADE_UNION": "trade union membership",
    "GENETIC": "genetic data",
    "BIOMETRIC": "biometric data for the purpose of uniquely identifying a natural person",
    "SEX_LIFE": "data concerning a natural person's sex life or sexual orientation",
})

SPECIAL_CATEGORIES: Final[frozenset[str]] = frozenset(CATEGORIES)

#: Legal basis name -> the exception of Art. 9(2) it stands for.
ART9_BASES: Final = MappingProxyType({
    "explicit_consent": "Art. 9(2)(a) explicit consent of the data subject",
    "employment": "Art. 9(2)(b) employment, social security and social protection law",
    "vital_interests": "Art. 9(2)(c) vital interests, data subject incapable of consent",
    "not_for_profit": "Art. 9(2)(d) members of a foundation, association or other not-for-profit body",
    "made_public": "Art. 9(2)(e) manifestly made public by the data subject",
    "legal_claims": "Art. 9(2)(f) establishment, exercise or defence of legal claims",
    "substantial_public_interest": "Art. 9(2)(g) substantial public interest under Union or Member State law",
    "health_care": "Art. 9(2)(h) preventive or occupational medicine, diagnosis, health or social care",
    "public_health": "Art. 9(2)(i) public interest in the area of public health",
    "archiving_research": "Art. 9(2)(j) archiving in the public interest, scientific or historical research, statistics",
})

#: What redaction does with a special-category span unless the policy or config names the
#: type: leave it. The word "depression" identifies nobody, and replacing it would only
#: garble the request; whether the request may leave the premises at all is the policy's
#: decision (``gdpr_art9_special_categories``).
DEFAULT_ACTION: Final[Action] = "allow"


def is_special(entity_type: str) -> bool:
    return entity_type in SPECIAL_CATEGORIES


def parse_basis(spec: str) -> tuple[str, str]:
    """``"HEALTH=health_care"`` or ``"*=explicit_consent"`` into (category, basis).

    Raises ValueError with a message naming the valid choices.
    """
    category, sep, basis = spec.partition("=")
    category, basis = category.strip().upper(), basis.strip().lower()
    if not sep or not category or not basis:
        raise ValueError(f"--art9-basis takes CATEGORY=BASIS (e.g. HEALTH=health_care), not {spec!r}")
    if category != "*" and category not in SPECIAL_CATEGORIES:
        raise ValueError(
            f"unknown special category {category!r}; one of: * {' '.join(sorted(SPECIAL_CATEGORIES))}"
        )
    if basis not in ART9_BASES:
        raise ValueError(f"unknown Art. 9(2) basis {basis!r}; one of: {' '.join(ART9_BASES)}")
    return category, basis
