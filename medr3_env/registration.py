"""Gymnasium ids: ``MedR3-v0`` (joint stage by default) and one id per training stage."""

from __future__ import annotations

from typing import Any

from gymnasium.envs.registration import register, registry

from medr3_env.config import STAGES

ENTRY_POINT = "medr3_env.env:MedR3Env"
VECTOR_ENTRY_POINT = "medr3_env.vector:make_vector_env"

ENV_IDS: dict[str, dict[str, Any]] = {
    "MedR3-v0": {},
    **{f"MedR3-{stage.capitalize()}-v0": {"stage": stage} for stage in STAGES},
}
"""Each id and the :class:`~medr3_env.config.EnvConfig` fields it sets; a stage id takes that
stage's recipe values (``agents/stages/<stage>.yaml``) when the environment is made."""


def register_envs() -> None:
    """Register every MedR3 id with gymnasium (idempotent)."""
    for env_id, kwargs in ENV_IDS.items():
        if env_id not in registry:
            # No max_episode_steps: the environment truncates at its own ``max_turns``.
            register(
                id=env_id,
                entry_point=ENTRY_POINT,
                vector_entry_point=VECTOR_ENTRY_POINT,
                kwargs=dict(kwargs),
            )
