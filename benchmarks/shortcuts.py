"""Cheap baselines per split: what a policy scores without answering, and what leaks across splits.

    python benchmarks/shortcuts.py [--dataset starter] [--out benchmarks/results/shortcuts.json]
                                   [--no-scripted] [--dupes-md PATH]

Columns (accuracy over the split's mcq items unless said): always-longest option, first option,
question-overlap option (most content words shared with the stem, no passage), the gold-letter
shares, the yes/no majority share, and the scripted baseline (``medr3_env.baseline``) closed-book
(reasoning stage, no document) and with search (joint stage, reads the top hit), over all items
and over ``needs_corpus`` items. Ties between options count 1/k (a random tie-break).
Leak checks: passages gold in two splits, topics in two splits, near-duplicate questions across
splits, same gold across splits, repeated titles, near-duplicate passages, bare-number aliases.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from medr3_env.corpora import load_questions
from medr3_env.corpora import shortcuts as sc
from medr3_env.corpora.records import QAItem, QuestionSet

console = Console(width=160)


def scripted_correct(questions: QuestionSet, *, search: bool) -> dict[str, bool]:
    """Item id -> whether the scripted baseline answered it correctly, over every split.

    Closed-book runs the reasoning stage (no search, no document); with search, the joint stage
    (search the question, read the top hit, answer by word overlap with it).
    """
    from medr3_env.baseline import ScriptedPolicy
    from medr3_env.env import MedR3Env
    from medr3_env.episodes import run_episode

    overrides: dict[str, Any] = (
        {"stage": "joint"} if search else {"stage": "reasoning", "min_reasoning_words": 0}
    )
    env = MedR3Env(questions=questions, split="all", **overrides)
    policy = ScriptedPolicy(env.config.entity_extractor)
    correct = {
        item.id: run_episode(env, policy, item_id=item.id, seed=0).correct for item in env.questions
    }
    env.close()
    return correct


def scripted_by_split(
    items: list[QAItem], closed: dict[str, bool], searched: dict[str, bool]
) -> dict[str, dict[str, dict[str, float | None]]]:
    """Mean correctness per split (and ``all``), over all items and over ``needs_corpus`` items."""

    def mean(flags: dict[str, bool], subset: list[QAItem]) -> float | None:
        return round(statistics.mean(flags[i.id] for i in subset), 4) if subset else None

    groups: dict[str, list[QAItem]] = {}
    for item in items:
        groups.setdefault(item.split or "none", []).append(item)
    groups["all"] = items
    out = {}
    for name, group in groups.items():
        needs = [i for i in group if i.metadata.get("needs_corpus") is True]
        out[name] = {
            kind: {"all": mean(flags, group), "needs_corpus": mean(flags, needs)}
            for kind, flags in (("closed_book", closed), ("search", searched))
        }
    return out


def leak_report(items: list[QAItem], questions: QuestionSet) -> dict[str, Any]:
    documents = list(questions.corpus) if questions.corpus is not None else []
    return {
        "evidence_in_several_splits": sc.evidence_in_several_splits(items),
        "topics_in_several_splits": sc.topics_in_several_splits(items),
        "near_duplicate_questions": [p.model_dump() for p in sc.near_duplicate_questions(items)],
        "same_gold_across_splits": sc.same_gold_across_splits(items),
        "repeated_titles": sc.repeated_titles(documents),
        "near_duplicate_passages": sc.near_duplicate_passages(documents),
        "bare_number_aliases": sc.bare_number_aliases(items),
        "gold_only_qualifiers": sc.gold_only_qualifiers(items),
        "long_golds": sc.long_golds(items),
    }


def fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def print_tables(result: dict[str, Any]) -> None:
    table = Table(title=f"Cheap baselines on {result['dataset']}")
    columns = [
        "split", "n", "mcq", "chance", "longest", "first", "overlap", "letters A/B/C/D",
        "yn", "majority", "closed", "closed nc", "search", "search nc", "nc", "2-hop",
    ]  # fmt: skip
    for column in columns:
        table.add_column(
            column, justify="left" if column in ("split", "letters A/B/C/D") else "right"
        )
    for r in result["splits"]:
        letters = "/".join(f"{r['gold_letters'].get(k, 0):.2f}" for k in "ABCD")
        scripted = result["scripted"].get(r["split"], {})
        closed, searched = scripted.get("closed_book", {}), scripted.get("search", {})
        table.add_row(
            r["split"], str(r["n"]), str(r["n_mcq"]), fmt(r["chance"]), fmt(r["always_longest"]),
            fmt(r["first_option"]), fmt(r["question_overlap"]), letters, str(r["n_yesno"]),
            f"{fmt(r['majority_verdict'])} {r['majority_label'] or ''}",
            fmt(closed.get("all")), fmt(closed.get("needs_corpus")),
            fmt(searched.get("all")), fmt(searched.get("needs_corpus")),
            str(r["n_needs_corpus"]), str(r["n_multi_hop"]),
        )  # fmt: skip
    console.print(table)
    leaks = result["leaks"]
    console.print(
        "leaks: "
        + ", ".join(f"{k}={len(v)}" for k, v in leaks.items())
        + f"\nthreshold violations: {result['violations'] or 'none'}"
    )


def write_dupes_md(result: dict[str, Any], path: Path) -> None:
    leaks = result["leaks"]
    lines = [f"# Duplicates and cross-split leaks in {result['dataset']}", ""]
    lines += ["## Passages gold in two splits", ""]
    lines += [f"- {d}: {', '.join(s)}" for d, s in leaks["evidence_in_several_splits"].items()]
    lines += ["", "## Near-duplicate questions across splits", ""]
    lines += [
        f"- {p['a']} ({p['splits'][0]}) ~ {p['b']} ({p['splits'][1]}): stem Jaccard "
        f"{p['stem_jaccard']}" + (f", same gold '{p['gold']}'" if p["same_gold"] else "")
        for p in leaks["near_duplicate_questions"]
    ]
    lines += ["", "## Same gold answer in different splits (check: same fact?)", ""]
    lines += [f"- {a} ~ {b}: '{g}'" for a, b, g in leaks["same_gold_across_splits"]]
    lines += ["", "## Repeated passage titles (one title per topic: merge or retitle)", ""]
    lines += [f"- '{t}': {', '.join(ids)}" for t, ids in leaks["repeated_titles"].items()]
    lines += [
        "",
        f"## Near-duplicate passage pairs (content-word Jaccard >= {sc.THRESHOLDS['passage_jaccard']})",
        "",
    ]
    titles = result.get("titles", {})
    lines += [
        f"- {a} '{titles.get(a, '')}' ~ {b} '{titles.get(b, '')}': {j}"
        for a, b, j in leaks["near_duplicate_passages"]
    ]
    lines += ["", "## Bare-number aliases", ""]
    lines += [f"- {i}: '{a}'" for i, a in leaks["bare_number_aliases"]]
    lines += ["", "## Parenthetical only on the gold option", ""]
    lines += [f"- {i}" for i in leaks["gold_only_qualifiers"]]
    lines += ["", "## Gold over 1.5x the mean distractor length", ""]
    lines += [f"- {i}" for i in leaks["long_golds"]]
    lines += ["", "## Baseline threshold violations", ""]
    lines += [f"- {v}" for v in result["violations"]] or ["- none"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="starter", help="Question-set spec (default starter).")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/shortcuts.json"))
    parser.add_argument("--no-scripted", action="store_true", help="Skip the scripted baseline.")
    parser.add_argument(
        "--group",
        help="Only items whose id starts with this prefix (e.g. obgi); leaks still global.",
    )
    parser.add_argument("--dupes-md", type=Path, help="Also write the leak lists as Markdown.")
    args = parser.parse_args(argv)
    questions = load_questions(args.dataset)
    items = list(questions)
    mine = [i for i in items if i.id.startswith(args.group)] if args.group else items
    if not mine:
        raise SystemExit(f"no items with id prefix {args.group!r} in {args.dataset}")
    if args.group:
        questions = QuestionSet(f"{questions.name}:{args.group}", mine, questions.corpus)
    reports = sc.split_reports(mine)
    scripted: dict[str, Any] = {}
    if not args.no_scripted:
        # A throwaway index cache unless the caller set one: the numbers must not depend on it.
        with tempfile.TemporaryDirectory() as cache:
            os.environ.setdefault("MEDR3_CACHE_DIR", cache)
            closed = scripted_correct(questions, search=False)
            searched = scripted_correct(questions, search=True)
        scripted = scripted_by_split(mine, closed, searched)
    result = {
        "dataset": args.dataset + (f" (ids {args.group}*)" if args.group else ""),
        "n": len(mine),
        "thresholds": sc.THRESHOLDS,
        "splits": [r.model_dump() for r in reports],
        "scripted": scripted,
        "violations": sc.baseline_violations(reports),
        "leaks": leak_report(items, questions),
    }
    if questions.corpus is not None:
        result["titles"] = {d.id: d.title for d in questions.corpus}
    print_tables(result)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    console.print(f"wrote {args.out}")
    if args.dupes_md:
        write_dupes_md(result, args.dupes_md)
        console.print(f"wrote {args.dupes_md}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
