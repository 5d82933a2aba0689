"""The two passes of the ``orders`` entity (see ``orders.py`` for the rules).

- ``OrdersToSage``: orders entered in SSM are created in their dossier's Sage file,
  header and lines in one transaction, then what Sage computed goes back to SSM.
- ``OrdersFromSage``: orders as Sage holds them are realigned in SSM, and orders entered
  in Sage are created there, read-only.
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from dossiersync.engine import (
    KEPT_IN_SAGE,
    SyncPass,
    batched,
    cursor_row,
    later,
    shift_sage_time,
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
    SsmError,
    SsmNotFound,
    SsmRefused,
)
from dossiersync.journal import RunRecord, add_event, resolve_incidents, utcnow
from dossiersync.messages import Cause, Problem, field_label
from dossiersync.state.models import Incident, Link

from .orders import (
    CENT,
    HEADER,
    LINE_STEP,
    LINE_TO_SSM,
    LINES,
    LOOKUP_CHUNK,
    ORDER,
    SALES,
    SALES_ORDERS,
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


class OrdersFromSage(OrderPass):
    """Sage 50FR -> SSM: orders created in Sage go to SSM read-only and follow Sage there;
    orders that came from SSM get what Sage computed or changed."""

    def execute(self) -> None:
        ctx, entity, session = self.ctx, self.entity, self.session
        cursor = cursor_row(session, self.dossier_id, entity.name, SAGE_TO_SSM)
        full = ctx.full or cursor.cursor is None
        clock = ctx.sage.clock()
        present = {
            entity.order_key(str(key[-1]).strip())
            for key in ctx.sage.read_keys(HEADER, where=SALES_ORDERS)
        }
        linked = self.live_keys()
        # no link at all (new state store, reinstall): look in SSM by extId before creating
        self.lost_state = not linked and not self.any_link()
        self.ssm_index: dict[str, int] | None = None
        self.new_orders: list[NewOrder] = []
        # orders of Sage with no link are new (or predate this connector's cursor)
        keys: set[str] = present - linked
        if full:
            keys.update(present)
            keys.update(self.settled_keys())
        else:
            since = shift_sage_time(cursor.cursor or clock, -ctx.sync.overlap_seconds)
            # a rewritten document may touch only its lines
            for table in (HEADER, LINES):
                for row in ctx.sage.read(table, ["DO_Piece"], since=since, where=SALES_ORDERS):
                    keys.add(entity.order_key(str(row["DO_Piece"])))
            keys.update(self.retry_keys())
        self.run.total = len(keys)
        for chunk in batched(sorted(keys), ctx.sync.batch_size):
            links = self.links_for(Link.sage_key, chunk)
            for key in chunk:
                link = links.get(key)
                # an order costs a request per line: show progress per order
                self.report()
                if link is None or link.origin == "sage":
                    self.born(key, link, search=link is not None or self.lost_state)
                    continue
                # came from SSM; no hash: not in Sage yet
                if (
                    link.sage_hash is None
                    or link.ssm_id is None
                    or link.deleted
                    or link.label in ("pending", "pending_review")
                ):
                    continue
                self.run.add("read")
                self.refresh(link, key)
            self.create_new()
            session.commit()
        self.deletions(present)
        cursor.cursor = clock
        if full:
            cursor.last_full_sync_at = utcnow()
        session.commit()

    def live_keys(self) -> set[str]:
        return {
            k
            for k in self.session.scalars(
                select(Link.sage_key).where(
                    Link.dossier_id == self.dossier_id,
                    Link.entity == self.entity.name,
                    Link.deleted.is_(False),
                )
            )
            if k
        }

    def any_link(self) -> bool:
        found = self.session.scalar(
            select(func.count())
            .select_from(Link)
            .where(Link.dossier_id == self.dossier_id, Link.entity == self.entity.name)
        )
        return bool(found)

    def retry_keys(self) -> list[str]:
        """Orders to read again whatever their modification time: those that failed, and
        those created in Sage that wait for their account or a product."""
        stmt = select(Link.sage_key).where(
            Link.dossier_id == self.dossier_id,
            Link.entity == self.entity.name,
            Link.deleted.is_(False),
            or_(
                and_(Link.sage_hash.is_not(None), Link.label == "error"),
                and_(Link.origin == "sage", Link.label.in_(("pending", "error"))),
            ),
        )
        return [k for k in self.session.scalars(stmt) if k]

    def settled_keys(self, labels: tuple[str, ...] | None = None) -> list[str]:
        stmt = select(Link.sage_key).where(
            Link.dossier_id == self.dossier_id,
            Link.entity == self.entity.name,
            Link.deleted.is_(False),
            Link.sage_hash.is_not(None),
        )
        if labels is not None:
            stmt = stmt.where(Link.label.in_(labels))
        return [k for k in self.session.scalars(stmt) if k]

    def refresh(self, link: Link, key: str) -> None:
        ctx = self.ctx
        current = self.document(self.entity.piece_of(key))
        if current is None:
            # deleted in Sage: the order stays in SSM, where it was created
            self.run.add("unchanged")
            return
        try:
            self.entity.validate(current)
        except RecordInvalid as exc:
            self.record_failed(
                link, key, "invalid_record", str(exc), field_name=exc.field, problem=exc.problem
            )
            return
        digest = record_hash(current)
        if digest == link.sage_hash and not ctx.realign:
            self.done(link, key, "unchanged")
            return
        base = {k: v for k, v in (link.base or {}).items() if k != "line_ids"}
        try:
            changed = self.push(link, base, current)
        except (RecordPending, RecordMoved) as exc:
            self.record_failed(
                link, key, "unknown_reference", str(exc), field_name="lines", cause=exc.cause
            )
            return
        except SsmRefused as exc:
            self.record_refused(link, key, exc)
            return
        link.base = dict(current, line_ids=line_ids_of(link))
        link.sage_hash = digest
        self.done(link, key, "updated" if changed else "unchanged", ",".join(changed) or None)

    def push(self, link: Link, base: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
        """Send SSM what differs from ``base``; return the names of what was sent."""
        ctx, entity, client = self.ctx, self.entity, self.ctx.ssm_client
        assert link.ssm_id is not None
        realign = ctx.realign
        changed: list[str] = []
        if realign or current.get("lines") != base.get("lines"):
            before = {line["line"]: line for line in base.get("lines") or []}
            changed += self.push_lines(link, before, current)
        body: dict[str, Any] = {}
        if realign or current.get("status") != base.get("status"):
            status = entity.status_id(current.get("status"), ctx)
            if status is not None:
                body["statusId"] = status
        if realign or current.get("total_ht") != base.get("total_ht"):
            body["total"] = float(Decimal(current["total_ht"]))
        if realign:
            body.update(readOnly=True)
            number = piece_number(current["piece"])
            if number is not None:
                body["number"] = number
        if body:
            client.update(self.resource, link.ssm_id, body)
            changed += list(body)
        return changed

    def push_lines(
        self, link: Link, before: Mapping[int, Mapping[str, Any]], current: Mapping[str, Any]
    ) -> list[str]:
        """Make the SSM lines of the order the set Sage holds (matched by extId).

        ``before`` holds the lines as both sides last agreed on, by number; a line in
        SSM that is not in it is compared with what SSM holds.
        """
        ctx, entity, client = self.ctx, self.entity, self.ctx.ssm_client
        resource = entity.lines_resource
        ext = link.ext_id or ""
        in_ssm = {
            str(line.get("extId")): line
            for line in entity.ssm_lines(int(link.ssm_id or 0), ctx)
            if str(line.get("extId") or "").startswith(ext + ":")
        }
        changed: list[str] = []
        wanted: set[str] = set()
        names = list(LINE_TO_SSM)
        for line in current["lines"]:
            line_ext = f"{ext}:{line['line']}"
            wanted.add(line_ext)
            existing = in_ssm.get(line_ext)
            if existing is None:
                body = entity.line_body(line, names, ctx)
                body.update(salesOrderId=link.ssm_id, extId=line_ext)
                client.create(resource, body)
                changed.append(f"lines[{line['line']}]+")
                continue
            old = before.get(line["line"]) or entity.ssm_line_view(existing, ctx)
            differ = [n for n in names if ctx.realign or line.get(n) != old.get(n)]
            if differ:
                client.update(resource, int(existing["id"]), entity.line_body(line, differ, ctx))
                changed.append(f"lines[{line['line']}]")
        for line_ext, existing in in_ssm.items():
            if line_ext not in wanted:
                client.delete(resource, int(existing["id"]))
                changed.append(f"lines[{line_ext.rsplit(':', 1)[1]}]-")
        return changed

    # -- orders created in Sage ------------------------------------------------------------

    def born(self, key: str, link: Link | None, search: bool) -> None:
        """An order created in Sage: create it in SSM, or bring SSM in line with Sage.

        ``search``: an earlier pass may have created it in SSM already (its link was
        there, or the state store has none): look for its ``extId`` before creating.
        """
        ctx, entity = self.ctx, self.entity
        if link is not None and link.label == "pending_review" and link.last_error == KEPT_IN_SAGE:
            # deleted in SSM: it stays in Sage and is not created again
            self.run.add("read")
            self.run.add("unchanged")
            return
        current = self.document(entity.piece_of(key))
        if current is None:
            # gone from Sage since its key was read: deletions() sees to it
            return
        self.run.add("read")
        try:
            entity.validate(current)
        except RecordInvalid as exc:
            self.record_failed(
                link or self.new_link(key),
                key,
                "invalid_record",
                str(exc),
                field_name=exc.field,
                problem=exc.problem,
            )
            return
        digest = record_hash(current)
        if link is None:
            link = self.new_link(key)
        elif link.deleted:
            # deleted in Sage once, entered again under the same number: a new SSM order
            link.deleted, link.ssm_id, link.base, link.sage_hash = False, None, None, None
        elif (
            link.ssm_id is not None
            and digest == link.sage_hash
            and link.label == "synced"
            and not ctx.realign
        ):
            self.done(link, key, "unchanged")
            return
        try:
            self.check_references(current)
            found: list[str] = []
            if link.ssm_id is None:
                if self.found_born(link, key, current, search):
                    return  # created with the others of the batch, in bulk
                found = ["found by extId"]
            # base: what both sides last agreed on; none when that was never reached
            base = link.base if link.sage_hash and not found else None
            changed = self.align_born(link, current, base)
            action = "updated" if changed else "unchanged"
            detail = ",".join(found + changed) or None
        except RecordPending as exc:
            # an account or a product is not in SSM yet: retried every pass
            self.record_pending(link, key, str(exc))
            return
        except SsmRefused as exc:
            if isinstance(exc, SsmNotFound) and link.ssm_id is not None:
                self.kept(link, key)
            else:
                self.record_refused(link, key, exc)
            return
        link.base = current
        link.sage_hash = digest
        self.done(link, key, action, detail)

    def new_link(self, key: str) -> Link:
        link = Link(
            dossier_id=self.dossier_id,
            entity=self.entity.name,
            sage_key=key,
            ext_id=self.entity.ext_id(self.dossier_id, key),
            origin="sage",
            label="pending",
            deleted=False,
            updated_at=utcnow(),
        )
        self.session.add(link)
        return link

    def check_references(self, current: Mapping[str, Any]) -> None:
        """RecordPending naming every account or product not in SSM yet: nothing is
        written for an order until all of them are."""
        refs = self.ctx.refs
        wanted = [("clients", str(current.get("account")), "account")] + [
            ("products", str(line.get("product")), "product") for line in current["lines"]
        ]
        refs.prefetch_keys("products", [key for entity, key, _ in wanted if entity == "products"])
        waiting: list[str] = []
        for entity, key, what in wanted:
            try:
                refs.ssm_id(entity, key, what)
            except RecordPending as exc:
                if str(exc) not in waiting:
                    waiting.append(str(exc))
        if waiting:
            raise RecordPending("; ".join(waiting))

    def find_by_ext(self, ext: str) -> int | None:
        """The SSM order carrying this extId, if any."""
        client = self.ctx.ssm_client
        if self.lost_state:
            if self.ssm_index is None:
                self.ssm_index = {
                    str(r.get("extId")): int(r["id"])
                    for r in client.list_changed(self.resource, ext_prefix=self.prefix)
                }
            return self.ssm_index.get(ext)
        for record in client.find(self.resource, ext_ids=[ext]):
            return int(record["id"])
        return None

    def found_born(self, link: Link, key: str, current: Mapping[str, Any], search: bool) -> bool:
        """An order of Sage not linked to SSM yet: found there by extId (created by an
        interrupted pass, or before this state store existed: False, ``link.ssm_id`` set),
        or to be created with the batch's other new orders (True)."""
        ctx, entity = self.ctx, self.entity
        ext = link.ext_id = entity.ext_id(self.dossier_id, key)
        found = self.find_by_ext(ext) if search else None
        if found is not None:
            link.ssm_id = found
            return False
        view = entity.born_view(current)
        body = entity.born_body(view, list(view), ctx)
        impl = ctx.implementation
        body.update(
            extId=ext,
            branchId=ctx.dossier.branch_id or impl.default_branch_id,
            salesRepId=impl.default_sales_rep_id,
        )
        self.new_orders.append(NewOrder(link, key, dict(current), body))
        return True

    def create_new(self) -> None:
        """Create the batch's new orders: their links (the intents) first, the orders in
        bulk, then each one's lines (the API has no bulk call for lines)."""
        orders, self.new_orders = self.new_orders, []
        if not orders:
            return
        for new in orders:
            new.link.label = "pending"
            new.link.updated_at = utcnow()
        self.session.commit()
        client = self.ctx.ssm_client
        results = client.bulk_create(self.resource, [new.body for new in orders])
        for new, result in zip(orders, results, strict=True):
            new.link.ssm_id = result.id if result.ok else None
        self.session.commit()
        created = [new for new, result in zip(orders, results, strict=True) if result.error is None]
        lines = self.create_lines(created)
        fatal: Exception | None = None
        for new, result in zip(orders, results, strict=True):
            link, key, current = new.link, new.key, new.current
            error = result.error or lines.get(key)
            if isinstance(error, SsmRefused):
                self.record_refused(link, key, error)
                continue
            if error is not None:
                fatal = fatal or error
                continue
            link.base = current
            link.sage_hash = record_hash(current)
            self.done(link, key, "created", str(current["piece"]))
            self.report()
        self.session.commit()
        if fatal is not None:
            # the API is down: the run stops; orders created meanwhile are linked, and a
            # later pass completes their lines
            raise fatal

    def create_lines(self, orders: list[NewOrder]) -> dict[str, Exception]:
        """Create the lines of these new SSM orders: each order's lines one after the
        other (in SSM they come in the order of their ids), ``max_concurrency`` orders at a
        time; the first error of each order whose lines did not all go, by key."""
        ctx, entity, client = self.ctx, self.entity, self.ctx.ssm_client
        jobs: list[tuple[str, list[dict[str, Any]]]] = []
        for new in orders:
            ext = new.link.ext_id or ""
            bodies = []
            for line in new.current["lines"]:
                body = entity.line_body(line, list(LINE_TO_SSM), ctx)
                body.update(salesOrderId=new.link.ssm_id, extId=f"{ext}:{line['line']}")
                bodies.append(body)
            jobs.append((new.key, bodies))

        def send(job: tuple[str, list[dict[str, Any]]]) -> Exception | None:
            try:
                for body in job[1]:
                    client.create(entity.lines_resource, body)
            except SsmError as exc:
                return exc
            return None

        workers = ctx.implementation.max_concurrency
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="order-lines") as pool:
            outcomes = zip(jobs, pool.map(send, jobs), strict=True)
            return {key: error for (key, _), error in outcomes if error is not None}

    def align_born(
        self, link: Link, current: Mapping[str, Any], base: Mapping[str, Any] | None
    ) -> list[str]:
        """Send SSM what differs from ``base`` (from what SSM holds without one)."""
        ctx, entity, client = self.ctx, self.entity, self.ctx.ssm_client
        assert link.ssm_id is not None
        wanted = entity.born_view(current)
        if base is None:
            record = client.get(self.resource, link.ssm_id)
            if record.get("deleted"):
                raise SsmNotFound(f"{self.resource} {link.ssm_id} was deleted", 404)
            held = entity.ssm_view(record, ctx)
            before: dict[int, Mapping[str, Any]] = {}
        else:
            held = entity.born_view(base)
            before = {line["line"]: line for line in base.get("lines") or []}
        changed: list[str] = []
        if ctx.realign or base is None or current.get("lines") != base.get("lines"):
            changed += self.push_lines(link, before, current)
        names = [n for n in wanted if ctx.realign or wanted[n] != held.get(n)]
        body = entity.born_body(wanted, names, ctx)
        if body:
            client.update(self.resource, link.ssm_id, body)
            changed += list(body)
        return changed

    def kept(self, link: Link, key: str) -> None:
        """Deleted in SSM by someone: it stays in Sage, for review."""
        link.label = "pending_review"
        link.last_error = KEPT_IN_SAGE
        link.updated_at = utcnow()
        self.run.add("unchanged")
        add_event(self.session, self.run, key, "kept", KEPT_IN_SAGE)

    def deletions(self, present: set[str]) -> None:
        """Orders created in Sage and gone from it are deleted in SSM, lines first.

        Known orders vanishing en masse are not deleted (as for every entity): a
        ``mass_deletion_refused`` incident, and the dossier's next sync is a full one.
        """
        entity, session = self.entity, self.session
        links = list(
            session.scalars(
                select(Link).where(
                    Link.dossier_id == self.dossier_id,
                    Link.entity == entity.name,
                    Link.origin == "sage",
                    Link.deleted.is_(False),
                    Link.sage_key.is_not(None),
                )
            )
        )
        for link in links:
            if link.sage_key not in present and link.last_error == KEPT_IN_SAGE:
                # deleted on both sides
                link.deleted = True
                link.updated_at = utcnow()
        gone = [
            link
            for link in links
            if link.sage_key not in present and link.label != "pending_review"
        ]
        known = sum(1 for link in links if link.ssm_id is not None)
        if not self.deletions_allowed(len(gone), known):
            self.keep_vanished(
                "vanished from Sage with many others; deletion refused", [link.id for link in gone]
            )
            return
        for link in gone:
            key = link.sage_key or ""
            try:
                if link.ssm_id is None:
                    # an interrupted create may have reached SSM
                    link.ssm_id = self.find_by_ext(
                        link.ext_id or entity.ext_id(self.dossier_id, key)
                    )
                if link.ssm_id is None:
                    add_event(
                        session,
                        self.run,
                        key,
                        "dropped",
                        "deleted in Sage 50FR before it reached Sales Management",
                    )
                    resolve_incidents(session, self.dossier_id, entity.name, record_keys=[key])
                    session.delete(link)
                    continue
                self.delete_born(link.ssm_id)
            except SsmRefused as exc:
                self.record_refused(link, key, exc)
                continue
            link.deleted = True
            self.done(link, key, "deleted")
        session.commit()

    def delete_born(self, ssm_id: int) -> None:
        client, lines = self.ctx.ssm_client, self.entity.lines_resource
        for line in self.entity.ssm_lines(ssm_id, self.ctx):
            _delete(client, lines, int(line["id"]))
        _delete(client, self.resource, ssm_id)


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


@dataclass
class NewOrder:
    """An order of Sage to create in SSM with the others of its batch."""

    link: Link
    key: str
    current: dict[str, Any]
    body: dict[str, Any]


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


def _delete(client: Any, resource: str, record_id: int) -> None:
    """Delete an SSM record; one already gone is fine."""
    try:
        client.delete(resource, record_id)
    except SsmNotFound:
        pass
