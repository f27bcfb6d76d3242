"""The Med-R3 curriculum as data: one :class:`StageConfig` per training stage.

Stage 1 (``reasoning``) answers without retrieval, stage 2 (``retrieval``) learns to search and
read, stage 3 (``joint``) optimises retrieval and reasoning together. Each stage fixes what the
environment allows and how it scores (mirroring :data:`medr3_env.config.STAGE_DEFAULTS`) and the
GRPO settings passed to OpenRLHF. The packaged YAML files under ``agents/stages/`` are the recipe;
copy one, edit it and point ``MEDR3_STAGE_CONFIG`` (or ``medr3 train --stage FILE``) at the copy.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from medr3_env.config import STAGES, Action, EnvConfig, Stage

STAGE_NUMBERS: dict[Stage, int] = {"reasoning": 1, "retrieval": 2, "joint": 3}
"""Curriculum order: stage N starts from stage N-1's checkpoint."""

AdvantageEstimator = Literal[
    "gae", "reinforce", "rloo", "reinforce_baseline", "group_norm", "dr_grpo", "flash_reinforce"
]


class GRPOSettings(BaseModel):
    """Optimisation settings of one stage, named after the OpenRLHF 0.11 flags they become.

    Published Med-R3 values: group-normalised advantages, no KL term, 16 samples per prompt,
    learning rate 1e-6, temperature 1.0. Batch sizes, lengths and schedule are MedR3 defaults for
    an 8-GPU node; change them freely.
    """

    model_config = ConfigDict(extra="forbid")

    advantage_estimator: AdvantageEstimator = "group_norm"
    """``--algo.advantage.estimator`` (``group_norm`` is GRPO)."""
    init_kl_coef: float = Field(0.0, ge=0.0)
    """``--algo.kl.init_coef``: 0 removes the KL penalty (and the reference model's use)."""
    use_kl_loss: bool = False
    """``--algo.kl.use_loss``: add KL as a loss term instead of a reward penalty."""
    n_samples_per_prompt: int = Field(16, ge=1)
    actor_learning_rate: float = Field(1e-6, gt=0.0)
    """``--actor.adam.lr``."""
    lr_warmup_ratio: float = Field(0.0, ge=0.0, le=1.0)
    temperature: float = Field(1.0, gt=0.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    eps_clip: float = Field(0.2, gt=0.0)
    rollout_batch_size: int = Field(64, ge=1)
    """Prompts per rollout; each is sampled ``n_samples_per_prompt`` times."""
    train_batch_size: int = Field(256, ge=1)
    micro_train_batch_size: int = Field(2, ge=1)
    micro_rollout_batch_size: int = Field(8, ge=1)
    max_epochs: int = Field(1, ge=1)
    num_episodes: int = Field(1, ge=1)
    max_len: int = Field(8192, ge=256)
    """Whole episode: prompt, every model turn and every piece of environment feedback."""
    max_new_tokens: int = Field(1024, ge=16)
    """Room kept for generation when the prompt is long (OpenRLHF truncates the prompt's start)."""
    dynamic_filtering: bool = False
    """Drop prompt groups that are all right or all wrong (the agent's ``scores`` are 0/1)."""
    save_steps: int = 20
    zero_stage: int = Field(3, ge=0, le=3)
    seed: int = 42

    @field_validator("n_samples_per_prompt")
    @classmethod
    def _groups_need_two(cls, value: int, info: Any) -> int:
        estimator = info.data.get("advantage_estimator")
        if estimator in {"rloo", "reinforce_baseline", "group_norm", "dr_grpo"} and value < 2:
            raise ValueError(f"{estimator} needs n_samples_per_prompt >= 2 (a group baseline)")
        return value


class StageConfig(BaseModel):
    """One stage of the curriculum: environment rules, reward weights and GRPO settings."""

    model_config = ConfigDict(extra="forbid")

    name: Stage
    description: str = ""
    allowed_actions: tuple[Action, ...]
    reward_weights: dict[str, float]
    max_turns: int = Field(ge=1, le=64)
    max_searches: int = Field(ge=0, le=64)
    top_k: int = Field(5, ge=1, le=50)
    min_reasoning_words: int = Field(0, ge=0)
    grpo: GRPOSettings = Field(default_factory=GRPOSettings)

    @property
    def number(self) -> int:
        """1, 2 or 3: the position in the curriculum."""
        return STAGE_NUMBERS[self.name]

    @property
    def slug(self) -> str:
        """``stage1_reasoning`` etc.: the folder name of this stage's checkpoints."""
        return f"stage{self.number}_{self.name}"

    def env_config(self, **overrides: Any) -> EnvConfig:
        """The :class:`EnvConfig` this stage trains in (``overrides``: any other field)."""
        fields = {
            "stage": self.name,
            "allowed_actions": self.allowed_actions,
            "reward_weights": self.reward_weights,
            "max_turns": self.max_turns,
            "max_searches": self.max_searches,
            "top_k": self.top_k,
            "min_reasoning_words": self.min_reasoning_words,
        }
        return EnvConfig.model_validate({**fields, **overrides})


def packaged_stage_file(name: Stage) -> Path:
    """The packaged recipe file of a stage (``agents/stages/NAME.yaml``)."""
    return Path(str(resources.files("medr3_env.agents") / "stages" / f"{name}.yaml"))


def stage_name(spec: str | int) -> Stage:
    """``1``/``"1"``/``"reasoning"`` -> ``"reasoning"``; raises ``ValueError`` otherwise."""
    text = str(spec).strip().lower()
    by_number = {str(n): s for s, n in STAGE_NUMBERS.items()}
    if text in by_number:
        return by_number[text]
    if text in STAGES:
        return text  # type: ignore[return-value]
    raise ValueError(f"unknown stage {spec!r}; use 1, 2, 3 or one of {', '.join(STAGES)}")


def load_stage_config(spec: str | int | Path) -> StageConfig:
    """A stage by number, name or YAML file path.

    >>> load_stage_config(2).grpo.n_samples_per_prompt
    16
    """
    path = Path(spec) if isinstance(spec, Path) else None
    if path is None and isinstance(spec, str) and spec.endswith((".yaml", ".yml")):
        path = Path(spec)
    if path is None:
        assert not isinstance(spec, Path)
        path = packaged_stage_file(stage_name(spec))
    if not path.is_file():
        raise FileNotFoundError(f"stage config {str(path)!r} does not exist")
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a stage config must be a YAML mapping")
    try:
        return StageConfig.model_validate(data)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from exc
