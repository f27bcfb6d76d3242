"""Training commands: ``export-prompts``, ``train`` and ``eval``."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import typer

from medr3_env.cli.app import DATASET_HELP, STAGE_HELP, app, console, fail, load_stage, one_line
from medr3_env.cli.reporting import reward_table, run_episodes

POLICY_FORMS = "hf:PATH_OR_NAME, gguf:FILE.gguf, smollm2 or scripted"
"""What ``medr3 eval --policy`` takes (``hf:``/``gguf:`` load with ``HFChatPolicy.load``)."""


def _stage_file(spec: str) -> Path | None:
    return Path(spec).resolve() if spec.endswith((".yaml", ".yml")) else None


def _export(stage, dataset: str | None, split: str | None, out: Path, limit: int = 0) -> int:
    """Write the prompts of ``dataset``/``split`` (``None``: the stage file's) to ``out``."""
    from medr3_env.agents.prompts import prompt_records, write_prompt_dataset
    from medr3_env.corpora import load_questions

    env = stage.env_config(dataset=dataset, split=split)
    try:
        questions = load_questions(env.dataset).split(env.split)
    except (ValueError, FileNotFoundError, KeyError) as exc:
        fail(one_line(exc))
    items = questions.items[: limit or None]
    return write_prompt_dataset(prompt_records(stage, items, questions.name), out)


@app.command("export-prompts")
def export_prompts(
    stage: str = typer.Option("joint", help=STAGE_HELP),
    dataset: str | None = typer.Option(None, help=DATASET_HELP),
    split: str | None = typer.Option(
        None, help="Question split: train, dev, test or all (default: the stage file's, train)."
    ),
    out: Path = typer.Option(..., help="Output JSONL (OpenRLHF --data.prompt_dataset)."),
    limit: int = typer.Option(0, min=0, help="Keep the first N questions (0: all)."),
) -> None:
    """Write the prompt dataset OpenRLHF trains on (chat messages + the question as label)."""
    config = load_stage(stage)
    count = _export(config, dataset, split, out, limit)
    console.print(
        f"wrote {count} prompts for stage {config.number} ({config.name}) to {out}\n"
        "OpenRLHF flags: --data.prompt_dataset "
        f"{out} --data.input_key prompt --data.label_key label --data.apply_chat_template",
        highlight=False,
        soft_wrap=True,
    )


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def train(
    ctx: typer.Context,
    stage: str = typer.Option(..., help=STAGE_HELP),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the command and exit."),
    pretrain: str | None = typer.Option(
        None, help="Base model (stage 1, or with --no-from-checkpoint)."
    ),
    from_checkpoint: bool = typer.Option(
        True,
        "--from-checkpoint/--no-from-checkpoint",
        help="Stage N>1 starts from stage N-1's weights.",
    ),
    resume: bool = typer.Option(False, help="Resume this stage from its own checkpoint."),
    output_root: Path = typer.Option(Path("runs/medr3"), help="Checkpoints, prompts and logs."),
    dataset: str | None = typer.Option(None, help=DATASET_HELP),
    split: str | None = typer.Option(
        None, help="Training split (default: the stage file's, train)."
    ),
    eval_split: str | None = typer.Option(
        None, help="Also evaluate on this split during training."
    ),
    prompts: Path | None = typer.Option(None, help="A prompt dataset (default: exported)."),
    nodes: int = typer.Option(1, min=1, help="Ray nodes."),
    gpus_per_node: int = typer.Option(8, min=1),
    vllm_tp: int = typer.Option(1, min=1, help="vLLM tensor parallel size."),
    colocate: bool = typer.Option(True, help="Actor and vLLM share the GPUs."),
    corpus: str | None = typer.Option(
        None, help="Corpus spec for the agent's index (overrides the stage file's `corpus`)."
    ),
    index: Path | None = typer.Option(None, help="A prebuilt index directory."),
    search_url: str | None = typer.Option(None, help="Shared retrieval server (medr3 serve)."),
    ray_address: str | None = typer.Option(
        None, help="Submit to this Ray cluster (dashboard URL)."
    ),
) -> None:
    """Run one curriculum stage with OpenRLHF (extra arguments go to train_ppo_ray)."""
    from medr3_env.agents.openrlhf_flags import (
        SUPPORTED_OPENRLHF,
        FlagError,
        openrlhf_version,
        validate_train_args,
        version_supported,
    )
    from medr3_env.agents.train_command import TrainOptions, train_command

    config = load_stage(stage)
    try:  # the stage's environment with the command line's data: checked before anything runs
        config.env_config(
            corpus=corpus,
            index_dir=index,
            search_url=search_url,
            backend="remote" if search_url else None,
            dataset=dataset,
            split=split,
        )
    except ValueError as exc:
        fail(one_line(exc))
    root = output_root.resolve()
    eval_prompts = root / "prompts" / f"{config.name}-{eval_split}.jsonl" if eval_split else None
    options = TrainOptions(
        pretrain=pretrain,
        from_checkpoint=from_checkpoint,
        resume=resume,
        output_root=root,
        prompts=prompts.resolve() if prompts else None,
        eval_prompts=eval_prompts,
        eval_steps=config.grpo.save_steps if eval_split else -1,
        num_nodes=nodes,
        gpus_per_node=gpus_per_node,
        vllm_tensor_parallel_size=vllm_tp,
        colocate=colocate,
        corpus=corpus,
        index_dir=index.resolve() if index else None,
        search_url=search_url,
        stage_file=_stage_file(stage),
        ray_address=ray_address,
        extra_args=tuple(ctx.args),
    )
    try:
        command = train_command(config, options)
    except ValueError as exc:
        fail(one_line(exc))
    version = openrlhf_version()
    checked = ""
    if version is not None:
        try:
            validate_train_args(command.train_args)
            checked = f"flags checked against OpenRLHF {version}'s parser"
        except FlagError as exc:
            fail(one_line(exc))
        except (FileNotFoundError, SyntaxError) as exc:
            checked = f"flags not checked ({exc})"
    if dry_run:
        typer.echo(command.shell())
        if checked:
            console.print(f"# {checked}", highlight=False)
        return
    if version is None or not version_supported(version):
        fail(f"OpenRLHF {SUPPORTED_OPENRLHF} is required (found {version or 'none'})")
    prompt_file = options.prompt_file(config)
    if prompts is None:
        count = _export(config, dataset, split, prompt_file)
        console.print(f"exported {count} prompts to {prompt_file}")
    if eval_prompts is not None:
        _export(config, dataset, eval_split, eval_prompts)
    console.print(command.shell(), highlight=False, soft_wrap=True)
    completed = subprocess.run(command.argv, env={**os.environ, **command.env}, check=False)
    raise typer.Exit(code=completed.returncode)


@app.command("eval")
def evaluate(
    policy: str = typer.Option(..., help=f"{POLICY_FORMS}."),
    dataset: str | None = typer.Option(None, help=DATASET_HELP),
    split: str = typer.Option("test", help="Question split."),
    stage: str = typer.Option("joint", help=STAGE_HELP),
    episodes: int = typer.Option(
        0, "-n", "--episodes", min=0, help="Episodes (0: the whole split)."
    ),
    gguf_file: str | None = typer.Option(None, help="GGUF file name inside an hf: directory."),
    max_new_tokens: int = typer.Option(192, min=1, help="Token cap per model turn."),
    batch_size: int = typer.Option(16, min=1, help="Episodes generated together per turn."),
    temperature: float = typer.Option(0.0, min=0.0, help="0: greedy decoding."),
    device: str | None = typer.Option(None, help="cpu or cuda (default: cuda if available)."),
    corpus: str | None = typer.Option(
        None, help="Corpus spec (default: the stage file's, else the dataset's own)."
    ),
    out: Path = typer.Option(Path("runs/eval-trajectories.jsonl"), help="Trajectory JSONL."),
    seed: int = typer.Option(0, min=0, help="Seed for the episode order."),
) -> None:
    """Evaluate a language model (or the scripted baseline) with the training prompts."""
    from medr3_env.baseline import ScriptedPolicy
    from medr3_env.env import MedR3Env
    from medr3_env.trajectory import write_jsonl

    kind, _, rest = policy.partition(":")
    if policy not in {"scripted", "smollm2"} and not (kind in {"hf", "gguf"} and rest.strip()):
        fail(f"unknown policy {policy!r}; use {POLICY_FORMS}")
    config = load_stage(stage)
    try:
        env = MedR3Env(config.env_config(dataset=dataset, split=split, corpus=corpus))
    except (ValueError, FileNotFoundError, KeyError) as exc:
        fail(one_line(exc))
    items = env.questions.items[: episodes or None]
    title = f"MedR3 eval: {policy} ({config.name} stage)"
    if policy == "scripted":
        records = run_episodes(env, ScriptedPolicy(env.config.entity_extractor), items, seed)
        path = write_jsonl(records, out)
        console.print(reward_table(records, env.config.reward_weights, title))
        console.print(f"trajectories: {path}")
        return
    from medr3_env.agents.hf_policy import HFChatPolicy

    try:
        with console.status(f"loading {policy}…"):
            driver = HFChatPolicy.load(
                policy,
                gguf_file=gguf_file,
                device=device,
                max_new_tokens=max_new_tokens,
                temperature=temperature,
            )
    except ImportError as exc:
        fail(
            f"cannot load {policy}: {exc}; language-model policies need the `train` extra "
            "(pip install 'medr3-env[train]', with torch==2.13.0 first on a CPU-only machine)"
        )
    except (ValueError, OSError) as exc:
        fail(f"cannot load {policy}: {exc}")
    started = time.perf_counter()
    found = _run_batched(driver, env, items, batch_size, seed)
    wall = time.perf_counter() - started
    records = [e.record for e in found]
    path = write_jsonl(records, out)
    console.print(reward_table(records, env.config.reward_weights, title))
    console.print(_generation_table(found, driver.turns.tokens_per_second, wall))
    console.print(f"trajectories: {path}")


def _run_batched(driver, env, items, batch_size: int, seed: int) -> list:
    """Episodes in batches of ``batch_size``, with a live progress bar of the running figures."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from medr3_env.agents.rollout import make_envs

    envs = make_envs(env.config, max(1, min(batch_size, len(items))), like=env)
    finished: list = []
    stats = TextColumn("{task.fields[stats]}")
    columns = (
        TextColumn("episodes"),
        BarColumn(),
        MofNCompleteColumn(),
        stats,
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("eval", total=len(items), stats="")

        def show(states, done_before: int) -> None:
            done = [s for s in states if s.done]
            turns = sum(s.turns for s in states) + sum(e.turns for e in finished)
            valid = sum(s.valid_turns for s in states) + sum(e.valid_turns for e in finished)
            correct = sum(bool(s.last_info.get("correct")) for s in done)
            correct += sum(e.record.correct for e in finished)
            count = len(done) + len(finished)
            progress.update(
                task,
                completed=done_before + len(done),
                stats=(
                    f"accuracy {correct / max(1, count):.2f} · valid turns "
                    f"{valid / max(1, turns):.2f} · {driver.turns.tokens_per_second:.0f} tok/s"
                ),
            )

        for start in range(0, len(items), len(envs)):
            chunk = items[start : start + len(envs)]
            done_before = len(finished)
            finished += driver.run(
                envs[: len(chunk)],
                chunk,
                seed=seed,
                on_turn=lambda states, base=done_before: show(states, base),
            )
    return finished


def _generation_table(episodes: list, tokens_per_second: float, wall: float):
    from rich import box
    from rich.table import Table

    from medr3_env.agents.rollout import summarize

    summary = summarize(episodes)
    table = Table(title="generation", box=box.SIMPLE_HEAD, pad_edge=False)
    for column in ("episodes", "accuracy", "valid-turn rate", "tokens", "tokens/s", "seconds"):
        table.add_column(column, justify="right")
    table.add_row(
        str(summary["episodes"]),
        f"{summary.get('accuracy', 0.0):.3f}",
        f"{summary.get('valid_turn_rate', 0.0):.3f}",
        str(summary.get("generated_tokens", 0)),
        f"{tokens_per_second:.1f}",
        f"{wall:.1f}",
    )
    return table
