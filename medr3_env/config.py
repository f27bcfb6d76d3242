"""Typed configuration: :class:`EnvConfig` and the defaults of the three Med-R3 training stages."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Stage = Literal["reasoning", "retrieval", "joint"]
Action = Literal["search", "read", "answer"]
STAGES: tuple[Stage, ...] = ("reasoning", "retrieval", "joint")
STAGE_FIELDS = (
    "allowed_actions",
    "max_turns",
    "max_searches",
    "reward_weights",
    "min_reasoning_words",
)
"""The :class:`EnvConfig` fields whose default depends on the stage."""
_FROM_STAGE: Any = None  # placeholder default of a stage field; replaced during validation


class StageDefaults(BaseModel):
    """What a stage changes: the allowed actions, turn budget and reward weights."""

    model_config = ConfigDict(frozen=True)

    allowed_actions: tuple[Action, ...]
    max_turns: int
    max_searches: int
    reward_weights: dict[str, float]
    min_reasoning_words: int


STAGE_DEFAULTS: dict[Stage, StageDefaults] = {
    # Stage 1: reasoning only. No search/read; a bare answer without reasoning earns nothing.
    "reasoning": StageDefaults(
        allowed_actions=("answer",),
        max_turns=2,
        max_searches=0,
        reward_weights={"answer": 1.0, "format": 0.2, "retrieval": 0.0, "evidence": 0.0},
        min_reasoning_words=8,
    ),
    # Stage 2: learn to search and read; retrieval quality weighs most.
    "retrieval": StageDefaults(
        allowed_actions=("search", "read", "answer"),
        max_turns=8,
        max_searches=4,
        reward_weights={"answer": 0.5, "format": 0.2, "retrieval": 1.0, "evidence": 0.3},
        min_reasoning_words=0,
    ),
    # Stage 3: optimise answer correctness with grounded retrieval and reasoning jointly.
    "joint": StageDefaults(
        allowed_actions=("search", "read", "answer"),
        max_turns=8,
        max_searches=4,
        reward_weights={"answer": 1.0, "format": 0.2, "retrieval": 0.3, "evidence": 0.3},
        min_reasoning_words=0,
    ),
}


class EnvConfig(BaseModel):
    """Everything that defines a MedR3 environment. Fields left ``None`` take the stage default.

    >>> EnvConfig(stage="reasoning").allowed_actions
    ('answer',)
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=False)

    stage: Stage = "joint"
    dataset: str = "starter"
    """Question-set spec: ``starter``, ``medr3:PATH``, ``pubmedqa:PATH`` ..."""
    split: str | None = "train"
    """Split of the question set (``None`` or ``"all"``: every item)."""
    corpus: str | None = None
    """Corpus spec; ``None`` uses the question set's own corpus (the starter corpus by default)."""
    backend: str = "whoosh"
    """A registered search backend (``medr3 plugins --kind backends``): ``whoosh`` (embedded
    default), ``tantivy`` (fast, ``medr3-env[fast]``), ``remote`` or a plug-in's."""
    search_url: str | None = None
    """Base URL of a ``medr3 serve`` server; required by, and only used with, ``backend="remote"``."""
    index_dir: Path | None = None
    """A prebuilt index (``medr3 index build``); skips the cache."""
    cache_dir: Path | None = None
    """Index cache; default ``$MEDR3_CACHE_DIR`` or the user cache dir."""
    entity_extractor: str = "auto"
    """``auto`` (scispaCy model if installed, else the lexicon), ``lexicon`` or ``spacy:MODEL``."""

    top_k: int = Field(5, ge=1, le=50)
    # The five stage fields below default to the stage's value (``STAGE_DEFAULTS``); they are
    # always set once the config is validated, so they are typed without ``None``.
    max_turns: int = Field(_FROM_STAGE, ge=1, le=64)
    max_searches: int = Field(_FROM_STAGE, ge=0, le=64)
    allowed_actions: tuple[Action, ...] = Field(_FROM_STAGE)
    require_search_before_read: bool = True
    """Only ids returned by an earlier search in this episode may be read."""
    max_doc_chars: int = Field(6_000, ge=200)
    """Longer documents are cut when read (the cut is marked)."""

    reward_weights: dict[str, float] = Field(_FROM_STAGE)
    answer_metric: Literal["em", "f1"] = "em"
    retrieval_metric: Literal["recall", "ndcg"] = "recall"
    evidence_metric: Literal["f1", "precision", "recall"] = "f1"
    min_reasoning_words: int = Field(_FROM_STAGE, ge=0)
    on_reward_error: Literal["raise", "warn"] = "raise"
    """A reward term that raises: re-raise naming the term and item (``raise``) or record it in
    ``info["reward_errors"]`` and leave the term out of the total (``warn``)."""

    @model_validator(mode="before")
    @classmethod
    def _none_means_stage_default(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            data = {k: v for k, v in data.items() if not (k in STAGE_FIELDS and v is None)}
        return data

    @field_validator("allowed_actions")
    @classmethod
    def _answer_always_allowed(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if "answer" not in value:
            raise ValueError("allowed_actions must include 'answer' (episodes end with an answer)")
        return value

    @field_validator("backend")
    @classmethod
    def _registered_backend(cls, value: str) -> str:
        from medr3_env.plugins import registry

        if value not in registry.backends:
            raise ValueError(registry.backends.unknown_message(value))
        return value

    @field_validator("reward_weights")
    @classmethod
    def _known_terms(cls, value: dict[str, float]) -> dict[str, float]:
        from medr3_env.rewards.registry import registered_rewards

        known = registered_rewards()
        unknown = sorted(set(value) - set(known))
        if unknown:
            raise ValueError(f"unknown reward term(s) {unknown}; registered terms: {sorted(known)}")
        for name, weight in value.items():
            if (
                not isinstance(weight, (int, float))
                or weight != weight
                or abs(weight) == float("inf")
            ):
                raise ValueError(f"reward weight for {name!r} must be a finite number")
        return {name: float(weight) for name, weight in value.items()}

    @model_validator(mode="after")
    def _remote_needs_url(self) -> EnvConfig:
        from medr3_env.plugins import registry

        if not registry.backends.get(self.backend).local:
            url = self.search_url or ""
            if not url.startswith(("http://", "https://")):
                raise ValueError(
                    f"backend={self.backend!r} needs search_url='http://HOST:PORT' of a `medr3 serve` "
                    f"server (got {self.search_url!r})"
                )
        elif self.search_url is not None:
            raise ValueError(
                f"search_url is only used with backend='remote' (backend is {self.backend!r})"
            )
        return self

    @model_validator(mode="after")
    def _fill_stage_defaults(self) -> EnvConfig:
        defaults = STAGE_DEFAULTS[self.stage]
        for field in STAGE_FIELDS:
            if field not in self.model_fields_set:
                # Not recorded as set: a config re-validated with another stage takes that
                # stage's defaults (``model_dump(exclude_unset=True)`` leaves these out).
                object.__setattr__(self, field, getattr(defaults, field))
        return self

    @property
    def search_enabled(self) -> bool:
        return "search" in self.allowed_actions
