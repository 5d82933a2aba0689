"""Talking to the simulator with plain httpx, as the tests of its contract do."""

from __future__ import annotations

from typing import Any

import httpx

from dossiersync.plugins.sales_management.simulator import SimulatorProcess


def login(simulator: SimulatorProcess) -> str:
    credentials = {"username": simulator.public_key, "password": simulator.private_key}
    response = httpx.post(f"{simulator.url}/login", json=credentials)
    assert response.status_code == 200, response.text
    token = response.json()["token"]
    assert isinstance(token, str) and token
    return token


def session(simulator: SimulatorProcess) -> httpx.Client:
    """A client logged in to the simulator (``X-Session-Key`` set)."""
    return httpx.Client(base_url=simulator.url, headers={"X-Session-Key": login(simulator)})


def account(ext_id: str, **fields: Any) -> dict[str, Any]:
    """An account with the fields the API requires."""
    return {"name": f"Client {ext_id}", "branchId": 1, "salesRepId1": 2, "extId": ext_id, **fields}


def create(api: httpx.Client, resource: str, body: dict[str, Any]) -> int:
    """Create one record; its id, once the simulator answered as documented."""
    response = api.post(f"/{resource}", json=body)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["Message"] == "entity created"
    return int(answer["id"])
