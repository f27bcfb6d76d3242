"""The vector entry point of the MedR3 ids: ``gymnasium.make_vec("MedR3-v0", num_envs=N)``.

Before each step the searches that the sub-environments are about to run are sent to their shared
searcher as one :meth:`~medr3_env.search.Searcher.search_many` batch (one HTTP request with the
remote backend; repeated queries searched once), and each sub-environment uses its prefetched hits.
``asynchronous=True`` runs one worker process per sub-environment instead (same info batching).

Gymnasium's default info batching recurses into dict values, so ``infos["options"]`` would become
one array per option letter. These vector envs keep ``options`` and ``messages`` whole, one object
per sub-environment; every other key is batched as usual (e.g. ``infos["reward_terms"]["answer"]``
is an array). Gymnasium's own ``vectorization_mode="sync"`` / ``"async"`` work too, with
Gymnasium's batching (see :mod:`medr3_env.spaces` for the shared-memory text observations).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import numpy as np
from gymnasium.vector import AsyncVectorEnv, SyncVectorEnv

OPAQUE_INFO_KEYS = ("options", "messages")


class _WholeInfos:
    """Info batching that keeps :data:`OPAQUE_INFO_KEYS` whole, one object per sub-environment."""

    num_envs: int

    def _add_info(
        self, vector_infos: dict[str, Any], env_info: dict[str, Any], env_num: int
    ) -> dict[str, Any]:
        opaque = {key: env_info[key] for key in OPAQUE_INFO_KEYS if key in env_info}
        rest = {key: value for key, value in env_info.items() if key not in opaque}
        vector_infos = super()._add_info(vector_infos, rest, env_num)  # type: ignore[misc]
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


class MedR3AsyncVectorEnv(_WholeInfos, AsyncVectorEnv):
    """One worker process per sub-environment (each opens the index itself)."""


class MedR3VectorEnv(_WholeInfos, SyncVectorEnv):
    """Synchronous vector env over :class:`~medr3_env.env.MedR3Env` instances sharing one index."""

    def step(self, actions: Sequence[Any]) -> tuple[Any, ...]:
        self._prefetch_searches(actions)
        return super().step(actions)

    def _prefetch_searches(self, actions: Sequence[Any]) -> None:
        """Run the pending searches of all sub-environments as one batch per (searcher, k)."""
        resetting = getattr(self, "_autoreset_envs", np.zeros(self.num_envs, dtype=np.bool_))
        batches: dict[tuple[int, int], list[tuple[Any, str]]] = {}
        for number, (env, action) in enumerate(zip(self.envs, actions, strict=True)):
            env = cast(Any, env.unwrapped)  # a MedR3Env, or any env without pending_search
            pending = getattr(env, "pending_search", None)
            if resetting[number] or pending is None:
                continue
            query = pending(action)
            if query is not None:
                batches.setdefault((id(env.searcher), env.config.top_k), []).append((env, query))
        for (_, k), requests in batches.items():
            if len(requests) < 2:
                continue  # nothing to batch; the env searches as usual
            searcher = requests[0][0].searcher
            results = searcher.search_many([query for _, query in requests], k)
            for (env, query), hits in zip(requests, results, strict=True):
                env.prefetch(query, hits)


def make_vector_env(
    num_envs: int = 1, *, asynchronous: bool = False, **kwargs: Any
) -> MedR3VectorEnv | MedR3AsyncVectorEnv:
    """``num_envs`` environments built with the same keyword arguments; ``asynchronous=True``
    runs each in its own worker process (``gym.make_vec("MedR3-v0", 2, asynchronous=True)``)."""
    from medr3_env.env import MedR3Env

    factories = [lambda: MedR3Env(**kwargs) for _ in range(num_envs)]
    if asynchronous:
        return MedR3AsyncVectorEnv(factories, shared_memory=False)
    return MedR3VectorEnv(factories)
