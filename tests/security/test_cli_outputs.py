"""What the CLI writes holds data from Sage and Sales Management, typed by whoever filled
it in: a CSV cell must not run as a spreadsheet formula, a text printed on a terminal
must not act on it (docs/security.md)."""

from __future__ import annotations

import csv
import io
from datetime import datetime

from dossiersync.state.models import Incident
from dossiersync.state.store import StateStore

from support.workspace import Workspace

FORMULA = "=1+cmd|'/C calc'!A0"
#: sets the terminal's title (OSC 0), rings the bell, then moves the cursor home
HOSTILE = "refused\x1b]0;pwned\x07 \x1b[H\x1b[2Jgone\u202eexe.txt"


def test_the_journal_csv_of_a_run_neutralises_formulas_in_sage_keys(workspace: Workspace) -> None:
    workspace.add_dossier("nord", clients=3, seed=1)
    workspace.sage_execute("nord", "UPDATE F_COMPTET SET CT_Num = ? WHERE rowid = 1", (FORMULA,))
    workspace.activate_all()
    workspace.sync(expect=None)
    runs = workspace.cli_json("journal", "--dossier", "nord")
    run_id = next(r["run_id"] for r in runs if r["direction"] == "sage_to_ssm")
    text = workspace.cli(
        "journal", "--dossier", "nord", "--run", str(run_id), "--format", "csv"
    ).stdout
    cells = [cell for row in csv.reader(io.StringIO(text)) for cell in row]
    assert f"'{FORMULA}" in cells, "the Sage key is missing from the run's events"
    assert not any(c.startswith(("=", "+", "@", "\t", "\r")) for c in cells)
    runs_csv = workspace.cli("journal", "--dossier", "nord", "--format", "csv").stdout
    assert not any(
        c.startswith(("=", "+", "@")) for row in csv.reader(io.StringIO(runs_csv)) for c in row
    )


def test_incidents_show_control_characters_instead_of_obeying_them(
    workspace: Workspace,
) -> None:
    workspace.add_dossier("nord", clients=2, seed=1)
    workspace.activate_all()
    store = StateStore(workspace.state_url)
    now = datetime(2026, 12, 1, 12, 0)
    with store.session() as s:
        s.add(Incident(dossier_id="nord", entity="clients", record_key="CL\x1b[31mRED",
                       direction="sage_to_ssm", kind="record_refused", message=HOSTILE,
                       first_seen=now, last_seen=now, occurrences=1, state="open"))  # fmt: skip
    store.dispose()
    shown = workspace.cli("incidents").stdout
    assert "\x1b" not in shown and "\x07" not in shown and "\u202e" not in shown
    assert "\\e]0;pwned\\x07" in shown and "CL\\e[31mRED" in shown and "\\u202e" in shown
    # --json is for programs: the text stays as it is, escaped by JSON itself
    assert workspace.cli_json("incidents")[0]["message"] == HOSTILE
