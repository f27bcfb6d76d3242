"""Seeded synthetic corpora and medical-style queries for the speed benchmarks.

Words follow a Zipf-Mandelbrot distribution over a vocabulary whose head is real medical words
(taken from the starter passages) and whose tail is generated pseudo-words. Documents are
generated in fixed-size chunks from ``(seed, chunk)``, so any document can be regenerated alone
(queries are built from target documents) and a corpus is streamed, never held in memory.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from importlib import resources

import numpy as np

from medr3_env.corpora.records import Corpus, Document

CHUNK = 1_000
_SYLLABLES = [c + v for c in "bcdfghklmnprstvz" for v in ("a", "e", "i", "o", "u", "y", "ae", "io")]
_TEMPLATES = [
    "What is the first-line treatment of {} in a patient with {} and {}?",
    "A patient presents with {}, {} and {}. Which diagnosis is most likely?",
    "Which drug is contraindicated in {} with {} after {}?",
    "How does {} affect {} during {}?",
]


@lru_cache(maxsize=4)
def vocabulary(size: int = 50_000, seed: int = 0) -> tuple[str, ...]:
    """Real medical words first (shuffled into the Zipf head), then pseudo-words."""
    folder = resources.files("medr3_env.corpora").joinpath("starter/passages")
    text = "".join(f.read_text() for f in sorted(folder.iterdir(), key=lambda f: f.name))
    words: dict[str, None] = {}
    for line in text.splitlines():
        record = json.loads(line)
        for word in re.findall(r"[a-z]{3,}", (record["title"] + " " + record["content"]).lower()):
            words[word] = None
    rng = np.random.default_rng(seed)
    real = list(words)
    rng.shuffle(real)
    vocab = real[:size]
    seen = set(vocab)
    while len(vocab) < size:
        parts = rng.integers(len(_SYLLABLES), size=int(rng.integers(2, 5)))
        word = "".join(_SYLLABLES[p] for p in parts)
        if word not in seen:
            seen.add(word)
            vocab.append(word)
    return tuple(vocab)


@lru_cache(maxsize=4)
def _probabilities(size: int) -> np.ndarray:
    ranks = np.arange(1, size + 1, dtype=np.float64)
    weights = 1.0 / (ranks + 2.7) ** 1.07
    return weights / weights.sum()


def _chunk_documents(chunk: int, n_docs: int, seed: int, vocab_size: int) -> list[Document]:
    vocab = vocabulary(vocab_size, seed)
    rng = np.random.default_rng([seed, chunk])
    start = chunk * CHUNK
    count = min(CHUNK, n_docs - start)
    lengths = rng.integers(6, 22, size=(count, 6))  # six sentences of 6-21 words
    total = int(lengths.sum()) + 5 * count
    words = rng.choice(vocab_size, size=total, p=_probabilities(vocab_size))
    docs, cursor = [], 0
    for row in range(count):
        title = " ".join(vocab[w] for w in words[cursor : cursor + 5]).capitalize()
        cursor += 5
        sentences = []
        for n in lengths[row]:
            sentence = " ".join(vocab[w] for w in words[cursor : cursor + n])
            sentences.append(sentence.capitalize() + ".")
            cursor += n
        docs.append(Document(id=f"syn-{start + row:07d}", title=title, content=" ".join(sentences)))
    return docs


def synthetic_corpus(n_docs: int, seed: int = 0, vocab_size: int = 50_000) -> Corpus:
    """A streamed corpus of ``n_docs`` documents (about 80 words each)."""

    def documents():
        for chunk in range((n_docs + CHUNK - 1) // CHUNK):
            yield from _chunk_documents(chunk, n_docs, seed, vocab_size)

    def fingerprint():
        yield f"synthetic|{n_docs}|{seed}|{vocab_size}|v1".encode()

    return Corpus(
        f"synthetic-{n_docs}", documents, fingerprint_source=fingerprint, size_hint=n_docs
    )


def medical_queries(
    count: int, n_docs: int, seed: int = 1, corpus_seed: int = 0, vocab_size: int = 50_000
) -> list[tuple[str, str]]:
    """``(query, target doc id)`` pairs: a question template filled with three words of the
    target document plus nine more of its words appended (about 12 content terms)."""
    rng = np.random.default_rng(seed)
    pairs = []
    for _ in range(count):
        index = int(rng.integers(n_docs))
        doc = _chunk_documents(index // CHUNK, n_docs, corpus_seed, vocab_size)[index % CHUNK]
        words = re.findall(r"[a-z]+", (doc.title + " " + doc.content).lower())
        picked = [words[int(i)] for i in rng.choice(len(words), size=12, replace=False)]
        template = _TEMPLATES[int(rng.integers(len(_TEMPLATES)))]
        pairs.append((template.format(*picked[:3]) + " " + " ".join(picked[3:]), doc.id))
    return pairs
