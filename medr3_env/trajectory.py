"""Trajectory records: one JSON line per episode with every turn, observation and reward term,
enough to inspect or replay an episode."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from medr3_env.corpora.records import QAItem

TRAJECTORY_SCHEMA_VERSION = 1


class TurnRecord(BaseModel):
    index: int
    action_text: str
    action: str
    """``search``, ``read``, ``answer`` or ``invalid``."""
    error: str | None = None
    query: str | None = None
    retrieved: list[tuple[str, float]] = Field(default_factory=list)
    """(doc id, score) of this turn's search hits, best first."""
    read_ids: list[str] = Field(default_factory=list)
    observation: str
    reward: float
    reward_terms: dict[str, float]


class TrajectoryRecord(BaseModel):
    """One episode. ``schema_version`` changes when fields change meaning."""

    schema_version: int = TRAJECTORY_SCHEMA_VERSION
    item: QAItem
    seed: int | None = None
    config: dict[str, Any]
    turns: list[TurnRecord]
    final_answer: str | None
    correct: bool
    terminated: bool
    truncated: bool
    reward_terms: dict[str, float]
    reward_weights: dict[str, float]
    reward_total: float


def write_jsonl(records: Iterable[BaseModel], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(record.model_dump_json() + "\n")
    return path


def read_trajectories(path: str | Path) -> Iterator[TrajectoryRecord]:
    with Path(path).open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                try:
                    yield TrajectoryRecord.model_validate(json.loads(line))
                except ValueError as exc:
                    raise ValueError(
                        f"{path}, line {number}: not a trajectory record ({exc})"
                    ) from exc
