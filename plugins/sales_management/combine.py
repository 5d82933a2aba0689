"""Bulk writes of dossiers synced side by side, sent together.

Every dossier's pass writes its records with ``POST|PUT /{resource}/bulk``, 100 or 200
items a call. A dossier of 100 clients fills a call to half, and an accounting firm's
30 small dossiers would each send their own half-empty calls to one tenant whose budget
is a few requests a second. The tenant does not care whose records share a call: the
items of a call are answered one by one, each matched by its ``guid``.

So the bulk calls of one tenant (an API URL and its public key) in a process go through
one :class:`BulkCombiner`. A pass hands it its items and waits for their answers; the
items waiting together when a request's turn comes (its connection slot taken and its
pace waited) travel in that request, up to the resource's bulk limit. While several
dossiers are being synced, a request not full first waits a moment (``bulk_linger_seconds``)
for the others' items, until every dossier syncing has items waiting: their passes run
side by side and reach the same resource within moments of one another. A dossier
synced alone never waits, and a full request never does.

What stays each dossier's own: its items and their ``guid``s, and the reading of their
answers (``SalesManagementClient._bulk``, then ``_recover`` and ``_verify_updates``),
so each result goes back to its own pass — its run, links and incidents. A refused item
is refused for its record alone; a call refused as a whole (a 4xx) that carried several
passes' items is sent again for each pass alone, so that the refusal reaches only the
pass whose records caused it; any other failure of a call (the API out, an unclear
answer) is the failure of each item it carried, read by each pass as its own.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Generic, TypeVar

from dossiersync.plugin import SsmRefused, SsmUnavailable, said

K = TypeVar("K")
V = TypeVar("V")


class NothingLeft(Exception):
    """A request's turn came and every item it was to carry had left with another one:
    it is not sent."""


class _Waiting:
    """One pass's items, waiting for their request's answer."""

    __slots__ = ("items", "taken", "done", "answer", "error", "alone")

    def __init__(self, items: Sequence[dict[str, Any]]) -> None:
        self.items = items
        self.taken = False  # in a request on its way
        self.done = False  # its answer (or the failure of its request) is in
        self.answer: Any = None
        self.error: BaseException | None = None
        self.alone = False  # to go in a request of its own (see ``exchange``)


class BulkCombiner:
    """The bulk calls of one tenant in a process: items of one method and resource that
    wait together leave in one request (see the module's docstring)."""

    def __init__(self) -> None:
        self._ready = threading.Condition()
        self._queues: dict[tuple[str, str], deque[_Waiting]] = {}
        self._sending: dict[tuple[str, str], int] = {}
        #: dossiers being synced through this tenant in the process (``joined``)
        self.participants = 0

    @contextmanager
    def joined(self) -> Iterator[None]:
        """While a dossier is synced: its passes may write through this combiner, and a
        call of another dossier may wait a little for their items (``linger``)."""
        with self._ready:
            self.participants += 1
        try:
            yield
        finally:
            with self._ready:
                self.participants -= 1
                self._ready.notify_all()

    def exchange(
        self,
        key: tuple[str, str],
        items: Sequence[dict[str, Any]],
        *,
        limit: int,
        slots: int,
        send: Callable[[Callable[[], list[dict[str, Any]]]], Any],
        linger: float = 0.0,
    ) -> Any:
        """Send ``items`` (at most ``limit``), perhaps with other passes' items of the same
        ``key`` (method, resource); the parsed answer of the request that carried them.

        ``send(take)`` makes one request: it calls ``take()`` once its turn has come, for
        the items to send (raising :class:`NothingLeft` when none is left), and returns
        the parsed answer. At most ``slots`` requests of a key are on their way at once.
        An error of the request is raised to every pass whose items it carried.

        While other dossiers are being synced (``joined``), a request not full waits up to
        ``linger`` seconds for their items, until each dossier syncing has items waiting
        or the request is full: their writes, due about together, leave together. A
        dossier synced alone never waits.
        """
        mine = _Waiting(items)
        with self._ready:
            queue = self._queues.setdefault(key, deque())
            queue.append(mine)
            self._ready.notify_all()  # a request lingering for this pass's items
        while True:
            with self._ready:
                while not mine.done and (mine.taken or self._sending.get(key, 0) >= slots):
                    self._ready.wait()
                if mine.done:
                    return self._outcome(mine)
                self._sending[key] = self._sending.get(key, 0) + 1
                until = time.monotonic() + linger
                while (
                    not mine.taken
                    and len(queue) < self.participants
                    and sum(len(w.items) for w in queue) < limit
                    and time.monotonic() < until
                ):
                    self._ready.wait(until - time.monotonic())
            carried: list[_Waiting] = []

            def take(carried: list[_Waiting] = carried) -> list[dict[str, Any]]:
                with self._ready:
                    count = 0
                    while queue and (not carried or count + len(queue[0].items) <= limit):
                        if carried and queue[0].alone:
                            break
                        waiting = queue.popleft()
                        waiting.taken = True
                        carried.append(waiting)
                        count += len(waiting.items)
                        if waiting.alone:
                            break
                if not carried:
                    raise NothingLeft
                return [item for waiting in carried for item in waiting.items]

            answer: Any = None
            error: BaseException | None = None
            try:
                answer = send(take)
            except NothingLeft:
                pass
            except BaseException as exc:  # noqa: BLE001 - handed to every pass it concerns
                error = exc
            with self._ready:
                self._sending[key] -= 1
                sent = bool(carried)
                if isinstance(error, SsmRefused) and len(carried) > 1:
                    # refused as a whole: whose record made it refuse is not said, so
                    # each pass's items go again alone, and the refusal stays with the
                    # pass concerned
                    for waiting in reversed(carried):
                        waiting.taken, waiting.alone = False, True
                        queue.appendleft(waiting)
                    carried = []
                for waiting in carried:
                    waiting.done, waiting.answer, waiting.error = True, answer, error
                if error is not None and not sent and not mine.taken:
                    # failed before it took anything (a login refused): this pass's items
                    # fail with it; the others wait for a request of their own
                    queue.remove(mine)
                    mine.done, mine.error = True, error
                interrupted = error is not None and not isinstance(error, Exception)
                if interrupted and not mine.taken and mine in queue:
                    queue.remove(mine)  # this pass stops: its items are not sent
                self._ready.notify_all()
            if interrupted:
                assert error is not None
                raise error  # this pass interrupted; the others see an unknown outcome

    @staticmethod
    def _outcome(waiting: _Waiting) -> Any:
        if waiting.error is None:
            return waiting.answer
        if isinstance(waiting.error, Exception):
            raise waiting.error
        raise SsmUnavailable(
            said("the bulk call carrying this record was interrupted on its way"),
            may_have_acted=True,
        )


class PerTenant(Generic[K, V]):
    """One ``V`` per tenant key in this process, made on first use and held by the
    clients using it: a tenant no client uses any more starts afresh."""

    def __init__(self, make: Callable[[K], V]) -> None:
        self._make = make
        self._made: weakref.WeakValueDictionary[K, V] = weakref.WeakValueDictionary()
        self._lock = threading.Lock()

    def __call__(self, key: K) -> V:
        with self._lock:
            found = self._made.get(key)
            if found is None:
                found = self._made[key] = self._make(key)
            return found


_COMBINERS: PerTenant[tuple[str, str], BulkCombiner] = PerTenant(lambda _key: BulkCombiner())


def tenant_combiner(api_url: str, public_key: str) -> BulkCombiner:
    """The one combiner of a tenant (an API URL and a public key) in this process."""
    return _COMBINERS((api_url, public_key))
