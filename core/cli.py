"""The ``dossiersync`` command."""

from __future__ import annotations

import gettext
import inspect
import json
import logging
import signal
import sys
import threading
from datetime import datetime
from typing import TYPE_CHECKING, Any

import click

from . import __version__, lang
from .config import Config, load
from .display import visible
from .errors import DossierSyncError
from .lang import N_, NN_, NP_, _, error_text, ngettext, pgettext, spoken, term
from .sync.stop import STOPPED_BY
from .vocabulary import Direction, DossierState

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
            listed = ", ".join(sorted(known)) or _("none")
            raise click.UsageError(
                _(
                    "unknown dossier {dossier}: it is neither in the configuration nor in "
                    "the state store (known: {known}; see 'dossiers list')"
                ).format(dossier=", ".join(map(repr, unknown)), known=listed)
            )


pass_ctx = click.make_pass_decorator(Ctx)


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def table(rows: list[list[Any]], headers: list[str], counts: tuple[str, ...] = ()) -> str:
    """Rows under upper-case headers in the command line's language, columns aligned; a
    column named in ``counts`` is left out when it is empty or 0 on every row (a table
    full of zeros says nothing)."""
    keep = [
        i
        for i, h in enumerate(headers)
        if h not in counts or any(row[i] not in (None, "", 0) for row in rows)
    ]
    headers = [pgettext("column", headers[i]) for i in keep]
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


def counted(counts: dict[str, int], between: str = " ", joined: str = ", ") -> str:
    """A run's counts that are not 0, by their names in the command line's language:
    ``read 200, created 12``."""
    return joined.join(f"{term('count', k)}{between}{v}" for k, v in counts.items() if v)


# -- the command line's language -------------------------------------------------------

#: the words the tables show that no call spells out whole: the column names (``table``
#: translates its headers) and the values of a state, an outcome, a label, a kind…
WORDS = (
    *(NP_("column", "id"), NP_("column", "name"), NP_("column", "state")),
    *(NP_("column", "source"), NP_("column", "entities"), NP_("column", "linked")),
    *(NP_("column", "in ssm"), NP_("column", "synced before"), NP_("column", "incidents")),
    *(NP_("column", "dossier"), NP_("column", "entity"), NP_("column", "sage->ssm")),
    *(NP_("column", "ssm->sage"), NP_("column", "synced"), NP_("column", "pending")),
    *(NP_("column", "review"), NP_("column", "error"), NP_("column", "deleted")),
    *(NP_("column", "at"), NP_("column", "record"), NP_("column", "action")),
    *(NP_("column", "detail"), NP_("column", "run"), NP_("column", "direction")),
    *(NP_("column", "trigger"), NP_("column", "start"), NP_("column", "end")),
    *(NP_("column", "duration"), NP_("column", "outcome"), NP_("column", "counts")),
    *(NP_("column", "by"), NP_("column", "kind"), NP_("column", "seen")),
    *(NP_("column", "message"), NP_("column", "sage key"), NP_("column", "ssm id")),
    *(NP_("column", "ext id"), NP_("column", "label"), NP_("column", "group")),
    *(NP_("column", "distribution"), NP_("column", "version"), NP_("column", "target")),
    NP_("column", "hooks"),
    *(NP_("state", "new"), NP_("state", "active"), NP_("state", "inactive")),
    *(NP_("state", "open"), NP_("state", "resolved")),
    *(NP_("outcome", "succeeded"), NP_("outcome", "partial"), NP_("outcome", "failed")),
    *(NP_("outcome", "running"), NP_("outcome", "interrupted")),
    *(NP_("label", "synced"), NP_("label", "pending"), NP_("label", "pending_review")),
    *(NP_("label", "error"), NP_("label", "deleted")),
    *(NP_("count", "read"), NP_("count", "created"), NP_("count", "updated")),
    *(NP_("count", "deleted"), NP_("count", "unchanged"), NP_("count", "pending")),
    *(NP_("count", "refused"), NP_("count", "failed")),
    *(NP_("kind", "invalid_record"), NP_("kind", "refused_by_ssm")),
    *(NP_("kind", "sage_write_failed"), NP_("kind", "run_failed")),
    *(NP_("kind", "mass_deletion_refused"), NP_("kind", "restored_database")),
    *(NP_("kind", "moved_between_dossiers"), NP_("kind", "unknown_reference")),
    *(NP_("kind", "account_changed"), NP_("kind", "deleted_in_ssm")),
    *(NP_("trigger", "manual"), NP_("trigger", "schedule"), NP_("trigger", "change")),
    *(NP_("trigger", "activation"), NP_("trigger", "reactivation"), NP_("trigger", "realign")),
    *(NP_("action", "created"), NP_("action", "updated"), NP_("action", "deleted")),
    *(NP_("action", "failed"), NP_("action", "pending"), NP_("action", "kept")),
    *(NP_("action", "conflict"), NP_("action", "unchanged"), NP_("action", "dropped")),
)

#: click's own words a person meets (usage, headings, its errors), in the catalogue too:
#: click asks gettext for them, which :func:`speak_for_click` points at the catalogue
CLICK_WORDS = (
    *(N_("Usage:"), N_("Options"), N_("Commands"), N_("Positional arguments")),
    *(N_("Show this message and exit."), N_("Show the version and exit.")),
    *(N_("%(prog)s, version %(version)s"), N_("Error: {message}"), N_("Aborted!")),
    *(N_("Try '{command} {option}' for help."), N_("Missing command.")),
    *(N_("Missing argument"), N_("Missing option"), N_("Missing parameter")),
    *(N_("No such option {name!r}."), N_("No such command {name!r}.")),
    *(N_("Invalid value for {param_hint}: {message}"), N_("Invalid value: {message}")),
    *(N_("default: {default}"), N_("required"), N_("env var: {var}")),
    *(N_("{value} is not in the range {range}."), N_("{value!r} is not a valid {number_type}.")),
    *(N_("{name} {filename!r} does not exist."), N_("file"), N_("path"), N_("directory")),
    N_("Error: invalid input"),
    NN_("{value!r} is not {choice}.", "{value!r} is not one of {choices}."),
    NN_("Did you mean {possibility}?", "(Did you mean one of: {possibilities}?)"),
    NN_("Got unexpected extra argument ({args})", "Got unexpected extra arguments ({args})"),
    NN_("Option {name!r} requires an argument.", "Option {name!r} requires {nargs} arguments."),
    NN_(
        "{value!r} does not match the format {format}.",
        "{value!r} does not match the formats {formats}.",
    ),
)


def speak_for_click() -> None:
    """Click's own words from the command line's catalogue: click's modules call the
    gettext module's functions, bound to their names when they were imported, whose
    language only the locale variables choose (never ``--lang``)."""
    for name in ("core", "decorators", "exceptions", "formatting", "parser", "types", "termui"):
        module = sys.modules.get(f"click.{name}")
        if module is None:
            continue
        if getattr(module, "_", None) is gettext.gettext:
            module._ = lang._  # type: ignore[attr-defined]
        if getattr(module, "ngettext", None) is gettext.ngettext:
            module.ngettext = lang.ngettext  # type: ignore[attr-defined]


speak_for_click()


def translate_help(command: click.Command) -> None:
    """The help of ``command``, its options and its subcommands in the command line's
    language: click keeps the English of the docstrings and ``help=`` (the message ids,
    kept aside the first time) and shows whatever text it holds when asked."""
    for item in (command, *command.params):
        if not isinstance(item, click.Command | click.Option | click.Argument):
            continue
        english = vars(item).setdefault("_english_help", item.help)
        if english:
            item.help = _(inspect.cleandoc(english))
    # click makes a command's --help option once, in the language of that moment
    made = getattr(command, "_help_option", None)
    if isinstance(made, click.Option):
        made.help = _("Show this message and exit.")
    if isinstance(command, click.Group):
        for subcommand in command.commands.values():
            translate_help(subcommand)


def _speak(ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    """``--lang``, read before ``--help`` (both are eager): the help is said in it."""
    if value:
        lang.choose(value)
        translate_help(ctx.find_root().command)
    return value


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    help="Configuration file (default: $DOSSIERSYNC_CONFIG, else ./dossiersync.toml).",
)
@click.option(
    "--lang",
    "language",
    type=click.Choice(lang.LANGUAGES),
    is_eager=True,
    callback=_speak,
    help="The language of what the command says (default: the configuration's [cli] "
    "language, else the locale: LANGUAGE, LC_ALL, LC_MESSAGES, LANG).",
)
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
@click.version_option(__version__, prog_name="dossiersync")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, language: str | None, verbose: int) -> None:
    """Keep several Sage 50FR dossiers in sync with one Sage Sales Management implementation."""
    # the subcommand's help, its output and its errors: in the language chosen here
    lang.settle(language, config_path)
    translate_help(ctx.command)
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
            [
                v.id,
                v.name,
                term("state", v.state),
                ",".join(v.entities),
                v.linked_records,
                v.open_incidents,
            ]
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
        click.echo(
            _("warning: Sales Management not asked for earlier dossiers: {error}").format(
                error=error_text(exc)
            ),
            err=True,
        )
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
                        term("state", v.state),
                        "-"
                        if v.reachable is None
                        else _("ok")
                        if v.reachable
                        else _("unreachable"),
                        ",".join(v.entities),
                        v.linked_records,
                        "?" if v.records_in_ssm is None else v.records_in_ssm,
                        "?"
                        if v.previously_synced is None
                        else _("yes")
                        if v.previously_synced
                        else _("no"),
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
        click.echo(
            _("UNREACHABLE {dossier}: {error}").format(
                dossier=v.id, error=visible(spoken(v.source_error))
            ),
            err=True,
        )
    if unreachable:
        sys.exit(1)


@dossiers.command("list")
@json_option
@pass_ctx
def dossiers_list(c: Ctx, as_json: bool) -> None:
    """Dossiers attached to the implementation (active and inactive)."""
    from .dossiers import views

    items = [v for v in views(c.config, c.store) if v.state != DossierState.NEW]
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
            click.echo(
                _("{dossier}: {state} (full sync on next run)").format(
                    dossier=v.id, state=term("state", v.state)
                )
            )


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
            click.echo(
                _("{dossier}: {state} (records stay in Sales Management)").format(
                    dossier=v.id, state=term("state", v.state)
                )
            )


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
            click.echo(_("(dry run: nothing was written)"))
        if any(p.error for p in previews):
            sys.exit(1)
        return
    live = not as_json and sys.stdout.isatty()
    ticks = [0]
    # dossiers are synced several at a time: one line written at a time
    writing = threading.Lock()

    def describe(run: Any) -> tuple[str, str]:
        return f"{run.dossier_id:<16} {run.entity:<16} {run.direction:<12}", counted(run.counts)

    def moving(run: Any) -> None:
        # a live line per process on a terminal; quiet when piped or with --json
        from .journal import utcnow
        from .progress import progress_line

        with writing:
            ticks[0] += 1
            click.echo(f"\r{progress_line(run, utcnow(), ticks[0])}\x1b[K", nl=False)

    def progress(run: Any) -> None:
        if not as_json:
            head, counts = describe(run)
            prefix = "\r" if live else ""
            suffix = "\x1b[K" if live else ""
            with writing:
                click.echo(f"{prefix}{head} {term('outcome', run.outcome):<10} {counts}{suffix}")

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
        click.echo(_("FAILED {reason}").format(reason=visible(spoken(line), lines=True)), err=True)
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
        state = term("state", d["state"])
        if not d["entities"]:
            rows.append([d["id"], d["name"], state, "", "-", "-", 0, 0, 0, 0, 0, 0])
        for e in d["entities"]:
            last = {r["direction"]: r for r in e["last_runs"]}
            out = last.get(Direction.SAGE_TO_SSM)
            inn = last.get(Direction.SSM_TO_SAGE)
            rec = e["records"]
            rows.append(
                [
                    d["id"],
                    d["name"],
                    state,
                    e["entity"],
                    f"{term('outcome', out['outcome'])} {out['finished_at'] or ''}".strip()
                    if out
                    else "-",
                    term("outcome", inn["outcome"]) if inn else "-",
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
            click.echo(
                _("{dossier} is being synced by {holder}").format(
                    dossier=d["id"], holder=d["synced_by"]
                )
            )
    for d in data:
        said = [
            (
                _(
                    "{side}: last change {at}, reached the other side in {seconds} s "
                    "(median of {samples} over the last hour)"
                )
                if w["latency_p50_seconds"] is not None
                else _("{side}: last change {at}")
            ).format(
                side=side,
                at=w["last_change_at"],
                seconds=w["latency_p50_seconds"],
                samples=w["latency_samples"],
            )
            for side, w in d["changes"].items()
            if w["last_change_at"]
        ]
        if said:
            click.echo(
                _("{dossier} changes seen by the service — {changes}").format(
                    dossier=d["id"], changes=_("; ").join(said)
                )
            )


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
                [
                    [
                        e["at"],
                        e["entity"],
                        e["record_key"],
                        term("action", e["action"]),
                        e["detail"],
                    ]
                    for e in data
                ],
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
                        term("trigger", r["trigger"]),
                        r["started_at"],
                        r["finished_at"],
                        duration(r["duration_seconds"]),
                        term("outcome", r["outcome"]),
                        counted(r["counts"], between="=", joined=" "),
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
    from .messages import incident_text
    from .reports import incidents

    c.known_dossiers(dossier_id)
    data = incidents(c.store, dossier_id, state="open" if open_only else state, entity=entity)
    if as_json:
        emit_json(data)
        return
    language = lang.language()
    click.echo(
        table(
            [
                [
                    i["incident_id"],
                    i["dossier_id"],
                    i["entity"],
                    i["record_key"],
                    term("kind", i["kind"]),
                    term("state", i["state"]),
                    i["occurrences"],
                    # the English is the stored message; another language, from its notice
                    i["message"] if language == "en" else incident_text(i, language),
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
                [
                    r["entity"],
                    r["sage_key"],
                    r["ssm_id"],
                    r["ext_id"],
                    term("label", r["label"]),
                    error,
                ]
                for r, error in zip(data, record_errors(c, dossier_id, data), strict=True)
            ],
            ["entity", "sage key", "ssm id", "ext id", "label", "error"],
        )
    )


def record_errors(c: Ctx, dossier_id: str, data: list[dict[str, Any]]) -> list[str | None]:
    """Each record's error in the command line's language: kept in English, it is shown
    from the notice of the record's open incident (as ``incidents`` shows it), or, for a
    reason the connector words itself (kept for review, pending), from the catalogue."""
    language = lang.language()
    if language == "en" or not any(r["error"] for r in data):
        return [r["error"] for r in data]
    from .messages import incident_text
    from .reports import incidents

    # an incident's record key is the record's Sage key; the latest seen comes last
    found: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for i in sorted(incidents(c.store, dossier_id, state="open"), key=lambda i: i["last_seen"]):
        found.setdefault((i["entity"], i["record_key"]), []).append(i)

    def shown(r: dict[str, Any]) -> str | None:
        text: str | None = r["error"]
        if not text:
            return text
        opened = found.get((r["entity"], r["sage_key"]), [])
        same = [i for i in opened if i["message"] == text]
        if same or (opened and r["label"] == "error"):
            return incident_text((same or opened)[-1], language)
        return _(text)  # one of the connector's reasons, or the English as it is

    return [shown(r) for r in data]


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
        dossier = dossier_id
        if links and not yes:
            if not as_json:
                click.echo(
                    table(
                        [[r["entity"], r["sage_key"], r["ssm_id"]] for r in found],
                        ["entity", "sage key", "ssm id"],
                    )
                )
            asked = _(
                "Delete in Sales Management {records} of dossier {dossier} that are no longer "
                "in Sage 50FR?"
            ).format(records=said, dossier=dossier)
            if not click.confirm(asked, err=True):
                click.echo(_("{dossier}: nothing confirmed").format(dossier=dossier), err=True)
                sys.exit(1)
        confirm_deletions(links)
    if as_json:
        emit_json(found)
    elif not links:
        click.echo(_("{dossier}: no deletion waits for a confirmation").format(dossier=dossier))
    else:
        click.echo(
            _(
                "{dossier}: {records} confirmed: the next sync deletes them in Sales Management"
            ).format(dossier=dossier, records=said)
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
                _(
                    "dossier {dossier}, {entity}: {keys}: not a record deleted in Sales "
                    "Management and kept in Sage 50FR (see 'records --label pending_review'); "
                    "nothing changed"
                ).format(dossier=dossier_id, entity=entity, keys=", ".join(others))
            )
        found = [{"entity": link.entity, "sage_key": link.sage_key} for link in links]
        recreate(links)
    if as_json:
        emit_json(found)
    else:
        click.echo(
            ngettext(
                "{dossier} {entity}: {count} record to create again in Sales Management at "
                "the next sync",
                "{dossier} {entity}: {count} records to create again in Sales Management at "
                "the next sync",
                len(found),
            ).format(dossier=dossier_id, entity=entity, count=len(found))
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
            count = len(report.missing)
            return click.confirm(
                ngettext(
                    "Create the {count} missing field in Sales Management?",
                    "Create the {count} missing fields in Sales Management?",
                    count,
                ).format(count=count)
            )
        except click.Abort:  # no answer (no terminal): nothing is created
            click.echo()
            return False

    with ssm_client(c.config) as client:
        report = set_up(c.config, c.store, client, agree)
    if as_json:
        emit_json(report.as_dict())
    else:
        created = [
            row for row, r in zip(rows(report), report.rows, strict=True) if r.state == "created"
        ]
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
                        spoken(p.error) or _("ok"),
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
        c.config_path, web=not no_web, announce=lambda line: click.echo(spoken(line), err=True)
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
            _(
                "this command needs the celery extra ({module} is not installed): "
                "pip install 'dossiersync[celery]'"
            ).format(module=exc.name)
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


@cli.command("serve")
@click.option("--bind", help="Address to listen on [default: web.bind, 127.0.0.1].")
@click.option("--port", type=click.IntRange(0, 65535), help="Port [default: web.port, 8780].")
@pass_ctx
def serve(c: Ctx, bind: str | None, port: int | None) -> None:
    """Serve the status page and its JSON API (needs the access token) until interrupted."""
    from .web import serve as serve_web

    # the store is opened once the address is taken: a bad one creates no state file
    say = lambda line: click.echo(spoken(line), err=True)  # noqa: E731
    serve_web(c.config, lambda: c.store, bind=bind, port=port, echo=say)


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
        click.echo(
            _("warning: plugin commands not available: {error}").format(error=error_text(exc)),
            err=True,
        )


_plugin_commands()


def main() -> None:
    # the language before click reads the command line: its usage errors and --help too
    arguments = sys.argv[1:]
    lang.settle(lang.from_arguments(arguments), lang.config_from_arguments(arguments))
    translate_help(cli)
    # the service (`run`) and the web server replace these with their graceful stops
    for signum in STOPPED_BY:
        signal.signal(signum, _stop)
    try:
        cli(standalone_mode=False)
    except click.exceptions.Abort:
        from .sync.stop import STOP

        said = STOP.reason if STOP.is_set() else STOPPED_BY[signal.SIGINT]
        click.echo(_(said), err=True)
        sys.exit(128 + signal.SIGTERM if "SIGTERM" in said else 130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except DossierSyncError as exc:
        click.echo(
            _("error: {message}").format(message=visible(error_text(exc), lines=True)), err=True
        )
        sys.exit(2)
    except SystemExit:
        raise


if __name__ == "__main__":
    main()
