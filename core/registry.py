"""Finding and loading plugins: one way per kind, and one plugin manager.

- Endpoints: a stevedore driver per endpoint role (``DriverManager``, the name the
  configuration gives); entities: stevedore's named extensions, the names a dossier
  enables (``NamedExtensionManager``). A plugin that cannot be found or loaded is a
  ``PluginError`` naming it, its target and its distribution.
- Hook-only plugins (the ``dossiersync`` group): pluggy's own entry-point loading, into
  the process's one plugin manager (:func:`plugin_manager`), which also holds the
  hookspecs and every entity object once loaded (an entity may implement hooks too).
  Each dossier calls the hooks through :func:`dossier_hooks`, which leaves out the
  entities that dossier does not enable and the hook-only plugins it does not name.

Nothing else reads entry points: ``importlib.metadata`` is asked only which distribution
declares one, to name it in a message or a listing.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from typing import TYPE_CHECKING, Any

import pluggy

from . import hookspecs, messages
from .errors import PluginError
from .lang import said, said_of

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
    """The hooks a plugin object, class or module implements (marked ``@hookimpl``), as
    the plugin manager reads them."""
    pm = plugin_manager()
    return tuple(
        sorted(
            name
            for name in dir(plugin)
            if name.startswith("dossiersync_") and pm.parse_hookimpl_opts(plugin, name) is not None
        )
    )


def _distribution(group: str, name: str) -> metadata.Distribution | None:
    """The distribution declaring an entry point: named in messages and listings."""
    for ep in metadata.entry_points(group=group, name=name):
        if ep.dist is not None:
            return ep.dist
    return None


def _describe(group: str, name: str, target: str) -> str:
    dist = _distribution(group, name)
    named = dist.name if dist else said("an unknown distribution")
    return said(
        "{group} plugin {name} ({target}, from {distribution})",
        group=group,
        name=repr(name),
        target=target,
        distribution=named,
    )


def _raise_load_failure(manager: Any, ep: metadata.EntryPoint, exc: BaseException) -> None:
    described = _describe(manager.namespace, ep.name, ep.value)
    raise PluginError(
        said("cannot load {plugin}: {error}", plugin=described, error=str(exc))
    ) from exc


def _fresh(group: str) -> None:
    """Have stevedore read ``group`` anew at its next manager: it keeps each group's entry
    points for the life of the process (``ExtensionManager.ENTRY_POINT_CACHE``), so a
    plugin on a path added since would not be found. Its own cache, by ``sys.path``,
    keeps the reading cheap while nothing changed."""
    from stevedore import ExtensionManager

    ExtensionManager.ENTRY_POINT_CACHE.pop(group, None)


def _entry_points(group: str) -> list[metadata.EntryPoint]:
    """The entry points of an endpoint or entity group, as stevedore finds them (none
    loaded)."""
    from stevedore import NamedExtensionManager

    _fresh(group)
    listed = NamedExtensionManager(group, names=[]).list_entry_points()
    return sorted(listed, key=lambda ep: ep.name)


def list_plugins() -> list[PluginInfo]:
    """Every plugin found, each one loaded to say whether it loads: endpoints and
    entities by stevedore, hook-only plugins by the plugin manager."""
    from stevedore import ExtensionManager

    found = []
    for group in (ENDPOINTS, ENTITIES):
        _fresh(group)
        errors: dict[str, str] = {}

        def failed(manager: Any, ep: metadata.EntryPoint, exc: BaseException) -> None:
            errors[ep.name] = f"{type(exc).__name__}: {exc}"  # noqa: B023 - called at once

        manager: ExtensionManager[Any] = ExtensionManager(
            group, invoke_on_load=False, on_load_failure_callback=failed
        )
        loaded = {ext.name: ext.plugin for ext in manager.extensions}
        for ep in sorted(manager.list_entry_points(), key=lambda ep: ep.name):
            dist = _distribution(group, ep.name)
            plugin = loaded.get(ep.name)
            found.append(
                PluginInfo(
                    group=group,
                    name=ep.name,
                    target=ep.value,
                    distribution=dist.name if dist else None,
                    version=dist.version if dist else None,
                    error=errors.get(ep.name),
                    hooks=implemented_hooks(plugin) if plugin is not None else (),
                )
            )
    try:
        pm = plugin_manager()
    except PluginError as exc:
        found.append(PluginInfo(HOOKS, "?", "?", None, None, error=said_of(exc)))
        return found
    dists = {id(plugin): dist for plugin, dist in pm.list_plugin_distinfo()}
    for name in sorted(_hook_plugins):
        plugin = pm.get_plugin(name)
        facade = dists.get(id(plugin))
        found.append(
            PluginInfo(
                group=HOOKS,
                name=name,
                target=getattr(plugin, "__name__", type(plugin).__qualname__),
                distribution=facade.project_name if facade else None,
                version=facade.version if facade else None,
                hooks=tuple(sorted(c.name for c in pm.get_hookcallers(plugin) or ())),
            )
        )
    return found


def load_endpoint(name: str) -> Any:
    """The endpoint class registered under ``name`` in ``dossiersync.endpoints``."""
    from stevedore import DriverManager
    from stevedore.exception import NoMatches

    _fresh(ENDPOINTS)
    try:
        manager: DriverManager[Any] = DriverManager(
            ENDPOINTS,
            name,
            invoke_on_load=False,
            on_load_failure_callback=_raise_load_failure,
        )
    except NoMatches:
        available = ", ".join(ep.name for ep in _entry_points(ENDPOINTS)) or said("none")
        raise PluginError(
            said(
                "endpoint plugin {name} not found in {group} (available: {available})",
                name=repr(name),
                group=ENDPOINTS,
                available=available,
            )
        ) from None
    return manager.driver


def installed_plugins() -> set[str]:
    """Names of every plugin installed, in any group: what ``[plugins.<name>]`` may name."""
    endpoints_and_entities = {
        ep.name for group in (ENDPOINTS, ENTITIES) for ep in _entry_points(group)
    }
    plugin_manager()  # the hook-only plugins, loaded
    return endpoints_and_entities | _hook_plugins


def installed_entities() -> set[str]:
    """Names of the entity plugins installed (none of them loaded)."""
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

    _fresh(ENTITIES)
    missing: list[str] = []
    manager: NamedExtensionManager[Any] = NamedExtensionManager(
        ENTITIES,
        wanted,
        invoke_on_load=True,
        name_order=True,
        on_load_failure_callback=_raise_load_failure,
        on_missing_entrypoints_callback=lambda names: missing.extend(sorted(names)),
    )
    if missing:
        available = ", ".join(ep.name for ep in _entry_points(ENTITIES)) or said("none")
        raise PluginError(
            said(
                "entity plugin(s) {names} not found in {group} (available: {available}); "
                "check the dossier's 'entities' list",
                names=", ".join(missing),
                group=ENTITIES,
                available=available,
            )
        )
    entities: dict[str, Entity] = {}
    for ext in manager.extensions:
        if not isinstance(ext.obj, Entity):
            raise PluginError(
                said(
                    "{group} plugin {name} is not a dossiersync Entity",
                    group=ENTITIES,
                    name=repr(ext.name),
                )
            )
        if hasattr(ext.obj, "pass_class"):
            # its sync would silently run the generic pass: said instead
            raise PluginError(
                said(
                    "{group} plugin {name} ({target}) defines pass_class, which dossiersync "
                    "no longer calls: its own passes are gone; say what it needs with "
                    "children, hooks and the override points of dossiersync.plugin.Entity "
                    "(docs/plugins.md)",
                    group=ENTITIES,
                    name=repr(ext.name),
                    target=ext.entry_point_target,
                )
            )
        entities[ext.name] = ext.obj
    return entities


def dependency_order(entities: dict[str, Entity]) -> list[Entity]:
    """Entities sorted so each comes after those it depends on (when enabled)."""
    ordered: list[Entity] = []
    state: dict[str, str] = {}

    def visit(name: str, chain: tuple[str, ...]) -> None:
        if state.get(name) == "done" or name not in entities:
            return
        if state.get(name) == "visiting":
            cycle = " -> ".join((*chain, name))
            raise PluginError(said("entity dependency cycle: {cycle}", cycle=cycle))
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
#: the names of the hook-only plugins the manager loaded (the ``dossiersync`` group)
_hook_plugins: set[str] = set()
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
            raise PluginError(
                said("cannot load the {group} hook plugins: {error}", group=HOOKS, error=str(exc))
            ) from exc
        _hook_plugins.update(name for name, _ in pm.list_name_plugin() if name)
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


def hook_only_plugins() -> set[str]:
    """The names of the hook-only plugins installed (loaded): what a dossier's
    ``plugins`` may name."""
    plugin_manager()
    return set(_hook_plugins)


class DossierHooks:
    """The hooks as one dossier calls them: only the entities that dossier enables
    (another dossier's entity is not asked about this one) and the hook-only plugins it
    names (every one when it names none)."""

    def __init__(self, enabled: Sequence[Entity], plugins: Sequence[str] | None = None) -> None:
        self._pm = plugin_manager()
        mine = {id(e) for e in enabled}
        with _lock:
            others: list[object] = [e for e in _entities.values() if id(e) not in mine]
            if plugins is not None:
                left_out = sorted(_hook_plugins - set(plugins))
                others += [p for p in map(self._pm.get_plugin, left_out) if p is not None]
        self._others = others
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


def dossier_hooks(enabled: Sequence[Entity], plugins: Sequence[str] | None = None) -> Any:
    """The hook caller of a dossier whose enabled entities are ``enabled`` and whose
    hook-only plugins are ``plugins`` (``None``: every installed one)."""
    return DossierHooks(enabled, plugins)


def _load_installed_entities() -> None:
    for name in sorted(installed_entities()):
        try:
            load_entities([name])
        except PluginError:
            continue  # a broken plugin's records keep their names as written


# an incident's words of an entity no sync of this process has loaded (the incidents'
# page, ``dossiersync incidents``): its class, once loaded, declares them
messages.entity_loader = _load_installed_entities
