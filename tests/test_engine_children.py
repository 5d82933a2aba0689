"""Child records (a document's lines) on the one engine, with in-memory endpoints.

A ``quotes`` entity declared for these tests: a Sage document (``F_DOCENTETE``) with its
lines (``F_DOCLIGNE``), held in SSM as a ``quotes`` record and ``quoteLines`` records of
their own.  The real passes and state store run; ``FakeSage`` and ``FakeSsm`` stand for
the endpoints.  The invoices example (``test_invoices_plugin.py``) holds the embedded
kind of children (a JSON array in the parent) end to end.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from dossiersync.config import DossierConfig, ImplementationConfig, SyncConfig
from dossiersync.context import DossierContext
from dossiersync.errors import SsmUnavailable
from dossiersync.journal import utcnow
from dossiersync.plugin import SAGE_TO_SSM, SSM_TO_SAGE, ChildSpec, Entity, FieldSpec
from dossiersync.registry import dossier_hooks
from dossiersync.secrets import Secret
from dossiersync.state.models import Dossier, Incident, Link
from dossiersync.state.store import StateStore
from dossiersync.sync.run import run_pass

from support.fakes import FakeSage, FakeSsm

DOSSIER = "nord"
HEADER, LINES = "F_DOCENTETE", "F_DOCLIGNE"
DOCUMENT = ("DO_Domaine", "DO_Type", "DO_Piece")


class QuotesEntity(Entity):
    """Quotes: header + lines; lines are SSM records of their own (``quoteLines``)."""

    name = "quotes"
    directions = (SAGE_TO_SSM, SSM_TO_SAGE)
    sage_table = HEADER
    ssm_resource = "quotes"
    key_fields = ("domain", "type", "piece")
    ssm_deletions = "origin"
    fields = (
        FieldSpec("domain", sage="DO_Domaine", kind="int"),
        FieldSpec("type", sage="DO_Type", kind="int"),
        FieldSpec("piece", sage="DO_Piece"),
        FieldSpec("reference", sage="DO_Ref", ssm="reference", owner="both"),
        FieldSpec("total", sage="DO_TotalHT", ssm="total", kind="decimal"),
    )
    children = (
        ChildSpec(
            "lines",
            sage_table=LINES,
            key="line",
            ssm_resource="quoteLines",
            ssm_parent="quoteId",
            key_step=1000,
            fields=(
                FieldSpec("line", sage="DL_Ligne", ssm="lineNo", kind="int"),
                FieldSpec("product", sage="AR_Ref", ssm="product", owner="both"),
                FieldSpec("quantity", sage="DL_Qte", ssm="quantity", owner="both", kind="decimal"),
                FieldSpec("price", sage="DL_PrixUnitaire", ssm="price", kind="decimal"),
            ),
        ),
    )

    def load_schema(self) -> dict[str, Any]:
        return {
            "type": "object",
            "properties": {
                "lines": {
                    "type": "array",
                    "items": {"type": "object", "required": ["product"]},
                }
            },
        }

    def sage_where(self) -> dict[str, Any]:
        return {"DO_Domaine": 0, "DO_Type": 0}

    def key_from_text(self, text: str) -> tuple[Any, ...]:
        domain, kind, piece = text.split(":", 2)
        return (int(domain), int(kind), piece)

    def ssm_unlinked_filter(self, ctx: DossierContext) -> Mapping[str, int | str] | None:
        return {}

    def belongs_to_dossier(self, record: Mapping[str, Any], ctx: DossierContext) -> bool:
        return True

    def new_sage_key(self, record: Mapping[str, Any], ctx: DossierContext) -> tuple[Any, ...]:
        return (0, 0, ctx.sage.next_code(HEADER, "DO_Piece", "DE", 7))


class Quotes:
    """One dossier with quotes, wired to the fakes."""

    def __init__(self, root: Path) -> None:
        self.sage = FakeSage({HEADER: DOCUMENT, LINES: (*DOCUMENT, "DL_Ligne")})
        self.ssm = FakeSsm(bulk_limit=2)
        self.store = StateStore(f"sqlite:///{root / 'state.db'}")
        with self.store.session() as s:
            s.add(Dossier(id=DOSSIER, name="Nord", created_at=utcnow(), needs_full_sync=False))
        self.entity = QuotesEntity()
        self.ctx = DossierContext(
            dossier=DossierConfig(
                id=DOSSIER, name="Nord", connection=Secret("DSN=nord"), entities=("quotes",)
            ),
            implementation=ImplementationConfig(
                name="Test",
                endpoint="fake",
                settings={"public_key": Secret("public"), "private_key": Secret("private")},
            ),
            sync=SyncConfig(),
            store=self.store,
            sage=self.sage,
            ssm_client=self.ssm,
            hooks=dossier_hooks([self.entity]),
        )
        self.sage.open()

    def push(self) -> dict[str, int]:
        return dict(run_pass(self.ctx, self.entity, SAGE_TO_SSM).counts)

    def pull(self) -> dict[str, int]:
        return dict(run_pass(self.ctx, self.entity, SSM_TO_SAGE).counts)

    def quote(self, piece: str, lines: list[tuple[int, str, str, str]], ref: str = "") -> None:
        document = {"DO_Domaine": 0, "DO_Type": 0, "DO_Piece": piece}
        for number, product, quantity, price in lines:
            row = {"DL_Ligne": number, "AR_Ref": product, "DL_Qte": quantity}
            self.sage.insert(LINES, {**document, **row, "DL_PrixUnitaire": price})
        self.sage.insert(HEADER, {**document, "DO_Ref": ref or piece, "DO_TotalHT": "10"})

    def lines_in_ssm(self) -> dict[str, dict[str, Any]]:
        return self.ssm.live("quoteLines")

    def lines_in_sage(self, piece: str) -> dict[int, dict[str, Any]]:
        rows = self.sage.read(LINES, where={"DO_Piece": piece})
        return {int(r["DL_Ligne"]): r for r in rows}

    def open_incidents(self) -> list[Incident]:
        with self.store.session() as s:
            return list(s.scalars(select(Incident).where(Incident.state == "open")))


@pytest.fixture
def nord(tmp_path: Path) -> Quotes:
    dossier = Quotes(tmp_path)
    dossier.quote("DE00001", [(1000, "ART1", "2", "5"), (2000, "ART2", "1", "7.5")])
    dossier.quote("DE00002", [(1000, "ART3", "4", "1")])
    return dossier


def test_a_document_reaches_ssm_with_its_lines_as_records_of_their_own(nord: Quotes) -> None:
    counts = nord.push()

    assert counts["created"] == 2
    quote = nord.ssm.live("quotes")["nord:0:0:DE00001"]
    lines = nord.lines_in_ssm()
    assert set(lines) == {"nord:0:0:DE00001:1000", "nord:0:0:DE00001:2000", "nord:0:0:DE00002:1000"}
    second = lines["nord:0:0:DE00001:2000"]
    assert (second["quoteId"], second["product"], second["quantity"]) == (quote["id"], "ART2", 1)
    assert second["price"] == 7.5 and second["lineNo"] == 2000


def test_second_pass_writes_no_document_and_no_line(nord: Quotes) -> None:
    nord.push()
    before = {**nord.ssm.live("quotes"), **nord.lines_in_ssm()}

    counts = nord.push()

    assert counts["created"] == counts["updated"] == 0
    after = {**nord.ssm.live("quotes"), **nord.lines_in_ssm()}
    assert {e: r["dateUpdated"] for e, r in after.items()} == {
        e: r["dateUpdated"] for e, r in before.items()
    }


def test_lines_edited_added_and_removed_in_sage_follow_their_document(nord: Quotes) -> None:
    nord.push()
    before = nord.lines_in_ssm()
    header = nord.ssm.live("quotes")["nord:0:0:DE00001"]
    # only the lines change: the header's row keeps its modification time
    nord.sage.update(LINES, (0, 0, "DE00001", 1000), {"DL_Qte": "3"})
    nord.sage.insert(
        LINES,
        {"DO_Domaine": 0, "DO_Type": 0, "DO_Piece": "DE00001", "DL_Ligne": 3000}
        | {"AR_Ref": "ART9", "DL_Qte": "1", "DL_PrixUnitaire": "2"},
    )
    nord.sage.delete(LINES, (0, 0, "DE00001", 2000))

    counts = nord.push()

    assert counts["updated"] == 1
    lines = nord.lines_in_ssm()
    assert set(lines) == {"nord:0:0:DE00001:1000", "nord:0:0:DE00001:3000", "nord:0:0:DE00002:1000"}
    assert lines["nord:0:0:DE00001:1000"]["quantity"] == 3
    assert lines["nord:0:0:DE00001:3000"]["quoteId"] == header["id"]
    # the other document's line and the header were not written
    other = "nord:0:0:DE00002:1000"
    assert lines[other]["dateUpdated"] == before[other]["dateUpdated"]
    assert nord.ssm.live("quotes")["nord:0:0:DE00001"]["dateUpdated"] == header["dateUpdated"]


def test_a_document_deleted_in_sage_is_deleted_in_ssm_with_its_lines(nord: Quotes) -> None:
    nord.push()
    nord.sage.delete(HEADER, (0, 0, "DE00002"))
    nord.sage.delete(LINES, (0, 0, "DE00002", 1000))
    nord.ctx.full = True

    counts = nord.push()

    assert counts["deleted"] == 1
    assert set(nord.ssm.live("quotes")) == {"nord:0:0:DE00001"}
    assert set(nord.lines_in_ssm()) == {"nord:0:0:DE00001:1000", "nord:0:0:DE00001:2000"}


def ssm_quote(nord: Quotes, reference: str, lines: list[tuple[str, int]]) -> int:
    """A quote entered in SSM (no extId), its lines in the order entered."""
    quote_id = nord.ssm.create("quotes", {"reference": reference})
    for product, quantity in lines:
        line = {"quoteId": quote_id, "product": product, "quantity": quantity}
        nord.ssm.create("quoteLines", line)
    return quote_id


def test_a_document_entered_in_ssm_is_written_to_sage_with_its_lines(tmp_path: Path) -> None:
    nord = Quotes(tmp_path)
    quote_id = ssm_quote(nord, "Chantier Lille", [("ART1", 2), ("ART2", 5)])

    nord.pull()

    header = nord.sage.get(HEADER, (0, 0, "DE00001"))
    assert header is not None and header["DO_Ref"] == "Chantier Lille"
    lines = nord.lines_in_sage("DE00001")
    assert {n: (r["AR_Ref"], r["DL_Qte"]) for n, r in lines.items()} == {
        1000: ("ART1", "2"),
        2000: ("ART2", "5"),
    }
    # SSM learns the extIds: the Sage pass then finds the lines instead of adding them
    assert nord.ssm.get("quotes", quote_id)["extId"] == "nord:0:0:DE00001"
    assert set(nord.lines_in_ssm()) == {"nord:0:0:DE00001:1000", "nord:0:0:DE00001:2000"}
    nord.sage.update(LINES, (0, 0, "DE00001", 2000), {"DL_PrixUnitaire": "4"})
    nord.push()
    assert len(nord.lines_in_ssm()) == 2
    assert nord.lines_in_ssm()["nord:0:0:DE00001:2000"]["price"] == 4


def test_a_line_that_cannot_be_written_leaves_no_document_in_sage(tmp_path: Path) -> None:
    nord = Quotes(tmp_path)
    ssm_quote(nord, "Chantier Lille", [("ART1", 2), ("ART2", 5)])
    # a stray line already holds the second line's key: its insert fails
    nord.sage.insert(
        LINES, {"DO_Domaine": 0, "DO_Type": 0, "DO_Piece": "DE00001", "DL_Ligne": 2000}
    )

    nord.pull()

    # header and first line were rolled back with the failing line: one transaction
    assert nord.sage.get(HEADER, (0, 0, "DE00001")) is None
    assert set(nord.lines_in_sage("DE00001")) == {2000}
    assert [i.kind for i in nord.open_incidents()] == ["sage_write_failed"]


def test_a_line_edited_in_ssm_reaches_its_sage_row_only(nord: Quotes) -> None:
    nord.push()
    nord.pull()  # from now on, a pass reads what changed since the last one
    first = nord.lines_in_ssm()["nord:0:0:DE00001:1000"]
    untouched = nord.lines_in_sage("DE00001")[2000]
    nord.ssm.update("quoteLines", first["id"], {"quantity": 7})

    counts = nord.pull()

    assert counts["updated"] == 1
    lines = nord.lines_in_sage("DE00001")
    assert (lines[1000]["DL_Qte"], lines[1000]["DL_PrixUnitaire"]) == ("7", "5")
    assert lines[2000] == untouched
    with nord.store.session() as s:
        link = s.scalar(select(Link).where(Link.sage_key == "0:0:DE00001"))
        assert link is not None and link.base is not None
        assert link.base["lines"][0]["quantity"] == "7"


def test_a_document_deleted_in_ssm_stays_in_sage_and_is_not_sent_again(nord: Quotes) -> None:
    nord.push()
    quote = nord.ssm.live("quotes")["nord:0:0:DE00001"]
    nord.ssm.delete("quotes", quote["id"])
    nord.sage.update(HEADER, (0, 0, "DE00001"), {"DO_TotalHT": "12"})

    counts = nord.push()

    assert counts["refused"] == 0 and counts["created"] == 0
    # not silently: the record's incident says it was kept and what a person can do
    (incident,) = nord.open_incidents()
    assert (incident.kind, incident.record_key) == ("deleted_in_ssm", "0:0:DE00001")
    assert "deletions recreate" in incident.message
    assert "nord:0:0:DE00001" not in nord.ssm.live("quotes")
    assert nord.sage.get(HEADER, (0, 0, "DE00001")) is not None
    with nord.store.session() as s:
        link = s.scalar(select(Link).where(Link.sage_key == "0:0:DE00001"))
        assert link is not None and link.label == "pending_review"
    nord.sage.update(HEADER, (0, 0, "DE00001"), {"DO_TotalHT": "13"})
    assert nord.push()["updated"] == 0


@pytest.mark.parametrize("deletions", ["origin", "never"])
def test_a_document_deleted_in_ssm_before_sage_took_it_is_dropped(
    tmp_path: Path, deletions: str
) -> None:
    nord = Quotes(tmp_path)
    # listed as deleted, or (deletions never reach Sage) found deleted when retried
    nord.entity.ssm_deletions = deletions  # type: ignore[misc]
    quote_id = ssm_quote(nord, "Chantier Lille", [("ART1", 2), ("ART2", 5)])
    nord.sage.insert(
        LINES, {"DO_Domaine": 0, "DO_Type": 0, "DO_Piece": "DE00001", "DL_Ligne": 2000}
    )
    nord.pull()  # refused by Sage: its intent holds DE00001
    assert [i.kind for i in nord.open_incidents()] == ["sage_write_failed"]
    nord.ssm.delete("quotes", quote_id)

    nord.pull()

    assert nord.open_incidents() == []
    with nord.store.session() as s:
        assert s.scalars(select(Link)).all() == []
    assert nord.sage.get(HEADER, (0, 0, "DE00001")) is None


def test_a_document_deleted_in_sage_before_reaching_ssm_leaves_no_trace(nord: Quotes) -> None:
    nord.ssm.refuse("quotes", ext_id="nord:0:0:DE00002")
    nord.push()
    assert [i.record_key for i in nord.open_incidents()] == ["0:0:DE00002"]
    nord.sage.delete(LINES, (0, 0, "DE00002", 1000))
    nord.sage.delete(HEADER, (0, 0, "DE00002"))

    nord.push()

    assert nord.open_incidents() == []
    with nord.store.session() as s:
        assert [link.sage_key for link in s.scalars(select(Link))] == ["0:0:DE00001"]


def test_a_document_deleted_on_both_sides_is_deleted_for_good(nord: Quotes) -> None:
    nord.push()
    nord.ssm.delete("quotes", nord.ssm.live("quotes")["nord:0:0:DE00001"]["id"])
    nord.sage.update(HEADER, (0, 0, "DE00001"), {"DO_TotalHT": "12"})
    nord.push()  # kept in Sage, for review
    nord.sage.delete(LINES, (0, 0, "DE00001", 1000))
    nord.sage.delete(LINES, (0, 0, "DE00001", 2000))
    nord.sage.delete(HEADER, (0, 0, "DE00001"))

    counts = nord.push()

    assert counts["deleted"] == 0
    with nord.store.session() as s:
        link = s.scalar(select(Link).where(Link.sage_key == "0:0:DE00001"))
        assert link is not None and link.deleted


def test_a_document_deleted_in_ssm_after_its_sage_write_is_kept_for_review(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    nord = Quotes(tmp_path)
    quote_id = ssm_quote(nord, "Chantier Lille", [("ART1", 2)])
    listed, calls = nord.ssm.list_changed, []

    def killed(resource: str, **kwargs: Any) -> Any:
        if resource == "quoteLines" and kwargs.get("equals"):
            calls.append(resource)
            if len(calls) == 2:  # read, written to Sage, then SSM is told: not this time
                raise KeyboardInterrupt
        return listed(resource, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(nord.ssm, "list_changed", killed)
        with pytest.raises(KeyboardInterrupt):
            nord.pull()
    assert nord.sage.get(HEADER, (0, 0, "DE00001")) is not None
    nord.ssm.delete("quotes", quote_id)

    nord.pull()

    assert nord.sage.get(HEADER, (0, 0, "DE00001")) is not None  # Sage is not touched
    with nord.store.session() as s:
        link = s.scalar(select(Link).where(Link.sage_key == "0:0:DE00001"))
        assert link is not None and (link.label, link.deleted) == ("pending_review", False)
        assert link.last_error == "deleted in Sales Management; kept in Sage 50FR"


class LosingLines(FakeSsm):
    """Answers the first create of some lines with a lost answer: ``acted`` ones were
    created all the same, ``unacted`` were not."""

    def __init__(self, acted: set[str], unacted: set[str]) -> None:
        super().__init__(bulk_limit=2)
        self.acted, self.unacted = set(acted), set(unacted)
        self.sent: list[str] = []

    def create(self, resource: str, body: Mapping[str, Any]) -> int:
        ext = str(body.get("extId"))
        if resource == "quoteLines":
            self.sent.append(ext)
        lost = SsmUnavailable(f"POST /{resource}: ReadTimeout", may_have_acted=True)
        if ext in self.unacted:
            self.unacted.discard(ext)
            raise lost
        if ext in self.acted:
            self.acted.discard(ext)
            super().create(resource, body)
            raise lost
        return super().create(resource, body)


def test_lines_whose_create_answer_was_lost_are_completed_in_the_same_pass(
    tmp_path: Path,
) -> None:
    """A line's answer lost does not keep the document's other lines from being sent;
    before the pass ends the document's lines are matched by extId: the one created is
    kept, the one missing created, none twice."""
    nord = Quotes(tmp_path)
    lines = [(1000, "ART1", "2", "5"), (2000, "ART2", "1", "7.5"), (3000, "ART3", "1", "1")]
    nord.quote("DE00001", lines)
    first, second = "nord:0:0:DE00001:1000", "nord:0:0:DE00001:2000"
    nord.ssm = LosingLines({first}, {second})
    nord.ctx.ssm_client = nord.ssm

    run = run_pass(nord.ctx, nord.entity, SAGE_TO_SSM)

    assert run.outcome == "succeeded", run.message
    assert run.counts["created"] == 1
    assert sorted(r["extId"] for r in nord.ssm.list_changed("quoteLines")) == [
        first,
        second,
        "nord:0:0:DE00001:3000",
    ]
    # the third line went with the first attempt; only the second was sent again
    assert nord.ssm.sent == [first, second, "nord:0:0:DE00001:3000", second]
    with nord.store.session() as s:
        (link,) = s.scalars(select(Link))
        assert link.label == "synced" and link.base is not None
    assert nord.push()["created"] == 0


def test_a_new_key_a_link_holds_is_an_incident_not_a_second_link(tmp_path: Path) -> None:
    """The dossier's last quote, entered in Sage and synced, is deleted in Sage: the
    entity's numbering gives its number again to a quote entered in SSM. That key is
    held by a link: an incident naming the SSM record, no second link, the pass ends."""
    nord = Quotes(tmp_path)
    nord.quote("DE00001", [(1000, "ART1", "2", "5")])
    nord.push()
    nord.sage.delete(LINES, (0, 0, "DE00001", 1000))
    nord.sage.delete(HEADER, (0, 0, "DE00001"))
    assert nord.push()["deleted"] == 1
    quote_id = ssm_quote(nord, "Chantier Lille", [("ART1", 2)])

    run = run_pass(nord.ctx, nord.entity, SSM_TO_SAGE)

    assert run.outcome == "partial", run.message
    (incident,) = nord.open_incidents()
    assert incident.kind == "sage_write_failed"
    assert incident.record_key == f"ssm:quotes/{quote_id}"
    assert "DE00001" in incident.message
    with nord.store.session() as s:
        assert [link.sage_key for link in s.scalars(select(Link))] == ["0:0:DE00001"]
    assert nord.sage.get(HEADER, (0, 0, "DE00001")) is None
