"""Composition: evaluate the configured terms, check their ranges, and form the weighted sum."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from medr3_env.rewards.context import EpisodeContext
from medr3_env.rewards.registry import RewardTerm, get_reward

logger = logging.getLogger(__name__)


class RewardTermError(RuntimeError):
    """A term raised or returned a value outside its declared range."""

    def __init__(self, term: str, item_id: str, message: str) -> None:
        self.term = term
        self.item_id = item_id
        super().__init__(f"reward term {term!r} failed on item {item_id!r}: {message}")


@dataclass
class StepRewards:
    """The outcome of one evaluation: raw values, applicability, errors and the weighted total."""

    values: dict[str, float] = field(default_factory=dict)
    not_applicable: set[str] = field(default_factory=set)
    errors: dict[str, str] = field(default_factory=dict)
    total: float = 0.0


class RewardComposer:
    """Weighted sum of registered terms: ``total = sum(weight[name] * value[name])``."""

    def __init__(self, weights: Mapping[str, float], *, on_error: str = "raise") -> None:
        self.weights = dict(weights)
        self.terms: list[RewardTerm] = [get_reward(name) for name in self.weights]
        self.on_error = on_error

    def evaluate(self, ctx: EpisodeContext, *, final: bool) -> StepRewards:
        """Dense terms every step; terminal terms only when ``final``."""
        out = StepRewards()
        for term in self.terms:
            if term.when == "terminal" and not final:
                continue
            try:
                value = term(ctx)
                if value is not None:
                    value = float(value)
                    if not math.isfinite(value) or not term.low - 1e-9 <= value <= term.high + 1e-9:
                        raise ValueError(
                            f"returned {value!r}, outside its range [{term.low}, {term.high}]"
                        )
            except Exception as exc:
                error = RewardTermError(term.name, ctx.item.id, f"{type(exc).__name__}: {exc}")
                if self.on_error == "raise":
                    raise error from exc
                logger.warning("%s", error)
                out.errors[term.name] = str(error)
                continue
            if value is None:
                out.not_applicable.add(term.name)
                value = 0.0
            out.values[term.name] = value
            out.total += self.weights[term.name] * value
        return out
