"""The ``python -m openrlhf.cli.train_ppo_ray`` command of each curriculum stage.

Stage 1 starts from a base model (``pretrain``); stage N > 1 starts from the Hugging Face weights
stage N-1 saved in its output folder (``<output_root>/stage<N-1>_<name>``, OpenRLHF's
``--ckpt.output_dir``). Every flag is checked by ``tests/test_training_cli.py`` against OpenRLHF's
own argument parser (:mod:`medr3_env.agents.openrlhf_flags`).
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from medr3_env.agents.agent_settings import ENV_FIELDS
from medr3_env.agents.openrlhf_flags import TRAIN_MODULE
from medr3_env.agents.prompts import INPUT_KEY, LABEL_KEY
from medr3_env.agents.stage_config import STAGE_NUMBERS, StageConfig


def agent_file() -> Path:
    """The installed agent file passed to ``--train.agent_func_path``."""
    return (Path(__file__).parent / "openrlhf_agent.py").resolve()


class TrainOptions(BaseModel):
    """Where and on what a stage trains (the stage recipe itself is the :class:`StageConfig`)."""

    model_config = ConfigDict(extra="forbid")

    pretrain: str | None = None
    """Base model of stage 1 (a Hugging Face name or path); for later stages it replaces the
    previous stage's checkpoint when ``from_checkpoint`` is off."""
    from_checkpoint: bool = True
    """Stage N > 1 starts from stage N-1's saved weights."""
    resume: bool = False
    """Continue this stage from its own DeepSpeed checkpoint (``--ckpt.load_enable``)."""
    output_root: Path = Path("runs/medr3")
    prompts: Path | None = None
    """Prompt dataset (default ``<output_root>/prompts/<stage>.jsonl``)."""
    eval_prompts: Path | None = None
    eval_steps: int = -1
    num_nodes: int = Field(1, ge=1)
    gpus_per_node: int = Field(8, ge=1)
    vllm_tensor_parallel_size: int = Field(1, ge=1)
    vllm_gpu_memory_utilization: float = Field(0.6, gt=0.0, le=1.0)
    colocate: bool = True
    """Actor and vLLM engines share every GPU (``--train.colocate_all`` with sleep mode)."""
    corpus: str | None = None
    index_dir: Path | None = None
    cache_dir: Path | None = None
    search_url: str | None = None
    stage_file: Path | None = None
    """A custom stage YAML, handed to the agent as ``MEDR3_STAGE_CONFIG``."""
    ray_address: str | None = None
    """Submit to a running Ray cluster (``ray job submit``) instead of starting one locally."""
    python: str = "python3"
    extra_args: tuple[str, ...] = ()

    def stage_dir(self, stage: StageConfig | str) -> Path:
        slug = stage.slug if isinstance(stage, StageConfig) else stage
        return self.output_root / slug

    def prompt_file(self, stage: StageConfig) -> Path:
        return self.prompts or self.output_root / "prompts" / f"{stage.name}.jsonl"


@dataclass(frozen=True)
class TrainCommand:
    """A ready command: ``argv`` run with ``env`` added to the environment."""

    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    actor: str = ""

    @property
    def train_args(self) -> list[str]:
        """Everything after ``-m openrlhf.cli.train_ppo_ray``."""
        return self.argv[self.argv.index(TRAIN_MODULE) + 1 :]

    def shell(self) -> str:
        """One copy-pasteable shell line."""
        prefix = " ".join(f"{k}={shlex.quote(v)}" for k, v in self.env.items())
        return f"{prefix} {shlex.join(self.argv)}".strip()


def previous_stage_slug(stage: StageConfig) -> str | None:
    number = stage.number - 1
    names = {n: s for s, n in STAGE_NUMBERS.items()}
    return f"stage{number}_{names[number]}" if number in names else None


def actor_model(stage: StageConfig, options: TrainOptions) -> str:
    """The model a stage starts from."""
    previous = previous_stage_slug(stage)
    if previous is not None and options.from_checkpoint:
        return str(options.stage_dir(previous))
    if not options.pretrain:
        raise ValueError(f"stage {stage.number} ({stage.name}) needs --pretrain (a base model)")
    return options.pretrain


def agent_env(stage: StageConfig, options: TrainOptions) -> dict[str, str]:
    """Environment variables the agent reads in every vLLM actor."""
    env: dict[str, str] = {"MEDR3_STAGE": stage.name}
    optional = {"MEDR3_STAGE_CONFIG": options.stage_file}
    # What the command line gives overrides the stage file's value in the agent; the rest of the
    # data (corpus, index, backend ...) the agent reads from the stage file itself.
    optional.update({var: getattr(options, field, None) for var, field in ENV_FIELDS.items()})
    env.update({k: str(v) for k, v in optional.items() if v})
    return env


def train_args(stage: StageConfig, options: TrainOptions) -> list[str]:
    """OpenRLHF flags for ``stage`` (0.11 dotted names)."""
    grpo = stage.grpo
    out_dir = options.stage_dir(stage)
    gpus = options.num_nodes * options.gpus_per_node
    args = [
        "--actor.model_name_or_path", actor_model(stage, options),
        "--train.agent_func_path", str(agent_file()),
        "--data.prompt_dataset", str(options.prompt_file(stage)),
        "--data.input_key", INPUT_KEY,
        "--data.label_key", LABEL_KEY,
        "--data.apply_chat_template",
        "--data.max_len", str(grpo.max_len),
        "--rollout.max_new_tokens", str(grpo.max_new_tokens),
        "--actor.num_nodes", str(options.num_nodes),
        "--actor.num_gpus_per_node", str(options.gpus_per_node),
        "--vllm.num_engines", str(max(1, gpus // options.vllm_tensor_parallel_size)),
        "--vllm.tensor_parallel_size", str(options.vllm_tensor_parallel_size),
        "--vllm.gpu_memory_utilization", str(options.vllm_gpu_memory_utilization),
        "--algo.advantage.estimator", grpo.advantage_estimator,
        "--algo.kl.init_coef", str(grpo.init_kl_coef),
        "--rollout.n_samples_per_prompt", str(grpo.n_samples_per_prompt),
        "--rollout.batch_size", str(grpo.rollout_batch_size),
        "--rollout.micro_batch_size", str(grpo.micro_rollout_batch_size),
        "--rollout.temperature", str(grpo.temperature),
        "--rollout.top_p", str(grpo.top_p),
        "--train.batch_size", str(grpo.train_batch_size),
        "--train.micro_batch_size", str(grpo.micro_train_batch_size),
        "--train.max_epochs", str(grpo.max_epochs),
        "--train.num_episodes", str(grpo.num_episodes),
        "--train.seed", str(grpo.seed),
        "--actor.adam.lr", str(grpo.actor_learning_rate),
        "--actor.lr_warmup_ratio", str(grpo.lr_warmup_ratio),
        "--actor.eps_clip", str(grpo.eps_clip),
        "--actor.gradient_checkpointing_enable",
        "--ds.zero_stage", str(grpo.zero_stage),
        "--ds.param_dtype", "bf16",
        "--ckpt.output_dir", str(out_dir),
        "--ckpt.path", str(out_dir / "checkpoints"),
        "--ckpt.save_steps", str(grpo.save_steps),
        "--ckpt.save_hf",
        "--logger.logging_steps", "1",
        "--logger.tensorboard_dir", str(options.output_root / "tensorboard" / stage.slug),
    ]  # fmt: skip
    if grpo.use_kl_loss:
        args.append("--algo.kl.use_loss")
    if options.colocate:
        args += ["--train.colocate_all", "--vllm.enable_sleep", "--ds.enable_sleep"]
    if grpo.dynamic_filtering:
        args += ["--algo.dynamic_filtering_enable", "--algo.dynamic_filtering_range", "0", "1"]
    if options.eval_prompts is not None:
        args += [
            "--eval.dataset",
            str(options.eval_prompts),
            "--eval.steps",
            str(options.eval_steps),
        ]
    if options.resume:
        args.append("--ckpt.load_enable")
    return args + list(options.extra_args)


def train_command(stage: StageConfig, options: TrainOptions) -> TrainCommand:
    """The full command for ``stage``: local Ray, or ``ray job submit`` to ``ray_address``."""
    env = agent_env(stage, options)
    argv = [options.python, "-m", TRAIN_MODULE, *train_args(stage, options)]
    if options.ray_address:
        runtime = json.dumps({"env_vars": env}, separators=(",", ":"))
        argv = ["ray", "job", "submit", "--address", options.ray_address,
                "--runtime-env-json", runtime, "--", *argv]  # fmt: skip
        env = {}
    return TrainCommand(argv=argv, env=env, actor=actor_model(stage, options))
