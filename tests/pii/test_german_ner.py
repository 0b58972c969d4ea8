"""The German tagger: generated training data, features, decoding, and the built model itself.

The model is built once per machine (cached by recipe fingerprint, under a file lock, so
parallel test workers share one build); the sentences here are written for these tests,
none comes from the evaluation set (the tagger trains on its DEV half, see
test_german_ler_data.py).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from presidio_analyzer import AnalyzerEngine

from appliance.pii.de import germeval
from appliance.pii.de.build import build_model, ensure_model, fingerprint, is_built
from appliance.pii.de.features import BUCKETS, TAGS, Featurizer, Token, tokenize
from appliance.pii.de.lexicon import load_lexicon
from appliance.pii.de.ler import dev_half, dev_half_samples
from appliance.pii.de.recognizer import Arbitration, GermanNerRecognizer, GermanTagger, _decode
from appliance.pii.de.synth import generate
from appliance.pii.de.train import MODEL_FILE, Recipe
from appliance.pii.de.wiktionary import load_wiktionary_nouns
from appliance.pii.engine import analyze_texts


@pytest.fixture(scope="session")
def model_dir() -> Path:
    return ensure_model()


@pytest.fixture(scope="session")
def tagger(model_dir: Path) -> GermanTagger:
    return GermanTagger(model_dir)


def _found(tagger: GermanTagger, text: str) -> set[tuple[str, str]]:
    return {(s.entity, text[s.start:s.end]) for s in tagger.tag(text)}


# -- generated data ---------------------------------------------------------------------


def test_generated_samples_are_reproducible_and_labelled_on_token_boundaries() -> None:
    lex = load_lexicon()
    a, b = generate(lex, 300, seed=3), generate(lex, 300, seed=3)
    assert a == b
    assert generate(lex, 300, seed=4) != a
    labels = {label for s in a for *_, label in s.spans}
    assert labels == {"PER", "LOC"}
    for s in a:
        tags = s.tags()
        tokens = tokenize(s.text)
        assert len(tags) == len(tokens)
        for start, end, label in s.spans:
            inside = [TAGS[t] for t, tok in zip(tags, tokens, strict=True)
                      if tok.start >= start and tok.end <= end]
            assert inside and inside[0] == f"B-{label}"
            assert all(t == f"I-{label}" for t in inside[1:])


def test_generated_data_holds_negatives_with_names_and_places_in_them() -> None:
    """Citations and court names carry surnames and towns that must stay ordinary words."""
    lex = load_lexicon()
    samples = generate(lex, 2000, seed=5)
    unlabelled_places = 0
    for s in samples:
        covered = [(a, b) for a, b, _ in s.spans]
        for tok in tokenize(s.text):
            if tok.text in lex.places and not any(a <= tok.start < b for a, b in covered):
                unlabelled_places += 1
    assert unlabelled_places > 20
    assert sum(1 for s in samples if not s.spans) > len(samples) // 4


# -- decoding and chunking ------------------------------------------------------------------


def _tok(text: str, start: int) -> Token:
    return Token(text, start, start + len(text), False, False)


def test_decode_joins_bio_runs_and_opens_on_stray_inside_tags() -> None:
    tokens = [_tok("Herr", 0), _tok("Max", 5), _tok("Müller", 9), _tok("in", 16), _tok("Köln", 19)]
    probs = np.zeros((5, len(TAGS)), dtype=np.float32)
    for i, tag in enumerate(["O", "B-PER", "I-PER", "O", "I-LOC"]):
        probs[i, TAGS.index(tag)] = 0.9
    spans = _decode(tokens, probs)
    assert [(s.entity, s.start, s.end) for s in spans] == [("PERSON", 5, 15), ("LOCATION", 19, 23)]
    assert all(s.score == pytest.approx(0.9) for s in spans)


def test_feature_ids_are_the_same_in_every_process() -> None:
    """Hashed features must not depend on Python's per-process string hash seed: the model
    is trained in one process and served in others."""
    text = "Frau Anna Schmidt aus Hamburg rief an."
    ids, starts = Featurizer(load_lexicon()).ids(tokenize(text))
    code = ("from appliance.pii.de.features import Featurizer, tokenize\n"
            "from appliance.pii.de.lexicon import load_lexicon\n"
            f"ids, starts = Featurizer(load_lexicon()).ids(tokenize({text!r}))\n"
            "print(ids.tolist(), starts.tolist())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONHASHSEED": "12345", "PATH": "/usr/bin:/bin",
                              "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
    assert out.stdout.split("\n")[-2] == f"{ids.tolist()} {starts.tolist()}"
    assert len(starts) == len(tokenize(text)) and 0 <= ids.min() and ids.max() < BUCKETS


def test_the_word_cache_of_a_serving_tagger_stays_bounded() -> None:
    featurizer = Featurizer(load_lexicon(), cache_words=50)
    first = featurizer.ids(tokenize("Herr Müller aus Köln"))
    for k in range(30):
        featurizer.ids(tokenize(" ".join(f"Wort{k}x{j}" for j in range(10))))
        assert featurizer.cached_words() <= 50
    again = featurizer.ids(tokenize("Herr Müller aus Köln"))  # recomputed: the same ids
    assert all((a == b).all() for a, b in zip(first, again, strict=True))


def test_build_reports_progress_per_stage_and_epoch(tmp_path: Path) -> None:
    """A small build (the real code path) says what it does and how far it is."""
    said: list[tuple[str, float | None]] = []
    recipe = replace(Recipe(), samples=200, epochs=2)
    meta = build_model(tmp_path, lambda note, fraction=None: said.append((note, fraction)),
                       recipe=recipe, real=dev_half_samples()[:50],
                       general=[germeval.to_sample(s) for s in germeval.packaged()[0][:50]])
    assert is_built(tmp_path) and meta["real_sentences"] == 50
    shares = [f for _, f in said if f is not None]
    assert shares == sorted(shares) and shares[-1] == 1.0  # it never goes back
    notes = [n for n, _ in said]
    assert any("epoch 1/2" in n for n in notes) and any("epoch 2/2" in n for n in notes)
    assert any("features" in n for n in notes)


# -- the built model ---------------------------------------------------------------------


def test_model_directory_is_complete_and_matches_this_code(model_dir: Path) -> None:
    assert is_built(model_dir)
    meta = json.loads((model_dir / "meta.json").read_text("utf-8"))
    assert meta["tags"] == list(TAGS)
    assert meta["fingerprint"] == fingerprint()
    assert meta["real_sentences"] == len(dev_half())  # the LER DEV half, nothing more
    # GermEval's train and tune parts, never its held-out half.
    assert meta["general_sentences"] == sum(map(len, germeval.packaged()))
    assert (model_dir / MODEL_FILE).stat().st_size < 10_000_000


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Der Kläger, Herr Max Müller aus Köln, hat Berufung eingelegt.",
         {("PERSON", "Max Müller"), ("LOCATION", "Köln")}),
        ("Die Zeugin Sabine Hoffmann wohnt seit 2015 in Leipzig.",
         {("PERSON", "Sabine Hoffmann"), ("LOCATION", "Leipzig")}),
        ("Sehr geehrte Frau Schneider,\nvielen Dank für Ihre Nachricht.",
         {("PERSON", "Schneider")}),
        ("Mit freundlichen Grüßen\nJürgen Becker", {("PERSON", "Jürgen Becker")}),
        ("Der Beschwerdeführer reiste 2016 aus Afghanistan nach Deutschland ein.",
         {("LOCATION", "Afghanistan"), ("LOCATION", "Deutschland")}),
        ("Der Angeklagte K. entfernte sich vom Unfallort, ohne dem Zeugen M. Angaben zu machen.",
         {("PERSON", "K."), ("PERSON", "M.")}),
    ],
)
def test_tagger_finds_german_persons_and_places(
    tagger: GermanTagger, text: str, expected: set[tuple[str, str]]
) -> None:
    assert expected <= _found(tagger, text)


@pytest.mark.parametrize(
    "text",
    [
        "Die Kostenentscheidung beruht auf § 154 Abs. 2 VwGO.",
        "Der Anspruch besteht in Höhe von 1.200 Euro und kommt in Betracht.",
        "Die Revision ist zulässig, aber unbegründet.",
        "Das Gesetz trat am 1. Januar 2015 in Kraft.",
    ],
)
def test_tagger_leaves_ordinary_legal_german_alone(model_dir: Path, text: str) -> None:
    """Nothing the tagger is sure enough of to report (its doubts stay below the bar)."""
    rec = GermanNerRecognizer(model_dir)
    assert rec.analyze(text, ["PERSON", "LOCATION"]) == []


def test_recognizer_reports_through_presidio(model_dir: Path) -> None:
    rec = GermanNerRecognizer(model_dir)
    results = rec.analyze("Frau Anna Schmidt aus Hamburg rief an.", ["PERSON", "LOCATION"])
    found = {(r.entity_type, r.start, r.end) for r in results}
    assert ("PERSON", 5, 17) in found and ("LOCATION", 22, 29) in found
    assert all(r.recognition_metadata["recognizer_name"] == "GermanNerRecognizer"
               for r in results)
    assert rec.analyze("Frau Anna Schmidt aus Hamburg rief an.", ["EMAIL_ADDRESS"]) == []


def test_arbitration_thresholds_decide_what_the_tagger_adds(model_dir: Path) -> None:
    text = "Frau Anna Schmidt aus Hamburg rief an."
    rec = GermanNerRecognizer(model_dir)
    assert {r.entity_type for r in rec.analyze(text, ["PERSON", "LOCATION"])} == {
        "PERSON", "LOCATION"}
    rec.arbitration = Arbitration(add_person=1.01, add_location=1.01)
    assert rec.analyze(text, ["PERSON", "LOCATION"]) == []


def test_analyzer_uses_the_tagger_for_german(analyzer: AnalyzerEngine, model_dir: Path) -> None:
    """A surname no name list holds, a town no place list holds: the tagger finds both
    (the analyzer reports each once, from whichever part is surer)."""
    text = "Die Richterin Lachenmayr wohnt in Gelsenkirchen-Buer."
    tagger_only = GermanNerRecognizer(model_dir).analyze(text, ["PERSON", "LOCATION"])
    assert {(r.entity_type, text[r.start:r.end]) for r in tagger_only} >= {
        ("PERSON", "Lachenmayr"), ("LOCATION", "Gelsenkirchen-Buer")}
    (findings,) = analyze_texts(analyzer, [text], ["de"])
    found = {(f.entity_type, text[f.start:f.end]) for f in findings}
    assert {("PERSON", "Lachenmayr"), ("LOCATION", "Gelsenkirchen-Buer")} <= found


def test_rule_findings_pass_through_the_arbitration(analyzer: AnalyzerEngine) -> None:
    """Gazetteer findings survive Presidio's per-recognizer bookkeeping (same request)."""
    text = "Der Zeuge B. hat ausgesagt."
    (findings,) = analyze_texts(analyzer, [text], ["de"])
    assert any(text[f.start:f.end] == "B." and f.entity_type == "PERSON" for f in findings)


# -- word lists from Wiktionary ------------------------------------------------------------


def test_wiktionary_lists_hold_big_towns_exonyms_and_inflected_forms() -> None:
    wiki = load_wiktionary_nouns()
    assert {"Nürnberg", "Köln", "Moskau", "Warschau", "Deutschlands"} <= wiki.places
    assert "Essen" in wiki.ambiguous_places  # the town and the meal: context decides
    assert {"Raum", "Räumen", "Urlaub"} <= wiki.common
    assert "Raum" not in wiki.places
    lex = load_lexicon()
    assert {"Nürnberg", "Moskau"} <= lex.places and "Essen" not in lex.places


# -- the whole German analyzer: tagger plus gazetteer rules -------------------------------


def _german(analyzer: AnalyzerEngine, text: str) -> set[tuple[str, str]]:
    (findings,) = analyze_texts(analyzer, [text], ["de"])
    return {(f.entity_type, text[f.start:f.end]) for f in findings}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Die Beklagte hat ihren Sitz in Nürnberg und eine Niederlassung in Warschau.",
         {("LOCATION", "Nürnberg"), ("LOCATION", "Warschau")}),
        ("Die Rettungswachen in A, B, C und D sind rund um die Uhr besetzt.",
         {("LOCATION", "A"), ("LOCATION", "B"), ("LOCATION", "C"), ("LOCATION", "D")}),
        ("In seinem Gutachten führte der Sachverständige ( K ) aus, die Messung sei fehlerhaft.",
         {("PERSON", "K")}),
        ("Die Revision wird zurückgewiesen.\nFischer", {("PERSON", "Fischer")}),
        ("D3 SCHNEIDERHAN, Walter: Thin film sensors for optical networks, Seiten 1 - 9",
         {("PERSON", "SCHNEIDERHAN, Walter")}),
        ("Die Richter Albrecht und Kunkelmann haben an der Entscheidung mitgewirkt.",
         {("PERSON", "Albrecht"), ("PERSON", "Kunkelmann")}),
        ("Die Revision wird zurückgewiesen.\nHollerbaum", {("PERSON", "Hollerbaum")}),
        ("Die Klägerin wohnt in der Lindenstraße 7 in Jena.",
         {("ADDRESS", "Lindenstraße 7"), ("LOCATION", "Jena")}),
        ("Das Land Brandenburg und der Freistaat Sachsen haben Stellung genommen.",
         {("LOCATION", "Brandenburg"), ("LOCATION", "Sachsen")}),
    ],
)
def test_analyzer_finds_places_and_persons_german_decisions_name(
    analyzer: AnalyzerEngine, text: str, expected: set[tuple[str, str]]
) -> None:
    """Each expected phrase lies inside a finding of its type (LER, which the tagger now
    learns from, takes "Freistaat Sachsen" whole; the redaction covers Sachsen either way)."""
    (findings,) = analyze_texts(analyzer, [text], ["de"])
    for entity, phrase in expected:
        where = re.search(rf"(?<!\w){re.escape(phrase)}(?!\w)", text)
        assert where is not None
        assert any(f.entity_type == entity and f.start <= where.start() and where.end() <= f.end
                   for f in findings), (entity, phrase, _german(analyzer, text))


@pytest.mark.parametrize(
    "text",
    [
        "Hiergegen wendet sich die Revision (vgl. OLG Karlsruhe, Beschluss vom 3. Mai 2010).",
        "Ebenso LG Lübeck, Urteil vom 2. März 2001, und SG München, Beschluss vom 4. Mai 2011.",
        "Der Vertrag trat mit Unterzeichnung in Kraft und die Beklagte geriet in Verzug.",
        "Die Stufenlaufzeit bestimmt sich nach § 14 TV-Ärzte Hessen und § 3 Schulgesetz Bayern.",
        "Die Richterin Albers und Kollegen haben beraten.\nGründe",
    ],
)
def test_courts_laws_and_ordinary_nouns_are_no_persons_or_places(
    analyzer: AnalyzerEngine, text: str
) -> None:
    found = _german(analyzer, text) - {("PERSON", "Albers")}
    assert not {f for f in found if f[0] in {"PERSON", "LOCATION"}}
