"""``dossiersync demo``: three reference dossiers synced into the simulator."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import click

DEMO_DOSSIERS = (
    # id, display name, seed, SSM branch for accounts created in SSM
    ("nord", "Boulangeries du Nord", 1, 2),
    ("sud", "Provence Distribution", 2, 3),
    ("ouest", "Atlantique Matériaux", 3, 4),
)
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
        "",
        "[state]",
        'url = "sqlite:///dossiersync.db"',
        "",
    ]
    for dossier_id, name, _seed, branch in DEMO_DOSSIERS:
        db = (directory / f"{dossier_id}.db").resolve()
        lines += [
            f"[dossiers.{dossier_id}]",
            f'name = "{name}"',
            f'connection = "DRIVER={{SQLite3}};Database={db}"',
            'entities = ["clients"]',
            f"branch_id = {branch}",
            "",
        ]
    path = directory / "dossiersync.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def run_demo(directory: str, clients: int) -> int:
    from dossiersync.plugins.sage50fr_odbc.demo_dossier import write_demo_dossier
    from dossiersync.plugins.sales_management.simulator.process import running_simulator

    from .cli import cli

    root = Path(directory)
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    click.echo(f"== Writing three reference Sage 50FR dossiers in {root}/")
    for dossier_id, name, seed, _branch in DEMO_DOSSIERS:
        summary = write_demo_dossier(root / f"{dossier_id}.db", clients=clients, seed=seed)
        click.echo(f"   {dossier_id:<6} {name:<24} {summary}")
    public, private = "demo-public", "demo-private"
    os.environ[PUBLIC_ENV] = public
    os.environ[PRIVATE_ENV] = private
    with running_simulator(
        str(root / "simulator.db"), public_key=public, private_key=private
    ) as sim:
        click.echo(f"== Sales Management simulator on {sim.url}")
        config = write_config(root, sim.url)
        base = ["--config", str(config)]
        steps = [
            ("Dossiers proposed", ["dossiers", "discover"]),
            ("Selecting all three", ["dossiers", "activate", *[d[0] for d in DEMO_DOSSIERS]]),
            ("Syncing", ["sync"]),
            ("Status", ["status"]),
        ]
        code = 0
        for title, args in steps:
            click.echo(f"\n== {title}: dossiersync {' '.join(args)}")
            try:
                cli.main([*base, *args], standalone_mode=False)
            except SystemExit as exc:
                code = code or int(exc.code or 0)
        click.echo(
            f"\nThe demo's files are in {root}/. To look around, start the simulator again with\n"
            f"  dossiersync simulator --port {sim.port} --db {root}/simulator.db\n"
            f"and, with {PUBLIC_ENV}={public} and {PRIVATE_ENV}=… set,\n"
            f"  dossiersync --config {config} status"
        )
    return code
