"""Long, realistic prompts with known personal data: an English and German archive of
e-mails, letters and contract clauses, for tests and benchmarks of PII on documents.

Every value is generated (Faker, seeded), so the same ``seed`` and size give the same
text; each planted value is recorded by type and offsets (never needed elsewhere: the
text itself holds it). Filler sentences are ordinary business prose without personal
data, so a finding outside the planted spans is a false positive, not a missed label.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass

from faker import Faker


@dataclass(frozen=True, slots=True)
class Planted:
    """One planted value: its type (the analyzer's vocabulary) and where it is."""

    entity_type: str
    start: int
    end: int


@dataclass(frozen=True)
class Document:
    text: str
    planted: tuple[Planted, ...]
    #: Planted values that straddle the analyzer pool's cuts (see :func:`at_cuts`).
    at_cuts: tuple[Planted, ...] = ()


EN_FILLER = (
    "Thank you for the quick turnaround on the revised draft.",
    "The quarterly figures are attached for your review before the board meeting.",
    "We agreed that the delivery schedule will be confirmed in writing by the end of the month.",
    "Please find the signed copy of the amendment enclosed with this message.",
    "The services described in Schedule 2 apply from the commencement date.",
    "Either party may terminate this agreement with three months' written notice.",
    "The supplier shall keep all confidential information secure and shall not disclose it.",
    "Invoices are payable within thirty days of receipt without deduction.",
    "Our records show that the second instalment has not been received yet.",
    "Could you let us know whether the meeting room on the third floor is still available?",
    "The audit team will need access to the archive for two days next week.",
    "Liability for indirect or consequential loss is excluded to the extent permitted by law.",
    "We look forward to continuing our cooperation in the coming year.",
    "The warranty period is twelve months from acceptance of the deliverables.",
    "Any change to the scope requires a written change request approved by both parties.",
    "I have summarised the open points from yesterday's call below.",
    "The switch to the new ticketing system is planned for the first weekend in March.",
    "This agreement is governed by the laws of England and Wales.",
)
DE_FILLER = (
    "Vielen Dank für die schnelle Rückmeldung zum überarbeiteten Entwurf.",
    "Die Quartalszahlen liegen dieser Nachricht als Anlage bei.",
    "Wir haben vereinbart, dass der Liefertermin bis Monatsende schriftlich bestätigt wird.",
    "Anbei erhalten Sie die unterschriebene Fassung der Vertragsänderung.",
    "Die in Anlage 2 beschriebenen Leistungen gelten ab dem Beginn des Mietverhältnisses.",
    "Jede Partei kann diesen Vertrag mit einer Frist von drei Monaten schriftlich kündigen.",
    "Der Auftragnehmer verpflichtet sich, vertrauliche Informationen geheim zu halten.",
    "Rechnungen sind innerhalb von dreißig Tagen nach Zugang ohne Abzug zu zahlen.",
    "Nach unseren Unterlagen ist die zweite Rate noch nicht eingegangen.",
    "Bitte teilen Sie uns mit, ob der Besprechungsraum im dritten Stock noch frei ist.",
    "Die Prüfer benötigen in der kommenden Woche für zwei Tage Zugang zum Archiv.",
    "Die Haftung für mittelbare Schäden ist ausgeschlossen, soweit gesetzlich zulässig.",
    "Wir freuen uns auf die weitere Zusammenarbeit im kommenden Jahr.",
    "Die Gewährleistungsfrist beträgt zwölf Monate ab Abnahme.",
    "Änderungen des Leistungsumfangs bedürfen einer schriftlichen Vereinbarung beider Seiten.",
    "Die offenen Punkte aus dem gestrigen Telefonat habe ich unten zusammengefasst.",
    "Die Umstellung des alten Ticketsystems ist für das erste Wochenende im März geplant.",
    "Nebenkosten werden jährlich nach dem tatsächlichen Verbrauch abgerechnet.",
)


class _Writer:
    """Appends text and records the offsets of the values it plants.

    With ``width``, prose is wrapped at spaces into lines of at most that many
    characters (as plain-text mail is), a planted value moving whole to the next line
    when it does not fit; with ``blank_lines=False`` no line is left empty (an archive
    export that dropped them), so a long text has line ends but no paragraph breaks.
    """

    def __init__(self, width: int | None = None, blank_lines: bool = True) -> None:
        self.parts: list[str] = []
        self.size = 0
        self.planted: list[Planted] = []
        self._width = width
        self._blank_lines = blank_lines
        self._col = 0
        self._spaces = 0  # spaces waiting to be written (dropped at a wrap)
        self._last = "\n"

    def _emit(self, text: str) -> None:
        if not text:
            return
        self.parts.append(text)
        self.size += len(text)
        self._last = text[-1]
        line_end = text.rfind("\n")
        self._col = len(text) - line_end - 1 if line_end >= 0 else self._col + len(text)

    def _newline(self) -> None:
        self._spaces = 0
        if self._blank_lines or self._last != "\n":
            self._emit("\n")

    def _word(self, word: str) -> None:
        if self._width is not None and self._col > 0 \
                and self._col + self._spaces + len(word) > self._width:
            self._newline()
        self._emit(" " * self._spaces)
        self._spaces = 0
        self._emit(word)

    def add(self, text: str) -> None:
        for i, line in enumerate(text.split("\n")):
            if i:
                self._newline()
            for m in re.finditer(r"[^ ]+| +", line):
                if m.group().startswith(" "):
                    self._spaces += len(m.group())
                else:
                    self._word(m.group())

    def plant(self, entity_type: str, value: str) -> None:
        first = value.split("\n", 1)[0]
        if self._width is not None and self._col > 0 \
                and self._col + self._spaces + len(first) > self._width:
            self._newline()
        self._emit(" " * self._spaces)
        self._spaces = 0
        self.planted.append(Planted(entity_type, self.size, self.size + len(value)))
        self._emit(value)

    def text(self) -> str:
        return "".join(self.parts)


def spaced_iban(raw: str) -> str:
    """``DE89370400440532013000`` as printed on letters: groups of four."""
    return " ".join(raw[i:i + 4] for i in range(0, len(raw), 4))


#: Street types as most streets have them (Faker's own suffixes include rare ones,
#: "Causeway", "Rue", "Fork", that no address reader knows), and area codes that exist.
_DE_STREETS = ("straße", "weg", "allee", "platz", "gasse", "ring")
_EN_STREETS = ("Road", "Street", "Lane", "Avenue", "Close", "Drive", "Way", "Gardens")
_DE_AREAS = ("30", "40", "69", "89", "221", "211", "711", "351", "341", "511")


class _People:
    """Seeded German and English identities: name, e-mail, street, town, phone, IBAN."""

    def __init__(self, seed: int) -> None:
        self.de = Faker("de_DE")
        self.en = Faker("en_GB")
        self.de.seed_instance(seed)
        self.en.seed_instance(seed + 1)

    def person(self, lang: str) -> dict[str, str]:
        f = self.de if lang == "de" else self.en
        first, last = f.first_name(), f.last_name()
        local = f"{first}.{last}".lower()
        for a, b in (("ä", "ae"), ("ö", "oe"), ("ü", "ue"), ("ß", "ss"), (" ", ""), ("'", "")):
            local = local.replace(a, b)
        if lang == "de":
            street = f"{f.last_name()}{f.random_element(_DE_STREETS)} {f.random_int(1, 120)}"
            town = f"{f.postcode()} {f.city()}"
            phone = f"+49 {f.random_element(_DE_AREAS)} {f.random_int(2000000, 9999999)}"
        else:
            street = f"{f.random_int(1, 250)} {f.last_name()} {f.random_element(_EN_STREETS)}"
            town = f"{f.city()} {f.postcode()}"
            phone = f"+44 20 {f.random_int(7000, 8999)} {f.random_int(1000, 9999)}"
        return {
            "first": first, "last": last, "name": f"{first} {last}",
            "email": f"{local}@{f.free_email_domain()}",
            "street": street, "town": town, "phone": phone,
            "iban": spaced_iban(f.iban() if lang == "de" else self.de.iban()),
        }


def _prose(w: _Writer, rng: random.Random, lang: str, sentences: int) -> None:
    pool = DE_FILLER if lang == "de" else EN_FILLER
    w.add(" ".join(rng.choice(pool) for _ in range(sentences)))


def _email(w: _Writer, rng: random.Random, people: _People, lang: str) -> None:
    sender, to = people.person(lang), people.person(lang)
    de = lang == "de"
    w.add("Von: " if de else "From: ")
    w.plant("PERSON", sender["name"])
    w.add(" <")
    w.plant("EMAIL_ADDRESS", sender["email"])
    w.add(">\n" + ("An: " if de else "To: "))
    w.plant("EMAIL_ADDRESS", to["email"])
    w.add("\n" + ("Betreff: Vertrag und Rechnung" if de else "Subject: Contract and invoice") + "\n\n")
    w.add("Sehr geehrte Damen und Herren,\n\n" if de else "Dear colleagues,\n\n")
    _prose(w, rng, lang, rng.randint(3, 7))
    w.add(" Bitte überweisen Sie den Betrag auf das Konto IBAN " if de
          else " Please transfer the amount to the account IBAN ")
    w.plant("IBAN_CODE", sender["iban"])
    w.add(". " + ("Rückfragen gerne unter " if de else "For questions call me on "))
    w.plant("PHONE_NUMBER", sender["phone"])
    w.add(".\n\n" + ("Mit freundlichen Grüßen\n" if de else "Kind regards,\n"))
    w.plant("PERSON", sender["name"])
    w.add("\n")
    w.plant("ADDRESS", sender["street"] + "\n" + sender["town"])
    w.add("\n\n")


def _contract(w: _Writer, rng: random.Random, people: _People, lang: str) -> None:
    party = people.person(lang)
    de = lang == "de"
    w.add(f"§ {rng.randint(1, 20)} Vertragsparteien\n" if de else f"Clause {rng.randint(1, 20)}. Parties\n")
    w.add("Dieser Vertrag wird geschlossen zwischen der Muster GmbH und Herrn " if de
          else "This agreement is made between Northwind Services Ltd and Mr ")
    w.plant("PERSON", party["name"])
    w.add(", wohnhaft " if de else ", residing at ")
    w.plant("ADDRESS", party["street"] + ", " + party["town"])
    w.add(" (E-Mail: " if de else " (e-mail: ")
    w.plant("EMAIL_ADDRESS", party["email"])
    w.add("). ")
    _prose(w, rng, lang, rng.randint(4, 10))
    w.add("\n\n")


def _reply(w: _Writer, rng: random.Random, people: _People, lang: str) -> None:
    """One message of a thread: greeting by name, two or three sentences, a signature."""
    sender, to = people.person(lang), people.person(lang)
    de = lang == "de"
    w.add("Am Montag schrieb " if de else "On Monday, ")
    w.plant("PERSON", sender["name"])
    w.add(" <")
    w.plant("EMAIL_ADDRESS", sender["email"])
    w.add(">:\n" if de else "> wrote:\n")
    w.add("Hallo " if de else "Hi ")
    w.plant("PERSON", to["first"])
    w.add(",\n")
    _prose(w, rng, lang, rng.randint(2, 3))
    w.add(" " + ("Erreichbar bin ich unter " if de else "You can reach me on "))
    w.plant("PHONE_NUMBER", sender["phone"])
    w.add(".\n" + ("Viele Grüße\n" if de else "Best,\n"))
    w.plant("PERSON", sender["name"])
    w.add("\n\n")


def thread(size: int, seed: int = 0, lang: str = "en") -> Document:
    """An e-mail thread of about ``size`` characters naming several people (one language)."""
    rng = random.Random(seed)
    people = _People(seed)
    w = _Writer()
    while w.size < size:
        _reply(w, rng, people, lang)
    return Document(w.text().rstrip("\n"), tuple(w.planted))


def archive(size: int, seed: int = 0, languages: tuple[str, ...] = ("en", "de"),
            width: int | None = None, blank_lines: bool = True, run_chars: int = 0) -> Document:
    """An archive of e-mails and contract clauses of about ``size`` characters (at least
    ``size``, cut at a document end), the languages taking turns document by document,
    or after ``run_chars`` characters of one language; ``width`` and ``blank_lines`` as
    for plain-text exports (see :class:`_Writer`)."""
    rng = random.Random(seed)
    people = _People(seed)
    w = _Writer(width, blank_lines)
    kinds: tuple[Callable[[_Writer, random.Random, _People, str], None], ...] = (_email, _contract)
    k = 0
    run_start = 0
    while w.size < size:
        lang = languages[k % len(languages)]
        rng.choice(kinds)(w, rng, people, lang)
        if w.size - run_start >= run_chars:
            k += 1
            run_start = w.size
    return Document(w.text(), tuple(w.planted))


#: Two-line addresses planted across cuts, per language of the text around the cut.
CUT_ADDRESSES = {
    "de": (("Hauptstraße 5", "10115 Berlin"), ("Lindenallee 12", "80331 München")),
    "en": (("29 Hornsey Road", "London N7 7LR"), ("14 Baker Street", "Bristol BS1 4DJ")),
}


def at_cuts(doc: Document, cuts: Callable[[str], list[tuple[int, str]]]) -> Document:
    """``doc`` with a two-line postal address straddling every cut: the line that ends
    at the cut becomes the street, the line that starts there the town (padded with
    spaces to their old lengths, so the cuts stay where they were).

    ``cuts(text)`` gives the cut positions (each right after a line end, so ``doc``
    needs line ends and no blank lines: ``archive(..., width=64, blank_lines=False)``)
    and the language around each. Values the new lines overwrite leave ``planted``.
    Planting can move later cuts, so it goes cut by cut until every cut has its address.
    """
    text, planted = doc.text, list(doc.planted)
    placed: list[Planted] = []
    for k in range(10_000):
        todo = [(c, lang) for c, lang in cuts(text) if not any(p.start < c < p.end for p in placed)]
        if not todo:
            return Document(text, tuple(planted), tuple(placed))
        cut, lang = todo[0]
        if text[cut - 1] != "\n":
            raise ValueError(f"cut at {cut} is not after a line end")
        a = text.rfind("\n", 0, cut - 1) + 1
        b = text.find("\n", cut)
        b = len(text) if b < 0 else b
        street, town = CUT_ADDRESSES[lang][k % 2]
        first, second = street.ljust(cut - 1 - a), town.ljust(b - cut)
        shift = len(first) + 1 + len(second) - (b - a)
        text = text[:a] + first + "\n" + second + text[b:]

        def move(p: Planted, a: int = a, shift: int = shift) -> Planted:
            return p if p.end <= a else Planted(p.entity_type, p.start + shift, p.end + shift)

        planted = [move(p) for p in planted if p.end <= a or p.start >= b]
        placed = [move(p) for p in placed] + [Planted("ADDRESS", a, a + len(first) + 1 + len(town))]
    raise RuntimeError("the cuts did not settle")
