"""Retrieval quality on real data: for each PubMedQA question, is its own abstract among the top-k
of all 1,000 abstracts? Prints Recall@1/5/10 and MRR per backend and writes JSON.

    python benchmarks/retrieval_quality.py [--data ../shared/data/pubmedqa/ori_pqal.json] [--out runs/retrieval_quality.json]

Two query styles: the full question as-is, and a harder "model-style" short query (the first 8
content words of the question). Documents exclude LONG_ANSWER (the abstract's conclusion).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from medr3_env.corpora import load_corpus, load_questions
from medr3_env.search import build_searcher
from medr3_env.search.query import query_terms

BACKENDS = ("whoosh", "tantivy")  # the two local engines this benchmark compares

DEFAULT_DATA = (
    Path(__file__).resolve().parents[2] / "shared" / "data" / "pubmedqa" / "ori_pqal.json"
)


def evaluate(searcher, questions, make_query) -> dict[str, float]:
    ranks = []
    started = time.perf_counter()
    for item in questions:
        hits = searcher.search(make_query(item.question), k=10)
        ids = [h.doc_id for h in hits]
        ranks.append(ids.index(item.id) + 1 if item.id in ids else None)
    elapsed = time.perf_counter() - started
    n = len(ranks)
    return {
        "recall@1": sum(r is not None and r <= 1 for r in ranks) / n,
        "recall@5": sum(r is not None and r <= 5 for r in ranks) / n,
        "recall@10": sum(r is not None for r in ranks) / n,
        "mrr@10": sum(1 / r for r in ranks if r) / n,
        "ms_per_query": 1000 * elapsed / n,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, default=Path("runs/retrieval_quality.json"))
    args = parser.parse_args()
    if not args.data.exists():
        raise SystemExit(
            f"PubMedQA file not found: {args.data} (pass --data PATH to ori_pqal.json)"
        )
    spec = f"pubmedqa:{args.data}"
    questions = load_questions(spec)
    corpus = load_corpus(spec)
    short = lambda q: " ".join(query_terms(q)[:8])  # noqa: E731
    results = []
    with tempfile.TemporaryDirectory() as cache:
        for backend in BACKENDS:
            searcher = build_searcher(corpus, backend=backend, cache_dir=cache)
            for style, make_query in (("question", lambda q: q), ("short-8", short)):
                row = {
                    "backend": backend,
                    "query": style,
                    "n": len(questions),
                    **evaluate(searcher, questions, make_query),
                }
                results.append(row)
    table = Table(title=f"PubMedQA self-retrieval over {len(questions)} abstracts")
    for column in ("backend", "query", "recall@1", "recall@5", "recall@10", "mrr@10", "ms/query"):
        table.add_column(column, justify="right")
    for r in results:
        table.add_row(
            r["backend"],
            r["query"],
            *(f"{r[k]:.3f}" for k in ("recall@1", "recall@5", "recall@10", "mrr@10")),
            f"{r['ms_per_query']:.1f}",
        )
    Console().print(table)
    for backend in BACKENDS:
        full, short_row = (
            next(r for r in results if r["backend"] == backend and r["query"] == s)
            for s in ("question", "short-8")
        )
        Console().print(
            f"{backend}: Recall@1 change from full question to 8-word query: {short_row['recall@1'] - full['recall@1']:+.3f}"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"data": str(args.data), "results": results}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
