"""What a PII worker process holds: Presidio and spaCy, not torch or transformers."""

from __future__ import annotations

import asyncio
from pathlib import Path

from appliance.config.pii import PiiConfig
from appliance.pii.pool import AnalyzerPool


def _mapped(pid: int) -> str:
    return Path(f"/proc/{pid}/maps").read_text()


def test_a_worker_finds_pii_without_loading_torch() -> None:
    async def main() -> None:
        pool = AnalyzerPool(PiiConfig(workers=1))
        await pool.start()
        try:
            (pid,) = pool.pids()
            found = await pool.analyze(
                ["Hans Müller wohnt in Berlin.", "John Smith lives at 5 Main Street."],
                ["de", "en"])
            maps = _mapped(pid)
        finally:
            await pool.aclose()
        assert "libtorch" not in maps
        assert "spacy" in maps or "thinc" in maps or "blis" in maps  # the analyzer is there
        assert {f.entity_type for f in found[0]} >= {"PERSON", "LOCATION"}
        assert "PERSON" in {f.entity_type for f in found[1]}

    asyncio.run(main())
