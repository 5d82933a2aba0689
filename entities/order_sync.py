"""The two passes of the ``orders`` entity (see ``orders.py`` for the rules).

- ``OrdersToSage``: orders entered in SSM are created in their dossier's Sage file,
  header and lines in one transaction, then what Sage computed goes back to SSM.
- ``OrdersFromSage``: orders as Sage holds them are realigned in SSM, and orders entered
  in Sage are created there, read-only.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dossiersync.engine import (
    KEPT_IN_SAGE,
    SyncPass,
    batched,
    cursor_row,
    later,
)
from dossiersync.entity import (
    SAGE_TO_SSM,
    SSM_TO_SAGE,
    Entity,
    normalise,
    record_hash,
)
from dossiersync.errors import (
    RecordInvalid,
    RecordMoved,
    RecordPending,
    SourceError,
    SsmRefused,
)
from dossiersync.journal import RunRecord, add_event, resolve_incidents, utcnow
from dossiersync.messages import Cause, Problem, field_label
from dossiersync.state.models import Incident, Link

from .orders import (
    CENT,
    HEADER,
    LINE_STEP,
    LINES,
    LOOKUP_CHUNK,
    ORDER,
    SALES,
    VAT_FACTOR,
    OrdersEntity,
    Refused,
    amount,
    line_ids_of,
    piece_number,
    ssm_field,
)

if TYPE_CHECKING:
    from dossiersync.context import DossierContext


class OrderPass(SyncPass):
    """What both directions of the orders sync share."""

    entity: OrdersEntity

    def __init__(
        self, ctx: DossierContext, entity: Entity, run: RunRecord, session: Session
    ) -> None:
        super().__init__(ctx, entity, run, session)
        assert isinstance(entity, OrdersEntity)
        self.entity = entity
        self.prefix = f"{self.dossier_id}:"

    def document(self, piece: str) -> dict[str, Any] | None:
        """The order as Sage holds it, header and every line, or None."""
        sage = self.ctx.sage
        header = sage.get(HEADER, (SALES, ORDER, piece), self.entity.sage_columns)
        if header is None:
            return None
        where = {"DO_Domaine": SALES, "DO_Type": ORDER, "DO_Piece": piece}
        lines = sage.read(LINES, self.entity.line_columns, where=where)
        record = self.entity.from_sage_document(header, lines)
        self.ctx.transform(self.entity.name, SAGE_TO_SSM, record)
        return record

    def done(self, link: Link, key: str, action: str, detail: str | None = None) -> None:
        """A record went through in this direction: close its incidents here, label it.

        The label is ``synced`` only when no incident of the record stays open in the
        other direction.
        """
        still_open = 0
        if self.has_open_incidents:
            keys = [key, f"ssm:{self.resource}/{link.ssm_id}"]
            resolve_incidents(
                self.session,
                self.dossier_id,
                self.entity.name,
                record_keys=keys,
                direction=self.direction,
            )
            still_open = (
                self.session.scalar(
                    select(func.count())
                    .select_from(Incident)
                    .where(
                        Incident.dossier_id == self.dossier_id,
                        Incident.entity == self.entity.name,
                        Incident.record_key.in_(keys),
                        Incident.state == "open",
                    )
                )
                or 0
            )
        label = "error" if still_open else "synced"
        if label != link.label or action != "unchanged":
            add_event(self.session, self.run, key, action, detail)
        link.label = label
        if not still_open:
            link.last_error = None
        link.updated_at = utcnow()
        self.run.add(action)

    def link_of(self, ssm_id: int) -> Link | None:
        """The order's link, whichever dossier holds it."""
        return self.session.scalar(
            select(Link).where(Link.entity == self.entity.name, Link.ssm_id == ssm_id)
        )


class OrdersToSage(OrderPass):
    """SSM -> Sage 50FR: new orders are created in their dossier; synced ones never move."""

    def __init__(
        self, ctx: DossierContext, entity: Entity, run: RunRecord, session: Session
    ) -> None:
        super().__init__(ctx, entity, run, session)
        self.direction = SSM_TO_SAGE

    def execute(self) -> None:
        ctx, session, client = self.ctx, self.session, self.ctx.ssm_client
        cursor = cursor_row(session, self.dossier_id, self.entity.name, SSM_TO_SAGE)
        full = ctx.full or cursor.cursor is None
        since = None if full else cursor.cursor
        overlap = ctx.sync.overlap_seconds
        newest = cursor.cursor
        seen: set[int] = set()
        # unfinished intents and refused orders first, whether they changed or not
        self.by_ids(sorted(self.retry_ids()), seen, retry=True)
        listing = client.list_changed(self.resource, since=since, overlap_seconds=overlap)
        for batch in batched(listing, ctx.sync.batch_size):
            for record in batch:
                newest = later(newest, client.changed_at(record))
                self.one(record, seen)
                self.report()
            session.commit()
        if since is not None:
            # a line added or changed leaves its order's dateUpdated as it was
            touched: set[int] = set()
            lines = client.list_changed(
                self.entity.lines_resource, since=since, overlap_seconds=overlap
            )
            for line in lines:
                newest = later(newest, client.changed_at(line))
                order_id = client.fk_id(line.get("salesorderId"))
                if order_id is not None and order_id not in seen:
                    touched.add(order_id)
            self.by_ids(sorted(touched), seen)
        cursor.cursor = newest
        if full:
            cursor.last_full_sync_at = utcnow()
        session.commit()

    def retry_ids(self) -> set[int]:
        session = self.session
        ids = {
            i
            for i in session.scalars(
                select(Link.ssm_id).where(
                    Link.dossier_id == self.dossier_id,
                    Link.entity == self.entity.name,
                    Link.deleted.is_(False),
                    Link.label.in_(("pending", "error")),
                )
            )
            if i is not None
        }
        refs = f"ssm:{self.resource}/"
        for key in session.scalars(
            select(Incident.record_key).where(
                Incident.dossier_id == self.dossier_id,
                Incident.entity == self.entity.name,
                Incident.direction == SSM_TO_SAGE,
                Incident.state == "open",
                Incident.record_key.like(refs + "%"),
            )
        ):
            if key and key[len(refs) :].isdigit():
                ids.add(int(key[len(refs) :]))
        return ids

    def by_ids(self, ids: list[int], seen: set[int], retry: bool = False) -> None:
        """Process these SSM orders.

        With ``retry`` (records this dossier failed on), an order SSM no longer has or
        that is no longer this dossier's closes its incidents here.
        """
        for chunk in batched([i for i in ids if i not in seen], LOOKUP_CHUNK):
            found = {int(r["id"]): r for r in self.ctx.ssm_client.find(self.resource, ids=chunk)}
            for ssm_id in chunk:
                record = found.get(ssm_id)
                if record is None:
                    if retry:
                        self.vanished(ssm_id)
                elif not self.one(record, seen) and retry:
                    self.forget_incidents(ssm_id)
            self.session.commit()

    def one(self, record: dict[str, Any], seen: set[int]) -> bool:
        """One SSM order; False when it is not this dossier's to sync."""
        ssm_id = int(record["id"])
        if ssm_id in seen:
            return True
        seen.add(ssm_id)
        link = self.link_of(ssm_id)
        if link is not None and link.dossier_id != self.dossier_id:
            return False
        if link is not None and link.origin == "sage":
            self.born_in_sage(record, link)
            return True
        ext = str(record.get("extId") or "")
        if link is None and ext.startswith(self.prefix):
            # synced before this state store existed (reinstall, restore)
            self.run.add("read")
            self.adopt(record, ext[len(self.prefix) :])
            return True
        if link is None and (ext or not self.belongs_here(record)):
            # another dossier's order (or another system's)
            return False
        self.run.add("read")
        ref = f"ssm:{self.resource}/{ssm_id}"
        try:
            if link is not None and link.sage_hash is not None:
                self.linked(record, link)
            else:
                self.create(record, link, ref)
        except Refused as exc:
            target = link.sage_key if link and link.sage_hash and link.sage_key else ref
            self.record_failed(
                link,
                target,
                exc.kind,
                str(exc),
                field_name=exc.field,
                problem=exc.problem,
                cause=exc.cause,
            )
        except SsmRefused as exc:
            self.record_refused(link, ref, exc)
        return True

    def belongs_here(self, record: Mapping[str, Any]) -> bool:
        """An order is its account's dossier's; with an unknown account, its branch's."""
        client = self.ctx.ssm_client
        account = client.fk_id(record.get("accountId"))
        if account is not None:
            owner = self.ctx.refs.owner_of("clients", account)
            if owner is not None:
                return owner == self.dossier_id
        branch = self.ctx.dossier.branch_id
        return branch is not None and client.fk_id(record.get("branchId")) == branch

    # -- synced orders -----------------------------------------------------------------

    def linked(self, record: Mapping[str, Any], link: Link) -> None:
        """A synced order is read-only in SSM: nothing goes to Sage, but it cannot move."""
        self.check_account(record, link)
        self.done(link, link.sage_key or "", "unchanged")

    def born_in_sage(self, record: Mapping[str, Any], link: Link) -> None:
        """An order created in Sage: nothing of it goes to Sage, and it cannot move either.

        Its label is the Sage pass's (``pending`` while it waits for a reference): this
        pass only closes what it found wrong itself.
        """
        if link.deleted or link.sage_hash is None or link.label == "pending_review":
            return
        self.run.add("read")
        key = link.sage_key or ""
        try:
            self.check_account(record, link)
        except Refused as exc:
            self.record_failed(
                link,
                key,
                exc.kind,
                str(exc),
                field_name=exc.field,
                problem=exc.problem,
                cause=exc.cause,
            )
            return
        if link.label == "error":
            self.done(link, key, "unchanged")
        else:
            self.run.add("unchanged")

    def check_account(self, record: Mapping[str, Any], link: Link) -> None:
        """Refused when a synced order's account was changed in SSM."""
        key = link.sage_key or ""
        base_account = (link.base or {}).get("account")
        label = _label(record.get("accountId"))
        account = self.ctx.ssm_client.fk_id(record.get("accountId"))
        owner = None if account is None else self.ctx.refs.owner_of("clients", account)
        if owner is not None and owner != self.dossier_id:
            cause = Cause(
                "order_moved",
                {
                    "ssm_id": record["id"],
                    "piece": self.entity.piece_of(key),
                    "account": account,
                    "label": label,
                    "other": owner,
                },
            )
            raise Refused.because("moved_between_dossiers", "accountId", cause)
        try:
            code = (
                None if account is None else self.ctx.refs.sage_key("clients", account, "account")
            )
        except (RecordPending, RecordMoved):
            code = None
        if code != base_account:
            cause = Cause(
                "order_account_changed",
                {
                    "ssm_id": record["id"],
                    "piece": self.entity.piece_of(key),
                    "before": base_account,
                    "account": account,
                    "label": label,
                },
            )
            raise Refused.because("account_changed", "accountId", cause)

    def adopt(self, record: Mapping[str, Any], key: str) -> None:
        """Link an order SSM already holds with this dossier's extId, by its Sage key."""
        try:
            piece = self.entity.piece_of(key)
        except ValueError:
            self.run.add("unchanged")
            return
        current = self.document(piece)
        if current is None or self.entity.order_key(piece) != key:
            self.run.add("unchanged")
            return
        link = Link(
            dossier_id=self.dossier_id,
            entity=self.entity.name,
            sage_key=key,
            ssm_id=int(record["id"]),
            ext_id=self.entity.ext_id(self.dossier_id, key),
            origin="ssm",
            base=dict(current, line_ids={}),
            sage_hash=record_hash(current),
            label="pending",
            deleted=False,
            updated_at=utcnow(),
        )
        self.session.add(link)
        self.done(link, key, "unchanged", "adopted by extId")

    def forget_incidents(self, ssm_id: int) -> None:
        resolve_incidents(
            self.session,
            self.dossier_id,
            self.entity.name,
            record_keys=[f"ssm:{self.resource}/{ssm_id}"],
            direction=SSM_TO_SAGE,
        )

    def vanished(self, ssm_id: int) -> None:
        """An order retried here is no longer in SSM (deleted there)."""
        ref = f"ssm:{self.resource}/{ssm_id}"
        self.forget_incidents(ssm_id)
        link = self.link_of(ssm_id)
        if link is None or link.dossier_id != self.dossier_id:
            return
        piece = self.entity.piece_of(link.sage_key or "0:1:")
        if link.sage_hash is None and self.ctx.sage.get(HEADER, (SALES, ORDER, piece)) is None:
            # an intent never written to Sage: forget it
            add_event(self.session, self.run, ref, "dropped", "deleted in Sales Management")
            self.session.delete(link)
            return
        link.label = "pending_review"
        link.last_error = (
            KEPT_IN_SAGE
            if link.origin == "sage"
            else "deleted in Sales Management; kept in Sage 50FR"
        )
        link.updated_at = utcnow()
        add_event(self.session, self.run, link.sage_key or ref, "kept", link.last_error)

    # -- new orders ---------------------------------------------------------------------

    def create(self, record: Mapping[str, Any], link: Link | None, ref: str) -> None:
        """Write an SSM order to Sage (intent link first), then tell SSM what Sage holds."""
        ctx, entity, session = self.ctx, self.entity, self.session
        piece: str | None = None
        if link is not None:
            piece = entity.piece_of(link.sage_key or "0:1:")
            header = ctx.sage.get(HEADER, (SALES, ORDER, piece), ["DO_Tiers", "DO_Ref"])
            if header is not None:
                if self.is_intended(header, link):
                    # written before a crash or a failure: finish, never write twice
                    self.settle(link, ref)
                    return
                # the number was taken in Sage meanwhile: take the next one
                piece = None
        planned, line_ids = self.plan(record, piece or self.next_piece())
        key = entity.order_key(planned["piece"])
        if link is None:
            link = Link(
                dossier_id=self.dossier_id,
                entity=entity.name,
                ssm_id=int(record["id"]),
                origin="ssm",
                deleted=False,
            )
            session.add(link)
        link.sage_key = key
        link.ext_id = entity.ext_id(self.dossier_id, key)
        link.base = dict(planned, line_ids=line_ids)
        link.sage_hash = None
        link.label = "pending"
        link.updated_at = utcnow()
        # the intent is durable before Sage is written
        session.commit()
        header_row, line_rows = entity.sage_rows(planned)
        try:
            with ctx.sage.transaction():
                ctx.sage.insert(HEADER, header_row)
                for row in line_rows:
                    ctx.sage.insert(LINES, row)
        except SourceError as exc:
            self.record_failed(link, ref, "sage_write_failed", str(exc), refused=False)
            return
        self.settle(link, ref)

    def is_intended(self, header: Mapping[str, Any], link: Link) -> bool:
        planned = link.base or {}
        return (header.get("DO_Tiers"), header.get("DO_Ref")) == (
            planned.get("account"),
            planned.get("reference"),
        )

    def next_piece(self) -> str:
        """The next order number of the dossier, skipping numbers held by intents."""
        entity = self.entity
        prefix, width = entity.piece_prefix, entity.piece_width
        piece = self.ctx.sage.next_code(HEADER, "DO_Piece", prefix, width)
        held = {
            entity.piece_of(k)
            for k in self.session.scalars(
                select(Link.sage_key).where(
                    Link.dossier_id == self.dossier_id,
                    Link.entity == entity.name,
                    Link.origin == "ssm",
                    Link.sage_hash.is_(None),
                )
            )
            if k
        }
        while piece in held:
            piece = f"{prefix}{int(piece[len(prefix) :]) + 1:0{width - len(prefix)}d}"
        return piece

    def plan(self, record: Mapping[str, Any], piece: str) -> tuple[dict[str, Any], dict[str, int]]:
        """The order as it will be written to Sage, validated, and its SSM line ids by
        line number; Refused when it cannot be written."""
        ctx, entity, client = self.ctx, self.entity, self.ctx.ssm_client
        account = client.fk_id(record.get("accountId"))
        if account is None:
            cause = Cause("no_account", {"ssm_id": record["id"], "dossier": self.dossier_id})
            raise Refused.because("unknown_reference", "accountId", cause)
        try:
            code = ctx.refs.sage_key("clients", account, "account")
        except (RecordPending, RecordMoved) as exc:
            cause = Cause(
                "account_unknown",
                {
                    "ssm_id": record["id"],
                    "account": account,
                    "label": _label(record.get("accountId")),
                    "dossier": self.dossier_id,
                    "cause": exc.cause or str(exc),
                },
            )
            raise Refused.because("unknown_reference", "accountId", cause) from None
        lines = sorted(entity.ssm_lines(int(record["id"]), ctx), key=lambda line: int(line["id"]))
        refs: list[str] = []
        missing: list[tuple[int, Cause]] = []
        for n, line in enumerate(lines):
            product = client.fk_id(line.get("productId"))
            where = {"line": n + 1, "field": f"lines[{n}].productId"}
            if product is None:
                missing.append((n, Cause("line_no_product", where)))
                refs.append("")
                continue
            try:
                refs.append(ctx.refs.sage_key("products", product, "product"))
            except (RecordPending, RecordMoved) as exc:
                label = _label(line.get("productId"))
                why = {"product": product, "label": label, "cause": exc.cause or str(exc)}
                missing.append((n, Cause("line_product", {**where, **why})))
                refs.append("")
        articles = {
            str(row["AR_Ref"]): row
            for row in ctx.sage.read(
                "F_ARTICLE", ["AR_Ref", "AR_Design", "AR_PrixVen"], keys=[(r,) for r in refs if r]
            )
        }
        for n, ref in enumerate(refs):
            if ref and ref not in articles:
                where = {"line": n + 1, "field": f"lines[{n}].productId", "ref": ref}
                missing.append((n, Cause("line_not_in_sage", where)))
        if missing:
            missing.sort(key=lambda item: item[0])
            cause = Cause(
                "products_unknown",
                {
                    "ssm_id": record["id"],
                    "dossier": self.dossier_id,
                    "items": [c for _, c in missing],
                },
            )
            raise Refused.because("unknown_reference", f"lines[{missing[0][0]}].productId", cause)
        planned_lines: list[dict[str, Any]] = []
        line_ids: dict[str, int] = {}
        total = Decimal(0)
        for n, (line, ref) in enumerate(zip(lines, refs, strict=True)):
            quantity = _decimal(
                line.get("quantity"),
                f"lines[{n}].quantity",
                field_label(entity.field_labels, f"lines[{n}].quantity"),
            )
            discount = _decimal(
                line.get("discount1") or 0,
                f"lines[{n}].discount1",
                field_label(entity.field_labels, f"lines[{n}].discount"),
            )
            article = articles[ref]
            price = Decimal(article["AR_PrixVen"] if article["AR_PrixVen"] is not None else 0)
            amount_ht = (quantity * price * (1 - discount / 100)).quantize(CENT, ROUND_HALF_UP)
            total += amount_ht
            number = LINE_STEP * (n + 1)
            line_ids[str(number)] = int(line["id"])
            planned_lines.append(
                {
                    "line": number,
                    "product": ref,
                    "designation": normalise(article["AR_Design"], "text"),
                    "quantity": amount(quantity),
                    "discount": amount(discount),
                    "price": amount(price),
                    "total": amount(amount_ht),
                }
            )
        day = str(record.get("date") or record.get("dateCreated") or "")[:10]
        planned: dict[str, Any] = {
            "domain": SALES,
            "type": ORDER,
            "piece": piece,
            "account": code,
            "reference": normalise(record.get("reference"), "text"),
            "date": day or None,
            "status": 0,
            "total_ht": amount(total),
            "total_ttc": amount((total * VAT_FACTOR).quantize(CENT, ROUND_HALF_UP)),
            "lines": planned_lines,
        }
        ctx.transform(entity.name, SSM_TO_SAGE, planned)
        try:
            entity.validate(planned)
        except RecordInvalid as exc:
            name = ssm_field(exc.field or "(record)")
            known_as = f" (SSM field {name})" if name != exc.field else ""
            raise Refused(
                "invalid_record", name, f"order {record['id']}: {exc}{known_as}", exc.problem
            ) from None
        return planned, line_ids

    def settle(self, link: Link, ref: str) -> None:
        """Tell SSM what Sage holds (lines first, the order's extId last), then link."""
        ctx, entity, client = self.ctx, self.entity, self.ctx.ssm_client
        key = link.sage_key or ""
        current = self.document(entity.piece_of(key))
        if current is None:
            raise SourceError(f"order {key} vanished from Sage 50FR right after it was written")
        line_ids = line_ids_of(link)
        ext = link.ext_id or ""
        for line in current["lines"]:
            ssm_line = line_ids.get(str(line["line"]))
            if ssm_line is not None:
                line_body = entity.line_body(line, ("price", "total"), ctx)
                line_body["extId"] = f"{ext}:{line['line']}"
                client.update(entity.lines_resource, ssm_line, line_body)
        body: dict[str, Any] = {
            "extId": ext,
            "total": float(Decimal(current["total_ht"])),
            "readOnly": True,
        }
        number = piece_number(current["piece"])
        if number is not None:
            body["number"] = number
        status = entity.status_id(current.get("status"), ctx)
        if status is not None:
            body["statusId"] = status
        assert link.ssm_id is not None
        client.update(self.resource, link.ssm_id, body)
        link.base = dict(current, line_ids=line_ids)
        link.sage_hash = record_hash(current)
        self.done(link, key, "created", current["piece"])


def _decimal(value: Any, field_name: str, label: Mapping[str, str]) -> Decimal:
    """A line's number as SSM sent it; Refused, naming the field, when it is none."""
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        number = Decimal("NaN")
    if not number.is_finite():
        problem = Problem("decimal", field_name, value, None, label)
        raise Refused("invalid_record", field_name, problem.text(), problem)
    return number


def _label(value: Any) -> str:
    """`` (label)`` of a foreign key as SSM renders it, or nothing."""
    if isinstance(value, Mapping) and value.get("value"):
        return f" ({value['value']})"
    return ""
