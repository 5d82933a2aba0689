"""The service's change probes: a change reaches the other side in seconds, only the
affected pass runs, an idle dossier runs no pass at all, and the complete pass on the
long schedule still reconciles what no probe sees.

Real parts only: ``dossiersync run`` as a process, reference dossiers through the
SQLite3 ODBC driver, the simulator as a real HTTP server.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from support.service import running_service as service
from support.workspace import Workspace


def wait_for(condition: Callable[[], Any], timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError("timed out")


def runs(ws: Workspace, dossier_id: str = "nord") -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = ws.cli_json("journal", "--dossier", dossier_id, "--limit", "500")
    return found


def finished(ws: Workspace) -> list[dict[str, Any]]:
    return [r for r in runs(ws) if r["outcome"] != "running"]


def review(ws: Workspace) -> set[str]:
    found = ws.cli_json("records", "--dossier", "nord", "--label", "pending_review")
    return {r["sage_key"] for r in found}


def probed(ws: Workspace, settings: str) -> None:
    ws.add_dossier("nord", clients=30, seed=1, entities=("clients", "contacts"))
    ws.extra_config = f"[service]\n{settings}\n"
    ws.write_config()
    ws.activate_all()


def test_probes_run_exactly_the_pass_that_changed_and_nothing_when_idle(
    workspace: Workspace,
) -> None:
    ws = workspace
    probed(ws, "interval_seconds = 3600\nsage_probe_seconds = 0.2\nssm_probe_seconds = 0.5")
    with service(ws):
        # the complete pass at start: both entities, both directions
        first = wait_for(lambda: len(finished(ws)) >= 4 and finished(ws), 60)
        assert {(r["entity"], r["direction"], r["trigger"]) for r in first} == {
            ("clients", "sage_to_ssm", "activation"),
            ("clients", "ssm_to_sage", "activation"),
            ("contacts", "sage_to_ssm", "activation"),
            ("contacts", "ssm_to_sage", "activation"),
        }

        # idle: probes, no pass
        time.sleep(3)
        idle_before = ws.simulator_stats()["calls"]
        assert len(finished(ws)) == 4
        time.sleep(3)
        assert len(finished(ws)) == 4
        idle_after = ws.simulator_stats()["calls"]
        spent = {k: idle_after[k] - idle_before.get(k, 0) for k in idle_after}
        assert {k for k, v in spent.items() if v} <= {"GET /accounts", "GET /contacts"}

        # a Sage edit: the clients pass from Sage runs, the contacts passes do not
        sage = ws.sage_clients("nord")
        code = sorted(sage)[3]
        ws.sage_execute(
            "nord",
            "UPDATE F_COMPTET SET CT_Ville = 'Albi', "
            "cbModification = strftime('%Y-%m-%d %H:%M:%f','now') WHERE CT_Num = ?",
            (code,),
        )
        wait_for(lambda: ws.account(f"nord:{code}")["city"] == "Albi", 15)
        time.sleep(1.5)
        new = finished(ws)[: len(finished(ws)) - 4]
        assert {r["trigger"] for r in new} == {"change"}
        assert all(r["entity"] == "clients" for r in new), new
        wrote = [r for r in new if r["counts"]["updated"] + r["counts"]["created"]]
        assert [(r["entity"], r["direction"], r["counts"]["updated"]) for r in wrote] == [
            ("clients", "sage_to_ssm", 1)
        ]

        # an SSM edit of a prospect: the clients pass to Sage runs, and only it writes
        prospect_code = next(c for c, row in sage.items() if row["CT_Prospect"] == 1)
        prospect = ws.account(f"nord:{prospect_code}")
        before = len(finished(ws))
        ws.ssm_put("accounts", prospect["id"], {"phone": "05 65 00 00 00"})
        wait_for(
            lambda: ws.sage_clients("nord")[prospect_code]["CT_Telephone"] == "05 65 00 00 00",
            15,
        )
        time.sleep(1.5)
        latest = finished(ws)[: len(finished(ws)) - before]
        assert all(r["entity"] == "clients" and r["trigger"] == "change" for r in latest)
        wrote = [r for r in latest if r["counts"]["updated"]]
        assert [(r["direction"], r["counts"]["updated"]) for r in wrote] == [("ssm_to_sage", 1)]

    # the status tells what the probes saw and how long a change took
    status = ws.cli_json("status", "--dossier", "nord")[0]
    watch = status["changes"]
    assert watch["sage"]["probes"] > 10 and watch["ssm"]["probes"] > 5
    assert watch["sage"]["last_change_at"] and watch["ssm"]["last_change_at"]
    assert 0 <= watch["sage"]["latency_p50_seconds"] < 15
    assert 0 <= watch["ssm"]["latency_p50_seconds"] < 15
    # the status page draws the same figure
    from dossiersync.state.store import StateStore
    from dossiersync.web.health import latency_seconds

    store = StateStore(ws.state_url)
    assert latency_seconds(store, "nord") is not None
    store.dispose()


def test_the_complete_pass_on_the_long_schedule_reconciles_what_no_probe_saw(
    workspace: Workspace,
) -> None:
    ws = workspace
    # probes so rare they never run again after start: only the schedule is left
    probed(ws, "interval_seconds = 2\nsage_probe_seconds = 3600\nssm_probe_seconds = 3600")
    with service(ws):
        wait_for(lambda: len(finished(ws)) >= 4, 60)
        sage = ws.sage_clients("nord")
        gone_in_sage = sorted(sage)[5]
        ws.sage_execute("nord", "DELETE FROM F_COMPTET WHERE CT_Num = ?", (gone_in_sage,))
        # a Sage-born contact deleted in SSM: kept in Sage, flagged for review
        code, number = ws.sage_rows("nord", "SELECT CT_Num, CT_No FROM F_CONTACTT LIMIT 1")[0]
        ws.ssm_delete("contacts", ws.record("contacts", f"nord:{code}:{number}")["id"])
        wait_for(lambda: f"{code}:{number}" in review(ws))
        wait_for(lambda: f"nord:{gone_in_sage}" not in {a["extId"] for a in ws.accounts("nord")})
    assert ws.sage_rows(
        "nord", "SELECT 1 FROM F_CONTACTT WHERE CT_Num = ? AND CT_No = ?", (code, number)
    )
    assert not [r for r in finished(ws) if r["trigger"] == "change"]


def test_a_quiet_dossier_costs_one_query_a_probe_and_is_probed_less_often(
    workspace: Workspace,
) -> None:
    """Every watched table of a dossier is asked in one statement, and the probe slows
    down while nothing changes, back to its first pace at the first change (the file's
    change mark off: every probe asks its statement)."""
    from dossiersync.config import load
    from dossiersync.probes import Probes

    ws = workspace
    probed(ws, "sage_probe_seconds = 1\nsage_probe_max_seconds = 4\nsage_file_marks = false")
    config = load(ws.config_path)
    dossier = config.dossiers["nord"]
    probes = Probes(config)
    try:
        assert set(probes.probe_sage(config, dossier)) == {"clients", "contacts"}  # first
        paces = []
        for _ in range(5):
            queries = probes.stats.sage_queries
            assert probes.probe_sage(config, dossier) == []
            assert probes.stats.sage_queries - queries == 1
            paces.append(probes.sage_pace["nord"])
        assert paces == [1.5, 2.25, 3.375, 4, 4]
        code = sorted(ws.sage_clients("nord"))[0]
        ws.sage_execute("nord", "DELETE FROM F_COMPTET WHERE CT_Num = ?", (code,))
        assert "clients" in probes.probe_sage(config, dossier)  # a count moved: found
        assert probes.sage_pace["nord"] == 1
    finally:
        probes.close()


def test_a_quiet_dossier_file_needs_no_statement_and_any_write_is_still_seen(
    workspace: Workspace,
) -> None:
    """Where the dossier is a file, a probe reads its modification time and size first:
    a file unchanged since well before the last statement is quiet without a statement;
    a write — even within a second of the last statement, even one that changes neither
    the file's size nor, within a tick, its time — is found by the next probe."""
    import os

    from dossiersync import probes as probes_module
    from dossiersync.config import load
    from dossiersync.probes import Probes

    ws = workspace
    probed(ws, "sage_probe_seconds = 1\nsage_probe_max_seconds = 4")
    config = load(ws.config_path)
    assert config.service.sage_file_marks  # the default
    dossier = config.dossiers["nord"]
    path = ws.dossiers["nord"]["path"]
    probes = Probes(config)

    def statements() -> int:
        return probes.stats.sage_queries

    def age(seconds: float) -> None:
        """The file and its journals as if last written ``seconds`` ago."""
        for name in (path, f"{path}-wal", f"{path}-journal"):
            if os.path.exists(name):
                then = time.time() - seconds
                os.utime(name, (then, then))

    try:
        age(10)
        assert set(probes.probe_sage(config, dossier)) == {"clients", "contacts"}  # first
        before = statements()
        for _ in range(3):
            assert probes.probe_sage(config, dossier) == []
        assert statements() == before  # the file said it all
        assert probes.stats.sage_file_marks == 3

        # a write: the file moves, the statement runs and finds it
        code = sorted(ws.sage_clients("nord"))[0]
        ws.sage_execute(
            "nord",
            "UPDATE F_COMPTET SET CT_Ville = 'Rodez', "
            "cbModification = strftime('%Y-%m-%d %H:%M:%f','now') WHERE CT_Num = ?",
            (code,),
        )
        assert probes.probe_sage(config, dossier) == ["clients"]
        assert statements() == before + 1

        # written within a second of that statement: the same mark is not trusted, as a
        # second write in the same tick of the file system's clock could leave it as it was
        mark = os.stat(path)
        ws.sage_execute(
            "nord",
            "UPDATE F_COMPTET SET CT_Ville = 'Millau', "
            "cbModification = strftime('%Y-%m-%d %H:%M:%f','now') WHERE CT_Num = ?",
            (code,),
        )
        os.utime(path, ns=(mark.st_atime_ns, mark.st_mtime_ns))  # the same tick, same size
        assert os.stat(path).st_size == mark.st_size
        assert probes.probe_sage(config, dossier) == ["clients"]

        # settled again: quiet without a statement, until the mark is a minute old
        age(10)
        assert probes.probe_sage(config, dossier) == []  # one statement: a mark to keep
        counted = statements()
        assert probes.probe_sage(config, dossier) == []
        assert statements() == counted
        kept_mark, wall, mono = probes.sage.files["nord"]
        probes.sage.files["nord"] = (
            kept_mark,
            wall,
            mono - probes_module.FILE_MARK_TRUSTED_SECONDS,
        )
        assert probes.probe_sage(config, dossier) == []
        assert statements() == counted + 1
    finally:
        probes.close()


def run_until(ws: Workspace, log: Any, said: str, then: Callable[[], bool] | None = None) -> str:
    """``dossiersync run`` as a process until its log says ``said`` (and ``then()`` is
    true), then SIGTERM: its log (it must have exited with status 0)."""
    with log.open("w") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "dossiersync.cli", "--config", str(ws.config_path)]
            + ["run", "--no-web"],
            stdout=subprocess.DEVNULL,
            stderr=err,
            text=True,
        )
        try:
            wait_for(lambda: said in log.read_text(), timeout=120)
            if then is not None:
                wait_for(then, timeout=60)
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(60)
    text: str = log.read_text()
    assert process.returncode == 0, text
    return text


def test_the_service_says_how_long_until_every_dossier_has_had_its_first_pass(
    workspace: Workspace, tmp_path: Any
) -> None:
    for n in range(3):
        workspace.add_dossier(f"d{n}", clients=10, seed=n)
    workspace.extra_config = "[service]\nparallel_dossiers = 1\n"
    workspace.write_config()
    workspace.activate_all()
    text = run_until(workspace, tmp_path / "service.log", "first passes: all 3 done")
    assert "first passes: 3 dossier(s) due, 1 at a time" in text
    # after each of the first two: how many are left, and about how long for them
    assert "first passes: 1 done, 2 to go, about " in text
    assert "first passes: 2 done, 1 to go, about " in text


def test_the_service_reads_its_configuration_again_only_when_the_file_changed(
    workspace: Workspace, caplog: Any
) -> None:
    """A cycle comes several times a second: the file is parsed and checked again only
    when its bytes changed; a mistake in it keeps the configuration running and is said
    once, not at every cycle."""
    import logging

    from dossiersync.service import Service

    ws = workspace
    probed(ws, "sage_probe_seconds = 1")
    service = Service(ws.config_path, web=False)
    first = service.reload(None)
    assert service.reload(first) is first  # the same bytes: not read again
    ws.config_path.write_text(
        ws.config_path.read_text(encoding="utf-8").replace(
            "sage_probe_seconds = 1", "sage_probe_seconds = 2"
        ),
        encoding="utf-8",
    )
    second = service.reload(first)
    assert second is not first and second.service.sage_probe_seconds == 2
    ws.config_path.write_text("[implementation\n", encoding="utf-8")  # not TOML
    with caplog.at_level(logging.ERROR, logger="dossiersync.service"):
        for _ in range(5):
            assert service.reload(second) is second
    said = [r for r in caplog.records if "configuration not reloaded" in r.getMessage()]
    assert len(said) == 1


def test_a_restart_does_not_pass_again_the_dossiers_passed_within_their_interval(
    workspace: Workspace, tmp_path: Any
) -> None:
    """``run`` after a ``sync`` (or a restart): a dossier whose every pass ended less
    than its interval ago is not passed again at start, and its first probe runs only
    the passes of what changed since (a client edited while no service ran); a dossier
    never synced is passed."""
    ws = workspace
    for n in range(2):
        ws.add_dossier(f"d{n}", clients=10, seed=n, entities=("clients", "contacts"))
    ws.activate_all()
    ws.sync("--dossier", "d0")
    code = sorted(ws.sage_clients("d0"))[0]
    ws.sage_execute(
        "d0",
        "UPDATE F_COMPTET SET CT_Ville = 'Laguiole', cbModification = "
        "strftime('%Y-%m-%d %H:%M:%f','now') WHERE CT_Num = ?",
        (code,),
    )
    text = run_until(
        ws,
        tmp_path / "service.log",
        "first passes: all 1 done",
        then=lambda: ws.account(f"d0:{code}")["city"] == "Laguiole",
    )
    assert "first passes: 1 dossier(s) due" in text
    journal = {d: ws.cli_json("journal", "--dossier", d) for d in ("d0", "d1")}
    passed = {d: [r for r in runs if r["trigger"] != "change"] for d, runs in journal.items()}
    assert len(passed["d0"]) == 4  # the sync's own passes, none by the service
    changed = [r for r in journal["d0"] if r["trigger"] == "change"]
    # the Sage probe passed clients, not contacts: nothing changed there
    sent = [(r["entity"], r["direction"]) for r in changed if r["direction"] == "sage_to_ssm"]
    assert sent == [("clients", "sage_to_ssm")]
    # the account that pass wrote is a change the SSM probe may see, depending on when
    # it looks (it cannot tell the connector's own writes): its pass finds it unchanged
    back = [r for r in changed if r["direction"] == "ssm_to_sage"]
    assert all(r["entity"] == "clients" for r in back), back
    assert all(r["counts"]["updated"] == r["counts"]["created"] == 0 for r in back), back
    assert {r["trigger"] for r in passed["d1"]} == {"activation"}
    assert len(passed["d1"]) == 4


def test_a_part_of_an_entity_runs_alone_when_named(workspace: Workspace) -> None:
    """The probes name what changed by part (product families, a part of products): such
    a name runs that part alone; an entity's name runs all its parts."""
    ws = workspace
    ws.add_dossier("nord", clients=5, seed=1, entities=("clients", "products"))
    ws.activate_all()
    ws.sync()
    runs = ws.sync("--entity", "product_families")[0]["runs"]
    assert [(r["entity"], r["outcome"]) for r in runs] == [("product_families", "succeeded")]
    runs = ws.sync("--entity", "products")[0]["runs"]
    assert [r["entity"] for r in runs] == ["product_families", "products"]
    assert "not enabled" in ws.cli("sync", "--entity", "orders", expect=None).output


def test_a_change_pass_reads_what_the_probe_saw_not_the_whole_overlap_window(
    workspace: Workspace, tmp_path: Any
) -> None:
    """Every account was created moments ago, inside the passes' overlap window (300 s):
    the SSM → Sage pass a probe starts for one edit reads from the edit the probe saw (a
    few seconds back), not every record of the window again — after 100,000 accounts,
    that was all of them, for every edit."""
    from dossiersync.sync import to_sage

    ws = workspace
    probed(ws, "ssm_probe_seconds = 0.5")
    ws.sync()
    prospects = [
        r[0] for r in ws.sage_rows("nord", "SELECT CT_Num FROM F_COMPTET WHERE CT_Prospect = 1")
    ]
    code = prospects[0]
    account = ws.account(f"nord:{code}")
    time.sleep(to_sage.CHANGE_OVERLAP_SECONDS + 1)  # the edit comes after the creates

    def edited() -> bool:
        rows = ws.sage_rows("nord", "SELECT CT_Telephone FROM F_COMPTET WHERE CT_Num = ?", (code,))
        return rows[0][0] == "05 65 00 00 01"

    def edit_then_wait() -> bool:
        if not getattr(edit_then_wait, "done", False):
            ws.ssm_put("accounts", account["id"], {"phone": "05 65 00 00 01"})
            edit_then_wait.done = True  # type: ignore[attr-defined]
        return edited()

    run_until(ws, tmp_path / "service.log", "service start", then=edit_then_wait)
    changes = [
        r
        for r in ws.cli_json("journal", "--dossier", "nord")
        if r["trigger"] == "change" and r["direction"] == "ssm_to_sage" and r["entity"] == "clients"
    ]
    assert changes and changes[0]["counts"]["updated"] == 1
    assert max(r["counts"]["read"] for r in changes) <= 2, changes  # not the 30 accounts


def test_a_change_pass_that_keeps_failing_is_tried_again_less_and_less_often(
    workspace: Workspace,
) -> None:
    """With the API unreachable, a Sage edit's change pass fails; it is tried again 5 s
    later, then 10 s…, not at every probe (each try journals a failed run), and the edit
    goes through once the API answers again."""
    ws = workspace
    probed(ws, "interval_seconds = 3600\nsage_probe_seconds = 0.2\nssm_probe_seconds = 0.5")
    good = ws.config_path.read_text(encoding="utf-8")
    good = good.replace("max_retries = 3", "max_retries = 0")
    ws.config_path.write_text(good, encoding="utf-8")
    with service(ws):
        wait_for(lambda: len(finished(ws)) >= 4, 60)
        # the service reads its configuration again: the API is now unreachable
        dead = good.replace(ws.simulator.url, "http://127.0.0.1:9/api")
        ws.config_path.write_text(dead, encoding="utf-8")
        time.sleep(3)  # read again at the next cycle (at most a second apart)
        code = sorted(ws.sage_clients("nord"))[2]
        ws.sage_execute(
            "nord",
            "UPDATE F_COMPTET SET CT_Ville = 'Rodez', "
            "cbModification = strftime('%Y-%m-%d %H:%M:%f','now') WHERE CT_Num = ?",
            (code,),
        )
        wait_for(lambda: any(r["outcome"] == "failed" for r in finished(ws)), 30)
        time.sleep(12)
        failed = [r for r in finished(ws) if r["outcome"] == "failed"]
        # a try, one 5 s after it, perhaps one 10 s after that: at every probe (0.2 s)
        # there would be dozens
        assert 1 <= len(failed) <= 3, failed
        assert all(r["trigger"] == "change" for r in failed)
        ws.config_path.write_text(good, encoding="utf-8")
        wait_for(lambda: ws.account(f"nord:{code}")["city"] == "Rodez", 40)
