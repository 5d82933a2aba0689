"""The sync engine on in-memory endpoints: the real passes, entities and state store
(a temporary SQLite file), with ``FakeSage`` and ``FakeSsm`` standing for Sage 50FR and
Sales Management. Each test runs in a fraction of a second; the end-to-end tests
(``test_sync_*.py``) hold the same behaviours against the ODBC driver and the simulator.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from dossiersync.config import DossierConfig, ImplementationConfig, SyncConfig
from dossiersync.context import DossierContext
from dossiersync.errors import SsmUnavailable
from dossiersync.journal import utcnow
from dossiersync.plugin import SAGE_TO_SSM, SSM_TO_SAGE, Entity
from dossiersync.plugins.sales_management.settings import SalesManagementSettings
from dossiersync.registry import dossier_hooks, load_entities
from dossiersync.secrets import Secret
from dossiersync.state.models import Dossier, Incident, Link
from dossiersync.state.store import StateStore
from dossiersync.sync.run import run_entity, run_pass
from dossiersync.target import WriteResult

from support.fakes import FakeSage, FakeSsm

DOSSIER = "nord"
CLIENT_TYPE, PROSPECT_TYPE = 1, 2


def client(code: str, name: str, *, prospect: bool = False, **columns: Any) -> dict[str, Any]:
    """A row of F_COMPTET as Sage holds a client (or a prospect)."""
    return {
        "CT_Num": code,
        "CT_Intitule": name,
        "CT_Type": 0,
        "CT_Prospect": 1 if prospect else 0,
        "CT_Sommeil": 0,
        "CT_Ville": "Lille",
        **columns,
    }


def contact(account: str, number: int, last_name: str, **columns: Any) -> dict[str, Any]:
    return {"CT_Num": account, "CT_No": number, "CT_Nom": last_name, **columns}


class FakeDossier:
    """One dossier wired to the fakes: its context, its entities, what it journaled."""

    def __init__(self, root: Path, **sync: Any) -> None:
        self.sage = FakeSage({"F_COMPTET": ["CT_Num"], "F_CONTACTT": ["CT_Num", "CT_No"]})
        self.ssm = FakeSsm(bulk_limit=2)  # several bulk calls per batch
        # the account types are the SSM endpoint's settings, read by the clients entity
        self.ssm.settings = SalesManagementSettings(
            client_type_id=CLIENT_TYPE, prospect_type_id=PROSPECT_TYPE
        )
        self.store = StateStore(f"sqlite:///{root / 'state.db'}")
        with self.store.session() as s:
            s.add(Dossier(id=DOSSIER, name="Nord", created_at=utcnow(), needs_full_sync=False))
        enabled = load_entities(["clients", "contacts"])
        self.entities = {e.name: e for e in enabled}
        self.ctx = DossierContext(
            dossier=DossierConfig(
                id=DOSSIER,
                name="Nord",
                connection=Secret("DSN=nord;PWD=secret"),
                entities=("clients", "contacts"),
            ),
            implementation=ImplementationConfig(
                name="Test",
                endpoint="fake",
                settings={"public_key": Secret("public"), "private_key": Secret("private")},
            ),
            sync=SyncConfig(**sync),
            store=self.store,
            sage=self.sage,
            ssm_client=self.ssm,
            hooks=dossier_hooks(enabled),
        )
        self.sage.open()

    def entity(self, name: str) -> Entity:
        return self.entities[name]

    def push(self, name: str = "clients") -> dict[str, int]:
        """One Sage -> SSM pass; its counts."""
        return dict(run_pass(self.ctx, self.entity(name), SAGE_TO_SSM).counts)

    def pull(self, name: str = "clients") -> dict[str, int]:
        """One SSM -> Sage pass; its counts."""
        return dict(run_pass(self.ctx, self.entity(name), SSM_TO_SAGE).counts)

    def accounts(self) -> dict[str, dict[str, Any]]:
        return self.ssm.live("accounts")

    def stamps(self) -> dict[str, str]:
        return {ext: r["dateUpdated"] for ext, r in self.accounts().items()}

    def open_incidents(self) -> list[Incident]:
        with self.store.session() as s:
            return list(s.scalars(select(Incident).where(Incident.state == "open")))

    def link(self, entity: str, key: str) -> Link:
        with self.store.session() as s:
            link = s.scalar(select(Link).where(Link.entity == entity, Link.sage_key == key))
            assert link is not None
            return link


@pytest.fixture
def nord(tmp_path: Path) -> FakeDossier:
    dossier = FakeDossier(tmp_path)
    for n, name in enumerate(("Boulangerie Dupont", "Garage Martin", "Pharmacie Leroy"), 1):
        dossier.sage.insert("F_COMPTET", client(f"CL0000{n}", name))
    return dossier


def test_first_pass_creates_every_client_with_its_ext_id(nord: FakeDossier) -> None:
    counts = nord.push()

    assert counts["created"] == 3
    accounts = nord.accounts()
    assert set(accounts) == {"nord:CL00001", "nord:CL00002", "nord:CL00003"}
    one = accounts["nord:CL00002"]
    assert one["name"] == "Garage Martin"
    assert one["city"] == "Lille"
    assert nord.ssm.fk_id(one["typeId"]) == CLIENT_TYPE
    assert one["readOnly"] is True  # a customer is read-only in SSM
    assert nord.link("clients", "CL00002").ssm_id == one["id"]


def test_second_pass_writes_nothing(nord: FakeDossier) -> None:
    nord.push()
    before = nord.stamps()

    counts = nord.push()

    # nothing changed in the table (same latest modification, same count): nothing is
    # read again, not even the overlap window, and nothing is written
    assert counts["read"] == 0
    assert counts["created"] == counts["updated"] == counts["deleted"] == 0
    assert nord.stamps() == before

    # one change: the overlap window is read again with it, and only that record written
    nord.sage.update("F_COMPTET", ("CL00001",), {"CT_Ville": "Arras"})
    counts = nord.push()
    assert counts["read"] == 3 and counts["unchanged"] == 2 and counts["updated"] == 1


def test_a_pass_reads_only_what_changed_since_its_cursor(tmp_path: Path) -> None:
    nord = FakeDossier(tmp_path, overlap_seconds=0)
    for n in range(1, 4):
        nord.sage.insert("F_COMPTET", client(f"CL0000{n}", f"Client {n}"))
    nord.push()
    assert nord.push()["read"] == 0

    nord.sage.update("F_COMPTET", ("CL00003",), {"CT_Intitule": "Client trois"})
    counts = nord.push()

    assert counts["read"] == counts["updated"] == 1
    assert nord.accounts()["nord:CL00003"]["name"] == "Client trois"


def test_sage_edit_updates_exactly_that_record(nord: FakeDossier) -> None:
    nord.push()
    edited = nord.accounts()["nord:CL00002"]["id"]
    nord.ssm.update("accounts", edited, {"comment": "appeler le lundi"})  # owned by SSM
    before = nord.stamps()

    nord.sage.update("F_COMPTET", ("CL00002",), {"CT_Ville": "Roubaix"})
    counts = nord.push()

    assert counts["updated"] == 1
    after = nord.stamps()
    assert {ext for ext in before if before[ext] != after[ext]} == {"nord:CL00002"}
    account = nord.accounts()["nord:CL00002"]
    assert account["city"] == "Roubaix"
    assert account["comment"] == "appeler le lundi"  # a partial update left it alone


def test_sage_deletion_deletes_in_ssm(nord: FakeDossier) -> None:
    nord.push()
    gone = nord.accounts()["nord:CL00003"]["id"]

    # the most recently modified row: the table's high-water mark goes backwards
    nord.sage.delete("F_COMPTET", ("CL00003",))
    counts = nord.push()

    assert counts["deleted"] == 1
    assert counts["updated"] == 0  # not taken for a restore, which would realign them all
    assert set(nord.accounts()) == {"nord:CL00001", "nord:CL00002"}
    assert nord.ssm.get("accounts", gone)["deleted"] is True
    assert nord.link("clients", "CL00003").deleted is True
    assert nord.open_incidents() == []


def test_restored_database_deletes_nothing_and_realigns(nord: FakeDossier) -> None:
    nord.push()
    backup = copy.deepcopy(nord.sage.tables)
    nord.sage.update("F_COMPTET", ("CL00002",), {"CT_Ville": "Arras"})
    nord.sage.insert("F_COMPTET", client("CL00004", "Client récent"))
    nord.push()

    nord.sage.tables = backup  # the dossier restored from the older copy
    counts = nord.push()

    assert counts["deleted"] == 0
    assert len(nord.accounts()) == 4
    assert nord.accounts()["nord:CL00002"]["city"] == "Lille"
    (incident,) = nord.open_incidents()
    assert incident.kind == "restored_database"
    assert nord.link("clients", "CL00004").label == "pending_review"


def test_mass_deletion_is_refused_and_the_next_sync_realigns(tmp_path: Path) -> None:
    nord = FakeDossier(tmp_path, mass_deletion_minimum=2, mass_deletion_threshold=0.5)
    for n in range(1, 7):
        nord.sage.insert("F_COMPTET", client(f"CL0000{n}", f"Client {n}"))
    nord.push()

    for n in range(1, 5):  # 4 of 6 vanish: more than half
        nord.sage.delete("F_COMPTET", (f"CL0000{n}",))
    counts = nord.push()

    assert counts["deleted"] == 0
    assert len(nord.accounts()) == 6
    (incident,) = nord.open_incidents()
    assert incident.kind == "mass_deletion_refused"
    assert "4 of 6" in incident.message
    assert nord.link("clients", "CL00001").label == "pending_review"
    with nord.store.session() as s:
        dossier = s.get(Dossier, DOSSIER)
        assert dossier is not None
        assert dossier.needs_full_sync is True
        assert dossier.full_sync_trigger == "realign"


def test_invalid_record_becomes_an_incident_and_the_others_go_on(nord: FakeDossier) -> None:
    nord.sage.update("F_COMPTET", ("CL00002",), {"CT_EMail": "garage.martin-at-wanadoo"})

    run = run_pass(nord.ctx, nord.entity("clients"), SAGE_TO_SSM)

    assert run.outcome == "partial"
    assert run.counts["created"] == 2
    assert set(nord.accounts()) == {"nord:CL00001", "nord:CL00003"}
    (incident,) = nord.open_incidents()
    assert incident.kind == "invalid_record"
    assert (incident.dossier_id, incident.record_key, incident.field) == (
        DOSSIER,
        "CL00002",
        "email",
    )
    assert incident.message.startswith(
        "Dossier nord, client CL00002: e-mail address is not valid: 'garage.martin-at-wanadoo'"
    )


def test_prospect_edited_in_ssm_reaches_sage(nord: FakeDossier) -> None:
    nord.sage.insert("F_COMPTET", client("PR00001", "Fleuriste Morel", prospect=True))
    run_entity(nord.ctx, nord.entity("clients"))  # both directions: created, then agreed
    prospect = nord.accounts()["nord:PR00001"]
    customer = nord.accounts()["nord:CL00001"]
    before = nord.sage.get("F_COMPTET", ("PR00001",))
    assert before is not None

    nord.ssm.update("accounts", prospect["id"], {"city": "Tourcoing", "phone": "0320000000"})
    nord.ssm.update("accounts", customer["id"], {"city": "Tourcoing"})
    counts = nord.pull()

    assert counts["updated"] == 1
    row = nord.sage.get("F_COMPTET", ("PR00001",))
    assert row is not None
    assert (row["CT_Ville"], row["CT_Telephone"]) == ("Tourcoing", "0320000000")
    assert row["cbModification"] > before["cbModification"]
    # a customer is read-only in SSM: its edit does not reach Sage
    customer_row = nord.sage.get("F_COMPTET", ("CL00001",))
    assert customer_row is not None
    assert customer_row["CT_Ville"] == "Lille"


def test_record_refused_by_ssm_is_an_incident_and_the_batch_lands(nord: FakeDossier) -> None:
    nord.ssm.refuse("accounts", ext_id="nord:CL00002")

    run = run_pass(nord.ctx, nord.entity("clients"), SAGE_TO_SSM)

    assert run.outcome == "partial"
    assert (run.counts["created"], run.counts["refused"]) == (2, 1)
    assert set(nord.accounts()) == {"nord:CL00001", "nord:CL00003"}
    (incident,) = nord.open_incidents()
    assert (incident.kind, incident.record_key) == ("refused_by_ssm", "CL00002")
    assert nord.link("clients", "CL00002").label == "error"

    nord.ssm.refusals.clear()  # the cause is fixed: the next pass retries the record
    assert nord.push()["created"] == 1
    assert "nord:CL00002" in nord.accounts()
    assert nord.open_incidents() == []


def test_contact_waits_for_its_account(nord: FakeDossier) -> None:
    nord.sage.insert("F_CONTACTT", contact("CL00001", 1, "Dupont", CT_Prenom="Anne"))

    counts = nord.push("contacts")

    assert counts["pending"] == 1
    assert nord.ssm.live("contacts") == {}
    assert nord.link("contacts", "CL00001:1").label == "pending"

    nord.push("clients")
    counts = nord.push("contacts")

    assert counts["created"] == 1
    (created,) = nord.ssm.live("contacts").values()
    assert created["extId"] == "nord:CL00001:1"
    assert created["lastName"] == "Dupont"
    assert nord.ssm.fk_id(created["accountId"]) == nord.accounts()["nord:CL00001"]["id"]
    assert nord.link("contacts", "CL00001:1").label == "synced"


def test_an_ssm_pass_with_nothing_new_lists_nothing(nord: FakeDossier) -> None:
    nord.sage.insert("F_COMPTET", client("PR00001", "Fleuriste Morel", prospect=True))
    run_entity(nord.ctx, nord.entity("clients"))

    counts = nord.pull()
    # nothing updated or deleted in SSM after the newest change read: not even the
    # overlap window is listed again
    assert counts["read"] == 0

    prospect = nord.accounts()["nord:PR00001"]
    nord.ssm.update("accounts", prospect["id"], {"city": "Tourcoing"})
    counts = nord.pull()
    assert counts["updated"] == 1 and counts["read"] >= 1
    assert nord.pull()["read"] == 0


def test_a_pass_with_edits_only_does_not_read_the_key_sets(nord: FakeDossier) -> None:
    """As many rows as after the last pass and no key met for the first time: nothing
    can have been deleted, and the links' keys are not looked up in Sage."""
    nord.push()
    read = nord.sage.read
    calls: list[str] = []

    def counted(table: str, columns: Any = None, **options: Any) -> Any:
        if options.get("keys") is not None:
            calls.append(table)
        return read(table, columns, **options)

    nord.sage.read = counted  # type: ignore[method-assign]
    nord.sage.update("F_COMPTET", ("CL00002",), {"CT_Ville": "Roubaix"})
    assert nord.push()["updated"] == 1
    assert calls == []

    # a deletion moves the count: the key sets are read and the deletion reaches SSM
    nord.sage.delete("F_COMPTET", ("CL00003",))
    assert nord.push()["deleted"] == 1
    assert calls == ["F_COMPTET"]
    # a deletion hidden by an insertion: the new key makes the pass look
    nord.sage.delete("F_COMPTET", ("CL00001",))
    nord.sage.insert("F_COMPTET", client("CL00009", "Nouveau client"))
    counts = nord.push()
    assert counts["deleted"] == 1 and counts["created"] == 1


class LosingSsm(FakeSsm):
    """Answers the first bulk create of some extIds with a lost answer (a 500, reset or
    timeout once sent): ``acted`` ones were created all the same, ``unacted`` were not."""

    def __init__(self, acted: set[str], unacted: set[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.acted, self.unacted = set(acted), set(unacted)
        self.finds = 0

    def bulk_create(self, resource: str, bodies: Any) -> list[WriteResult]:
        lost = SsmUnavailable("POST /accounts/bulk: HTTP 500", 500, may_have_acted=True)
        results = []
        for body in bodies:
            ext = str(body.get("extId"))
            if ext in self.unacted:
                self.unacted.discard(ext)
                results.append(WriteResult(error=lost))
            elif ext in self.acted:
                self.acted.discard(ext)
                self.create(resource, body)
                results.append(WriteResult(error=lost))
            else:
                results += super().bulk_create(resource, [body])
        return results

    def find(self, resource: str, *, ext_ids: Any = (), ids: Any = ()) -> Any:
        self.finds += 1
        return super().find(resource, ext_ids=ext_ids, ids=ids)


def test_lost_create_answers_are_resolved_by_ext_id_in_the_same_pass(tmp_path: Path) -> None:
    """Creates whose answer was lost do not stop the pass: the others go on, and before
    the pass ends the lost ones are looked up by extId together — found ones linked,
    missing ones created — with no record created twice."""
    nord = FakeDossier(tmp_path)
    for n in range(1, 9):
        nord.sage.insert("F_COMPTET", client(f"CL0000{n}", f"Client {n}"))
    nord.ssm = LosingSsm(
        {"nord:CL00002", "nord:CL00005"}, {"nord:CL00003", "nord:CL00007"}, bulk_limit=2
    )
    nord.ctx.ssm_client = nord.ssm

    run = run_pass(nord.ctx, nord.entity("clients"), SAGE_TO_SSM)
    assert run.outcome == "succeeded", run.message
    assert run.counts["created"] == 8
    accounts = nord.ssm.list_changed("accounts")
    ext_ids = [a["extId"] for a in accounts]
    assert sorted(ext_ids) == [f"nord:CL0000{n}" for n in range(1, 9)]  # no duplicate
    assert nord.ssm.finds == 1  # one lookup for the four lost answers
    for n in range(1, 9):
        link = nord.link("clients", f"CL0000{n}")
        assert link.label == "synced" and link.ssm_id is not None
    assert nord.open_incidents() == []
    assert nord.push()["created"] == 0


class UnreachableSsm(LosingSsm):
    """Creates lose their answer, and the API is then unreachable (an outage) until
    ``down`` is cleared."""

    down = True

    def find(self, resource: str, *, ext_ids: Any = (), ids: Any = ()) -> Any:
        if self.down:
            raise SsmUnavailable("GET /accounts: ConnectError after 4 attempt(s)")
        return super().find(resource, ext_ids=ext_ids, ids=ids)


def test_an_outage_stops_the_pass_and_nothing_is_created_twice(tmp_path: Path) -> None:
    nord = FakeDossier(tmp_path)
    for n in range(1, 5):
        nord.sage.insert("F_COMPTET", client(f"CL0000{n}", f"Client {n}"))
    nord.ssm = UnreachableSsm({"nord:CL00001"}, {"nord:CL00002"}, bulk_limit=2)
    nord.ctx.ssm_client = nord.ssm

    run = run_pass(nord.ctx, nord.entity("clients"), SAGE_TO_SSM)

    assert run.outcome == "failed"
    assert nord.link("clients", "CL00001").ssm_id is None  # an intent, looked up next time
    nord.ssm.down = False  # the API is back
    counts = nord.push()
    assert (counts["created"], counts["updated"]) == (1, 1)  # CL00001 adopted, not twice
    assert sorted(nord.accounts()) == [f"nord:CL0000{n}" for n in range(1, 5)]


def test_a_sage_source_that_cannot_be_probed_during_a_long_pass_does_not_fail_it(
    nord: FakeDossier, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dossiersync.errors import SourceError
    from dossiersync.sync import to_sage
    from dossiersync.sync.meanwhile import Meanwhile

    nord.push()
    monkeypatch.setattr(to_sage, "CATCH_UP_SECONDS", 0.0)  # a look after every batch
    clients = nord.entity("clients")
    nord.ctx.meanwhile = Meanwhile(nord.ctx, [clients], run_pass, coming=False)

    def locked(*_args: Any, **_kwargs: Any) -> Any:
        raise SourceError("database is locked")

    monkeypatch.setattr(nord.sage, "high_water_mark", locked)
    run = run_pass(nord.ctx, clients, SSM_TO_SAGE)
    # the look failed and was let go: the pass itself ends as it would have
    assert run.outcome == "succeeded", run.message
    assert nord.ctx.meanwhile.runs == []
