"""A measured learning run of SmolLM2-135M-Instruct in MedR3 on a CPU (2 cores).

Runs ``examples/train_lm_grpo.py`` with small but complete settings (warm start, then GRPO in the
reasoning, retrieval and joint stages), evaluates greedily on held-out dev questions before
training and after every stage, prints a table, writes
``benchmarks/results/train_smollm2_cpu[-seedN].json`` and draws
``docs/assets/train_smollm2_cpu.png``. Rerunning the same command resumes an interrupted run.

    python benchmarks/train_smollm2_cpu.py --out runs/smollm2-cpu --seed 0
    python benchmarks/train_smollm2_cpu.py --out runs/smollm2-cpu --plot-only
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
PLOT = ROOT / "docs" / "assets" / "train_smollm2_cpu.png"

PRESET = [
    "--model", "smollm2",
    "--stages", "1,2,3",
    "--stage-steps", "2,1,1",
    "--questions-per-step", "1",
    "--group-size", "4",
    "--learning-rate", "1e-4",
    "--max-new-tokens", "96",
    "--micro-batch", "2",
    "--lora-rank", "16",
    "--sft-questions", "8",
    "--sft-epochs", "2",
    "--sft-batch", "4",
    "--sft-learning-rate", "1e-3",
    "--dev-questions", "4",
    "--eval-max-new-tokens", "96",
    "--eval-max-turns", "3",
    "--eval-every", "0",
    "--save-every", "1",
    "--device", "cpu",
    "--threads", "1",
]  # fmt: skip
"""Small settings: 1 question x 4 samples per step, 2/1/1 GRPO steps, 4 dev questions."""

LABELS = ("before", "warmstart", "reasoning", "retrieval", "joint")


def load_example() -> Any:
    spec = importlib.util.spec_from_file_location(
        "train_lm_grpo", ROOT / "examples" / "train_lm_grpo.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def table(results: dict[str, Any]) -> str:
    terms = list(dict.fromkeys(t for r in results.values() for t in r.get("reward_terms", {})))
    header = ["after", "valid turns", "accuracy", *terms, "total"]
    lines = [" | ".join(header), " | ".join("---" for _ in header)]
    for label in LABELS:
        row = results.get(label)
        if row is None:
            continue
        values = [row["valid_turn_rate"], row["accuracy"]]
        values += [row["reward_terms"].get(t, 0.0) for t in terms] + [row["reward_total"]]
        lines.append(" | ".join([label, *(f"{v:.3f}" for v in values)]))
    return "\n".join(lines)


def plot(out: Path, results: dict[str, Any], target: Path) -> Path:
    from matplotlib.figure import Figure

    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    figure = Figure(figsize=(10, 3.6), layout="constrained")
    left, right = figure.subplots(1, 2)
    labels = [label for label in LABELS if label in results]
    for key, name in (
        ("reward_total", "dev total"),
        ("valid_turn_rate", "dev valid-turn rate"),
        ("accuracy", "dev accuracy"),
    ):
        left.plot(labels, [results[label][key] for label in labels], marker="o", label=name)
    left.set_title("held-out dev, greedy, after each stage")
    left.legend(fontsize=8)
    position = 0
    for stage in ("warmstart", "reasoning", "retrieval", "joint"):
        stage_rows = [r for r in rows if r.get("stage") == stage]
        xs = list(range(position, position + len(stage_rows)))
        if stage == "warmstart":
            right.plot(xs, [r["loss"] for r in stage_rows], color="grey", label="warm-start loss")
        else:
            right.plot(xs, [r["reward_total"] for r in stage_rows], marker=".", label=stage)
        position += len(stage_rows)
    right.set_title("training: warm-start loss, then GRPO batch reward")
    right.set_xlabel("optimizer step")
    right.legend(fontsize=8)
    target.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(target, dpi=110)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("runs/smollm2-cpu"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plot-only", action="store_true")
    args = parser.parse_args()
    name = "train_smollm2_cpu" + (f"-seed{args.seed}" if args.seed else "")
    started = time.perf_counter()
    if not args.plot_only:
        results = load_example().main([*PRESET, "--seed", str(args.seed), "--out", str(args.out)])
    else:
        results = json.loads((args.out / "evaluations.json").read_text())
    wall = time.perf_counter() - started
    command = " ".join(["python", "benchmarks/train_smollm2_cpu.py", *sys.argv[1:]])
    print(table(results))
    report = {
        "command": command,
        "preset": PRESET,
        "seed": args.seed,
        "wall_seconds": None if args.plot_only else round(wall, 1),
        "cpu_count": os.cpu_count(),
        "machine": platform.processor() or platform.machine(),
        "evaluations": results,
    }
    previous = RESULTS / f"{name}.json"
    if args.plot_only and previous.is_file():
        report["wall_seconds"] = json.loads(previous.read_text()).get("wall_seconds")
    RESULTS.mkdir(parents=True, exist_ok=True)
    previous.write_text(json.dumps(report, indent=2), encoding="utf-8")
    print(f"results: {previous}")
    print(f"plot: {plot(args.out, results, PLOT if not args.seed else PLOT.with_stem(name))}")


if __name__ == "__main__":
    main()
