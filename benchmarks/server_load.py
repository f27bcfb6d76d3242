"""Server soak: drive ``medr3 serve`` with many concurrent loopback clients for a bounded time.

    python benchmarks/server_load.py                                  # 64 clients, 60 s
    python benchmarks/server_load.py --duration 10                    # shorter
    python benchmarks/server_load.py --index /tmp/medr3-index-scale/synthetic-1000000-tantivy

The server runs as a real ``medr3 serve`` subprocess over a tantivy index of PubMedQA-shaped
synthetic documents (built here unless ``--index`` names one). Each client thread keeps one
keep-alive connection and sends ``POST /retrieve`` with one unique query per request (no query
repeats, so the server's result cache never hits). Reported: queries/s, p50/p99 latency per
request, errors (non-200 answers and connection failures), the server's resident memory at the
start, every few seconds and at the end (split into anonymous memory, which a leak would grow,
and mapped index files, which grow as queries touch more of the index), and how long SIGTERM
took to stop it (exit status).
The clients share this machine's cores with the server: on a small machine they cost part of
the throughput.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from index_scale import fast_queries  # noqa: E402
from synthetic_corpus import synthetic_corpus  # noqa: E402

RESULTS = HERE / "results" / "server_load.json"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_bytes(pid: int, kind: str = "VmRSS") -> int:
    """Resident memory of ``pid``: ``VmRSS`` (all), ``RssAnon`` (heap: what a leak grows) or
    ``RssFile`` (mapped index files in the page cache: grows as queries touch the index)."""
    with open(f"/proc/{pid}/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith(f"{kind}:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {kind} for pid {pid}")


def memory(pid: int) -> dict[str, float]:
    return {kind: round(rss_bytes(pid, kind) / 2**20, 1) for kind in ("RssAnon", "RssFile")}


def prepare_index(args: argparse.Namespace) -> tuple[Path, int]:
    from medr3_env.search import IndexManifest, build_index

    if args.index:
        manifest = IndexManifest.read(args.index)
        found = re.fullmatch(r"synthetic-(\d+)", manifest.corpus_name)
        if not found:
            raise SystemExit(f"{args.index}: queries are generated for synthetic-N indexes only")
        return Path(args.index), int(found.group(1))
    out = Path(args.workdir) / f"synthetic-{args.docs}-tantivy"
    try:
        IndexManifest.read(out).check(out)
    except ValueError:
        print(f"building {out} ({args.docs:,} documents)…", file=sys.stderr)
        build_index(synthetic_corpus(args.docs), out, backend="tantivy", entity_extractor="none")
    return out, args.docs


def wait_healthy(port: int, process: subprocess.Popen, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"medr3 serve exited with status {process.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/health")
            reply = conn.getresponse()
            if reply.status == 200:
                return json.loads(reply.read())
        except OSError:
            time.sleep(0.2)
    raise SystemExit("medr3 serve did not become healthy")


class Client(threading.Thread):
    """One keep-alive connection sending unique queries until the deadline."""

    def __init__(self, port: int, queries, lock: threading.Lock, deadline: float, topk: int):
        super().__init__(daemon=True)
        self.port, self.queries, self.lock = port, queries, lock
        self.deadline, self.topk = deadline, topk
        self.latencies: list[float] = []
        self.errors: list[str] = []
        self.empty = 0

    def run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        while time.monotonic() < self.deadline:
            with self.lock:
                query = next(self.queries, None)
            if query is None:
                break  # the pool of unique queries ran out
            body = json.dumps({"queries": [query], "topk": self.topk})
            started = time.perf_counter()
            try:
                conn.request(
                    "POST", "/retrieve", body, headers={"Content-Type": "application/json"}
                )
                reply = conn.getresponse()
                data = reply.read()
                elapsed = time.perf_counter() - started
                if reply.status != 200:
                    self.errors.append(f"HTTP {reply.status}")
                    continue
                self.latencies.append(elapsed)
                self.empty += not json.loads(data)["result"][0]
            except (OSError, http.client.HTTPException, ValueError) as exc:
                self.errors.append(type(exc).__name__)
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, help="A synthetic-N index (index_scale.py --keep).")
    parser.add_argument("--docs", type=int, default=100_000, help="Synthetic documents to index.")
    parser.add_argument("--workdir", default="/tmp/medr3-index-scale")
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--duration", type=float, default=60.0, help="Seconds of load.")
    parser.add_argument("--topk", type=int, default=5)
    parser.add_argument("--pool", type=int, default=30_000, help="Unique queries prepared.")
    parser.add_argument("--sample-every", type=float, default=5.0, help="RSS sampling period.")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    index, n_docs = prepare_index(args)
    pool = [q for q, _ in fast_queries(args.pool, n_docs, chunks=max(8, args.pool // 500))]
    port = free_port()
    command = [sys.executable, "-c", "from medr3_env.cli import main; main()", "serve"]
    command += ["--index", str(index), "--port", str(port), "--max-queries", "8"]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        health = wait_healthy(port, server)
        rss_start, anon_start = rss_bytes(server.pid), memory(server.pid)
        # One query per client first: connections open, the index pages are touched.
        lock = threading.Lock()
        queries = iter(itertools.cycle(pool))
        warm = [Client(port, queries, lock, time.monotonic() + 2, args.topk) for _ in range(4)]
        for client in warm:
            client.start()
        for client in warm:
            client.join()
        rss_warm, anon_warm = rss_bytes(server.pid), memory(server.pid)
        queries = iter(pool)  # the measured run sends each query once
        started = time.monotonic()
        deadline = started + args.duration
        clients = [Client(port, queries, lock, deadline, args.topk) for _ in range(args.clients)]
        for client in clients:
            client.start()
        samples: list[tuple[float, int]] = []
        split: list[dict[str, float]] = []
        while any(c.is_alive() for c in clients):
            samples.append((round(time.monotonic() - started, 1), rss_bytes(server.pid)))
            split.append(memory(server.pid))
            time.sleep(min(args.sample_every, max(0.05, deadline - time.monotonic() + 0.05)))
        for client in clients:
            client.join()
        wall = time.monotonic() - started
        rss_end, anon_end = rss_bytes(server.pid), memory(server.pid)
        samples.append((round(wall, 1), rss_end))
        split.append(anon_end)
        served = wait_healthy(port, server)["server"]
        stop_started = time.monotonic()
        server.send_signal(signal.SIGTERM)
        exit_code = server.wait(60)
        stop_s = time.monotonic() - stop_started
    finally:
        if server.poll() is None:
            server.kill()
    latencies = sorted(x for c in clients for x in c.latencies)
    errors = [e for c in clients for e in c.errors]
    if len(latencies) + len(errors) >= len(pool):
        print("warning: the query pool ran out; raise --pool", file=sys.stderr)
    row = {
        "docs": health["doc_count"],
        "backend": health["backend"],
        "clients": args.clients,
        "duration_s": round(wall, 1),
        "requests": len(latencies) + len(errors),
        "queries_per_s": round(len(latencies) / wall, 1),
        "p50_ms": round(1000 * statistics.median(latencies), 1),
        "p99_ms": round(1000 * latencies[int(0.99 * (len(latencies) - 1))], 1),
        "max_ms": round(1000 * latencies[-1], 1),
        "errors": len(errors),
        "error_kinds": sorted(set(errors)),
        "empty_results": sum(c.empty for c in clients),
        "rss_start_mb": round(rss_start / 2**20, 1),
        "rss_after_warmup_mb": round(rss_warm / 2**20, 1),
        "rss_end_mb": round(rss_end / 2**20, 1),
        "rss_max_mb": round(max(r for _, r in samples) / 2**20, 1),
        "anon_start_mb": anon_start["RssAnon"],
        "anon_after_warmup_mb": anon_warm["RssAnon"],
        "anon_end_mb": anon_end["RssAnon"],
        "anon_max_mb": max(m["RssAnon"] for m in split),
        "file_mapped_end_mb": anon_end["RssFile"],
        "server_requests_served": served["requests_served"],
        "server_errors": served["server_errors"],
        "sigterm_exit_code": exit_code,
        "sigterm_stop_s": round(stop_s, 2),
    }
    for key, value in row.items():
        print(f"{key:>24}: {value}")
    result = {
        "benchmark": "server_load",
        "command": "python benchmarks/server_load.py " + " ".join(sys.argv[1:]),
        "machine": {"cpus": os.cpu_count(), "load_avg_1m_at_end": round(os.getloadavg()[0], 1)},
        "result": row,
        "rss_samples_mb": [
            {"t": t, "rss": round(r / 2**20, 1), **m}
            for (t, r), m in zip(samples, split, strict=True)
        ],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
