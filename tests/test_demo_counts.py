"""Three demo dossiers with every entity: per dossier, SSM holds what Sage holds.

The dossiers come from the demo generator with its default proportions (contacts,
families, products with stock, a few sales orders and invoices), as a new user would
make them.  Every record of every entity reaches SSM under its dossier's ``extId``
prefix, and a second ``sync`` writes nothing.
"""

from __future__ import annotations

from typing import Any

from support.workspace import Workspace

DOSSIERS = {"nord": 1, "sud": 2, "est": 3}
ENTITIES = ("clients", "contacts", "products", "orders")
#: SSM resource -> the Sage rows it mirrors
SAGE_COUNTS = {
    "accounts": "SELECT COUNT(*) FROM F_COMPTET WHERE CT_Type = 0",
    "contacts": "SELECT COUNT(*) FROM F_CONTACTT",
    "productFamilies": "SELECT COUNT(*) FROM F_FAMILLE",
    "products": "SELECT COUNT(*) FROM F_ARTICLE",
    "salesorders": "SELECT COUNT(*) FROM F_DOCENTETE WHERE DO_Domaine = 0 AND DO_Type = 1",
    "salesordersLines": "SELECT COUNT(*) FROM F_DOCLIGNE WHERE DO_Domaine = 0 AND DO_Type = 1",
}


def writes(runs: list[dict[str, Any]]) -> int:
    return sum(
        run["counts"]["created"] + run["counts"]["updated"] + run["counts"]["deleted"]
        for dossier in runs
        for run in dossier["runs"]
    )


def counts(ws: Workspace) -> dict[tuple[str, str], tuple[int, int]]:
    """(dossier, SSM resource) -> (records in Sage, live records in SSM)."""
    out = {}
    for dossier_id in DOSSIERS:
        for resource, sql in SAGE_COUNTS.items():
            (in_sage,) = ws.sage_rows(dossier_id, sql)[0]
            out[dossier_id, resource] = (in_sage, len(ws.records(resource, dossier_id)))
    return out


def test_every_entity_counts_the_same_in_ssm_as_in_sage_per_dossier(
    workspace: Workspace,
) -> None:
    for dossier_id, seed in DOSSIERS.items():
        workspace.add_dossier(dossier_id, clients=40, seed=seed, entities=ENTITIES)
    workspace.activate_all()

    workspace.sync()
    found = counts(workspace)
    assert {key: sage for key, (sage, _) in found.items()} == {
        key: ssm for key, (_, ssm) in found.items()
    }
    # every table of every dossier holds something: the comparison is not 0 == 0
    assert all(sage > 0 for sage, _ in found.values())
    assert workspace.cli_json("incidents", "--open") == []

    runs = workspace.sync()
    assert writes(runs) == 0
    assert counts(workspace) == found
