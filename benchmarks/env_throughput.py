"""Environment steps per second on real-length documents: search → read → answer episodes with
every reward term on, a unique query every search, result caches off, one core. Prints a table and
a per-stage breakdown of a step, and writes JSON.

    python benchmarks/env_throughput.py [--sizes 10000,100000] [--backends tantivy,whoosh]
        [--pubmedqa PATH] [--seconds 5] [--whoosh-max-docs 100000] [--memory-sizes 100000]
        [--group 16] [--warmup-blocks 0] [--extractor auto]
        [--out benchmarks/results/env_throughput.json]

Corpora: PubMedQA's 1,000 labelled abstracts (``../shared/data/pubmedqa/ori_pqal.json``; the row
is skipped, and says so, when the file is absent) with its own questions, and seeded synthetic
corpora shaped like PubMedQA abstracts (``synthetic_corpus.py``) with questions built from target
documents. ``--sizes 1000000`` adds the million-document corpus (a tantivy build with the lexicon
extractor takes about 20 minutes on one core, extraction being most of it).

Each episode searches with the question plus, after the first pass over the questions, words of
its gold document, so no query repeats; the answer turn carries about 80 words of reasoning that
copies the first hit's snippet (what a policy sees), so the evidence term's copy check has work.
The measuring process is pinned to one core (``sched_setaffinity``), and rates and latencies count
its thread's CPU time (``time.thread_time``), so other processes on a shared machine do not slow
the figures down (wall-clock steps/s are in the JSON as ``wall_steps_per_s``). Columns:

* ``steps/s``: one env, hit cache off (every search reaches the engine), the reward terms' memos
  emptied first: a first pass over the questions and their documents, the costliest case (on
  PubMedQA's 1,000 questions a 4-second column runs about 1.4 passes; with ``--warmup-blocks``
  it measures a warm process instead);
* ``group x16``: the same, but each question is answered by 16 rollouts in a row, as GRPO with
  the bundled stages' ``n_samples_per_prompt: 16`` does: every rollout still sends its own
  unique query and writes its own reasoning, and the work done once per question or per read
  document (its entities, its copy data) is shared by the group, as it is in training;
* ``cached``: hit cache on, every search a repeat of an earlier one (an upper bound);
* ``vec x8``: ``gymnasium.make_vec("MedR3-v0", num_envs=8)``, hit cache off, searches batched;
* ``p50 ms`` / ``raw ms``: one ``search`` call with the cache off, next to the same query through
  the tantivy library alone on the same index (``search_latency.RawTantivy``), interleaved;
* ``env KiB`` / ``searcher MiB``: resident memory per environment and of the shared searcher
  (measured in a child process, for ``--memory-sizes``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from rich.console import Console
from rich.table import Table

import medr3_env  # noqa: F401  (registers the MedR3 ids)
from medr3_env.corpora.records import QAItem, QuestionSet
from medr3_env.corpora.specs import load_questions

sys.path.insert(0, str(Path(__file__).resolve().parent))
from synthetic_corpus import CHUNK, _chunk_documents, synthetic_corpus  # noqa: E402

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "env_throughput.json"
CLOCK = time.thread_time
"""Rates and latencies count the CPU time of the measuring thread: on a shared machine, time
slices given to other processes would otherwise count as MedR3's (wall figures are in the JSON)."""
WALL_LIMIT = 6.0
"""A measurement stops after this many times its CPU budget in wall time, however loaded."""
DEFAULT_PUBMEDQA = Path(__file__).resolve().parents[2] / "shared/data/pubmedqa/ori_pqal.json"
_WORD = re.compile(r"[a-z]{4,}")
console = Console(stderr=True)

# Reasoning text of the answer turn (about 80 words with the copied snippet).
_REASONING = (
    "The question is about {a} and {b}. The first passage is the most relevant one; it states: "
    "{copied} That finding bears directly on {a}, and the remaining results on {c} point the same "
    "way, with no contradicting evidence in the other passages, so the answer follows."
)


# ------------------------------------------------------------------ workloads
@dataclasses.dataclass
class Workload:
    """A corpus with its questions and, per question, words of its gold document (query variants)."""

    name: str
    docs: int
    questions: QuestionSet
    words: dict[str, list[str]]
    note: str = ""

    def query(self, item: QAItem, round_: int) -> str:
        """The search text of ``item`` in pass ``round_`` over the questions (unique per pass)."""
        if round_ == 0:
            return item.question
        words = self.words[item.id]
        picked = [words[(round_ * 7 + j * 3) % len(words)] for j in range(2)]
        return f"{item.question} {' '.join(picked)} {round_}"


def pubmedqa_workload(path: Path) -> Workload:
    questions = load_questions(f"pubmedqa:{path}")
    words = {doc.id: _WORD.findall(doc.content.lower()) or ["study"] for doc in questions.corpus}
    by_item = {item.id: words[item.evidence_ids[0]] for item in questions}
    return Workload("pubmedqa", len(questions), questions, by_item)


_TEMPLATES = (
    "What is the effect of {} on {} in patients with {}?",
    "Is {} associated with {} after {}?",
    "Does {} reduce {} in {}?",
)


def synthetic_workload(size: int, n_questions: int = 3_000, seed: int = 7) -> Workload:
    """Questions built from documents of a few random chunks (chunks are regenerated, not stored)."""
    rng = np.random.default_rng(seed)
    n_chunks = (size + CHUNK - 1) // CHUNK
    chunks = rng.choice(n_chunks, size=min(n_chunks, 30), replace=False)
    per_chunk = -(-n_questions // len(chunks))
    items, words = [], {}
    for chunk in chunks:
        docs = _chunk_documents(int(chunk), size, 0, 50_000)
        for position in rng.choice(len(docs), size=min(per_chunk, len(docs)), replace=False):
            doc = docs[int(position)]
            vocab = _WORD.findall(f"{doc.title} {doc.content}".lower()) or ["study"]
            picked = [vocab[int(i)] for i in rng.choice(len(vocab), size=9)]
            template = _TEMPLATES[len(items) % len(_TEMPLATES)]
            question = template.format(*picked[:3]) + " " + " ".join(picked[3:])
            item_id = f"synq-{len(items):05d}"
            items.append(
                QAItem(
                    id=item_id,
                    question=question,
                    answer_type="free",
                    answer=picked[0],
                    evidence_ids=(doc.id,),
                )
            )
            words[item_id] = vocab
    questions = QuestionSet(f"synthetic-{size}-questions", items, synthetic_corpus(size))
    return Workload(f"synthetic-{size}", size, questions, words)


# ------------------------------------------------------------------ episodes
def _copied_snippet(observation: str) -> str:
    lines = observation.splitlines()
    return lines[2] if len(lines) > 2 and lines[1].startswith("Doc 1 ") else "nothing useful."


def episode(env, workload: Workload, item: QAItem, round_: int, rollout: int | None = None) -> int:
    """One search → read → answer episode; returns the number of steps taken. ``rollout``
    (one of a group on the same question) picks other words for the reasoning."""
    env.reset(options={"item_id": item.id})
    words = workload.words[item.id]
    if rollout is not None:
        words = [words[(rollout * 7 + j * 5) % len(words)] for j in range(3)]
    query = workload.query(item, round_)
    observation, _, _, _, info = env.step(
        f"<think>I need evidence about {words[0]} and {words[-1]}.</think><search>{query}</search>"
    )
    steps = 1
    if info["retrieved_ids"]:
        env.step(f"<think>Doc 1 looks relevant.</think><read>{info['retrieved_ids'][0]}</read>")
        steps += 1
    reasoning = _REASONING.format(
        a=words[0], b=words[len(words) // 2], c=words[-1], copied=_copied_snippet(observation)
    )
    env.step(f"<think>{reasoning}</think><answer>{item.answer}</answer>")
    return steps + 1


def run_episodes(
    env, workload: Workload, seconds: float, start: int = 0, limit: int | None = None
) -> tuple[int, float, int]:
    """Back-to-back episodes over the questions in order for ``seconds`` (or ``limit`` episodes)."""
    items = workload.questions.items
    steps, number, started, wall = 0, start, CLOCK(), time.perf_counter()
    while (
        CLOCK() - started < seconds
        and time.perf_counter() - wall < WALL_LIMIT * seconds
        and (limit is None or number - start < limit)
    ):
        steps += episode(env, workload, items[number % len(items)], number // len(items))
        number += 1
    LAST_WALL[0] = time.perf_counter() - wall
    return steps, CLOCK() - started, number


def run_groups(
    env, workload: Workload, seconds: float, start: int, group: int = 16
) -> tuple[int, float, int]:
    """Back-to-back groups of ``group`` rollouts per question (questions in order from
    ``start``) for ``seconds``; each rollout's query is its own (round ``100 + pass × group +
    rollout``, a round no other column uses)."""
    items = workload.questions.items
    steps, number, started, wall = 0, start, CLOCK(), time.perf_counter()
    while CLOCK() - started < seconds and time.perf_counter() - wall < WALL_LIMIT * seconds:
        item = items[number % len(items)]
        for rollout in range(group):
            round_ = 100 + (number // len(items)) * group + rollout
            steps += episode(env, workload, item, round_, rollout=rollout)
        number += 1
    LAST_WALL[0] = time.perf_counter() - wall
    return steps, CLOCK() - started, number


def run_vector(envs, workload: Workload, seconds: float, start: int) -> tuple[int, float]:
    """Sub-env steps per second for a vector env (autoreset steps excluded), unique queries."""
    n = envs.num_envs
    _, infos = envs.reset(seed=0)
    items = {item.id: item for item in workload.questions}
    current = list(infos["item_id"])
    phase, retrieved, counter = [0] * n, [""] * n, start
    rounds = [counter + i for i in range(n)]
    steps, began, wall = 0, CLOCK(), time.perf_counter()
    while CLOCK() - began < seconds and time.perf_counter() - wall < WALL_LIMIT * seconds:
        actions = []
        for i in range(n):
            item, words = items[current[i]], workload.words[current[i]]
            if phase[i] == 0:
                query = workload.query(item, 1 + rounds[i])
                actions.append(f"<think>Look up {words[0]}.</think><search>{query}</search>")
            elif phase[i] == 1 and retrieved[i]:
                actions.append(f"<read>{retrieved[i]}</read>")
            else:
                reasoning = _REASONING.format(
                    a=words[0], b=words[1 % len(words)], c=words[-1], copied=""
                )
                actions.append(f"<think>{reasoning}</think><answer>{item.answer}</answer>")
        _, _, terminated, truncated, infos = envs.step(tuple(actions))
        for i in range(n):
            if phase[i] == 3:  # this call reset env i (next-step autoreset)
                current[i], phase[i], retrieved[i] = infos["item_id"][i], 0, ""
                counter += 1
                rounds[i] = counter + n
                continue
            steps += 1
            ids = infos["retrieved_ids"][i]
            retrieved[i] = ids[0] if len(ids) else retrieved[i]
            done = terminated[i] or truncated[i]
            phase[i] = 3 if done else (2 if phase[i] == 1 or not retrieved[i] else 1)
    LAST_WALL[0] = time.perf_counter() - wall
    return steps, CLOCK() - began


LAST_WALL = [0.0]  # wall seconds of the last run_episodes / run_vector call


# ------------------------------------------------------------------ per-stage breakdown
class StageTimer:
    """Exclusive wall time per labelled call (a call's time excludes timed calls inside it)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self._stack: list[float] = []

    def wrap(self, label: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            self._stack.append(0.0)
            started = CLOCK()
            try:
                return fn(*args, **kwargs)
            finally:
                elapsed = CLOCK() - started
                inner = self._stack.pop()
                self.seconds[label] += elapsed - inner
                self.calls[label] += 1
                if self._stack:
                    self._stack[-1] += elapsed

        return timed

    def patch(self, owner: Any, attribute: str, label: str) -> None:
        if hasattr(owner, attribute):
            setattr(owner, attribute, self.wrap(label, getattr(owner, attribute)))


# (module, attribute, label): the call sites the environment and backends use.
SEARCH_STAGES = (
    ("medr3_env.search.tantivy_backend", "best_sentence", "search: snippets"),
    ("medr3_env.search.whoosh_backend", "best_sentence", "search: snippets"),
    ("medr3_env.search.tantivy_backend", "snippet_for", "search: snippets"),
    ("medr3_env.search.whoosh_backend", "snippet_for", "search: snippets"),
)
ENV_STAGES = (
    ("medr3_env.env", "parse_action", "parse"),
    ("medr3_env.rewards.guards", "copied", "reward evidence: copy check"),
    ("medr3_env.rewards.guards", "document_shingles", "reward evidence: copy check"),
    ("medr3_env.env", "render_search", "render"),
    ("medr3_env.env", "render_document", "render"),
    ("medr3_env.env", "render_error", "render"),
    ("medr3_env.rewards.evidence", "strip_copied_spans", "reward evidence: copy check"),
    ("medr3_env.rewards.guards", "copied_words", "reward evidence: copy check"),
    ("medr3_env.rewards.guards", "document_copy_source", "reward evidence: document copy data"),
    ("medr3_env.rewards.guards", "reasoning_copy_source", "reward evidence: document copy data"),
    ("medr3_env.rewards.evidence", "_asked_source", "reward evidence: question copy data"),
    ("medr3_env.rewards.evidence", "_document_words", "reward evidence: gold phrase check"),
    ("medr3_env.rewards.evidence", "annotation_spans", "reward evidence: annotation matching"),
    ("medr3_env.rewards.evidence", "entity_spans", "reward evidence: entities of the reasoning"),
    ("medr3_env.rewards.evidence", "_in_documents", "reward evidence: gold phrase check"),
    ("medr3_env.rewards.evidence", "_anchors", "reward evidence: question entities"),
    ("medr3_env.rewards.evidence", "_title_entities", "reward evidence: title entities"),
    ("medr3_env.rewards.guards", "sentence_spans", "reward evidence: sentences"),
)
SEARCHER_STAGES = (
    ("search", "search: engine + hits"),
    ("plan", "search: plan"),
    ("_engine", "search: engine"),
    ("_hits", "search: hits"),
    ("get", "read: get document"),
)


PER_WORD_MEMOS = {"near_key"}


def forget_reward_memos() -> None:
    """Empty the reward terms' per-question and per-document memos (``lru_cache`` functions and
    module-level dicts), so a breakdown is a first pass over its questions and documents, as most
    of a ``steps/s`` run is, and shows what they cost. Per-word memos stay: any run fills them
    within a few documents."""
    import importlib

    for name in ("medr3_env.rewards.evidence", "medr3_env.rewards.guards"):
        module = importlib.import_module(name)
        for attribute, value in vars(module).items():
            if attribute in PER_WORD_MEMOS:
                continue
            if callable(getattr(value, "cache_clear", None)):
                # Only the module's own memos: an imported one (load_extractor) is not a reward
                # memo, and emptying it would rebuild the 221k-form extractor inside a timing.
                if getattr(value, "__module__", None) == name:
                    value.cache_clear()
            elif isinstance(value, dict) and value and all(isinstance(k, tuple) for k in value):
                value.clear()


def breakdown(workload: Workload, kwargs: dict, episodes: int, start: int) -> dict:
    """Exclusive µs per env step of each stage, from an instrumented run of ``episodes`` that
    starts with the reward memos empty (:func:`forget_reward_memos`)."""
    import importlib

    from medr3_env.entities import load_extractor
    from medr3_env.search.hit_cache import HitCache

    timer = StageTimer()
    saved: list[tuple[Any, str, Any]] = []

    def patch(owner: Any, attribute: str, label: str) -> None:
        if hasattr(owner, attribute):
            saved.append((owner, attribute, getattr(owner, attribute)))
            timer.patch(owner, attribute, label)

    env = gym.make("MedR3-v0", questions=workload.questions, **kwargs)
    base = env.unwrapped
    base.searcher._cache = HitCache(0)
    forget_reward_memos()  # before patching: the patches hide the cache_clear methods
    for module, attribute, label in (*SEARCH_STAGES, *ENV_STAGES):
        try:
            owner = importlib.import_module(module)
        except ImportError:  # a stage of another version of MedR3
            continue
        patch(owner, attribute, label)
    for attribute, label in SEARCHER_STAGES:
        if attribute in type(base.searcher).__dict__ or hasattr(type(base.searcher), attribute):
            patch(base.searcher, attribute, label)
    extractor = load_extractor(base.config.entity_extractor)
    patch(extractor, "extract", "reward evidence: entity extraction")
    patch(base, "_info", "info dict")
    base.rewards.terms = [
        dataclasses.replace(term, fn=timer.wrap(f"reward {term.name}", term.fn))
        for term in base.rewards.terms
    ]
    step = timer.wrap("step (rest: context, bookkeeping)", base.step)
    base.step = step
    try:
        steps, elapsed, _ = run_episodes(env, workload, 1e9, start=start, limit=episodes)
    finally:
        for owner, attribute, original in reversed(saved):
            setattr(owner, attribute, original)
        del base.step
    per_step = {label: 1e6 * s / steps for label, s in timer.seconds.items()}
    return {
        "steps": steps,
        "instrumented_us_per_step": 1e6 * elapsed / steps,
        "us_per_step": dict(sorted(per_step.items(), key=lambda kv: -kv[1])),
    }


# ------------------------------------------------------------------ search latency
def search_latency(searcher, workload: Workload, count: int, start: int) -> dict:
    """p50/p99 of ``search`` with the cache off; for tantivy also raw tantivy, interleaved."""
    from search_latency import RawTantivy

    from medr3_env.search.hit_cache import HitCache

    searcher._cache = HitCache(0)
    raw = None
    if searcher.manifest.backend == "tantivy":
        raw = RawTantivy(searcher.directory)
    items = workload.questions.items
    ours, theirs = [], []
    for number in range(start, start + count):
        query = workload.query(items[number % len(items)], 1 + number // len(items))
        began = CLOCK()
        searcher.search(query, 5)
        ours.append(CLOCK() - began)
        if raw is not None:
            began = CLOCK()
            raw.search(query, 5)
            theirs.append(CLOCK() - began)
    out = {
        "p50_ms": 1000 * statistics.median(ours),
        "p99_ms": 1000 * sorted(ours)[int(0.99 * (len(ours) - 1))],
    }
    if theirs:
        out["raw_tantivy_p50_ms"] = 1000 * statistics.median(theirs)
        out["ratio_to_raw_p50"] = out["p50_ms"] / out["raw_tantivy_p50_ms"]
    return out


# ------------------------------------------------------------------ memory (child process)
def _rss_kib() -> int:
    with open("/proc/self/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def child_memory(workload: Workload, kwargs: dict, n_envs: int) -> dict:
    """RSS of the shared searcher (opened and warmed) and per additional environment."""
    import gc

    from medr3_env.search.hit_cache import HitCache

    gc.collect()
    before = _rss_kib()
    env = gym.make("MedR3-v0", questions=workload.questions, **kwargs)
    env.unwrapped.searcher._cache = HitCache(0)
    run_episodes(env, workload, 1e9, limit=500)
    gc.collect()
    opened = _rss_kib()
    envs = [gym.make("MedR3-v0", questions=workload.questions, **kwargs) for _ in range(n_envs)]
    for number, extra in enumerate(envs):
        run_episodes(extra, workload, 1e9, start=1_000 + number, limit=1)
    gc.collect()
    after = _rss_kib()
    searchers = {id(e.unwrapped.searcher) for e in [env, *envs]}
    return {
        "searcher_mib": (opened - before) / 1024,
        "env_kib": (after - opened) / n_envs,
        "envs": n_envs + 1,
        "distinct_searchers": len(searchers),
    }


def memory_in_child(args: argparse.Namespace, corpus: str, backend: str) -> dict:
    command = [sys.executable, __file__, "--child-memory", corpus, "--backends", backend]
    command += ["--extractor", args.extractor, "--pubmedqa", str(args.pubmedqa)]
    if args.core is not None:
        command += ["--core", str(args.core)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return {"memory_error": done.stderr[-500:]}
    return json.loads(done.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------ driver
def env_kwargs(backend: str, extractor: str) -> dict:
    return {"backend": backend, "split": None, "entity_extractor": extractor}


def measure(workload: Workload, backend: str, args: argparse.Namespace) -> dict:
    from medr3_env.search.hit_cache import HitCache

    kwargs = env_kwargs(backend, args.extractor)
    row: dict[str, Any] = {"corpus": workload.name, "docs": workload.docs, "backend": backend}
    console.print(f"[bold]{workload.name}[/] {backend}: opening (building on first use)…")
    began = time.perf_counter()
    env = gym.make("MedR3-v0", questions=workload.questions, **kwargs)
    row["open_or_build_s"] = time.perf_counter() - began
    searcher = env.unwrapped.searcher
    row["doc_chars_mean"] = workload_doc_chars(searcher, workload)
    run_episodes(env, workload, 1e9, limit=30)  # warm up
    searcher._cache = HitCache(0)
    start = 10_000  # past the warm-up, all queries unseen
    forget_reward_memos()  # nor the warm-up's or an earlier row's questions and documents
    if args.warmup_blocks:  # a process that has trained a while: every cache as it would be
        rates = []
        for _ in range(args.warmup_blocks):
            warm_steps, warm_elapsed, start = run_episodes(env, workload, args.seconds, start)
            rates.append(warm_steps / warm_elapsed)
        row["warmup_steps_per_s"] = rates
        console.print("  warm-up blocks: " + ", ".join(f"{rate:,.0f}" for rate in rates))
    steps, elapsed, after = run_episodes(env, workload, args.seconds, start=start)
    row.update(steps=steps, steps_per_s=steps / elapsed, wall_steps_per_s=steps / LAST_WALL[0])
    console.print(f"  steps/s (no hit cache): {steps / elapsed:,.0f}")
    if not args.warmup_blocks:
        forget_reward_memos()  # the groups' questions start new too (PubMedQA's come round)
    group_steps, group_elapsed, _ = run_groups(env, workload, args.seconds, after, args.group)
    row.update(group=args.group, group_steps_per_s=group_steps / group_elapsed)
    console.print(
        f"  groups of {args.group} rollouts per question: {group_steps / group_elapsed:,.0f}"
    )
    # cached: replay a fixed block of episodes with the cache on; the second pass all hits
    searcher._cache = HitCache()
    block = 400
    run_episodes(env, workload, 1e9, start=after, limit=block)
    cached_steps, cached_elapsed = 0, 0.0
    while cached_elapsed < args.seconds:
        s, e, _ = run_episodes(
            env, workload, args.seconds - cached_elapsed, start=after, limit=block
        )
        cached_steps, cached_elapsed = cached_steps + s, cached_elapsed + e
    row["cached_steps_per_s"] = cached_steps / cached_elapsed
    row.update(search_latency(searcher, workload, args.queries, start=after + block))
    console.print(
        f"  cached {row['cached_steps_per_s']:,.0f} steps/s; search p50 {row['p50_ms']:.2f} ms"
        + (
            f", raw tantivy {row['raw_tantivy_p50_ms']:.2f} ms"
            if "raw_tantivy_p50_ms" in row
            else ""
        )
    )
    envs = gym.make_vec("MedR3-v0", num_envs=8, questions=workload.questions, **kwargs)
    shared = {id(e.unwrapped.searcher) for e in envs.envs}
    envs.envs[0].unwrapped.searcher._cache = HitCache(0)
    calls = _count_batches(envs.envs[0].unwrapped.searcher)
    vec_steps, vec_elapsed = run_vector(envs, workload, args.seconds, start=after + 5_000)
    row.update(
        vec8_steps_per_s=vec_steps / vec_elapsed,
        vec8_searchers=len(shared),
        vec8_search_many_calls=calls(),
    )
    envs.close()
    row["breakdown"] = breakdown(workload, kwargs, args.breakdown_episodes, start=after + 20_000)
    if workload.docs in args.memory_sizes:
        row.update(memory_in_child(args, workload.name, backend))
    return row


def _count_batches(searcher) -> Callable[[], int]:
    original = searcher.search_many
    count = [0]

    def counted(*a: Any, **k: Any) -> Any:
        count[0] += 1
        return original(*a, **k)

    searcher.search_many = counted
    return lambda: count[0]


def workload_doc_chars(searcher, workload: Workload) -> float:
    ids = [item.evidence_ids[0] for item in workload.questions.items[:200]]
    docs = [searcher.get(i) for i in ids]
    return statistics.mean(len(d.content) for d in docs if d is not None)


def workloads(args: argparse.Namespace) -> list[Workload | dict]:
    out: list[Workload | dict] = []
    if args.pubmedqa.exists():
        out.append(pubmedqa_workload(args.pubmedqa))
    else:
        out.append({"corpus": "pubmedqa", "skipped": f"{args.pubmedqa} not found"})
    out.extend(synthetic_workload(size) for size in args.sizes)
    return out


def show(rows: list[dict]) -> None:
    table = Table(
        title="MedR3 env steps per CPU second: search → read → answer, all reward terms, one core"
    )
    group = next((r["group"] for r in rows if "group" in r), 16)
    columns = ["corpus", "backend", "doc chars", "steps/s", f"group x{group}", "cached", "vec x8"]
    columns += ["p50 ms", "p99 ms", "raw ms", "ratio", "env KiB", "searcher MiB"]
    for column in columns:
        table.add_column(column, justify="right")
    for r in rows:
        if "skipped" in r:
            table.add_row(r["corpus"], r.get("backend", "-"), "not run: " + r["skipped"])
            continue

        def fmt(key: str, spec: str, r: dict = r) -> str:
            return format(r[key], spec) if key in r else "-"

        table.add_row(
            r["corpus"],
            r["backend"],
            fmt("doc_chars_mean", ",.0f"),
            fmt("steps_per_s", ",.0f"),
            fmt("group_steps_per_s", ",.0f"),
            fmt("cached_steps_per_s", ",.0f"),
            fmt("vec8_steps_per_s", ",.0f"),
            fmt("p50_ms", ".2f"),
            fmt("p99_ms", ".2f"),
            fmt("raw_tantivy_p50_ms", ".2f"),
            fmt("ratio_to_raw_p50", ".2f"),
            fmt("env_kib", ",.0f"),
            fmt("searcher_mib", ",.0f"),
        )
    out = Console(width=170)
    out.print(table)
    for r in rows:
        if "breakdown" not in r:
            continue
        b = r["breakdown"]
        stages = Table(
            title=f"one step, {r['corpus']} {r['backend']}: µs per step "
            f"(instrumented {b['instrumented_us_per_step']:.0f} µs, "
            f"uninstrumented {1e6 / r['steps_per_s']:.0f} µs)"
        )
        stages.add_column("stage")
        stages.add_column("µs/step", justify="right")
        for label, us in b["us_per_step"].items():
            stages.add_row(label, f"{us:.1f}")
        out.print(stages)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000", help="Synthetic corpus sizes.")
    parser.add_argument("--backends", default="tantivy,whoosh")
    parser.add_argument("--pubmedqa", type=Path, default=DEFAULT_PUBMEDQA)
    parser.add_argument("--seconds", type=float, default=5.0, help="Measuring time per column.")
    parser.add_argument(
        "--group", type=int, default=16, help="Rollouts per question in the group column."
    )
    parser.add_argument(
        "--warmup-blocks",
        type=int,
        default=0,
        help="Run this many --seconds blocks of unseen queries before measuring (their rates go "
        "to the JSON): the columns then measure a warm process, not a first pass.",
    )
    parser.add_argument("--queries", type=int, default=300, help="Queries for the p50 columns.")
    parser.add_argument("--breakdown-episodes", type=int, default=300)
    parser.add_argument(
        "--whoosh-max-docs",
        type=int,
        default=100_000,
        help="Larger corpora are not run on Whoosh (its pure-Python build with entities indexed "
        "117 documents per second here: 14 minutes for 100k, over 2 hours per million).",
    )
    parser.add_argument("--memory-sizes", default="100000", help="Sizes with memory columns.")
    parser.add_argument("--extractor", default="auto", help="Entity extractor of env and index.")
    parser.add_argument("--core", type=int, help="The core to pin to (default: the first allowed).")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--child-memory", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.group < 1 or args.warmup_blocks < 0 or args.seconds <= 0:
        parser.error("--group must be at least 1, --warmup-blocks at least 0, --seconds above 0")
    args.sizes = [int(s) for s in str(args.sizes).split(",") if s]
    args.memory_sizes = {int(s) for s in str(args.memory_sizes).split(",") if s}
    backends = [b for b in args.backends.split(",") if b]
    if hasattr(os, "sched_setaffinity"):
        core = args.core if args.core is not None else sorted(os.sched_getaffinity(0))[0]
        os.sched_setaffinity(0, {core})
    if args.child_memory:
        name = args.child_memory
        workload = (
            pubmedqa_workload(args.pubmedqa)
            if name == "pubmedqa"
            else synthetic_workload(int(name.rsplit("-", 1)[1]))
        )
        print(json.dumps(child_memory(workload, env_kwargs(backends[0], args.extractor), 200)))
        return
    started = time.perf_counter()
    rows: list[dict] = []
    for workload in workloads(args):
        if isinstance(workload, dict):
            rows.append(workload)
            console.print(f"skipping {workload['corpus']}: {workload['skipped']}")
            continue
        for backend in backends:
            if backend == "whoosh" and workload.docs > args.whoosh_max_docs:
                reason = (
                    f"Whoosh not run above --whoosh-max-docs {args.whoosh_max_docs:,} "
                    "(pure-Python build: over 2 hours per million documents)"
                )
                rows.append({"corpus": workload.name, "backend": backend, "skipped": reason})
                continue
            rows.append(measure(workload, backend, args))
            write_report(args, rows, started)  # after every row: a long run keeps what it has
    show(rows)
    write_report(args, rows, started)
    print(f"wrote {args.out}")


def write_report(args: argparse.Namespace, rows: list[dict], started: float) -> None:
    args.out.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "command": " ".join(["python", *sys.argv]),
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
        "extractor": args.extractor,
        "seconds_per_column": args.seconds,
        "total_s": time.perf_counter() - started,
        "results": rows,
    }
    args.out.write_text(json.dumps(report, indent=2, default=lambda o: np.asarray(o).tolist()))


if __name__ == "__main__":
    main()
