"""The German tagger's build reports its progress batch by batch, from its training
processes, through a child's pipe: what a first start shows for its longest step."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

from appliance.pii.de.build import META_FILE, MODEL_FILE, build_model
from appliance.pii.de.ler import dev_half_samples
from appliance.pii.de.train import Recipe
from appliance.progress import run_child

#: Two members in two processes (as on first start), a few hundred samples, one epoch.
SMALL = replace(Recipe(), samples=400, epochs=1, members=2, real_repeat=1)


def test_training_batches_of_both_processes_move_the_fraction(tmp_path: Path) -> None:
    seen: list[tuple[str, float | None]] = []
    build_model(tmp_path, progress=lambda note, fraction=None: seen.append((note, fraction)),
                recipe=SMALL, real=dev_half_samples()[:60])
    assert (tmp_path / MODEL_FILE).is_file() and (tmp_path / META_FILE).is_file()
    fractions = [f for _, f in seen if f is not None]
    assert fractions == sorted(fractions)  # it never goes back
    assert fractions[0] == 0.0 and fractions[-1] == 1.0
    training = {round(f, 4) for f in fractions if 0.08 < f < 0.98}
    # 2 x ~460 samples / 64 per batch: about 16 batches, polled twice a second; at least
    # a few distinct points in between (it does not jump from data to done)
    assert len(training) >= 2, fractions
    notes = [n for n, _ in seen if n]
    assert notes[0] == "loading word lists and the real sentences"
    assert any(n.startswith("training the taggers of seeds") for n in notes)
    assert "exporting the ensemble to ONNX" in notes


def test_the_build_child_relays_its_progress_to_the_parent(tmp_path: Path) -> None:
    """``python -m appliance.pii.de.build DIR`` as ``serve`` runs it: the parent hears the
    phases through the pipe, and the child's own output stays out of the way."""
    script = (
        "import sys\n"
        "from dataclasses import replace\n"
        "from pathlib import Path\n"
        "from appliance.models.child import child_main\n"
        "from appliance.pii.de.build import build_model\n"
        "from appliance.pii.de.ler import dev_half_samples\n"
        "from appliance.pii.de.train import Recipe\n"
        "recipe = replace(Recipe(), samples=200, epochs=1, members=1, real_repeat=1)\n"
        "sys.exit(child_main(lambda out, report: build_model(out, report, recipe=recipe,\n"
        "                    real=dev_half_samples()[:30]), sys.argv[1:]))\n"
    )
    seen: list[tuple[str, float | None]] = []
    run_child([sys.executable, "-c", script, str(tmp_path / "out")],
              lambda note, fraction=None: seen.append((note, fraction)))
    assert (tmp_path / "out" / MODEL_FILE).is_file()
    notes = [n for n, _ in seen if n]
    assert notes[0] == "loading word lists and the real sentences"
    assert "training the tagger of seed 7" in notes
    assert seen[-1][1] == 1.0
