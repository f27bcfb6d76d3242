"""The HTML viewer: payload and escaping in Python, then the page in headless Chromium."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest

from medr3_env.baseline import ScriptedPolicy
from medr3_env.episodes import run_episode
from medr3_env.trajectory import TrajectoryRecord
from medr3_env.viewer import build_payload, embed_json, render_html, render_string

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCRIPT = "<script>window.__pwned=1</script>"
IMG = '<img src=x onerror="window.__pwned=2">'
DOCS_SCREENSHOT = Path(__file__).resolve().parents[1] / "docs" / "assets" / "viewer.png"


def _hostile(record: TrajectoryRecord) -> TrajectoryRecord:
    """A copy of a search → read → answer record whose texts try to inject markup."""
    search, read, answer = record.turns
    read = read.model_copy(
        update={
            "observation": read.observation.replace(
                "\n</information>",
                f"\nhostile-marker {SCRIPT} {IMG} <!-- </script>\n</information>",
            )
        }
    )
    answer = answer.model_copy(
        update={"action_text": f"<think>{IMG}</think><answer>{SCRIPT}</answer>"}
    )
    item = record.item.model_copy(update={"id": f"hostile-{SCRIPT}"})
    return record.model_copy(
        update={"item": item, "turns": [search, read, answer], "final_answer": SCRIPT}
    )


@pytest.fixture(scope="module")
def records(starter_searcher) -> list[TrajectoryRecord]:
    """Baseline episodes in two stages plus one hostile record (last)."""
    from medr3_env import MedR3Env

    joint = MedR3Env(searcher=starter_searcher, split="test")
    reasoning = MedR3Env(searcher=starter_searcher, split="test", stage="reasoning")
    policy = ScriptedPolicy(joint.config.entity_extractor)
    out = [run_episode(joint, policy, item_id=i.id, seed=0) for i in joint.questions[:10]]
    out += [run_episode(reasoning, policy, item_id=i.id, seed=0) for i in joint.questions[10:14]]
    return [*out, _hostile(out[0])]


# ------------------------------------------------------------------ Python side
def test_embedded_json_cannot_close_the_script_element():
    text = embed_json({"doc": "a</script><script>x()</script> <!-- b </SCRIPT"})
    assert "</" not in text and "<!--" not in text
    assert json.loads(text)["doc"] == "a</script><script>x()</script> <!-- b </SCRIPT"


def test_page_is_self_contained_and_data_round_trips(records):
    page = render_string(records, title="<b>run</b>")
    assert "<title>&lt;b&gt;run&lt;/b&gt;</title>" in page
    assert not re.search(r"<(link|iframe|object|embed)\b|\bsrc=\"http", page)
    # Only the JSON block and the viewer script end in the page; hostile ones stay escaped data.
    assert page.lower().count("</script") == 2 and "<!--" not in page
    block = re.search(r'id="medr3-data">(.*?)</script>', page, re.S)
    assert block is not None
    data = json.loads(block.group(1))
    assert [e["id"] for e in data["episodes"]][-1] == f"hostile-{SCRIPT}"
    assert data["terms"] == ["answer", "format", "retrieval", "evidence"]
    hostile = data["episodes"][-1]
    assert hostile["final"] == SCRIPT and IMG in data["strings"][hostile["turns"][2]["a"]]


def test_highlights_are_entities_the_evidence_term_matched(records):
    data = build_payload(records)
    first = data["episodes"][0]
    assert first["ent"], "the baseline's reasoning names entities of the read document"
    names = {data["entities"][i] for i in first["ent"]}
    read_turn = first["turns"][1]
    spans = data["spans"][str(read_turn["o"])]
    text = data["strings"][read_turn["o"]]
    marked = {data["entities"][spans[i + 2]] for i in range(0, len(spans), 3)}
    assert names & marked  # matched entities are located in the document text
    assert all(0 <= spans[i] < spans[i + 1] <= len(text) for i in range(0, len(spans), 3))
    reasoning_stage = data["episodes"][10]
    assert reasoning_stage["stage"] == "reasoning" and reasoning_stage["ent"] == []
    assert build_payload(records, highlight_entities=False)["spans"] == {}


def _marked(data, index):
    spans = data["spans"].get(str(index), [])
    text = data["strings"][index]
    return [
        (text[spans[i] : spans[i + 1]], data["entities"][spans[i + 2]])
        for i in range(0, len(spans), 3)
    ]


def test_highlights_come_from_the_record_not_from_the_observation_text(records):
    record = records[0]
    search, read, answer = record.turns
    assert record.evidence_doc_ids == [read.argument] and record.evidence_entities
    kept = sorted(record.evidence_entities)[:1]
    # A changed observation still has the recorded entities marked wherever they now stand, and
    # only the recorded ones: nothing is matched again from the text.
    moved = read.model_copy(
        update={"observation": f"Moved text first. {kept[0]} appears here.\n{read.observation}"}
    )
    edited = record.model_copy(update={"turns": [search, moved, answer], "evidence_entities": kept})
    data = build_payload([edited])
    episode = data["episodes"][0]
    assert [data["entities"][i] for i in episode["ent"]] == kept
    marks = _marked(data, episode["turns"][1]["o"])
    assert marks and {entity for _, entity in marks} == set(kept)
    assert data["strings"][episode["turns"][1]["o"]].index(marks[0][0]) == len("Moved text first. ")
    # Turn text of valid turns and the evidence documents are marked; search results are not.
    assert [t["m"] for t in episode["turns"]] == [1, 3, 1]
    assert [t["doc"] for t in episode["turns"]] == [None, read.argument, None]
    assert _marked(data, episode["turns"][0]["o"]) == []
    # Without recorded entities nothing is highlighted, whatever the texts say.
    bare = build_payload([record.model_copy(update={"evidence_entities": None})])
    assert bare["episodes"][0]["ent"] == [] and bare["spans"] == {}


def test_a_read_document_the_evidence_term_did_not_use_is_not_highlighted(records):
    record = records[0]
    unused = record.model_copy(update={"evidence_doc_ids": ["some-other-document"]})
    older = record.model_copy(update={"evidence_doc_ids": None})  # schema 2: no document ids
    for variant in (unused, older):
        episode = build_payload([variant])["episodes"][0]
        assert episode["ent"] and [t["m"] for t in episode["turns"]] == [1, 1, 1]
    invalid = record.turns[0].model_copy(update={"action": "invalid", "error": "not_allowed"})
    episode = build_payload([record.model_copy(update={"turns": [invalid, *record.turns[1:]]})])
    assert [t["m"] for t in episode["episodes"][0]["turns"]] == [0, 3, 1]


# ------------------------------------------------------------------ in the browser
@pytest.fixture(scope="module")
def browser():
    playwright_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed (pip install playwright)"
    )
    if not CHROMIUM.exists():
        pytest.skip(f"Debian's chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    with playwright_api.sync_playwright() as p:
        instance = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield instance
        instance.close()


class _Page:
    """A page that records console errors and uncaught exceptions."""

    def __init__(self, browser, path: Path) -> None:
        self.errors: list[str] = []
        self.page = browser.new_page(viewport={"width": 1400, "height": 1000})
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
        self.page.goto(path.as_uri())
        self.page.wait_for_selector("body[data-ready=true]")

    def rows(self) -> int:
        return self.page.locator("tr.episode-row").count()

    def set_filter(self, selector: str, value: str) -> None:
        if selector.startswith("#f-text") or selector in ("#f-min", "#f-max"):
            self.page.fill(selector, value)
            self.page.wait_for_timeout(250)  # the text inputs are debounced
        else:
            self.page.select_option(selector, value)


@pytest.fixture(scope="module")
def report(records, tmp_path_factory) -> Path:
    return render_html(records, tmp_path_factory.mktemp("viewer") / "report.html")


def test_filters_change_the_visible_episodes(browser, records, report):
    view = _Page(browser, report)
    total = len(records)
    assert view.rows() == total
    assert view.page.text_content("#count") == f"{total} of {total} episodes"
    view.set_filter("#f-outcome", "correct")
    assert view.rows() == sum(r.correct for r in records) < total
    view.set_filter("#f-outcome", "wrong")
    assert view.rows() == sum(not r.correct for r in records) > 0
    view.set_filter("#f-outcome", "all")
    view.set_filter("#f-stage", "reasoning")
    assert view.rows() == 4
    view.set_filter("#f-stage", "all")
    threshold = sorted(r.reward_total for r in records)[total // 2]
    view.set_filter("#f-min", str(threshold))
    assert view.rows() == sum(r.reward_total >= threshold for r in records)
    view.page.click("#f-reset")
    view.set_filter("#f-text", "hostile-marker")
    assert view.rows() == 0  # the marker is in a document, not in the searchable turn text
    view.set_filter("#f-text", "hostile-")
    assert view.rows() == 1
    view.set_filter("#f-text", "no such words anywhere")
    assert view.rows() == 0 and view.page.is_visible("#empty")
    assert view.errors == []


def test_expanding_an_episode_shows_documents_and_highlights(browser, records, report, tmp_path):
    view = _Page(browser, report)
    first = view.page.locator("tr.episode-row").first
    first.click()
    detail = view.page.locator("tr.episode-detail")
    assert detail.count() == 1
    documents = detail.locator("details.docs")
    assert documents.count() == 2  # search results and the read document, both collapsed
    assert not documents.nth(1).locator("pre").is_visible()
    read_id = records[0].turns[1].argument
    assert documents.nth(1).locator("summary").inner_text() == f"document {read_id}"
    documents.nth(1).locator("summary").click()
    body = documents.nth(1).locator("pre")
    assert body.is_visible() and f"Document {read_id}" in body.inner_text()
    assert body.locator("mark.ent").count() > 0
    assert detail.locator("svg.reward-chart rect").count() == 4
    view.page.screenshot(path=str(tmp_path / "viewer.png"))
    assert (tmp_path / "viewer.png").stat().st_size > 10_000
    # The docs' screenshot is refreshed on request only, so test runs never dirty the checkout.
    if os.environ.get("MEDR3_UPDATE_SCREENSHOTS") == "1":
        DOCS_SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(tmp_path / "viewer.png", DOCS_SCREENSHOT)
    first.click()
    assert view.page.locator("tr.episode-detail").count() == 0
    assert view.errors == []


def test_hostile_text_is_shown_as_text_and_never_runs(browser, records, report, tmp_path):
    view = _Page(browser, report)
    view.set_filter("#f-text", "hostile-")
    view.page.locator("tr.episode-row").first.click()
    for summary in view.page.locator("details.docs summary").all():
        summary.click()
    text = view.page.inner_text("tr.episode-detail")
    assert SCRIPT in text and IMG in text and "<!-- </script>" in text
    assert SCRIPT in view.page.inner_text("tr.episode-row")
    assert view.page.evaluate("typeof window.__pwned") == "undefined"
    assert view.page.evaluate("document.querySelectorAll('img').length") == 0
    assert view.page.evaluate("document.scripts.length") == 2
    view.page.screenshot(path=str(tmp_path / "hostile.png"))
    assert (tmp_path / "hostile.png").stat().st_size > 0
    assert view.errors == []


@pytest.mark.slow
def test_ten_thousand_episodes_render_one_page(browser, records, tmp_path):
    base = records[:-1]
    many = [
        base[i % len(base)].model_copy(
            update={"reward_total": base[i % len(base)].reward_total - (i % 10) / 10}
        )
        for i in range(10_000)
    ]
    path = render_html(many, tmp_path / "big.html")
    view = _Page(browser, path)
    assert view.page.text_content("#count") == "10000 of 10000 episodes"
    assert view.rows() == 50  # only the first page is in the DOM
    first_ids = view.page.locator("tr.episode-row td:first-child").all_inner_texts()
    assert first_ids == [str(n) for n in range(1, 51)]
    view.page.click("#next")
    assert view.page.locator("tr.episode-row td:first-child").first.inner_text() == "51"
    view.set_filter("#f-outcome", "wrong")
    wrong = sum(not r.correct for r in many)
    assert view.page.text_content("#count") == f"{wrong} of 10000 episodes"
    assert view.rows() == min(50, wrong)
    assert view.errors == []
