"""The Sales Management endpoint's settings, typed: what ``settings.schema.json`` declares
under ``[implementation]``, read from the implementation's settings once the file has
been validated against it (so a value here is of its declared type, or the default)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

from dossiersync.plugin import Secret

if TYPE_CHECKING:
    from dossiersync.plugin import ImplementationConfig


@dataclass(frozen=True)
class SalesManagementSettings:
    """The endpoint's settings; the built-in entities read the implementation's SSM ids
    here (``ctx.ssm_settings``): the branch and sales rep a record created without one
    gets, and the account types of a client and a prospect."""

    api_url: str = ""
    public_key: Secret = field(default_factory=lambda: Secret(""))
    private_key: Secret = field(default_factory=lambda: Secret(""))
    default_branch_id: int = 1
    default_sales_rep_id: int = 1
    client_type_id: int = 1
    prospect_type_id: int = 2
    timeout_seconds: float = 30.0
    max_retries: int = 5
    max_concurrency: int = 4
    max_requests_per_second: float = 20.0
    page_size: int = 500
    max_response_bytes: int = 32 * 1024 * 1024
    request_deadline_seconds: float = 120.0
    bulk_linger_seconds: float = 0.5

    @classmethod
    def of(cls, implementation: ImplementationConfig) -> SalesManagementSettings:
        """The settings of an implementation, as read from its ``[implementation]``."""
        return cls.from_mapping(implementation.settings)

    @classmethod
    def from_mapping(cls, settings: Mapping[str, Any]) -> SalesManagementSettings:
        known = {f.name for f in fields(cls)}
        values = {key: value for key, value in settings.items() if key in known}
        for key in ("public_key", "private_key"):
            if isinstance(values.get(key), str):
                values[key] = Secret(values[key])
        if isinstance(values.get("api_url"), str):
            values["api_url"] = values["api_url"].rstrip("/")
        return cls(**values)
