"""The read-only view of an episode that every reward term receives.

It imports no reward term: what several terms derive from the episode (the answer score, the
evidence match) is computed by the term's own module through :meth:`EpisodeContext.shared`, so
data flows one way, from the context to the terms.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar

from medr3_env.corpora.records import QAItem
from medr3_env.search.base import Hit, IndexedDocument

if TYPE_CHECKING:
    from medr3_env.config import EnvConfig

T = TypeVar("T")


@dataclass(frozen=True)
class Turn:
    """One parsed model turn and what the environment did with it."""

    index: int
    text: str
    kind: str
    """``search``, ``read``, ``answer`` or ``invalid``."""
    argument: str = ""
    reasoning: str = ""
    error_code: str | None = None
    trailing_text: bool = False
    hits: tuple[Hit, ...] = ()
    read_id: str | None = None

    @property
    def valid(self) -> bool:
        return self.kind != "invalid"


@dataclass(frozen=True)
class EpisodeContext:
    """Everything a term may look at. Terms must not mutate it (it is frozen and shared)."""

    item: QAItem
    turns: tuple[Turn, ...]
    config: EnvConfig
    documents: Mapping[str, IndexedDocument] = field(default_factory=dict)
    """Lazy lookup of every document retrieved or read in this episode, by id."""
    terminated: bool = False
    truncated: bool = False
    _shared: dict[Callable[..., Any], Any] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    @property
    def done(self) -> bool:
        return self.terminated or self.truncated

    @property
    def last_turn(self) -> Turn | None:
        return self.turns[-1] if self.turns else None

    @cached_property
    def final_answer(self) -> str | None:
        """The text inside the episode's ``<answer>``, or ``None`` if it never answered."""
        for turn in reversed(self.turns):
            if turn.kind == "answer":
                return turn.argument
        return None

    @cached_property
    def queries(self) -> tuple[str, ...]:
        return tuple(t.argument for t in self.turns if t.kind == "search")

    @cached_property
    def retrieved(self) -> tuple[tuple[Hit, ...], ...]:
        """The ranked hits of each search, in order."""
        return tuple(t.hits for t in self.turns if t.kind == "search")

    @cached_property
    def retrieved_ids(self) -> tuple[str, ...]:
        """Every retrieved id once, in the order first seen."""
        return tuple(dict.fromkeys(h.doc_id for hits in self.retrieved for h in hits))

    @cached_property
    def read_ids(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(t.read_id for t in self.turns if t.read_id))

    @cached_property
    def reasoning(self) -> str:
        """The model's reasoning over all valid turns (fake-observation turns are excluded)."""
        return "\n".join(t.reasoning for t in self.turns if t.valid and t.reasoning)

    def shared(self, fn: Callable[[EpisodeContext], T]) -> T:
        """``fn(self)``, computed once per context and shared by every caller: the terms of one
        step, ``info`` and the recorder all see the same value. For example
        ``ctx.shared(episode_evidence)`` (:mod:`medr3_env.rewards.evidence`) or
        ``ctx.shared(final_answer_score)`` (:mod:`medr3_env.rewards.answer`)."""
        try:
            return self._shared[fn]  # type: ignore[no-any-return]
        except KeyError:
            value = self._shared[fn] = fn(self)
            return value
