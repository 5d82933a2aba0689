"""Demo dossiers: SQLite files in the reference schema, filled with plausible French data.

The data depend only on the seed: the same seed gives the same rows, another seed other
names and addresses.  Client codes are sequential (``CL00001``…) whatever the seed, so
dossiers made with different seeds share codes, as real company files do.  Dates derive
from the seed, never from today's date.

Every table of the reference schema is created; the clients table is filled.
"""

from __future__ import annotations

import os
import random
import sqlite3
import tempfile
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

from faker import Faker

from .endpoint import format_timestamp
from .mapping import SageMapping, TableMapping
from .reference_schema import reference_ddl

CLIENT_PREFIX = "CL"
CLIENT_DIGITS = 5
PROSPECT_SHARE = 0.2
DORMANT_SHARE = 0.03
NAME_LENGTH = 35

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
        return format_timestamp(start + timedelta(milliseconds=rng.randrange(span)))


_NOT_IN_DOMAINS = frozenset({"sarl", "sas", "sa", "eurl", "sasu", "s", "a", "r", "l", "et"})


def _slug(text: str) -> str:
    """A domain label from a company name: no accents, no legal form."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    words = "".join(ch if ch.isalnum() else " " for ch in ascii_text.lower()).split()
    return "-".join(word for word in words if word not in _NOT_IN_DOMAINS)


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


def _company_name(fake: Faker, rng: random.Random) -> str:
    if rng.random() < 0.6:
        name = f"{rng.choice(_TRADES)} {fake.last_name()} {rng.choice(_LEGAL_FORMS)}"
    else:
        name = f"{fake.company()}"
    return _fit(name, NAME_LENGTH)


def _client_rows(
    fake: Faker, rng: random.Random, clock: _Clock, count: int
) -> Iterator[dict[str, object]]:
    for number in range(1, count + 1):
        name = _company_name(fake, rng)
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


class _Tally:
    """Counts rows on their way into the database, so nothing is held in memory."""

    def __init__(self) -> None:
        self.rows = 0
        self.flagged: dict[str, int] = {}

    def count(
        self, rows: Iterator[dict[str, object]], columns: tuple[str, ...], flags: tuple[str, ...]
    ) -> Iterator[tuple[object, ...]]:
        for row in rows:
            self.rows += 1
            for flag in flags:
                if row[flag]:
                    self.flagged[flag] = self.flagged.get(flag, 0) + 1
            yield tuple(row[name] for name in columns)


def _insert_sql(table: TableMapping, columns: tuple[str, ...]) -> str:
    names = ", ".join(f'"{table.columns[name].column}"' for name in columns)
    marks = ", ".join(["?"] * len(columns))
    return f'INSERT INTO "{table.table}" ({names}) VALUES ({marks})'  # noqa: S608


def _fill(
    connection: sqlite3.Connection,
    table: TableMapping,
    rows: Iterator[dict[str, object]],
    flags: tuple[str, ...] = (),
) -> _Tally:
    """Insert ``rows`` (every column but the identity) into ``table``."""
    tally = _Tally()
    columns = table.writable
    connection.executemany(_insert_sql(table, columns), tally.count(rows, columns, flags))
    return tally


def write_demo_dossier(
    path: str | Path,
    *,
    clients: int,
    seed: int = 0,
    overwrite: bool = False,
    contacts: int | None = None,
    products: int | None = None,
    orders: int | None = None,
) -> DemoSummary:
    """Write a demo dossier to the SQLite file ``path`` and say what it holds.

    ``clients`` customers and prospects (about a fifth prospects, a few dormant).
    ``contacts``, ``products`` and ``orders`` name the generators of those tables, not
    written yet: their tables are created empty and a count other than ``None`` or 0
    raises ``NotImplementedError``.  An existing file is replaced only with
    ``overwrite``; the file appears complete or not at all.
    """
    if clients < 0:
        raise ValueError("clients cannot be negative")
    for name, wanted in (("contacts", contacts), ("products", products), ("orders", orders)):
        if wanted:
            raise NotImplementedError(f"demo dossiers do not generate {name} yet")
    target = Path(path).resolve()
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target} exists: choose another path or overwrite it")
    target.parent.mkdir(parents=True, exist_ok=True)

    mapping = SageMapping.load()
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
            clients_written = _fill(
                connection,
                mapping.table("F_COMPTET"),
                _client_rows(fake, rng, clock, clients),
                flags=("CT_Prospect", "CT_Sommeil"),
            )
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
        clients=clients_written.rows,
        prospects=clients_written.flagged.get("CT_Prospect", 0),
        dormant=clients_written.flagged.get("CT_Sommeil", 0),
    )
