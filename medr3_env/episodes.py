"""Run a policy through one environment episode and record it: what ``medr3 demo``, ``medr3 eval``,
the attack suite and the examples share."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from medr3_env.env import MedR3Env
from medr3_env.trajectory import TrajectoryRecord, TrajectoryRecorder

Policy = Callable[[str, dict[str, Any]], str]
"""``policy(observation, info) -> action``: the interface :func:`run_episode` drives."""


def run_episode(
    env: MedR3Env,
    policy: Policy,
    *,
    item_id: str | None = None,
    seed: int | None = None,
) -> TrajectoryRecord:
    """Run one episode to the end and return its :class:`TrajectoryRecord`.

    The policy receives the observation and ``info`` of the previous step plus the question
    fields of ``reset`` (``question``, ``options``, ``answer_type``) and a ``turn`` counter.
    """
    recorder = TrajectoryRecorder(env)
    options = {"item_id": item_id} if item_id is not None else None
    observation, info = recorder.reset(seed=seed, options=options)
    question = {k: info[k] for k in ("question", "options", "answer_type")}
    info = {**info, "turn": 0}
    done = False
    while not done:
        action = policy(observation, info)
        observation, _, terminated, truncated, step_info = recorder.step(action)
        done = terminated or truncated
        info = {**step_info, **question}
    return recorder.record()
