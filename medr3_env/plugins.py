"""One plug-in mechanism for the four extension kinds: reward terms, search backends, corpus
formats and entity extractors. Built-ins register through the same path as third parties.

A :class:`PluginRegistry` stores entries in a `catalogue <https://github.com/explosion/catalogue>`_
registry (as spaCy does) and adds what a training library needs on top: duplicate names are an
error, unknown names list what is registered with a "did you mean", every entry records where it
came from, and third-party packages add entries through the entry-point group
``medr3_env.<kind>`` without importing anything from MedR3 at install time::

    # a plug-in package's pyproject.toml
    [project.entry-points."medr3_env.backends"]
    bm25lite = "my_package.backend:Bm25LiteBackend"

A plug-in whose entry point fails to import is skipped with a warning (one broken package must
not stop every environment); asking for it by name then raises with the import error.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import logging
import threading
from collections.abc import Callable, Iterator
from importlib.metadata import entry_points
from typing import Any, Generic, Literal, TypeVar

import catalogue
from pydantic import BaseModel, ConfigDict

logger = logging.getLogger(__name__)

T = TypeVar("T")
Origin = Literal["builtin", "entry point", "runtime"]
KINDS = ("rewards", "backends", "formats", "extractors")


class PluginError(ValueError):
    """A plug-in could not be registered (duplicate name, wrong type or signature)."""


class UnknownPluginError(PluginError, KeyError):
    """No plug-in of this kind has this name; the message lists the registered names."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class PluginInfo(BaseModel):
    """One registered plug-in, as ``medr3 plugins`` lists it."""

    model_config = ConfigDict(frozen=True)

    kind: str
    name: str
    origin: Origin
    source: str
    """``module:qualname`` of the registered object, or the entry point's value."""
    distribution: str | None = None
    """The installed package an entry point came from."""
    description: str = ""


class PluginRegistry(Generic[T]):
    """Named plug-ins of one kind.

    Args:
        kind: ``rewards``, ``backends``, ``formats`` or ``extractors``; the entry-point group is
            ``medr3_env.<kind>``.
        label: what one entry is called in messages ("reward term", "search backend").
        builtins: a module that registers the built-in entries when imported (imported lazily, on
            the first lookup, so that importing the registry stays cheap and cycle-free).
        check: ``"module:function"`` called as ``check(name, obj)`` before an entry is stored; it
            raises :class:`PluginError` or returns the object to store (e.g. a wrapped function).
            Given as a path so that the registry never imports the kind's module eagerly.
    """

    def __init__(
        self, kind: str, label: str, *, builtins: str | None = None, check: str | None = None
    ) -> None:
        self.kind = kind
        self.label = label
        self.group = f"medr3_env.{kind}"
        self._catalogue = catalogue.create("medr3_env", kind, entry_points=False)
        self._builtins = builtins
        self._check = check
        self._info: dict[str, PluginInfo] = {}
        self._broken: dict[str, str] = {}
        self._loaded = False
        self._lock = threading.RLock()

    # ------------------------------------------------------------------ registration
    def register(
        self,
        name: str,
        obj: Any = None,
        *,
        overwrite: bool = False,
        description: str | None = None,
        source: str | None = None,
        _origin: Origin | None = None,
        _distribution: str | None = None,
    ) -> Any:
        """Register ``obj`` as ``name``; without ``obj``, return a decorator that does."""
        if obj is None:
            return lambda target: self.register(
                name, target, overwrite=overwrite, description=description, source=source
            )
        if not isinstance(name, str) or not name.isidentifier():
            raise PluginError(f"{self.label} name must be an identifier, got {name!r}")
        with self._lock:
            stored = self._checker()(name, obj) if self._check is not None else obj
            current = self._catalogue.get(name) if name in self._info else None
            if (
                current is not None
                and not overwrite
                and _identity(current) is not _identity(stored)
            ):
                raise PluginError(
                    f"{self.label} {name!r} is already registered "
                    f"(from {self._info[name].source}); choose another name or pass overwrite=True"
                )
            self._catalogue.register(name, func=stored)
            source = source or _source(stored)
            builtin = source.startswith("medr3_env.")
            origin = _origin or ("builtin" if builtin else "runtime")
            doc = description if description is not None else inspect.getdoc(obj) or ""
            self._info[name] = PluginInfo(
                kind=self.kind,
                name=name,
                origin=origin,
                source=source,
                distribution=_distribution,
                description=doc.strip().split("\n\n")[0].replace("\n", " "),
            )
        return obj

    def unregister(self, name: str) -> None:
        """Remove an entry (tests and notebooks)."""
        with self._lock:
            if self._info.pop(name, None) is not None:
                catalogue._remove(("medr3_env", self.kind, name))  # type: ignore[attr-defined]

    def _checker(self) -> Callable[[str, Any], Any]:
        module, _, function = (self._check or "").partition(":")
        return getattr(importlib.import_module(module), function)  # type: ignore[no-any-return]

    # ------------------------------------------------------------------ lookup
    def get(self, name: str) -> T:
        """The entry ``name``; :class:`UnknownPluginError` lists the registered names."""
        self._load()
        if name in self._info:
            return self._catalogue.get(name)  # type: ignore[no-any-return]
        if name in self._broken:
            raise UnknownPluginError(
                f"{self.label} {name!r} is installed but failed to load: {self._broken[name]}"
            )
        raise UnknownPluginError(self.unknown_message(name))

    def unknown_message(self, name: object) -> str:
        names = self.names()
        close = difflib.get_close_matches(str(name), names, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return f"unknown {self.label} {name!r}{hint}; registered: {', '.join(names) or 'none'}"

    def names(self) -> list[str]:
        self._load()
        return sorted(self._info)

    def info(self) -> list[PluginInfo]:
        self._load()
        return [self._info[name] for name in sorted(self._info)]

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._info

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    # ------------------------------------------------------------------ loading
    def refresh(self) -> None:
        """Scan the entry-point group again (a plug-in package installed into a running process)."""
        with self._lock:
            self._load()
            self._load_entry_points()

    def _load(self) -> None:
        if self._loaded:
            return
        with self._lock:
            if self._loaded:
                return
            self._loaded = True
            if self._builtins:
                importlib.import_module(self._builtins)
            self._load_entry_points()

    def _load_entry_points(self) -> None:
        with self._lock:
            for ep in entry_points(group=self.group):
                if ep.name in self._info and self._info[ep.name].origin == "entry point":
                    continue  # already loaded by an earlier scan
                if ep.name in self._info:
                    logger.warning(
                        "%s entry point %r (%s) ignored: the name is already registered by %s",
                        self.kind,
                        ep.name,
                        ep.value,
                        self._info[ep.name].source,
                    )
                    continue
                try:
                    obj = ep.load()
                    self.register(
                        ep.name,
                        obj,
                        source=ep.value,
                        _origin="entry point",
                        _distribution=ep.dist.name if ep.dist else None,
                    )
                except Exception as exc:  # a broken plug-in must not break every environment
                    self._broken[ep.name] = f"{ep.value}: {type(exc).__name__}: {exc}"
                    logger.warning(
                        "could not load %s entry point %s (%s): %s",
                        self.kind,
                        ep.name,
                        ep.value,
                        exc,
                    )


def _identity(obj: Any) -> Any:
    return getattr(obj, "fn", obj)  # a reward term is the same term when it wraps the same function


def _source(obj: Any) -> str:
    target = _identity(obj)
    module = getattr(target, "__module__", None) or type(target).__module__
    qualname = getattr(target, "__qualname__", None) or type(target).__qualname__
    return f"{module}:{qualname}"


class registry:  # noqa: N801  (a namespace, named like spaCy's ``registry``)
    """The four registries. ``registry.backends.get("tantivy")`` etc."""

    rewards: PluginRegistry[Any] = PluginRegistry(
        "rewards",
        "reward term",
        builtins="medr3_env.rewards.builtin",
        check="medr3_env.rewards.registry:as_term",
    )
    backends: PluginRegistry[Any] = PluginRegistry(
        "backends",
        "search backend",
        builtins="medr3_env.search.builtin",
        check="medr3_env.search.base:check_backend",
    )
    formats: PluginRegistry[Any] = PluginRegistry(
        "formats",
        "corpus format",
        builtins="medr3_env.corpora.specs",
        check="medr3_env.corpora.specs:check_format",
    )
    extractors: PluginRegistry[Any] = PluginRegistry(
        "extractors",
        "entity extractor",
        builtins="medr3_env.entities",
        check="medr3_env.entities:check_extractor_factory",
    )

    @classmethod
    def by_kind(cls) -> dict[str, PluginRegistry[Any]]:
        return {kind: getattr(cls, kind) for kind in KINDS}


def all_plugins() -> dict[str, list[PluginInfo]]:
    """Every registered plug-in by kind (``medr3 plugins``)."""
    return {kind: reg.info() for kind, reg in registry.by_kind().items()}
