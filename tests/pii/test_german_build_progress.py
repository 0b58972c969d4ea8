"""The German tagger's build reports its progress through a child's pipe: what a first
start shows for its longest step."""

from __future__ import annotations

import sys
from pathlib import Path

from appliance.pii.de.build import MODEL_FILE
from appliance.progress import run_child


def test_the_build_child_relays_its_progress_to_the_parent(tmp_path: Path) -> None:
    """``python -m appliance.pii.de.build DIR`` as ``serve`` runs it: the parent hears the
    phases and the share done through the pipe, and the child's own output stays out of
    the way."""
    script = (
        "import sys\n"
        "from dataclasses import replace\n"
        "from appliance.models.child import child_main\n"
        "from appliance.pii.de import germeval\n"
        "from appliance.pii.de.build import build_model\n"
        "from appliance.pii.de.ler import dev_half_samples\n"
        "from appliance.pii.de.train import Recipe\n"
        "recipe = replace(Recipe(), samples=200, epochs=1)\n"
        "general = [germeval.to_sample(s) for s in germeval.packaged()[0][:30]]\n"
        "sys.exit(child_main(lambda out, report: build_model(out, report, recipe=recipe,\n"
        "                    real=dev_half_samples()[:30], general=general), sys.argv[1:]))\n"
    )
    seen: list[tuple[str, float | None]] = []
    run_child([sys.executable, "-c", script, str(tmp_path / "out")],
              lambda note, fraction=None: seen.append((note, fraction)))
    assert (tmp_path / "out" / MODEL_FILE).is_file()
    notes = [n for n, _ in seen if n]
    assert notes[0] == "word lists loaded"
    assert any(n.startswith("epoch 1/1") for n in notes)
    fractions = [f for _, f in seen if f is not None]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
