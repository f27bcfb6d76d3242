"""Seeded synthetic corpora and medical-style queries for the speed benchmarks.

Words follow a Zipf-Mandelbrot distribution over a vocabulary whose head is real medical words
(taken from the starter passages) and whose tail is generated pseudo-words. Document shape follows
real medical abstracts: sentences per document and words per sentence are drawn from the quantiles
measured on PubMedQA's 1,000 labelled abstracts (mean 9.8 sentences of 20.4 words, about 1,340
characters). Documents are generated in fixed-size chunks from ``(seed, chunk)``, so any document
can be regenerated alone (queries are built from target documents) and a corpus is streamed,
never held in memory.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from importlib import resources

import numpy as np

from medr3_env.corpora.records import Corpus, Document

CHUNK = 1_000
VERSION = "v2"
"""Part of every synthetic fingerprint: v2 has PubMedQA-shaped documents (v1: 6 short sentences)."""

# Quantiles 0, 5, ..., 100 % over PubMedQA's 1,000 labelled abstracts (``ori_pqal.json``,
# CONTEXTS joined, split after . ! ?): sentences per abstract and words per sentence.
_QUANTILES = np.linspace(0.0, 1.0, 21)
SENTENCES_PER_DOC = (2, 5, 6, 7, 7, 8, 8, 9, 9, 9, 10, 10, 10, 11, 11, 11, 12, 13, 13, 15, 28)
WORDS_PER_SENTENCE = (
    3,
    7,
    9,
    11,
    12,
    13,
    14,
    15,
    16,
    18,
    19,
    20,
    21,
    23,
    24,
    26,
    28,
    30,
    34,
    40,
    97,
)
_SYLLABLES = [c + v for c in "bcdfghklmnprstvz" for v in ("a", "e", "i", "o", "u", "y", "ae", "io")]
_TEMPLATES = [
    "What is the first-line treatment of {} in a patient with {} and {}?",
    "A patient presents with {}, {} and {}. Which diagnosis is most likely?",
    "Which drug is contraindicated in {} with {} after {}?",
    "How does {} affect {} during {}?",
]


# The commonest English function words, in rough order of frequency in abstracts: as in real
# text they take the top Zipf ranks, which gives documents the real length in characters.
FUNCTION_WORDS = [
    "the",
    "of",
    "and",
    "in",
    "to",
    "a",
    "with",
    "was",
    "were",
    "for",
    "is",
    "that",
    "by",
    "as",
    "on",
    "or",
    "at",
    "from",
    "be",
    "an",
    "this",
    "are",
    "not",
    "we",
    "after",
    "had",
    "but",
    "which",
    "between",
    "these",
    "than",
    "has",
    "have",
    "more",
    "it",
    "its",
    "also",
    "during",
    "may",
    "been",
    "can",
    "into",
    "there",
    "their",
    "both",
    "each",
    "other",
    "such",
    "all",
    "no",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "ten",
]


@lru_cache(maxsize=4)
def vocabulary(size: int = 50_000, seed: int = 0) -> tuple[str, ...]:
    """Function words, then real medical words (shuffled into the Zipf head), then pseudo-words."""
    folder = resources.files("medr3_env.corpora").joinpath("starter/passages")
    text = "".join(f.read_text() for f in sorted(folder.iterdir(), key=lambda f: f.name))
    words: dict[str, None] = {}
    for line in text.splitlines():
        record = json.loads(line)
        for word in re.findall(r"[a-z]{3,}", (record["title"] + " " + record["content"]).lower()):
            words[word] = None
    rng = np.random.default_rng(seed)
    head = list(dict.fromkeys(FUNCTION_WORDS))
    # Very long words are rarer in running text than in a word list; leaving them out of the
    # head keeps the mean word length (5.7 characters in PubMedQA) realistic.
    real = [word for word in words if word not in head and len(word) <= 10]
    rng.shuffle(real)
    vocab = (head + real)[:size]
    seen = set(vocab)
    while len(vocab) < size:
        parts = rng.integers(len(_SYLLABLES), size=int(rng.integers(2, 4)))
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
    n_sentences = _draw(rng, SENTENCES_PER_DOC, count)
    lengths = _draw(rng, WORDS_PER_SENTENCE, int(n_sentences.sum()))
    total = int(lengths.sum()) + 5 * count
    words = rng.choice(vocab_size, size=total, p=_probabilities(vocab_size))
    docs, cursor, first = [], 0, 0
    for row in range(count):
        title = " ".join(vocab[w] for w in words[cursor : cursor + 5]).capitalize()
        cursor += 5
        sentences = []
        last = first + int(n_sentences[row])
        for n in lengths[first:last]:
            sentence = " ".join(vocab[w] for w in words[cursor : cursor + n])
            sentences.append(sentence.capitalize() + ".")
            cursor += n
        first = last
        docs.append(Document(id=f"syn-{start + row:07d}", title=title, content=" ".join(sentences)))
    return docs


def _draw(rng: np.random.Generator, quantiles: tuple[int, ...], size: int) -> np.ndarray:
    """``size`` integers distributed like the measured ``quantiles`` (piecewise-linear CDF)."""
    return np.rint(np.interp(rng.random(size), _QUANTILES, quantiles)).astype(np.int64)


def synthetic_corpus(n_docs: int, seed: int = 0, vocab_size: int = 50_000) -> Corpus:
    """A streamed corpus of ``n_docs`` PubMedQA-shaped documents (about 200 words each)."""

    def documents():
        for chunk in range((n_docs + CHUNK - 1) // CHUNK):
            yield from _chunk_documents(chunk, n_docs, seed, vocab_size)

    def fingerprint():
        yield f"synthetic|{n_docs}|{seed}|{vocab_size}|{VERSION}".encode()

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
