"""Normalisation and hacking guards shared by the built-in reward terms and open to custom terms.

Every guard compares *folded* text (:func:`fold`: NFKC, zero-width/format and bidi characters
removed, Cyrillic/Greek look-alike letters mapped to Latin, combining marks dropped, case-folded),
so a spelling trick never changes what a guard sees. Entity extraction runs on :func:`clean` text
(the same, but case and accents kept, so case-sensitive abbreviations still match)::

    from medr3_env.rewards import guards

    guards.fold("Dіgoxin\u200b")                       # 'digoxin' (Cyrillic і, zero-width space)
    guards.real_word_count("hmm hmm hmm the of and")    # 2: "hmm" once, one stop word per content word
    guards.distinct_search_count(ctx)                   # searches that returned something new
    guards.copied(sentence, guards.document_shingles(doc.id, doc.content))
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from functools import lru_cache
from itertools import chain
from typing import TYPE_CHECKING, NamedTuple

from medr3_env.search.query import STOPWORDS
from medr3_env.text_norm import ASCII_SEPARATORS, clean_text, fold_text

if TYPE_CHECKING:
    from medr3_env.rewards.context import EpisodeContext

__all__ = [
    "COPY_MIN_WORDS",
    "COPY_SHARE",
    "MAX_SENTENCE_WORDS",
    "NEAR_GAP",
    "CopySource",
    "DocumentWords",
    "clean",
    "content_words",
    "copied",
    "copied_words",
    "copy_source",
    "copy_source_for",
    "distinct_search_count",
    "document_copy_source",
    "document_shingles",
    "document_words",
    "fold",
    "near_copied_words",
    "near_key",
    "real_word_count",
    "reasoning_copy_source",
    "sentence_spans",
    "sentences",
    "shingles",
]

COPY_MIN_WORDS = 6
"""Sentences with fewer content words are never judged as copies."""
COPY_SHARE = 0.5
"""A sentence whose content words are followed, in at least this share of positions, by the same
next or next-but-one content word as somewhere in a document is a copy of it."""
MAX_SENTENCE_WORDS = 40
"""Longer runs without sentence punctuation are judged in pieces of this many words."""
NEAR_GAP = 3
""":func:`near_copied_words` links two words at most this many content words apart, both in the
sentence and in the document."""

_WORD = re.compile(r"[^\W_]+")
_TOKEN = re.compile(r"\S+")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")

fold = fold_text
clean = clean_text


def _words(folded: str) -> list[str]:
    """``_WORD.findall(folded)``: the runs of letters and digits; on ASCII text a translate and a
    split, several times cheaper than the regex and equal to it (tested)."""
    if folded.isascii():
        return folded.translate(ASCII_SEPARATORS).split()
    return _WORD.findall(folded)


def _content(words: list[str]) -> list[str]:
    return [w for w in words if w not in STOPWORDS and len(w) > 1 and not w.isdigit()]


def content_words(text: str) -> list[str]:
    """The folded words of ``text`` with letters, stop words and one-letter words left out."""
    return _content(_words(fold_text(text)))


def _real_words(words: list[str]) -> int:
    words = [w for w in words if len(w) > 1 and not w.isdigit()]
    content = {w for w in words if w not in STOPWORDS}
    stop = {w for w in words if w in STOPWORDS}
    return len(content) + min(len(stop), len(content))


def real_word_count(text: str) -> int:
    """Distinct real words: content words, plus as many distinct stop words as there are content
    words (so "so it is to be" counts 0). Filler repeated, numbers and punctuation add nothing."""
    return _real_words(_words(fold_text(text)))


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` of the sentences of ``text``: split at sentence punctuation and line
    breaks, and every :data:`MAX_SENTENCE_WORDS` words (so one unpunctuated paste is judged piece
    by piece)."""
    parts: list[tuple[int, int]] = []
    start = 0
    for boundary in _SENTENCE_END.finditer(text):
        parts.append((start, boundary.start()))
        start = boundary.end()
    parts.append((start, len(text)))
    out: list[tuple[int, int]] = []
    for begin, end in parts:
        part = text[begin:end]
        if len(part.split()) <= MAX_SENTENCE_WORDS:  # the common case: one piece, no regex
            stripped = part.lstrip()
            if stripped:
                out.append((end - len(stripped), begin + len(part.rstrip())))
            continue
        words = list(_TOKEN.finditer(text, begin, end))
        for first in range(0, len(words), MAX_SENTENCE_WORDS):
            last = words[min(first + MAX_SENTENCE_WORDS, len(words)) - 1]
            out.append((words[first].start(), last.end()))
    return out


def sentences(text: str) -> list[str]:
    """The sentences of ``text`` (see :func:`sentence_spans`)."""
    return [text[a:b] for a, b in sentence_spans(text)]


def shingles(words: Sequence[str]) -> frozenset[tuple[str, str]]:
    """Skip-bigrams of a word sequence: each word with the next and with the next-but-one word."""
    return frozenset(chain(zip(words, words[1:]), zip(words, words[2:])))  # noqa: B905


@lru_cache(maxsize=1 << 16)
def near_key(word: str) -> str:
    """A word's first letter and its next three letters sorted: "blockers", "blocker" and
    "bolckers" share the key "bckl", so changed endings and swapped letters keep a word."""
    return word[0] + "".join(sorted(word[1:4]))


class CopySource(NamedTuple):
    """What :func:`copied_words` compares a sentence with: a source's :func:`shingles` and the
    words they use; for :func:`near_copied_words`, the ordered pairs of :func:`near_key` keys at
    most :data:`NEAR_GAP` content words apart and the keys they use (empty when built from
    shingles alone)."""

    grams: frozenset[tuple[str, str]]
    vocabulary: frozenset[str]
    near: frozenset[tuple[str, str]] = frozenset()
    near_keys: frozenset[str] = frozenset()


class DocumentWords(NamedTuple):
    """A source's :func:`content_words` and their :func:`near_key` keys, in order, with the
    sets of both (empty when there is no pair: nothing can be copied from one word)."""

    words: tuple[str, ...]
    keys: tuple[str, ...]
    vocabulary: frozenset[str]
    key_set: frozenset[str]


def _document_words(words: Sequence[str]) -> DocumentWords:
    keys = tuple(map(near_key, words))
    if len(words) < 2:
        return DocumentWords(tuple(words), keys, frozenset(), frozenset())
    return DocumentWords(tuple(words), keys, frozenset(words), frozenset(keys))


def _whole_source(document: DocumentWords) -> CopySource:
    if not document.vocabulary:
        return CopySource(frozenset(), frozenset())
    keys = document.keys
    near = frozenset(
        chain.from_iterable(zip(keys, keys[gap:]) for gap in range(1, NEAR_GAP + 1))  # noqa: B905
    )
    return CopySource(shingles(document.words), document.vocabulary, near, document.key_set)


def copy_source(words: Sequence[str]) -> CopySource:
    """The :class:`CopySource` of a word sequence (e.g. :func:`content_words` of a document)."""
    return _whole_source(_document_words(words))


@lru_cache(maxsize=8192)
def document_words(doc_id: str, content: str) -> DocumentWords:
    """The :class:`DocumentWords` of a document, cached by id."""
    del doc_id  # part of the cache key only
    return _document_words(content_words(content))


def copy_source_for(document: DocumentWords, words: set[str]) -> CopySource:
    """The :class:`CopySource` of ``document`` holding only the pairs of ``words`` (and the near
    pairs of their keys): for every sentence whose content words are in ``words``,
    :func:`copied_words` and :func:`near_copied_words` answer exactly as with the document's
    whole :func:`copy_source` (tested), at a cost that grows with the overlap of the sentence
    and the document, not with the document's length."""
    if not document.vocabulary:
        return CopySource(frozenset(), frozenset())
    return CopySource(
        _pairs(document.words, words, 2),
        document.vocabulary,
        _pairs(document.keys, set(map(near_key, words)), NEAR_GAP),
        document.key_set,
    )


def _pairs(sequence: tuple[str, ...], wanted: set[str], gap: int) -> frozenset[tuple[str, str]]:
    """``(sequence[i], sequence[j])`` for ``0 < j - i <= gap`` with both items in ``wanted``."""
    positions = [i for i, item in enumerate(sequence) if item in wanted]
    inside = set(positions)
    return frozenset(
        (sequence[i], sequence[j])
        for i in positions
        for j in range(i + 1, i + gap + 1)
        if j in inside
    )


@lru_cache(maxsize=8192)
def document_copy_source(doc_id: str, content: str) -> CopySource:
    """:func:`copy_source` of a document's content words, cached by id (computed once per
    document)."""
    return _whole_source(document_words(doc_id, content))


_SEEN: dict[tuple[str, int], None] = {}
"""Documents :func:`reasoning_copy_source` has been asked for (bounded: cleared when full)."""


def reasoning_copy_source(doc_id: str, content: str, words: set[str]) -> CopySource:
    """The copy source the evidence term compares a reasoning (its content ``words``) with: the
    first time a document is asked for, :func:`copy_source_for` (only the pairs the reasoning
    can match: a document read once costs what it shares with the reasoning); from the second
    time on, the whole :func:`document_copy_source`, built once and cached (a document read
    twice, say by the rollouts of one prompt, is read again). Both give the same verdicts."""
    key = (doc_id, hash(content))
    if key in _SEEN:
        return document_copy_source(doc_id, content)
    if len(_SEEN) > 65_536:
        _SEEN.clear()
    _SEEN[key] = None
    return copy_source_for(document_words(doc_id, content), words)


def document_shingles(doc_id: str, content: str) -> frozenset[tuple[str, str]]:
    """:func:`shingles` of a document's content words, cached by id (computed once per document)."""
    return document_copy_source(doc_id, content).grams


def copied(
    sentence: str,
    source: frozenset[tuple[str, str]] | Iterable[tuple[str, str]],
    *,
    judge: str | None = None,
) -> bool:
    """Whether ``sentence`` is copied from the document whose :func:`shingles` are ``source``.

    Robust to perturbation: the words are folded (zero-width characters, look-alike letters and case
    do not matter), stop words and words the document never uses are ignored (fillers, however
    many, do not matter) and each position may match the next or the next-but-one word, in
    either order (synonym swaps of function words and reversed word order do not matter). With
    ``judge`` (the sentence with some words blanked, e.g. entity names), only the words of
    ``judge`` are judged, so a list of multi-word names is not a copy.
    """
    grams = source if isinstance(source, frozenset) else frozenset(source)
    judged = set(content_words(judge)) if judge is not None else None
    return copied_words(content_words(sentence), CopySource(grams, _vocabulary(grams)), judged)


def copied_words(words: list[str], source: CopySource, judged: set[str] | None = None) -> bool:
    """:func:`copied` on a sentence's :func:`content_words` (computed once for every source)
    and, with ``judged``, the content words of its ``judge`` text."""
    grams, vocabulary = source.grams, source.vocabulary
    # Words the document never uses are fillers: judging the rest defeats any number of fillers.
    words = [w for w in words if w in vocabulary]
    size = len(words)
    positions = [i for i in range(size - 1) if judged is None or words[i] in judged]
    if len(positions) < COPY_MIN_WORDS:
        return False
    follows = 0  # either order: reversing the words does not hide a copy
    for i in positions:
        word, after = words[i], words[i + 1]
        if (word, after) in grams or (after, word) in grams:
            follows += 1
        elif i + 2 < size:
            after = words[i + 2]
            if (word, after) in grams or (after, word) in grams:
                follows += 1
    return follows >= COPY_SHARE * len(positions)


def near_copied_words(words: list[str], source: CopySource, judged: set[str] | None = None) -> bool:
    """Whether a sentence's :func:`content_words` are a near copy of ``source`` (needs
    ``source.near``, as :func:`copy_source` builds it), which :func:`copied_words` misses.

    Words are compared by :func:`near_key` (changed endings, swapped inner letters) and two
    words are linked when they are at most :data:`NEAR_GAP` words apart in the sentence and form
    a pair of the document. A copy is either (a) a sentence in which at least
    :data:`COPY_SHARE` of the judged positions link to one of the next :data:`NEAR_GAP` words, in
    either order (every third word of the document), or (b) a chain of at least
    :data:`COPY_MIN_WORDS` judged words, each linked in the document's order to the one before
    (the document with its own words put in between; words the document lacks are passed over
    by the chain). Each word looks back or ahead at most
    :data:`NEAR_GAP` words: linear in the sentence, whatever the document's length.
    """
    near = source.near
    if not near:
        return False
    keys = list(map(near_key, words))
    counted = [judged is None or w in judged for w in words]
    size = len(keys)
    if sum(counted[:-1]) < COPY_MIN_WORDS:
        return False
    # (b) runs over the words the document has: words of the agent's own between them (fillers
    # around the stop words that content_words drops) neither break a chain nor widen its gaps.
    known = source.near_keys
    present = [j for j in range(size) if keys[j] in known]
    best = [0] * len(present)  # judged words in the longest linked chain ending at each word
    for i, j in enumerate(present):
        back = [
            best[m] for m in range(max(0, i - NEAR_GAP), i) if (keys[present[m]], keys[j]) in near
        ]
        best[i] = (max(back) if back else 0) + counted[j]
        if best[i] >= COPY_MIN_WORDS:
            return True
    follows = positions = 0
    for j in range(size - 1):
        if counted[j]:
            positions += 1
            key, ahead = keys[j], keys[j + 1 : j + 1 + NEAR_GAP]
            if any((key, a) in near or (a, key) in near for a in ahead):
                follows += 1
    return positions >= COPY_MIN_WORDS and follows >= COPY_SHARE * positions


@lru_cache(maxsize=8192)
def _vocabulary(grams: frozenset[tuple[str, str]]) -> frozenset[str]:
    """The words of a document's :func:`shingles` (cached with them)."""
    return frozenset(word for pair in grams for word in pair)


def distinct_search_count(ctx: EpisodeContext) -> int:
    """Searches that found something new: a search counts when its folded content words differ
    from every earlier query's *and* its hits differ from every earlier search's. Upper case,
    zero-width characters, reordered words or a nonsense word that changes nothing retrieved do
    not make a search new."""
    seen_words: set[frozenset[str]] = set()
    seen_hits: set[frozenset[str]] = set()
    count = 0
    for turn in ctx.turns:
        if turn.kind != "search":
            continue
        words = frozenset(content_words(turn.argument))
        hits = frozenset(h.doc_id for h in turn.hits)
        if words not in seen_words and hits not in seen_hits:
            count += 1
        seen_words.add(words)
        seen_hits.add(hits)
    return count
