"""The Med-R3 curriculum as data: one :class:`StageConfig` per training stage.

Stage 1 (``reasoning``) answers without retrieval, stage 2 (``retrieval``) learns to search and
read, stage 3 (``joint``) optimises retrieval and reasoning together. A stage file holds the
environment of the stage (any :class:`~medr3_env.config.EnvConfig` field: the rules, the reward
weights, and the data -- ``corpus``, ``dataset``, ``backend``, ``index_dir`` ...) and the GRPO
settings passed to OpenRLHF. The packaged files under ``agents/stages/`` are the recipe, and the
environment's stage defaults are read from them (:func:`medr3_env.config.stage_defaults`).

To change a stage, write a YAML file with its ``name`` and the keys to change, and point
``medr3 train --stage FILE`` (or ``MEDR3_STAGE_CONFIG``) at it; every key it leaves out keeps the
packaged recipe's value (inside ``grpo`` key by key). Relative paths in it are taken from the
file's folder.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from medr3_env.config import (
    SPEC_FIELDS,
    STAGES,
    EnvConfig,
    Stage,
    packaged_recipe,
    packaged_stage_file,
    read_stage_file,
)
from medr3_env.corpora.specs import Spec
from medr3_env.validation import validation_line

__all__ = [
    "ENV_KEYS",
    "GRPOSettings",
    "STAGE_NUMBERS",
    "StageConfig",
    "load_stage_config",
    "packaged_stage_file",
    "stage_name",
]

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


ENV_KEYS: tuple[str, ...] = tuple(name for name in EnvConfig.model_fields if name != "stage")
"""The environment keys a stage file may set: every :class:`EnvConfig` field but ``stage``
(which is the file's ``name``)."""
_PATH_KEYS = tuple(
    name for name, field in EnvConfig.model_fields.items() if "Path" in str(field.annotation)
)


class StageConfig(BaseModel):
    """One stage of the curriculum: its environment (rules, rewards, data) and GRPO settings.

    Written flat in YAML (``max_turns: 8``, ``corpus: medrag:...``, ``grpo: {...}``); the
    environment keys are gathered into :attr:`env`. Keys left out keep the packaged recipe's
    values of the stage ``name``.
    """

    model_config = ConfigDict(extra="forbid")

    name: Stage
    description: str = ""
    env: EnvConfig
    """The stage's environment: the keys the file sets over the stage's defaults."""
    grpo: GRPOSettings = Field(default_factory=GRPOSettings)

    @model_validator(mode="before")
    @classmethod
    def _gather_env(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        data = dict(data)
        if "stage" in data:
            raise ValueError("a stage file names its stage with `name:`, not `stage:`")
        unknown = sorted(set(data) - set(cls.model_fields) - set(ENV_KEYS))
        if unknown:
            raise ValueError(
                f"unknown key(s) {', '.join(unknown)}; a stage file takes name, description, "
                f"grpo and the environment keys {', '.join(ENV_KEYS)}"
            )
        env = data.pop("env", None)
        env = env.model_dump(exclude_unset=True) if isinstance(env, EnvConfig) else dict(env or {})
        env.update({key: data.pop(key) for key in ENV_KEYS if key in data})
        name = data.get("name")
        if env.get("stage", name) != name:
            raise ValueError(f"env.stage {env['stage']!r} differs from name {name!r}")
        if name in STAGES:  # a wrong name is reported once, as `name`, not again as `stage`
            env["stage"] = name
        data["env"] = env
        if name in STAGES:  # what the file leaves out comes from the packaged recipe
            recipe = packaged_recipe(name)
            data.setdefault("description", recipe.get("description", ""))
            if not isinstance(data.get("grpo"), GRPOSettings):
                data["grpo"] = {**(recipe.get("grpo") or {}), **(data.get("grpo") or {})}
        return data

    @property
    def number(self) -> int:
        """1, 2 or 3: the position in the curriculum."""
        return STAGE_NUMBERS[self.name]

    @property
    def slug(self) -> str:
        """``stage1_reasoning`` etc.: the folder name of this stage's checkpoints."""
        return f"stage{self.number}_{self.name}"

    def env_config(self, **overrides: Any) -> EnvConfig:
        """The :class:`EnvConfig` this stage trains in; ``overrides`` (any field) replace the
        stage's values, except those that are ``None`` (the stage's value stays)."""
        given = {key: value for key, value in overrides.items() if value is not None}
        return EnvConfig.model_validate({**self.env.model_dump(exclude_unset=True), **given})


def stage_name(spec: str | int) -> Stage:
    """``1``/``"1"``/``"reasoning"`` -> ``"reasoning"``; raises ``ValueError`` otherwise."""
    text = str(spec).strip().lower()
    by_number = {str(n): s for s, n in STAGE_NUMBERS.items()}
    if text in by_number:
        return by_number[text]
    if text in STAGES:
        return text  # type: ignore[return-value]
    raise ValueError(f"unknown stage {spec!r}; use 1, 2, 3 or one of {', '.join(STAGES)}")


def _relative_to(data: dict[str, Any], base: Path) -> dict[str, Any]:
    """``data`` with relative paths (``index_dir``, ``cache_dir``, the file path of a spec) taken
    from ``base``; ``~`` in ``index_dir``/``cache_dir`` is the home folder."""
    data = dict(data)
    for key in _PATH_KEYS:
        if isinstance(data.get(key), str):
            data[key] = str(base / Path(data[key]).expanduser())  # an absolute path stays
    for key in SPEC_FIELDS:
        if isinstance(data.get(key), str) and data[key].strip():
            with contextlib.suppress(ValueError):  # left as written: validation reports it
                data[key] = str(Spec.parse(data[key]).relative_to(base))
    return data


def load_stage_config(spec: str | int | Path) -> StageConfig:
    """A stage by number, name or YAML file path (``ValueError`` names the file and each wrong
    key in one line).

    >>> load_stage_config(2).grpo.n_samples_per_prompt
    16
    """
    path = Path(spec) if isinstance(spec, Path) else None
    if path is None and isinstance(spec, str) and spec.endswith((".yaml", ".yml")):
        path = Path(spec)
    packaged = path is None
    if path is None:
        assert not isinstance(spec, Path)
        path = packaged_stage_file(stage_name(spec))
    data = read_stage_file(path)
    if not packaged:
        data = _relative_to(data, path.resolve().parent)
    try:
        return StageConfig.model_validate(data)
    except ValidationError as exc:
        raise ValueError(f"{path}: {validation_line(exc, root='env')}") from None
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
