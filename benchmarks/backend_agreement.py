"""Whoosh and tantivy on the starter set: how often each finds a question's gold passage, and how
much their rankings agree. Every starter question (all splits) is searched with its full text,
top 5, over the starter corpus; the figures quoted in docs/search.md come from this script.

    python benchmarks/backend_agreement.py [--k 5] [--out benchmarks/results/backend_agreement.json]

Per backend: gold@1 and gold@k (a gold evidence passage is the first hit / in the top k) and the
CPU milliseconds per query of this thread. Side by side: the mean share of top-k ids the two
lists have in common, and how often the first hit is the same document.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from medr3_env.corpora import load_questions
from medr3_env.search import build_searcher

BACKENDS = ("whoosh", "tantivy")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--k", type=int, default=5, help="Hits per query.")
    parser.add_argument(
        "--out", type=Path, default=Path("benchmarks/results/backend_agreement.json")
    )
    args = parser.parse_args()
    questions = load_questions("starter").items
    golds = [set(item.evidence_ids) for item in questions]
    texts = [item.question for item in questions]
    ranked: dict[str, list[list[str]]] = {}
    rows = []
    with tempfile.TemporaryDirectory() as cache:
        for backend in BACKENDS:
            searcher = build_searcher(backend=backend, cache_dir=cache)
            started = time.thread_time()
            ids = [[hit.doc_id for hit in searcher.search(text, k=args.k)] for text in texts]
            cpu = time.thread_time() - started
            searcher.close()
            ranked[backend] = ids
            rows.append(
                {
                    "backend": backend,
                    "questions": len(texts),
                    "gold@1": sum(bool(g & set(i[:1])) for g, i in zip(golds, ids, strict=True))
                    / len(texts),
                    f"gold@{args.k}": sum(bool(g & set(i)) for g, i in zip(golds, ids, strict=True))
                    / len(texts),
                    "cpu_ms_per_query": 1000 * cpu / len(texts),
                }
            )
    first, second = (ranked[b] for b in BACKENDS)
    agreement = {
        "pair": "/".join(BACKENDS),
        f"mean_top{args.k}_overlap": statistics.mean(
            len(set(a) & set(b)) / args.k for a, b in zip(first, second, strict=True)
        ),
        "same_first_hit": sum(a[:1] == b[:1] for a, b in zip(first, second, strict=True))
        / len(first),
    }
    console = Console()
    table = Table(title=f"starter set: {len(texts)} questions, full question text, top {args.k}")
    for column in ("backend", "gold@1", f"gold@{args.k}", "CPU ms/query"):
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(
            row["backend"],
            f"{row['gold@1']:.3f}",
            f"{row[f'gold@{args.k}']:.3f}",
            f"{row['cpu_ms_per_query']:.2f}",
        )
    console.print(table)
    console.print(
        f"{agreement['pair']}: mean top-{args.k} overlap "
        f"{agreement[f'mean_top{args.k}_overlap']:.3f}, same first hit "
        f"{agreement['same_first_hit']:.3f}",
        highlight=False,
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps({"k": args.k, "backends": rows, "agreement": agreement}, indent=2) + "\n",
        encoding="utf-8",
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
