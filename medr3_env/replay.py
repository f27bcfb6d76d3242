"""Deterministic replay: re-create the environment of a recorded episode from its stored config,
seed and item, feed it the stored action texts, and compare what comes back with the record.

    for result in replay_file("runs/demo-trajectories.jsonl"):
        for mismatch in result.mismatches:
            print(mismatch.describe())

Floats (scores, rewards) are compared with an absolute tolerance of ``1e-9``; everything else must
be equal. Fields added in a schema version are checked only for records of that version or later.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from medr3_env.trajectory import TrajectoryRecord, TrajectoryRecorder, read_trajectories
from medr3_env.validation import validation_line

DEFAULT_TOLERANCE = 1e-9


@dataclass(frozen=True)
class Mismatch:
    """One field that differs between the record and the replay."""

    episode: int
    """1-based position of the episode in its file."""
    item_id: str
    turn: int | None
    """1-based turn number, or ``None`` for an episode-level field."""
    field: str
    expected: Any
    actual: Any

    def describe(self, width: int = 160) -> str:
        """A one-line description, with long values shortened to ``width`` characters."""
        where = f"episode {self.episode} ({self.item_id})"
        if self.turn is not None:
            where += f", turn {self.turn}"
        expected, actual, at = self.expected, self.actual, ""
        if isinstance(expected, str) and isinstance(actual, str):
            start = next(
                (i for i, (x, y) in enumerate(zip(expected, actual, strict=False)) if x != y),
                min(len(expected), len(actual)),
            )
            at = f" at character {start}"
            expected, actual = expected[max(0, start - 20) :], actual[max(0, start - 20) :]
        return (
            f"{where}: {self.field} differs{at}: recorded {_short(expected, width)}, "
            f"replayed {_short(actual, width)}"
        )


@dataclass
class ReplayResult:
    """The outcome of replaying one episode."""

    episode: int
    item_id: str
    mismatches: list[Mismatch] = field(default_factory=list)
    error: str | None = None
    """Why the episode could not be replayed at all (e.g. an unknown reward term)."""
    replayed: TrajectoryRecord | None = None
    setup_error: bool = False
    """``error`` is about this process, not the record: its environment cannot be re-created here
    (a reward term or backend that is not registered, a corpus that is not there)."""

    @property
    def ok(self) -> bool:
        return self.error is None and not self.mismatches


def _short(value: Any, width: int) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= width else text[: width - 1] + "…"


def _same(a: Any, b: Any, tolerance: float) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(a, b, rel_tol=0.0, abs_tol=tolerance) or a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k], tolerance) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y, tolerance) for x, y in zip(a, b, strict=True))
    return a == b


_TURN_FIELDS: tuple[str, ...] = (
    *("action", "error", "query", "retrieved", "read_ids", "observation", "reward"),
    "reward_terms",
)
_TURN_FIELDS_V2: tuple[str, ...] = (
    *("argument", "reasoning", "trailing_text", "reward_not_applicable"),
    "reward_errors",
)
_EPISODE_FIELDS: tuple[str, ...] = (
    *("final_answer", "correct", "terminated", "truncated", "reward_terms"),
    *("reward_weights", "reward_total"),
)
_EPISODE_FIELDS_V2: tuple[str, ...] = (
    "initial_observation",
    "corpus_fingerprint",
    "entity_extractor",
)
_TURN_FIELDS_V3: tuple[str, ...] = ("parse_error", "term_documents")
_EPISODE_FIELDS_V3: tuple[str, ...] = ("evidence_entities", "evidence_doc_ids")


def compare_records(
    expected: TrajectoryRecord,
    actual: TrajectoryRecord,
    *,
    episode: int = 1,
    tolerance: float = DEFAULT_TOLERANCE,
) -> list[Mismatch]:
    """Every field of ``actual`` (a replay) that differs from ``expected`` (the record)."""
    item_id = expected.item.id
    v2 = expected.schema_version >= 2
    v3 = expected.schema_version >= 3
    turn_fields = _TURN_FIELDS + (_TURN_FIELDS_V2 if v2 else ()) + (_TURN_FIELDS_V3 if v3 else ())
    episode_fields = (
        _EPISODE_FIELDS + (_EPISODE_FIELDS_V2 if v2 else ()) + (_EPISODE_FIELDS_V3 if v3 else ())
    )
    out: list[Mismatch] = []

    def check(turn: int | None, name: str, a: Any, b: Any) -> None:
        if not _same(a, b, tolerance):
            out.append(Mismatch(episode, item_id, turn, name, a, b))

    if len(expected.turns) != len(actual.turns):
        check(None, "number of turns", len(expected.turns), len(actual.turns))
    for old, new in zip(expected.turns, actual.turns, strict=False):
        for name in turn_fields:
            a, b = getattr(old, name), getattr(new, name)
            if name == "retrieved":
                a, b = [list(h) for h in a], [list(h) for h in b]
            check(old.index, name, a, b)
    for name in episode_fields:
        a, b = getattr(expected, name), getattr(actual, name)
        if name in _EPISODE_FIELDS_V2 and a is None:
            continue
        check(None, name, a, b)
    return out


class Replayer:
    """Replays records, re-using one environment per distinct stored config."""

    def __init__(self, *, tolerance: float = DEFAULT_TOLERANCE) -> None:
        self.tolerance = tolerance
        self._envs: dict[str, Any] = {}

    def _env(self, config: dict[str, Any]) -> Any:
        from medr3_env.env import MedR3Env

        key = json.dumps(config, sort_keys=True, default=str)
        if key not in self._envs:
            self._envs[key] = MedR3Env(config)
        return self._envs[key]

    def replay(self, record: TrajectoryRecord, *, episode: int = 1) -> ReplayResult:
        """Re-run ``record``'s action texts in a fresh episode and compare the outcome."""
        result = ReplayResult(episode=episode, item_id=record.item.id)
        try:
            env = self._env(record.config)
        except (ValueError, KeyError, FileNotFoundError) as exc:
            reason = validation_line(exc) if isinstance(exc, ValidationError) else str(exc)
            result.error = f"cannot re-create the environment: {' '.join(reason.split())}"
            if "reward term" in reason:
                result.error += " (register it first: import the module that defines it, or install its plug-in package)"
            result.setup_error = True
            return result
        if not record.turns:
            result.error = "the record has no turns"
            return result
        recorder = TrajectoryRecorder(env)
        try:
            recorder.reset(seed=record.seed, options={"item": record.item.model_dump()})
            done = False
            for turn in record.turns:
                if done:
                    break
                _, _, terminated, truncated, _ = recorder.step(turn.action_text)
                done = terminated or truncated
        except Exception as exc:  # a failing reward term or search backend: report, go on
            result.error = f"the replay raised {type(exc).__name__}: {exc}"
            return result
        result.replayed = recorder.record()
        result.mismatches = compare_records(
            record, result.replayed, episode=episode, tolerance=self.tolerance
        )
        return result


def replay_records(
    records: Iterable[TrajectoryRecord], *, tolerance: float = DEFAULT_TOLERANCE
) -> Iterator[ReplayResult]:
    """Replay each record in turn (episodes numbered from 1)."""
    replayer = Replayer(tolerance=tolerance)
    for number, record in enumerate(records, start=1):
        yield replayer.replay(record, episode=number)


def replay_file(
    path: str | Path, *, tolerance: float = DEFAULT_TOLERANCE
) -> Iterator[ReplayResult]:
    """Replay every episode of a trajectory JSONL file."""
    return replay_records(read_trajectories(path), tolerance=tolerance)
