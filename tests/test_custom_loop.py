"""examples/custom_rl_loop.py learns: accuracy and reward rise on the starter set, on CPU."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from medr3_env.corpora import load_questions

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "custom_rl_loop.py"


def load_example():
    spec = importlib.util.spec_from_file_location("custom_rl_loop", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_custom_loop_improves_and_logs_the_plot_format(tmp_path):
    loop = load_example()
    log = tmp_path / "metrics.jsonl"
    policy = loop.LinearSoftmaxPolicy(top_k=5, seed=0)
    before = loop.evaluate(policy)
    history = loop.train(
        iterations=12,
        questions_per_iteration=8,
        group_size=8,
        log=log,
        verbose=False,
        policy=policy,
    )
    after = loop.evaluate(policy)

    lines = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    assert lines == history and [line["step"] for line in lines] == list(range(12))
    for line in lines:
        assert set(line) == {"step", "stage", "accuracy", "reward_total", "reward_terms"}
        assert line["stage"] == "joint" and 0.0 <= line["accuracy"] <= 1.0
        assert set(line["reward_terms"]) == {"answer", "format", "retrieval", "evidence"}
        assert line["reward_terms"]["answer"] == line["accuracy"]

    # Final accuracy: the trained policy against the untrained one, greedy, on every held-out dev
    # question (one training batch of 64 sampled episodes is too noisy to compare alone).
    dev_questions = len(load_questions("starter").split("dev"))
    assert after["questions"] == before["questions"] == dev_questions
    assert after["accuracy"] > before["accuracy"]
    assert after["reward_total"] > before["reward_total"]
    first = lines[0]
    assert sum(x["accuracy"] for x in lines[-3:]) / 3 > first["accuracy"]
    assert sum(x["reward_total"] for x in lines[-3:]) / 3 > first["reward_total"]
