"""Demo dossiers: SQLite files in the reference schema, filled with plausible French data.

The data depend only on the seed: the same seed gives the same rows, another seed other
names, addresses, products and documents.  Codes are sequential whatever the seed
(clients ``CL00001``…, articles ``ART000001``…, orders ``BC00001``…, invoices
``FA00001``…; the family codes are a fixed list), so dossiers made with different seeds
share codes, as real company files do.  Dates derive from the seed, never from today's
date.

Every table of the reference schema is filled: clients and prospects, their contacts,
product families, products and their stock per depot, sales orders and invoices with
their lines.  Money and quantities are exact decimals written as the connector writes
them to a SQLite reference dossier (TEXT, shortest form: ``12.5``, ``3``); amounts have
two decimal places at most.  Each table has its own random stream, so asking for more
orders, say, leaves the clients, contacts and products of a seed unchanged.
"""

from __future__ import annotations

import os
import random
import re
import sqlite3
import tempfile
import unicodedata
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from itertools import islice
from pathlib import Path

from faker import Faker
from faker.providers.person.fr_FR import Provider as FrenchNames

from .mapping import ColumnMapping, SageMapping, TableMapping
from .reference_schema import reference_ddl

CLIENT_PREFIX = "CL"
CLIENT_DIGITS = 5
PROSPECT_SHARE = 0.2
DORMANT_SHARE = 0.03
NAME_LENGTH = 35

ARTICLE_PREFIX = "ART"
ARTICLE_DIGITS = 6
PRODUCT_DORMANT_SHARE = 0.05
SECOND_DEPOT_SHARE = 0.35
ORDER_PREFIX = "BC"
INVOICE_PREFIX = "FA"
PIECE_DIGITS = 5
ORDER_TYPE = 1
INVOICE_TYPE = 6
SALES_DOMAIN = 0
MAX_CONTACTS_PER_CLIENT = 3
MAX_LINES_PER_DOCUMENT = 5
VAT_RATE_PERCENT = 20
CHUNK_ROWS = 1000

_TRADES = (
    "Boulangerie",
    "Pâtisserie",
    "Boucherie",
    "Fromagerie",
    "Crémerie",
    "Épicerie",
    "Brasserie",
    "Hôtel",
    "Café",
    "Librairie",
    "Pharmacie",
    "Garage",
    "Carrosserie",
    "Menuiserie",
    "Ébénisterie",
    "Électricité",
    "Plomberie",
    "Chauffage",
    "Imprimerie",
    "Quincaillerie",
    "Transports",
    "Cabinet",
    "Atelier",
    "Jardinerie",
    "Vins et Spiritueux",
    "Opticien",
    "Fleuriste",
    "Maçonnerie",
)
_LEGAL_FORMS = ("SARL", "SAS", "SA", "EURL", "SASU", "& Fils", "et Associés", "Frères")
_COMPLEMENTS = (
    "Bâtiment A",
    "Bâtiment B",
    "ZI des Écluses",
    "ZA du Pré Vert",
    "Résidence Les Érables",
    "Parc d'activités",
    "BP 12",
    "Rez-de-chaussée",
    "Escalier C",
)
_SALES_REPS = (1, 2, 3, 4, 5)

CIVILITY_MR, CIVILITY_MRS, CIVILITY_MISS = 0, 1, 2
_MALE_NAMES: tuple[str, ...] = tuple(FrenchNames.first_names_male)
_FEMALE_NAMES: tuple[str, ...] = tuple(FrenchNames.first_names_female)
_LAST_NAMES: tuple[str, ...] = tuple(FrenchNames.last_names)

# (masculine, feminine) job titles; the first contact of a client usually runs it.
_MANAGERS = (
    ("Gérant", "Gérante"),
    ("Président", "Présidente"),
    ("Directeur général", "Directrice générale"),
)
_FUNCTIONS = (
    ("Comptable", "Comptable"),
    ("Responsable achats", "Responsable achats"),
    ("Directeur commercial", "Directrice commerciale"),
    ("Assistant de direction", "Assistante de direction"),
    ("Chef de rayon", "Cheffe de rayon"),
    ("Responsable administratif", "Responsable administrative"),
    ("Secrétaire", "Secrétaire"),
    ("Chef d'atelier", "Cheffe d'atelier"),
    ("Responsable logistique", "Responsable logistique"),
    ("Acheteur", "Acheteuse"),
)


@dataclass(frozen=True)
class _Family:
    """A product family and what its articles are made of.

    An article is ``item [variant], format``.  Each item has a typical purchase price in
    cents for the first format; a format multiplies it by its factor.  A ``measured``
    format (sold by the kilo or the metre) has fractional stock.
    """

    code: str
    label: str
    items: tuple[tuple[str, int], ...]
    variants: tuple[str, ...]
    formats: tuple[tuple[str, float, bool], ...]


_FAMILIES = (
    _Family(
        "BOUL",
        "Boulangerie et meunerie",
        (
            ("Farine de blé T45", 120),
            ("Farine de blé T55", 95),
            ("Farine de blé T65", 110),
            ("Farine de seigle T130", 180),
            ("Farine d'épeautre T70", 260),
            ("Farine de sarrasin", 290),
            ("Semoule de blé dur", 150),
            ("Mélange multicéréales", 240),
            ("Gruau de blé", 170),
            ("Graines de sésame doré", 950),
        ),
        ("", "bio", "Label Rouge", "Minoterie Giraud", "Moulins de Provence"),
        (("sac de 1 kg", 1, False), ("sac de 5 kg", 4.5, False), ("sac de 25 kg", 20, False)),
    ),
    _Family(
        "PATIS",
        "Pâtisserie",
        (
            ("Sucre glace", 110),
            ("Chocolat noir de couverture 64 %", 950),
            ("Chocolat au lait 38 %", 880),
            ("Poudre d'amandes blanchies", 780),
            ("Pâte d'amandes 33 %", 520),
            ("Praliné noisettes 50 %", 890),
            ("Pistaches émondées", 1650),
            ("Noix de coco râpée", 380),
            ("Fondant pâtissier blanc", 340),
            ("Cacao en poudre", 620),
        ),
        ("", "bio", "qualité pro", "Maison Lefèvre"),
        (("sachet de 500 g", 1, False), ("sachet de 1 kg", 1.8, False), ("seau de 5 kg", 8, False)),
    ),
    _Family(
        "EPIC",
        "Épicerie fine",
        (
            ("Huile d'olive vierge extra 50 cl", 850),
            ("Vinaigre balsamique de Modène 25 cl", 620),
            ("Moutarde à l'ancienne 210 g", 290),
            ("Confiture de fraises 370 g", 350),
            ("Miel de lavande 250 g", 690),
            ("Pâté de campagne 180 g", 310),
            ("Rillettes du Mans 220 g", 420),
            ("Fleur de sel de Guérande 125 g", 480),
            ("Terrine de canard au poivre 180 g", 560),
            ("Cassoulet de Castelnaudary 840 g", 720),
        ),
        ("", "bio", "Maison Barthélemy", "Les Délices d'Aurélie"),
        (("l'unité", 1, False), ("carton de 6", 5.7, False), ("carton de 12", 11, False)),
    ),
    _Family(
        "BOISS",
        "Boissons",
        (
            ("Eau minérale naturelle 1,5 L", 45),
            ("Eau pétillante 50 cl", 40),
            ("Jus de pomme artisanal 1 L", 260),
            ("Cidre brut de Normandie 75 cl", 320),
            ("Limonade à l'ancienne 75 cl", 230),
            ("Côtes-du-Rhône rouge 75 cl", 520),
            ("Chablis blanc 75 cl", 1250),
            ("Crémant de Loire brut 75 cl", 790),
            ("Bière blonde d'abbaye 33 cl", 140),
            ("Sirop de grenadine 1 L", 290),
        ),
        ("", "bio", "édition limitée"),
        (("la bouteille", 1, False), ("carton de 6", 5.8, False), ("carton de 12", 11.2, False)),
    ),
    _Family(
        "CREM",
        "Crèmerie et fromages",
        (
            ("Comté AOP 18 mois", 1890),
            ("Beaufort AOP", 2450),
            ("Tomme de Savoie IGP", 1290),
            ("Cantal entre-deux AOP", 1350),
            ("Emmental de Savoie IGP", 1090),
            ("Morbier AOP", 1420),
            ("Mimolette extra-vieille", 1990),
            ("Ossau-Iraty AOP", 2150),
            ("Saint-Nectaire fermier AOP", 1590),
            ("Bleu d'Auvergne AOP", 1180),
        ),
        ("", "fermier", "bio", "affiné en cave"),
        (("à la coupe, le kg", 1, True), ("pièce entière", 9, False)),
    ),
    _Family(
        "QUINC",
        "Quincaillerie",
        (
            ("Vis à bois tête fraisée 4 x 40 mm", 290),
            ("Cheville nylon 8 mm", 240),
            ("Clou tête plate 2,5 x 50 mm", 150),
            ("Boulon tête hexagonale M8 x 60", 1850),
            ("Écrou frein M10", 820),
            ("Rondelle plate M6", 180),
            ("Tire-fond 8 x 80 mm", 1450),
            ("Piton à vis laiton", 690),
            ("Crochet à visser laiton", 590),
            ("Équerre d'assemblage 60 mm", 1290),
        ),
        ("", "qualité pro", "Fixtout", "inox A2"),
        (("boîte de 50", 1, False), ("boîte de 100", 1.8, False), ("boîte de 500", 8, False)),
    ),
    _Family(
        "ELEC",
        "Électricité",
        (
            ("Fil H07V-U 1,5 mm² rouge", 38),
            ("Fil H07V-U 2,5 mm² bleu", 55),
            ("Fil de terre vert-jaune 6 mm²", 140),
            ("Câble R2V 3G2,5", 165),
            ("Câble souple H07RN-F 3G1,5", 210),
            ("Gaine ICTA Ø 20 mm", 48),
            ("Conduit IRL Ø 25 mm", 95),
            ("Câble RJ45 catégorie 6", 89),
            ("Câble coaxial TV 17 VATC", 75),
            ("Câble haut-parleur 2 x 1,5 mm²", 60),
        ),
        ("", "qualité pro", "sans halogène", "Nexelec"),
        (("au mètre", 1, True), ("couronne de 25 m", 22, False), ("couronne de 100 m", 80, False)),
    ),
    _Family(
        "PLOMB",
        "Plomberie et sanitaire",
        (
            ("Tube cuivre recuit Ø 14 mm", 790),
            ("Tube PER nu Ø 16 mm", 95),
            ("Tube PER gainé Ø 20 mm", 190),
            ("Tube multicouche Ø 20 mm", 290),
            ("Tube PVC évacuation Ø 40 mm", 310),
            ("Tube PVC évacuation Ø 100 mm", 650),
            ("Gaine annelée Ø 25 mm", 120),
            ("Tuyau polyéthylène Ø 25 mm", 160),
        ),
        ("", "qualité pro", "norme NF", "Sanibéryl"),
        (("au mètre", 1, True), ("lot de 25 m", 22, False), ("lot de 50 m", 42, False)),
    ),
    _Family(
        "ENTRET",
        "Entretien et hygiène",
        (
            ("Liquide vaisselle concentré 1 L", 290),
            ("Nettoyant multi-surfaces 5 L", 1190),
            ("Savon liquide mains 500 ml", 340),
            ("Essuie-mains en rouleau", 690),
            ("Papier toilette 2 plis (12 rouleaux)", 520),
            ("Sacs poubelle 100 L (rouleau de 10)", 380),
            ("Gants nitrile taille M (boîte de 100)", 790),
            ("Désinfectant surfaces 750 ml", 450),
            ("Lavette microfibre", 210),
            ("Détartrant sanitaires 750 ml", 390),
        ),
        ("", "écolabel", "parfum citron", "sans parfum"),
        (("l'unité", 1, False), ("carton de 6", 5.6, False), ("carton de 12", 10.5, False)),
    ),
    _Family(
        "BUREAU",
        "Fournitures de bureau",
        (
            ("Ramette papier A4 80 g", 520),
            ("Stylo bille bleu", 45),
            ("Surligneur jaune fluo", 80),
            ("Classeur à levier dos 80 mm", 290),
            ("Enveloppes DL 110 x 220 (boîte de 500)", 1590),
            ("Bloc repositionnable 76 x 76 mm", 160),
            ("Agrafes 26/6 (boîte de 1000)", 120),
            ("Chemise cartonnée 24 x 32", 35),
            ("Cahier à spirale 21 x 29,7", 190),
            ("Étiquettes adhésives 70 x 37 (100 feuilles)", 1490),
        ),
        ("", "recyclé", "premier prix", "Bureautique Émeraude"),
        (("l'unité", 1, False), ("lot de 10", 9, False), ("carton de 50", 40, False)),
    ),
    _Family(
        "EMBAL",
        "Emballages",
        (
            ("Carton de déménagement 55 x 35 x 30", 2400),
            ("Boîte pâtissière 24 x 24", 1100),
            ("Sac kraft à poignées", 650),
            ("Sachet zip 10 x 15 cm", 180),
            ("Ruban adhésif brun 50 mm", 2100),
            ("Papier de soie blanc", 150),
            ("Barquette aluminium 1 L", 450),
            ("Sachet croissant kraft", 90),
            ("Pochette à bulles 22 x 34", 850),
            ("Gobelet carton 20 cl", 200),
        ),
        ("", "recyclé", "compostable", "qualité alimentaire"),
        (("paquet de 25", 1, False), ("paquet de 100", 3.6, False), ("carton de 500", 16, False)),
    ),
    _Family(
        "JARDIN",
        "Jardinage",
        (
            ("Terreau universel 40 L", 690),
            ("Engrais gazon 5 kg", 1490),
            ("Semences de gazon rustique 1 kg", 1290),
            ("Bulbes de tulipes (sachet de 20)", 590),
            ("Paillage écorces de pin 50 L", 890),
            ("Sécateur de jardin", 2490),
            ("Tuyau d'arrosage Ø 15 mm (25 m)", 2990),
            ("Pot en terre cuite Ø 30 cm", 1590),
            ("Gants de jardinage", 690),
            ("Arrosoir 10 L", 1190),
        ),
        ("", "bio", "qualité pro", "Jardins d'Hélène"),
        (("l'unité", 1, False), ("lot de 3", 2.8, False), ("lot de 10", 9, False)),
    ),
)

_ORDER_STATUSES = (0, 1, 2)  # saisi, confirmé, accepté
_ORDER_STATUS_WEIGHTS = (25, 45, 30)
_INVOICE_STATUS_WEIGHTS = (10, 30, 60)
_QUANTITIES = ((1, 1, 1, 2, 3), (1, 2, 2, 3, 4, 5, 6, 10), (1, 2, 3, 5, 6, 10, 12, 20, 24, 50))
_DISCOUNTS = (0, 5, 10)
_DISCOUNT_WEIGHTS = (70, 20, 10)
_MONTHS = (
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
)


def _same(message: str) -> str:
    return message


def _english(singular: str, plural: str, count: int) -> str:
    return singular if count == 1 else plural


@dataclass(frozen=True)
class DemoSummary:
    """What a demo dossier holds."""

    path: Path
    seed: int
    clients: int
    prospects: int
    dormant: int
    contacts: int = 0
    families: int = 0
    products: int = 0
    stock: int = 0
    orders: int = 0
    order_lines: int = 0
    invoices: int = 0
    invoice_lines: int = 0
    layout: str = "reference"

    def __str__(self) -> str:
        return self.words()

    def words(
        self,
        gettext: Callable[[str], str] = _same,
        ngettext: Callable[[str, str, int], str] = _english,
    ) -> str:
        """What it holds, on one line: in English, or in the language of ``gettext`` and
        ``ngettext`` (``dossiersync demo-dossier`` gives the command line's)."""
        n = {
            "clients": ngettext("{count} client", "{count} clients", self.clients),
            "prospects": ngettext("{count} prospect", "{count} prospects", self.prospects),
            "dormant": ngettext("{count} dormant", "{count} dormant", self.dormant),
            "contacts": ngettext("{count} contact", "{count} contacts", self.contacts),
            "families": ngettext("{count} family", "{count} families", self.families),
            "products": ngettext("{count} product", "{count} products", self.products),
            "stock": ngettext("{count} stock row", "{count} stock rows", self.stock),
            "orders": ngettext("{count} order", "{count} orders", self.orders),
            "order_lines": ngettext("{count} line", "{count} lines", self.order_lines),
            "invoices": ngettext("{count} invoice", "{count} invoices", self.invoices),
            "invoice_lines": ngettext("{count} line", "{count} lines", self.invoice_lines),
        }
        said = {name: text.format(count=getattr(self, name)) for name, text in n.items()}
        layout = ""
        if self.layout != "reference":
            layout = " (" + gettext("layout {layout}").format(layout=self.layout) + ")"
        return (
            f"{said['clients']} ({said['prospects']}, {said['dormant']}), {said['contacts']}, "
            f"{said['families']}, {said['products']}, {said['stock']}, "
            f"{said['orders']} ({said['order_lines']}), "
            f"{said['invoices']} ({said['invoice_lines']}){layout}"
        )


@dataclass(frozen=True)
class _Clock:
    """Fixed dates of a demo dossier, derived from its seed."""

    reference: datetime

    @classmethod
    def for_seed(cls, seed: int) -> _Clock:
        return cls(datetime(2024, 1, 1, 8, 0, 0) + timedelta(days=seed % 366))

    def creation(self, rng: random.Random) -> date:
        return (self.reference - timedelta(days=rng.randrange(30, 9 * 365))).date()

    def modification(self, rng: random.Random, created: date) -> str:
        start = datetime(created.year, created.month, created.day, 8, 0, 0)
        span = max(1, int((self.reference - start).total_seconds() * 1000))
        moment = start + timedelta(milliseconds=rng.randrange(span))
        return moment.isoformat(" ", "milliseconds")  # 'YYYY-MM-DD hh:mm:ss.fff'

    def soon_after(self, rng: random.Random, day: date, days: int = 60) -> str:
        """A moment within ``days`` days of ``day`` (and not after the reference date)."""
        start = datetime(day.year, day.month, day.day, 8, 0, 0)
        end = min(self.reference, start + timedelta(days=days))
        span = max(1, int((end - start).total_seconds() * 1000))
        return (start + timedelta(milliseconds=rng.randrange(span))).isoformat(" ", "milliseconds")

    def document_day(self, index: int, count: int) -> date:
        """The date of the ``index``-th of ``count`` documents spread over the past year."""
        return (self.reference - timedelta(days=365 - index * 365 // max(count, 1))).date()


_NOT_IN_DOMAINS = frozenset({"sarl", "sas", "sa", "eurl", "sasu", "s", "a", "r", "l", "et"})


def _ascii(text: str) -> str:
    text = text.replace("œ", "oe").replace("Œ", "Oe").replace("æ", "ae").replace("Æ", "Ae")
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


def _slug(text: str) -> str:
    """A domain label from a company name: no accents, no legal form."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    words = "".join(ch if ch.isalnum() else " " for ch in ascii_text.lower()).split()
    return "-".join(word for word in words if word not in _NOT_IN_DOMAINS)


@lru_cache(maxsize=4096)
def _mailbox(name: str) -> str:
    """An e-mail local part from a first or last name: ``Le Gall`` → ``le-gall``."""
    folded = re.sub(r"['’]", "", _ascii(name).lower())
    return re.sub(r"[^a-z0-9]+", "-", folded).strip("-")


def _luhn_digit(digits: str) -> str:
    """The digit that makes ``digits`` + it pass the Luhn check (SIREN, SIRET)."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 0:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return str((10 - total % 10) % 10)


def ean13_check_digit(body: str) -> str:
    """The check digit of the 12-digit EAN-13 ``body`` (weights 1, 3, 1… from the left)."""
    total = sum(map(int, body[0::2])) + 3 * sum(map(int, body[1::2]))
    return str((10 - total % 10) % 10)


def _siren(rng: random.Random) -> str:
    body = f"{rng.randrange(10**7, 10**8):08d}"
    return body + _luhn_digit(body)


def _vat_number(siren: str) -> str:
    return f"FR{(12 + 3 * (int(siren) % 97)) % 97:02d}{siren}"


def _fit(text: str, length: int) -> str:
    if len(text) <= length:
        return text
    cut = text[:length].rsplit(" ", 1)[0]
    return (cut if cut else text[:length]).rstrip(" ,-")


def _phone(rng: random.Random) -> str:
    pairs = " ".join(f"{rng.randrange(100):02d}" for _ in range(4))
    return f"0{rng.choice('1234579')} {pairs}"


def _direct_line(rng: random.Random, prefixes: str) -> str:
    """A contact's number, landline (``prefixes`` ``1234579``) or mobile (``67``)."""
    d = f"{rng.randrange(10**8):08d}"
    return f"0{rng.choice(prefixes)} {d[0:2]} {d[2:4]} {d[4:6]} {d[6:8]}"


def _decimal_text(units: int, places: int) -> str:
    """``units`` × 10^-places as the connector writes a decimal to SQLite: ``12.5``, ``3``."""
    whole, fraction = divmod(units, 10**places)
    if not fraction:
        return str(whole)
    return f"{whole}.{fraction:0{places}d}".rstrip("0")


def _money(cents: int) -> str:
    return _decimal_text(cents, 2)


def _cents(text: str) -> int:
    return int(Decimal(text).scaleb(2))


def _company_name(fake: Faker, rng: random.Random, length: int = NAME_LENGTH) -> str:
    if rng.random() < 0.6:
        name = f"{rng.choice(_TRADES)} {fake.last_name()} {rng.choice(_LEGAL_FORMS)}"
    else:
        name = f"{fake.company()}"
    if length > NAME_LENGTH and rng.random() < 0.2:
        # a layout with room for longer names gets some: the trade name and its town
        name = f"{name} — {fake.city()}"
    return _fit(name, length)


def _client_rows(
    fake: Faker, rng: random.Random, clock: _Clock, count: int, name_length: int = NAME_LENGTH
) -> Iterator[dict[str, object]]:
    for number in range(1, count + 1):
        name = _company_name(fake, rng, name_length)
        slug = _slug(name)[:50].strip("-") or f"client-{number}"
        domain = f"{slug}.{rng.choice(('fr', 'fr', 'fr', 'com', 'eu'))}"
        siren = _siren(rng)
        nic = f"{rng.randrange(1, 1000):04d}"
        created = clock.creation(rng)
        mailbox = rng.choice(("contact", "compta", "accueil", "info"))
        yield {
            "CT_Num": f"{CLIENT_PREFIX}{number:0{CLIENT_DIGITS}d}",
            "CT_Intitule": name,
            "CT_Type": 0,
            "CT_Prospect": 1 if rng.random() < PROSPECT_SHARE else 0,
            "CT_Adresse": _fit(fake.street_address(), 35),
            "CT_Complement": rng.choice(_COMPLEMENTS) if rng.random() < 0.15 else None,
            "CT_CodePostal": fake.postcode(),
            "CT_Ville": _fit(fake.city(), 35),
            "CT_Pays": "France",
            "CT_Telephone": _phone(rng),
            "CT_EMail": _fit(f"{mailbox}@{domain}", 69),
            "CT_Site": _fit(f"www.{domain}", 69),
            "CT_Identifiant": _vat_number(siren),
            "CT_Siret": siren + nic + _luhn_digit(siren + nic),
            "CO_No": rng.choice(_SALES_REPS) if rng.random() < 0.8 else None,
            "CT_Sommeil": 1 if rng.random() < DORMANT_SHARE else 0,
            "CT_DateCreate": created.isoformat(),
            "cbModification": clock.modification(rng, created),
        }


class _Spread:
    """Deals ``total`` items over ``slots`` slots one slot at a time, at most ``cap`` each.

    Each slot draws a binomial count around the mean still to deal, clamped so that the
    total is reached exactly: with 1.5 items a slot and a cap of 3, slots get 0, 1, 2 or
    3 items in 1, 3, 3 and 1 eighths of the cases.
    """

    def __init__(self, rng: random.Random, total: int, slots: int, cap: int) -> None:
        self._rng = rng
        self._left = total
        self._slots = slots
        self._cap = cap

    def next(self) -> int:
        if self._slots <= 0:
            return 0
        cap, rng = self._cap, self._rng
        chance = self._left / self._slots / cap
        drawn = sum(1 for _ in range(cap) if rng.random() < chance)
        low = max(0, self._left - cap * (self._slots - 1))
        count = min(max(drawn, low), cap, self._left)
        self._left -= count
        self._slots -= 1
        return count


def _contact_rows(
    rng: random.Random,
    clock: _Clock,
    clients: Iterable[Mapping[str, object]],
    spread: _Spread,
) -> Iterator[dict[str, object]]:
    for client in clients:
        count = spread.next()
        if not count:
            continue
        domain = str(client["CT_EMail"]).rsplit("@", 1)[1]
        taken: set[str] = set()
        for number in range(1, count + 1):
            roll = rng.random()
            civility = CIVILITY_MISS if roll < 0.02 else CIVILITY_MRS if roll < 0.5 else CIVILITY_MR
            feminine = civility != CIVILITY_MR
            first = rng.choice(_FEMALE_NAMES if feminine else _MALE_NAMES)
            last = rng.choice(_LAST_NAMES)
            titles = _MANAGERS if number == 1 and rng.random() < 0.7 else _FUNCTIONS
            title = rng.choice(titles)[1 if feminine else 0]
            local = f"{_mailbox(first)}.{_mailbox(last)}"
            if local in taken:
                local = f"{local}{number}"
            taken.add(local)
            room = 69 - 1 - len(domain)
            if len(local) > room:
                local = f"{_mailbox(first)[:1]}.{_mailbox(last)}"[:room].rstrip(".-")
            created = clock.creation(rng)
            yield {
                "CT_Num": client["CT_Num"],
                "CT_No": number,
                "CT_Nom": _fit(last, 35),
                "CT_Prenom": _fit(first, 35),
                "CT_Civilite": civility,
                "CT_Fonction": _fit(title, 35),
                "CT_Telephone": _direct_line(rng, "1234579") if rng.random() < 0.85 else None,
                "CT_TelPortable": _direct_line(rng, "67") if rng.random() < 0.7 else None,
                "CT_EMail": f"{local}@{domain}",
                "cbModification": clock.modification(rng, created),
            }


def _family_rows(rng: random.Random, clock: _Clock) -> Iterator[dict[str, object]]:
    for family in _FAMILIES:
        yield {
            "FA_CodeFamille": family.code,
            "FA_Intitule": _fit(family.label, 35),
            "cbModification": clock.modification(rng, clock.creation(rng)),
        }


def _ean13(rng: random.Random) -> str:
    body = f"3{rng.randrange(80):02d}{rng.randrange(10**9):09d}"
    return body + ean13_check_digit(body)


def _product_rows(rng: random.Random, clock: _Clock, count: int) -> Iterator[dict[str, object]]:
    """Article rows; ``_measured`` (not a column) says the article is sold by measure."""
    for number in range(1, count + 1):
        family = rng.choice(_FAMILIES)
        item, typical = rng.choice(family.items)
        variant = rng.choice(family.variants)
        label, factor, measured = rng.choice(family.formats)
        design = f"{item} {variant}, {label}" if variant else f"{item}, {label}"
        cost = max(10, round(typical * factor * rng.randrange(80, 121) / 100))
        margin = rng.randrange(125, 181)
        price = max(cost + 1, (cost * margin + 50) // 100)
        modified = clock.modification(rng, clock.creation(rng))
        yield {
            "AR_Ref": f"{ARTICLE_PREFIX}{number:0{ARTICLE_DIGITS}d}",
            "AR_Design": _fit(design, 69),
            "FA_CodeFamille": family.code,
            "AR_PrixVen": _money(price),
            "AR_PrixAch": _money(cost),
            "AR_CodeBarre": _ean13(rng),
            "AR_Sommeil": 1 if rng.random() < PRODUCT_DORMANT_SHARE else 0,
            "AR_DateModif": modified[:10],
            "cbModification": modified,
            "_measured": measured,
        }


def _quantity(rng: random.Random, measured: bool, low: int, high: int) -> str:
    """A quantity between ``low`` and ``high``: whole, or to a tenth for measured goods."""
    if measured:
        return _decimal_text(rng.randrange(low * 10, high * 10 + 1), 1)
    return str(rng.randrange(low, high + 1))


def _stock_rows(
    rng: random.Random, clock: _Clock, products: Iterable[Mapping[str, object]]
) -> Iterator[dict[str, object]]:
    for product in products:
        if product["AR_Sommeil"]:
            continue
        measured = bool(product["_measured"])
        since = date.fromisoformat(str(product["AR_DateModif"]))
        depots = 2 if rng.random() < SECOND_DEPOT_SHARE else 1
        for depot in range(1, depots + 1):
            in_stock = "0" if rng.random() < 0.08 else _quantity(rng, measured, 1, 400)
            limit = min(int(Decimal(in_stock)), 40)
            yield {
                "AR_Ref": product["AR_Ref"],
                "DE_No": depot,
                "AS_QteSto": in_stock,
                "AS_QteRes": _quantity(rng, measured, 0, limit) if rng.random() < 0.4 else "0",
                "AS_QteCom": str(rng.randrange(10, 210, 10)) if rng.random() < 0.25 else "0",
                "cbModification": clock.modification(rng, since),
            }


_CUSTOMER_REFERENCES = (
    "Cde {number}",
    "BC-{year}-{number:04d}",
    "Réassort {month}",
    "Commande {month}",
    "Chantier {number}",
    "Salon {year}",
)


def _customer_reference(rng: random.Random, day: date) -> str | None:
    if rng.random() < 0.3:
        return None
    template = rng.choice(_CUSTOMER_REFERENCES)
    text = template.format(
        number=rng.randrange(1, 10000), year=day.year, month=_MONTHS[day.month - 1]
    )
    return _fit(text, 17)


class _Catalogue:
    """Sale price and designation of the active articles, looked up when a line needs one."""

    def __init__(
        self, connection: sqlite3.Connection, table: TableMapping, active: array[int]
    ) -> None:
        design, price, ref = (
            _quoted(table.columns[name].column) for name in ("AR_Design", "AR_PrixVen", "AR_Ref")
        )
        self._sql = f"SELECT {design}, {price} FROM {_quoted(table.table)} WHERE {ref} = ?"  # noqa: S608
        self._connection = connection
        self._active = active

    def pick(self, rng: random.Random, count: int) -> list[tuple[str, str, int]]:
        """``count`` distinct active articles, or all there are: ref, design, price in cents."""
        indexes = rng.sample(range(len(self._active)), min(count, len(self._active)))
        picked = []
        for index in indexes:
            ref = f"{ARTICLE_PREFIX}{self._active[index]:0{ARTICLE_DIGITS}d}"
            design, price = self._connection.execute(self._sql, (ref,)).fetchone()
            picked.append((ref, design, _cents(price)))
        return picked


def _document_rows(
    rng: random.Random,
    clock: _Clock,
    catalogue: _Catalogue,
    customers: array[int],
    *,
    kind: int,
    prefix: str,
    count: int,
    status_weights: tuple[int, ...],
    statuses: tuple[int, ...] = _ORDER_STATUSES,
) -> Iterator[tuple[dict[str, object], list[dict[str, object]]]]:
    """Sales documents of one type, each a header and its lines, numbered in date order."""
    for index in range(count):
        piece = f"{prefix}{index + 1:0{PIECE_DIGITS}d}"
        day = clock.document_day(index, count)
        modified = clock.soon_after(rng, day)
        customer = customers[rng.randrange(len(customers))]
        lines = []
        total = 0
        wanted = rng.randint(1, MAX_LINES_PER_DOCUMENT)
        for position, (ref, design, price) in enumerate(catalogue.pick(rng, wanted), start=1):
            quantity = rng.choice(_QUANTITIES[0 if price > 10000 else 1 if price > 2000 else 2])
            discount = rng.choices(_DISCOUNTS, _DISCOUNT_WEIGHTS)[0]
            amount = (quantity * price * (100 - discount) + 50) // 100
            total += amount
            lines.append(
                {
                    "DO_Domaine": SALES_DOMAIN,
                    "DO_Type": kind,
                    "DO_Piece": piece,
                    "DL_Ligne": position * 1000,
                    "AR_Ref": ref,
                    "DL_Design": design,
                    "DL_Qte": str(quantity),
                    "DL_PrixUnitaire": _money(price),
                    "DL_Remise01REM_Valeur": str(discount),
                    "DL_MontantHT": _money(amount),
                    "cbModification": modified,
                }
            )
        header: dict[str, object] = {
            "DO_Domaine": SALES_DOMAIN,
            "DO_Type": kind,
            "DO_Piece": piece,
            "DO_Date": day.isoformat(),
            "DO_Ref": _customer_reference(rng, day),
            "DO_Tiers": f"{CLIENT_PREFIX}{customer:0{CLIENT_DIGITS}d}",
            "DO_Statut": rng.choices(statuses, status_weights)[0],
            "DO_TotalHT": _money(total),
            "DO_TotalTTC": _money((total * (100 + VAT_RATE_PERCENT) + 50) // 100),
            "cbModification": modified,
        }
        yield header, lines


def _quoted(name: str | None) -> str:
    return '"' + str(name).replace('"', '""') + '"'


class _Writer:
    """Inserts rows into one table as they come, counting them (and their set flags).

    Rows speak logical columns with the reference schema's values; the mapping says
    where each goes: a constant or absent column nowhere, a value-mapped one as its Sage
    value, references (a line's header) as the referred row's id, looked up in the file.
    """

    def __init__(
        self,
        connection: sqlite3.Connection,
        mapping: SageMapping,
        table: str,
        flags: tuple[str, ...] = (),
    ) -> None:
        spec = mapping.table(table)
        self._connection = connection
        self._flags = flags
        self.rows = 0
        self.flagged = dict.fromkeys(flags, 0)
        self._values: list[tuple[str, ColumnMapping]] = []
        targets, marks = [], []
        referring: dict[str, list[str]] = {}
        for name in spec.writable:
            column = spec.columns[name]
            if not column.physical:
                continue
            if column.refers is not None:
                referring.setdefault(str(column.column), []).append(name)
                continue
            targets.append(_quoted(column.column))
            marks.append("?")
            self._values.append((name, column))
        for physical, names in referring.items():
            ref = spec.columns[names[0]].refers
            assert ref is not None
            target = mapping.table(ref.table)
            tests = []
            for name in names:
                named = target.columns[spec.columns[name].refers.column]  # type: ignore[union-attr]
                tests.append(f"{_quoted(named.column)} = ?")
                self._values.append((name, named))
            targets.append(_quoted(physical))
            marks.append(
                f"(SELECT {_quoted(target.columns[ref.by].column)} "  # noqa: S608
                f"FROM {_quoted(target.table)} WHERE {' AND '.join(tests)})"
            )
        for name, _value in spec.filter:
            targets.append(_quoted(name))
            marks.append("?")
        self._fixed = tuple(value for _, value in spec.filter)
        self._sql = (
            f"INSERT INTO {_quoted(spec.table)} ({', '.join(targets)}) "  # noqa: S608
            f"VALUES ({', '.join(marks)})"
        )

    def write(self, rows: Iterable[Mapping[str, object]]) -> None:
        self._connection.executemany(self._sql, self._tuples(rows))

    def _tuples(self, rows: Iterable[Mapping[str, object]]) -> Iterator[tuple[object, ...]]:
        for row in rows:
            self.rows += 1
            for flag in self._flags:
                if row[flag]:
                    self.flagged[flag] += 1
            yield (*(_stored(column, row[name]) for name, column in self._values), *self._fixed)


def _holds(column: ColumnMapping, value: object) -> bool:
    """Whether ``column`` can store ``value`` (a value map knows it)."""
    try:
        column.to_sage(value)
    except KeyError:
        return False
    return True


def _stored(column: ColumnMapping, value: object) -> object:
    """A reference-schema value as ``column`` stores it: its Sage value, a day for a date."""
    if column.type == "date" and isinstance(value, str):
        value = value[:10]
    return column.to_sage(value)


def _chunks(
    rows: Iterable[dict[str, object]], size: int = CHUNK_ROWS
) -> Iterator[list[dict[str, object]]]:
    iterator = iter(rows)
    while chunk := list(islice(iterator, size)):
        yield chunk


def _stream(seed: int, table: str) -> random.Random:
    """The random stream of one table: tables do not disturb one another."""
    return random.Random(f"{seed}/{table}")


def write_demo_dossier(
    path: str | Path,
    *,
    clients: int,
    seed: int = 0,
    overwrite: bool = False,
    contacts: int | None = None,
    products: int | None = None,
    orders: int | None = None,
    layout: str = "reference",
) -> DemoSummary:
    """Write a demo dossier to the SQLite file ``path`` and say what it holds.

    ``layout`` is a built-in mapping layout (``reference``, ``ciel``): the tables, column
    names and values are those it maps; the data is the same for a seed, but what the
    layout cannot hold (a prospect flag, a status it has no value for).

    ``clients`` customers and prospects (about a fifth prospects, a few dormant).
    ``contacts`` (default: 1.5 per client) are dealt over the clients, 0 to 3 each
    (more only when more are asked for than 3 a client).  ``products`` (default: one per
    two clients, at least 10) come with the fixed list of families and 1 or 2 stock rows
    per active article; a catalogue of 0 products has no families either.  ``orders``
    (default: one per ten clients, at least 3, none when no client is an active
    customer) go to active customers and hold 1 to 5 lines of active articles; a quarter
    as many invoices come with them.  An explicit 0 writes none of that table; an
    explicit count that cannot be met (contacts without clients, orders without an
    active customer or article) raises ``ValueError``.

    An existing file is replaced only with ``overwrite``; the file appears complete or
    not at all.
    """
    for name, wanted in (
        ("clients", clients),
        ("contacts", contacts),
        ("products", products),
        ("orders", orders),
    ):
        if wanted is not None and wanted < 0:
            raise ValueError(f"{name} cannot be negative")
    if contacts and not clients:
        raise ValueError("contacts need clients to belong to")
    if orders and (not clients or products == 0):
        raise ValueError("orders need clients and products")
    contact_count = clients + clients // 2 if contacts is None else contacts
    product_count = max(10, clients // 2) if products is None else products
    order_count = max(3, clients // 10) if orders is None else orders
    invoice_count = (order_count + 2) // 4

    target = Path(path).resolve()
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target} exists: choose another path or overwrite it")
    target.parent.mkdir(parents=True, exist_ok=True)

    mapping = SageMapping.load(layout)
    name_length = mapping.table("F_COMPTET").column("CT_Intitule").length or NAME_LENGTH
    statuses = mapping.table("F_DOCENTETE").column("DO_Statut")
    known = [i for i, s in enumerate(_ORDER_STATUSES) if _holds(statuses, s)]
    fake = Faker("fr_FR")
    fake.seed_instance(seed)
    rng = random.Random(seed)
    clock = _Clock.for_seed(seed)

    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    os.close(handle)
    try:
        connection = sqlite3.connect(temporary, isolation_level=None)
        try:
            connection.execute("PRAGMA journal_mode = OFF")
            connection.execute("PRAGMA synchronous = OFF")
            connection.execute("BEGIN")
            for statement in reference_ddl("sqlite", mapping):
                connection.execute(statement)

            client_table = _Writer(
                connection, mapping, "F_COMPTET", flags=("CT_Prospect", "CT_Sommeil")
            )
            contact_table = _Writer(connection, mapping, "F_CONTACTT")
            contact_rng = _stream(seed, "F_CONTACTT")
            cap = max(MAX_CONTACTS_PER_CLIENT, -(-contact_count // max(clients, 1)))
            spread = _Spread(contact_rng, contact_count, clients, cap)
            customers = array("I")
            for chunk in _chunks(_client_rows(fake, rng, clock, clients, name_length)):
                client_table.write(chunk)
                contact_table.write(_contact_rows(contact_rng, clock, chunk, spread))
                customers.extend(
                    int(str(row["CT_Num"])[len(CLIENT_PREFIX) :])
                    for row in chunk
                    if not row["CT_Prospect"] and not row["CT_Sommeil"]
                )

            family_table = _Writer(connection, mapping, "F_FAMILLE")
            product_table = _Writer(connection, mapping, "F_ARTICLE")
            stock_table = _Writer(connection, mapping, "F_ARTSTOCK")
            if product_count:
                family_table.write(_family_rows(_stream(seed, "F_FAMILLE"), clock))
            stock_rng = _stream(seed, "F_ARTSTOCK")
            active = array("I")
            for chunk in _chunks(_product_rows(_stream(seed, "F_ARTICLE"), clock, product_count)):
                product_table.write(chunk)
                stock_table.write(_stock_rows(stock_rng, clock, chunk))
                active.extend(
                    int(str(row["AR_Ref"])[len(ARTICLE_PREFIX) :])
                    for row in chunk
                    if not row["AR_Sommeil"]
                )

            if not customers or not active:
                if orders:
                    raise ValueError(
                        "orders need an active customer and an active article: "
                        f"this dossier has {len(customers)} and {len(active)}"
                    )
                order_count = invoice_count = 0
            catalogue = _Catalogue(connection, mapping.table("F_ARTICLE"), active)
            documents = {
                "orders": (ORDER_TYPE, ORDER_PREFIX, order_count, _ORDER_STATUS_WEIGHTS),
                "invoices": (INVOICE_TYPE, INVOICE_PREFIX, invoice_count, _INVOICE_STATUS_WEIGHTS),
            }
            headers: dict[str, _Writer] = {}
            lines: dict[str, _Writer] = {}
            for name, (kind, prefix, count, weights) in documents.items():
                headers[name] = _Writer(connection, mapping, "F_DOCENTETE")
                lines[name] = _Writer(connection, mapping, "F_DOCLIGNE")
                rows = _document_rows(
                    _stream(seed, f"F_DOCENTETE/{kind}"),
                    clock,
                    catalogue,
                    customers,
                    kind=kind,
                    prefix=prefix,
                    count=count,
                    status_weights=tuple(weights[i] for i in known),
                    statuses=tuple(_ORDER_STATUSES[i] for i in known),
                )
                while batch := list(islice(rows, CHUNK_ROWS)):
                    headers[name].write(header for header, _ in batch)
                    lines[name].write(line for _, document in batch for line in document)
            connection.execute("COMMIT")
        finally:
            connection.close()
        os.chmod(temporary, 0o644)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return DemoSummary(
        path=target,
        seed=seed,
        clients=client_table.rows,
        prospects=0
        if mapping.table("F_COMPTET").columns["CT_Prospect"].absent
        else client_table.flagged["CT_Prospect"],
        dormant=client_table.flagged["CT_Sommeil"],
        contacts=contact_table.rows,
        families=family_table.rows,
        products=product_table.rows,
        stock=stock_table.rows,
        orders=headers["orders"].rows,
        order_lines=lines["orders"].rows,
        invoices=headers["invoices"].rows,
        invoice_lines=lines["invoices"].rows,
        layout=layout,
    )
