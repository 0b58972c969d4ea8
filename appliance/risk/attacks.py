"""The prompt-attack screen: prompt injection and jailbreak attempts, EN + DE.

An attack is text that tries to make the model follow *its* instructions instead of the
operator's and the caller's: override the instructions ("ignore all previous
instructions", "vergiss deine Vorgaben"), extract the system prompt, switch the model
into an unrestricted persona (DAN, developer mode), forge a system turn with chat
delimiters, smuggle the instruction encoded, or, inside a tool result or a retrieved
document, address the model directly to make it exfiltrate data or act for the author.

What the screen reads is split by where it arrives (:func:`attack_sources`): the caller's
own words (``request``), tool results coming back into the conversation (``tool_result``),
and documents pasted into a user turn after the caller's question (``retrieved``). Text
from a tool or a document has no business addressing the model at all, so some rules
fire only there; a policy may also treat those places more strictly.

The rules are data (``risk/data/prompt_attacks.yaml``): each names its technique, a
weight, the regular expressions that must all match, and the ones that veto it (the
hard negatives: "ignore the typos", "act as an interviewer"). A text's score combines
the weights of every rule that fires, each technique counted once, as independent
evidence (``1 - prod(1 - w)``), so two weak cues ("from now on" and "no restrictions")
together reach what one strong cue reaches alone. Base64 runs and reversed text are
decoded and read again. Pure CPU, well under a millisecond per kilobyte; never logs text.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re
import unicodedata
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
import numpy.typing as npt
import yaml

from appliance.errors import ConfigError
from appliance.risk.attack_head import AttackHead
from appliance.risk.literals import literal_prefixes, lowered, search_from
from appliance.risk.taxonomy import read_yaml
from appliance.risk.text import content_text

#: Where an attack text arrived: the caller's own turn, a tool's result, a document
#: pasted into the caller's turn after the question.
Where = Literal["request", "tool_result", "retrieved"]
PLACES: tuple[Where, ...] = get_args(Where)

#: Routes whose text a model reads as instructions (embeddings and moderations do not).
SCREENED_ROUTES = frozenset({"chat.completions", "completions", "messages", "responses"})

_ZERO_WIDTH = re.compile("[\u200b\u200c\u200d\u2060\ufeff\u00ad]")
_SPACES = re.compile(r"[ \t\u00a0]+")
_BASE64 = re.compile(r"(?<![A-Za-z0-9+/=])[A-Za-z0-9+/]{16,}={0,2}(?![A-Za-z0-9+/=])")
#: A base64 run inside a data URI or after "base64," is a file, not a message.
_DATA_URI = re.compile(r"(data:[\w/+.-]+;base64,|base64\s*\)?\s*[:,])\s*$", re.IGNORECASE)
_HEX = re.compile(r"(?<![0-9a-fA-F])(?:[0-9a-fA-F]{2}){12,}(?![0-9a-fA-F])")
_BINARY = re.compile(r"(?:\b[01]{8}\b\s?){6,}")
_BASE32 = re.compile(r"(?<![A-Za-z0-9])[A-Z2-7]{24,}={0,6}(?![A-Za-z0-9])")
_PERCENT = re.compile(r"(%[0-9A-Fa-f]{2}[^%]{0,12}){3,}")
_U_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")
#: Words with digits standing for letters ("1gn0r3"), counted before reading them as letters.
_LEET = re.compile(r"(?<!\\)\b(?=\w*[a-z])(?=\w*[013457@$])[a-z013457@$]{3,}\b", re.IGNORECASE)
_LEET_MAP = str.maketrans("013457@$", "oieastas")
#: Five or more single letters in a row, spaced apart ("I g n o r e").
_SPACED = re.compile(r"\b(?:\w ){4,}\w\b")
#: Texts up to this length are also read ROT13-decoded and reversed.
_SHORT = 2000
_WORD = re.compile(r"[^\W\d_]+")
_COMMON = frozenset(
    "the a an and or of to in is are be you your i me my it this that for on with as at by "
    "from not all what how please can will do der die das und oder ist sind ein eine zu in "
    "mit für auf von du dein deine ich mir bitte nicht den dem des wie was es".split()
)


@dataclass(frozen=True, slots=True)
class AttackSource:
    """One piece of text of a request and where it arrived."""

    where: Where
    text: str


@dataclass(frozen=True, slots=True)
class AttackRule:
    """Fires when every pattern of ``all`` matches and none of ``unless`` does, in a text
    arriving at one of ``places``."""

    id: str
    technique: str
    weight: float
    all: tuple[re.Pattern[str], ...]
    unless: tuple[re.Pattern[str], ...] = ()
    places: frozenset[str] = frozenset(PLACES)
    #: Per pattern of ``all`` whose matches must contain one of a few literals: those
    #: literals (lower case). A cheap substring test that skips most regex searches.
    gates: tuple[frozenset[str], ...] = ()

    def fires(self, text: str, where: Where, low: str | None = None) -> bool:
        """``low``: :func:`appliance.risk.literals.lowered` of ``text`` (None: searched
        whole, gated on ``text.lower()``)."""
        if where not in self.places:
            return False
        gated = low if low is not None else text.lower()
        if not all(any(g in gated for g in gate) for gate in self.gates):
            return False
        return all(search_from(p, text, low) for p in self.all) and not any(
            search_from(p, text, low) for p in self.unless
        )


@dataclass(frozen=True, slots=True)
class AttackScore:
    """The screen's verdict on one text (or on a whole request: its strongest text)."""

    score: float
    where: Where | None = None
    technique: str | None = None
    #: Ids of the rules that fired (names, never matched text).
    rules: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class AttackResult:
    """The request's strongest attack text, and the best score per place."""

    top: AttackScore
    by_place: Mapping[str, float]


def _normalise(text: str) -> str:
    """NFKC (full-width and look-alike letters), \\u escapes as the characters they stand
    for (JSON tool results write umlauts so; attackers hide words so), no zero-width
    characters, one space."""
    if "\\u" in text:
        text = _U_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text)
    return _SPACES.sub(" ", _ZERO_WIDTH.sub("", unicodedata.normalize("NFKC", text)))


def _printable(decoded: str) -> bool:
    return bool(decoded) and (
        sum(c.isprintable() or c.isspace() for c in decoded) / len(decoded) > 0.95
    )


def _base64_runs(text: str) -> list[str]:
    """Printable text hidden in base64 runs (not data URIs: those are files)."""
    out: list[str] = []
    for m in _BASE64.finditer(text):
        if _DATA_URI.search(text[max(0, m.start() - 40) : m.start()]):
            continue
        run = m.group(0)
        try:
            decoded = base64.b64decode(run + "=" * (-len(run) % 4), validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            continue
        if _printable(decoded):
            out.append(decoded)
    return out


def _bytes_runs(text: str) -> list[str]:
    """Text hidden as hex, binary octets or base32."""
    out: list[str] = []
    for m in _HEX.finditer(text):
        try:
            out.append(bytes.fromhex(m.group(0)).decode("utf-8"))
        except ValueError:
            continue
    for m in _BINARY.finditer(text):
        octets = m.group(0).split()
        try:
            out.append(bytes(int(o, 2) for o in octets).decode("utf-8"))
        except ValueError:
            continue
    for m in _BASE32.finditer(text):
        run = m.group(0)
        try:
            out.append(base64.b32decode(run + "=" * (-len(run) % 8)).decode("utf-8"))
        except (binascii.Error, ValueError):
            continue
    return [d for d in out if _printable(d)]


def _variants(text: str) -> list[str]:
    """The text as an attacker may have hidden it, decoded: base64, hex, binary and
    base32 runs, percent-escapes, Unicode tag characters, leetspeak, letters
    spaced apart, and (for texts short enough to read twice) ROT13 and reversed text."""
    out = _base64_runs(text) + _bytes_runs(text)
    if _PERCENT.search(text):
        out.append(urllib.parse.unquote(text))
    tags = "".join(chr(ord(c) - 0xE0000) for c in text if 0xE0020 <= ord(c) <= 0xE007E)
    if len(tags) >= 8:
        out.append(tags)
    if len(_LEET.findall(text)) >= 3:
        out.append(text.translate(_LEET_MAP))
    if _SPACED.search(text):
        out.append(_SPACED.sub(lambda m: m.group(0).replace(" ", ""), text))
    if len(text) <= _SHORT and not _reads_as_language(text):
        out.append(codecs.encode(text, "rot13"))
        out.append(text[::-1])
    return out


def _reads_as_language(text: str) -> bool:
    """Whether common English or German words make up a fair share of the text: ROT13
    and reversed text have none, so only texts without them are read decoded."""
    words = _WORD.findall(text.lower())
    return len(words) < 4 or sum(w in _COMMON for w in words) / len(words) >= 0.08


class PromptAttackScreen:
    """Scores texts against the attack rules, and the latest user turn's vector against
    the learned head when both are at hand; immutable, so safe across threads."""

    def __init__(
        self,
        rules: Sequence[AttackRule],
        *,
        head: AttackHead | None = None,
        max_chars: int = 20000,
    ) -> None:
        self.rules = tuple(rules)
        self.head = head
        self.max_chars = max_chars

    def score(self, text: str, where: Where = "request") -> AttackScore:
        """The attack score of one text arriving at ``where``."""
        text = _normalise(text[: self.max_chars])
        if not text.strip():
            return AttackScore(0.0)
        fired = self._fired(text, where)
        for variant in _variants(text):
            decoded = self._fired(_normalise(variant), where)
            if decoded:
                # The decoded text's own finding, under its technique; hiding counts as one.
                best = max(decoded, key=lambda r: r.weight)
                fired.append(
                    AttackRule("decoded:" + best.id, "encoding", min(1.0, best.weight), ())
                )
        return self._combine(fired, where)

    def _fired(self, text: str, where: Where) -> list[AttackRule]:
        low = lowered(text)
        return [r for r in self.rules if r.fires(text, where, low)]

    @staticmethod
    def _combine(fired: Iterable[AttackRule], where: Where) -> AttackScore:
        # One piece of evidence per technique (its strongest rule), combined as independent.
        strongest: dict[str, AttackRule] = {}
        for r in fired:
            if r.weight > 0 and (r.technique not in strongest or r.weight > strongest[r.technique].weight):
                strongest[r.technique] = r
        if not strongest:
            return AttackScore(0.0)
        miss = 1.0
        for r in strongest.values():
            miss *= 1.0 - r.weight
        top = max(strongest.values(), key=lambda r: r.weight)
        rules = tuple(sorted(r.id for r in strongest.values()))
        return AttackScore(round(1.0 - miss, 3), where, top.technique, rules)

    def scan(
        self,
        sources: Iterable[AttackSource],
        vector: npt.NDArray[np.float32] | None = None,
        vector_place: Where | None = "request",
    ) -> AttackResult:
        """The strongest text of a request and the best score per place. ``vector`` (the
        multilingual encoder's vector of the latest user turn, whose text arrived at
        ``vector_place``) adds the learned head's evidence to that place's best text."""
        best: dict[str, AttackScore] = {p: AttackScore(0.0) for p in PLACES}
        for s in sources:
            found = self.score(s.text, s.where)
            if found.score > best[s.where].score:
                best[s.where] = found
        if vector is not None and vector_place is not None and self.head is not None:
            learned = self.head.score(vector)
            if learned > 0.0:
                base = best[vector_place]
                best[vector_place] = AttackScore(
                    round(1.0 - (1.0 - base.score) * (1.0 - learned), 3),
                    vector_place,
                    base.technique or "learned",
                    tuple(sorted((*base.rules, "learned_head"))),
                )
        top = max(best.values(), key=lambda a: a.score)
        return AttackResult(top if top.score > 0 else AttackScore(0.0),
                            {p: a.score for p, a in best.items()})


# -- the policy's thresholds, where Python applies them ------------------------------------


@dataclass(frozen=True, slots=True)
class AttackLimits:
    """``policies/data/prompt_attacks.yaml``: the flag threshold and the block threshold
    per place. The policy applies them to requests; the answer stage applies them to MCP
    tool results, which no later policy decision sees."""

    flag: float = 0.5
    block: Mapping[str, float] = field(
        default_factory=lambda: {"request": 0.9, "retrieved": 0.8, "tool_result": 0.7}
    )

    def action(self, score: float, where: Where) -> Literal["block", "flag", "allow"]:
        if score >= self.block.get(where, 1.01):
            return "block"
        return "flag" if score >= self.flag else "allow"


def read_attack_limits(path: Path) -> AttackLimits:
    """The thresholds in ``path``; the shipped defaults when it does not exist."""
    try:
        raw = yaml.safe_load(path.read_text("utf-8")) or {}
    except FileNotFoundError:
        return AttackLimits()
    except yaml.YAMLError as e:
        raise ConfigError(f"{path} is not valid YAML: {e}") from None
    table = raw.get("prompt_attacks") if isinstance(raw, dict) else None
    try:
        if not isinstance(table, dict):
            raise TypeError("a top-level 'prompt_attacks' mapping is required")
        block = {str(k): float(v) for k, v in (table.get("block") or {}).items()}
        return AttackLimits(float(table.get("flag", 0.5)), block)
    except (TypeError, ValueError, AttributeError) as e:
        raise ConfigError(f"{path}: {e}") from None


# -- the rules ---------------------------------------------------------------------------


def _patterns(raw: Any, where: str) -> tuple[re.Pattern[str], ...]:
    if raw is None:
        return ()
    if isinstance(raw, str) or not isinstance(raw, list):
        raise ConfigError(f"{where}: a list of regular expressions is required")
    try:
        return tuple(re.compile(str(p), re.IGNORECASE | re.DOTALL) for p in raw)
    except re.error as e:
        raise ConfigError(f"{where}: {e}") from None


def load_attack_rules(path: Path | None = None) -> tuple[AttackRule, ...]:
    """The rules at ``path`` (else the packaged ones), rejecting a bad file at load."""
    raw, source = read_yaml(path, "prompt_attacks.yaml")
    rules: list[AttackRule] = []
    seen: set[str] = set()
    for i, r in enumerate((raw or {}).get("rules") or ()):
        where = f"{source}: rules[{i}]"
        if not isinstance(r, dict) or not r.get("id") or not r.get("technique"):
            raise ConfigError(f"{where}: id and technique are required")
        rule_id = str(r["id"])
        if rule_id in seen:
            raise ConfigError(f"{where}: duplicate id {rule_id!r}")
        seen.add(rule_id)
        try:
            weight = float(r.get("weight", 0.0))
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: weight must be a number") from None
        if not 0.0 < weight <= 1.0:
            raise ConfigError(f"{where}: weight must be in (0, 1]")
        places = frozenset(str(p) for p in (r.get("where") or PLACES))
        if not places <= set(PLACES):
            raise ConfigError(f"{where}: where must be among {list(PLACES)}")
        groups = _patterns(r.get("all"), where + ".all")
        if not groups:
            raise ConfigError(f"{where}: all needs at least one pattern")
        gates = tuple(g for g in map(literal_prefixes, groups) if g is not None)
        literals = r.get("any")
        if literals is not None:
            if not isinstance(literals, list) or not literals:
                raise ConfigError(f"{where}.any: a non-empty list of literals is required")
            gates += (frozenset(str(x).lower() for x in literals),)
        rules.append(
            AttackRule(rule_id, str(r["technique"]), weight, groups,
                       _patterns(r.get("unless"), where + ".unless"), places, gates)
        )
    if not rules:
        raise ConfigError(f"{source}: no rules")
    return tuple(rules)


# -- where the text of a request arrives -------------------------------------------------

#: A line that opens pasted material: "Context:", "Dokument 2:", "<document>", "---", ...
_DOCUMENT_START = re.compile(
    r"^[ \t]*(?:(?:context|kontext|document|dokument|source|quelle|page text|seitentext|"
    r"article|artikel|excerpt|auszug|attachment|anhang|search results?|suchergebnisse?|"
    r"retrieved|passage|web page|webseite|text|e-?mail|mail|nachricht|message)\b[^\n:]{0,30}:"
    r"|<(?:document|context|doc|source)\b|-{3,}|={3,}|\"\"\"|```)",
    re.IGNORECASE | re.MULTILINE,
)
#: A caller's question is short; what follows a blank line after it and is longer is
#: treated as pasted material.
_QUESTION_MAX = 400
_DOCUMENT_MIN = 80


def split_user_turn(text: str) -> tuple[str, str]:
    """(the caller's own words, the material pasted after them) of one user turn."""
    m = _DOCUMENT_START.search(text)
    if m is not None and m.start() > 0:
        return text[: m.start()].strip(), text[m.start() :].strip()
    head, sep, rest = text.partition("\n\n")
    if sep and len(head) <= _QUESTION_MAX and len(rest) >= _DOCUMENT_MIN:
        return head.strip(), rest.strip()
    return text, ""


def _user_sources(content: Any) -> list[AttackSource]:
    if isinstance(content, list):
        texts = [
            str(p.get("text", "")) for p in content
            if isinstance(p, dict) and p.get("type") in ("text", "input_text")
        ]
        if len(texts) > 1:  # the question, then the documents as further parts
            return [AttackSource("request", texts[0])] + [
                AttackSource("retrieved", t) for t in texts[1:]
            ]
        content = texts[0] if texts else ""
    own, pasted = split_user_turn(content if isinstance(content, str) else "")
    out = [AttackSource("request", own)]
    if pasted:
        out.append(AttackSource("retrieved", pasted))
    return out


def attack_sources(
    body: Mapping[str, Any], *, max_chars: int = 40000
) -> tuple[AttackSource, ...]:
    """The texts of a canonical (OpenAI-shaped) request body the screen reads, by place.

    The operator's system and developer prompts and the model's own earlier turns are
    not read; user turns are (split into the question and pasted material), and so are
    tool results (role ``tool``: also Anthropic ``tool_result`` blocks and Responses
    ``function_call_output`` items, which arrive canonicalised as such). A long
    conversation is read newest first, up to ``max_chars`` in all: the cost stays
    bounded, and what is new in this request (the latest turns) is always read.
    """
    messages = body.get("messages")
    found: list[AttackSource] = []
    if isinstance(messages, list):
        for m in messages:
            if not isinstance(m, dict):
                continue
            role = m.get("role")
            if role == "user":
                found.extend(_user_sources(m.get("content")))
            elif role in ("tool", "function"):
                found.append(AttackSource("tool_result", content_text(m.get("content"))))
    else:
        for key in ("prompt", "input"):
            value = body.get(key)
            texts = [value] if isinstance(value, str) else value if isinstance(value, list) else []
            for text in texts:
                if isinstance(text, str):
                    found.extend(_user_sources(text))
    kept: list[AttackSource] = []
    budget = max_chars
    for source in reversed(found):
        if budget <= 0:
            break
        if source.text.strip():
            text = source.text if len(source.text) <= budget else source.text[-budget:]
            kept.append(AttackSource(source.where, text))
            budget -= len(text)
    return tuple(reversed(kept))


def latest_turn_place(body: Mapping[str, Any]) -> Where | None:
    """Where the text of the request's new user turn arrived, as the learned head sees
    it: "retrieved" when material was pasted after the question (the head reads the turn
    whole), else "request"; None when the request ends in something else (a tool result
    in an agent loop: its user turn was judged when it was new)."""
    messages = body.get("messages")
    if not isinstance(messages, list):
        return "request"
    last = next((m for m in reversed(messages) if isinstance(m, dict)), None)
    if last is None or last.get("role") != "user":
        return None
    places = {s.where for s in _user_sources(last.get("content"))}
    return "retrieved" if "retrieved" in places else "request"
