"""The one configuration loader: a TOML file validated against ``config.schema.json``."""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePath, PureWindowsPath
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    import jsonschema


# where the file is: said here too, as before
from .config_file import DEFAULT_FILE as DEFAULT_FILE
from .config_file import ENV_VAR as ENV_VAR
from .config_file import config_path as config_path
from .errors import ConfigError
from .lang import N_, said, said_joined
from .packaged import load_schema
from .registry import (
    configure,
    hook_only_plugins,
    installed_entities,
    installed_plugins,
    plugin_manager,
)
from .secrets import DeferredSecret, Secret, connection_secrets, resolve

DEFAULT_ENTITIES = ("clients",)
#: the status page's token, once read (``env:``/``file:``): shorter is guessable
MIN_WEB_TOKEN = 32


@dataclass(frozen=True)
class StatusFieldsConfig:
    """``[implementation.status_fields]``: the extra fields that show, on each synced record
    in Sales Management, its dossier, its sync state and its last problem."""

    dossier: str = "Z_dossier"
    state: str = "Z_sync_state"
    problem: str = "Z_sync_problem"
    #: the language of the states and problems written (the sales reps')
    language: str = "en"
    #: the most characters of a problem written (a text field's length is not published)
    problem_length: int = 250

    def names(self) -> dict[str, str]:
        """Each field's role (``dossier``, ``state``, ``problem``) and name."""
        return {"dossier": self.dossier, "state": self.state, "problem": self.problem}


@dataclass(frozen=True)
class ImplementationConfig:
    """``[implementation]``: its name, its SSM endpoint plugin, the status fields, and the
    endpoint's own settings (``settings``, as its plugin declares them and reads them: the
    core holds none of Sales Management's, no API address, key or id)."""

    name: str
    endpoint: str
    #: None: the records' dossiers and states are not written in Sales Management
    status_fields: StatusFieldsConfig | None = None
    #: every key of the table but ``name``, ``endpoint`` and ``status_fields``, as read:
    #: the endpoint's settings (those its schema marks secret as ``Secret``)
    settings: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class DossierConfig:
    id: str
    name: str
    connection: Secret
    endpoint: str = "sage50fr_odbc"
    entities: tuple[str, ...] = DEFAULT_ENTITIES
    mapping: str | None = None
    branch_id: int | None = None
    code_prefix: str = "SM"
    origin: str = "configuration"
    interval_seconds: float | None = None
    #: the hook-only plugins its syncs and lifecycle tell (``None``: every installed one)
    plugins: tuple[str, ...] | None = None
    #: its endpoint's own keys as read (``connection``, ``mapping`` for Sage 50FR), as
    #: the endpoint's plugin declares them; a secret one held as a Secret
    settings: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class SyncConfig:
    overlap_seconds: int = 300
    batch_size: int = 200
    lease_seconds: int = 900
    mass_deletion_threshold: float = 0.5
    mass_deletion_minimum: int = 20
    restore_detection: bool = True
    reconcile_hours: float = 24


@dataclass(frozen=True)
class ServiceConfig:
    #: the complete pass of every dossier (deletions by key set, reconciliation)
    interval_seconds: float = 3600
    parallel_dossiers: int = 4
    journal_retention_days: int = 90
    #: change probes: each dossier's Sage tables, every implementation's SSM resources
    sage_probe_seconds: float = 1
    #: a quiet dossier is probed less and less often, down to this pace
    sage_probe_max_seconds: float = 4
    #: a Sage file unchanged since the last probe needs no statement (its modification
    #: time and size say so, where the endpoint sees the file)
    sage_file_marks: bool = True
    ssm_probe_seconds: float = 6
    ssm_probe_overlap_seconds: int = 2
    #: on SIGTERM or Ctrl-C, the passes running are left this long to end, then stopped
    #: at their next batch (journaled interrupted; the next pass goes on from there)
    stop_grace_seconds: float = 30


@dataclass(frozen=True)
class WebConfig:
    bind: str = "127.0.0.1"
    port: int = 8780
    token: Secret | None = None
    language: str = "auto"
    #: a browser session ends when unused this long, and this long after it opened
    session_idle_minutes: float = 60
    session_max_hours: float = 12


@dataclass(frozen=True)
class CliConfig:
    #: ``fr``, ``en``, or ``auto`` (the locale variables); ``--lang`` comes first
    language: str = "auto"


@dataclass(frozen=True)
class DiscoveryConfig:
    dsn_patterns: tuple[str, ...] = ()
    #: the Sage endpoint plugin that lists data sources and opens the ones found
    endpoint: str = "sage50fr_odbc"
    entities: tuple[str, ...] = DEFAULT_ENTITIES
    mapping: str | None = None


@dataclass(frozen=True)
class Config:
    path: Path
    implementation: ImplementationConfig
    state_url: str
    sync: SyncConfig
    discovery: DiscoveryConfig
    dossiers: dict[str, DossierConfig] = field(default_factory=dict)
    log_level: str = "WARNING"
    service: ServiceConfig = field(default_factory=ServiceConfig)
    web: WebConfig = field(default_factory=WebConfig)
    cli: CliConfig = field(default_factory=CliConfig)
    #: each plugin's own table (``[plugins.<name>]``), as read: secret references in it
    #: are the plugin's to resolve (``dossiersync.secrets.resolve``)
    plugins: Mapping[str, Mapping[str, Any]] = field(default_factory=lambda: MappingProxyType({}))

    def secrets(self) -> list[Secret]:
        """Every secret value of this configuration, for scrubbing messages."""
        out = [v for v in self.implementation.settings.values() if isinstance(v, Secret)]
        for dossier in self.dossiers.values():
            out.extend(connection_secrets(dossier.connection, dossier.endpoint))
        if self.web.token is not None:
            out.append(self.web.token)
        return out


def _json_path(error: jsonschema.ValidationError, root: str = "$") -> str:
    path = root
    for part in error.absolute_path:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def validate(data: dict[str, Any], source: str) -> None:
    """Refuse an invalid configuration, naming the JSON path of each problem."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(load_schema("config.schema.json"))
    found = [("$", e) for e in validator.iter_errors(data)]
    impl = data.get("implementation")
    if isinstance(impl, dict):
        # the endpoint's settings, as its plugin declares them
        schema = endpoint_settings(str(impl.get("endpoint", "sales_management")))
        if schema is not None:
            own = {k: v for k, v in impl.items() if k not in IMPLEMENTATION_KEYS}
            check = jsonschema.Draft202012Validator(schema)
            found += [("$.implementation", e) for e in check.iter_errors(own)]
    dossiers = data.get("dossiers")
    for dossier_id, dossier in dossiers.items() if isinstance(dossiers, dict) else ():
        if not isinstance(dossier, dict):
            continue
        # the Sage side's settings of the dossier, as its endpoint's plugin declares them
        schema = dossier_settings(str(dossier.get("endpoint", "sage50fr_odbc")))
        if schema is not None:
            own = {k: v for k, v in dossier.items() if k not in DOSSIER_KEYS}
            check = jsonschema.Draft202012Validator(schema)
            found += [(f"$.dossiers.{dossier_id}", e) for e in check.iter_errors(own)]
    errors = sorted(found, key=lambda f: (f[0], [str(p) for p in f[1].absolute_path]))
    if errors:
        lines = []
        for root, e in errors:
            message: str
            if e.validator in ("pattern", "minLength", "type", "enum") and _is_secret(e):
                message = said("invalid value ({validator})", validator=e.validator)
            else:
                message = _problem(e)
            lines.append(said("  {path}: {message}", path=_json_path(e, root), message=message))
        raise ConfigError(
            said(
                "{source} is invalid:\n{problems}",
                source=source,
                problems=said_joined("\n", lines),
            )
        )


def _problem(error: jsonschema.ValidationError) -> str:
    """What a problem of the file is, as jsonschema words it (the English, kept as it
    is), said so that the command line shows the usual ones in its language; another
    one, or one jsonschema words otherwise, stays in jsonschema's words."""
    value, argument = repr(error.instance), cast(Any, error.validator_value)
    english = error.message
    candidates: list[str] = []
    match error.validator:
        case "required":
            name = english.removesuffix(" is a required property")
            candidates = [said("{name} is a required property", name=name)]
        case "type":
            types = [argument] if isinstance(argument, str) else list(argument)
            shown = ", ".join(repr(t) for t in types)
            candidates = [said("{value} is not of type {types}", value=value, types=shown)]
        case "enum":
            choices = repr(argument)
            candidates = [said("{value} is not one of {choices}", value=value, choices=choices)]
        case "pattern":
            pattern = repr(argument)
            candidates = [said("{value} does not match {pattern}", value=value, pattern=pattern)]
        case "minimum":
            limit = repr(argument)
            candidates = [
                said("{value} is less than the minimum of {limit}", value=value, limit=limit)
            ]
        case "maximum":
            limit = repr(argument)
            candidates = [
                said("{value} is greater than the maximum of {limit}", value=value, limit=limit)
            ]
        case "exclusiveMinimum":
            limit = repr(argument)
            candidates = [
                said(
                    "{value} is less than or equal to the minimum of {limit}",
                    value=value,
                    limit=limit,
                )
            ]
        case "exclusiveMaximum":
            limit = repr(argument)
            candidates = [
                said(
                    "{value} is greater than or equal to the maximum of {limit}",
                    value=value,
                    limit=limit,
                )
            ]
        case "minLength" | "minItems":
            candidates = [
                said("{value} should be non-empty", value=value),
                said("{value} is too short", value=value),
            ]
        case "maxLength" | "maxItems":
            candidates = [
                said("{value} is expected to be empty", value=value),
                said("{value} is too long", value=value),
            ]
        case "const":
            candidates = [said("{value} was expected", value=repr(argument))]
        case "additionalProperties":
            names = english.removeprefix("Additional properties are not allowed (")
            names = names.removesuffix(" was unexpected)").removesuffix(" were unexpected)")
            candidates = [
                said("Additional properties are not allowed ({names} was unexpected)", names=names),
                said(
                    "Additional properties are not allowed ({names} were unexpected)", names=names
                ),
            ]
    # the words jsonschema used, or its own when it words them otherwise than expected
    return next((c for c in candidates if c == english), english)


#: the keys of ``[implementation]`` that are the core's: the others are its endpoint's
IMPLEMENTATION_KEYS = frozenset({"name", "endpoint", "status_fields"})


def endpoint_settings(endpoint: str) -> dict[str, Any] | None:
    """The JSON Schema of an SSM endpoint's settings, as its plugin declares it
    (``dossiersync_endpoint_settings``), or None when no plugin does."""
    schema = plugin_manager().hook.dossiersync_endpoint_settings(endpoint=endpoint)
    return dict(schema) if schema is not None else None


#: the keys of a dossier's table that are the core's: the others are its endpoint's
DOSSIER_KEYS = frozenset(
    {"name", "endpoint", "entities", "plugins", "branch_id", "code_prefix", "interval_seconds"}
)


def dossier_settings(endpoint: str) -> dict[str, Any] | None:
    """The JSON Schema of a Sage-side endpoint's settings in a dossier's table, as its
    plugin declares it (``dossiersync_dossier_settings``), or None when no plugin does."""
    schema = plugin_manager().hook.dossiersync_dossier_settings(endpoint=endpoint)
    return dict(schema) if schema is not None else None


def _dossier(base: Path, dossier_id: str, d: dict[str, Any]) -> DossierConfig:
    endpoint = d.get("endpoint", "sage50fr_odbc")
    declared = (dossier_settings(endpoint) or {}).get("properties", {})
    settings: dict[str, Any] = {
        key: resolve(value, f"dossiers.{dossier_id}.{key}")
        if isinstance(declared.get(key), dict) and declared[key].get("secret")
        else value
        for key, value in d.items()
        if key not in DOSSIER_KEYS
    }
    if "mapping" in settings:
        settings["mapping"] = _mapping(base, settings["mapping"])
    connection = settings.get("connection", "")
    return DossierConfig(
        id=dossier_id,
        name=d.get("name", dossier_id),
        connection=connection if isinstance(connection, Secret) else Secret(str(connection)),
        endpoint=endpoint,
        entities=tuple(d.get("entities", DEFAULT_ENTITIES)),
        mapping=settings.get("mapping"),
        branch_id=d.get("branch_id"),
        code_prefix=d.get("code_prefix", "SM"),
        interval_seconds=d.get("interval_seconds"),
        plugins=tuple(d["plugins"]) if "plugins" in d else None,
        settings=MappingProxyType(settings),
    )


def _is_secret(error: jsonschema.ValidationError) -> bool:
    return bool(error.schema.get("secret")) if isinstance(error.schema, dict) else False


#: a Windows absolute path (``C:\…``, ``C:/…``, ``\\server\share``): absolute on any machine
_WINDOWS_ABSOLUTE = re.compile(r"^(?:[A-Za-z]:[\\/]|\\\\)")


def _relative(base: Path, value: str | None) -> str | None:
    if value is None:
        return None
    if _WINDOWS_ABSOLUTE.match(value):
        return value
    p = Path(value).expanduser()
    return str(p if p.is_absolute() else (base / p))


#: a built-in mapping layout is named, a mapping file is a path (it has a ``.`` or a ``/``)
_LAYOUT_NAME = re.compile(r"^[a-z][a-z0-9-]{0,39}$")


def _mapping(base: Path, value: str | None) -> str | None:
    """A dossier's ``mapping``: a built-in layout's name as it is, a file relative to ``base``."""
    if value is not None and _LAYOUT_NAME.match(value):
        return value
    return _relative(base, value)


def load(path: str | os.PathLike[str] | None = None) -> Config:
    """Read, validate and resolve the configuration file."""
    p = config_path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            said(
                "configuration file {path} not found (use --config PATH or set {variable})",
                path=str(p),
                variable=ENV_VAR,
            )
        ) from None
    except OSError as exc:
        raise ConfigError(
            said("cannot read configuration file {path}: {error}", path=str(p), error=exc.strerror)
        ) from None
    try:
        # utf-8-sig: Notepad and PowerShell 5 begin a UTF-8 file with a byte order mark
        data = tomllib.loads(raw.decode("utf-8-sig"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(
            said("{path} is not valid TOML: {error}", path=str(p), error=str(exc))
        ) from None
    validate(data, str(p))
    config = from_dict(data, p)
    check_entities(config)
    check_plugins(config)
    check_dossiers_apart(config)
    configure(config)
    return config


def check_entities(config: Config) -> None:
    """Refuse an entity name no installed plugin provides, naming the ones that exist
    (a typo is found when the configuration is read, not when a sync runs)."""
    known = installed_entities()
    places = [("discovery.entities", config.discovery.entities)]
    places += [(f"dossiers.{d.id}.entities", d.entities) for d in config.dossiers.values()]
    for where, names in places:
        unknown = [name for name in names if name not in known]
        if unknown:
            raise ConfigError(
                said(
                    N_("{path}: {where}: unknown entities {names} (installed: {installed})")
                    if len(unknown) > 1
                    else N_("{path}: {where}: unknown entity {names} (installed: {installed})"),
                    path=str(config.path),
                    where=where,
                    names=", ".join(map(repr, unknown)),
                    installed=", ".join(sorted(known)),
                )
            )


def source_identity(dossier: DossierConfig) -> str:
    """What a dossier's connection reaches, as its endpoint plugin tells it (a file's real
    path, a data source, a server's database), or the connection as written when the
    plugin cannot say."""
    connection = dossier.connection.reveal()
    # asked of the plugins' hooks, not of the endpoint class: reading the configuration
    # loads no driver (``status`` stays light)
    said = plugin_manager().hook.dossiersync_source_identity(
        endpoint=dossier.endpoint, connection=connection
    )
    return str(said) if said else " ".join(connection.split())


def check_dossiers_apart(config: Config) -> None:
    """Refuse two dossiers on one Sage source (each record would be created twice in
    Sales Management, once per dossier) or on one ``branch_id`` (both would claim the
    accounts created in that branch), before anything is read or written."""
    problems = []
    for what, values in (
        # a dossier whose endpoint takes no connection reaches no source another can share
        (
            "Sage source",
            {d.id: source_identity(d) for d in config.dossiers.values() if d.connection.reveal()},
        ),
        (
            "branch_id",
            {d.id: str(d.branch_id) for d in config.dossiers.values() if d.branch_id is not None},
        ),
    ):
        shared: dict[str, list[str]] = {}
        for dossier_id, value in values.items():
            shared.setdefault(value, []).append(dossier_id)
        for value, ids in shared.items():
            if len(ids) > 1:
                named = " and ".join(f"dossiers.{i}" for i in ids)
                problems.append(f"  {named} share one {what} ({value})")
    if problems:
        raise ConfigError(
            said(
                "{path}: dossiers must not share a Sage source or a branch_id (records would "
                "be doubled in Sales Management, or claimed by two dossiers):\n{problems}",
                path=str(config.path),
                problems="\n".join(problems),
            )
        )


def check_plugins(config: Config) -> None:
    """Refuse a ``[plugins.<name>]`` table that no installed plugin is named for, and a
    dossier's ``plugins`` naming no installed hook-only plugin."""
    known = installed_plugins()
    unknown = [name for name in config.plugins if name not in known]
    if unknown:
        raise ConfigError(
            said(
                "{path}: plugins: no installed plugin is named {names} (installed: {installed})",
                path=str(config.path),
                names=", ".join(map(repr, unknown)),
                installed=", ".join(sorted(known)) or "none",
            )
        )
    named = [d for d in config.dossiers.values() if d.plugins]
    hook_only = hook_only_plugins() if named else set()
    for dossier in named:
        unknown = [name for name in dossier.plugins or () if name not in hook_only]
        if unknown:
            raise ConfigError(
                said(
                    "{path}: dossiers.{dossier}.plugins: no installed hook-only plugin is named "
                    "{names} (installed: {installed})",
                    path=str(config.path),
                    dossier=dossier.id,
                    names=", ".join(map(repr, unknown)),
                    installed=", ".join(sorted(hook_only)) or "none",
                )
            )


def sqlite_url(base: PurePath, url: str) -> str:
    """A SQLite state URL whose file is relative to ``base`` made absolute, in the form
    SQLAlchemy reads on every system: ``sqlite:///C:/dossiersync/state.db`` for a
    Windows path however it was written (backslashes, a drive letter), ``sqlite:////srv/…``
    for a POSIX one. Other URLs are left as they are."""
    if not url.startswith("sqlite:///") or url.startswith("sqlite:////"):
        return url
    rel = url[len("sqlite:///") :]
    if not rel or rel == ":memory:":
        return url
    if _WINDOWS_ABSOLUTE.match(rel):
        return "sqlite:///" + PureWindowsPath(rel).as_posix()
    return "sqlite:///" + (base / rel).as_posix()


def from_dict(data: dict[str, Any], path: Path) -> Config:
    base = path.resolve().parent
    impl = dict(data["implementation"])
    name, endpoint = impl.pop("name"), impl.pop("endpoint", "sales_management")
    status_fields = _status_fields(impl.pop("status_fields", False), path)
    declared = (endpoint_settings(endpoint) or {}).get("properties", {})
    # a secret is read when the endpoint first uses it: local views need no keys
    settings: dict[str, Any] = {
        key: DeferredSecret(value, f"implementation.{key}")
        if isinstance(declared.get(key), dict) and declared[key].get("secret")
        else value
        for key, value in impl.items()
    }
    implementation = ImplementationConfig(
        name=name,
        endpoint=endpoint,
        status_fields=status_fields,
        settings=MappingProxyType(settings),
    )
    state_secret = resolve(
        data.get("state", {}).get("url", "sqlite:///dossiersync.db"), "state.url"
    )
    state_url = sqlite_url(base, state_secret.reveal())
    disc = data.get("discovery", {})
    discovery = DiscoveryConfig(
        dsn_patterns=tuple(disc.get("dsn_patterns", ())),
        endpoint=disc.get("endpoint", "sage50fr_odbc"),
        entities=tuple(disc.get("entities", DEFAULT_ENTITIES)),
        mapping=_mapping(base, disc.get("mapping")),
    )
    dossiers: dict[str, DossierConfig] = {}
    for dossier_id, d in data.get("dossiers", {}).items():
        dossiers[dossier_id] = _dossier(base, dossier_id, d)
    return Config(
        path=path,
        implementation=implementation,
        state_url=state_url,
        sync=SyncConfig(**data.get("sync", {})),
        discovery=discovery,
        dossiers=dossiers,
        log_level=data.get("logging", {}).get("level", "WARNING"),
        service=ServiceConfig(**data.get("service", {})),
        web=_web(data.get("web", {})),
        cli=CliConfig(**data.get("cli", {})),
        plugins=MappingProxyType(
            {name: MappingProxyType(dict(table)) for name, table in data.get("plugins", {}).items()}
        ),
    )


def _status_fields(value: bool | dict[str, Any], path: Path) -> StatusFieldsConfig | None:
    if value is False:
        return None
    fields = StatusFieldsConfig(**({} if value is True else value))
    names = list(fields.names().values())
    if len({n.lower() for n in names}) < len(names):
        raise ConfigError(
            f"{path}: implementation.status_fields: the dossier, state and problem fields "
            f"need three different names, not {', '.join(names)}"
        )
    return fields


_HOST_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


def _is_address(value: str) -> bool:
    """An IP address, or a host name as DNS writes one (not dotted numbers out of range)."""
    try:
        ipaddress.ip_address(value)
        return True
    except ValueError:
        pass
    labels = value.removesuffix(".").split(".")
    return (
        len(value) <= 253
        and all(_HOST_LABEL.match(label) for label in labels)
        and not labels[-1].isdigit()
    )


def _web(data: dict[str, Any]) -> WebConfig:
    reference = str(data.get("token") or "")
    token = resolve(reference, "web.token") if reference else None
    if token is not None and len(token.reveal()) < MIN_WEB_TOKEN:
        read = f" read from {reference}" if reference.startswith(("env:", "file:")) else ""
        raise ConfigError(
            f"web.token: the token{read} has {len(token.reveal())} characters; the status "
            f"page needs {MIN_WEB_TOKEN} or more (python3 -c 'import secrets; "
            "print(secrets.token_urlsafe(32))' makes one), or leave web.token out to have "
            "one generated"
        )
    bind = str(data.get("bind", "127.0.0.1"))
    if not _is_address(bind):
        # refused with the file, before the state store or the token file is made
        raise ConfigError(
            said("web.bind: {bind} is neither an IP address nor a host name", bind=repr(bind[:80]))
        )
    return WebConfig(
        bind=bind,
        port=data.get("port", 8780),
        token=token,
        language=data.get("language", "auto"),
        session_idle_minutes=data.get("session_idle_minutes", 60),
        session_max_hours=data.get("session_max_hours", 12),
    )
