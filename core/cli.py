"""The ``dossiersync`` command."""

from __future__ import annotations

import json
import logging
import signal
import sys
from datetime import datetime
from typing import TYPE_CHECKING, Any

import click

from . import __version__
from .config import Config, load
from .display import visible
from .errors import DossierSyncError

if TYPE_CHECKING:
    from .state.store import StateStore


class Ctx:
    def __init__(self, config_path: str | None, verbose: int = 0) -> None:
        self.config_path = config_path
        self.verbose = verbose
        self._config: Config | None = None
        self._store: StateStore | None = None

    @property
    def config(self) -> Config:
        if self._config is None:
            self._config = load(self.config_path)
            if not self.verbose:
                logging.getLogger("dossiersync").setLevel(self._config.log_level)
        return self._config

    @property
    def store(self) -> StateStore:
        if self._store is None:
            from .state.store import StateStore

            self._store = StateStore(self.config.state_url)
        return self._store

    def known_dossiers(self, *dossier_ids: str | None) -> None:
        """Refuse a dossier id neither the configuration nor the state store knows, with
        the same message for every command."""
        wanted = [d for d in dossier_ids if d]
        if not wanted:
            return
        from sqlalchemy import select

        from .dossiers import proposed
        from .state.models import Dossier

        known = set(proposed(self.config))
        with self.store.session() as s:
            known |= set(s.scalars(select(Dossier.id)))
        unknown = [d for d in wanted if d not in known]
        if unknown:
            listed = ", ".join(sorted(known)) or "none"
            raise click.UsageError(
                f"unknown dossier {', '.join(map(repr, unknown))}: it is neither in the "
                f"configuration nor in the state store (known: {listed}; see 'dossiers list')"
            )


pass_ctx = click.make_pass_decorator(Ctx)


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def table(rows: list[list[Any]], headers: list[str], counts: tuple[str, ...] = ()) -> str:
    """Rows under upper-case headers, columns aligned; a column named in ``counts`` is left
    out when it is empty or 0 on every row (a table full of zeros says nothing)."""
    keep = [
        i
        for i, h in enumerate(headers)
        if h not in counts or any(row[i] not in (None, "", 0) for row in rows)
    ]
    headers = [headers[i] for i in keep]
    # cells hold Sage and SSM text: their control characters are shown, not obeyed
    cells = [[("" if row[i] is None else visible(str(row[i]))) for i in keep] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    lines = ["  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True))]
    for row in cells:
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
    return "\n".join(line.rstrip() for line in lines)


def duration(seconds: float | None) -> str:
    """A run's duration as a table shows it: ``0.4s``, ``12s``, ``3m05s``, ``1h02m``."""
    if seconds is None:
        return ""
    if seconds < 10:
        return f"{seconds:.1f}s"
    whole = round(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    help="Configuration file (default: $DOSSIERSYNC_CONFIG, else ./dossiersync.toml).",
)
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
@click.version_option(__version__, prog_name="dossiersync")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, verbose: int) -> None:
    """Keep several Sage 50FR dossiers in sync with one Sage Sales Management implementation."""
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(
        level=level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    ctx.obj = Ctx(config_path, verbose)


# -- dossiers ------------------------------------------------------------------------


@cli.group()
def dossiers() -> None:
    """The dossier group: discover, activate, deactivate, list."""


def _dossier_rows(items: list[Any]) -> str:
    return table(
        [
            [v.id, v.name, v.state, ",".join(v.entities), v.linked_records, v.open_incidents]
            for v in items
        ],
        ["id", "name", "state", "entities", "linked", "incidents"],
    )


@dossiers.command("discover")
@json_option
@pass_ctx
def dossiers_discover(c: Ctx, as_json: bool) -> None:
    """Dossiers the connector can reach, with their state (new/active/inactive), and
    whether Sales Management already holds their records (previously synced)."""
    from .dossiers import records_in_ssm, views
    from .runner import ssm_client

    try:
        with ssm_client(c.config, max_retries=1) as client:
            in_ssm = records_in_ssm(c.config, client)
    except DossierSyncError as exc:
        click.echo(f"warning: Sales Management not asked for earlier dossiers: {exc}", err=True)
        in_ssm = None
    items = views(c.config, c.store, in_ssm, probe=True)
    unreachable = [v for v in items if v.reachable is False]
    if as_json:
        emit_json([v.as_dict() for v in items])
    else:
        click.echo(
            table(
                [
                    [
                        v.id,
                        v.name,
                        v.state,
                        "-" if v.reachable is None else "ok" if v.reachable else "unreachable",
                        ",".join(v.entities),
                        v.linked_records,
                        "?" if v.records_in_ssm is None else v.records_in_ssm,
                        "?"
                        if v.previously_synced is None
                        else "yes"
                        if v.previously_synced
                        else "no",
                        v.open_incidents,
                    ]
                    for v in items
                ],
                [
                    "id",
                    "name",
                    "state",
                    "source",
                    "entities",
                    "linked",
                    "in ssm",
                    "synced before",
                    "incidents",
                ],
            )
        )
    for v in unreachable:
        click.echo(f"UNREACHABLE {v.id}: {visible(str(v.source_error))}", err=True)
    if unreachable:
        sys.exit(1)


@dossiers.command("list")
@json_option
@pass_ctx
def dossiers_list(c: Ctx, as_json: bool) -> None:
    """Dossiers attached to the implementation (active and inactive)."""
    from .dossiers import views

    items = [v for v in views(c.config, c.store) if v.state != "new"]
    if as_json:
        emit_json([v.as_dict() for v in items])
    else:
        click.echo(_dossier_rows(items))


@dossiers.command("activate")
@click.argument("dossier_ids", nargs=-1, required=True, metavar="ID...")
@json_option
@pass_ctx
def dossiers_activate(c: Ctx, dossier_ids: tuple[str, ...], as_json: bool) -> None:
    """Select dossiers: attach them to the implementation and activate them."""
    from .dossiers import activate

    items = activate(c.config, c.store, list(dossier_ids))
    if as_json:
        emit_json([v.as_dict() for v in items])
    else:
        for v in items:
            click.echo(f"{v.id}: {v.state} (full sync on next run)")


@dossiers.command("deactivate")
@click.argument("dossier_ids", nargs=-1, required=True, metavar="ID...")
@json_option
@pass_ctx
def dossiers_deactivate(c: Ctx, dossier_ids: tuple[str, ...], as_json: bool) -> None:
    """Stop syncing dossiers; their data stays visible in Sales Management."""
    from .dossiers import deactivate

    items = deactivate(c.config, c.store, list(dossier_ids))
    if as_json:
        emit_json([v.as_dict() for v in items])
    else:
        for v in items:
            click.echo(f"{v.id}: {v.state} (records stay in Sales Management)")


# -- sync ------------------------------------------------------------------------------


@cli.command()
@click.option("--dossier", "dossier_ids", multiple=True, help="Only this dossier (repeatable).")
@click.option("--entity", "entity_names", multiple=True, help="Only this entity (repeatable).")
@click.option("--full", is_flag=True, help="Read everything, not only what changed.")
@click.option(
    "--dry-run",
    is_flag=True,
    help="Show what the sync would create, update, delete or refuse; write nothing.",
)
@click.option(
    "--wait",
    "wait_seconds",
    type=click.FloatRange(0),
    default=0,
    help="Seconds to wait for a dossier another process is syncing (default: skip it).",
)
@json_option
@pass_ctx
def sync(
    c: Ctx,
    dossier_ids: tuple[str, ...],
    entity_names: tuple[str, ...],
    full: bool,
    dry_run: bool,
    wait_seconds: float,
    as_json: bool,
) -> None:
    """Sync active dossiers once. Exit status 0 only when every run succeeded."""
    from .runner import sync as run_sync

    c.known_dossiers(*dossier_ids)
    if dry_run:
        from .preview import preview

        previews = preview(
            c.config, c.store, list(dossier_ids) or None, list(entity_names) or None, full=full
        )
        if as_json:
            emit_json([p.as_dict() for p in previews])
        else:
            for p in previews:
                for line in p.lines():
                    click.echo(line)
            click.echo("(dry run: nothing was written)")
        if any(p.error for p in previews):
            sys.exit(1)
        return
    live = not as_json and sys.stdout.isatty()
    ticks = [0]

    def describe(run: Any) -> tuple[str, str]:
        counts = ", ".join(f"{k} {v}" for k, v in run.counts.items() if v)
        return f"{run.dossier_id:<16} {run.entity:<16} {run.direction:<12}", counts

    def moving(run: Any) -> None:
        # a live line per process on a terminal; quiet when piped or with --json
        from .journal import utcnow
        from .progress import progress_line

        ticks[0] += 1
        click.echo(f"\r{progress_line(run, utcnow(), ticks[0])}\x1b[K", nl=False)

    def progress(run: Any) -> None:
        if not as_json:
            head, counts = describe(run)
            prefix = "\r" if live else ""
            suffix = "\x1b[K" if live else ""
            click.echo(f"{prefix}{head} {run.outcome:<10} {counts}{suffix}")

    results = run_sync(
        c.config,
        c.store,
        list(dossier_ids) or None,
        list(entity_names) or None,
        full=full,
        on_run=progress,
        wait_seconds=wait_seconds,
        progress=moving if live else None,
    )
    if as_json:
        emit_json([r.as_dict() for r in results])
    failed = [line for r in results for line in r.reasons()]
    for line in failed:
        click.echo(f"FAILED {visible(line, lines=True)}", err=True)
    if failed:
        sys.exit(1)


# -- views -------------------------------------------------------------------------------


@cli.command()
@click.option("--dossier", "dossier_id", help="Only this dossier.")
@json_option
@pass_ctx
def status(c: Ctx, dossier_id: str | None, as_json: bool) -> None:
    """Sync state per dossier and entity."""
    from .reports import status as build

    c.known_dossiers(dossier_id)
    data = build(c.config, c.store, dossier_id)
    if as_json:
        emit_json(data)
        return
    rows = []
    for d in data:
        if not d["entities"]:
            rows.append([d["id"], d["name"], d["state"], "", "-", "-", 0, 0, 0, 0, 0, 0])
        for e in d["entities"]:
            last = {r["direction"]: r for r in e["last_runs"]}
            out = last.get("sage_to_ssm")
            inn = last.get("ssm_to_sage")
            rec = e["records"]
            rows.append(
                [
                    d["id"],
                    d["name"],
                    d["state"],
                    e["entity"],
                    f"{out['outcome']} {out['finished_at'] or ''}".strip() if out else "-",
                    inn["outcome"] if inn else "-",
                    rec["synced"],
                    rec["pending"],
                    rec["pending_review"],
                    rec["error"],
                    rec["deleted"],
                    e["open_incidents"],
                ]
            )
    counts = ("synced", "pending", "review", "error", "deleted", "incidents")
    headers = ["dossier", "name", "state", "entity", "sage->ssm", "ssm->sage", *counts]
    click.echo(table(rows, headers, counts=counts[1:]))
    for d in data:
        if d["synced_by"]:
            click.echo(f"{d['id']} is being synced by {d['synced_by']}")
    for d in data:
        said = [
            f"{side}: last change {w['last_change_at']}"
            + (
                f", reached the other side in {w['latency_p50_seconds']} s "
                f"(median of {w['latency_samples']} over the last hour)"
                if w["latency_p50_seconds"] is not None
                else ""
            )
            for side, w in d["changes"].items()
            if w["last_change_at"]
        ]
        if said:
            click.echo(f"{d['id']} changes seen by the service — " + "; ".join(said))


@cli.command("journal")
@click.option("--dossier", "dossier_id", required=True, help="The dossier.")
@click.option("--run", "run_id", type=int, help="Per-record events of this run.")
@click.option("--since", type=click.DateTime(), help="Runs started at or after (UTC).")
@click.option("--limit", type=int, default=50, show_default=True, help="At most this many runs.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "csv"]),
    default="table",
    help="Output format (csv: a report to open in a spreadsheet).",
)
@json_option
@pass_ctx
def journal_cmd(
    c: Ctx,
    dossier_id: str,
    run_id: int | None,
    since: datetime | None,
    limit: int,
    fmt: str,
    as_json: bool,
) -> None:
    """A dossier's journal: each process with start, end, outcome and counts."""
    from .reports import journal, journal_csv

    c.known_dossiers(dossier_id)
    data = journal(c.store, dossier_id, run_id=run_id, since=since, limit=limit)
    if fmt == "csv":
        click.echo(journal_csv(data), nl=False)
    elif as_json or fmt == "json":
        emit_json(data)
    elif run_id is not None:
        click.echo(
            table(
                [[e["at"], e["entity"], e["record_key"], e["action"], e["detail"]] for e in data],
                ["at", "entity", "record", "action", "detail"],
            )
        )
    else:
        click.echo(
            table(
                [
                    [
                        r["run_id"],
                        r["entity"],
                        r["direction"],
                        r["trigger"],
                        r["started_at"],
                        r["finished_at"],
                        duration(r["duration_seconds"]),
                        r["outcome"],
                        " ".join(f"{k}={v}" for k, v in r["counts"].items() if v),
                        r["holder"],
                    ]
                    for r in data
                ],
                [
                    "run",
                    "entity",
                    "direction",
                    "trigger",
                    "start",
                    "end",
                    "duration",
                    "outcome",
                    "counts",
                    "by",
                ],
            )
        )


@cli.command("incidents")
@click.option("--dossier", "dossier_id", help="Only this dossier.")
@click.option("--entity", help="Only this entity.")
@click.option("--open", "open_only", is_flag=True, help="Only open incidents.")
@click.option("--state", type=click.Choice(["open", "resolved"]), help="Only in this state.")
@json_option
@pass_ctx
def incidents_cmd(
    c: Ctx,
    dossier_id: str | None,
    entity: str | None,
    open_only: bool,
    state: str | None,
    as_json: bool,
) -> None:
    """Incidents: records or runs that failed and need attention."""
    from .reports import incidents

    c.known_dossiers(dossier_id)
    data = incidents(c.store, dossier_id, state="open" if open_only else state, entity=entity)
    if as_json:
        emit_json(data)
        return
    click.echo(
        table(
            [
                [
                    i["incident_id"],
                    i["dossier_id"],
                    i["entity"],
                    i["record_key"],
                    i["kind"],
                    i["state"],
                    i["occurrences"],
                    i["message"],
                ]
                for i in data
            ],
            ["id", "dossier", "entity", "record", "kind", "state", "seen", "message"],
        )
    )


@cli.command("records")
@click.option("--dossier", "dossier_id", required=True, help="The dossier.")
@click.option("--entity", help="Only this entity.")
@click.option(
    "--label",
    type=click.Choice(["synced", "pending", "pending_review", "error"]),
    default=None,
    help="Only records with this sync label.",
)
@click.option(
    "--limit", type=int, default=1000, show_default=True, help="At most this many records."
)
@json_option
@pass_ctx
def records_cmd(
    c: Ctx, dossier_id: str, entity: str | None, label: str | None, limit: int, as_json: bool
) -> None:
    """Linked records of a dossier with their sync label (synced, pending, error…)."""
    from .reports import records

    c.known_dossiers(dossier_id)
    data = records(c.store, dossier_id, entity=entity, label=label, limit=limit)
    if as_json:
        emit_json(data)
        return
    click.echo(
        table(
            [
                [r["entity"], r["sage_key"], r["ssm_id"], r["ext_id"], r["label"], r["error"]]
                for r in data
            ],
            ["entity", "sage key", "ssm id", "ext id", "label", "error"],
        )
    )


@cli.group("deletions")
def deletions() -> None:
    """Deletions the connector left to a person: confirm them, or undo them."""


@deletions.command("confirm")
@click.option("--dossier", "dossier_id", required=True, help="The dossier.")
@click.option("--entity", help="Only this entity.")
@click.option("--yes", is_flag=True, help="Do not ask before confirming.")
@json_option
@pass_ctx
def deletions_confirm(
    c: Ctx, dossier_id: str, entity: str | None, yes: bool, as_json: bool
) -> None:
    """Delete in Sales Management, at the next sync, the records gone from Sage that the
    connector kept there (a restored database, or too many at once)."""
    from .sync.links import awaiting_confirmation, confirm_deletions

    c.known_dossiers(dossier_id)
    with c.store.session() as s:
        links = awaiting_confirmation(s, dossier_id, entity)
        found = [
            {"entity": link.entity, "sage_key": link.sage_key, "ssm_id": link.ssm_id}
            for link in links
        ]
        per_entity: dict[str, int] = {}
        for link in links:
            per_entity[link.entity] = per_entity.get(link.entity, 0) + 1
        said = ", ".join(f"{n} {name}" for name, n in sorted(per_entity.items()))
        if links and not yes:
            if not as_json:
                click.echo(
                    table(
                        [[r["entity"], r["sage_key"], r["ssm_id"]] for r in found],
                        ["entity", "sage key", "ssm id"],
                    )
                )
            asked = (
                f"Delete in Sales Management {said} of dossier {dossier_id} that are no longer "
                "in Sage 50FR?"
            )
            if not click.confirm(asked, err=True):
                click.echo(f"{dossier_id}: nothing confirmed", err=True)
                sys.exit(1)
        confirm_deletions(links)
    if as_json:
        emit_json(found)
    elif not links:
        click.echo(f"{dossier_id}: no deletion waits for a confirmation")
    else:
        click.echo(
            f"{dossier_id}: {said} confirmed: the next sync deletes them in Sales Management"
        )


@deletions.command("recreate")
@click.option("--dossier", "dossier_id", required=True, help="The dossier.")
@click.option("--entity", required=True, help="The entity of the records.")
@click.argument("keys", nargs=-1, required=True, metavar="KEY...")
@json_option
@pass_ctx
def deletions_recreate(
    c: Ctx, dossier_id: str, entity: str, keys: tuple[str, ...], as_json: bool
) -> None:
    """Create again in Sales Management, at the next sync, records deleted there and kept
    in Sage 50FR (label pending_review)."""
    from .sync.links import kept_in_sage_links, recreate

    c.known_dossiers(dossier_id)
    with c.store.session() as s:
        links, others = kept_in_sage_links(s, dossier_id, entity, list(dict.fromkeys(keys)))
        if others:
            raise click.UsageError(
                f"dossier {dossier_id}, {entity}: {', '.join(others)}: not a record deleted in "
                "Sales Management and kept in Sage 50FR (see 'records --label pending_review'); "
                "nothing changed"
            )
        found = [{"entity": link.entity, "sage_key": link.sage_key} for link in links]
        recreate(links)
    if as_json:
        emit_json(found)
    else:
        click.echo(
            f"{dossier_id} {entity}: {len(found)} record(s) to create again in Sales "
            "Management at the next sync"
        )


@cli.group("ssm")
def ssm() -> None:
    """What Sales Management itself shows of the sync."""


@ssm.command("fields")
@click.option("--yes", is_flag=True, help="Create the missing fields without asking.")
@json_option
@pass_ctx
def ssm_fields(c: Ctx, yes: bool, as_json: bool) -> None:
    """Check (and create) the extra fields that show each record's dossier and sync state."""
    from .runner import ssm_client
    from .ssm_fields import HEADERS, lines, rows, set_up

    shown = False

    def agree(report: Any) -> bool:
        nonlocal shown
        if yes or as_json:
            return yes
        click.echo(table(rows(report), HEADERS))
        shown = True
        try:
            return click.confirm(
                f"Create the {len(report.missing)} missing field(s) in Sales Management?"
            )
        except click.Abort:  # no answer (no terminal): nothing is created
            click.echo()
            return False

    with ssm_client(c.config) as client:
        report = set_up(c.config, c.store, client, agree)
    if as_json:
        emit_json(report.as_dict())
    else:
        created = [r for r in rows(report) if r[-1] == "created"]
        if report.rows and (not shown or created):
            click.echo(table(created if shown else rows(report), HEADERS))
        for line in lines(report):
            click.echo(visible(line))
    if report.conflicts:
        sys.exit(1)


@cli.command("plugins")
@json_option
def plugins_cmd(as_json: bool) -> None:
    """Plugins found through entry points: distribution, version, hooks implemented."""
    from .registry import list_plugins

    found = list_plugins()
    if as_json:
        emit_json([p.as_dict() for p in found])
    else:
        click.echo(
            table(
                [
                    [
                        p.group,
                        p.name,
                        p.distribution,
                        p.version,
                        p.target,
                        ", ".join(p.hooks) or "-",
                        p.error or "ok",
                    ]
                    for p in found
                ],
                ["group", "name", "distribution", "version", "target", "hooks", "status"],
            )
        )
    if any(p.error for p in found):
        sys.exit(1)


@cli.command("run")
@click.option("--cycles", type=click.IntRange(1), help="Stop after this many scheduling cycles.")
@click.option("--no-web", is_flag=True, help="Do not serve the status page.")
@pass_ctx
def run_cmd(c: Ctx, cycles: int | None, no_web: bool) -> None:
    """The service: sync every active dossier on its schedule until SIGTERM/SIGINT, and
    serve the status page."""
    from .service import Service

    c.config  # noqa: B018 - validate the configuration before starting
    if not c.verbose:
        logging.getLogger("dossiersync").setLevel(logging.INFO)
    service = Service(
        c.config_path, web=not no_web, announce=lambda line: click.echo(line, err=True)
    )
    service.install_signal_handlers()
    service.run(max_cycles=cycles)


# -- distributed: Celery workers and their scheduler -------------------------------------


def _distributed() -> Any:
    """The distributed engine's module, or a clear error when its extra is missing."""
    try:
        from . import distributed
    except ImportError as exc:
        raise click.ClickException(
            f"this command needs the celery extra ({exc.name} is not installed): "
            "pip install 'dossiersync[celery]'"
        ) from None
    return distributed


configs_option = click.option(
    "--configs",
    "config_paths",
    multiple=True,
    required=True,
    type=click.Path(exists=True),
    help="A configuration file, or a folder of them (*.toml): one per implementation, "
    "named by its file (repeatable).",
)
broker_option = click.option(
    "--broker",
    envvar="DOSSIERSYNC_BROKER",
    default="redis://127.0.0.1:6379/0",
    show_default=True,
    help="Redis URL of the broker (else $DOSSIERSYNC_BROKER).",
)
visibility_option = click.option(
    "--visibility-timeout",
    type=click.IntRange(1),
    default=3600,
    show_default=True,
    help="Seconds before a task not acknowledged (its worker died) is delivered again; "
    "longer than a pass, the same for workers and scheduler.",
)


@cli.command("worker")
@configs_option
@broker_option
@visibility_option
@click.option(
    "--concurrency",
    type=click.IntRange(1),
    default=4,
    show_default=True,
    help="Dossiers synced at once by this worker (threads).",
)
@pass_ctx
def worker_cmd(
    c: Ctx, config_paths: tuple[str, ...], broker: str, visibility_timeout: int, concurrency: int
) -> None:
    """A Celery worker: syncs the dossiers the scheduler sends, one task per dossier of an
    implementation, each under its lease in the implementation's state store."""
    distributed = _distributed()
    configs = distributed.implementations(config_paths)
    if not c.verbose:
        logging.getLogger("dossiersync").setLevel(logging.INFO)
    distributed.run_worker(
        configs,
        broker,
        concurrency=concurrency,
        visibility_timeout=visibility_timeout,
        loglevel="DEBUG" if c.verbose > 1 else "INFO",
    )


@cli.command("scheduler")
@configs_option
@broker_option
@visibility_option
@click.option("--cycles", type=click.IntRange(1), help="Stop after this many scheduling cycles.")
@pass_ctx
def scheduler_cmd(
    c: Ctx,
    config_paths: tuple[str, ...],
    broker: str,
    visibility_timeout: int,
    cycles: int | None,
) -> None:
    """Send the due work of every implementation to the workers: the complete passes on
    their schedule and the passes the change probes call for, as `run` does, until
    SIGTERM/SIGINT."""
    import threading

    distributed = _distributed()
    configs = distributed.implementations(config_paths)
    if not c.verbose:
        logging.getLogger("dossiersync").setLevel(logging.INFO)
    stop = threading.Event()

    def stopping(signum: int, _frame: object) -> None:
        logging.getLogger("dossiersync").warning("signal %d: scheduler stopping", signum)
        stop.set()

    for signum in STOPPED_BY:
        signal.signal(signum, stopping)
    distributed.run_scheduler(
        configs, broker, visibility_timeout=visibility_timeout, max_cycles=cycles, stop=stop
    )


# -- tools -------------------------------------------------------------------------------


@cli.command("demo")
@click.option(
    "--dir",
    "directory",
    default="demo",
    show_default=True,
    type=click.Path(),
    help="Folder of the demo (emptied first).",
)
@click.option(
    "--clients",
    type=click.IntRange(1),
    default=200,
    show_default=True,
    help="Client accounts per dossier.",
)
@click.option(
    "--serve", is_flag=True, help="Then keep the service and its status page running (Ctrl-C)."
)
def demo(directory: str, clients: int, serve: bool) -> None:
    """Three reference dossiers, the simulator, select all three, sync, show status."""
    from .demo import run_demo

    if serve:
        logging.getLogger("dossiersync").setLevel(logging.INFO)
    sys.exit(run_demo(directory, clients, serve))


@cli.command("serve")
@click.option("--bind", help="Address to listen on [default: web.bind, 127.0.0.1].")
@click.option("--port", type=click.IntRange(0, 65535), help="Port [default: web.port, 8780].")
@pass_ctx
def serve(c: Ctx, bind: str | None, port: int | None) -> None:
    """Serve the status page and its JSON API (needs the access token) until interrupted."""
    from .web import serve as serve_web

    # the store is opened once the address is taken: a bad one creates no state file
    say = lambda line: click.echo(line, err=True)  # noqa: E731
    serve_web(c.config, lambda: c.store, bind=bind, port=port, echo=say)


STOPPED_BY = {signal.SIGINT: "interrupted (Ctrl-C)", signal.SIGTERM: "interrupted by SIGTERM"}


def _stop(signum: int, frame: object) -> None:
    """Ctrl-C or SIGTERM: the running pass stops at its next safe point (between two
    batches) and is journaled as interrupted; a second one stops at once."""
    from .sync.stop import STOP

    if STOP.is_set():
        raise KeyboardInterrupt
    STOP.request(STOPPED_BY.get(signal.Signals(signum), "interrupted"))


def _plugin_commands() -> None:
    """Commands contributed by plugins (``dossiersync_register_commands``): the Sage
    plugin's ``demo-dossier``, the Sales Management plugin's ``simulator``, a third
    party's own. A plugin that cannot load is said when a command needs it."""
    from .registry import plugin_manager

    try:
        plugin_manager().hook.dossiersync_register_commands(cli=cli)
    except DossierSyncError as exc:
        click.echo(f"warning: plugin commands not available: {exc}", err=True)


_plugin_commands()


def main() -> None:
    # the service (`run`) and the web server replace these with their graceful stops
    for signum in STOPPED_BY:
        signal.signal(signum, _stop)
    try:
        cli(standalone_mode=False)
    except click.exceptions.Abort:
        from .sync.stop import STOP

        said = STOP.reason if STOP.is_set() else STOPPED_BY[signal.SIGINT]
        click.echo(said, err=True)
        sys.exit(128 + signal.SIGTERM if "SIGTERM" in said else 130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except DossierSyncError as exc:
        click.echo(f"error: {visible(str(exc), lines=True)}", err=True)
        sys.exit(2)
    except SystemExit:
        raise


if __name__ == "__main__":
    main()
