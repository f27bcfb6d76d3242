"""The snippet shown for a hit: the document sentence that mentions most of the query's terms.

Sentence boundaries are found once, at index time (:func:`sentence_ends`), and stored with the
document; at query time a snippet costs one lower-casing and a substring search per query term
(:func:`snippet_for`). A backend whose analyser is fast at build time (tantivy) also stores each
sentence's analysed terms as hashes (:func:`sentence_terms`), and then picks a snippet with a few
``bytes.find`` calls (:func:`snippet_from_terms`): exact term matches, no text scanning at query
time.
"""

from __future__ import annotations

import re
import sys
import zlib
from array import array
from bisect import bisect_right
from collections.abc import Callable, Collection, Sequence
from functools import lru_cache

SNIPPET_CHARS = 240
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_ENDS_TYPECODE = "I"


def sentence_ends(content: str) -> array:
    """Start offsets of the separators after each sentence but the last (index-time work)."""
    return array(_ENDS_TYPECODE, (match.start() for match in _SENTENCE_END.finditer(content)))


def _little_endian(values: array) -> bytes:
    if sys.byteorder == "big":  # pragma: no cover  (stored data is little-endian everywhere)
        values.byteswap()
    return values.tobytes()


def encode_ends(ends: Sequence[int]) -> bytes:
    """Sentence ends as stored bytes (little-endian uint32)."""
    return _little_endian(array(_ENDS_TYPECODE, ends))


def decode_ends(data: bytes | None) -> array | None:
    """The stored sentence ends, or ``None`` when the index predates them."""
    if data is None:
        return None
    ends = array(_ENDS_TYPECODE)
    ends.frombytes(bytes(data))
    if sys.byteorder == "big":  # pragma: no cover
        ends.byteswap()
    return ends


@lru_cache(maxsize=4096)
def mention_prefixes(stems: tuple[str, ...]) -> tuple[str, ...]:
    """What counts as a mention of each stem: a word starting with it, minus its last letter for
    stems of 4+ letters (English stemmers rewrite at most the last letter they keep:
    therapy -> therapi)."""
    return tuple(dict.fromkeys(stem[:-1] if len(stem) >= 4 else stem for stem in stems if stem))


def _is_word_char(char: str) -> bool:
    return char.isalnum() or char == "_"


def snippet_for(
    content: str,
    stems: Collection[str],
    ends: Sequence[int] | None = None,
    limit: int = SNIPPET_CHARS,
) -> str:
    """The first sentence mentioning the most distinct query ``stems`` (words that start like
    them), cut to ``limit`` characters. ``ends`` are the stored :func:`sentence_ends` (computed
    here when missing). Substring search only: no regex, no analysis."""
    if ends is None:
        ends = sentence_ends(content)
    best = 0
    if stems:
        lowered = content.lower()
        if len(lowered) != len(content):  # a few characters change length when lower-cased
            lowered = "".join(c if len(c.lower()) != 1 else c.lower() for c in content)
        counts: dict[int, int] = {}
        for prefix in mention_prefixes(tuple(sorted(stems))):
            seen: set[int] = set()
            position = lowered.find(prefix)
            while position >= 0:
                if position == 0 or not _is_word_char(lowered[position - 1]):
                    seen.add(bisect_right(ends, position))
                position = lowered.find(prefix, position + 1)
            for sentence in seen:
                counts[sentence] = counts.get(sentence, 0) + 1
        if counts:
            top = max(counts.values())
            best = min(sentence for sentence, count in counts.items() if count == top)
    return _cut(content, ends, best, limit)


def best_sentence(content: str, stems: Collection[str], limit: int = SNIPPET_CHARS) -> str:
    """:func:`snippet_for` without stored sentence ends (finds them first)."""
    return snippet_for(content, stems, None, limit)


def term_hash(term: str) -> int:
    """A stable 32-bit hash of an analysed term (CRC-32 of its UTF-8 bytes)."""
    return zlib.crc32(term.encode("utf-8", "surrogatepass"))


def sentence_terms(content: str, ends: Sequence[int], analyse: Callable[[str], list[str]]) -> bytes:
    """Index-time snippet data: each distinct ``(term hash, sentence number)`` pair of the
    document, as little-endian uint32 hashes followed by uint16 sentence numbers."""
    hashes: list[int] = []
    sentences: list[int] = []
    bounds = [0, *ends, len(content)]
    for number in range(min(len(bounds) - 1, 65_535)):
        for term in dict.fromkeys(analyse(content[bounds[number] : bounds[number + 1]])):
            hashes.append(term_hash(term))
            sentences.append(number)
    return _little_endian(array("I", hashes)) + _little_endian(array("H", sentences))


@lru_cache(maxsize=65_536)
def _needle(term: str) -> bytes:
    return term_hash(term).to_bytes(4, "little")


def term_needles(terms: Collection[str]) -> tuple[bytes, ...]:
    """The stored form of each distinct query term, for :func:`snippet_from_terms`."""
    return tuple(_needle(term) for term in sorted(set(terms)))


def snippet_from_terms(
    content: str, ends: bytes, data: bytes, needles: Sequence[bytes], limit: int = SNIPPET_CHARS
) -> str:
    """The first sentence containing the most distinct query terms (``needles`` from
    :func:`term_needles`), from the stored ``ends`` (:func:`encode_ends`) and ``data``
    (:func:`sentence_terms`), cut to ``limit`` characters. A handful of ``bytes.find`` calls."""
    size = len(data) // 6 * 4  # the hashes; sentence numbers follow
    counts: dict[int, int] = {}
    find = data.find
    for needle in needles:
        position = find(needle, 0, size)
        while position >= 0:
            if not position & 3:  # aligned: a whole stored hash, not the tail of one
                at = size + (position >> 1)
                sentence = data[at] | data[at + 1] << 8
                counts[sentence] = counts.get(sentence, 0) + 1
            position = find(needle, position + 1, size)
    best = 0
    if counts:
        top = max(counts.values())
        best = min(sentence for sentence, count in counts.items() if count == top)
    count = len(ends) // 4
    start = int.from_bytes(ends[4 * best - 4 : 4 * best], "little") if 0 < best <= count else 0
    stop = int.from_bytes(ends[4 * best : 4 * best + 4], "little") if best < count else len(content)
    return _trim(content[start:stop], limit)


def _cut(content: str, ends: Sequence[int], number: int, limit: int) -> str:
    """Sentence ``number`` of ``content`` (split at ``ends``), cut to ``limit`` characters."""
    start = ends[number - 1] if 0 < number <= len(ends) else 0
    stop = ends[number] if number < len(ends) else len(content)
    return _trim(content[start:stop], limit)


def _trim(sentence: str, limit: int) -> str:
    sentence = sentence.strip()
    return sentence if len(sentence) <= limit else sentence[: limit - 1].rstrip() + "…"
