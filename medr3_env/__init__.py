"""MedR3: Gymnasium environments for medical search-read-reason agents.

>>> import gymnasium as gym
>>> import medr3_env  # registers MedR3-v0 and the stage ids
>>> env = gym.make("MedR3-v0")
>>> obs, info = env.reset(seed=0)
"""

from __future__ import annotations

from medr3_env.config import STAGE_DEFAULTS, STAGES, EnvConfig, Stage  # noqa: E402
from medr3_env.corpora import Document, QAItem, load_corpus, load_questions  # noqa: E402
from medr3_env.env import MedR3Env  # noqa: E402
from medr3_env.registration import ENV_IDS, register_envs  # noqa: E402
from medr3_env.rewards import EpisodeContext, register_reward  # noqa: E402
from medr3_env.search import Hit, Searcher, build_searcher  # noqa: E402
from medr3_env.version import __version__  # noqa: E402

register_envs()

__all__ = [
    "ENV_IDS",
    "STAGES",
    "STAGE_DEFAULTS",
    "Document",
    "EnvConfig",
    "EpisodeContext",
    "Hit",
    "MedR3Env",
    "QAItem",
    "Searcher",
    "Stage",
    "__version__",
    "build_searcher",
    "load_corpus",
    "load_questions",
    "register_reward",
]
