"""Resume after SIGKILL: start a tantivy build of a synthetic MedRAG JSONL corpus in a child
process, SIGKILL it part-way, rerun the same build and report what the rerun redid.

    python benchmarks/index_resume.py --docs 50000 --commit-every 10000 --kill-after 30

The child is ``build_index``'s code path (lock, ``OUT.partial``, checkpoint, manifest) with
``commit_every`` lowered so that a short run commits several times. Reported: documents
committed when it was killed, the rerun's wall and CPU seconds, how many documents the rerun
prepared (the rest were only read and skipped), a fresh build's times for comparison, and
how the resumed index's answers to 200 queries compare with a fresh build's (and, as the
yardstick, a second fresh build's with the first).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from index_scale import fast_queries  # noqa: E402
from synthetic_corpus import synthetic_corpus  # noqa: E402

RESULTS = HERE / "results" / "index_resume.json"


def _jsonl(path: Path, n_docs: int) -> None:
    if path.exists():
        return
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        for doc in synthetic_corpus(n_docs):
            handle.write(json.dumps(doc.to_medrag()) + "\n")
    tmp.replace(path)


def child(corpus_path: str, out: str, commit_every: int) -> None:
    """One build; prints ``prepared N wall S cpu S``."""
    from medr3_env.corpora import load_corpus
    from medr3_env.entities import load_extractor
    from medr3_env.search.index_cache import build_index_dir
    from medr3_env.search.tantivy_backend import build_tantivy_index

    inner = load_extractor("none")
    prepared = 0

    class Counting:
        name = inner.name

        def extract_sentences(self, texts, batch_size=64):  # type: ignore[no-untyped-def]
            nonlocal prepared
            texts = list(texts)
            prepared += len(texts)
            return inner.extract_sentences(texts, batch_size)

    extractor = Counting()
    started, cpu = time.perf_counter(), time.process_time()
    build_index_dir(
        load_corpus(f"medrag:{corpus_path}"),
        Path(out),
        backend="tantivy",
        extractor=extractor.name,
        builder=lambda c, d: build_tantivy_index(
            c, d, extractor, commit_every=commit_every, workers=0, progress=False
        ),
    )
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    print(f"prepared {prepared} wall {wall:.1f} cpu {cpu:.1f}", flush=True)


def _run(corpus: Path, out: Path, commit_every: int, kill_after: float | None = None) -> dict:
    command = [sys.executable, __file__, "--child", str(corpus), str(out), str(commit_every)]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        stdout, stderr = proc.communicate(timeout=kill_after)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        return {"killed_after_s": kill_after}
    if proc.returncode != 0:
        raise RuntimeError(stderr)
    words = stdout.split()
    return {
        "prepared": int(words[1]),
        "wall_s": float(words[3]),
        "cpu_s": float(words[5]),
        "log": [line for line in stderr.splitlines() if "interrupted build" in line],
    }


def _answers(directory: Path, queries: list[tuple[str, str]]) -> list[list[tuple[str, float]]]:
    from medr3_env.search import open_index

    searcher = open_index(directory)
    try:
        return [[(h.doc_id, h.score) for h in searcher.search(q, k=10)] for q, _ in queries]
    finally:
        searcher.close()


def _compare(ours: list, theirs: list) -> dict[str, int]:
    """Queries with identical top 10; with identical scores rank by rank; and with the same
    documents at every score above the 10th hit's (equal scores are ordered by segment layout,
    which tantivy's indexing threads make differ between any two builds)."""
    same = same_scores = same_up_to_ties = 0
    for a, b in zip(ours, theirs, strict=True):
        same += a == b
        if [s for _, s in a] != [s for _, s in b]:
            continue
        same_scores += 1
        cut = a[-1][1] if a else 0.0
        same_up_to_ties += {h for h in a if h[1] > cut} == {h for h in b if h[1] > cut}
    return {
        "queries": len(ours),
        "same_top10": same,
        "same_scores": same_scores,
        "same_up_to_ties": same_up_to_ties,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=50_000)
    parser.add_argument("--commit-every", type=int, default=10_000)
    parser.add_argument("--kill-after", type=float, default=30.0)
    parser.add_argument("--workdir", default="/tmp/medr3-index-resume")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1], int(args.child[2]))
        return
    from medr3_env.search.checkpoint import BuildCheckpoint
    from medr3_env.search.integrity import IndexManifest

    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    corpus = work / f"synthetic-{args.docs}.jsonl"
    _jsonl(corpus, args.docs)
    resumed, fresh = work / "resumed", work / "fresh"
    for path in (resumed, fresh, work / "resumed.partial", work / "fresh-again"):
        shutil.rmtree(path, ignore_errors=True)
    killed = _run(corpus, resumed, args.commit_every, args.kill_after)
    checkpoint = BuildCheckpoint.read(work / "resumed.partial")
    committed = checkpoint.documents_committed if checkpoint else 0
    rerun = _run(corpus, resumed, args.commit_every)
    baseline = _run(corpus, fresh, args.commit_every)
    again = work / "fresh-again"
    shutil.rmtree(again, ignore_errors=True)
    _run(corpus, again, args.commit_every)
    queries = fast_queries(200, args.docs)
    fresh_answers = _answers(fresh, queries)
    row = {
        "docs": args.docs,
        "commit_every": args.commit_every,
        **killed,
        "committed_at_kill": committed,
        "rerun_prepared": rerun["prepared"],
        "rerun_wall_s": rerun["wall_s"],
        "rerun_cpu_s": rerun["cpu_s"],
        "rerun_log": rerun["log"],
        "fresh_wall_s": baseline["wall_s"],
        "fresh_cpu_s": baseline["cpu_s"],
        "doc_count": IndexManifest.read(resumed).doc_count,
        "resumed_vs_fresh": _compare(_answers(resumed, queries), fresh_answers),
        "fresh_vs_fresh": _compare(_answers(again, queries), fresh_answers),
        "load_1m_at_end": round(os.getloadavg()[0], 1),
    }
    print(json.dumps(row, indent=2))
    result = {
        "benchmark": "index_resume",
        "command": "python benchmarks/index_resume.py " + " ".join(sys.argv[1:]),
        "machine": {"cpus": os.cpu_count()},
        "rows": [row],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
