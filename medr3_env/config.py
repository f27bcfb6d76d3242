"""Typed configuration: :class:`EnvConfig`.

A stage's defaults (allowed actions, turn budget, reward weights ...) are read from its recipe
file, ``agents/stages/<stage>.yaml`` -- the same file ``medr3 train`` trains with -- so the
recipe is the only place they are written down. The file is read once per process, on the first
config of that stage; importing MedR3 reads nothing.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Stage = Literal["reasoning", "retrieval", "joint"]
Action = Literal["search", "read", "answer"]
STAGES: tuple[Stage, ...] = ("reasoning", "retrieval", "joint")


class _FromStage:
    """Marks an :class:`EnvConfig` field whose default is the stage recipe's value."""

    def __repr__(self) -> str:
        return "FROM_STAGE"


FROM_STAGE = _FromStage()
"""``Annotated[..., FROM_STAGE]`` on an :class:`EnvConfig` field: its default comes from the
stage's recipe file. :data:`STAGE_FIELDS` is derived from these marks."""
_UNSET: Any = None  # placeholder default of a stage field; replaced during validation
SPEC_FIELDS: dict[str, Literal["corpus", "questions"]] = {
    "corpus": "corpus",
    "dataset": "questions",
}
"""The :class:`EnvConfig` fields that hold spec strings, and what each spec loads."""


class EnvConfig(BaseModel):
    """Everything that defines a MedR3 environment. The fields marked ``FROM_STAGE`` default to
    the stage's recipe values (``None`` also means "the stage's value").

    >>> EnvConfig(stage="reasoning").allowed_actions
    ('answer',)
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=False)

    stage: Stage = "joint"
    dataset: str = "starter"
    """Question-set spec: ``starter``, ``medr3:PATH``, ``pubmedqa:PATH`` ... (loader options
    after ``?``, checked when the config is made)."""
    split: str | None = "train"
    """Split of the question set (``None`` or ``"all"``: every item)."""
    corpus: str | None = None
    """Corpus spec, e.g. ``medrag:/data/medquad.jsonl?on_duplicate=first``; ``None`` uses the
    question set's own corpus (the starter corpus by default)."""
    backend: str = "whoosh"
    """A registered search backend (``medr3 plugins --kind backends``): ``whoosh`` (embedded
    default), ``tantivy`` (fast, ``medr3-env[fast]``), ``remote`` or a plug-in's."""
    search_url: str | None = None
    """Base URL of a ``medr3 serve`` server; required by, and only used with, ``backend="remote"``."""
    index_dir: Path | None = None
    """A prebuilt index (``medr3 index build``); skips the cache. It is searched with the backend
    that built it: the environment's config names that backend once the index is open."""
    cache_dir: Path | None = None
    """Index cache; default ``$MEDR3_CACHE_DIR`` or the user cache dir."""
    entity_extractor: str = "auto"
    """A registered extractor spec ``NAME[:ARGUMENT]`` (``medr3 plugins --kind extractors``):
    ``auto`` (scispaCy model if installed, else the lexicon), ``lexicon``, ``lexicon:SOURCES``,
    ``spacy:MODEL``, ``none`` or a plug-in's."""

    # The stage fields (marked FROM_STAGE) are always set once the config is validated, so they
    # are typed without ``None``; their values live in ``agents/stages/<stage>.yaml``.
    top_k: Annotated[int, FROM_STAGE] = Field(_UNSET, ge=1, le=50)
    max_turns: Annotated[int, FROM_STAGE] = Field(_UNSET, ge=1, le=64)
    max_searches: Annotated[int, FROM_STAGE] = Field(_UNSET, ge=0, le=64)
    allowed_actions: Annotated[tuple[Action, ...], FROM_STAGE] = Field(_UNSET)
    require_search_before_read: bool = True
    """Only ids returned by an earlier search in this episode may be read."""
    max_doc_chars: int = Field(6_000, ge=200)
    """Longer documents are cut when read (the cut is marked)."""

    reward_weights: Annotated[dict[str, float], FROM_STAGE] = Field(_UNSET)
    answer_metric: Literal["em", "f1"] = "em"
    retrieval_metric: Literal["recall", "ndcg"] = "recall"
    evidence_metric: Literal["f1", "precision", "recall"] = "f1"
    min_reasoning_words: Annotated[int, FROM_STAGE] = Field(_UNSET, ge=0)
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

    @field_validator("entity_extractor")
    @classmethod
    def _registered_extractor(cls, value: str) -> str:
        from medr3_env.plugins import registry

        name = value.partition(":")[0].strip()
        if name not in registry.extractors:
            raise ValueError(registry.extractors.unknown_message(name))
        return value

    @field_validator(*SPEC_FIELDS)
    @classmethod
    def _valid_spec(cls, value: str | None, info: Any) -> str | None:
        """Format and loader options are checked now (nothing is read): a typo in an option
        fails when the config is made, not when the index build starts."""
        if value is None:
            return value
        from medr3_env.corpora.specs import check_spec

        check_spec(value, SPEC_FIELDS[info.field_name])
        return value

    @field_validator("reward_weights")
    @classmethod
    def _known_terms(cls, value: dict[str, float]) -> dict[str, float]:
        from medr3_env.plugins import registry

        known = registry.rewards.names()
        unknown = sorted(set(value) - set(known))
        if unknown:
            raise ValueError(f"unknown reward term(s) {unknown}; registered terms: {known}")
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
        missing = [field for field in STAGE_FIELDS if field not in self.model_fields_set]
        if missing:
            # Not recorded as set: a config re-validated with another stage takes that stage's
            # defaults (``model_dump(exclude_unset=True)`` leaves these out).
            defaults = stage_defaults(self.stage)
            for field in missing:
                object.__setattr__(self, field, getattr(defaults, field))
        return self

    @property
    def search_enabled(self) -> bool:
        return "search" in self.allowed_actions


STAGE_FIELDS: tuple[str, ...] = tuple(
    name for name, field in EnvConfig.model_fields.items() if FROM_STAGE in field.metadata
)
"""The :class:`EnvConfig` fields whose default is the stage's (derived from the marks)."""


def packaged_stage_file(stage: Stage) -> Path:
    """The packaged recipe file of a stage (``agents/stages/STAGE.yaml``)."""
    return Path(str(resources.files("medr3_env.agents") / "stages" / f"{stage}.yaml"))


def read_stage_file(path: Path) -> dict[str, Any]:
    """The YAML mapping of a stage file; ``FileNotFoundError``/``ValueError`` name the file."""
    import yaml

    if not path.is_file():
        raise FileNotFoundError(f"stage config {str(path)!r} does not exist")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML ({' '.join(str(exc).split())})") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a stage config must be a YAML mapping")
    return data


@cache
def packaged_recipe(stage: Stage) -> Mapping[str, Any]:
    """The packaged recipe of ``stage`` as read from its YAML file (read once per process)."""
    return read_stage_file(packaged_stage_file(stage))


@cache
def stage_defaults(stage: Stage) -> EnvConfig:
    """The :class:`EnvConfig` of ``stage`` with nothing else set: the stage fields as its
    packaged recipe gives them, every other field at its default."""
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; stages: {', '.join(STAGES)}")
    recipe = packaged_recipe(stage)
    missing = [f for f in STAGE_FIELDS if recipe.get(f) is None]
    if missing:  # a broken installation: say which file lacks what
        raise ValueError(f"{packaged_stage_file(stage)} does not set {', '.join(missing)}")
    # Every stage field is given, so this validation does not ask for defaults again.
    return EnvConfig.model_validate({"stage": stage, **{f: recipe[f] for f in STAGE_FIELDS}})


class _StageDefaults(Mapping[Stage, EnvConfig]):
    """``STAGE_DEFAULTS[stage]``: :func:`stage_defaults` as a read-only mapping."""

    def __getitem__(self, stage: Stage) -> EnvConfig:
        if stage not in STAGES:
            raise KeyError(stage)
        return stage_defaults(stage)

    def __iter__(self) -> Iterator[Stage]:
        return iter(STAGES)

    def __len__(self) -> int:
        return len(STAGES)

    def __repr__(self) -> str:
        return f"STAGE_DEFAULTS({', '.join(STAGES)}; from agents/stages/*.yaml)"


STAGE_DEFAULTS: Mapping[Stage, EnvConfig] = _StageDefaults()
"""Each stage's :class:`EnvConfig` with nothing else set, e.g.
``STAGE_DEFAULTS["reasoning"].max_turns`` (read from the recipe file on first use)."""
