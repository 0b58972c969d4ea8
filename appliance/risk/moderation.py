"""``POST /v1/moderations`` in the OpenAI shape, answered by the appliance's safety screen.

Each input gets every OpenAI category (ours mapped onto theirs, the rest scored 0) plus
the appliance's own ``prompt-injection``; ``flagged`` is true when any category reaches
its flag or block threshold in policy data.
"""

from __future__ import annotations

import uuid
from typing import Any

from appliance.config import Config
from appliance.errors import InvalidRequest
from appliance.risk.classifier import RiskClassifier
from appliance.risk.screening import SafetyScreen

OPENAI_CATEGORIES: tuple[str, ...] = (
    "harassment",
    "harassment/threatening",
    "hate",
    "hate/threatening",
    "illicit",
    "illicit/violent",
    "self-harm",
    "self-harm/intent",
    "self-harm/instructions",
    "sexual",
    "sexual/minors",
    "violence",
    "violence/graphic",
)
#: Appliance categories without an OpenAI counterpart, reported under their own names.
EXTRA_NAMES = {"prompt_injection": "prompt-injection"}
MODEL_NAME = "appliance-safety-1"
MAX_INPUTS = 64


def _inputs(body: dict[str, Any]) -> list[str]:
    raw = body.get("input")
    if isinstance(raw, str):
        return [raw]
    if isinstance(raw, list) and len(raw) <= MAX_INPUTS:
        out: list[str] = []
        for item in raw:
            if isinstance(item, str):
                out.append(item)
            elif isinstance(item, dict) and item.get("type") == "text":
                out.append(str(item.get("text", "")))
            elif isinstance(item, dict) and item.get("type") == "image_url":
                continue  # images are not screened; the result says so via applied types
            else:
                raise InvalidRequest("input items must be strings or text parts", param="input")
        return out if out else [""]
    raise InvalidRequest(
        f"'input' must be a string or a list of at most {MAX_INPUTS} strings or parts",
        param="input",
    )


class Moderator:
    """Owns a safety screen; ``start`` loads it (or shares the classify stage's model)."""

    def __init__(self, config: Config) -> None:
        self._screen = SafetyScreen(config)

    async def start(self, classifier: RiskClassifier | None = None) -> None:
        await self._screen.start(classifier)

    async def aclose(self) -> None:
        await self._screen.aclose()

    async def moderate(self, body: dict[str, Any]) -> dict[str, Any]:
        texts = _inputs(body)
        categories = self._screen.classifier.categories
        results = []
        for text in texts:
            s = await self._screen.screen(text, "prompt")
            scores = {name: 0.0 for name in OPENAI_CATEGORIES}
            flagged_names: set[str] = set()
            for cat in categories:
                names = cat.openai or ((EXTRA_NAMES.get(cat.id, cat.id.replace("_", "-")),))
                for name in names:
                    scores[name] = max(scores.get(name, 0.0), s.scores.get(cat.id, 0.0))
                    if cat.id in s.flags:
                        flagged_names.add(name)
            results.append(
                {
                    "flagged": bool(s.flags),
                    "categories": {name: name in flagged_names for name in scores},
                    "category_scores": scores,
                    "category_applied_input_types": {name: ["text"] for name in scores},
                }
            )
        return {
            "id": f"modr-{uuid.uuid4().hex}",
            "model": str(body.get("model") or MODEL_NAME),
            "results": results,
        }
