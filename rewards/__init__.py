"""Composable reward terms: a registry, an episode context, built-in terms and their composition.

Register a term in three lines::

    from medr3_env.rewards import register_reward

    @register_reward("brevity", range=(0.0, 1.0))
    def brevity(ctx):
        return 1.0 if len(ctx.turns) <= 3 else 0.0

then weight it: ``gym.make("MedR3-v0", reward_weights={"answer": 1.0, "brevity": 0.1})``.
"""

from medr3_env.rewards.composer import RewardComposer, RewardTermError, StepRewards
from medr3_env.rewards.context import EpisodeContext, Turn
from medr3_env.rewards.registry import (
    ENTRY_POINT_GROUP,
    RewardRegistrationError,
    RewardTerm,
    get_reward,
    register_reward,
    registered_rewards,
    unregister_reward,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "EpisodeContext",
    "RewardComposer",
    "RewardRegistrationError",
    "RewardTerm",
    "RewardTermError",
    "StepRewards",
    "Turn",
    "get_reward",
    "register_reward",
    "registered_rewards",
    "unregister_reward",
]
