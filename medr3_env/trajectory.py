"""Trajectory records: one JSON line per episode with every turn, observation and reward term,
enough to inspect an episode or replay it deterministically (``medr3 replay FILE --check``).

Schema history:

* **1**: item, seed, config, turns (action text, kind, query, hits, read ids, observation,
  step reward and terms), final answer, totals.
* **2**: adds the initial observation, the parsed action of each turn (argument, reasoning,
  trailing text), terms that did not apply or failed, and what the index was built from
  (``corpus_fingerprint``, ``entity_extractor``, ``medr3_version``).
* **3**: adds the parser's error message of each turn (``parse_error``), the documents each
  reward term used on each step (``term_documents``) and the episode's evidence documents
  (``evidence_doc_ids``). Everything a turn holds is copied from the environment's ``info``;
  nothing is parsed again.

Older files still load; the fields they lack are then empty (``None`` or empty containers).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError, field_validator

from medr3_env.corpora.records import QAItem
from medr3_env.jsonl import JsonlError, iter_lines
from medr3_env.validation import validation_line

TRAJECTORY_SCHEMA_VERSION = 3
SUPPORTED_SCHEMA_VERSIONS = (1, 2, 3)


class TrajectoryFormatError(ValueError):
    """A line of a trajectory file is not a trajectory record; the message names file and line."""

    def __init__(self, reason: str, *, path: str | Path, line: int) -> None:
        self.reason = reason
        self.path = str(path)
        self.line = line
        super().__init__(f"{self.path}, line {line}: {reason}")


def _version_message(version: object) -> str:
    known = ", ".join(map(str, SUPPORTED_SCHEMA_VERSIONS))
    return (
        f"trajectory schema version {version} is not supported (this medr3_env reads {known}); "
        "upgrade medr3_env"
    )


class TurnRecord(BaseModel):
    """One model turn, what the environment did with it, and the step's reward."""

    index: int
    """1-based turn number."""
    action_text: str
    """The turn the environment acted on (``info["action_text"]``): the text passed to
    ``env.step``, a bytes turn decoded as UTF-8 (files before v3 hold ``""`` for bytes turns)."""
    action: str
    """``search``, ``read``, ``answer`` or ``invalid``."""
    error: str | None = None
    """Error code of a malformed or refused turn (see the environment contract)."""
    query: str | None = None
    argument: str | None = None
    """Text inside the action tag, ``None`` when the turn did not parse (v2; ``None`` in v1)."""
    reasoning: str | None = None
    """Reasoning the parser found before the action tag (v2)."""
    trailing_text: bool = False
    """Text followed the action tag (v2)."""
    parse_error: str | None = None
    """The parser's message for a turn that did not parse (v3)."""
    retrieved: list[tuple[str, float]] = Field(default_factory=list)
    """(doc id, score) of this turn's search hits, best first."""
    read_ids: list[str] = Field(default_factory=list)
    """Ids read so far in the episode."""
    observation: str
    """The environment's feedback for this turn (``""`` on the last turn)."""
    reward: float
    """The step reward: weighted sum of ``reward_terms``."""
    reward_terms: dict[str, float]
    """Raw value of each term evaluated on this step."""
    reward_not_applicable: list[str] = Field(default_factory=list)
    reward_errors: dict[str, str] = Field(default_factory=dict)
    term_documents: dict[str, list[str]] = Field(default_factory=dict)
    """Ids of the documents each term evaluated on this step used (``info["term_documents"]``,
    v3)."""


class TrajectoryRecord(BaseModel):
    """One episode. ``schema_version`` changes when fields are added or change meaning."""

    schema_version: int = TRAJECTORY_SCHEMA_VERSION
    item: QAItem
    seed: int | None = None
    config: dict[str, Any]
    """``EnvConfig.model_dump(mode="json")`` of the environment that ran the episode."""
    initial_observation: str | None = None
    """What ``reset`` returned: instructions plus the question (v2)."""
    turns: list[TurnRecord]
    final_answer: str | None
    correct: bool
    terminated: bool
    truncated: bool
    reward_terms: dict[str, float]
    """Raw value of each term summed over the episode."""
    reward_weights: dict[str, float]
    reward_total: float
    """The episode return: Σ weight × term (equals the sum of step rewards)."""
    evidence_entities: list[str] | None = None
    """The entities the evidence term counted (``info["evidence"]["entities"]``); ``None`` when the
    term was not weighted, and in files written before it was recorded."""
    evidence_doc_ids: list[str] | None = None
    """The documents the evidence term used (``info["evidence"]["doc_ids"]``, v3)."""
    corpus_fingerprint: str | None = None
    """Fingerprint of the indexed corpus, when the episode had a search index (v2)."""
    entity_extractor: str | None = None
    """Name of the extractor the index was built with (v2)."""
    medr3_version: str | None = None

    @field_validator("schema_version")
    @classmethod
    def _known_version(cls, value: int) -> int:
        if value not in SUPPORTED_SCHEMA_VERSIONS:
            raise ValueError(_version_message(value))
        return value

    @property
    def stage(self) -> str:
        """The training stage the episode ran in."""
        return str(self.config.get("stage", "unknown"))


def write_jsonl(records: Iterable[BaseModel], path: str | Path) -> Path:
    """Write one record per line (UTF-8) and return the path; parent folders are created."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(record.model_dump_json() + "\n")
    return path


def read_trajectories(path: str | Path) -> Iterator[TrajectoryRecord]:
    """Yield the records of a trajectory JSONL file (schema 1 to 3); blank lines are skipped.

    Raises:
        TrajectoryFormatError: a line is not UTF-8, not JSON, of an unknown schema version or not
            a trajectory record (the message names the file and the line).
        OSError: the file cannot be opened.
    """
    for number, data in iter_lines(path):
        if isinstance(data, JsonlError):
            raise TrajectoryFormatError(data.reason, path=path, line=number)
        version = data.get("schema_version")
        if version is not None and version not in SUPPORTED_SCHEMA_VERSIONS:
            raise TrajectoryFormatError(_version_message(version), path=path, line=number)
        try:
            yield TrajectoryRecord.model_validate(data)
        except ValidationError as exc:
            reason = f"not a trajectory record ({validation_line(exc, limit=4)})"
            raise TrajectoryFormatError(reason, path=path, line=number) from exc


class TrajectoryRecorder:
    """Drive a :class:`~medr3_env.env.MedR3Env` (bare or from ``gym.make``) and record the episode.

    It has the environment's ``reset``/``step`` signatures, so a training or evaluation loop can
    use it in place of the environment and call :meth:`record` when the episode ends.

        recorder = TrajectoryRecorder(env)
        obs, info = recorder.reset(seed=0)
        obs, reward, terminated, truncated, info = recorder.step("<answer>B</answer>")
        record = recorder.record()
    """

    def __init__(self, env: Any) -> None:
        self.env = env
        self._seed: int | None = None
        self._initial: str | None = None
        self._turns: list[TurnRecord] = []
        self._last: tuple[bool, bool, dict[str, Any]] | None = None

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[str, dict[str, Any]]:
        """Reset the environment and start a new record."""
        observation, info = self.env.reset(seed=seed, options=options)
        self._seed, self._initial, self._turns, self._last = seed, observation, [], None
        return observation, info

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        """Step the environment and append the turn to the record, copied from ``info``."""
        observation, reward, terminated, truncated, info = self.env.step(action)
        parsed = info["parsed_action"]
        self._turns.append(
            TurnRecord(
                index=info["turn"],
                action_text=info["action_text"],
                action=info["action"],
                error=info["error"],
                query=info["query"],
                argument=parsed["argument"] if parsed["valid"] else None,
                reasoning=parsed["reasoning"],
                trailing_text=parsed["trailing_text"],
                parse_error=parsed["error"],
                retrieved=list(zip(info["retrieved_ids"], info["retrieved_scores"], strict=True)),
                read_ids=list(info["read_ids"]),
                observation=observation,
                reward=float(reward),
                reward_terms=dict(info["step_reward_terms"]),
                reward_not_applicable=list(info["reward_not_applicable"]),
                reward_errors=dict(info.get("reward_errors", {})),
                term_documents={k: list(v) for k, v in info["term_documents"].items()},
            )
        )
        self._last = (terminated, truncated, info)
        return observation, reward, terminated, truncated, info

    def record(self) -> TrajectoryRecord:
        """The episode so far as a :class:`TrajectoryRecord`.

        Raises:
            RuntimeError: no step has been taken since the last reset.
        """
        if self._last is None:
            raise RuntimeError("no step recorded since reset()")
        from medr3_env.version import __version__

        terminated, truncated, info = self._last
        evidence = info.get("evidence") or {}
        base = getattr(self.env, "unwrapped", self.env)  # gym.make() wraps the environment
        manifest = getattr(getattr(base, "searcher", None), "manifest", None)
        return TrajectoryRecord(
            item=base.current_item,
            seed=self._seed,
            config=base.config.model_dump(mode="json"),
            initial_observation=self._initial,
            turns=list(self._turns),
            final_answer=info.get("final_answer"),
            correct=bool(info.get("correct")),
            terminated=terminated,
            truncated=truncated,
            reward_terms=dict(info["reward_terms"]),
            reward_weights=dict(info["reward_weights"]),
            reward_total=float(info["reward_total"]),
            evidence_entities=evidence.get("entities"),
            evidence_doc_ids=evidence.get("doc_ids"),
            corpus_fingerprint=getattr(manifest, "corpus_fingerprint", None),
            entity_extractor=getattr(manifest, "entity_extractor", None),
            medr3_version=__version__,
        )
