"""``python -m dossiersync.plugins.sales_management.simulator --port 8765 [options]``."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from .app import BULK_ANSWERS, MAX_PAGE_SIZE, NEXT_PAGE_MODES
from .process import DEFAULT_PRIVATE_KEY, DEFAULT_PUBLIC_KEY, serve
from .store import EXTRA_FIELD_SHAPES


def _rate(raw: str) -> float:
    value = float(raw)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError("must be between 0 and 1")
    return value


def _natural(raw: str) -> int:
    value = int(raw)
    if value < 0:
        raise argparse.ArgumentTypeError("must not be negative")
    return value


def _positive(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def parser(
    prog: str = "python -m dossiersync.plugins.sales_management.simulator",
) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog,
        description="Serve a local simulator of the Sage Sales Management REST API (v4).",
    )
    p.add_argument("--port", type=int, default=8765, help="TCP port (default 8765)")
    p.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1)")
    p.add_argument("--db", dest="db_path", help="SQLite file (default: a temporary file)")
    p.add_argument("--public-key", default=DEFAULT_PUBLIC_KEY, help="login username")
    p.add_argument("--private-key", default=DEFAULT_PRIVATE_KEY, help="login password")
    p.add_argument("--latency-ms", type=_natural, default=0, help="delay added to each request")
    p.add_argument("--error-rate", type=_rate, default=0.0, help="share of calls failing 5xx")
    p.add_argument(
        "--lost-answer-rate",
        type=_rate,
        default=0.0,
        help="share of writes carried out, then answered 500",
    )
    p.add_argument(
        "--rate-limit",
        type=_natural,
        default=0,
        help="requests per second of the tenant; 429 with Retry-After above (0: no limit)",
    )
    p.add_argument(
        "--next-page",
        choices=NEXT_PAGE_MODES,
        default="none",
        help="X-FM-Next-Page on lists: none (default, undocumented), next, or repeat",
    )
    p.add_argument(
        "--max-page-size",
        type=_positive,
        default=MAX_PAGE_SIZE,
        help=f"largest page answered, whatever X-FM-Entity-Count asks (default {MAX_PAGE_SIZE})",
    )
    p.add_argument(
        "--bulk-answer",
        choices=BULK_ANSWERS,
        default="status",
        help="shape of a bulk item's answer (unpublished): status (default) "
        '{"guid","statusCode","id","Message"}, message {"guid","id","Message"}, '
        'bare {"guid","id"}',
    )
    p.add_argument(
        "--extra-fields-shape",
        choices=EXTRA_FIELD_SHAPES,
        default="flat",
        help="how an extra field's value is written and read on a record (unpublished): "
        'flat (default) {"Z_dossier": "…"}, nested {"extraFields": {"Z_dossier": "…"}}',
    )
    p.add_argument("--session-ttl", type=_natural, default=3600, help="session lifetime (s)")
    p.add_argument("--seed", type=int, default=None, help="seed of the fault injection")
    return p


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> None:
    """Serve the simulator; ``prog`` is how its usage names the command."""
    options = vars((parser(prog) if prog else parser()).parse_args(argv))
    try:
        serve(options.pop("port"), options.pop("host"), options.pop("db_path"), **options)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
