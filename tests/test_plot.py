"""Reward curves from trajectory and training-metrics logs (``medr3 plot``)."""

from __future__ import annotations

import json
import sys

import pytest
from typer.testing import CliRunner

from medr3_env.cli import app
from medr3_env.plotting import INSTALL_HINT, PlotError, load_log, plot_logs, running_mean

pytest.importorskip("matplotlib", reason="matplotlib is not installed (the viz extra)")
runner = CliRunner()


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture()
def metrics(tmp_path):
    """Three stages; the retrieval and joint trainers restart their step count at 0."""
    rows = []
    for stage in ("reasoning", "retrieval", "joint"):
        for step in range(0, 50, 10):
            terms = {"answer": step / 100, "format": 1.0, "retrieval": 0.5, "evidence": 0.25}
            rows.append(
                {
                    "step": step,
                    "stage": stage,
                    "accuracy": step / 100,
                    "reward_total": 1 + step / 100,
                    "reward_terms": terms,
                    "learning_rate": 1e-6,  # extra keys are allowed
                }
            )
    return _write(tmp_path / "metrics.jsonl", rows)


@pytest.fixture(scope="module")
def trajectories(tmp_path_factory):
    out = tmp_path_factory.mktemp("plot") / "traj.jsonl"
    result = runner.invoke(app, ["demo", "-n", "6", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


def test_running_mean():
    assert running_mean([1, 0, 1, 0], 2) == [1.0, 0.5, 0.5, 0.5]
    assert running_mean([2, 4, 6], 10) == [2.0, 3.0, 4.0]


def test_metrics_log_gives_one_line_per_term_against_step(metrics):
    curves = load_log(metrics)
    assert list(curves.terms) == ["answer", "format", "retrieval", "evidence", "total", "accuracy"]
    assert curves.x[:6] == [0, 10, 20, 30, 40, 41]  # the restarted stage follows the previous one
    assert curves.x == sorted(curves.x) and len(curves.x) == 15
    assert [s for s, _, _ in curves.stages] == ["reasoning", "retrieval", "joint"]
    assert curves.terms["answer"][:5] == [0.0, 0.1, 0.2, 0.3, 0.4]


def test_trajectory_log_gives_running_means_over_episodes(trajectories):
    curves = load_log(trajectories, window=2)
    records = [json.loads(line) for line in trajectories.read_text().splitlines()]
    assert curves.x == [1, 2, 3, 4, 5, 6]
    evidence = [r["reward_terms"]["evidence"] for r in records]
    assert curves.terms["evidence"][1] == pytest.approx((evidence[0] + evidence[1]) / 2)
    assert curves.terms["accuracy"][0] == float(records[0]["correct"])
    assert {"answer", "format", "retrieval", "evidence", "total"} <= set(curves.terms)


def test_plot_writes_png_and_svg(metrics, trajectories, tmp_path):
    out = tmp_path / "plots"
    result = runner.invoke(app, ["plot", str(metrics), str(trajectories), "--out", str(out)])
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in out.iterdir())
    assert names == ["rewards.png", "rewards.svg", "terms.png", "terms.svg"]
    assert (out / "rewards.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    svg = (out / "rewards.svg").read_text(encoding="utf-8")
    for label in ("answer", "evidence", "retrieval", "joint", "metrics", "traj"):
        assert f">{label}<" in svg, label  # text stays text (svg.fonttype none)


def test_unreadable_logs_give_clear_errors(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n", encoding="utf-8")
    with pytest.raises(PlotError, match="empty"):
        load_log(empty)
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"step": 1, "reward_terms": {"answer": 1}}\n{oops\n', encoding="utf-8")
    with pytest.raises(PlotError, match="line 2: invalid JSON"):
        load_log(broken)
    for line, reason in (("[1, 2]", "expected a JSON object, got list"), ('"text"', "got str")):
        listed = tmp_path / "listed.jsonl"
        listed.write_text(f'{{"step": 1, "reward_terms": {{}}}}\n\n{line}\n', encoding="utf-8")
        with pytest.raises(PlotError, match=f"listed.jsonl, line 3: .*{reason}"):
            load_log(listed)
    latin1 = tmp_path / "latin1.jsonl"
    latin1.write_bytes('{"step": 1, "stage": "caf\xe9"}\n'.encode("latin-1"))
    with pytest.raises(PlotError, match="line 1: not UTF-8"):
        load_log(latin1)
    wrong = _write(tmp_path / "wrong.jsonl", [{"step": "many", "reward_terms": {}}])
    with pytest.raises(PlotError, match="line 1: not a metrics record"):
        load_log(wrong)
    other = _write(tmp_path / "other.jsonl", [{"loss": 1.0}])
    with pytest.raises(PlotError, match="neither a trajectory record"):
        load_log(other)
    result = runner.invoke(app, ["plot", str(tmp_path / "missing.jsonl"), "--out", str(tmp_path)])
    assert result.exit_code == 2 and "file not found" in result.output


def test_missing_matplotlib_is_explained(monkeypatch, metrics, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # what an absent package looks like
    with pytest.raises(PlotError, match=r"pip install 'medr3-env\[viz\]'"):
        plot_logs([metrics], tmp_path / "out")
    assert "viz" in INSTALL_HINT and not (tmp_path / "out").exists()
