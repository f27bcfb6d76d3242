"""String normalisation shared by the lexicons, the term matcher, the extractors, the action parser
and the reward guards (so that spelling tricks never change what a guard sees)."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

_SPACE = re.compile(r"\s+")
_EDGE_PUNCT = re.compile(r"^[\W_]+|[\W_]+$")

# Latin look-alikes (Cyrillic and Greek letters that render like Latin ones). Upper and lower case
# are both listed so that case-sensitive matching (abbreviations) sees the Latin form too.
_CONFUSABLE_PAIRS = (
    "аa вb сc еe һh іi јj кk мm нh оo рp ѕs тt уy хx ԁd ԛq ԝw ӏl ɡg ɑa ıi"
    " АA ВB СC ЕE НH ІI ЈJ КK МM ОO РP ЅS ТT ХX УY Ԛq Ԝw"
    " αa βb εe ηn ιi κk νv οo ρp τt υu χx ωw"
    " ΑA ΒB ΕE ΖZ ΗH ΙI ΚK ΜM ΝN ΟO ΡP ΤT ΥY ΧX"
)
CONFUSABLES: dict[int, str] = {ord(pair[0]): pair[1] for pair in _CONFUSABLE_PAIRS.split()}
"""Look-alike letter → Latin letter, as a :meth:`str.translate` table."""

ASCII_SEPARATORS: dict[int, str] = {code: " " for code in range(128) if not chr(code).isalnum()}
"""Every ASCII character but letters and digits, mapped to a space (a :meth:`str.translate`
table): on ASCII text, ``text.translate(ASCII_SEPARATORS).split()`` equals
``re.findall(r"[^\\W_]+", text)`` and is several times faster."""

_LATIN = re.compile(r"[A-Za-z]")
_WORDLIKE = re.compile(r"\w+")


def is_invisible(char: str) -> bool:
    """Format characters (zero-width spaces and joiners, bidi controls, soft hyphen, BOM: Unicode
    category Cf), lone surrogates (Cs) and control codes other than white space (Cc)."""
    category = unicodedata.category(char)
    return category in ("Cf", "Cs") or (category == "Cc" and not char.isspace())


# Astral code points that are format characters (the rest of the astral planes has none that
# render invisibly besides these blocks).
_ASTRAL_FORMAT = (
    *range(0x110BD, 0x110BE),
    *range(0x110CD, 0x110CE),
    *range(0x13430, 0x13440),
    *range(0x1BCA0, 0x1BCA4),
    *range(0x1D173, 0x1D17B),
    *range(0xE0001, 0xE0002),
    *range(0xE0020, 0xE0080),
)


@lru_cache(maxsize=1)
def _tables() -> tuple[dict[int, None], dict[int, None]]:
    """``str.translate`` tables: invisible characters, and invisible characters plus combining
    marks (built once, on first use)."""
    invisible: dict[int, None] = {}
    marks: dict[int, None] = {}
    for code in range(0x10000):
        char = chr(code)
        if is_invisible(char):
            invisible[code] = None
        elif unicodedata.combining(char) or unicodedata.category(char) in ("Mn", "Me"):
            marks[code] = None
    invisible.update(dict.fromkeys(_ASTRAL_FORMAT))
    return invisible, {**invisible, **marks}


_ASCII_INVISIBLE = re.compile(
    "[" + re.escape("".join(chr(code) for code in range(128) if is_invisible(chr(code)))) + "]+"
)
"""The invisible ASCII characters: control codes other than white space."""


def _class_of(codes: list[int]) -> re.Pattern[str]:
    """A regex matching runs of the characters ``codes`` (one character class of ranges)."""
    ranges: list[list[int]] = []
    for code in sorted(codes):
        if ranges and code == ranges[-1][1] + 1:
            ranges[-1][1] = code
        else:
            ranges.append([code, code])
    return re.compile("[" + "".join(f"\\U{a:08x}-\\U{b:08x}" for a, b in ranges) + "]+")


@lru_cache(maxsize=1)
def _patterns() -> tuple[re.Pattern[str], re.Pattern[str]]:
    """:func:`_tables` as regexes: deleting their matches equals translating with the tables,
    and a character-class scan is many times faster than a translate through a 64k-entry dict
    on text that is mostly ASCII."""
    invisible, marks = _tables()
    return _class_of(list(invisible)), _class_of(list(marks))


def strip_invisible(text: str) -> str:
    """``text`` without invisible characters (see :func:`is_invisible`)."""
    if text.isascii():  # line breaks make text unprintable: remove only what is invisible
        return text if text.isprintable() else _ASCII_INVISIBLE.sub("", text)
    return _patterns()[0].sub("", text)


_CONFUSABLE_CHARS = re.compile("[" + "".join(chr(c) for c in CONFUSABLES) + "]")


def map_confusables(text: str, *, mixed_script_only: bool = False) -> str:
    """Replace Cyrillic/Greek look-alikes with Latin letters.

    With ``mixed_script_only`` only words that also contain a Latin letter are changed, so genuine
    Greek symbols in medical text ("α-thalassaemia" stays) survive for entity extraction.
    """
    if text.isascii() or not _CONFUSABLE_CHARS.search(text):
        return text
    if not mixed_script_only:
        return text.translate(CONFUSABLES)
    return _WORDLIKE.sub(
        lambda m: m.group().translate(CONFUSABLES) if _LATIN.search(m.group()) else m.group(),
        text,
    )


def clean_text(text: str) -> str:
    """NFKC, invisible characters removed, look-alike letters in mixed-script words mapped to Latin.

    Case and accents are kept, so entity extraction (case-sensitive abbreviations) still works.
    """
    if text.isascii():
        return text if text.isprintable() else strip_invisible(text)
    invisible = _patterns()[0]
    text = unicodedata.normalize("NFKC", invisible.sub("", text))
    return map_confusables(invisible.sub("", text), mixed_script_only=True)


def fold_text(text: str) -> str:
    """The comparison key of ``text``: :func:`clean_text`, every look-alike mapped, combining marks
    dropped, case-folded. Two strings that render alike fold alike."""
    if text.isascii():
        return (text if text.isprintable() else strip_invisible(text)).lower()
    drop = _patterns()[1]
    text = drop.sub("", unicodedata.normalize("NFKD", drop.sub("", text)))
    text = unicodedata.normalize("NFKC", text)
    if _CONFUSABLE_CHARS.search(text):
        text = text.translate(CONFUSABLES)
    return drop.sub("", text).casefold()


def normalise_entity(text: str) -> str:
    """Lower-case, collapse white space and trim punctuation at both ends."""
    return _EDGE_PUNCT.sub("", _SPACE.sub(" ", text.strip().lower()))


def is_abbreviation(term: str) -> bool:
    """Short case-sensitive forms such as "AF", "ALL", "HbA1c": matched on exact spelling."""
    letters = [c for c in term if c.isalpha()]
    return len(term) <= 8 and any(c.isupper() for c in letters[1:] or letters) and " " not in term
