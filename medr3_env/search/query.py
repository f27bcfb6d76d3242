"""Turning raw model text into a bounded list of plain search terms.

Model output never reaches a backend's query language: no field names, wildcards, fuzzy or range
operators, booleans or phrases. Only word characters survive; the text and the term list are capped.
"""

from __future__ import annotations

import re

from medr3_env.text_norm import ASCII_SEPARATORS

MAX_QUERY_CHARS = 2_000
MAX_QUERY_TERMS = 32
MAX_TERM_CHARS = 40

_WORD = re.compile(r"[^\W_]+", re.UNICODE)

# A compact English stop list (function words only; medical words such as "type" or "acute" stay).
STOPWORDS = frozenset(
    [
        "a",
        "about",
        "above",
        "after",
        "again",
        "against",
        "all",
        "am",
        "an",
        "and",
        "any",
        "are",
        "as",
        "at",
        "be",
        "because",
        "been",
        "before",
        "being",
        "below",
        "between",
        "both",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "doing",
        "down",
        "during",
        "each",
        "few",
        "for",
        "from",
        "further",
        "had",
        "has",
        "have",
        "having",
        "he",
        "her",
        "here",
        "hers",
        "herself",
        "him",
        "himself",
        "his",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "itself",
        "just",
        "me",
        "more",
        "most",
        "my",
        "myself",
        "no",
        "nor",
        "not",
        "now",
        "of",
        "off",
        "on",
        "once",
        "only",
        "or",
        "other",
        "our",
        "ours",
        "ourselves",
        "out",
        "over",
        "own",
        "same",
        "she",
        "should",
        "so",
        "some",
        "such",
        "than",
        "that",
        "the",
        "their",
        "theirs",
        "them",
        "themselves",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "through",
        "to",
        "too",
        "under",
        "until",
        "up",
        "very",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "whom",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
        "yours",
        "yourself",
        "yourselves",
    ]
)


def query_terms(text: str, *, max_terms: int = MAX_QUERY_TERMS) -> list[str]:
    """Lower-cased, de-duplicated content words of ``text`` in order of first appearance."""
    if not isinstance(text, str):
        return []
    text = text[:MAX_QUERY_CHARS]
    if text.isascii():  # the same words as the regex, found by a translate and a split
        words = text.lower().translate(ASCII_SEPARATORS).split()
    else:
        words = [match.lower() for match in _WORD.findall(text)]
    terms: list[str] = []
    seen: set[str] = set()
    for term in words:
        if term in STOPWORDS or term in seen or len(term) > MAX_TERM_CHARS:
            continue
        seen.add(term)
        terms.append(term)
        if len(terms) >= max_terms:
            break
    return terms
