"""Corpora and question sets: typed records, spec strings ("medrag:PATH") and one loader per format.

Everything the environment reads flows through here: a :class:`Corpus` yields :class:`Document`
records for the index; a question set yields :class:`QAItem` records for episodes.
"""

from medr3_env.corpora.errors import CorpusFormatError, SpecError
from medr3_env.corpora.records import Corpus, Document, QAItem, QuestionSet
from medr3_env.corpora.specs import Format, load_corpus, load_questions, register_format

__all__ = [
    "Corpus",
    "CorpusFormatError",
    "Document",
    "QAItem",
    "QuestionSet",
    "SpecError",
    "load_corpus",
    "load_questions",
    "register_format",
    "Format",
]
