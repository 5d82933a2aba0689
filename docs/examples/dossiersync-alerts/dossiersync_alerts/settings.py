"""The ``[plugins.alerts]`` table: validated against ``alerts.schema.json``, secrets
resolved (``env:NAME``, ``file:PATH``) and held in ``Secret``, never shown."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

import jsonschema

from dossiersync.plugin import ConfigError, Secret, resolve

TABLE = "plugins.alerts"


def schema() -> dict[str, Any]:
    text = resources.files(__package__).joinpath("alerts.schema.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


@dataclass(frozen=True)
class Mail:
    host: str
    port: int
    starttls: bool
    sender: str
    recipients: tuple[str, ...]
    username: str | None = None
    password: Secret | None = None


@dataclass(frozen=True)
class AlertSettings:
    """When to alert and where to."""

    after_occurrences: int = 3
    after_failed_runs: int = 3
    webhook_url: Secret | None = None
    mail: Mail | None = None
    timeout_seconds: float = 10.0

    def secrets(self) -> list[Secret]:
        """What an alert, a log line or an error must never show."""
        found = [self.webhook_url]
        if self.mail is not None:
            found.append(self.mail.password)
        return [s for s in found if s is not None]


def read(table: Mapping[str, Any], source: str) -> AlertSettings:
    """The settings of ``table``, or a ``ConfigError`` naming each problem (never a
    secret's value)."""
    data = dict(table)
    validator = jsonschema.Draft202012Validator(schema())
    problems = []
    for error in sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path)):
        where = ".".join([TABLE, *(str(p) for p in error.absolute_path)])
        secret = isinstance(error.schema, dict) and error.schema.get("secret")
        message = f"invalid value ({error.validator})" if secret else error.message
        if error.validator == "anyOf":
            message = "give webhook_url, smtp_host or both: where alerts go"
        problems.append(f"  {where}: {message}")
    if problems:
        raise ConfigError(f"{source} is invalid:\n" + "\n".join(problems))
    mail = None
    if "smtp_host" in data:
        password = data.get("smtp_password")
        mail = Mail(
            host=data["smtp_host"],
            port=data.get("smtp_port", 25),
            starttls=data.get("smtp_starttls", False),
            sender=data["mail_from"],
            recipients=tuple(data["mail_to"]),
            username=data.get("smtp_username"),
            password=resolve(password, f"{TABLE}.smtp_password") if password else None,
        )
    webhook = data.get("webhook_url")
    return AlertSettings(
        after_occurrences=data.get("after_occurrences", 3),
        after_failed_runs=data.get("after_failed_runs", 3),
        webhook_url=resolve(webhook, f"{TABLE}.webhook_url") if webhook else None,
        mail=mail,
        timeout_seconds=float(data.get("timeout_seconds", 10)),
    )
