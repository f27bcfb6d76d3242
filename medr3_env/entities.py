"""Biomedical entity extraction for the evidence reward: one interface, two spaCy implementations.

* :class:`SpacyModelExtractor` uses an installed spaCy/scispaCy model (``en_core_sci_sm`` ...) and
  scispaCy's ``AbbreviationDetector``.
* :class:`LexiconExtractor` is the offline fallback: a blank English spaCy pipeline with
  ``PhraseMatcher`` rules over a biomedical lexicon (the starter lexicon, plus any extra terms).

Entities are normalised strings (lower case, canonical name for known synonyms), so the same concept
written as "AF" or "atrial fibrillation" compares equal. Document entities are computed once at
index-build time; at reward time only the agent's own text is processed.
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Protocol, runtime_checkable

_SPACE = re.compile(r"\s+")
_EDGE_PUNCT = re.compile(r"^[\W_]+|[\W_]+$")

SentenceEntities = tuple[tuple[str, ...], ...]


def normalise_entity(text: str) -> str:
    """Lower-case, collapse white space and trim punctuation at both ends."""
    return _EDGE_PUNCT.sub("", _SPACE.sub(" ", text.strip().lower()))


@runtime_checkable
class EntityExtractor(Protocol):
    """What the index builder and the evidence reward need from an extractor."""

    name: str
    """Stable identifier recorded in index manifests, e.g. ``lexicon:1f2e3d4c``."""

    def extract(self, text: str) -> set[str]:
        """The normalised entities mentioned in ``text``."""

    def extract_sentences(
        self, texts: Iterable[str], batch_size: int = 64
    ) -> Iterable[SentenceEntities]:
        """For each text, the entities of each of its sentences (batched with ``nlp.pipe``)."""


def _is_abbreviation(term: str) -> bool:
    """Short case-sensitive forms such as "AF", "ALL", "HbA1c": matched on exact spelling."""
    letters = [c for c in term if c.isalpha()]
    return len(term) <= 8 and any(c.isupper() for c in letters[1:] or letters) and " " not in term


class LexiconExtractor:
    """PhraseMatcher over lexicon entries ``{"name", "label", "synonyms"}`` (offline fallback)."""

    def __init__(self, entries: Sequence[dict], *, label: str = "lexicon") -> None:
        import spacy  # imported on first use: it dominates `import medr3_env` otherwise
        from spacy.matcher import PhraseMatcher

        self.nlp = spacy.blank("en")
        self.nlp.add_pipe("sentencizer")
        self._lower = PhraseMatcher(self.nlp.vocab, attr="LOWER")
        self._exact = PhraseMatcher(self.nlp.vocab, attr="ORTH")
        self._canonical: dict[int, str] = {}
        lower_terms: dict[str, str] = {}
        exact_terms: dict[str, str] = {}
        for entry in entries:
            canonical = normalise_entity(entry["name"])
            if not canonical:
                continue
            for term in [entry["name"], *entry.get("synonyms", ())]:
                term = term.strip()
                if not term:
                    continue
                if _is_abbreviation(term):
                    exact_terms.setdefault(term, canonical)
                else:
                    lower_terms.setdefault(term.lower(), canonical)
        for matcher, terms in ((self._lower, lower_terms), (self._exact, exact_terms)):
            by_canonical: dict[str, list[str]] = {}
            for term, canonical in terms.items():
                by_canonical.setdefault(canonical, []).append(term)
            for canonical, variants in by_canonical.items():
                key = self.nlp.vocab.strings.add(canonical)
                self._canonical[key] = canonical
                matcher.add(canonical, list(self.nlp.tokenizer.pipe(variants)))
        digest = hashlib.sha256(
            repr((sorted(lower_terms.items()), sorted(exact_terms.items()))).encode()
        ).hexdigest()[:12]
        self.name = f"{label}:{digest}"
        self.size = len(lower_terms) + len(exact_terms)

    def _spans(self, doc) -> list:
        from spacy.util import filter_spans

        matches = self._lower(doc, as_spans=True) + self._exact(doc, as_spans=True)
        return filter_spans(matches)

    def extract(self, text: str) -> set[str]:
        doc = self.nlp.make_doc(text)
        return {span.label_ for span in self._spans(doc)}

    def extract_sentences(
        self, texts: Iterable[str], batch_size: int = 64
    ) -> Iterable[SentenceEntities]:
        for doc in self.nlp.pipe(texts, batch_size=batch_size):
            yield _by_sentence(doc, [(span.start, span.label_) for span in self._spans(doc)])


class SpacyModelExtractor:
    """A trained spaCy pipeline (e.g. scispaCy ``en_core_sci_sm``) plus the AbbreviationDetector."""

    def __init__(self, model: str) -> None:
        import spacy

        self.nlp = spacy.load(model, exclude=["lemmatizer"])
        self._abbreviations = False
        if importlib.util.find_spec("scispacy") is not None:
            import scispacy.abbreviation  # noqa: F401  (registers the pipe factory)

            self.nlp.add_pipe("abbreviation_detector")
            self._abbreviations = True
        if "parser" not in self.nlp.pipe_names and "senter" not in self.nlp.pipe_names:
            self.nlp.add_pipe("sentencizer")
        meta = self.nlp.meta
        self.name = (
            f"spacy:{meta.get('lang', 'en')}_{meta.get('name', model)}-{meta.get('version', '0')}"
        )

    def _entities(self, doc) -> list[tuple[int, str]]:
        long_forms = {}
        if self._abbreviations:
            for abbreviation in doc._.abbreviations:
                long_forms[abbreviation.text] = normalise_entity(abbreviation._.long_form.text)
        out = []
        for ent in doc.ents:
            text = long_forms.get(ent.text) or normalise_entity(ent.text)
            if text:
                out.append((ent.start, text))
        return out

    def extract(self, text: str) -> set[str]:
        return {entity for _, entity in self._entities(self.nlp(text))}

    def extract_sentences(
        self, texts: Iterable[str], batch_size: int = 64
    ) -> Iterable[SentenceEntities]:
        for doc in self.nlp.pipe(texts, batch_size=batch_size):
            yield _by_sentence(doc, self._entities(doc))


def _by_sentence(doc, entities: list[tuple[int, str]]) -> SentenceEntities:
    sentences = list(doc.sents)
    if not sentences:
        return ()
    buckets: list[list[str]] = [[] for _ in sentences]
    starts = [sent.start for sent in sentences]
    index = 0
    for token_start, entity in sorted(entities):
        while index + 1 < len(starts) and starts[index + 1] <= token_start:
            index += 1
        if entity not in buckets[index]:
            buckets[index].append(entity)
    return tuple(tuple(bucket) for bucket in buckets)


def spacy_model_available(model: str) -> bool:
    return importlib.util.find_spec(model) is not None


@lru_cache(maxsize=8)
def load_extractor(spec: str = "auto") -> EntityExtractor:
    """Build an extractor from a spec: ``auto`` (scispaCy ``en_core_sci_sm`` when installed, else
    the lexicon), ``lexicon`` or ``spacy:MODEL``. Cached per process."""
    if spec == "auto":
        spec = "spacy:en_core_sci_sm" if spacy_model_available("en_core_sci_sm") else "lexicon"
    if spec == "lexicon":
        from medr3_env.corpora.starter import load_starter_lexicon

        return LexiconExtractor(load_starter_lexicon())
    if spec.startswith("spacy:"):
        model = spec.removeprefix("spacy:")
        if not spacy_model_available(model):
            raise ValueError(
                f"spaCy model {model!r} is not installed; install it (scispaCy models come from "
                "https://allenai.github.io/scispacy/) or use entity_extractor='lexicon'"
            )
        return SpacyModelExtractor(model)
    raise ValueError(f"unknown entity extractor {spec!r}; use 'auto', 'lexicon' or 'spacy:MODEL'")
