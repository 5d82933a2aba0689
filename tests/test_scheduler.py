"""The scheduler keeps every implementation going: one whose loop fails (its state store
cannot be opened) is logged and started again, the others carry on; with the broker
unreachable nothing is sent and the loops go on."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import pytest

from dossiersync import distributed

from support.cluster import free_port

CONFIG = """\
[implementation]
name = "{name}"
api_url = "http://127.0.0.1:9/api/v4"
public_key = "pk"
private_key = "sk"
[state]
url = "{state}"
"""


def test_a_failing_implementation_is_started_again_alone(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "configs"
    folder.mkdir()
    (folder / "alpha.toml").write_text(
        CONFIG.format(name="Alpha", state=f"sqlite:///{tmp_path / 'alpha.db'}")
    )
    (folder / "beta.toml").write_text(
        CONFIG.format(name="Beta", state=f"sqlite:///{tmp_path / 'no' / 'such' / 'beta.db'}")
    )
    monkeypatch.setattr(distributed, "RESTART_SECONDS", 0.2)
    caplog.set_level(logging.INFO, logger="dossiersync")
    stop = threading.Event()
    broker = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    thread = threading.Thread(
        target=distributed.run_scheduler,
        args=(distributed.implementations([folder]), broker),
        kwargs={"stop": stop},
    )
    thread.start()
    time.sleep(2)
    stop.set()
    thread.join(20)
    assert not thread.is_alive()
    failed = [r for r in caplog.records if "scheduler of beta failed" in r.getMessage()]
    assert len(failed) >= 2, "beta's loop is started again"
    started = [r for r in caplog.records if r.getMessage().startswith("scheduler of ")]
    assert [r.getMessage().split(":")[0] for r in started if " start:" in r.getMessage()] == [
        "scheduler of alpha start"
    ], "alpha's loop runs on, started once"
    assert not [r for r in caplog.records if "scheduler of alpha failed" in r.getMessage()]
