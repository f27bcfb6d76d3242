"""Gymnasium ids: ``MedR3-v0`` (joint stage by default) and one id per training stage."""

from __future__ import annotations

from gymnasium.envs.registration import register, registry

ENTRY_POINT = "medr3_env.env:MedR3Env"
VECTOR_ENTRY_POINT = "medr3_env.vector:make_vector_env"

ENV_IDS = {
    "MedR3-v0": {},
    "MedR3-Reasoning-v0": {"stage": "reasoning"},
    "MedR3-Retrieval-v0": {"stage": "retrieval"},
    "MedR3-Joint-v0": {"stage": "joint"},
}


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
