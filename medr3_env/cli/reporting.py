"""Episode running with a status line and the reward tables that ``medr3 demo`` and ``medr3 eval``
print."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any, Literal

from rich import box
from rich.table import Table

from medr3_env.cli.app import console


def run_episodes(env: Any, policy: Any, items: Sequence[Any], seed: int) -> list[Any]:
    """One recorded episode per item (:func:`medr3_env.episodes.run_episode`), with a status line."""
    from medr3_env.episodes import run_episode

    records = []
    with console.status("running episodes…") as status:
        for number, item in enumerate(items, start=1):
            status.update(f"episode {number}/{len(items)}")
            records.append(run_episode(env, policy, item_id=item.id, seed=seed))
    return records


def reward_table(records: Sequence[Any], weights: dict[str, float], title: str) -> Table:
    """Mean accuracy, raw term values, total and turns: all episodes, then per answer type."""
    terms = list(weights)
    table = Table(
        title=title,
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        caption="mean raw value per term (n/a: it applied to no episode); total = weighted sum ("
        + ", ".join(f"{t}={w:g}" for t, w in weights.items())
        + ")",
    )
    for column in ("type", "n", "accuracy", *terms, "total", "turns"):
        justify: Literal["left", "right"] = "left" if column == "type" else "right"
        table.add_column(column, justify=justify, min_width=len(column))
    groups = {"all": list(records)}
    for kind in ("mcq", "yesno", "free"):
        subset = [r for r in records if r.item.answer_type == kind]
        if subset:
            groups[kind] = subset
    for name, group in groups.items():
        if not group:
            continue
        table.add_row(
            name,
            str(len(group)),
            f"{statistics.mean(r.correct for r in group):.3f}",
            *[_term_mean(group, t) for t in terms],
            f"{statistics.mean(r.reward_total for r in group):.3f}",
            f"{statistics.mean(len(r.turns) for r in group):.1f}",
            end_section=name == "all",
        )
    return table


def _term_mean(records: Sequence[Any], term: str) -> str:
    """Mean of ``term`` over the records that report it (a term that failed under
    ``on_reward_error="warn"`` is absent, not 0); "–" when none does, "n/a" when the term applied
    to none of them (``retrieval`` and ``evidence`` in the reasoning stage: no search)."""
    values = [r.reward_terms[term] for r in records if term in r.reward_terms]
    if not values:
        return "–"
    if not any(_applied(r, term) for r in records):
        return "n/a"
    return f"{statistics.mean(values):.3f}"


def _applied(record: Any, term: str) -> bool:
    """Whether ``term`` was evaluated and applicable on some turn of the episode."""
    return any(
        term in turn.reward_terms and term not in turn.reward_not_applicable
        for turn in record.turns
    )
