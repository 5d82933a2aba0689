"""Complete listings of a resource that every dossier of a tenant reads, made once.

A dossier's complete Sales Management → Sage pass of contacts or orders cannot ask the
API for its own records only: a record created in SSM has no extId yet, and may be any
dossier's (its account decides), and a filter on a missing extId is not among the
documented operators. So each dossier listed the whole resource of the tenant, and 30
dossiers of 100 clients listed 30 times a tenant that grew with each of them: requests
that grew as the square of the dossiers.

:class:`SharedListing` keeps one resource's records of a tenant (an API URL and its
public key) in this process, indexed by the dossier their extId names, once a second
dossier asks for them: a complete listing of the resource at first, then, for each
dossier that asks, the changes since the newest date it holds (a few seconds back:
usually one request, an empty page), so that what a dossier is handed was read after
it asked, as its own listing would have been. Each dossier is handed its
own records and those with no extId, never another dossier's.

Its limits, each on the safe side:

- a record removed from SSM without a trace (no ``dateDeleted``) stays in the index
  until it is listed again in full (every :data:`REBUILD_SECONDS`): the complete passes
  of that time do not see it vanish, the next ones do;
- the index holds every record of the resource in compact form (about 0.5 KB each);
  a tenant with more than :data:`MAX_RECORDS` of them is listed by each dossier as
  before (and the index is tried again after :data:`REBUILD_SECONDS`);
- a dossier alone (one per process) never builds it: its own listing is as cheap.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

#: the records of a resource the index holds at most (compact JSON, about 0.5 KB each)
MAX_RECORDS = 50_000
#: how long the index serves before the resource is listed again in full (seconds)
REBUILD_SECONDS = 600.0
#: how far back a top-up reads again (seconds; at most the pass's own overlap): a
#: change whose date arrives later than that is read by the dossier's next pass, whose
#: cursor comes from what this one was handed, with its whole overlap window — and by
#: the index's next complete listing
TOP_UP_OVERLAP_SECONDS = 5

Lister = Callable[..., Iterator[dict[str, Any]]]


def owner_of(ext_id: str) -> str | None:
    """The dossier prefix (``nord:``) an extId names, or None for a record with none."""
    if not ext_id:
        return None
    head, colon, _ = ext_id.partition(":")
    return f"{head}:" if colon else ext_id


class SharedListing:
    """Every record of one resource of one tenant, for the complete passes of its
    dossiers in this process (see the module's text)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        #: per record id: its owner prefix (None: no extId) and the record as JSON
        self._records: dict[Any, tuple[str | None, bytes]] = {}
        #: per owner prefix (None: no extId), the ids of its records
        self._owned: dict[str | None, set[Any]] = {}
        self._newest: str | None = None
        self._built_at: float | None = None
        #: when the index last asked the API (a dossier asking before that is served)
        self._asked_at = float("-inf")
        #: too many records: each dossier lists the resource itself until then
        self._refused_until = float("-inf")
        #: the dossier prefixes that asked for a complete listing
        self._askers: set[str] = set()

    def records(
        self,
        list_changed: Lister,
        changed_at: Callable[[dict[str, Any]], str | None],
        resource: str,
        ext_prefix: str,
        *,
        overlap_seconds: int,
        deleted: bool,
        keep: Callable[[dict[str, Any]], bool] | None = None,
    ) -> Iterator[dict[str, Any]] | None:
        """The records of ``resource`` whose extId starts with ``ext_prefix`` and those
        with no extId — deleted ones too with ``deleted``, only those ``keep`` keeps (a
        dossier's pass since its cursor) —, read after this call began; None where the
        index does not serve (a first dossier alone, a tenant too large): the caller
        lists the resource itself."""
        asked = time.monotonic()
        with self._lock:
            self._askers.add(ext_prefix)
            if len(self._askers) < 2 or asked < self._refused_until:
                return None
            if self._built_at is None or asked - self._built_at > REBUILD_SECONDS:
                if not self._build(list_changed, changed_at, resource):
                    return None
            elif self._asked_at < asked:
                overlap = min(overlap_seconds, TOP_UP_OVERLAP_SECONDS)
                self._top_up(list_changed, changed_at, resource, overlap)
            if ext_prefix.endswith(":") and owner_of(ext_prefix) == ext_prefix:
                # a dossier's prefix: its own records, from the index
                ids = self._owned.get(ext_prefix, set()) | self._owned.get(None, set())
                rows = [self._records[i][1] for i in ids]
            else:  # any other prefix: every record, filtered below
                rows = [row for _owner, row in self._records.values()]
        found = []
        for row in rows:
            record = json.loads(row)
            ext_id = str(record.get("extId") or "")
            if ext_id and not ext_id.startswith(ext_prefix):
                continue
            if record.get("deleted") and not deleted:
                continue
            if keep is not None and not keep(record):
                continue
            found.append(record)
        found.sort(key=lambda r: (str(type(r.get("id"))), r.get("id")))
        return iter(found)

    def _build(
        self,
        list_changed: Lister,
        changed_at: Callable[[dict[str, Any]], str | None],
        resource: str,
    ) -> bool:
        """List the whole resource again; False (and no index for a while) when it holds
        more records than :data:`MAX_RECORDS`."""
        self._records, self._owned, self._newest = {}, {}, None
        self._built_at, started = None, time.monotonic()
        self._asked_at = started
        for record in list_changed(resource, deleted=True):
            if len(self._records) >= MAX_RECORDS:
                self._records, self._owned = {}, {}
                self._refused_until = time.monotonic() + REBUILD_SECONDS
                return False
            self._keep(record, changed_at)
        self._built_at = started
        return True

    def _top_up(
        self,
        list_changed: Lister,
        changed_at: Callable[[dict[str, Any]], str | None],
        resource: str,
        overlap_seconds: int,
    ) -> None:
        """The changes since the newest date the index holds (with the pass's overlap)."""
        self._asked_at = time.monotonic()
        if self._newest is None:
            listing = list_changed(resource, deleted=True)
        else:
            listing = list_changed(
                resource, since=self._newest, overlap_seconds=overlap_seconds, deleted=True
            )
        for record in listing:
            self._keep(record, changed_at)

    def _keep(
        self, record: dict[str, Any], changed_at: Callable[[dict[str, Any]], str | None]
    ) -> None:
        key = record.get("id")
        before = self._records.get(key)
        if before is not None:
            self._owned.get(before[0], set()).discard(key)
        owner = owner_of(str(record.get("extId") or ""))
        self._records[key] = (owner, json.dumps(record, separators=(",", ":")).encode())
        self._owned.setdefault(owner, set()).add(key)
        stamp = changed_at(record)
        if stamp and (self._newest is None or stamp > self._newest):
            self._newest = stamp


_SHARED: dict[tuple[str, str, str], SharedListing] = {}
_SHARED_LOCK = threading.Lock()


def shared_listing(api_url: str, public_key: str, resource: str) -> SharedListing:
    """The one index of a tenant's resource in this process. Kept for the life of the
    process (a service's complete passes come back to it every hour), at most
    :data:`MAX_RECORDS` records a resource."""
    key = (api_url, public_key, resource.lower())
    with _SHARED_LOCK:
        found = _SHARED.get(key)
        if found is None:
            found = _SHARED[key] = SharedListing()
        return found
