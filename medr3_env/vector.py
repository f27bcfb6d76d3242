"""The vector entry point of the MedR3 ids: ``gymnasium.make_vec("MedR3-v0", num_envs=N)``.

Gymnasium's default info batching recurses into dict values, which breaks on keys that are a dict
in one sub-environment and ``None`` in another (``options`` of MCQ vs yes/no questions). This
SyncVectorEnv keeps ``options`` and ``messages`` whole, one object per sub-environment; every other
key is batched as usual (e.g. ``infos["reward_terms"]["answer"]`` is an array).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium.vector import SyncVectorEnv

OPAQUE_INFO_KEYS = ("options", "messages")


class MedR3VectorEnv(SyncVectorEnv):
    """Synchronous vector env over :class:`~medr3_env.env.MedR3Env` instances sharing one index."""

    def _add_info(
        self, vector_infos: dict[str, Any], env_info: dict[str, Any], env_num: int
    ) -> dict[str, Any]:
        opaque = {key: env_info[key] for key in OPAQUE_INFO_KEYS if key in env_info}
        rest = {key: value for key, value in env_info.items() if key not in opaque}
        vector_infos = super()._add_info(vector_infos, rest, env_num)
        for key, value in opaque.items():
            array = vector_infos.get(key)
            if not isinstance(array, np.ndarray) or array.dtype != object:
                array = np.full(self.num_envs, fill_value=None, dtype=object)
            mask = vector_infos.get(f"_{key}")
            if not isinstance(mask, np.ndarray):
                mask = np.zeros(self.num_envs, dtype=np.bool_)
            array[env_num], mask[env_num] = value, True
            vector_infos[key], vector_infos[f"_{key}"] = array, mask
        return vector_infos


def make_vector_env(num_envs: int = 1, **kwargs: Any) -> MedR3VectorEnv:
    """``num_envs`` environments built with the same keyword arguments."""
    from medr3_env.env import MedR3Env

    return MedR3VectorEnv([lambda: MedR3Env(**kwargs) for _ in range(num_envs)])
