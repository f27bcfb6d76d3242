"""Spec strings: ``FORMAT:PATH[#SUBSET][?OPTION=VALUE&...]`` or a registered name such as
``starter``; loader options ride in the spec, so every place that takes a spec can set them.

The same strings work in ``gym.make``, :func:`medr3_env.search.build_searcher`, the CLI and
stage files, e.g. ``medrag:/data/medquad.jsonl?on_duplicate=first&on_error=skip``. New formats
are added with :func:`register_format` or the ``medr3_env.formats`` entry points; a loader's
keyword parameters are its options.
"""

from __future__ import annotations

import difflib
import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal, get_type_hints
from urllib.parse import parse_qsl, urlencode

from pydantic import TypeAdapter, ValidationError

from medr3_env.corpora.errors import SpecError
from medr3_env.corpora.records import Corpus, QuestionSet
from medr3_env.plugins import PluginError, registry

CorpusLoader = Callable[..., Corpus]
QuestionLoader = Callable[..., QuestionSet]

_OPTIONS = re.compile(r"\?([A-Za-z_]\w*=[^#]*)(?=#|$)")
# Options that name or label a corpus without changing what it holds.
_LABEL_OPTIONS = frozenset({"name"})


@dataclass(frozen=True)
class Spec:
    """A parsed spec: ``format``, ``path`` (may be empty for named sets), ``subset`` and the
    loader ``options`` given after ``?`` (values are text until the loader's types apply)."""

    format: str
    path: str
    subset: str | None = None
    options: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, spec: str) -> Spec:
        if not isinstance(spec, str) or not spec.strip():
            raise SpecError("a spec must be a non-empty string such as 'starter' or 'medrag:PATH'")
        spec = spec.strip()
        options: tuple[tuple[str, str], ...] = ()
        found = _OPTIONS.search(spec)
        if found:
            try:
                pairs = parse_qsl(found.group(1), keep_blank_values=True, strict_parsing=True)
            except ValueError as exc:
                raise SpecError(
                    f"bad options {found.group(1)!r} in spec {spec!r} ({exc})"
                ) from None
            keys = [key for key, _ in pairs]
            repeated = sorted({key for key in keys if keys.count(key) > 1})
            if repeated:
                raise SpecError(f"option(s) {repeated} given twice in spec {spec!r}")
            options = tuple(pairs)
            spec = spec[: found.start()] + spec[found.end() :]
        fmt, sep, rest = spec.partition(":")
        if not sep:
            return cls(format=spec, path="", options=options)
        path, _, subset = rest.partition("#")
        return cls(format=fmt.lower(), path=path, subset=subset or None, options=options)

    @property
    def local_path(self) -> bool:
        """Whether ``path`` names a file or folder (``hf:`` paths are dataset names)."""
        return self.format != "hf" and bool(self.path)

    def relative_to(self, base: Path) -> Spec:
        """This spec with a relative file path taken from ``base`` (a stage file's folder)."""
        if not self.local_path or Path(self.path).expanduser().is_absolute():
            return self
        return replace(self, path=str(base / self.path))

    def __str__(self) -> str:
        """The spec string again (``Spec.parse(str(spec)) == spec``)."""
        text = f"{self.format}:{self.path}" if self.path or self.subset else self.format
        if self.subset:
            text += f"#{self.subset}"
        if self.options:
            text += "?" + urlencode(self.options)
        return text


@dataclass(frozen=True)
class Format:
    """A corpus/dataset format: the loaders behind ``name:PATH`` specs (either may be ``None``).

    Loaders take ``(path, subset=None, **options)``; their keyword parameters are the options a
    spec may give (``**kwargs`` accepts any). An entry point in the ``medr3_env.formats`` group
    names a :class:`Format` object."""

    corpus: CorpusLoader | None = None
    questions: QuestionLoader | None = None
    description: str = ""


def check_format(name: str, obj: object) -> Format:
    """The registry's check: a :class:`Format` with at least one callable loader."""
    if not isinstance(obj, Format):
        raise PluginError(
            f"corpus format {name!r}: expected a medr3_env.corpora.Format, got {obj!r}"
        )
    loaders = [loader for loader in (obj.corpus, obj.questions) if loader is not None]
    if not loaders or not all(callable(loader) for loader in loaders):
        raise PluginError(
            f"corpus format {name!r}: needs a callable corpus and/or questions loader"
        )
    return obj


def register_format(
    name: str,
    *,
    corpus: CorpusLoader | None = None,
    questions: QuestionLoader | None = None,
    description: str = "",
    overwrite: bool = False,
) -> Format:
    """Register loaders for ``name:PATH`` specs (see :class:`Format`). A name already taken is an
    error unless ``overwrite=True``."""
    fmt = Format(corpus=corpus, questions=questions, description=description)
    loader = corpus if corpus is not None else questions
    source = f"{getattr(loader, '__module__', '?')}:{getattr(loader, '__qualname__', '?')}"
    registry.formats.register(
        name, fmt, overwrite=overwrite, description=description, source=source
    )
    return fmt


def _loader(kind: str, fmt: str, spec: object) -> Callable[..., Any]:
    names = corpus_formats() if kind == "corpus" else question_formats()
    if fmt in names:
        loader = getattr(registry.formats.get(fmt), "corpus" if kind == "corpus" else "questions")
        return loader  # type: ignore[no-any-return]
    close = difflib.get_close_matches(fmt, names, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    what = "corpus" if kind == "corpus" else "dataset"
    raise SpecError(f"unknown {what} format {fmt!r} in {spec!r}{hint}; known: {', '.join(names)}")


def _check_path(spec: Spec) -> None:
    if spec.local_path and not Path(spec.path).expanduser().exists():
        raise SpecError(f"{spec.format}:{spec.path}: file not found")


def loader_options(loader: Callable[..., Any]) -> dict[str, inspect.Parameter] | None:
    """The options ``loader`` accepts by name (``None``: it takes any ``**kwargs``)."""
    parameters = inspect.signature(loader).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return None
    return {
        name: p
        for name, p in parameters.items()
        if name not in ("path", "subset")
        and p.kind in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        and p.default is not inspect.Parameter.empty
    }


def _resolve_options(
    spec: str, loader: Callable[..., Any], parsed: Spec, given: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, str]]:
    """Typed keyword arguments for ``loader`` and the ones that change content (as text)."""
    from_spec = dict(parsed.options)
    clash = sorted(k for k in set(from_spec) & set(given) if str(given[k]) != from_spec[k])
    if clash:
        raise SpecError(f"option(s) {clash} given both in spec {spec!r} and as arguments")
    merged: dict[str, Any] = {**from_spec, **given}
    accepted = loader_options(loader)
    if accepted is None:
        return merged, {k: str(v) for k, v in merged.items() if k not in _LABEL_OPTIONS}
    unknown = sorted(set(merged) - set(accepted))
    if unknown:
        valid = ", ".join(sorted(accepted)) or "none"
        raise SpecError(
            f"unknown option(s) {', '.join(unknown)} for {parsed.format!r} in {spec!r}; "
            f"valid options: {valid}"
        )
    try:
        hints = get_type_hints(loader)
    except (NameError, TypeError):
        hints = {}
    typed: dict[str, Any] = {}
    changed: dict[str, str] = {}
    for key, value in merged.items():
        hint = hints.get(key)
        if hint is not None:
            try:
                value = TypeAdapter(hint).validate_python(value)
            except ValidationError as exc:
                reason = exc.errors()[0]["msg"]
                raise SpecError(f"option {key}={value!r} in {spec!r}: {reason}") from None
        typed[key] = value
        if key not in _LABEL_OPTIONS and value != accepted[key].default:
            changed[key] = str(value)
    return typed, changed


def check_spec(spec: str, kind: Literal["corpus", "questions"] = "corpus") -> Spec:
    """Check a spec without reading anything: its format loads a ``kind`` and every option is
    one the loader takes, with a value of its type. Raises :class:`SpecError` naming the valid
    options; whether the file exists is left to loading (it may live on another machine).

    >>> check_spec("medrag:/data/medquad.jsonl?on_duplicate=first").options
    (('on_duplicate', 'first'),)
    """
    parsed = Spec.parse(spec)
    loader = _loader(kind, parsed.format, spec)
    _resolve_options(spec, loader, parsed, {})
    return parsed


def load_corpus(spec: str | Corpus | None = None, **options: Any) -> Corpus:
    """Resolve a corpus spec (``None`` is the starter corpus); ``options`` add to the spec's."""
    if isinstance(spec, Corpus):
        return spec
    text = spec or "starter"
    parsed = Spec.parse(text)
    loader = _loader("corpus", parsed.format, spec)
    kwargs, changed = _resolve_options(text, loader, parsed, options)
    _check_path(parsed)
    corpus = loader(parsed.path, subset=parsed.subset, **kwargs)
    if changed:
        corpus.loader_options = changed
        corpus._fingerprint = None
    return corpus


def load_questions(spec: str | QuestionSet | None = None, **options: Any) -> QuestionSet:
    """Resolve a question-set spec (``None`` is the starter question set)."""
    if isinstance(spec, QuestionSet):
        return spec
    text = spec or "starter"
    parsed = Spec.parse(text)
    loader = _loader("questions", parsed.format, spec)
    kwargs, _ = _resolve_options(text, loader, parsed, options)
    _check_path(parsed)
    return loader(parsed.path, subset=parsed.subset, **kwargs)


def corpus_formats() -> list[str]:
    """Registered formats that load a corpus."""
    return [n for n in registry.formats.names() if registry.formats.get(n).corpus is not None]


def question_formats() -> list[str]:
    """Registered formats that load a question set."""
    return [n for n in registry.formats.names() if registry.formats.get(n).questions is not None]


def _register_builtins() -> None:
    from medr3_env.corpora.medrag import load_medrag
    from medr3_env.corpora.native import load_native_questions
    from medr3_env.corpora.starter import load_starter_corpus, load_starter_questions

    def starter_corpus(path: str = "", subset: str | None = None) -> Corpus:
        return load_starter_corpus()

    def starter_questions(path: str = "", subset: str | None = None) -> QuestionSet:
        return load_starter_questions()

    from medr3_env.corpora.generic import load_hf_corpus, load_jsonl_questions, load_table_corpus
    from medr3_env.corpora.mcq import load_bioasq, load_medmcqa, load_medqa, load_mirage
    from medr3_env.corpora.pubmedqa import load_pubmedqa_corpus, load_pubmedqa_questions

    builtins: dict[str, tuple[CorpusLoader | None, QuestionLoader | None, str]] = {
        "starter": (starter_corpus, starter_questions, "the bundled starter corpus and questions"),
        "medrag": (load_medrag, None, "MedRAG chunk JSONL (a file or a folder of them)"),
        "medr3": (None, load_native_questions, "MedR3's own question JSONL"),
        "pubmedqa": (load_pubmedqa_corpus, load_pubmedqa_questions, "PubMedQA ori_pqal.json"),
        "medqa": (None, load_medqa, "MedQA JSONL"),
        "medmcqa": (None, load_medmcqa, "MedMCQA JSON/JSONL"),
        "mirage": (None, load_mirage, "MIRAGE benchmark.json (#medqa, #medmcqa, ...)"),
        "bioasq": (None, load_bioasq, "BioASQ JSON"),
        "jsonl": (load_table_corpus, load_jsonl_questions, "generic JSONL with field mapping"),
        "csv": (load_table_corpus, None, "generic CSV/TSV with field mapping"),
        "hf": (load_hf_corpus, None, "a Hugging Face dataset (the datasets package)"),
    }
    for name, (corpus, questions, description) in builtins.items():
        register_format(name, corpus=corpus, questions=questions, description=description)


_register_builtins()
