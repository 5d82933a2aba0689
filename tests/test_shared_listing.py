"""The tenant's shared index of a resource (``plugins/sales_management/listing.py``):
what each dossier is handed, what it costs, and when it stands aside. A small fake
lister stands for the API: the client's own listing is tried in test_shared_calls."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from dossiersync.plugins.sales_management import listing
from dossiersync.plugins.sales_management.listing import SharedListing, owner_of


class Tenant:
    """Records of one resource, listed as ``list_changed`` lists them (``since`` minus
    the overlap, deleted ones with ``deleted``), every listing counted."""

    def __init__(self) -> None:
        self.rows: dict[int, dict[str, Any]] = {}
        self.listings: list[str | None] = []
        self.clock = 0

    def put(self, record_id: int, ext_id: str | None = None, **fields: Any) -> None:
        self.clock += 1
        row = dict(self.rows.get(record_id, {}), id=record_id, extId=ext_id, **fields)
        row["dateUpdated"] = f"2026-12-07T10:00:{self.clock:02d}"
        self.rows[record_id] = row

    def list_changed(
        self,
        resource: str,
        *,
        since: str | None = None,
        overlap_seconds: int = 0,
        deleted: bool = False,
    ) -> Iterator[dict[str, Any]]:
        assert resource == "contacts"
        self.listings.append(since)
        for row in sorted(self.rows.values(), key=lambda r: r["id"]):
            if since is not None and changed_at(row) <= shift(since, -overlap_seconds):
                continue
            if row.get("deleted") and not deleted:
                continue
            yield dict(row)


def changed_at(record: dict[str, Any]) -> str:
    return max(str(record.get(k)) for k in ("dateUpdated", "dateDeleted") if record.get(k))


def shift(stamp: str, seconds: int) -> str:
    head, second = stamp.rsplit(":", 1)
    return f"{head}:{int(second) + seconds:02d}"


def served(
    index: SharedListing, tenant: Tenant, prefix: str, deleted: bool = False
) -> list[dict[str, Any]] | None:
    found = index.records(
        tenant.list_changed,
        changed_at,
        "contacts",
        prefix,
        overlap_seconds=0,
        deleted=deleted,
    )
    return None if found is None else list(found)


def ids(records: list[dict[str, Any]] | None) -> list[int]:
    assert records is not None
    return [r["id"] for r in records]


@pytest.fixture
def tenant() -> Tenant:
    t = Tenant()
    for n in range(1, 4):
        t.put(n, f"a:{n}")
        t.put(10 + n, f"b:{n}")
        t.put(20 + n, f"c:{n}")
    t.put(30)  # created in SSM: no extId, may be anyone's
    return t


def test_a_dossier_alone_lists_for_itself_and_the_second_builds_the_index(
    tenant: Tenant,
) -> None:
    index = SharedListing()
    assert served(index, tenant, "a:") is None  # alone: its own listing is as cheap
    assert served(index, tenant, "a:") is None
    assert tenant.listings == []
    assert ids(served(index, tenant, "b:")) == [11, 12, 13, 30]
    assert tenant.listings == [None]  # one complete listing
    # the next dossiers: the changes since the newest date held, nothing else
    assert ids(served(index, tenant, "c:")) == [21, 22, 23, 30]
    assert ids(served(index, tenant, "a:")) == [1, 2, 3, 30]
    assert tenant.listings == [None, "2026-12-07T10:00:10", "2026-12-07T10:00:10"]


def test_each_dossier_is_handed_what_changed_after_it_asked(tenant: Tenant) -> None:
    index = SharedListing()
    served(index, tenant, "a:")
    served(index, tenant, "b:")
    tenant.put(12, "b:2", city="Rodez")  # edited
    tenant.put(40)  # another record created in SSM
    tenant.put(2, "a:2", deleted=True, dateDeleted="2026-12-07T10:00:59")
    tenant.put(30, "c:9")  # the stray taken by dossier c
    b = {r["id"]: r for r in served(index, tenant, "b:") or []}
    assert sorted(b) == [11, 12, 13, 40] and b[12]["city"] == "Rodez"
    assert ids(served(index, tenant, "a:")) == [1, 3, 40]  # the deleted one left out
    assert ids(served(index, tenant, "a:", deleted=True)) == [1, 2, 3, 40]
    assert ids(served(index, tenant, "c:")) == [21, 22, 23, 30, 40]


def test_a_prefix_that_is_not_a_dossiers_is_filtered_record_by_record(tenant: Tenant) -> None:
    index = SharedListing()
    served(index, tenant, "a:")
    tenant.put(50, "ab:1")
    assert ids(served(index, tenant, "a")) == [1, 2, 3, 30, 50]
    assert owner_of("ab:1") == "ab:" and owner_of("") is None and owner_of("x") == "x"


def test_a_tenant_too_large_is_listed_by_each_dossier(
    tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(listing, "MAX_RECORDS", 5)
    index = SharedListing()
    served(index, tenant, "a:")
    assert served(index, tenant, "b:") is None
    assert served(index, tenant, "c:") is None  # not tried again for a while
    assert tenant.listings == [None]


def test_the_index_is_listed_again_in_full_when_old(
    tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A record removed without a trace leaves the index at its next complete listing."""
    index = SharedListing()
    served(index, tenant, "a:")
    served(index, tenant, "b:")
    del tenant.rows[11]
    assert 11 in ids(served(index, tenant, "b:"))  # no trace: still held
    monkeypatch.setattr(listing, "REBUILD_SECONDS", 0.0)
    time.sleep(0.01)
    assert 11 not in ids(served(index, tenant, "b:"))
    assert tenant.listings.count(None) == 2


def test_dossiers_asking_together_share_one_listing(tenant: Tenant) -> None:
    """While one dossier's listing is on its way, those asking wait for it, then share
    one listing of the changes made since."""
    index = SharedListing()
    served(index, tenant, "a:")
    release = threading.Event()

    def list_slowly(resource: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
        release.wait(5)
        yield from tenant.list_changed(resource, **kwargs)

    results: dict[str, list[int]] = {}

    def ask(prefix: str, lister: Any) -> None:
        found = index.records(
            lister, changed_at, "contacts", prefix, overlap_seconds=0, deleted=False
        )
        assert found is not None
        results[prefix] = [r["id"] for r in found]

    first = threading.Thread(target=ask, args=("b:", list_slowly))
    first.start()
    time.sleep(0.1)  # b's listing is on its way
    others = [threading.Thread(target=ask, args=(p, tenant.list_changed)) for p in ("a:", "c:")]
    for t in others:
        t.start()
    time.sleep(0.1)
    release.set()
    for t in [first, *others]:
        t.join(10)
    assert results == {"b:": [11, 12, 13, 30], "a:": [1, 2, 3, 30], "c:": [21, 22, 23, 30]}
    # b's complete listing, then one listing of what changed since, for a and c
    assert len(tenant.listings) == 2


def test_a_pass_since_its_cursor_is_handed_what_changed_after_it(tenant: Tenant) -> None:
    """An incremental pass is served from the index too, kept to what the API's
    ``dateUpdated > T OR dateDeleted > T`` would list; a date that cannot be read is
    kept (read once more, never missed)."""
    from dossiersync.plugins.sales_management.client import changed_after

    keep = changed_after("2026-12-07T10:00:05.000Z")
    assert not keep({"dateUpdated": "2026-12-07T10:00:05.000Z"})
    assert keep({"dateUpdated": "2026-12-07T10:00:05.001Z"})
    assert keep({"dateUpdated": "2026-12-07T09:00:00Z", "dateDeleted": "2026-12-07T10:00:06Z"})
    assert keep({"dateUpdated": "yesterday"})
    assert not keep({})

    index = SharedListing()
    served(index, tenant, "a:")
    served(index, tenant, "b:")
    tenant.put(12, "b:2", city="Rodez")
    found = index.records(
        tenant.list_changed,
        changed_at,
        "contacts",
        "b:",
        overlap_seconds=0,
        deleted=False,
        keep=lambda r: r["dateUpdated"] > "2026-12-07T10:00:10",
    )
    assert found is not None and [r["id"] for r in found] == [12]
