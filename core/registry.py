"""Finding and loading plugins: stevedore by entry point, pluggy for the hooks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from typing import Any

import pluggy
from stevedore import DriverManager, NamedExtensionManager

from . import hookspecs
from .entity import Entity
from .errors import PluginError

ENDPOINTS = "dossiersync.endpoints"
ENTITIES = "dossiersync.entities"
GROUPS = (ENDPOINTS, ENTITIES)


@dataclass(frozen=True)
class PluginInfo:
    group: str
    name: str
    target: str
    distribution: str | None
    version: str | None
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "name": self.name,
            "target": self.target,
            "distribution": self.distribution,
            "version": self.version,
            "error": self.error,
        }


def _entry_points(group: str) -> list[metadata.EntryPoint]:
    return sorted(metadata.entry_points(group=group), key=lambda ep: ep.name)


def _distribution(group: str, ep: metadata.EntryPoint) -> str | None:
    if ep.dist is not None:
        return ep.dist.name
    for candidate in metadata.entry_points(group=group, name=ep.name):
        if candidate.value == ep.value and candidate.dist is not None:
            return candidate.dist.name
    return None


def _describe(group: str, ep: metadata.EntryPoint) -> str:
    dist = _distribution(group, ep) or "an unknown distribution"
    return f"{group} plugin {ep.name!r} ({ep.value}, from {dist})"


def list_plugins() -> list[PluginInfo]:
    """Every plugin found through entry points, trying to load each one."""
    found = []
    for group in GROUPS:
        for ep in _entry_points(group):
            error = None
            try:
                ep.load()
            except Exception as exc:  # noqa: BLE001 - reported, not raised, in the listing
                error = f"{type(exc).__name__}: {exc}"
            found.append(
                PluginInfo(
                    group=group,
                    name=ep.name,
                    target=ep.value,
                    distribution=ep.dist.name if ep.dist else None,
                    version=ep.dist.version if ep.dist else None,
                    error=error,
                )
            )
    return found


def _raise_load_failure(manager: Any, ep: metadata.EntryPoint, exc: BaseException) -> None:
    raise PluginError(f"cannot load {_describe(manager.namespace, ep)}: {exc}") from exc


def load_endpoint(name: str) -> Any:
    """The endpoint class registered under ``name`` in ``dossiersync.endpoints``."""
    if name in {ep.name for ep in _entry_points(ENDPOINTS)}:
        try:
            return _driver(name)
        except PluginError:
            raise
        except Exception:  # noqa: BLE001 - installed after stevedore cached: look again
            _forget_cached_entry_points(ENDPOINTS)
    try:
        return _driver(name)
    except PluginError:
        raise
    except Exception as exc:  # noqa: BLE001 - stevedore raises NoMatches / RuntimeError
        available = ", ".join(ep.name for ep in _entry_points(ENDPOINTS)) or "none"
        raise PluginError(
            f"endpoint plugin {name!r} not found in {ENDPOINTS} (available: {available})"
        ) from exc


def _driver(name: str) -> Any:
    manager: DriverManager[Any] = DriverManager(
        ENDPOINTS,
        name,
        invoke_on_load=False,
        on_load_failure_callback=_raise_load_failure,
    )
    return manager.driver


def installed_entities() -> set[str]:
    """Names of the entity plugins installed now (read fresh, not from a cache)."""
    return {ep.name for ep in _entry_points(ENTITIES)}


def load_entities(names: tuple[str, ...] | list[str]) -> list[Entity]:
    """The named entities, instantiated, in dependency order."""
    if not names:
        return []
    wanted = list(dict.fromkeys(names))
    manager, missing = _named_entities(wanted)
    if missing and set(missing) <= installed_entities():
        # installed after stevedore cached this process's entry points: look again
        _forget_cached_entry_points()
        manager, missing = _named_entities(wanted)
    if missing:
        available = ", ".join(ep.name for ep in _entry_points(ENTITIES)) or "none"
        raise PluginError(
            f"entity plugin(s) {', '.join(missing)} not found in {ENTITIES} "
            f"(available: {available}); check the dossier's 'entities' list"
        )
    loaded: dict[str, Entity] = {}
    for ext in manager.extensions:
        if not isinstance(ext.obj, Entity):
            raise PluginError(f"{ENTITIES} plugin {ext.name!r} is not a dossiersync Entity")
        loaded[ext.name] = ext.obj
    return dependency_order(loaded)


def _named_entities(wanted: list[str]) -> tuple[NamedExtensionManager[Any], list[str]]:
    missing: list[str] = []
    manager: NamedExtensionManager[Any] = NamedExtensionManager(
        ENTITIES,
        wanted,
        invoke_on_load=True,
        name_order=True,
        on_load_failure_callback=_raise_load_failure,
        on_missing_entrypoints_callback=lambda names: missing.extend(sorted(names)),
    )
    return manager, missing


def _forget_cached_entry_points(group: str = ENTITIES) -> None:
    """Drop stevedore's in-process entry-point caches (per namespace, and per ``sys.path``):
    they do not see a distribution installed while the process runs."""
    from stevedore import ExtensionManager, _cache

    ExtensionManager.ENTRY_POINT_CACHE.pop(group, None)
    cache = getattr(_cache, "_c", None)
    internal = getattr(cache, "_internal", None)
    if isinstance(internal, dict):
        internal.clear()


def dependency_order(entities: dict[str, Entity]) -> list[Entity]:
    """Entities sorted so each comes after those it depends on (when enabled)."""
    ordered: list[Entity] = []
    state: dict[str, str] = {}

    def visit(name: str, chain: tuple[str, ...]) -> None:
        if state.get(name) == "done" or name not in entities:
            return
        if state.get(name) == "visiting":
            raise PluginError("entity dependency cycle: " + " -> ".join((*chain, name)))
        state[name] = "visiting"
        for dep in entities[name].depends_on:
            visit(dep, (*chain, name))
        state[name] = "done"
        ordered.append(entities[name])

    for name in entities:
        visit(name, ())
    return ordered


def hook_manager(plugins: Sequence[object] = ()) -> pluggy.PluginManager:
    """The pluggy manager with the hookspecs and the given plugin objects registered."""
    pm = pluggy.PluginManager("dossiersync")
    pm.add_hookspecs(hookspecs)
    for plugin in plugins:
        if pm.get_name(plugin) is None and not pm.is_registered(plugin):
            pm.register(plugin)
    pm.check_pending()
    return pm
