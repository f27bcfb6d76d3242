"""The reward-term registry: :func:`register_reward`, lookup, and third-party terms from the
``medr3_env.rewards`` entry-point group."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from medr3_env.rewards.context import EpisodeContext

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "medr3_env.rewards"
When = Literal["terminal", "step"]
RewardFn = Callable[["EpisodeContext"], "float | None"]


class RewardRegistrationError(ValueError):
    """A reward term could not be registered (duplicate name, wrong signature, bad range)."""


@dataclass(frozen=True)
class RewardTerm:
    """A registered term: ``fn(ctx) -> float | None`` (``None`` means not applicable)."""

    name: str
    fn: RewardFn
    low: float = 0.0
    high: float = 1.0
    when: When = "terminal"
    description: str = ""

    def __call__(self, ctx: EpisodeContext) -> float | None:
        return self.fn(ctx)


_REGISTRY: dict[str, RewardTerm] = {}
_entry_points_loaded = False


def _check_signature(name: str, fn: Callable[..., object]) -> None:
    if not callable(fn):
        raise RewardRegistrationError(f"reward term {name!r}: {fn!r} is not callable")
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError) as exc:
        raise RewardRegistrationError(f"reward term {name!r}: cannot inspect signature") from exc
    required = [
        p
        for p in signature.parameters.values()
        if p.default is inspect.Parameter.empty
        and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    ]
    positional = [
        p
        for p in signature.parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)
    ]
    if len(required) != 1 or not positional or required[0].kind == inspect.Parameter.KEYWORD_ONLY:
        raise RewardRegistrationError(
            f"reward term {name!r}: expected a function of one argument, fn(ctx: EpisodeContext) "
            f"-> float | None; got {fn.__name__}{signature}"
        )


def register_reward(
    name: str,
    *,
    range: tuple[float, float] = (0.0, 1.0),  # noqa: A002  (mirrors the documented API)
    when: When = "terminal",
    description: str | None = None,
    overwrite: bool = False,
) -> Callable[[RewardFn], RewardFn]:
    """Register ``fn(ctx) -> float | None`` as reward term ``name``.

    >>> @register_reward("short_answer", range=(0.0, 1.0))
    ... def short_answer(ctx):
    ...     return 1.0 if ctx.final_answer and len(ctx.final_answer) < 40 else 0.0

    ``when="terminal"`` (default) evaluates the term once, when the episode ends;
    ``when="step"`` evaluates it after every step (a dense term). Return ``None`` when the term
    does not apply to this episode; it is then reported as not applicable and contributes 0.
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise RewardRegistrationError(f"reward term name must be an identifier, got {name!r}")
    low, high = range
    if not low < high:
        raise RewardRegistrationError(
            f"reward term {name!r}: range must satisfy low < high, got {range}"
        )
    if when not in ("terminal", "step"):
        raise RewardRegistrationError(f"reward term {name!r}: when must be 'terminal' or 'step'")

    def decorator(fn: RewardFn) -> RewardFn:
        _check_signature(name, fn)
        if name in _REGISTRY and not overwrite and _REGISTRY[name].fn is not fn:
            raise RewardRegistrationError(
                f"reward term {name!r} is already registered (by {_REGISTRY[name].fn.__module__}); "
                "choose another name or pass overwrite=True"
            )
        doc = description or (inspect.getdoc(fn) or "").split("\n\n")[0]
        _REGISTRY[name] = RewardTerm(name, fn, float(low), float(high), when, doc)
        return fn

    return decorator


def unregister_reward(name: str) -> None:
    """Remove a term (mainly for tests and notebooks)."""
    _REGISTRY.pop(name, None)


def _load_entry_points() -> None:
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            obj = ep.load()
        except Exception as exc:  # a broken plug-in must not break every environment
            logger.warning("could not load reward entry point %s (%s): %s", ep.name, ep.value, exc)
            continue
        if isinstance(obj, RewardTerm):
            _REGISTRY.setdefault(ep.name, obj)
        elif ep.name not in _REGISTRY and callable(obj):
            register_reward(ep.name)(obj)


def registered_rewards() -> dict[str, RewardTerm]:
    """All registered terms by name (built-ins, decorated functions and entry points)."""
    from medr3_env.rewards import builtin  # noqa: F401  (registers the built-in terms)

    _load_entry_points()
    return dict(_REGISTRY)


def get_reward(name: str) -> RewardTerm:
    terms = registered_rewards()
    try:
        return terms[name]
    except KeyError:
        raise KeyError(f"unknown reward term {name!r}; registered terms: {sorted(terms)}") from None
