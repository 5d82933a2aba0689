"""``dossiersync demo``: three reference dossiers synced into the simulator.

A command of the Sales Management plugin (``commands.py``): it runs this plugin's
simulator, has the Sage plugin write the dossiers (``dossiersync demo-dossier``) and read
them back (its endpoint, loaded by name), and drives the connector through its own
commands, as a user would type them."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import click

from dossiersync.plugin import gettext as _
from dossiersync.plugin import load_endpoint, ngettext

DEMO_DOSSIERS = (
    # id, display name, seed, SSM branch for accounts created in SSM
    ("nord", "Boulangeries du Nord", 1, 2),
    ("sud", "Provence Distribution", 2, 3),
    ("ouest", "Atlantique Matériaux", 3, 4),
)
#: the SQLite ODBC driver as it is registered: ``SQLite3`` by Debian's libsqliteodbc, the
#: longer name by the Windows installer of the same driver
DEMO_DRIVER = "SQLite3 ODBC Driver" if sys.platform == "win32" else "SQLite3"
PUBLIC_ENV = "DOSSIERSYNC_DEMO_PUBLIC_KEY"
PRIVATE_ENV = "DOSSIERSYNC_DEMO_PRIVATE_KEY"


def write_config(directory: Path, api_url: str) -> Path:
    lines = [
        "# written by 'dossiersync demo'",
        "[implementation]",
        'name = "Groupe Démo"',
        f'api_url = "{api_url}"',
        f'public_key = "env:{PUBLIC_ENV}"',
        f'private_key = "env:{PRIVATE_ENV}"',
        "max_requests_per_second = 0  # the simulator is local; keep the default for SSM",
        "",
        "[state]",
        'url = "sqlite:///dossiersync.db"',
        "",
        "[service]",
        "interval_seconds = 60",
        "",
    ]
    for dossier_id, name, _seed, branch in DEMO_DOSSIERS:
        db = (directory / f"{dossier_id}.db").resolve()
        # a TOML string as JSON writes it: a Windows path's backslashes escaped
        connection = json.dumps(f"DRIVER={{{DEMO_DRIVER}}};Database={db}", ensure_ascii=False)
        lines += [
            f"[dossiers.{dossier_id}]",
            f'name = "{name}"',
            f"connection = {connection}",
            'entities = ["clients", "contacts", "products", "orders"]',
            f"branch_id = {branch}",
            "",
        ]
    path = directory / "dossiersync.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def run_demo(cli: click.Group, directory: str, clients: int, serve: bool = False) -> int:
    """The demo, its steps run as ``cli``'s commands; the exit status."""
    from .simulator.process import running_simulator

    root = Path(directory)
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    click.echo(_("== Writing three reference Sage 50FR dossiers in {folder}/").format(folder=root))
    for dossier_id, name, seed, _branch in DEMO_DOSSIERS:
        click.echo(f"   {dossier_id:<6} {name}")
        path = str(root / f"{dossier_id}.db")
        written = ["demo-dossier", path, "--clients", str(clients), "--seed", str(seed)]
        cli.main(written, standalone_mode=False)
    public, private = "demo-public", "demo-private"
    os.environ[PUBLIC_ENV] = public
    os.environ[PRIVATE_ENV] = private
    with running_simulator(
        str(root / "simulator.db"), public_key=public, private_key=private
    ) as sim:
        click.echo(_("== Sales Management simulator on {url}").format(url=sim.url))
        config = write_config(root, sim.url)
        base = ["--config", str(config)]
        code = 0

        def step(title: str, *args: str) -> None:
            nonlocal code
            click.echo(
                "\n"
                + _("== {step}: {command}").format(
                    step=title, command=f"dossiersync {' '.join(args)}"
                )
            )
            try:
                cli.main([*base, *args], standalone_mode=False)
            except SystemExit as exc:
                code = code or int(exc.code or 0)

        step(_("Dossiers proposed"), "dossiers", "discover")
        step(_("Selecting all three"), "dossiers", "activate", *[d[0] for d in DEMO_DOSSIERS])
        step(_("Syncing"), "sync")
        step(_("Status"), "status")
        orders = enter_orders(sim.url, public, private, "sud")
        entered = ngettext(
            "== {count} order entered in Sales Management for clients of '{dossier}'",
            "== {count} orders entered in Sales Management for clients of '{dossier}'",
            len(orders),
        )
        click.echo("\n" + entered.format(count=len(orders), dossier="sud"))
        step(_("Syncing again"), "sync")
        show_orders(root / "sud.db", sim.url, public, private, orders)
        stats = sim.stats()  # none refused is expected: only what the API documents is sent
        click.echo(
            "\n"
            + _("== Sales Management simulator: {requests} requests, {refusals} refused").format(
                requests=stats["requests"], refusals=stats["refusals"]
            )
        )
        for reason, count in stats["reasons"].items():
            click.echo(f"   {count} x {reason}")
        if stats["refusals"]:
            code = code or 1
        if serve:
            click.echo(
                "\n" + _("== The service: every dossier on its schedule, and the status page")
            )
            click.echo(_("(Ctrl-C stops it)"))
            step(_("The service"), "run")
            return code
        click.echo(
            "\n"
            + _(
                "The demo's files are in {folder}/. To look around, start the simulator again "
                "with\n"
                "  {simulator}\n"
                "and, with {public} and {private} set,\n"
                "  {status}\n"
                "or run the demo with --serve to keep the service and its status page running."
            ).format(
                folder=root,
                simulator=f"dossiersync simulator --port {sim.port} --db {root}/simulator.db",
                public=f"{PUBLIC_ENV}={public}",
                private=f"{PRIVATE_ENV}=…",
                status=f"dossiersync --config {config} status",
            )
        )
    return code


def enter_orders(api_url: str, public: str, private: str, dossier_id: str) -> list[int]:
    """A few orders typed in Sales Management by a sales rep, for clients of a dossier."""
    from .client import SalesManagementClient

    prefix = f"{dossier_id}:"
    with SalesManagementClient(api_url, public, private, max_requests_per_second=0) as client:
        accounts = client.list_changed("accounts", ext_prefix=prefix, equals={"typeId": 1})
        clients = list(accounts)[:3]
        products = [
            p for p in client.list_changed("products", ext_prefix=prefix) if not p["notAvailable"]
        ][:6]
        orders = []
        for n, account in enumerate(clients):
            order_id = client.create(
                "salesorders",
                {
                    "branchId": 1,
                    "salesRepId": 1,
                    "reference": f"DEMO-{n + 1:03d}",
                    "accountId": account["id"],
                    "comment": "Saisie par le commercial",
                },
            )
            for k, product in enumerate(products[n : n + 2]):
                client.create(
                    "salesOrdersLines",
                    {
                        "salesOrderId": order_id,
                        "productId": product["id"],
                        "quantity": k + 2,
                        "price": product.get("price") or 0,
                    },
                )
            orders.append(order_id)
    return orders


def show_orders(dossier: Path, api_url: str, public: str, private: str, ids: list[int]) -> None:
    """The orders as Sage 50FR and Sales Management now hold them."""
    from .client import SalesManagementClient

    with SalesManagementClient(api_url, public, private, max_requests_per_second=0) as client:
        ssm = [client.get("salesorders", i) for i in ids]
    # the Sage plugin's endpoint, found by name as the connector finds it
    endpoint = load_endpoint("sage50fr_odbc")
    with endpoint(f"DRIVER={{{DEMO_DRIVER}}};Database={dossier.resolve()}", None) as sage:
        rows = []
        for order in ssm:
            # the extId of an order taken into Sage ends with its piece (dossier:0:1:piece)
            piece = str(order.get("extId") or "").rsplit(":", 1)[-1] if order.get("extId") else ""
            header = sage.get("F_DOCENTETE", (0, 1, piece)) if piece else None
            lines = (
                list(sage.read("F_DOCLIGNE", where={"DO_Type": 1, "DO_Piece": piece}))
                if piece
                else []
            )
            rows.append(
                [
                    order["reference"],
                    order.get("extId"),
                    piece or "-",
                    header["DO_Tiers"] if header else "-",
                    len(lines),
                    header["DO_TotalHT"] if header else "-",
                    order.get("total"),
                    "-" if order.get("readOnly") is None else _yes_no(order["readOnly"]),
                ]
            )
    click.echo(
        "\n"
        + _(
            "== The orders, now in Sage 50FR (dossier '{dossier}') and back in Sales Management"
        ).format(dossier="sud")
    )
    click.echo(
        _table(
            rows,
            [
                _("ssm ref"),
                _("ext id"),
                _("sage piece"),
                _("client"),
                _("lines"),
                _("total HT (sage)"),
                _("total (ssm)"),
                _("read-only"),
            ],
        )
    )


def _yes_no(value: Any) -> str:
    return _("yes") if value else _("no")


def _table(rows: list[list[Any]], headers: list[str]) -> str:
    """Rows under upper-case headers, columns aligned."""
    cells = [[("" if cell is None else str(cell)) for cell in row] for row in [headers, *rows]]
    cells[0] = [h.upper() for h in cells[0]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    )
