"""Reward curves per term (``medr3 plot``) from two kinds of JSONL logs:

* trajectory files (``medr3 demo``, :class:`~medr3_env.trajectory.TrajectoryRecorder`): one
  episode per line; each term is plotted as a running mean over the episode index;
* training metrics, one line per logged step::

    {"step": 120, "stage": "joint", "accuracy": 0.61, "reward_total": 1.12,
     "reward_terms": {"answer": 0.61, "format": 0.97, "retrieval": 0.55, "evidence": 0.31}}

  ``stage``, ``accuracy`` and ``reward_total`` are optional; each term is plotted against
  ``step``. When a later stage restarts its step count, its steps are shifted to follow the
  previous stage so the stages line up left to right.

Figures are drawn with matplotlib's object API (no pyplot state) and written as PNG and SVG:
``rewards.*`` has one panel per input file with a line per term, ``terms.*`` one panel per term with
a line per input file. matplotlib comes with the ``viz`` extra.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from medr3_env.jsonl import JsonlError, read_objects
from medr3_env.trajectory import TrajectoryRecord

INSTALL_HINT = "medr3 plot needs matplotlib: pip install 'medr3-env[viz]'"


class PlotError(ValueError):
    """A log that cannot be plotted, or matplotlib missing; the message says which and why."""


class MetricsRecord(BaseModel):
    """One line of a training-metrics log."""

    model_config = ConfigDict(extra="allow")

    step: int
    stage: str | None = None
    accuracy: float | None = None
    reward_total: float | None = None
    reward_terms: dict[str, float] = {}


@dataclass
class Curves:
    """What one log file contributes to the figures."""

    label: str
    x_label: str
    x: list[float]
    terms: dict[str, list[float]]
    """Term (plus ``total`` and ``accuracy`` when logged) → one value per ``x``."""
    stages: list[tuple[str, float, float]] = field(default_factory=list)
    """(stage, first x, last x) of each run of consecutive points in one stage."""


def running_mean(values: Sequence[float], window: int) -> list[float]:
    """Mean of the last ``window`` values at each position (fewer at the start)."""
    out, total = [], 0.0
    for i, value in enumerate(values):
        total += value
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def _stage_runs(x: Sequence[float], stages: Sequence[str | None]) -> list[tuple[str, float, float]]:
    runs: list[tuple[str, float, float]] = []
    for position, stage in zip(x, stages, strict=True):
        if stage is None:
            continue
        if runs and runs[-1][0] == stage:
            runs[-1] = (stage, runs[-1][1], position)
        else:
            runs.append((stage, position, position))
    return runs


def _read_lines(path: Path) -> list[tuple[int, dict[str, Any]]]:
    if not path.is_file():
        raise PlotError(f"{path}: file not found")
    try:
        rows = list(read_objects(path))
    except JsonlError as exc:  # bad JSON, a non-object line or non-UTF-8 bytes, with the line
        raise PlotError(str(exc)) from exc
    except OSError as exc:
        raise PlotError(f"{path}: cannot read ({exc})") from exc
    if not rows:
        raise PlotError(f"{path}: the log is empty")
    return rows


def _from_trajectories(path: Path, rows: list, window: int | None) -> Curves:
    records = []
    for number, row in rows:
        try:
            records.append(TrajectoryRecord.model_validate(row))
        except ValidationError as exc:
            raise PlotError(f"{path}, line {number}: not a trajectory record ({exc})") from exc
    size = window or max(1, len(records) // 10)
    names = list(dict.fromkeys(t for r in records for t in r.reward_weights))
    raw = {t: [r.reward_terms.get(t, 0.0) for r in records] for t in names}
    raw["total"] = [r.reward_total for r in records]
    raw["accuracy"] = [float(r.correct) for r in records]
    x = [float(i) for i in range(1, len(records) + 1)]
    return Curves(
        label=path.stem,
        x_label=f"episode (running mean over {size})",
        x=x,
        terms={name: running_mean(values, size) for name, values in raw.items()},
        stages=_stage_runs(x, [r.stage for r in records]),
    )


def _from_metrics(path: Path, rows: list) -> Curves:
    records = []
    for number, row in rows:
        try:
            records.append(MetricsRecord.model_validate(row))
        except ValidationError as exc:
            raise PlotError(
                f"{path}, line {number}: not a metrics record; expected "
                '{"step": int, "stage": str, "accuracy": float, "reward_total": float, '
                f'"reward_terms": {{"answer": float, ...}}}} ({exc.errors()[0]["msg"]})'
            ) from exc
    x: list[float] = []
    offset, last = 0.0, None
    for index, record in enumerate(records):
        previous = records[index - 1] if index else None
        if (
            previous is not None
            and last is not None
            and record.stage != previous.stage
            and record.step + offset <= last
        ):
            offset = last - record.step + 1  # this stage restarted its step count
        last = record.step + offset
        x.append(float(last))
    names = list(dict.fromkeys(t for r in records for t in r.reward_terms))
    terms: dict[str, list[float]] = {
        t: [r.reward_terms.get(t, float("nan")) for r in records] for t in names
    }
    for extra in ("reward_total", "accuracy"):
        if any(getattr(r, extra) is not None for r in records):
            key = "total" if extra == "reward_total" else extra
            terms[key] = [
                float("nan") if getattr(r, extra) is None else getattr(r, extra) for r in records
            ]
    if not terms:
        raise PlotError(f"{path}: no reward_terms, reward_total or accuracy to plot")
    return Curves(
        label=path.stem,
        x_label="step",
        x=x,
        terms=terms,
        stages=_stage_runs(x, [r.stage for r in records]),
    )


def load_log(path: str | Path, *, window: int | None = None) -> Curves:
    """Read a trajectory or metrics JSONL file into :class:`Curves`.

    Raises:
        PlotError: the file is missing, empty, not JSONL, or neither kind of log.
    """
    path = Path(path)
    rows = _read_lines(path)
    first = rows[0][1]
    if "turns" in first and "item" in first:
        return _from_trajectories(path, rows, window)
    if "step" in first:
        return _from_metrics(path, rows)
    raise PlotError(
        f"{path}, line {rows[0][0]}: neither a trajectory record (with 'item' and 'turns') nor a "
        "metrics record (with 'step')"
    )


def _figure_class() -> Any:
    try:
        import matplotlib
    except ImportError as exc:
        raise PlotError(INSTALL_HINT) from exc
    from matplotlib.figure import Figure

    return matplotlib, Figure


_STYLE = {"total": {"color": "black", "linestyle": "--"}, "accuracy": {"color": "0.45"}}
_STAGE_COLOURS = ("#e8eefc", "#fdf1e3", "#e6f4ea", "#f5e8f7")


def _shade_stages(axes: Any, curves: Curves) -> None:
    if len({stage for stage, _, _ in curves.stages}) < 2:
        return
    colours: dict[str, str] = {}
    for stage, start, end in curves.stages:
        colour = colours.setdefault(stage, _STAGE_COLOURS[len(colours) % len(_STAGE_COLOURS)])
        axes.axvspan(start - 0.5, end + 0.5, color=colour, zorder=0, linewidth=0)
        axes.annotate(
            stage,
            xy=(start, 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(2, -12),
            textcoords="offset points",
            fontsize=8,
            color="0.3",
        )


def _save(figure: Any, out: Path, name: str) -> list[Path]:
    written = []
    for suffix in ("png", "svg"):
        path = out / f"{name}.{suffix}"
        metadata = {"Date": None} if suffix == "svg" else None
        figure.savefig(path, dpi=120, metadata=metadata, bbox_inches="tight")
        written.append(path)
    return written


def plot_curves(all_curves: Sequence[Curves], out: str | Path) -> list[Path]:
    """Draw ``rewards.{png,svg}`` and ``terms.{png,svg}`` into the folder ``out``."""
    matplotlib, Figure = _figure_class()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    with matplotlib.rc_context({"svg.fonttype": "none", "font.size": 9}):
        figure = Figure(figsize=(9, 3.4 * len(all_curves)), layout="constrained")
        for axes, curves in zip(
            figure.subplots(len(all_curves), 1, squeeze=False)[:, 0], all_curves, strict=True
        ):
            _shade_stages(axes, curves)
            for term, values in curves.terms.items():
                axes.plot(curves.x, values, label=term, linewidth=1.4, **_STYLE.get(term, {}))
            axes.set_title(curves.label)
            axes.set_xlabel(curves.x_label)
            axes.set_ylabel("reward term value")
            axes.grid(alpha=0.3)
            axes.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
        written += _save(figure, out, "rewards")

        names = list(dict.fromkeys(t for c in all_curves for t in c.terms))
        columns = min(3, len(names))
        rows = -(-len(names) // columns)
        figure = Figure(figsize=(4.2 * columns, 3.0 * rows), layout="constrained")
        grid = figure.subplots(rows, columns, squeeze=False)
        for index, axes in enumerate(grid.flat):
            if index >= len(names):
                axes.set_visible(False)
                continue
            for curves in all_curves:
                if names[index] in curves.terms:
                    axes.plot(
                        curves.x, curves.terms[names[index]], label=curves.label, linewidth=1.3
                    )
            axes.set_title(names[index])
            axes.set_xlabel(all_curves[0].x_label.split(" (")[0])
            axes.grid(alpha=0.3)
        grid.flat[0].legend(fontsize=8, frameon=False)
        written += _save(figure, out, "terms")
    return written


def plot_logs(
    paths: Sequence[str | Path], out: str | Path, *, window: int | None = None
) -> list[Path]:
    """Load each log and draw the figures; returns the files written.

    Raises:
        PlotError: no paths, a log that cannot be read, or matplotlib missing.
    """
    if not paths:
        raise PlotError("give at least one trajectory or metrics JSONL file")
    _figure_class()  # fail before reading large logs when matplotlib is missing
    return plot_curves([load_log(p, window=window) for p in paths], out)
