"""The reward-term registry: :func:`register_reward` and lookup. Terms live in
:data:`medr3_env.plugins.registry.rewards`; third-party terms come from the ``medr3_env.rewards``
entry-point group (an entry point names a :class:`RewardTerm` or a plain ``fn(ctx)``)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from medr3_env.plugins import PluginError, registry

if TYPE_CHECKING:
    from medr3_env.rewards.context import EpisodeContext

ENTRY_POINT_GROUP = registry.rewards.group  # "medr3_env.rewards"
When = Literal["terminal", "step"]
RewardFn = Callable[["EpisodeContext"], "float | None"]


class RewardRegistrationError(PluginError):
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
        doc = description or (inspect.getdoc(fn) or "").split("\n\n")[0]
        term = RewardTerm(name, fn, float(low), float(high), when, doc)
        try:
            registry.rewards.register(name, term, overwrite=overwrite, description=doc)
        except PluginError as exc:
            raise RewardRegistrationError(str(exc)) from None
        return fn

    return decorator


def as_term(name: str, obj: object) -> RewardTerm:
    """The registry's check: a :class:`RewardTerm` as is, a plain ``fn(ctx)`` wrapped with the
    default range ``[0, 1]`` (how an entry point may name a function)."""
    if isinstance(obj, RewardTerm):
        return obj
    if not callable(obj):
        raise RewardRegistrationError(f"reward term {name!r}: {obj!r} is not callable")
    _check_signature(name, obj)
    doc = (inspect.getdoc(obj) or "").split("\n\n")[0]
    return RewardTerm(name, obj, description=doc)  # type: ignore[arg-type]


def unregister_reward(name: str) -> None:
    """Remove a term (mainly for tests and notebooks)."""
    registry.rewards.unregister(name)


def registered_rewards() -> dict[str, RewardTerm]:
    """All registered terms by name (built-ins, decorated functions and entry points)."""
    return {name: registry.rewards.get(name) for name in registry.rewards.names()}


def get_reward(name: str) -> RewardTerm:
    """The term ``name``; an unknown name raises ``KeyError`` listing the registered terms."""
    return registry.rewards.get(name)  # type: ignore[no-any-return]
