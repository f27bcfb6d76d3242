"""Compile lexicon entries into a term table and match it against text with Aho-Corasick automata.

A :class:`TermTable` maps surface forms to canonical concept strings in two dictionaries:

* ``lower``: case-insensitive multi-character terms ("atrial fibrillation", "metformin");
* ``exact``: case-sensitive short forms ("AF", "ALL", "HbA1c"), so "all" or "af" in ordinary
  prose never match.

The full table (starter lexicon + PyPI term lists) holds ~221k forms; compiling it takes seconds, so
:func:`cached_term_table` stores it once per set of source versions in the MedR3 cache, as
checksummed JSON (never a pickle, so a cache file cannot run code).
:class:`TermMatcher` then builds two ``ahocorasick_rs`` automata from the table (1–2 s) and
finds whole-word, leftmost-longest matches in a single pass over the text.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medr3_env.text_norm import is_abbreviation, normalise_entity

TABLE_FORMAT = 1
MIN_TERM_CHARS = 3
# Single words from the PyPI dictionaries are stored lower-cased, so "gerd" and "moods" look
# alike. Such short forms are kept only as upper-case / capitalised exact forms ("GERD", "Xanax")
# unless they are a concept name in their own right ("gout", "acne").
SHORT_DICTIONARY_FORM = 5
logger = logging.getLogger(__name__)


@dataclass
class TermTable:
    """Surface form → canonical concept, split into case-insensitive and exact forms."""

    lower: dict[str, str] = field(default_factory=dict)
    exact: dict[str, str] = field(default_factory=dict)
    sources: tuple[str, ...] = ()
    _digest: str | None = field(default=None, repr=False, compare=False)

    @property
    def digest(self) -> str:
        """Content hash: two tables with the same forms and concepts share it."""
        if self._digest is None:
            payload = repr((sorted(self.lower.items()), sorted(self.exact.items())))
            self._digest = hashlib.sha256(payload.encode()).hexdigest()[:12]
        return self._digest

    def __len__(self) -> int:
        return len(self.lower) + len(self.exact)

    def canonical(self, term: str) -> str:
        """The concept ``term`` names in this table, or its normalised form if unknown."""
        stripped = term.strip()
        found = self.exact.get(stripped) or self.lower.get(stripped.lower())
        return found or normalise_entity(stripped)

    @classmethod
    def compile(cls, entries: Iterable[dict], sources: Sequence[str] = ()) -> TermTable:
        """Compile lexicon entries; an earlier entry keeps a form that a later one repeats, and a
        later entry that shares a form with an earlier concept joins that concept."""
        from spacy.lang.en.stop_words import STOP_WORDS

        entries = [e for e in entries if normalise_entity(e.get("name", ""))]
        names = {normalise_entity(e["name"]) for e in entries}
        table = cls(sources=tuple(sources))
        for entry in entries:
            forms = [entry["name"], *entry.get("synonyms", ())]
            canonical = normalise_entity(entry["name"])
            for form in forms:
                existing = table.lower.get(form.strip().lower())
                if existing is not None:
                    canonical = existing
                    break
            dictionary_case = bool(entry.get("lowercased"))
            for form in forms:
                form = form.strip()
                lowered = form.lower()
                if not form:
                    continue
                if is_abbreviation(form):
                    table.exact.setdefault(form, canonical)
                elif (
                    dictionary_case
                    and " " not in form
                    and len(form) <= SHORT_DICTIONARY_FORM
                    and lowered not in names
                ):
                    for variant in (form.upper(), form.capitalize()):
                        table.exact.setdefault(variant, canonical)
                elif (
                    len(lowered) >= MIN_TERM_CHARS
                    and lowered not in STOP_WORDS
                    and not lowered.replace(" ", "").isdigit()
                ):
                    table.lower.setdefault(lowered, canonical)
        return table


TABLE_HEADER = "medr3-term-table"


def _encode_table(table: TermTable) -> bytes:
    """A header line (format, version, sha256 of the body) and a JSON body: data only, so
    reading a cache file can never run code (unlike a pickle)."""
    body = json.dumps(
        {
            "lower": table.lower,
            "exact": table.exact,
            "sources": list(table.sources),
            "digest": table.digest,
        },
        ensure_ascii=False,
        separators=(",", ":"),
    ).encode("utf-8")
    header = {
        "format": TABLE_HEADER,
        "version": TABLE_FORMAT,
        "sha256": hashlib.sha256(body).hexdigest(),
    }
    return json.dumps(header).encode() + b"\n" + body


def _decode_table(raw: bytes) -> TermTable | None:
    """The table in ``raw``, or ``None`` when it is not an intact MedR3 term-table file."""
    head, _, body = raw.partition(b"\n")
    try:
        header = json.loads(head)
        if (
            header.get("format") != TABLE_HEADER
            or header.get("version") != TABLE_FORMAT
            or header.get("sha256") != hashlib.sha256(body).hexdigest()
        ):
            return None
        data = json.loads(body)
        return TermTable(
            lower=dict(data["lower"]),
            exact=dict(data["exact"]),
            sources=tuple(data["sources"]),
            _digest=str(data["digest"]),
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def cached_term_table(sources: Sequence[str], cache_dir: Path | None = None) -> TermTable:
    """The compiled table for ``sources``, read from (or written to) the on-disk cache.

    The cache file is JSON with a checksum header; a damaged or foreign file is rebuilt."""
    from medr3_env.lexicons import iter_entries, source_version
    from medr3_env.paths import cache_root

    versions = "|".join(f"{s}={source_version(s)}" for s in sources)
    key = hashlib.sha256(f"{TABLE_FORMAT}|{versions}".encode()).hexdigest()[:16]
    directory = (cache_dir or cache_root()) / "lexicons"
    path = directory / f"terms-{key}.json"
    if path.is_file():
        try:
            cached = _decode_table(path.read_bytes())
        except OSError:
            cached = None
        if cached is not None:
            return cached
        logger.warning("term-table cache %s is damaged or foreign; rebuilding it", path)
    table = TermTable.compile((e for s in sources for e in iter_entries(s)), sources)
    directory.mkdir(parents=True, exist_ok=True)
    # Write to a temp file and rename so concurrent processes never read half a table.
    fd, tmp = tempfile.mkstemp(dir=directory, suffix=".tmp")
    with os.fdopen(fd, "wb") as handle:
        handle.write(_encode_table(table))
    os.replace(tmp, path)
    return table


def _same_length_lower(text: str) -> str:
    lowered = text.lower()
    if len(lowered) == len(text):
        return lowered
    # A few characters ("İ") lower-case to two; keep offsets aligned with the original text.
    return "".join(c if len(c.lower()) != 1 else c.lower() for c in text)


SMALL_TABLE_FORMS = 64
"""Tables with at most this many forms (a document's annotations) are matched with one
``str.find`` scan per form instead of an automaton, whose construction costs more than it saves."""


class TermMatcher:
    """Whole-word, leftmost-longest matching of a :class:`TermTable` (Aho-Corasick).

    The automata (``ahocorasick_rs``, in Rust) report every occurrence of every form; the few
    occurrences that are not whole words are dropped here, and the longest of those starting
    leftmost wins. A small table (:data:`SMALL_TABLE_FORMS`) is scanned form by form, with the
    same result."""

    def __init__(self, table: TermTable) -> None:
        self.table = table
        self._automata: list[tuple[Any, list[str], bool]] = []
        self._small: list[tuple[list[tuple[str, str]], bool]] | None = None
        if len(table.lower) + len(table.exact) <= SMALL_TABLE_FORMS:
            self._small = [
                ([(form, canonical) for form, canonical in forms.items() if form], fold)
                for forms, fold in ((table.lower, True), (table.exact, False))
                if forms
            ]
            return
        import ahocorasick_rs

        for forms, fold in ((table.lower, True), (table.exact, False)):
            patterns = [form for form in forms if form]  # an empty form matches nothing
            if patterns:
                automaton = ahocorasick_rs.AhoCorasick(patterns)
                self._automata.append((automaton, [forms[p] for p in patterns], fold))

    def __getstate__(self) -> dict[str, TermTable]:
        # The automata cannot be pickled: a copy (e.g. in an index-building worker) rebuilds them.
        return {"table": self.table}

    def __setstate__(self, state: dict[str, TermTable]) -> None:
        self.__init__(state["table"])  # type: ignore[misc]

    def _occurrences(self, text: str) -> Iterator[tuple[str, int, int, str]]:
        """``(haystack, start, end, canonical)`` of every occurrence of every form."""
        lowered = _same_length_lower(text)  # for the case-insensitive forms
        if self._small is not None:
            for pairs, fold in self._small:
                haystack = lowered if fold else text
                find = haystack.find
                for form, canonical in pairs:
                    start = find(form)
                    while start >= 0:
                        yield haystack, start, start + len(form), canonical
                        start = find(form, start + 1)
            return
        for automaton, canonicals, fold in self._automata:
            haystack = lowered if fold else text
            for pattern, start, end in automaton.find_matches_as_indexes(
                haystack, overlapping=True
            ):
                yield haystack, start, end, canonicals[pattern]

    def find(self, text: str) -> list[tuple[int, int, str]]:
        """Non-overlapping ``(start, end, canonical)`` matches, in text order."""
        candidates = []
        size = len(text)
        for haystack, start, end, canonical in self._occurrences(text):
            if start > 0 and haystack[start - 1].isalnum():
                continue
            if end < size and haystack[end].isalnum():
                continue
            candidates.append((start, end, canonical))
        candidates.sort(key=lambda m: (m[0], m[0] - m[1]))
        chosen, cursor = [], 0
        for start, end, canonical in candidates:
            if start >= cursor:
                chosen.append((start, end, canonical))
                cursor = end
        return chosen
