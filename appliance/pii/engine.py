"""Builds the offline Presidio analyzer and turns its results into plain findings.

English uses the small spaCy pipeline from the package registry (no run-time download);
German has no spaCy pipeline on the registry, so it runs on a blank German tokenizer plus
gazetteers and context rules (:mod:`appliance.pii.gazetteer`). Findings are plain frozen
dataclasses so that they cross process boundaries cheaply and carry no text.
"""

from __future__ import annotations

import copy
import logging
import re
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import phonenumbers
import spacy
import tldextract
from presidio_analyzer import AnalyzerEngine, EntityRecognizer, RecognizerRegistry, RecognizerResult
from presidio_analyzer.context_aware_enhancers import LemmaContextAwareEnhancer
from presidio_analyzer.nlp_engine import NerModelConfiguration, NlpArtifacts, SpacyNlpEngine
from presidio_analyzer.predefined_recognizers import (
    CreditCardRecognizer,
    EmailRecognizer,
    IbanRecognizer,
    IpRecognizer,
    PhoneRecognizer,
    UrlRecognizer,
)

from appliance.pii.address import AddressBlockRecognizer, AddressGrammarRecognizer
from appliance.config.pii import PiiConfig
from appliance.pii.findings import Finding, SpecialCategories, resolve_overlaps
from appliance.pii.gazetteer import NameCheckedSpacyRecognizer, build_gazetteer_recognizers
from appliance.pii.greedy_ner import use_greedy_ner
from appliance.pii.recognizers import build_recognizers
from appliance.pii.spacy_ops import use_inference_ops

#: spaCy labels mapped to our entity types (MISC, NORP, dates etc. are not personal data here).
_SPACY_LABELS = {
    "PERSON": "PERSON",
    "PER": "PERSON",
    "GPE": "LOCATION",
    "LOC": "LOCATION",
    "FAC": "LOCATION",
    "ORG": "ORGANIZATION",
}


class _OfflineEmailRecognizer(EmailRecognizer):
    """Presidio's e-mail recognizer validates the domain with tldextract, which fetches the
    public suffix list from the network; this one uses the snapshot tldextract ships."""

    def __init__(self, supported_language: str) -> None:
        super().__init__(supported_language=supported_language, name="EmailRecognizer")
        self._tld = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)

    def validate_result(self, pattern_text: str) -> bool:
        return self._tld(pattern_text).fqdn != ""


class _PhoneRecognizer(PhoneRecognizer):
    """Presidio's phone recognizer (libphonenumber) with European regions added and a base
    score above the engine threshold: a number libphonenumber accepts is worth masking."""

    SCORE = 0.6

    def __init__(self, supported_language: str) -> None:
        super().__init__(
            supported_language=supported_language,
            supported_regions=("DE", "AT", "CH", "US", "UK", "FR", "NL", "IT", "ES", "BE",
                               "IE", "IN", "CA", "BR", "IL", "AU"),
        )

    def analyze(self, text: str, entities: list[str],
                nlp_artifacts: Any = None) -> list[RecognizerResult]:
        """The same numbers, found by reading only the text around digits.

        libphonenumber scans the whole text once per region (16 here); a number and the
        context its matcher reads (a "+" or bracket before it, a letter or a time after
        it, an extension) lie within a few characters of its digits, so each zone of
        text within :data:`_ZONE_MARGIN` characters of a digit is scanned instead.
        Zones never touch, so no match can span two of them.
        """
        results: list[RecognizerResult] = []
        for start, end in _digit_zones(text):
            if sum(c.isdigit() for c in text[start:end]) < _FEWEST_DIGITS:
                continue
            for r in self._analyze_zone(text[start:end], nlp_artifacts):
                r.start += start
                r.end += start
                results.append(r)
        return EntityRecognizer.remove_duplicates(results)

    def _analyze_zone(self, zone: str, nlp_artifacts: Any) -> list[RecognizerResult]:
        """Presidio's matching, region by region, ending early when the first region's
        matches are international numbers that hold every digit of the zone.

        A number written with "+" and its country code parses and validates the same
        whatever region the matcher assumes, and a region can only match where there
        are digits: the other fifteen regions would find exactly those numbers again
        (a 2 KB e-mail thread whose signatures carry "+44 20 ...": 10.1 -> 1.9 ms). Each
        match's number is the one the matcher parsed (Presidio parses it a second time,
        raising for every national number).
        """
        leniency = 1 if self.leniency is None else int(self.leniency)  # Leniency.VALID
        results: list[RecognizerResult] = []
        for k, region in enumerate(self.supported_regions):
            matches = list(phonenumbers.PhoneNumberMatcher(zone, region, leniency=leniency))
            for match in matches:
                found = phonenumbers.region_code_for_number(match.number) or region
                results.append(self._get_recognizer_result(  # type: ignore[no-untyped-call]
                    match, zone, found, nlp_artifacts))
            if k == 0 and matches and _only_international(zone, matches):
                break
        return results


def _only_international(zone: str, matches: list[Any]) -> bool:
    """Whether every match is written with a leading "+" and every digit of ``zone``
    lies inside one of them."""
    if any(not m.raw_string.startswith("+") for m in matches):
        return False
    covered = sum(sum(c.isdigit() for c in m.raw_string) for m in matches)
    return covered == sum(c.isdigit() for c in zone)


#: No number the matcher accepts has fewer digits: it validates each number
#: (``Leniency.VALID``), and no region's numbers have fewer than four (libphonenumber's
#: metadata, every region); a zone with fewer ("report 3", "ext. 12") is not read.
_FEWEST_DIGITS = 4
#: How far from a digit the phone number matcher reads (see :class:`_PhoneRecognizer`).
_ZONE_MARGIN = 40
_DIGITS = re.compile(r"\d+")


def _digit_zones(text: str) -> list[tuple[int, int]]:
    zones: list[tuple[int, int]] = []
    for m in _DIGITS.finditer(text):
        start, end = max(0, m.start() - _ZONE_MARGIN), min(len(text), m.end() + _ZONE_MARGIN)
        if zones and start <= zones[-1][1]:
            zones[-1] = (zones[-1][0], end)
        else:
            zones.append((start, end))
    return zones


#: en_core_web_sm components Presidio never reads (see :class:`_OfflineSpacyEngine`).
_UNUSED_COMPONENTS = ["tok2vec", "parser", "tagger", "attribute_ruler", "lemmatizer"]


class _Artifacts(NlpArtifacts):
    """Presidio's NLP artifacts of a document, its keywords given rather than derived."""

    def __init__(self, doc: Any, lemmas: list[str], keywords: list[str], entities: list[Any],
                 scores: list[float], nlp_engine: SpacyNlpEngine) -> None:
        self.entities = entities
        self.tokens = doc
        self.tokens_indices = [token.idx for token in doc]
        self.lemmas = lemmas
        self.keywords = keywords
        self.nlp_engine = nlp_engine
        self.scores = scores


class _OfflineSpacyEngine(SpacyNlpEngine):
    """spaCy engine that never downloads: English from an installed package, German blank.

    Only NER runs: the parser is a third of the time on short texts, and the tagger and
    lemmatizer another 7% for nothing (context words match the lower-cased word instead,
    as for German; the English benchmark scores identically). The shared ``tok2vec``
    component only fed those: the NER model embeds its own, so running it cost a third
    of a short prompt's analysis (0.64 of 1.9 ms) for output nothing read. The NER's
    decoding loop runs in NumPy (:mod:`appliance.pii.greedy_ner`: same entities, a third
    of the time).
    """

    def __init__(self, en_model: str, languages: Sequence[str]) -> None:
        super().__init__(
            models=[{"lang_code": lang, "model_name": en_model if lang == "en" else "blank"}
                    for lang in languages],
            ner_model_configuration=NerModelConfiguration(
                model_to_presidio_entity_mapping=_SPACY_LABELS,
                labels_to_ignore=["ORG", "ORGANIZATION", "NORP", "DATE", "TIME", "CARDINAL",
                                  "ORDINAL", "MONEY", "PERCENT", "QUANTITY", "PRODUCT",
                                  "EVENT", "WORK_OF_ART", "LAW", "LANGUAGE", "MISC"],
                low_score_entity_names=[],
            ),
        )
        self._en_model = en_model

    def _doc_to_nlp_artifact(self, doc: Any, language: str) -> Any:
        """Presidio's artifacts, with the lower-cased word standing in for the lemma.

        Neither pipeline has a lemmatizer, and Presidio's context words match lemmas, so
        the lower-cased word stands in ("Telefon:" near a number still counts). Presidio
        would read each token's lemma and then look every lemma up in the vocabulary
        twice (stop word? punctuation?), adding a lexeme for each lower-cased form it
        had not seen: a fifth of a long German text's analysis. The token's own lexeme
        answers both (spaCy decides both on the lower-cased text), so the keywords are
        the same list.
        """
        if doc.has_annotation("LEMMA"):
            return super()._doc_to_nlp_artifact(doc, language)
        lemmas = [token.lower_ for token in doc]
        keywords = [
            part
            for token, lemma in zip(doc, lemmas, strict=True)
            if not token.is_stop and not token.is_punct and lemma != "be"
            for part in lemma.split(":")
        ]
        entities, scores = self._get_updated_entities(
            self._get_entities(doc), self._get_scores_for_entities(doc)
        )
        return _Artifacts(doc, lemmas, keywords, entities, scores, self)

    def load(self) -> None:
        nlp: dict[str, Any] = {}
        for model in self.models:
            lang = model["lang_code"]
            if model["model_name"] == "blank":
                nlp[lang] = spacy.blank(lang)
            else:
                nlp[lang] = spacy.load(model["model_name"], exclude=_UNUSED_COMPONENTS)
                use_inference_ops(nlp[lang])
                use_greedy_ner(nlp[lang])
        self.nlp = nlp  # type: ignore[assignment]


def build_analyzer(config: PiiConfig) -> AnalyzerEngine:
    """A warm analyzer for ``config.languages``; loads models (seconds), call once per worker."""
    languages: list[str] = list(config.languages)
    nlp = _OfflineSpacyEngine(config.spacy_model_en, languages)
    nlp.load()
    registry = RecognizerRegistry(supported_languages=languages)
    for lang in languages:
        registry.add_recognizer(_OfflineEmailRecognizer(supported_language=lang))
        registry.add_recognizer(CreditCardRecognizer(supported_language=lang))
        registry.add_recognizer(IpRecognizer(supported_language=lang))
        registry.add_recognizer(UrlRecognizer(supported_language=lang))
        registry.add_recognizer(IbanRecognizer(supported_language=lang))
        registry.add_recognizer(_PhoneRecognizer(supported_language=lang))
    if "en" in languages:
        registry.add_recognizer(NameCheckedSpacyRecognizer(supported_language="en", ner_strength=0.85))
        from presidio_analyzer.predefined_recognizers import (
            UsLicenseRecognizer,
            UsPassportRecognizer,
            UsSsnRecognizer,
        )

        for us in (UsSsnRecognizer, UsLicenseRecognizer, UsPassportRecognizer):
            registry.add_recognizer(us(supported_language="en"))
    for rec in build_recognizers(tuple(languages)):
        registry.add_recognizer(rec)
    # German persons and places: the trained tagger, which also arbitrates the German
    # gazetteer's findings (appliance.pii.de); other languages use the gazetteer directly.
    for gazetteer in build_gazetteer_recognizers(tuple(lang for lang in languages if lang != "de")):
        registry.add_recognizer(gazetteer)
    if "de" in languages:
        from appliance.pii.de.recognizer import build_german_recognizer

        registry.add_recognizer(build_german_recognizer())
    for lang in languages:
        registry.add_recognizer(AddressBlockRecognizer(lang))
    if "en" in languages:
        registry.add_recognizer(AddressGrammarRecognizer("en"))
    _quiet_presidio()
    return AnalyzerEngine(
        registry=registry,
        nlp_engine=nlp,
        supported_languages=languages,
        default_score_threshold=config.score_threshold,
        context_aware_enhancer=_IndexedContextEnhancer(),
    )


class _IndexedContextEnhancer(LemmaContextAwareEnhancer):
    """Presidio's context enhancer, finding each result's token by bisection and copying
    only what it changes.

    Presidio looks up the token at a result's start by walking the document's tokens
    from the first one, once per result: quadratic in the text's length, and half of
    the whole analysis on a 4,000-character piece (2.3 of 5.8 s under the profiler).
    The token chosen is the same: the first whose end lies beyond the start.

    It also deep-copies every raw result before raising scores, which walks each
    result's explanation and metadata: 86% of the enhancer's time on a 20 KB context
    (0.59 of 0.69 s for three, 2,773 results). Only a result's score and explanation
    change, so each copy gets its own explanation and metadata and shares the rest;
    the raw results stay as they were, as with the deep copy. The loop is Presidio's.
    """

    def __init__(self) -> None:
        super().__init__()
        self._ends: list[int] = []

    def enhance_using_context(self, text: str, raw_results: list[RecognizerResult],
                              nlp_artifacts: Any, recognizers: list[Any],
                              context: list[str] | None = None) -> list[RecognizerResult]:
        results = [_copied(r) for r in raw_results]
        if nlp_artifacts is None:
            return results
        tokens = getattr(nlp_artifacts, "tokens", None)
        self._ends = ([] if tokens is None else
                      [int(idx) + len(tok) for tok, idx in zip(tokens, nlp_artifacts.tokens_indices,
                                                               strict=True)])
        by_id = {recognizer.id: recognizer for recognizer in recognizers}
        given = [word.lower() for word in context or ()]
        try:
            for result in results:
                meta = result.recognition_metadata or {}
                recognizer = by_id.get(meta.get(RecognizerResult.RECOGNIZER_IDENTIFIER_KEY))
                if (recognizer is None or not recognizer.context
                        or meta.get(RecognizerResult.IS_SCORE_ENHANCED_BY_CONTEXT_KEY)):
                    continue
                surrounding = self._extract_surrounding_words(
                    nlp_artifacts=nlp_artifacts, word=text[result.start:result.end],
                    start=result.start)
                surrounding.extend(given)
                word = self._find_supportive_word_in_context(
                    surrounding, recognizer.context, self.context_matching_mode)
                if word != "":
                    score = max(result.score + self.context_similarity_factor,
                                self.min_score_with_context_similarity)
                    result.score = min(score, self.MAX_SCORE)
                    result.analysis_explanation.set_supportive_context_word(word)
                    result.analysis_explanation.set_improved_score(result.score)
        finally:
            self._ends = []
        return results

    def _find_index_of_match_token(  # type: ignore[override]
        self, word: str, start: int, tokens: Any, tokens_indices: list[int]
    ) -> int:
        i = bisect_right(self._ends, start)
        if i == len(self._ends):
            raise ValueError("the result's start lies beyond the last token")
        return i


def _copied(result: RecognizerResult) -> RecognizerResult:
    """``result`` with its own explanation and metadata (what context enhancement changes)."""
    out = copy.copy(result)
    out.analysis_explanation = copy.copy(result.analysis_explanation)
    if result.recognition_metadata is not None:
        out.recognition_metadata = dict(result.recognition_metadata)
    return out


def _quiet_presidio() -> None:
    """Presidio warns per call about unsupported entities; nothing in it is useful to operators."""
    logging.getLogger("presidio-analyzer").setLevel(logging.ERROR)


def special_layer(
    special: SpecialCategories, text: str, language: str, identifiers: list[Finding],
    *, resolved: bool,
) -> list[Finding]:
    """``identifiers`` with the special-category findings of ``text`` added.

    Resolved identifiers: as the detector links them. Unresolved ones (a piece of a long
    text, which the pool merges and resolves later): each special's ``person`` indexes
    the raw list, at the raw PERSON finding that covers most of the resolved person it
    concerns, so the link survives the merge (:func:`appliance.pii.findings.with_specials`).
    """
    if resolved:
        return special.findings(text, language, identifiers)
    persons = [f for f in resolve_overlaps(identifiers) if f.entity_type == "PERSON"]
    raw = [(f.start, f.end, k) for k, f in enumerate(identifiers) if f.entity_type == "PERSON"]
    out = list(identifiers)
    for f in special.detect(text, language, [(p.start, p.end) for p in persons]):
        person = None
        if f.person is not None:
            p = persons[f.person]
            overlap, k = max(((min(e, p.end) - max(s, p.start), k) for s, e, k in raw),
                             default=(0, -1))
            person = k if overlap > 0 else None
        out.append(replace(f, person=person))
    return out


def analyze_texts(
    analyzer: AnalyzerEngine,
    texts: Sequence[str],
    languages: Sequence[str],
    ignore: frozenset[str] = frozenset(),
    special: SpecialCategories | None = None,
    *,
    resolve: bool = True,
) -> list[list[Finding]]:
    """Analyze a batch; spaCy sees all texts of one language in one ``pipe`` call.

    ``resolve=False`` leaves overlapping findings in (sorted by start): the pool
    resolves them once after merging the pieces of a long text, as for one analysis.
    With ``special``, each text's findings also hold its special-category findings. They
    overlap identifiers freely (they are a separate layer, not spans to replace), so they
    join after the identifiers' overlaps are resolved (with ``resolve=False``, a special
    finding's ``person`` indexes the unresolved list: see :func:`special_layer`).
    """
    out: list[list[Finding]] = [[] for _ in texts]
    by_lang: dict[str, list[int]] = {}
    for i, (text, lang) in enumerate(zip(texts, languages, strict=True)):
        if text.strip():
            by_lang.setdefault(lang, []).append(i)
    for lang, idx in by_lang.items():
        # Recognizers of ignored types only (URLs) are not run at all: Presidio resolves
        # duplicates within one type, so their findings never shaped the others.
        wanted = [e for e in analyzer.get_supported_entities(lang) if e not in ignore]
        # spaCy adds every word it has not seen to its vocabulary and string store, for
        # good: a worker reading unique names, codes and addresses grew by 1.5 MiB per
        # 1,000 requests in the soak. Inside a memory zone those entries are dropped when
        # the batch is done; nothing of a Doc outlives it (findings are offsets and types).
        with analyzer.nlp_engine.nlp[lang].memory_zone():  # type: ignore[attr-defined]
            docs = analyzer.nlp_engine.process_batch(
                [texts[i] for i in idx], language=lang, batch_size=min(len(idx), 64)
            )
            for i, (_, artifacts) in zip(idx, docs, strict=True):
                results = analyzer.analyze(texts[i], language=lang, entities=wanted,
                                           nlp_artifacts=artifacts)
                found = [_finding(r) for r in results if r.entity_type not in ignore]
                out[i] = resolve_overlaps(found) if resolve else sorted(found, key=_by_start)
                if special is not None:
                    out[i] = special_layer(special, texts[i], lang, out[i], resolved=resolve)
    return out


def _by_start(f: Finding) -> tuple[int, int, str]:
    return (f.start, f.end, f.entity_type)


def _finding(r: RecognizerResult) -> Finding:
    meta = r.recognition_metadata or {}
    return Finding(
        entity_type=r.entity_type,
        start=r.start,
        end=r.end,
        score=round(float(r.score), 3),
        recognizer=str(meta.get(RecognizerResult.RECOGNIZER_NAME_KEY, "unknown")),
    )


#: Kept under its old name for callers and tests that import it from here.
_resolve_overlaps = resolve_overlaps
