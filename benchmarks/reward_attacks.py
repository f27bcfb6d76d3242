"""Run every scripted attack (medr3_env.attacks) on every split and stage, against the honest
baseline and trivial baselines, print the table and check the reward contract (docs/rewards.md).

    python benchmarks/reward_attacks.py [--limit 20] [--datasets starter,pubmedqa]
        [--out benchmarks/results/reward_attacks.json] [--no-check]

Exits 1 when the contract is violated. PubMedQA comes from ../shared/data/pubmedqa/ori_pqal.json
(or $MEDR3_PUBMEDQA) and is skipped when absent: its questions are a deterministic sample per
split, its corpus all 1,000 abstracts.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from medr3_env import MedR3Env
from medr3_env.attacks import (
    ATTACKS,
    FAMILIES,
    REFERENCE,
    TERMS,
    contract_violations,
    evaluate_all,
    sample,
)
from medr3_env.config import STAGES
from medr3_env.corpora.specs import load_questions

PUBMEDQA = Path(__file__).resolve().parents[2] / "shared" / "data" / "pubmedqa" / "ori_pqal.json"


def datasets(names: Iterable[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for name in names:
        if name == "starter":
            found["starter"] = "starter"
        elif name == "pubmedqa":
            path = Path(os.environ.get("MEDR3_PUBMEDQA", PUBMEDQA))
            if path.exists():
                found["pubmedqa"] = f"pubmedqa:{path}"
            else:
                print(f"skipping PubMedQA: {path} not found", file=sys.stderr)
    return found


def table(results: dict[str, Any]) -> str:
    lines = []
    header = f"{'policy':28s} {'family':10s} {'total':>7s} {'Δ':>7s} " + " ".join(
        f"{t[:6]:>7s}" for t in ("accuracy", *TERMS)
    )
    for key, rows in results.items():
        honest = rows[REFERENCE]["total"]
        lines += [f"\n== {key} (n={rows[REFERENCE]['n']})", header]
        for name, row in sorted(rows.items(), key=lambda kv: -kv[1]["total"]):
            lines.append(
                f"{name:28s} {FAMILIES.get(name, 'oracle'):10s} {row['total']:7.3f} "
                f"{row['total'] - honest:+7.3f} "
                + " ".join(f"{row[t]:7.3f}" for t in ("accuracy", *TERMS))
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=20, help="questions per split (0: all)")
    parser.add_argument("--datasets", default="starter,pubmedqa")
    parser.add_argument("--stages", default=",".join(STAGES))
    parser.add_argument("--attacks", default="", help="comma list (default: all)")
    parser.add_argument("--entity-extractor", default="auto")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/reward_attacks.json"))
    parser.add_argument("--no-check", action="store_true", help="report, never exit 1")
    args = parser.parse_args(argv)
    names = [a for a in args.attacks.split(",") if a] or list(ATTACKS)
    results: dict[str, Any] = {}
    problems: list[str] = []
    started = time.perf_counter()
    for dataset, spec in datasets(args.datasets.split(",")).items():
        questions = load_questions(spec)
        for stage in args.stages.split(","):
            base = MedR3Env(
                dataset=spec, stage=stage, split=None, entity_extractor=args.entity_extractor
            )
            for split in sorted({q.split for q in questions if q.split}):
                env = MedR3Env(
                    dataset=spec,
                    stage=stage,
                    split=split,
                    searcher=base.searcher,
                    questions=questions,
                    entity_extractor=args.entity_extractor,
                )
                items = sample(list(env.questions), args.limit or None)
                key = f"{dataset}/{stage}/{split}"
                results[key] = evaluate_all(env, items, names, args.entity_extractor)
                problems += contract_violations(key, stage, results[key])
                print(
                    f"{key}: {len(items)} questions, {time.perf_counter() - started:.0f}s",
                    file=sys.stderr,
                )
    print(table(results))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "limit_per_split": args.limit,
                "margin": 0.01,
                "seconds": round(time.perf_counter() - started, 1),
                "violations": problems,
                "results": results,
            },
            indent=1,
        )
    )
    print(f"\n{len(problems)} contract violations" + "".join(f"\n  {p}" for p in problems))
    return 1 if problems and not args.no_check else 0


if __name__ == "__main__":
    raise SystemExit(main())
