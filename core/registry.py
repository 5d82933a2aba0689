"""Finding and loading plugins: stevedore by entry point, pluggy for the hooks.

One plugin manager per process (:func:`plugin_manager`): the hookspecs, the hook-only
plugins of the ``dossiersync`` entry-point group, and every entity object once loaded
(an entity may implement hooks too). Each dossier calls the hooks through
:func:`dossier_hooks`, which leaves out the entities that dossier does not enable.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from typing import TYPE_CHECKING, Any

import pluggy

from . import hookspecs
from .errors import PluginError

if TYPE_CHECKING:
    from .config import Config
    from .entity import Entity

ENDPOINTS = "dossiersync.endpoints"
ENTITIES = "dossiersync.entities"
#: hook-only plugins (a notifier, an audit trail): objects or modules with hookimpls
HOOKS = "dossiersync"
GROUPS = (ENDPOINTS, ENTITIES, HOOKS)


@dataclass(frozen=True)
class PluginInfo:
    group: str
    name: str
    target: str
    distribution: str | None
    version: str | None
    error: str | None = None
    #: the hooks it implements (``hookspecs``), by name
    hooks: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "name": self.name,
            "target": self.target,
            "distribution": self.distribution,
            "version": self.version,
            "hooks": list(self.hooks),
            "error": self.error,
        }


def implemented_hooks(plugin: object) -> tuple[str, ...]:
    """The hooks a plugin object, class or module implements (marked ``@hookimpl``)."""
    return tuple(
        sorted(
            name
            for name in dir(plugin)
            if name.startswith("dossiersync_")
            and hasattr(getattr(plugin, name, None), "dossiersync_impl")
        )
    )


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
            error: str | None = None
            hooks: tuple[str, ...] = ()
            try:
                hooks = implemented_hooks(ep.load())
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
                    hooks=hooks,
                )
            )
    return found


def _raise_load_failure(manager: Any, ep: metadata.EntryPoint, exc: BaseException) -> None:
    raise PluginError(f"cannot load {_describe(manager.namespace, ep)}: {exc}") from exc


def load_endpoint(name: str) -> Any:
    """The endpoint class registered under ``name`` in ``dossiersync.endpoints``."""
    try:
        return _driver(name)
    except PluginError:
        raise
    except Exception as exc:  # noqa: BLE001 - stevedore raises NoMatches / RuntimeError
        # maybe installed after stevedore cached this process's entry points
        for ep in metadata.entry_points(group=ENDPOINTS, name=name):
            try:
                return ep.load()
            except Exception as load_error:  # noqa: BLE001 - named in the error
                raise PluginError(
                    f"cannot load {_describe(ENDPOINTS, ep)}: {load_error}"
                ) from load_error
        available = ", ".join(ep.name for ep in _entry_points(ENDPOINTS)) or "none"
        raise PluginError(
            f"endpoint plugin {name!r} not found in {ENDPOINTS} (available: {available})"
        ) from exc


def _driver(name: str) -> Any:
    from stevedore import DriverManager

    manager: DriverManager[Any] = DriverManager(
        ENDPOINTS,
        name,
        invoke_on_load=False,
        on_load_failure_callback=_raise_load_failure,
    )
    return manager.driver


def installed_plugins() -> set[str]:
    """Names of every plugin installed now, in any group: what ``[plugins.<name>]`` may
    name."""
    return {ep.name for group in GROUPS for ep in _entry_points(group)}


def installed_entities() -> set[str]:
    """Names of the entity plugins installed now (read fresh, not from a cache)."""
    return {ep.name for ep in _entry_points(ENTITIES)}


def load_entities(names: tuple[str, ...] | list[str]) -> list[Entity]:
    """The named entities, in dependency order: one object per entity and process,
    registered with the process's plugin manager (its hooks then fire)."""
    if not names:
        return []
    wanted = list(dict.fromkeys(names))
    with _lock:
        new = [n for n in wanted if n not in _entities]
        if new:
            found = _load_new_entities(new)
            pm = _manager_locked()
            for name in new:
                entity = found[name]
                if not pm.is_registered(entity):
                    pm.register(entity, name=f"{ENTITIES}:{name}")
                _entities[name] = entity
            pm.check_pending()
            if _config is not None:  # an entity may read its table too
                _configure_only(pm, [found[name] for name in new], _config)
        loaded = {n: _entities[n] for n in wanted}
    return dependency_order(loaded)


def _load_new_entities(wanted: list[str]) -> dict[str, Entity]:
    from stevedore import NamedExtensionManager

    from .entity import Entity

    missing: list[str] = []
    manager: NamedExtensionManager[Any] = NamedExtensionManager(
        ENTITIES,
        wanted,
        invoke_on_load=True,
        name_order=True,
        on_load_failure_callback=_raise_load_failure,
        on_missing_entrypoints_callback=lambda names: missing.extend(sorted(names)),
    )
    objects = {ext.name: ext.obj for ext in manager.extensions}
    for name in missing:
        # installed after stevedore cached this process's entry points: read them afresh
        for ep in metadata.entry_points(group=ENTITIES, name=name):
            try:
                objects[name] = ep.load()()
            except Exception as exc:  # noqa: BLE001 - named in the error
                raise PluginError(f"cannot load {_describe(ENTITIES, ep)}: {exc}") from exc
            break
    absent = [n for n in wanted if n not in objects]
    if absent:
        available = ", ".join(ep.name for ep in _entry_points(ENTITIES)) or "none"
        raise PluginError(
            f"entity plugin(s) {', '.join(absent)} not found in {ENTITIES} "
            f"(available: {available}); check the dossier's 'entities' list"
        )
    entities: dict[str, Entity] = {}
    for name, obj in objects.items():
        if not isinstance(obj, Entity):
            raise PluginError(f"{ENTITIES} plugin {name!r} is not a dossiersync Entity")
        entities[name] = obj
    return entities


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


_lock = threading.RLock()
_manager: pluggy.PluginManager | None = None
_entities: dict[str, Entity] = {}
#: the configuration the plugins were last given (``dossiersync_configure``)
_config: Config | None = None


def _manager_locked() -> pluggy.PluginManager:
    global _manager
    if _manager is None:
        pm = pluggy.PluginManager("dossiersync")
        pm.add_hookspecs(hookspecs)
        try:
            pm.load_setuptools_entrypoints(HOOKS)
            pm.check_pending()
        except Exception as exc:  # noqa: BLE001 - a broken plugin is named, not a traceback
            raise PluginError(f"cannot load the {HOOKS} hook plugins: {exc}") from exc
        _manager = pm
        if _config is not None:
            pm.hook.dossiersync_configure(config=_config)
    return _manager


def _configure_only(pm: pluggy.PluginManager, plugins: list[object], config: Config) -> None:
    others = [p for p in pm.get_plugins() if all(p is not q for q in plugins)]
    pm.subset_hook_caller("dossiersync_configure", remove_plugins=others)(config=config)


def configure(config: Config) -> None:
    """Give the plugins the configuration just read (``dossiersync_configure``).

    When it has ``[plugins.*]`` tables the plugins are loaded now, so a table a plugin
    refuses is an error of the configuration; otherwise they are told when first loaded
    (a command that calls no hook loads none).  A refused configuration is not kept.
    """
    global _config
    with _lock:
        previous = _config
        if _manager is None:
            _config = config
            if config.plugins:
                try:
                    _manager_locked()  # tells them the configuration as it loads them
                except BaseException:
                    _config = previous
                    raise
            return
        _manager.hook.dossiersync_configure(config=config)
        _config = config


def plugin_manager() -> pluggy.PluginManager:
    """The process's one plugin manager (made on first use; hook-only plugins loaded)."""
    with _lock:
        return _manager_locked()


class DossierHooks:
    """The hooks as one dossier calls them: every plugin's, but only the entities that
    dossier enables (another dossier's entity is not asked about this one)."""

    def __init__(self, enabled: Sequence[Entity]) -> None:
        self._pm = plugin_manager()
        mine = {id(e) for e in enabled}
        with _lock:
            self._others = [e for e in _entities.values() if id(e) not in mine]
        self._callers: dict[str, Any] = {}

    def __getattr__(self, name: str) -> Any:
        if not name.startswith("dossiersync_"):
            raise AttributeError(name)
        caller = self._callers.get(name)
        if caller is None:
            others = [e for e in self._others if self._pm.is_registered(e)]
            caller = self._pm.subset_hook_caller(name, remove_plugins=others)
            self._callers[name] = caller
        return caller


def dossier_hooks(enabled: Sequence[Entity]) -> Any:
    """The hook caller of a dossier whose enabled entities are ``enabled``."""
    return DossierHooks(enabled)


def hooks_by_plugin() -> dict[str, list[str]]:
    """Each registered plugin's name and the hooks it implements (``dossiersync plugins``)."""
    pm = plugin_manager()
    out: dict[str, list[str]] = {}
    for name, plugin in pm.list_name_plugin():
        callers = pm.get_hookcallers(plugin) or []
        out[name] = sorted(c.name for c in callers)
    return out


def hook_manager(plugins: Sequence[object] = ()) -> pluggy.PluginManager:
    """A separate pluggy manager with the hookspecs and the given plugin objects (for
    checking a plugin object alone: the sync uses :func:`plugin_manager`)."""
    pm = pluggy.PluginManager("dossiersync")
    pm.add_hookspecs(hookspecs)
    for plugin in plugins:
        if pm.get_name(plugin) is None and not pm.is_registered(plugin):
            pm.register(plugin)
    pm.check_pending()
    return pm
