"""Index scale: build synthetic corpora of PubMedQA-shaped documents at growing sizes and report
build time, peak resident memory, index size on disk and p50/p99 search latency.

    python benchmarks/index_scale.py --sizes 100000 1000000            # tantivy, search-only
    python benchmarks/index_scale.py --sizes 10000000 --workdir /scratch/medr3-scale
    python benchmarks/index_scale.py --jsonl --sizes 50000 --workers 0 1 --parallel-after 0
    python benchmarks/index_scale.py --sizes 400000 --memory-mb 32 --trace /tmp/mem

Each size (and each ``--workers`` value, side by side) is built in a fresh child process
(``medr3 index build``'s code path: streaming corpus, build lock, manifest with checksums), so
its peak RSS is its own. Memory is sampled every 0.5 s: ``RssAnon`` (heap) and ``RssFile``
(mapped index files, reclaimable page cache) peaks are reported apart. ``--jsonl`` writes the
documents to a MedRAG JSONL file first (not timed) and builds from it, as from a real corpus.
Queries are unique (12 words of a target document in a question template), so result caches
never hit. The table also shows how fast the synthetic documents are generated alone: that part
of the build time is the benchmark's, not the indexer's. CPU seconds are reported next to wall
time: the building process (all its threads), its main thread (the serial part) and the
preparation workers; on a shared machine they say what dedicated cores would take.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from synthetic_corpus import (  # noqa: E402
    _TEMPLATES,
    CHUNK,
    _chunk_documents,
    synthetic_corpus,
)

RESULTS = HERE / "results" / "index_scale.json"


def fast_queries(count: int, n_docs: int, chunks: int = 8, seed: int = 1) -> list[tuple[str, str]]:
    """Unique ``(query, target id)`` pairs like ``medical_queries``, with targets drawn from a
    few chunks so generating them costs a few chunks, not one chunk per query."""
    rng = np.random.default_rng(seed)
    n_chunks = (n_docs + CHUNK - 1) // CHUNK
    picked_chunks = rng.choice(n_chunks, size=min(chunks, n_chunks), replace=False)
    pairs: dict[str, str] = {}
    per_chunk = -(-count // len(picked_chunks))
    for chunk in picked_chunks:
        docs = _chunk_documents(int(chunk), n_docs, 0, 50_000)
        for _ in range(per_chunk):
            doc = docs[int(rng.integers(len(docs)))]
            words = re.findall(r"[a-z]+", (doc.title + " " + doc.content).lower())
            chosen = [words[int(i)] for i in rng.choice(len(words), size=12, replace=False)]
            template = _TEMPLATES[int(rng.integers(len(_TEMPLATES)))]
            pairs.setdefault(template.format(*chosen[:3]) + " " + " ".join(chosen[3:]), doc.id)
    return list(pairs.items())[:count]


def _disk_bytes(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())


class MemorySampler(threading.Thread):
    """Samples this process's resident memory every ``interval`` seconds from
    ``/proc/self/status``: ``RssAnon`` (heap: what the process really holds) and ``RssFile``
    (pages of mapped files, e.g. index segments read through ``mmap``: page cache the kernel
    reclaims under pressure), with the time of each peak."""

    FIELDS = ("VmRSS", "RssAnon", "RssFile")

    def __init__(self, interval: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.interval = interval
        self.started = time.monotonic()
        self.peaks = {field: (0, 0.0) for field in self.FIELDS}
        self.trace: list[tuple[float, int, int]] = []
        self._done = threading.Event()

    def sample(self) -> None:
        now = time.monotonic() - self.started
        values = {}
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                name, _, rest = line.partition(":")
                if name in self.FIELDS:
                    values[name] = int(rest.split()[0]) * 1024
        for field, value in values.items():
            if value > self.peaks[field][0]:
                self.peaks[field] = (value, now)
        self.trace.append((round(now, 1), values.get("RssAnon", 0), values.get("RssFile", 0)))

    def run(self) -> None:
        while not self._done.wait(self.interval):
            self.sample()

    def stop(self) -> dict[str, float]:
        self._done.set()
        self.join()
        self.sample()
        row = {}
        for field, (value, at) in self.peaks.items():
            key = {"VmRSS": "rss", "RssAnon": "anon", "RssFile": "file"}[field]
            row[f"peak_{key}_mb"] = round(value / 2**20)
            row[f"peak_{key}_at_s"] = round(at, 1)
        return row


def manifest_workers(args: argparse.Namespace) -> int:
    from medr3_env.search.parallel import default_workers

    return default_workers() if args.workers is None else args.workers


def _build(args: argparse.Namespace, corpus, out: Path):
    """``build_index``'s path (lock, work directory, manifest), with the builder's options."""
    from medr3_env.entities import load_extractor
    from medr3_env.search import backend_class
    from medr3_env.search.index_cache import build_index_dir

    extractor = load_extractor(args.entity_extractor)
    options: dict[str, int] = {"memory_mb": args.memory_mb} if args.memory_mb else {}
    if args.workers is not None:
        options["workers"] = args.workers
    if args.parallel_after is not None:
        options["parallel_after"] = args.parallel_after
    if args.backend == "tantivy":
        from medr3_env.search.tantivy_backend import build_tantivy_index as build
    else:
        build = backend_class(args.backend).build  # type: ignore[assignment]
    return build_index_dir(
        corpus,
        out,
        backend=args.backend,
        extractor=extractor.name,
        builder=lambda c, d: build(c, d, extractor, progress=True, **options),
    )


def child(args: argparse.Namespace) -> None:
    """Build one size and print one JSON line (run in its own process)."""
    from medr3_env.search import open_index

    n_docs = args.child
    out = Path(args.workdir) / f"synthetic-{n_docs}-{args.backend}"
    sample = min(n_docs, 20_000)
    cpu = time.process_time()
    generated = sum(1 for _ in synthetic_corpus(sample))
    generate_cpu_ms = 1000 * (time.process_time() - cpu) / generated
    sampler = MemorySampler() if Path("/proc/self/status").exists() else None
    if sampler:
        sampler.start()
    corpus = synthetic_corpus(n_docs)
    if args.jsonl:
        # A MedRAG JSONL file of the same documents (written before the clock starts): the
        # build then reads and validates records as it would a real corpus.
        from medr3_env.corpora import load_corpus

        path = Path(args.workdir) / f"synthetic-{n_docs}.jsonl"
        if not path.exists():
            tmp = path.with_suffix(".jsonl.tmp")
            with tmp.open("w", encoding="utf-8") as handle:
                for doc in corpus:
                    handle.write(json.dumps(doc.to_medrag()) + "\n")
            tmp.replace(path)
        corpus = load_corpus(f"medrag:{path}")
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    started, cpu, main_cpu = time.perf_counter(), time.process_time(), time.thread_time()
    manifest = _build(args, corpus, out)
    build_s = time.perf_counter() - started
    build_cpu_s = time.process_time() - cpu
    main_cpu_s = time.thread_time() - main_cpu
    after = resource.getrusage(resource.RUSAGE_CHILDREN)  # worker processes, once joined
    worker_cpu_s = (after.ru_utime + after.ru_stime) - (children.ru_utime + children.ru_stime)
    memory = sampler.stop() if sampler else {}
    if sampler and args.trace:
        Path(args.trace).write_text(json.dumps(sampler.trace) + "\n")
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    size = _disk_bytes(out)
    queries = fast_queries(args.queries, n_docs)
    searcher = open_index(out)
    for query, _ in queries[:20]:  # warm the OS page cache and the analyser, as a server would
        searcher.search(query + " warmup", k=10)
    latencies, found = [], 0
    for query, target in queries:
        t0 = time.perf_counter()
        hits = searcher.search(query, k=10)
        latencies.append((time.perf_counter() - t0) * 1000)
        found += any(h.doc_id == target for h in hits)
    latencies.sort()
    row = {
        "docs": n_docs,
        "source": "jsonl" if args.jsonl else "generated",
        "backend": args.backend,
        "entity_extractor": args.entity_extractor,
        "build_s": round(build_s, 1),
        "build_docs_per_s": round(n_docs / build_s),
        "build_cpu_s": round(build_cpu_s, 1),
        "cpu_ms_per_doc": round(1000 * build_cpu_s / n_docs, 3),
        "main_thread_cpu_ms_per_doc": round(1000 * main_cpu_s / n_docs, 3),
        "worker_cpu_ms_per_doc": round(1000 * worker_cpu_s / n_docs, 3),
        "workers": manifest_workers(args),
        "parallel_after": args.parallel_after,
        "load_1m_after_build": round(os.getloadavg()[0], 1),
        "generate_cpu_ms_per_doc": round(generate_cpu_ms, 3),
        "peak_rss_mb": round(peak_rss / 2**20),
        **memory,
        "memory_mb": args.memory_mb or 256,
        "index_mb": round(size / 2**20, 1),
        "bytes_per_doc": round(size / n_docs),
        "index_files": len(manifest.files),
        "queries": len(queries),
        "p50_ms": round(statistics.median(latencies), 2),
        "p99_ms": round(latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))], 2),
        "target_in_top10": round(found / len(queries), 3),
    }
    print(json.dumps(row), flush=True)
    if not args.keep:
        searcher.close()
        shutil.rmtree(out, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--backend", default="tantivy")
    parser.add_argument("--entity-extractor", default="none")
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--workdir", default="/tmp/medr3-index-scale")
    parser.add_argument("--keep", action="store_true", help="Keep the built indexes.")
    parser.add_argument(
        "--memory-mb", type=int, default=0, help="tantivy's indexing heap (default: 256 MB)"
    )
    parser.add_argument("--trace", help="Write the memory samples (s, anon, file) of a child here.")
    parser.add_argument(
        "--workers",
        type=int,
        nargs="+",
        default=[None],
        help="Preparation worker processes; several values: one build each, side by side",
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--parallel-after",
        type=int,
        help="Documents prepared in the building process before workers start (default 20,000)",
    )
    parser.add_argument(
        "--jsonl",
        action="store_true",
        help="Build from a MedRAG JSONL file of the documents (written first, not timed)",
    )
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        args.workers = args.workers[0]
        child(args)
        return
    Path(args.workdir).mkdir(parents=True, exist_ok=True)
    rows = []
    for n_docs, workers in [(n, w) for n in args.sizes for w in args.workers]:
        command = [sys.executable, __file__, "--child", str(n_docs)]
        command += [] if workers is None else ["--workers", str(workers)]
        command += ["--backend", args.backend, "--entity-extractor", args.entity_extractor]
        command += ["--queries", str(args.queries), "--workdir", args.workdir]
        command += ["--keep"] if args.keep else []
        command += ["--jsonl"] if args.jsonl else []
        if args.parallel_after is not None:
            command += ["--parallel-after", str(args.parallel_after)]
        command += ["--memory-mb", str(args.memory_mb)] if args.memory_mb else []
        command += ["--trace", f"{args.trace}.{n_docs}.json"] if args.trace else []
        done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=True)
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]), flush=True)
    columns = list(rows[0])
    print("\n" + " | ".join(columns))
    for row in rows:
        print(" | ".join(str(row[c]) for c in columns))
    result = {
        "benchmark": "index_scale",
        "command": "python benchmarks/index_scale.py " + " ".join(sys.argv[1:]),
        "machine": {
            "cpus": os.cpu_count(),
            "load_avg_1m_at_end": round(os.getloadavg()[0], 1),
            "python": platform.python_version(),
        },
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    previous = json.loads(args.out.read_text()) if args.out.exists() else {}

    def key(row: dict) -> tuple:
        return (
            row["docs"],
            row.get("workers", 0),
            row.get("memory_mb", 256),
            row.get("source", "generated"),
            row.get("parallel_after"),
        )

    merged = {key(r): r for r in previous.get("rows", []) if r.get("backend") == args.backend}
    merged.update({key(r): r for r in rows})
    result["rows"] = [merged[k] for k in sorted(merged)]
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
