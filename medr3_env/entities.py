"""Biomedical entity extraction for the evidence reward: one interface, two implementations.

* :class:`SpacyModelExtractor` uses an installed spaCy/scispaCy model (``en_core_sci_sm`` ...) and
  scispaCy's ``AbbreviationDetector``.
* :class:`LexiconExtractor` is the offline fallback: whole-word Aho-Corasick matching of a compiled
  term table (the starter lexicon plus the PyPI term lists that are installed, see
  :mod:`medr3_env.lexicons`), inside a blank English spaCy pipeline that splits sentences and, when
  scispaCy is importable, runs its ``AbbreviationDetector``.

Entities are normalised strings (lower case, canonical name for known synonyms), so the same concept
written as "AF" or "atrial fibrillation" compares equal. Document entities are computed once at
index-build time; at reward time only the agent's own text is processed.
"""

from __future__ import annotations

import importlib.util
import inspect
from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from medr3_env.plugins import PluginError, registry
from medr3_env.term_matcher import TermMatcher, TermTable, cached_term_table
from medr3_env.text_norm import is_abbreviation, normalise_entity

SentenceEntities = tuple[tuple[str, ...], ...]

__all__ = [
    "EntityExtractor",
    "LexiconExtractor",
    "NoEntities",
    "SentenceEntities",
    "SpacyModelExtractor",
    "is_abbreviation",
    "load_extractor",
    "normalise_entity",
    "register_extractor",
]


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

    def canonical(self, term: str) -> str:
        """The entity string this extractor would report for the term ``term``."""

    def extract_spans(self, text: str) -> list[tuple[int, int, str]]:
        """``(start, end, entity)`` character spans of the entities in ``text``, in text order."""


def scispacy_available() -> bool:
    """Whether scispaCy (and so its ``AbbreviationDetector``) can be imported."""
    return importlib.util.find_spec("scispacy") is not None


class LexiconExtractor:
    """Term-table matching plus a blank spaCy pipeline (sentences, abbreviations): the fallback.

    ``terms`` is a compiled :class:`TermTable` or lexicon entries ``{"name", "label", "synonyms"}``.
    ``abbreviations`` adds scispaCy's ``AbbreviationDetector`` ("acute kidney injury (AKI)" makes
    later "AKI" mentions count as that concept); default: on when scispaCy is importable.
    """

    def __init__(
        self,
        terms: TermTable | Sequence[dict],
        *,
        label: str = "lexicon",
        abbreviations: bool | None = None,
    ) -> None:
        self.table = terms if isinstance(terms, TermTable) else TermTable.compile(terms)
        self.matcher = TermMatcher(self.table)
        self.abbreviations = scispacy_available() if abbreviations is None else abbreviations
        suffix = "+abbrev" if self.abbreviations else ""
        self.name = f"{label}:{self.table.digest}{suffix}"
        self.size = len(self.table)
        self._nlp = None

    @property
    def nlp(self):
        """The spaCy pipeline (built on first use: plain ``extract`` does not need it)."""
        if self._nlp is None:
            import spacy  # imported on first use: it dominates `import medr3_env` otherwise

            nlp = spacy.blank("en")
            nlp.add_pipe("sentencizer")
            if self.abbreviations:
                import scispacy.abbreviation  # noqa: F401  (registers the pipe factory)

                nlp.add_pipe("abbreviation_detector")
            self._nlp = nlp
        return self._nlp

    def canonical(self, term: str) -> str:
        return self.table.canonical(term)

    def _spans(self, text: str, doc=None) -> list[tuple[int, int, str]]:
        spans = self.matcher.find(text)
        if self.abbreviations:
            doc = doc if doc is not None else self.nlp(text)
            for short in doc._.abbreviations:
                long_form = short._.long_form
                concept = self.table.canonical(long_form.text)
                spans.append((short.start_char, short.end_char, concept))
                spans.append((long_form.start_char, long_form.end_char, concept))
        return spans

    def _matches(self, text: str, doc=None) -> list[tuple[int, str]]:
        return [(start, canonical) for start, _, canonical in self._spans(text, doc)]

    def extract_spans(self, text: str) -> list[tuple[int, int, str]]:
        """``(start, end, entity)`` character spans of every match, in text order."""
        return sorted(set(self._spans(text)))

    def extract(self, text: str) -> set[str]:
        return {canonical for _, canonical in self._matches(text)}

    def extract_sentences(
        self, texts: Iterable[str], batch_size: int = 64
    ) -> Iterable[SentenceEntities]:
        for doc in self.nlp.pipe(texts, batch_size=batch_size):
            starts = [sent.start_char for sent in doc.sents]
            yield _by_sentence(starts, self._matches(doc.text, doc))


class SpacyModelExtractor:
    """A trained spaCy pipeline (e.g. scispaCy ``en_core_sci_sm``, or a saved pipeline directory)
    whose ``doc.ents`` are the entities, plus scispaCy's AbbreviationDetector when importable."""

    def __init__(self, model: str) -> None:
        import spacy

        self.nlp = spacy.load(model, exclude=["lemmatizer"])
        self._abbreviations = False
        if scispacy_available():
            import scispacy.abbreviation  # noqa: F401  (registers the pipe factory)

            self.nlp.add_pipe("abbreviation_detector")
            self._abbreviations = True
        if "parser" not in self.nlp.pipe_names and "senter" not in self.nlp.pipe_names:
            self.nlp.add_pipe("sentencizer")
        meta = self.nlp.meta
        suffix = "+abbrev" if self._abbreviations else ""
        self.name = (
            f"spacy:{meta.get('lang', 'en')}_{meta.get('name', model)}-{meta.get('version', '0')}"
            f"{suffix}"
        )

    def canonical(self, term: str) -> str:
        return normalise_entity(term)

    def extract_spans(self, text: str) -> list[tuple[int, int, str]]:
        """``(start, end, entity)`` character spans of every entity, in text order."""
        return sorted(self._entity_spans(self.nlp(text)))

    def _entities(self, doc) -> list[tuple[int, str]]:
        return [(start, entity) for start, _, entity in self._entity_spans(doc)]

    def _entity_spans(self, doc) -> list[tuple[int, int, str]]:
        long_forms = {}
        if self._abbreviations:
            for abbreviation in doc._.abbreviations:
                long_forms[abbreviation.text] = normalise_entity(abbreviation._.long_form.text)
        out = []
        for ent in doc.ents:
            text = long_forms.get(ent.text) or normalise_entity(ent.text)
            if text:
                out.append((ent.start_char, ent.end_char, text))
        return out

    def extract(self, text: str) -> set[str]:
        return {entity for _, entity in self._entities(self.nlp(text))}

    def extract_sentences(
        self, texts: Iterable[str], batch_size: int = 64
    ) -> Iterable[SentenceEntities]:
        for doc in self.nlp.pipe(texts, batch_size=batch_size):
            yield _by_sentence([sent.start_char for sent in doc.sents], self._entities(doc))


class NoEntities:
    """``entity_extractor="none"``: finds nothing, for search-only indexes.

    Extraction costs about a millisecond per document with the lexicon extractor, which dominates
    building million-document indexes. Such an index serves search and read; with it the
    evidence term counts only the documents' own annotation concepts (PubMedQA's MeSH headings),
    so it scores 0 on a corpus without annotations, and an environment using any other extractor
    refuses the index.
    """

    name = "none"

    def extract(self, text: str) -> set[str]:
        return set()

    def extract_sentences(
        self, texts: Iterable[str], batch_size: int = 64
    ) -> Iterable[SentenceEntities]:
        return (() for _ in texts)

    def canonical(self, term: str) -> str:
        return normalise_entity(term)

    def extract_spans(self, text: str) -> list[tuple[int, int, str]]:
        return []


def _by_sentence(starts: list[int], entities: list[tuple[int, str]]) -> SentenceEntities:
    """Group ``(char offset, entity)`` pairs by the sentence (given by start offsets) they are in."""
    if not starts:
        return ()
    buckets: list[list[str]] = [[] for _ in starts]
    index = 0
    for offset, entity in sorted(entities):
        while index + 1 < len(starts) and starts[index + 1] <= offset:
            index += 1
        if entity not in buckets[index]:
            buckets[index].append(entity)
    return tuple(tuple(bucket) for bucket in buckets)


def spacy_model_available(model: str) -> bool:
    """Whether ``model`` is an installed spaCy package or a saved pipeline directory."""
    if (Path(model) / "config.cfg").is_file():
        return True
    return importlib.util.find_spec(model) is not None


ExtractorFactory = Callable[[str], EntityExtractor]
"""``factory(argument) -> EntityExtractor``: how an extractor plug-in is registered. The spec
``name:argument`` calls the factory registered as ``name`` with ``argument`` ("" when absent)."""


def check_extractor_factory(name: str, factory: object) -> ExtractorFactory:
    """The registry's check: a callable taking one argument (the text after ``name:``)."""
    if not callable(factory):
        raise PluginError(f"entity extractor {name!r}: {factory!r} is not callable")
    try:
        inspect.signature(factory).bind("")
    except TypeError:
        raise PluginError(
            f"entity extractor {name!r}: expected factory(argument: str) -> EntityExtractor"
        ) from None
    except ValueError:  # builtins without a signature
        pass
    return factory  # type: ignore[return-value]


def register_extractor(
    name: str, factory: ExtractorFactory | None = None, *, overwrite: bool = False
) -> Any:
    """Register an entity-extractor factory for specs ``name`` and ``name:ARGUMENT``.

    >>> @register_extractor("upper_words")
    ... def upper_words(argument: str) -> EntityExtractor: ...
    """
    return registry.extractors.register(name, factory, overwrite=overwrite)


def _auto(argument: str = "") -> EntityExtractor:
    """scispaCy's en_core_sci_sm when installed, else the offline term lists."""
    return load_extractor(
        "spacy:en_core_sci_sm" if spacy_model_available("en_core_sci_sm") else "lexicon"
    )


def _lexicon(argument: str = "") -> EntityExtractor:
    """Term lists (lexicon:SOURCE+SOURCE; all installed sources by default)."""
    from medr3_env.lexicons import SOURCES, available_sources, source_available

    sources = tuple(s for s in argument.split("+") if s) if argument else available_sources()
    for source in sources:
        if source not in SOURCES:
            raise ValueError(
                f"unknown lexicon source {source!r} in 'lexicon:{argument}'; known: {', '.join(SOURCES)}"
            )
        if not source_available(source):
            raise ValueError(
                f"lexicon source {source!r} is not installed; see docs/rewards.md "
                "(pip install 'medr3-env[lexicons]')"
            )
    if sources == ("starter",):
        from medr3_env.corpora.starter import load_starter_lexicon

        return LexiconExtractor(load_starter_lexicon())
    return LexiconExtractor(cached_term_table(sources))


def _spacy(argument: str = "") -> EntityExtractor:
    """An installed spaCy/scispaCy pipeline with NER (spacy:MODEL)."""
    if not argument or not spacy_model_available(argument):
        raise ValueError(
            f"spaCy model {argument!r} is not installed; install it (scispaCy models come from "
            "https://allenai.github.io/scispacy/) or use entity_extractor='lexicon'"
        )
    return SpacyModelExtractor(argument)


def _none(argument: str = "") -> EntityExtractor:
    """No entities (search-only indexes; the evidence term then counts document annotations only)."""
    return NoEntities()


for _name, _factory in (("auto", _auto), ("lexicon", _lexicon), ("spacy", _spacy), ("none", _none)):
    register_extractor(_name, _factory)


@lru_cache(maxsize=8)
def load_extractor(spec: str = "auto") -> EntityExtractor:
    """Build an extractor from a spec ``NAME[:ARGUMENT]`` (cached per process). Built in:

    * ``auto``: scispaCy's ``en_core_sci_sm`` when installed, else ``lexicon``;
    * ``lexicon``: the starter lexicon plus every installed PyPI term list;
    * ``lexicon:SOURCE+SOURCE``: named sources only, e.g. ``lexicon:starter`` (see
      :data:`medr3_env.lexicons.SOURCES`);
    * ``none``: no entities (search-only indexes);
    * ``spacy:MODEL``: any installed spaCy pipeline package or saved pipeline directory with an
      NER component (or entity ruler).

    Others come from :func:`register_extractor` or the ``medr3_env.extractors`` entry points
    (``medr3 plugins --kind extractors`` lists them).
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError("entity_extractor must be a non-empty spec such as 'auto' or 'lexicon'")
    name, _, argument = spec.partition(":")
    try:
        factory = registry.extractors.get(name)
    except KeyError as exc:
        raise ValueError(str(exc)) from None
    return factory(argument)  # type: ignore[no-any-return]
