"""Finding implementations: the registry, entry-point discovery, and loading by name.

Built-ins and third-party plug-ins are found the same way: each is an entry point in
the group ``backprop_harness.impls`` (the built-ins are declared in this project's
own ``pyproject.toml``), whose name is the implementation's name and whose value is
anything ``resolve`` accepts as ``module:attr``. Entry points of this distribution
load first, so a plug-in cannot take a built-in's name.
"""

from __future__ import annotations

import importlib
import threading
import warnings

from harness.core.containment import described, user_interrupted
from harness.core.protocol import Implementation, ImplementationError, as_implementation, availability

ENTRY_POINT_GROUP = "backprop_harness.impls"
DISTRIBUTION = "backprop-harness"

_REGISTRY: dict[str, Implementation] = {}
_LOAD_FAILURES: dict[str, str] = {}
_FROM_ENTRY_POINTS: set[str] = set()
# The dict the entry points were loaded into: being loaded belongs to the dict, not to
# the module, so a dict put in _REGISTRY's place (a test's monkeypatch) is loaded on its
# own, and the one put back is not taken as loaded because another one was.
_loaded_into: dict[str, Implementation] | None = None
_LOADING = threading.RLock()  # another thread waits for a load under way, never sees half of it


def register(impl: Implementation) -> Implementation:
    """Add ``impl`` to the registry under ``impl.name`` (replacing one of that name)."""
    if not impl.name:
        raise ImplementationError(f"{impl!r} has no name: set its 'name' attribute")
    _REGISTRY[impl.name] = impl
    return impl


def _entry_points():
    from importlib.metadata import entry_points

    found = list(entry_points(group=ENTRY_POINT_GROUP))

    def ours_first(ep):
        dist = getattr(ep, "dist", None)
        return 0 if dist is not None and dist.name == DISTRIBUTION else 1

    return sorted(found, key=ours_first)


def _load() -> None:
    global _loaded_into
    with _LOADING:
        if _loaded_into is _REGISTRY:
            return  # (a plug-in asking while it is being loaded sees those loaded so far, as before)
        target = _loaded_into = _REGISTRY
        try:
            _load_into(target)
        except BaseException:
            _loaded_into = None  # interrupted: loaded again next time, not left half done
            raise


def _load_into(target: dict[str, Implementation]) -> None:
    already = {name for name in target if name in _FROM_ENTRY_POINTS}  # a copy of a loaded registry's
    for ep in _entry_points():
        if ep.name in already:
            continue
        if ep.name in target:
            warnings.warn(f"{ENTRY_POINT_GROUP} entry point {ep.name!r} ({ep.value}) ignored: the name is taken", stacklevel=3)
            continue
        try:
            impl = as_implementation(ep.load(), name=ep.name)
            impl.name = ep.name  # the entry point's name is the implementation's name
            target[ep.name] = impl
            _FROM_ENTRY_POINTS.add(ep.name)
        except BaseException as exc:  # a broken plug-in must not break the harness, even one that exits
            if user_interrupted(exc):
                raise
            reason = f"{described(exc)}"
            _LOAD_FAILURES[ep.name] = reason
            warnings.warn(f"{ENTRY_POINT_GROUP} entry point {ep.name!r} ({ep.value}) failed to load: {reason}", stacklevel=3)


def declared() -> dict[str, str]:
    """Every entry point's name and value (``module:attr``), built-ins first, without
    importing any of them: what a worker process is asked to load. Names added with
    ``register`` in this process are not included (a worker cannot see them)."""
    found: dict[str, str] = {}
    for ep in _entry_points():
        found.setdefault(ep.name, ep.value)
    return found


def registered_here() -> dict[str, Implementation]:
    """The implementations given to ``register`` in this process (a conftest, a
    script), which no worker process can load: they run in this one."""
    return {name: impl for name, impl in _REGISTRY.items() if name not in _FROM_ENTRY_POINTS}


def load_one(name: str) -> Implementation:
    """The implementation of the entry point ``name``, loading that entry point alone
    (a worker process asked for one plug-in does not import the others); a name given
    to ``register`` in this process is found too."""
    if name in _REGISTRY:
        return _REGISTRY[name]
    for ep in _entry_points():
        if ep.name == name:
            impl = as_implementation(ep.load(), name=ep.name)
            impl.name = ep.name
            return impl
    raise ImplementationError(f"--impl {name!r}: no implementation of that name (registered: "
                              f"{', '.join(sorted(declared())) or 'none'}; or give module:attr)")


def refresh() -> None:
    """Forget entry-point implementations and discover them again (after installing a
    plug-in into a running interpreter, say). ``register`` calls stay."""
    global _loaded_into
    with _LOADING:
        for name in list(_FROM_ENTRY_POINTS):
            _REGISTRY.pop(name, None)
        _FROM_ENTRY_POINTS.clear()
        _LOAD_FAILURES.clear()
        _loaded_into = None
        _load()


def implementations() -> dict[str, Implementation]:
    """Every registered implementation (built-ins and entry points), available or not."""
    _load()
    return dict(_REGISTRY)


def load_failures() -> dict[str, str]:
    """Entry points that failed to load, with the reason."""
    _load()
    return dict(_LOAD_FAILURES)


def available() -> dict[str, Implementation]:
    return {name: impl for name, impl in implementations().items() if availability(impl) is None}


class BrokenOnImport(ImplementationError):
    """The plug-in's module raised or exited while it was imported: the plug-in is
    broken (in a worker, its ERROR, and the run goes on), not the name given."""


def _names_a_missing_module(exc: BaseException, module_name: str) -> bool:
    missing = getattr(exc, "name", None) if isinstance(exc, ModuleNotFoundError) else None
    return bool(missing) and (module_name == missing or module_name.startswith(missing + "."))


def resolve(target) -> Implementation:
    """An implementation from a registered name, ``"module:attr"``, or an object."""
    if not isinstance(target, str):
        return as_implementation(target)
    registry = implementations()
    if target in registry:
        return registry[target]
    if ":" not in target:
        known = ", ".join(sorted(registry)) or "none"
        raise ImplementationError(f"--impl {target!r}: no implementation of that name (registered: {known}; or give module:attr)")
    module_name, _, attr = target.partition(":")
    try:
        obj = importlib.import_module(module_name)
    except BaseException as exc:  # a module that raises anything -- or exits -- on import
        if user_interrupted(exc):
            raise
        message = f"--impl {target!r}: cannot import module {module_name!r}: {described(exc)}"
        if _names_a_missing_module(exc, module_name) or isinstance(exc, ImplementationError):
            raise ImplementationError(message) from None  # the name or the declaration is wrong
        raise BrokenOnImport(message) from None
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ImplementationError(f"--impl {target!r}: module {module_name!r} has no attribute {attr!r}") from None
        except BaseException as exc:  # a module __getattr__ of its own
            if user_interrupted(exc):
                raise
            raise ImplementationError(f"--impl {target!r}: reading {attr!r} raised {described(exc)}") from None
    return as_implementation(obj, name=target)
