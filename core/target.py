"""What the sync engine asks of the Sales Management side: the ``SsmTarget`` protocol.

The engine and the entities speak in records and ids only. How a filter is written
(``where=`` and its few documented operators), how a list is paged and where it ends,
how a bulk call is framed and its answers matched by ``guid``, and what an HTTP status
means: all of that lives in the endpoint plugin that implements this protocol
(``dossiersync.plugins.sales_management``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from .registry import load_endpoint

if TYPE_CHECKING:
    from .config import Config, ImplementationConfig

Record = dict[str, Any]


@dataclass(frozen=True)
class WriteResult:
    """The outcome of one record of a bulk write: its id, or why it was not written.

    ``error`` is an ``SsmRefused`` when the API refused this record alone (an incident
    for that record; the rest of the batch landed), an ``SsmUnavailable`` with
    ``may_have_acted`` when a create's outcome is unknown (the pass looks the record up
    by ``extId`` before it ends), an ``SsmUnavailable`` without it or an ``SsmAuthError``
    when the API could not be used at all (the run stops).
    """

    id: int | None = None
    error: Exception | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class SsmTarget(Protocol):
    """Record I/O against one Sales Management implementation; safe across threads.

    Optionally, ``dossier_syncing()`` returns a context manager the engine holds while it
    syncs a dossier through the target: an endpoint that shares its calls between the
    dossiers synced at once (the built-in one combines their bulk writes) learns from it
    how many are syncing.
    """

    #: how many requests it takes at once: the engine keeps as many writes in flight
    concurrency: int
    #: its own settings, as its plugin reads them from ``[implementation]`` (the built-in
    #: endpoint's ``SalesManagementSettings``): what the entities written for it read,
    #: such as the SSM ids a record is created with (``DossierContext.ssm_settings``)
    settings: Any

    def list_changed(
        self,
        resource: str,
        *,
        since: str | None = None,
        overlap_seconds: int = 0,
        ext_prefix: str | None = None,
        equals: Mapping[str, int | str] | None = None,
        deleted: bool = False,
    ) -> Iterator[Record]:
        """Records of ``resource``, streamed.

        ``since``: only those changed after this date of a record read earlier (minus
        ``overlap_seconds``, for clocks that are not strictly monotonic); with
        ``deleted``, also those deleted after it, and deleted records are included
        (``deleted`` true), else they are left out. ``ext_prefix`` keeps records whose
        extId starts with it; ``equals`` keeps records whose fields have these values.
        """
        ...

    # Optionally: ``list_with_unlinked(resource, ext_prefix, *, since=None,
    # overlap_seconds=0, deleted=False)``, every record of ``resource`` whose extId starts
    # with ``ext_prefix`` and every one with no extId (deleted ones too with
    # ``deleted``), as ``list_changed(resource, since=…, overlap_seconds=…, deleted=…)``
    # filtered so would stream them, read after the call: the pass of an entity whose
    # records created in SSM may be any dossier's. An endpoint serving several dossiers
    # may answer them all from one listing (``listing.py`` of the built-in one); where it
    # answers None, or has no such method, the engine lists the resource
    # (``core.sync.to_sage.with_unlinked``).

    def changes_since(
        self, resource: str, since: str, *, overlap_seconds: int = 0, limit: int = 1
    ) -> list[Record]:
        """At most ``limit`` records of ``resource`` updated or deleted after ``since``
        (minus ``overlap_seconds``), deleted ones included: one small request, the
        service's change probe."""
        ...

    def find(
        self, resource: str, *, ext_ids: Sequence[str] = (), ids: Sequence[int] = ()
    ) -> Iterator[Record]:
        """The live records with one of these extIds or ids (any order, absent ones left out)."""
        ...

    def get(self, resource: str, record_id: int) -> Record: ...

    def create(self, resource: str, body: Mapping[str, Any]) -> int:
        """Create one record; returns its new id."""
        ...

    def update(self, resource: str, record_id: int, body: Mapping[str, Any]) -> None:
        """Partial update: only the fields in ``body`` change."""
        ...

    def delete(self, resource: str, record_id: int) -> None: ...

    def bulk_limit(self, resource: str) -> int:
        """Records one ``bulk_create``/``bulk_update`` call sends in one request (1: none)."""
        ...

    def bulk_create(self, resource: str, bodies: Sequence[Mapping[str, Any]]) -> list[WriteResult]:
        """Create these records, one result per body in the same order.

        A body carrying an ``extId`` is never created twice: when the outcome of a call
        is unknown (timeout, server error), the records are looked up by extId first.
        """
        ...

    def bulk_update(
        self, resource: str, items: Sequence[tuple[int, Mapping[str, Any]]]
    ) -> list[WriteResult]:
        """Partially update ``(id, body)`` pairs, one result per pair in the same order."""
        ...

    def changed_at(self, record: Mapping[str, Any]) -> str | None:
        """When the record last changed or was deleted, as ``since`` takes it."""
        ...

    def fk_id(self, value: Any) -> int | None:
        """The id of a foreign key as read back (``{"id": 15, "value": "…"}``) or written."""
        ...

    def field_value(self, value: Any) -> Any:
        """A field's value as read back, plain: a foreign key's id, anything else as it is
        (the entities never unpack the API's shapes)."""
        ...

    def earlier(self, stamp: str, seconds: int) -> str:
        """A change date as :meth:`changed_at` gives it, ``seconds`` earlier, in the same
        form: such dates compare as text."""
        ...


class SsmEndpoint(Protocol):
    """What ``implementation.endpoint`` names in ``dossiersync.endpoints``: the class of an
    :class:`SsmTarget`, which makes it from the implementation's configuration. The core
    knows none of its settings: the plugin reads what it needs (an API URL, keys,
    timeouts…) from ``implementation``."""

    def from_settings(
        self, implementation: ImplementationConfig, max_retries: int | None = None
    ) -> SsmTarget:
        """The endpoint of this implementation (``max_retries``, when given, overrides the
        configured number of retries: the status page's quick checks retry once)."""
        ...


def ssm_client(config: Config, max_retries: int | None = None) -> Any:
    """The implementation's endpoint client, made by its plugin from the implementation's
    settings (``SsmEndpoint.from_settings``; ``max_retries`` overrides the setting)."""
    endpoint: SsmEndpoint = load_endpoint(config.implementation.endpoint)
    return endpoint.from_settings(config.implementation, max_retries=max_retries)
