"""Labelled German training text, written on the fly from templates and word lists.

Real annotated German is scarce: the tagger also learns from the DEV half of the LER court
decisions (:mod:`.ler`), but that is one register and 253 entities. So this module writes
sentences in the registers the appliance meets (court decisions, letters, e-mails, chat,
signature and heading lines) with persons and places drawn from Faker's German, Austrian,
Swiss and foreign lists, plus surnames and town names invented by a character model of
those lists (so that the tagger learns what a name looks like, not only which names
exist). Ordinary words come from the Duden list. Equally important are
the negatives German legal prose is full of: places inside court and law names
("OLG Karlsruhe", "TV-Ärzte Hessen"), authors in literature citations ("Greger, in:
Zöller, ZPO"), section letters ("Abschnitt II. D") and capitalised nouns: all labelled
ordinary, as the LER annotation guidelines do.
"""

from __future__ import annotations

import random
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from appliance.pii.de.features import TAGS, tokenize
from appliance.pii.de.lexicon import Lexicon

Piece = tuple[str, str | None]  # text, entity label ("PER", "LOC") or None


@dataclass(frozen=True)
class Sample:
    text: str
    #: (start, end, label) character spans.
    spans: tuple[tuple[int, int, str], ...]

    def tags(self) -> list[int]:
        """BIO tag id per token of :func:`tokenize`."""
        out = []
        prev: tuple[int, int, str] | None = None
        for t in tokenize(self.text):
            span = next((s for s in self.spans if t.start < s[1] and t.end > s[0]), None)
            if span is None:
                out.append(0)
            else:
                out.append(TAGS.index(("I-" if span == prev else "B-") + span[2]))
            prev = span
        return out


class _CharModel:
    """Order-3 character model of a word list: invents plausible new names."""

    def __init__(self, words: Sequence[str], order: int = 3) -> None:
        self.order = order
        self.next: dict[str, list[str]] = defaultdict(list)
        for w in words:
            padded = "^" * order + w + "$"
            for i in range(order, len(padded)):
                self.next[padded[i - order:i]].append(padded[i])

    def word(self, rng: random.Random, known: frozenset[str], tries: int = 20) -> str | None:
        for _ in range(tries):
            ctx, out = "^" * self.order, ""
            while len(out) < 16:
                c = rng.choice(self.next[ctx])
                if c == "$":
                    break
                out += c
                ctx = ctx[1:] + c
            if 3 < len(out) < 15 and out not in known and out[0].isupper():
                return out
        return None


_ROLES = (
    "der Kläger", "die Klägerin", "der Beklagte", "die Beklagte", "der Angeklagte",
    "die Angeklagte", "der Beschwerdeführer", "die Beschwerdeführerin", "der Antragsteller",
    "die Antragstellerin", "der Zeuge", "die Zeugin", "der Sachverständige",
    "die Sachverständige", "der Beigeladene", "die Nebenklägerin", "der Nebenkläger",
    "der Geschädigte", "die Geschädigte", "der Versicherte", "die Versicherte",
    "der Betroffene", "der Erblasser", "die Erblasserin", "der Insolvenzverwalter",
    "der Prozessbevollmächtigte", "der Verteidiger", "die Verteidigerin", "der Mitangeklagte",
)
_ROLE_GEN = (
    "des Klägers", "der Klägerin", "des Beklagten", "des Angeklagten", "der Angeklagten",
    "des Beschwerdeführers", "der Beschwerdeführerin", "des Zeugen", "der Zeugin",
    "des Antragstellers", "des Sachverständigen", "des Geschädigten", "der Nebenklägerin",
    "des Mitangeklagten", "des Erblassers", "der Betreuerin",
)
_TITLES = ("Herr", "Frau", "Herrn", "Dr.", "Prof. Dr.", "Herr Dr.", "Frau Dr.", "Rechtsanwalt",
           "Rechtsanwältin", "Richter", "Richterin", "Richter am BGH", "Notar", "Dipl.-Ing.")
_JUDGE_ROLES = ("den Vorsitzenden Richter", "die Vorsitzende Richterin", "den Richter",
                "die Richterin", "den Richter Dr.", "die Richterin Dr.",
                "den Vorsitzenden Richter Prof. Dr.", "die Richterin am Landgericht",
                "den Richter am Oberlandesgericht", "die ehrenamtliche Richterin",
                "den ehrenamtlichen Richter")
_COURTS_CITY = ("Landgericht", "Amtsgericht", "Oberlandesgericht", "Verwaltungsgericht",
                "Sozialgericht", "Arbeitsgericht", "Finanzgericht", "LG", "AG", "OLG", "VG",
                "SG", "ArbG", "Landesarbeitsgericht", "LAG", "OVG", "Staatsanwaltschaft")
_COURTS_STATE = ("LSG", "Landessozialgericht", "FG", "Finanzgericht", "VGH", "LAG", "OVG",
                 "Verfassungsgerichtshof")
_FED = ("BGH", "BVerfG", "BAG", "BSG", "BFH", "BVerwG", "BPatG", "EuGH", "EGMR")
_JOURNALS = ("NJW", "NJW-RR", "NZA", "GRUR", "GRUR-RR", "BB", "DB", "DStR", "NVwZ", "ZIP",
             "MDR", "StV", "NStZ", "JZ", "FamRZ", "WM", "BFHE", "BAGE", "BVerfGE", "BGHZ",
             "BGHSt", "VersR", "ZPO", "juris")
_LAWS = ("BGB", "ZPO", "StGB", "StPO", "GG", "SGB V", "SGB VI", "SGB IX", "SGB II", "AO",
         "EStG", "UStG", "VwGO", "VwVfG", "FGO", "ArbGG", "KSchG", "BetrVG", "TVöD", "MarkenG",
         "PatG", "UWG", "BtMG", "AsylG", "AufenthG", "BVerfGG", "HGB", "GmbHG", "InsO",
         "EMRK", "AEUV", "BRAO", "RVG", "GKG", "JGG", "IRG", "BeamtStG", "BBG", "SG")
_COMMENTARIES = ("Palandt", "MüKoBGB", "ErfK", "Zöller", "Staudinger", "BeckOK", "Kopp",
                 "Schönke", "Fischer", "Thomas", "Musielak", "KassKomm", "Tipke", "Schmidt",
                 "Ströbele", "Hacker", "Benkard", "Busse", "SK-StPO", "LK", "NK")
_MONTHS = ("Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September",
           "Oktober", "November", "Dezember")
_LAW_PLACE = ("TV-Ärzte {LS}", "Kommunalabgabengesetz {LS}", "Landesverfassung {LS}",
              "Polizeigesetz {LS}", "Schulgesetz {LS}", "Landesbeamtengesetz {LS}",
              "Richtergesetz {LS}", "Angleichungs-TV Land {LS}", "Kita-Gesetz {LS}",
              "Bauordnung {LS}", "Landeswahlgesetz {LS}", "Haushaltsordnung {LS}")
_ORG_PLACE = ("Universität {LC}", "Stadtwerke {LC}", "Sparkasse {LC}", "Jobcenter {LC}",
              "Klinikum {LC}", "Flughafen {LC}", "Handwerkskammer {LC}", "IHK {LC}",
              "Landeshauptstadt {LC}", "Stadt {LC}", "Gemeinde {LC}", "Kreis {LC}",
              "Bistum {LC}", "Theater {LC}", "Zoo {LC}", "Messe {LC}")
_COMPANY_SUFFIX = ("GmbH", "AG", "KG", "GmbH & Co. KG", "e. K.", "OHG", "e. V.", "SE", "Inc.",
                   "Ltd.", "UG")

#: Court decisions and legal prose; slots are filled by the methods of :class:`_Gen`.
LEGAL = (
    "{ROLE} {PI} hat gegen das Urteil Berufung eingelegt .",
    "Nach den Feststellungen des Landgerichts fuhr {ROLE} am {D} mit einem Pkw nach {L} .",
    "Der Angeklagte {PI} entfernte sich von der Unfallstelle , ohne dem Zeugen {PI} Angaben zu machen .",
    "{ROLE_GEN} {PI} wurde am {D} in {L} festgenommen .",
    "Der Senat hat den Sachverständigen {PT} im Termin ergänzend angehört .",
    "In der Beschwerdesache {N} hat der {NUM}. Senat des Bundespatentgerichts durch {JUDGE} {PS} , {JUDGE} {PS} und {JUDGE} {PS} beschlossen :",
    "auf die mündliche Verhandlung vom {D} durch {JUDGE} {PS} sowie {JUDGE} {PS} und {PT} für Recht erkannt :",
    "Nach diesen Maßstäben sei {PF} Beteiligter an der Sache im Sinne des {PAR} .",
    "Die Klägerin lebt seit {YEAR} in {L} und ist dort als {N} tätig .",
    "Der Beschwerdeführer ist Staatsangehöriger von {LK} und reiste im Jahr {YEAR} nach {LK} aus .",
    "Die Auslieferung des Verfolgten nach {LK} ist unzulässig , weil ihm dort eine {N} droht .",
    "Die Versetzung des Antragstellers nach {LI} verstößt gegen den Grundsatz der Gleichbehandlung .",
    "Er hat lediglich nicht die erbetene Aktenübersendung an dessen Büro in {LI} bewilligt .",
    "Sie unterhält Rettungswachen in {LI} , {LI} und {LI} sowie Standorte im Stadtgebiet {LI} .",
    "Der Kläger war bei der {UN} in {LC} als {N} beschäftigt .",
    "Das Unternehmen hat seinen Sitz in {LC} und unterhält Niederlassungen in {LC} und {LK} .",
    "Es sei nicht zu beanstanden , dass Herr {PI} sich bei den Referatsleitern Herrn {PI} und Herrn {PI} erkundigt habe .",
    "Die Zeugin {PF} hat bekundet , sie habe den Angeklagten am {D} in {LC} gesehen .",
    "{TITLEP} hat in seinem Gutachten vom {D} ausgeführt , die {N} sei nicht nachgewiesen .",
    "Da {PI} das Grundstück im Wege des Tauschs erworben hat , bemessen sich die Anschaffungskosten nach dem gemeinen Wert .",
    "Die Therapie der {PI} in der {N} war durch den Medizinischen Dienst geprüft worden .",
    "Das Amtsgericht hat die Ehe der Beteiligten {PI} und {PI} geschieden .",
    "Die Beteiligten streiten darüber , ob die {N} in {LS} steuerpflichtig ist .",
    "Der {FREISTAAT} gewährt Zuwendungen nach Maßgabe dieser Richtlinie .",
    "Das Schulwesen in {LS} wird durch das Land getragen .",
    "Die Daten des Landes {LS} wurden übernommen .",
    "Beklagt ist das Land {LS} , vertreten durch das Ministerium .",
    "Der Senat der {FREISTAAT} hat Stellung genommen .",
    "Die Anrechnung der im {KINGDOM} erlittenen Auslieferungshaft ist geboten .",
    "Er begehrt seine Verlegung nach {LC} .",
    "Der Kläger ist von {LC} nach {LC} umgezogen .",
    "Die Dienststelle in {LC} ist für {LC} nicht zuständig .",
    "Die Rettungswachen in {LI} , {LI} und {LI} sind rund um die Uhr besetzt .",
    "Der Beschwerdeführer stammt aus dem Dorf {LC} in {LK} .",
    "Die Sicherheitslage in {LK} hat sich seit {YEAR} erheblich verschlechtert .",
    "Das Recht der Republik {LK} kennt eine solche {N} nicht .",
    "Die {DE} hat das Abkommen mit {LK} am {D} ratifiziert .",
    "Der Kläger reiste im Jahr {YEAR} in die {DE} ein .",
    "Die Versorgungsbezüge werden in {DE} besteuert .",
    "Der Angeklagte , der {ADJ} Staatsangehöriger ist , führte seit Jahren in {DE} {N} aus .",
    "Am {D} fuhr der Angeklagte auf der {STR} in {LC} auf das Fahrzeug der Geschädigten {PI} auf .",
    "Die Mutter des Kindes , {PF} , wohnt in {LC} , {STR} .",
    "Das Kind lebt seit der Trennung bei seinem Vater {PF} in {LC} .",
    "Der Verteidiger des Angeklagten , Rechtsanwalt {PS} aus {LC} , hat Revision eingelegt .",
    "Der Erblasser {PF} verstarb am {D} in {LC} .",
    "Die Klägerin ist Alleinerbin ihres am {D} verstorbenen Ehemannes {PF} .",
    "Vertreten durch Rechtsanwältin {PF} , {STR} , {PLZ} {LC} .",
    "Prozessbevollmächtigte : Rechtsanwälte {PS} & {PS} , {LC}",
    "Die Ermittlungen ergaben , dass der Anschluss des Beschwerdeführers in {LC} genutzt wurde .",
    "Die Beklagte betreibt in {LC} eine {N} mit {NUM} Beschäftigten .",
    "Im Jahr {YEAR} zog die Familie von {LC} nach {LC} um .",
    "Die Messe fand im {D} in {LC} statt .",
    "Der Kläger hat in {LK} studiert und ist {YEAR} nach {LK} zurückgekehrt .",
    "Zur Verhinderung der Verjährung habe sie vor dem Amtsgericht in {LI} Klage erhoben .",
    "Der frühere Arbeitgeber , der Landkreis {LI} , konnte keine Dienstvereinbarung schließen .",
    "Die Nebenklägerin {PI} begleitete den Angeklagten {PI} auf dem Nachhauseweg .",
    "Er habe erklärt , dass die Klägerin , wenn sie in {LK} sei , stets bei ihm wohnen könne .",
    "Die Stationierung in {LC} habe keinen Einfluss auf die {N} .",
    "Nach Auskunft der Botschaft in {LC} ist der Vater des Klägers im Jahr {YEAR} verstorben .",
    "Die Klägerin wurde in {LC} ( {LK} ) geboren .",
    "Nach den Angaben des Zeugen {PS} befand sich {ROLE} zur Tatzeit in {LC} .",
    "Frau {PS} hat als {N} bei der {UN} gearbeitet .",
    "Mit Schreiben vom {D} teilte {PF} mit , er werde die {N} nicht fortführen .",
    "Der Geschäftsführer der Schuldnerin , {PF} , wurde als Zeuge vernommen .",
    "Die Eheleute {PS} bewohnen ein Einfamilienhaus in {LC} .",
    "Die Verfahrensbevollmächtigte , Rechtsanwältin Dr. {PS} , hat die Frist versäumt .",
    "Eine ähnliche Wertung findet sich im Urteil {PS} v. {LK} des Europäischen Gerichtshofs für Menschenrechte .",
    "Das Landesblindengeld in {LS} wurde ab {D} auf {MONEY} reduziert .",
    "Der Anspruch ergibt sich aus {PAR} , weil die {N} in {LS} nicht vorgesehen ist .",
    "In {LK} und {LK} gelten insoweit abweichende Regelungen .",
    "{PI} hat sich darauf berufen , dass die {N} nicht vorliege .",
    "Festgestellt hat das LSG nur , dass {PI} bis zu ihrer Aufnahme in das Heim in {LI} wohnte .",
    "Dazu heißt es im Vertrag , {PI} bestreite den Anspruch .",
    "Das FG hat entschieden , dass dem Kläger für den Zeitraum , in dem sich {PI} in Untersuchungshaft befand , Kindergeld für {PI} zustand .",
    "Die Vergütung der Ärztin {PI} richtet sich nach der {N} .",
    "wegen der Nichtweiterleitung des Antrags der {PI} vom {D}",
    "Der eingesetzte Torhüter {PI} habe gute Leistungen gezeigt .",
    "Die Ankündigung des Generals „ {PI} “ sei ernst gemeint gewesen .",
    "Aus welchen Gründen das Schreiben des {PI} zu einer Befangenheit des {PI} führen könne , ist nicht ersichtlich .",
    "Im Rahmen des Modellprojekts erhielt {PI} hingegen keine {N} .",
    "Die von der {PI} erbrachten Leistungen sind steuerfrei .",
    "{PI} und {PI} sind Geschwister .",
    "Der Zeuge {PS} hat ausgesagt , er habe {PF} nicht gekannt .",
    "Die Beklagte zahlte an {PI} einen Betrag in Höhe von {MONEY} .",
    "Der Bruder der Klägerin , {PI} , lebt in {LI} .",
    "Gegen {PI} wird ein gesondertes Verfahren geführt .",
    # Judges named in a list after one title ("die Richter Jacobi und Schödel").
    "hat der {NUM}. Senat des Bundespatentgerichts am {D} unter Mitwirkung der Vorsitzenden Richterin {PS} sowie der Richter {PS} und {PS} beschlossen :",
    "durch den Vorsitzenden Richter {PS} , die Richter {PS} , {PS} und {PS} sowie die Richterin {PS}",
    "durch die Richter {PS} , {PS} und {PS} beschlossen :",
    "Richter am Bundesgerichtshof {PS} ist wegen Urlaubs an der Unterschrift gehindert .",
    "an der Entscheidung wirken die ehrenamtlichen Richter {PF} und {PF} mit .",
    # Anonymised persons: an initial in brackets, letters for names, "XX".
    "In seinem Gutachten führte der Sachverständige ( {PI} ) aus , die {N} sei nicht nachweisbar .",
    "Die Zeugin ( {PS} ) hat den Vorfall anders geschildert .",
    "Herr {PI} war als Referatsleiter {PX} für die {N} zuständig .",
    "Die Beigeladene zu {NUM} ( Frau {PX} ) hat sich nicht geäußert .",
    "Der Kläger und seine Ehefrau {PX} wohnten damals in {LX} .",
    # Anonymised places: initials in a list, a letter for a country.
    "Die Rettungswachen in {LX} , {LX} , {LX} und {LX} sowie der Standort im Stadtgebiet {LX} sind besetzt .",
    "Soweit die Immobilien im Land {LX} fehlten , habe dies keine Auswirkung auf die {N} .",
    "Die Klägerin hat Vermögen im Staat {LX} und in {LK} .",
    "Er stammt aus dem Dorf {LX} in der Provinz {LC} .",
    "Er sei in seinem Heimatdorf {LMULTI} von den Taliban bedroht worden .",
    "Die Familie lebte in {LMULTI} im Norden von {LK} .",
    # Places and persons in trademarks, fairs and firm names are still labelled.
    "Die Wortfolge „ {LC} {N} “ ist für die beanspruchten Dienstleistungen beschreibend .",
    "Das Anmeldezeichen setzt sich aus den Wortbestandteilen „ {LC} “ und „ {N} “ zusammen .",
    "Der Sockel wurde auf der Messe „ {N} {LK} {YEAR} “ in {LC} ausgestellt .",
    "Die Anmelderin macht geltend , {LC} sei als Ortsbezeichnung nicht bekannt .",
    "Welchen Einfluss die Stationierung von Soldaten in {LC} habe , sei nicht feststellbar .",
    "Die Klägerin wohnte bis {YEAR} in der {STR} in {LC} und zog dann nach {LC} .",
    "Der Unfall ereignete sich auf der Kreuzung {STR} / {STR} in {LC} .",
    "Das Grundstück liegt in der Gemarkung {LC} , Flur {NUM} , Flurstück {NUM} .",
    # Streets without a house number.
    "Die Wohnung liegt in der {STRN} in {LC} .",
    "Der Angeklagte bog von der {STRN} in die {STRN} ab .",
    "Das Grundstück grenzt an die {STRN} .",
    "Die Geschädigte ging die {STRN} entlang in Richtung {STRN} .",
    "Die Praxis befindet sich am {STRN} , Ecke {STRN} .",
)
#: Patent and technical literature, where the LER annotation marks authors as persons
#: (unlike commentary citations in legal prose, whose authors stay ordinary words).
PATENT_LITERATURE = (
    "D{NUM} {PAUTH} : {TITLE} , Seiten {NUM} - {NUM} , © {UN} , {YEAR} ;",
    "D{NUM} {PAUTH} et al. , “ {TITLE} ” , {TITLE} , {YEAR} , {NUM} , Seiten {NUM} bis {NUM}",
    "D{NUM} {PAUTH} : {TITLE} .",
    "E{NUM} {PAUTH} , {PAUTH} : {TITLE} , {YEAR}",
    "Die Druckschrift D{NUM} ( {PAUTH} , {TITLE} ) offenbart eine {N} .",
    "Der Fachmann entnimmt dem Aufsatz von {PAUTH} in der D{NUM} keine Anregung zur {N} .",
)
#: Legal sentences without persons or places, whose traps the tagger must learn.
LEGAL_NEGATIVE = (
    "Die Revision ist nach {PAR} zulässig , aber unbegründet .",
    "Die Kostenentscheidung beruht auf {PAR} .",
    "Das {GRT} hat die Klage mit Urteil vom {D} abgewiesen .",
    "Hiergegen richtet sich die Beschwerde zum {GRT} .",
    "vgl. {RS} ; {RS} .",
    "( vgl. {LIT} ; {RS} ) .",
    "So auch {LIT} .",
    "Ebenso {RS} , und {LIT} .",
    "Die Vergütung richtet sich nach § {NUM} {GS} .",
    "Der Anspruch folgt aus § {NUM} Abs. {NUM} des {GS} .",
    "Dies entspricht der ständigen Rechtsprechung des Senats ( {RS} ) .",
    "Die {N} ist nach {PAR} zu berücksichtigen , soweit die {N} nicht entgegensteht .",
    "Dem steht die {N} der {UN} nicht entgegen .",
    "Die Marke „ {N} “ ist für die Waren der Klasse {NUM} eingetragen .",
    "Die Zeichen „ {N} “ und „ {N} {N} “ sind einander nicht ähnlich .",
    "Abschnitt {ROMAN} . {LETTER} ( {N} )",
    "Nach Anlage {NUM} Abschn. {LETTER} der Protokollerklärung gilt Folgendes .",
    "Die Temperatur beträgt {NUM} bis {NUM} ° C .",
    "Die Kontaktfedern {LETTER} sind ersichtlich nicht lamelliert .",
    "Das Verfahren {ROMAN} R {NUM}/{YY} ist beim BFH anhängig .",
    "Der Wahlvorstand hat die Vorschlagsliste „ {LETTER} “ nicht zugelassen .",
    "Der Vokal „ {LETTER} “ bildet mit dem Konsonanten „ {LETTER} “ eine Silbe .",
    "Die {N} der Beklagten war {ADV} nicht zu beanstanden .",
    "{ROLE} beantragt , das Urteil des {GRT} vom {D} aufzuheben .",
    "Die Sache wird an das {GRT} zurückverwiesen .",
    "Entgeltgruppe {NUM} , Stufe {NUM} , {MONEY} brutto .",
    "Die Gutschrift erfolgte unter der Nummer EU / {NUM} / {NUM} / {NUM} .",
    "Die {UN} hat ihren Jahresabschluss für {YEAR} nicht offengelegt .",
    "D{NUM} {N} , Seiten {NUM} - {NUM} , © {UN} , {YEAR}",
    "Beschluss vom {D} - {AZ} - , juris Rn. {NUM} .",
    "Urteil des {GRT} vom {D} - {AZ} -",
    "Die {N} ist {ADV} {LW} , weil die {N} {LW} ist .",
    "{N} und {N} der {N} sind zwischen den Beteiligten nicht streitig .",
    "Gemäß {PAR} in Verbindung mit {PAR} ist die {N} ausgeschlossen .",
    "Nach dem {GS} ist die {N} bis zum {D} zu beantragen .",
    "Die {N} ( {LAW} ) regelt die {N} nur unvollständig .",
    "{ROLE} ist mit der {N} nicht einverstanden .",
    "Die Beteiligten haben auf mündliche Verhandlung verzichtet .",
    "Gründe",
    "Tatbestand",
    "Entscheidungsgründe",
    "Von Rechts wegen",
    "Hierzu gilt :",
    "Weitere Hinweise :",
    "Patentansprüche :",
    "{NUM}. {N}",
    "{NUM}.{NUM} {N}",
    "{MONEY}",
    "{N}",
    "{N} - {N}",
    "Kosten des {N}s",
    "Hinweise zur {N}",
    # Prepositions before ordinary nouns in every case and number: not places.
    "Die {N} ist in {NC} geregelt .",
    "Die Leistungen werden in {NC} und in {NC} erbracht .",
    "Er geriet mit der Zahlung in {NC} , weil die {N} fehlte .",
    "In {NC} {NUM} ist die {N} dargestellt .",
    "Das Gemenge besteht aus {NC} , {NC} und {NC} .",
    "Nach {NC} ist die {N} erneut zu prüfen .",
    "Der Vertrag trat mit {NC} in Kraft .",
    "Er ist mit dem Fahrzeug nach Hause gefahren .",
    "Die Frage stand in Rede , ob die {N} in {NC} resultiert .",
    "Die Beklagte hat die {N} im {NC} festgehalten .",
    "Die Angaben in {NC} und {NC} sind widersprüchlich .",
    "Aus {NC} ergibt sich nichts anderes .",
    "Bei {NC} ist nach {PAR} zu verfahren .",
    "Der Antrag wurde nach {NC} gestellt .",
)
#: Letters, e-mails and forms.
LETTERS = (
    "Sehr geehrte Frau {PS} ,",
    "Sehr geehrter Herr {PS} ,",
    "Sehr geehrter Herr Dr. {PS} ,\nvielen Dank für Ihre Nachricht vom {D} .",
    "Hallo {FIRST} ,\nkannst du mir die {N} bis {DAY} schicken ?",
    "Liebe {FIRST} , lieber {FIRST} ,",
    "Mit freundlichen Grüßen\n{PF}",
    "Viele Grüße\n{FIRST}",
    "Beste Grüße aus {LC}\n{PF}",
    "{PF}\n{STR}\n{PLZ} {LC}",
    "Absender : {PF} , {STR} , {PLZ} {LC}",
    "Bitte senden Sie die Unterlagen an {PF} , {STR} , {PLZ} {LC} .",
    "Ich , {PF} , geboren am {D} in {LC} , erteile hiermit Vollmacht .",
    "Mein Name ist {PF} und ich wohne in {LC} .",
    "Unser Kunde {PF} aus {LC} hat die Rechnung noch nicht bezahlt .",
    "Herr {PS} ist ab {DAY} wieder im Büro in {LC} erreichbar .",
    "Frau {PF} übernimmt ab sofort die Leitung der Filiale {LC} .",
    "Bitte leiten Sie die {N} an Frau {PS} weiter .",
    "Wir haben mit {PF} von der {UN} telefoniert .",
    "Der Termin mit {PF} findet am {D} in {LC} statt .",
    "Die Lieferung nach {LC} verzögert sich um eine Woche .",
    "Unser Team in {LC} und {LK} arbeitet an der {N} .",
    "Betreff : {N} von {PF}",
    "Antragsteller : {PF}\nWohnort : {LC}\nStaatsangehörigkeit : {LK}",
    "Name : {PS}\nVorname : {FIRST}\nGeburtsort : {LC}",
    "Im Auftrag\n{PT}",
    "gez. {PF}",
    "{PS}\n{PS}\n{PS}",
    "{PS}",
    "{PT}",
    "{PI} {PS}",
    "Können Sie bitte {PF} eine Kopie der {N} schicken ?",
    "Ich fahre nächste Woche mit {FIRST} nach {L} .",
    "Fasse bitte die E-Mail von {PF} an {PF} zusammen .",
    "Schreibe eine Antwort an {PF} wegen der {N} in {LC} .",
    "Übersetze den Brief von {PF} aus {LC} ins Englische .",
    "Die Rechnung Nr. {NUM} der {UN} ist am {D} fällig .",
)
#: Lines of one to three words: judges' signatures against headings.
SIGNATURES = ("{PS}", "{PS}", "{PS}", "{PS}", "{PT}", "{PI} {PS}", "{FIRST} {PS}", "{N}", "{N} :",
              "{NUM}. {N}", "{ROMAN}. {N}", "{N} {N}", "{N} der {N}")
#: Chat messages.
CHAT = (
    "hallo , ich bin {FIRST} aus {LC}",
    "mein name ist {PF} und ich brauche hilfe bei der {N}",
    "kannst du {FIRST} sagen , dass ich später komme ?",
    "treffen wir uns in {LC} oder in {LC} ?",
    "{FIRST} hat gesagt , dass die {N} morgen kommt",
    "ich war letzte woche bei {PF} in {LC}",
    "wer ist eigentlich {PF} ?",
    "schreib bitte an {PS} , dass die {N} fertig ist",
    "wie wird das wetter morgen in {LC} ?",
    "was kostet ein flug von {LC} nach {LK} ?",
    "ok , danke {FIRST} !",
    "die {N} ist kaputt , kannst du helfen ?",
    "ich habe eine frage zur {N}",
)

#: Workplace e-mail: greetings, requests, hand-overs, sign-offs.
MAIL = (
    "Hallo {FIRST} ,\ndanke für die schnelle Rückmeldung . Ich leite das an {PF} weiter .\nGruß\n{FIRST}",
    "Hi {FIRST} , kurze Frage : hast du die Zahlen aus {LC} schon bekommen ?",
    "Liebe Kolleginnen und Kollegen ,\nab Montag übernimmt {PF} die Leitung des Teams in {LC} .\nViele Grüße\n{PF}",
    "Guten Tag Herr {PS} ,\nwie telefonisch besprochen sende ich Ihnen die Unterlagen bis {DAY} .\nMit freundlichen Grüßen\n{PF}",
    "Sehr geehrte Frau {PS} ,\nleider muss ich unseren Termin am {D} absagen , da ich in {LC} bin .",
    "Moin {FIRST} ,\nkannst du bitte {FIRST} Bescheid geben , dass der Workshop nach {LC} verlegt wurde ?",
    "{FIRST} ist diese Woche im Urlaub in {LK} , bitte wendet euch an {PF} .",
    "Ich bin bis {DAY} nicht im Büro . In dringenden Fällen wenden Sie sich bitte an {PF} ( {MAIL} ) .",
    "Anbei die Rechnung für den Einsatz bei {UN} in {LC} . Ansprechpartner vor Ort war Herr {PS} .",
    "Bitte bucht für {PF} und {PF} ein Hotel in {LC} vom {D} bis {D} .",
    "Wie besprochen treffen wir uns um 9 Uhr am Hauptbahnhof {LC} . {FIRST} bringt den Beamer mit .",
    "Danke , {FIRST} ! Grüße auch an {FIRST} und das Team in {LC} .",
    "Herzliche Grüße aus {LC}\n{FIRST} {PS}\n{UN}\n{STR}\n{PLZ} {LC}\nTel . {PHONE}",
    "Im Auftrag von {PF} übersende ich Ihnen das Angebot für den Standort {LC} .",
)
#: Notes HR writes: hires, leave, sickness, reviews, payroll.
HR = (
    "Gesprächsnotiz : {PF} wünscht ab {D} eine Teilzeitregelung . Rücksprache mit {PF} erfolgt .",
    "Neuer Mitarbeiter : {PF} , Eintritt {D} , Standort {LC} , Vorgesetzte {PF} .",
    "{PF} ist seit {D} krankgeschrieben , Vertretung übernimmt {PF} .",
    "Personalnummer {NUM} , Name : {PS} , Vorname : {FIRST} , Wohnort : {LC}",
    "Austritt von {PF} zum {D} ; Zeugnis wird von {PF} erstellt .",
    "Versetzung von {PF} von {LC} nach {LC} zum {D} genehmigt .",
    "Mitarbeitergespräch mit {PF} am {D} : Zielvereinbarung erreicht , Gehaltsanpassung empfohlen .",
    "Frau {PS} hat Elternzeit bis {D} beantragt . Ihr Mann {FIRST} arbeitet ebenfalls bei uns in {LC} .",
    "Bewerbung von {PF} aus {LC} für die Stelle als {N} eingegangen .",
    "Abmahnung an Herrn {PS} wegen unentschuldigten Fehlens am {D} .",
    "Reisekosten {PF} : {LC} - {LC} , Hotel , Verpflegung .",
    "Der Betriebsrat ( {PF} ) wurde über die Kündigung von {PF} informiert .",
    "Notfallkontakt : {PF} ( Ehefrau ) , {PHONE}",
    "Schulung am {D} in {LC} für {PF} , {PF} und {PF} .",
    "Herr {PS} aus der Abteilung {N} wechselt zum {D} nach {LK} .",
)
#: Support tickets: who reports what, where, how to reach them.
TICKETS = (
    "Ticket {NUM} : Kunde {PF} meldet , dass die {N} nicht funktioniert .",
    "Gemeldet von : {PF}\nStandort : {LC}\nBeschreibung : {N} defekt",
    "Der Kunde {PF} aus {LC} bittet um Rückruf unter {PHONE} .",
    "Lieferadresse : {PF} , {STR} , {PLZ} {LC}",
    "Rücksendung von Frau {PS} aus {LC} ist eingegangen , Gutschrift veranlasst .",
    "Bitte Zugang für {PF} einrichten , genehmigt von {PF} .",
    "Frau {PS} ruft bereits zum dritten Mal wegen der {N} an .",
    "Zuständig : {FIRST} ( 2nd Level ) , Kunde : {UN} , {LC}",
    "Techniker {PF} ist am {D} vor Ort in {LC} , {STR} .",
    "Kundin {PF} hat ihr Passwort vergessen , E-Mail {MAIL} bestätigt .",
    "Störung im Netz in {LC} und {LC} seit {D} , betroffen u. a. {UN} .",
    "Eskalation an {PF} , da der Kunde {PF} mit Kündigung droht .",
)
#: A CV's lines: personal data, stations, references.
CV = (
    "Lebenslauf\n{PF}\n{STR}\n{PLZ} {LC}",
    "Geboren am {D} in {LC}",
    "{YEAR} - {YEAR} : {N} bei {UN} , {LC}",
    "{YEAR} - heute : Projektleiter , {UN} , {LC}",
    "Studium an der Universität {LC} , Abschluss {YEAR}",
    "Auslandsaufenthalt : {YEAR} in {LC} , {LK}",
    "Referenz : {PF} , {UN} , {PHONE}",
    "Name : {PF}\nAnschrift : {STR} , {PLZ} {LC}\nTelefon : {PHONE}",
    "Staatsangehörigkeit : {ADJNAT}\nFamilienstand : verheiratet\nWohnort : {LC}",
    "Sprachen : Deutsch , Englisch , {LANGUAGE}",
    "Praktikum bei {UN} in {LC} , betreut von {PF}",
    "{LC} , den {D}\n{PF}",
)
#: Chat with colleagues or an assistant: short, often lower-case, names without titles.
CHAT_MORE = (
    "hi {FIRST} , bist du heute in {LC} ?",
    "sag {FIRST} bitte , dass ich später komme",
    "{FIRST} und {FIRST} sind schon in {LC} angekommen",
    "wo wohnt {FIRST} nochmal , in {LC} oder {LC} ?",
    "fasse die mail von {PF} kurz zusammen",
    "schreibe eine antwort an {PF} und bedanke dich für die einladung nach {LC}",
    "kannst du eine einladung an {PF} formulieren ?",
    "übersetze : Herr {PS} kommt am {D} aus {LC} zurück",
    "wie schreibe ich {FIRST} eine nette absage ?",
    "bin heute im homeoffice , {FIRST} vertritt mich",
    "erinnere mich morgen daran , {FIRST} anzurufen",
    "treffen mit {PF} um 15 uhr in {LC}",
    "was ist die hauptstadt von {LK} ?",
    "wir fahren am wochenende nach {LC} zu {FIRST}",
)


class _Gen:
    """Fills template slots; every ``s_*`` method returns labelled pieces."""

    def __init__(self, lex: Lexicon, rng: random.Random) -> None:
        self.lex = lex
        self.rng = rng
        known = lex.last_names | lex.duden
        self._surnames = _CharModel(lex.german_last)
        self._towns = _CharModel([c for c in lex.cities if " " not in c])
        self._known_names = known
        self._known_places = lex.places | lex.duden

    # -- names and places ----------------------------------------------------------
    def first(self) -> str:
        lex, r = self.lex, self.rng
        return r.choice(lex.german_first if r.random() < 0.75 else lex.foreign_first)

    def last(self) -> str:
        lex, r = self.lex, self.rng
        x = r.random()
        if x < 0.45:
            name = r.choice(lex.german_last)
        elif x < 0.65:
            name = r.choice(lex.foreign_last)
        else:
            name = self._surnames.word(r, self._known_names) or r.choice(lex.german_last)
        if r.random() < 0.06:
            name += "-" + r.choice(lex.german_last + lex.foreign_last)
        return name

    def initial(self) -> str:
        r = self.rng
        letter = r.choice("ABCDEFGHIJKLMNOPRSTUVWZ")
        x = r.random()
        if x < 0.55:
            return letter + "."
        if x < 0.75:
            return letter
        if x < 0.87:
            return letter + r.choice((" …", " ...", "…", "..."))
        return letter + r.choice("aeiouhr") + "."

    def town(self) -> str:
        r = self.rng
        x = r.random()
        if x < 0.1:
            return self._towns.word(r, self._known_places) or r.choice(self.lex.cities)
        if x < 0.45:
            return r.choice(self.lex.toponyms)
        return r.choice(self.lex.cities)

    def s_PF(self) -> list[Piece]:
        r = self.rng
        first = self.first()
        if r.random() < 0.1:
            first += " " + r.choice(self.lex.german_first)
        if r.random() < 0.08:
            first += " " + r.choice("ABCDEFGHJKLMNPRSTW") + "."
        last = self.last()
        if r.random() < 0.05:
            last = r.choice(("von", "van", "de", "von der", "zu")) + " " + last
        out: list[Piece] = []
        if r.random() < 0.2:
            out.append((r.choice(("Dr.", "Prof. Dr.", "Dipl.-Ing.", "Herr", "Frau")), None))
        if r.random() < 0.05:
            return [*out, (f"{last.upper()} , {first}", "PER")]
        out.append((f"{first} {last}", "PER"))
        return out

    def s_PS(self) -> list[Piece]:
        return [(self.last(), "PER")]

    def s_PI(self) -> list[Piece]:
        return [(self.initial(), "PER")]

    def s_PT(self) -> list[Piece]:
        r = self.rng
        title = r.choice(("Dr.", "Prof. Dr.", "Dr. med.", "Prof.", "Dipl.-Psych.", "Dr. rer. nat."))
        name = self.initial() if r.random() < 0.3 else self.last()
        return [(title, None), (name, "PER")]

    def s_TITLEP(self) -> list[Piece]:
        r = self.rng
        return [(r.choice(("Der Sachverständige", "Der Gutachter", "Der Facharzt")), None),
                *(self.s_PT() if r.random() < 0.6 else self.s_PF())]

    def s_FIRST(self) -> list[Piece]:
        return [(self.first(), "PER")]

    def s_LC(self) -> list[Piece]:
        return [(self.town(), "LOC")]

    def s_LK(self) -> list[Piece]:
        r = self.rng
        if r.random() < 0.12:
            return [(r.choice(("Republik", "Königreich", "Staat", "Freistaat")), "LOC"),
                    (r.choice(self.lex.countries), "LOC")]
        return [(r.choice(self.lex.countries), "LOC")]

    def s_FREISTAAT(self) -> list[Piece]:
        r = self.rng
        return [(r.choice(("Freistaat Sachsen", "Freistaat Bayern", "Freistaat Thüringen",
                           "Freie und Hansestadt Hamburg", "Freien und Hansestadt Hamburg",
                           "Freie Hansestadt Bremen", "Freien Hansestadt Bremen",
                           "Land Berlin", "Freistaates Bayern")), "LOC")]

    def s_KINGDOM(self) -> list[Piece]:
        r = self.rng
        return [(f"{r.choice(('Königreich', 'Republik', 'Staat', 'Fürstentum'))} "
                 f"{r.choice(self.lex.countries)}", "LOC")]

    def s_DE(self) -> list[Piece]:
        r = self.rng
        return [(r.choice(("Deutschland", "Bundesrepublik Deutschland", "Bundesrepublik",
                           "Deutschland", "Österreich", "Schweiz")), "LOC")]

    def s_LS(self) -> list[Piece]:
        return [(self.rng.choice(self.lex.states), "LOC")]

    def s_LI(self) -> list[Piece]:
        r = self.rng
        if r.random() < 0.5:
            return [(self.initial(), "LOC")]
        return self.s_LC()

    def s_L(self) -> list[Piece]:
        x = self.rng.random()
        if x < 0.45:
            return self.s_LC()
        if x < 0.75:
            return self.s_LK()
        if x < 0.9:
            return self.s_LS()
        return self.s_LI()

    def s_PX(self) -> list[Piece]:
        """A person anonymised as letters: "XX", "X", "Y.", "N. N."."""
        r = self.rng
        return [(r.choice(("XX", "X", "Y", "XY", "X.", "Y.", "N. N.", "A. B.", "Z")), "PER")]

    def s_LX(self) -> list[Piece]:
        """A place anonymised as letters ("G", "Gr", "Hi", "X", "M."), sometimes spelt out."""
        r = self.rng
        x = r.random()
        if x < 0.35:
            return [(r.choice("ABCDEFGHKLMNOPRSTWXYZ"), "LOC")]
        if x < 0.6:
            return [(r.choice("BDFGHKLMNPRSTW") + r.choice(("r", "i", "a", "e", "o", "u", "h", "l",
                                                              "r.", "i.", "a.")), "LOC")]
        if x < 0.8:
            return [(self.initial(), "LOC")]
        return self.s_LC()

    def s_LMULTI(self) -> list[Piece]:
        """A foreign village of two words nobody lists ("Bakhi Kali")."""
        r = self.rng
        words = [self._towns.word(r, self._known_places) or r.choice(self.lex.cities)
                 for _ in range(r.randint(1, 2))]
        if r.random() < 0.5:
            words.append(r.choice(self.lex.foreign_last))
        return [(" ".join(words), "LOC")]

    def s_PAUTH(self) -> list[Piece]:
        """An author of technical literature: "BRADLER , Christian", "J. Deubener", "Ekström , Å."."""
        r = self.rng
        last, first = self.last(), self.first()
        x = r.random()
        if x < 0.3:
            text = f"{last.upper()} , {first}"
        elif x < 0.55:
            text = f"{first[0]}. {last}"
        elif x < 0.75:
            text = f"{last} , {first[0]}."
        elif x < 0.9:
            text = f"{last} , {first}"
        else:
            text = last
        return [(text, "PER")]

    def s_TITLE(self) -> list[Piece]:
        """A title of technical literature, often English."""
        r = self.rng
        if r.random() < 0.5:
            words = r.sample(_EN_TITLE_WORDS, r.randint(3, 7))
            words[0] = words[0].capitalize()
            return [(" ".join(words), None)]
        return [(" ".join(r.choice(self.lex.nouns) for _ in range(r.randint(1, 3))), None)]

    def s_STRN(self) -> list[Piece]:
        """A street named without its house number."""
        text = self.s_STR()[0][0]
        if text.startswith("Bundesstraße"):
            return [(text, "LOC")]  # "Bundesstraße" alone is an ordinary noun
        return [(text.rsplit(" ", 1)[0], "LOC")]

    def s_STR(self) -> list[Piece]:
        r = self.rng
        base = r.choice((self.last(), self.town(), r.choice(self.lex.nouns)))
        suffix = r.choice(("straße", "str.", "weg", "allee", "platz", "gasse", "ring", " Straße",
                           "damm", "ufer"))
        base += suffix
        if r.random() < 0.1:
            return [(f"Bundesstraße {r.randint(1, 500)}", "LOC")]
        return [(f"{base} {r.randint(1, 180)}{r.choice(('', '', '', 'a', 'b'))}", "LOC")]

    # -- ordinary words and legal apparatus (all unlabelled) -------------------------
    def s_PHONE(self) -> list[Piece]:
        r = self.rng
        if r.random() < 0.5:
            return [(f"0{r.randint(30, 9999)} {r.randint(100000, 99999999)}", None)]
        return [(f"+49 {r.randint(30, 999)} {r.randint(1000000, 9999999)}", None)]

    def s_MAIL(self) -> list[Piece]:
        r = self.rng
        user = f"{self.first().lower()}.{self.last().lower()}"
        return [(f"{user}@{r.choice(('web.de', 'gmx.de', 'firma.de', 't-online.de', 'example.com'))}",
                 None)]

    def s_ADJNAT(self) -> list[Piece]:
        return [(self.rng.choice(("deutsch", "österreichisch", "türkisch", "polnisch", "italienisch",
                                  "kroatisch", "syrisch", "ukrainisch")), None)]

    def s_LANGUAGE(self) -> list[Piece]:
        return [(self.rng.choice(("Französisch", "Spanisch", "Türkisch", "Polnisch", "Russisch",
                                  "Italienisch", "Arabisch")), None)]

    def s_PLZ(self) -> list[Piece]:
        return [(f"{self.rng.randint(1000, 99999):05d}", None)]

    def noun(self) -> str:
        """A Duden noun, or one of Wiktionary's in any case and number."""
        r = self.rng
        return r.choice(self.lex.nouns if r.random() < 0.6 else self.lex.noun_forms)

    def s_N(self) -> list[Piece]:
        return [(self.rng.choice(self.lex.nouns), None)]

    def s_NC(self) -> list[Piece]:
        """An ordinary noun in any case and number ("Einkommenseinbußen", "Verzug")."""
        return [(self.rng.choice(self.lex.noun_forms), None)]

    def s_LW(self) -> list[Piece]:
        return [(self.rng.choice(self.lex.lower_words), None)]

    def s_ADJ(self) -> list[Piece]:
        return [(self.rng.choice(("polnischer", "türkischer", "deutscher", "syrischer",
                                  "rumänischer", "afghanischer", "italienischer")), None)]

    def s_ADV(self) -> list[Piece]:
        return [(self.rng.choice(("jedoch", "insoweit", "daher", "auch", "gleichwohl",
                                  "offensichtlich", "zu Recht", "nicht")), None)]

    def s_ROLE(self) -> list[Piece]:
        return [(self.rng.choice(_ROLES), None)]

    def s_ROLE_GEN(self) -> list[Piece]:
        return [(self.rng.choice(_ROLE_GEN).capitalize(), None)]

    def s_JUDGE(self) -> list[Piece]:
        return [(self.rng.choice(_JUDGE_ROLES), None)]

    def s_D(self) -> list[Piece]:
        r = self.rng
        if r.random() < 0.7:
            return [(f"{r.randint(1, 28)}. {r.choice(_MONTHS)} {r.randint(1990, 2024)}", None)]
        return [(f"{r.randint(1, 28)}. {r.randint(1, 12)}. {r.randint(1990, 2024)}", None)]

    def s_DAY(self) -> list[Piece]:
        return [(self.rng.choice(("Montag", "Dienstag", "Mittwoch", "Donnerstag", "Freitag",
                                  "morgen", "nächste Woche")), None)]

    def s_YEAR(self) -> list[Piece]:
        return [(str(self.rng.randint(1980, 2024)), None)]

    def s_YY(self) -> list[Piece]:
        return [(f"{self.rng.randint(0, 99):02d}", None)]

    def s_NUM(self) -> list[Piece]:
        return [(str(self.rng.randint(1, 120)), None)]

    def s_MONEY(self) -> list[Piece]:
        r = self.rng
        return [(f"{r.randint(1, 999)}.{r.randint(0, 999):03d},{r.randint(0, 99):02d} "
                 f"{r.choice(('€', 'EUR', 'DM'))}", None)]

    def s_ROMAN(self) -> list[Piece]:
        return [(self.rng.choice(("I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X")),
                 None)]

    def s_LETTER(self) -> list[Piece]:
        return [(self.rng.choice("ABCDEFGHIKLMNOPRSTUVXYZ"), None)]

    def s_LAW(self) -> list[Piece]:
        return [(self.rng.choice(_LAWS), None)]

    def s_PAR(self) -> list[Piece]:
        r = self.rng
        text = f"§ {r.randint(1, 400)}{r.choice(('', '', 'a', 'b'))}"
        if r.random() < 0.7:
            text += f" Abs. {r.randint(1, 6)}"
        if r.random() < 0.5:
            text += f" {r.choice(('Satz', 'S.', 'Nr.'))} {r.randint(1, 5)}"
        if r.random() < 0.2:
            text = "Art. " + text[2:]
        return [(f"{text} {r.choice(_LAWS)}", None)]

    def s_AZ(self) -> list[Piece]:
        r = self.rng
        return [(r.choice((f"{r.randint(1, 12)} {r.choice(('AZR', 'ZR', 'StR', 'BvR', 'B', 'C', 'U', 'S', 'R'))} "
                           f"{r.randint(1, 999)}/{r.randint(0, 24):02d}",
                           f"L {r.randint(1, 12)} R {r.randint(100, 9999)}/{r.randint(0, 24):02d}",
                           f"{r.choice(_ROMAN_AZ)} R {r.randint(1, 80)}/{r.randint(0, 24):02d}")),
                 None)]

    def s_GRT(self) -> list[Piece]:
        r = self.rng
        x = r.random()
        if x < 0.3:
            return [(f"{r.choice(_COURTS_CITY)} {self.town()}", None)]
        if x < 0.4:
            return [(f"{r.choice(_COURTS_STATE)} {r.choice(self.lex.states)}", None)]
        return [(r.choice(_FED), None)]

    def s_RS(self) -> list[Piece]:
        r = self.rng
        court = self.s_GRT()[0][0]
        x = r.random()
        date = self.s_D()[0][0]
        if x < 0.35:
            text = f"{court} , Urteil vom {date} - {self.s_AZ()[0][0]} - , Rn. {r.randint(1, 60)}"
        elif x < 0.6:
            text = f"{court} {r.choice(_JOURNALS)} {r.randint(1990, 2024)} , {r.randint(1, 3000)}"
        elif x < 0.7:
            party = r.choice((self.last(), r.choice(self.lex.nouns)))
            text = (f"EGMR , Urteil vom {date} - {r.randint(1000, 99999)}/{r.randint(0, 19):02d} - , "
                    f"{party} / {r.choice(self.lex.countries)} , Rn. {r.randint(1, 150)}")
        else:
            text = (f"{court} {r.choice(_JOURNALS)} {r.randint(1990, 2024)} , {r.randint(1, 999)} "
                    f"Rn. {r.randint(1, 60)} - {r.choice((self.last(), r.choice(self.lex.nouns)))}")
        return [(text, None)]

    def s_LIT(self) -> list[Piece]:
        r = self.rng
        x = r.random()
        if x < 0.3:
            text = (f"{self.last()} , in : {r.choice(_COMMENTARIES)} , {r.choice(_LAWS)} , "
                    f"{r.randint(2, 80)}. Aufl. {r.randint(1995, 2024)} , § {r.randint(1, 400)} Rn. {r.randint(1, 90)}")
        elif x < 0.55:
            text = (f"{r.choice(_COMMENTARIES)} / {self.last()} , {r.choice(_LAWS)} , "
                    f"{r.randint(2, 80)}. Aufl. , § {r.randint(1, 400)} Rn. {r.randint(1, 90)}")
        elif x < 0.8:
            authors = " / ".join(self.last() for _ in range(r.randint(2, 3)))
            text = f"{authors} , {r.choice(self.lex.nouns)} , {r.randint(1990, 2024)} , S. {r.randint(1, 900)}"
        else:
            text = (f"{self.last()} , {r.choice(_JOURNALS)} {r.randint(1990, 2024)} , "
                    f"{r.randint(1, 3000)} , {r.randint(1, 3000)}")
        return [(text, None)]

    def s_GS(self) -> list[Piece]:
        r = self.rng
        if r.random() < 0.3:
            law = r.choice(_LAW_PLACE).replace("{LS}", r.choice(self.lex.states))
        else:
            law = r.choice(_LAWS)
        return [(law, None)]

    def s_UN(self) -> list[Piece]:
        r = self.rng
        x = r.random()
        if x < 0.4:
            return [(f"{r.choice((self.last(), r.choice(self.lex.nouns)))} {r.choice(_COMPANY_SUFFIX)}",
                     None)]
        if x < 0.55:
            return [(r.choice(_ORG_PLACE).replace("{LC}", self.town()), None)]
        return [(f"{r.choice(self.lex.nouns)} {r.choice(_COMPANY_SUFFIX)}", None)]

    def s_NP(self) -> list[Piece]:
        r = self.rng
        words = [r.choice(_DETS)] if r.random() < 0.8 else []
        if r.random() < 0.3:
            words.append(r.choice(self.lex.lower_words))
        words.append(r.choice(self.lex.nouns))
        if r.random() < 0.3:
            words += [r.choice(("des", "der", "eines", "einer")), r.choice(self.lex.nouns)]
        return [(" ".join(words), None)]

    def s_FILLER(self) -> list[Piece]:
        """Pseudo-German prose: function words, Duden nouns and words, legal shorthand.

        Ungrammatical, but with German's capitalisation and its prepositions before
        ordinary nouns ("in Bezug", "nach Beendigung"), which the tagger must not take
        for places.
        """
        r = self.rng
        parts: list[str] = [r.choice(_LEAD)] if r.random() < 0.5 else []
        for _ in range(r.randint(3, 9)):
            x = r.random()
            if x < 0.22:
                parts.append(self.s_NP()[0][0])
            elif x < 0.3:
                parts.append(f"{r.choice(_PREPS[:14])} {self.noun()}")
            elif x < 0.42:
                parts.append(f"{r.choice(_PREPS)} {self.s_NP()[0][0] if r.random() < 0.4 else self.noun()}")
            elif x < 0.5:
                parts.append(f"{r.choice(_IDIOMS)} {self.s_NP()[0][0]}")
            elif x < 0.7:
                parts.append(r.choice(_FUNCTION))
            elif x < 0.82:
                parts.append(r.choice(self.lex.lower_words))
            elif x < 0.9:
                parts.append(r.choice(_ABBREV) + (f" {r.randint(1, 300)}" if r.random() < 0.4 else ""))
            elif x < 0.95:
                parts.append(", ".join(r.choice(self.lex.nouns) for _ in range(r.randint(2, 5)))
                             + f" {r.choice(('und', 'oder', 'sowie'))} {r.choice(self.lex.nouns)}")
            elif x < 0.97:
                parts.append(r.choice((",", "(", ")", "-", ":", "„", "“", "\"", "[ … ]", "...",
                                       "…")))
            else:
                parts.append(f"{r.choice(self.lex.nouns)}- {r.choice(('und', 'oder', 'bzw.'))} "
                             f"{r.choice(self.lex.nouns)}")
        if r.random() < 0.15:
            parts.insert(0, r.choice(("I.", "II.", "III.", "IV.", "1.", "2.", "a)", "b)", "aa)",
                                      "bb)", "cc)", "A.", "B.")))
        if r.random() < 0.08:
            parts.append(r.choice(("zu I.", "zu II.", "zu 1.", "zu 2.")))
        text = " ".join(parts)
        return [(text[:1].upper() + text[1:] + r.choice((" .", " ,", " ;", "")), None)]

    # -- assembly ------------------------------------------------------------------
    def render(self, template: str) -> list[Piece]:
        out: list[Piece] = []
        for part in _SLOT.split(template):
            if not part:
                continue
            if part.startswith("{") and part.endswith("}"):
                pieces = getattr(self, "s_" + part[1:-1])()
                for k, p in enumerate(pieces):
                    if k:
                        out.append((" ", None))
                    out.append(p)
            else:
                out.append((part, None))
        return out


_DETS = ("der", "die", "das", "des", "dem", "den", "ein", "eine", "einer", "eines", "einem",
         "diese", "dieser", "dieses", "seiner", "ihrer", "seinen", "ihren", "jeder", "keine",
         "aller", "beider", "deren", "dessen")
_PREPS = ("in", "nach", "aus", "von", "bei", "mit", "zu", "auf", "für", "über", "unter", "vor",
          "gegen", "ohne", "durch", "zur", "zum", "im", "am", "vom", "beim", "hinsichtlich",
          "wegen", "gemäß", "seit", "bis", "zwischen", "innerhalb", "aufgrund", "ab", "an")
_FUNCTION = ("ist", "sind", "war", "wird", "werden", "hat", "haben", "kann", "muss", "soll",
             "nicht", "auch", "nur", "noch", "bereits", "daher", "jedoch", "insoweit", "sowie",
             "und", "oder", "aber", "dass", "weil", "wenn", "soweit", "ob", "sich", "es", "er",
             "sie", "zu", "so", "wie", "als", "auch", "allein", "ferner", "zudem", "hier", "dort")
_ABBREV = ("z. B.", "z.B.", "vgl.", "i. V. m.", "iVm", "a. a. O.", "aaO", "u. a.", "ua.",
           "m. w. N.", "mwN", "bzw.", "ggf.", "sog.", "iHv", "d. h.", "u. U.", "i. S. d.",
           "i. S.", "S.", "Rn.", "Nr.", "Abs.", "Art.", "ff.", "f.", "Bl.", "Anl.", "Ziff.",
           "lit.", "Buchst.", "Halbs.", "Alt.", "Var.", "Aufl.", "Bd.", "Kap.", "zit.", "aF",
           "nF", "idF", "gem.", "usw.", "etc.", "Az.", "Tz.")
#: Prepositional phrases with ordinary nouns, frequent in legal German ("in Höhe von").
_IDIOMS = ("in Höhe von", "in Bezug auf", "in Betracht", "in Rede stehende", "in Kraft",
           "in Kenntnis", "in Anspruch", "in Verbindung mit", "in Form von", "in Frage",
           "in Anlehnung an", "nach Maßgabe", "in Fig.", "in Satz", "in Beispiel", "in Tabelle",
           "in Gestalt", "in Richtung", "in Tateinheit mit", "im Hinblick auf", "in Ansehung",
           "in Abweichung von", "nach Ansicht", "nach Auffassung", "in Ausnahmefällen",
           "nach Ablauf", "nach Eingang", "in Zusammenhang mit", "in Textform", "in Euro",
           "in Untersuchungshaft", "in Teilzeit", "in Vollzeit", "aus Sicht", "aus Gründen",
           "nach Erlass", "bei Abschluss", "in Übereinstimmung mit", "in Vertretung",
           "in Kopie", "nach Beendigung", "in Ermangelung", "zu Lasten", "zu Gunsten",
           "nach Hause", "zu Hause", "in Verzug", "in Schritt", "in Figur", "in Abb.",
           "in Anknüpfung an", "in Rede", "nach Fristablauf", "in Kraft")
_LEAD = ("Dies", "Das", "Die", "Der", "Es", "Hierzu", "Daher", "Insoweit", "Zudem", "Ferner",
         "Allerdings", "Danach", "Demnach", "Zwar", "Soweit", "Nach", "Im", "In", "Bei", "Mit",
         "Aus", "Auch", "Dabei", "Vielmehr", "Deshalb", "Gleichwohl", "Unabhängig")


_EN_TITLE_WORDS = (
    "analysis", "of", "the", "and", "in", "for", "a", "new", "method", "system", "power",
    "electronics", "high", "voltage", "glass", "crystal", "growth", "time", "induction",
    "nucleation", "control", "design", "study", "on", "with", "additional", "information",
    "check", "properties", "thin", "film", "laser", "sensor", "data", "network", "optical",
    "semiconductor", "device", "process", "materials", "review", "journal", "letters",
)
_ROMAN_AZ = ("I", "II", "III", "IV", "V", "VI", "VIII", "IX", "X", "XI")
_SLOT = re.compile(r"(\{[A-Z_]+\})")


def _assemble(pieces: Sequence[Piece], rng: random.Random) -> Sample:
    """Join pieces into text; sometimes in the LER layout (spaces around punctuation) and
    sometimes as ordinary prose ("Müller, Köln.")."""
    prose = rng.random() < 0.5
    text, spans = "", []
    for chunk, label in pieces:
        if prose and label is None:
            chunk = re.sub(r" ([,.;:?!)“])(?=\s|$)", r"\1", chunk)
            chunk = re.sub(r"([(„]) ", r"\1", chunk)
        if prose and label is None and text.endswith(" ") and chunk[:1] in ",.;:?!)":
            text = text[:-1]
        start = len(text)
        text += chunk
        if label:
            spans.append((start, len(text), label))
    return Sample(text, tuple(spans))


def generate(lex: Lexicon, n: int, seed: int) -> list[Sample]:
    """``n`` labelled samples; the same seed gives the same samples."""
    rng = random.Random(seed)
    gen = _Gen(lex, rng)
    registers: tuple[tuple[float, tuple[str, ...]], ...] = (
        (0.16, LEGAL), (0.13, LEGAL_NEGATIVE), (0.16, ("{FILLER}",)), (0.10, LETTERS),
        (0.05, CHAT), (0.05, CHAT_MORE), (0.05, SIGNATURES), (0.02, PATENT_LITERATURE),
        (0.08, MAIL), (0.08, HR), (0.06, TICKETS), (0.06, CV),
    )
    weights = [w for w, _ in registers]
    out: list[Sample] = []
    for _ in range(n):
        group = rng.choices([g for _, g in registers], weights)[0]
        k = 1 if rng.random() < 0.7 else 2
        pieces: list[Piece] = []
        for j in range(k):
            if j:
                pieces.append(("\n" if rng.random() < 0.3 else " ", None))
            if group is LEGAL and rng.random() < 0.3:
                pieces += [*gen.render("{FILLER}"), (" ", None)]
            pieces += gen.render(rng.choice(group))
            if rng.random() < 0.3:
                pieces += [(" ", None), *gen.render(rng.choice(("{FILLER}", *LEGAL_NEGATIVE)))]
        sample = _assemble(pieces, rng)
        if group in (CHAT, CHAT_MORE) and rng.random() < 0.4:
            sample = _lower(sample)
        out.append(sample)
    return out


def _lower(sample: Sample) -> Sample:
    """Chat typed in lower case, names too ("frag mal tim aus köln")."""
    lowered = sample.text.lower()
    return Sample(lowered, sample.spans) if len(lowered) == len(sample.text) else sample

