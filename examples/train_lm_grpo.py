"""Train a causal LM in MedR3 with GRPO, stage by stage, on a CPU or one GPU (no OpenRLHF).

1. **Warm start** (optional): supervised fine-tuning on the scripted baseline's episodes, loss on
   the model's own turns only, so the model learns the action protocol before RL.
2. **GRPO**, for each Med-R3 stage in order (reasoning → retrieval → joint), each starting from the
   previous stage's weights: ``G`` sampled episodes per question, all generated together one turn
   at a time; advantages are the episode rewards normalised within each question's group; the loss
   covers only the tokens the model generated (environment feedback is masked out, as OpenRLHF's
   action mask does). Settings come from the stage YAML files (``agents/stages/*.yaml``); the flags
   below override them.
3. LoRA adapters through ``peft`` (``--lora-rank 0``: full fine-tuning, for a GPU), merged into
   the weights at the end of each stage (``OUT/stageN_NAME/final``, loadable by ``medr3 eval
   --policy hf:DIR``). ``OUT/stageN_NAME/checkpoint`` is saved every ``save_steps``; rerunning the
   same command resumes there, and finished stages are skipped.

Logs: ``OUT/metrics.jsonl`` (one line per step: every reward term, valid-turn rate, accuracy,
tokens/s, loss, KL to the stage's start), ``OUT/dev.jsonl`` (greedy dev evaluations) and
``OUT/evaluations.json`` (dev before training and after each stage), with the dev episodes in
``OUT/dev-trajectories/LABEL.jsonl`` (``medr3 replay``/``medr3 view`` read them). Draw them with
``medr3 plot OUT/metrics.jsonl OUT/dev.jsonl``.

Run::

    python examples/train_lm_grpo.py --model smollm2 --out runs/lm-grpo --steps 20
    python examples/train_lm_grpo.py --smoke --out /tmp/smoke     # tiny random model, ~1 minute
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import medr3_env  # noqa: F401  (registers MedR3-v0)
from medr3_env.agents.hf_policy import load_model
from medr3_env.agents.lm_trainer import (
    MetricsLog,
    StageRun,
    TrainConfig,
    evaluate,
    scripted_episodes,
)
from medr3_env.agents.lm_trainer import dev_envs as make_dev_envs
from medr3_env.agents.stage_config import StageConfig, load_stage_config
from medr3_env.trajectory import write_jsonl

SMOKE = TrainConfig(
    steps=2, questions_per_step=1, group_size=2, max_new_tokens=8, max_len=1024, micro_batch=2,
    lora_rank=4, sft_questions=2, sft_batch=2, dev_questions=2, eval_every=1,
    eval_max_new_tokens=8, save_every=1, learning_rate=1e-3,
)  # fmt: skip


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2", help="hf:PATH_OR_NAME, gguf:FILE or smollm2")
    parser.add_argument("--stages", default="1,2,3", help="stage numbers, names or YAML files")
    parser.add_argument("--out", type=Path, default=Path("runs/lm-grpo"))
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda if present)")
    parser.add_argument("--smoke", action="store_true", help="tiny random model, 2 steps a stage")
    parser.add_argument("--no-warm-start", action="store_true")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--stage-steps", default=None, help="GRPO steps per stage, e.g. 4,2,2")
    for field, info in TrainConfig.model_fields.items():
        flag = "--" + field.replace("_", "-")
        kind = {int: int, float: float, str: str}.get(type(info.default), float)
        if field in {"questions_per_step", "group_size", "max_new_tokens", "max_len"}:
            kind = int
        if field in {"micro_batch", "save_every"}:
            kind = int
        if field == "dataset":  # default None: the stage file's
            kind = str
        parser.add_argument(flag, type=kind, default=None, help=f"default {info.default}")
    return parser.parse_args(argv)


def build_config(args: argparse.Namespace) -> TrainConfig:
    base = SMOKE if args.smoke else TrainConfig()
    given = {f: getattr(args, f) for f in TrainConfig.model_fields if getattr(args, f) is not None}
    if args.no_warm_start:
        given["sft_epochs"] = 0
    return base.model_copy(update=given)


def warm_start(run: StageRun, stages: list[StageConfig], metrics: MetricsLog) -> None:
    """Supervised steps on scripted episodes of each distinct protocol among ``stages``."""
    config = run.config
    items = list(run.envs(1)[0].questions.items)
    items = run.rng.sample(items, min(config.sft_questions, len(items)))
    protocols = {s.env.allowed_actions: s for s in stages}.values()
    examples = [e for s in protocols for e in scripted_episodes(s, config, run.tokenizer, items)]
    batches = []
    for _ in range(config.sft_epochs):
        order = run.rng.sample(examples, len(examples))
        batches += [order[i : i + config.sft_batch] for i in range(0, len(order), config.sft_batch)]
    for number in range(run.step, len(batches)):
        stats = run.sft_step(batches[number])
        metrics.write({"step": number, "stage_step": number, "stage": run.name, **stats})
        print(f"warm start {number + 1}/{len(batches)}: loss {stats['loss']:.3f}", flush=True)
        if (number + 1) % (config.save_every or run.grpo.save_steps) == 0:
            run.save()


def grpo(run: StageRun, metrics: MetricsLog, dev_eval: Any) -> None:
    config = run.config
    while run.step < config.steps:
        stats = run.grpo_step()
        number = run.step - 1
        metrics.write({"step": number, "stage_step": number, "stage": run.name, **stats})
        print(
            f"{run.name} {run.step}/{config.steps}: total {stats['reward_total']:.3f} "
            f"accuracy {stats['accuracy']:.2f} valid {stats['valid_turn_rate']:.2f} "
            f"loss {stats['loss']:.4f} kl {stats['kl']} {stats['tokens_per_s']:.0f} tok/s",
            flush=True,
        )
        if (run.step % (config.save_every or run.grpo.save_steps)) == 0:
            run.save()
        if config.eval_every and run.step % config.eval_every == 0 and run.step < config.steps:
            dev_eval(f"{run.name}@{run.step}", run.model, run.name, number)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    config = build_config(args)
    out: Path = args.out
    model_spec = args.model
    if args.smoke:
        from medr3_env.agents.tiny_lm import build_tiny_model

        tiny = out / "tiny-model"
        if not (tiny / "config.json").is_file():
            build_tiny_model(tiny, seed=config.seed)
        model_spec = f"hf:{tiny}"
    import torch

    torch.manual_seed(config.seed)
    threads = args.threads or (1 if args.smoke else None)  # a tiny model gains nothing from more
    if threads:  # on a shared CPU, fewer threads than cores avoids waiting on preempted ones
        torch.set_num_threads(threads)
    model, tokenizer = load_model(model_spec, device=args.device)
    stages = [load_stage_config(s.strip()) for s in args.stages.split(",")]
    stage_steps: dict[str, int] = {}
    if args.stage_steps:
        counts = [int(n) for n in args.stage_steps.split(",")]
        if len(counts) != len(stages):
            raise SystemExit(f"--stage-steps gives {len(counts)} counts for {len(stages)} stages")
        stage_steps = {s.name: n for s, n in zip(stages, counts, strict=True)}
    metrics, dev_log = MetricsLog(out / "metrics.jsonl"), MetricsLog(out / "dev.jsonl")
    eval_stage = load_stage_config(config.eval_stage)
    dev_envs = make_dev_envs(eval_stage, config)
    results_file = out / "evaluations.json"
    results = json.loads(results_file.read_text()) if results_file.is_file() else {}

    def dev_eval(label: str, model: Any, stage: str, step: int) -> dict[str, Any]:
        summary, episodes = evaluate(model, tokenizer, eval_stage, config, envs=dev_envs)
        dev_log.write({"step": step, "stage": stage, "label": label, **summary})
        write_jsonl([e.record for e in episodes], out / "dev-trajectories" / f"{label}.jsonl")
        print(
            f"dev [{label}]: total {summary['reward_total']:.3f} accuracy "
            f"{summary['accuracy']:.3f} valid turns {summary['valid_turn_rate']:.3f}",
            flush=True,
        )
        return summary

    def record(label: str, summary: dict[str, Any]) -> None:
        results[label] = summary
        results_file.write_text(json.dumps(results, indent=2), encoding="utf-8")

    if "before" not in results:
        record("before", dev_eval("before", model, "before", 0))
    plan = ([] if config.sft_epochs == 0 or config.sft_questions == 0 else ["warmstart"]) + [
        s.name for s in stages
    ]
    for name in plan:
        stage = stages[0] if name == "warmstart" else next(s for s in stages if s.name == name)
        folder = out / (f"stage0_{name}" if name == "warmstart" else stage.slug)
        final = folder / "final"
        if (final / "config.json").is_file():  # finished earlier: start the next from it
            model, _ = load_model(f"hf:{final}", device=str(model.device))
            if name not in results:  # stopped between saving the weights and evaluating them
                record(name, dev_eval(name, model, name, 0))
            continue
        sft = name == "warmstart"
        steps = stage_steps.get(name, config.steps)
        run = StageRun(
            model, tokenizer, stage, config.model_copy(update={"steps": steps}), folder, name=name,
            learning_rate=config.sft_learning_rate if sft else None,
        )  # fmt: skip
        if run.resume():
            metrics.drop_from(name, run.step)
            print(f"{name}: resumed at step {run.step}", flush=True)
        if sft:
            warm_start(run, stages, metrics)
        else:
            grpo(run, metrics, dev_eval)
        model = run.finish(final)
        record(name, dev_eval(name, model, name, max(0, run.step - 1)))
    return results


if __name__ == "__main__":
    main()
