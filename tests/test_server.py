"""The retrieval server on a real loopback port: the Search-R1 protocol, bounds and 4xx errors,
the remote backend (parity with the local index, retries, a server that is down), episodes and a
vector env through it, and the ``medr3 serve`` command."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import gymnasium as gym
import pytest

from medr3_env.baseline import ScriptedPolicy
from medr3_env.config import EnvConfig
from medr3_env.corpora import Corpus, Document
from medr3_env.corpora.starter import load_starter_questions
from medr3_env.episodes import run_episode
from medr3_env.search import Searcher, build_searcher
from medr3_env.search.remote_backend import (
    RemoteSearcher,
    SearchServerError,
    SearchServerUnavailable,
)

httpx = pytest.importorskip("httpx")
uvicorn = pytest.importorskip("uvicorn")
pytest.importorskip("tantivy")

from medr3_env.search.server import ServerLimits, create_app  # noqa: E402
from tests.servers import LiveServer, free_port  # noqa: E402


@pytest.fixture(scope="module")
def local() -> Searcher:
    return build_searcher(backend="tantivy")


LIMITS = ServerLimits(max_body_bytes=64_000, max_queries=8, max_topk=10, default_topk=3)


@pytest.fixture(scope="module")
def server(local) -> Iterator[LiveServer]:
    with LiveServer(create_app(local, LIMITS)) as live:
        yield live


@pytest.fixture()
def client(server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10) as http:
        yield http


@pytest.fixture(scope="module")
def remote(server) -> RemoteSearcher:
    return RemoteSearcher(server.url)


# ---------------------------------------------------------------- the HTTP protocol


def test_health_reports_backend_count_and_fingerprint(client, local):
    body = client.get("/health").json()
    assert body["status"] == "ok" and body["backend"] == "tantivy"
    assert body["doc_count"] == local.manifest.doc_count > 0
    assert body["corpus_fingerprint"] == local.manifest.corpus_fingerprint
    assert body["limits"]["max_queries"] == 8
    assert body["index_fingerprint"] == local.manifest.manifest_sha256
    assert len(body["index_fingerprint"]) == 64
    state = body["server"]
    assert state["pid"] == os.getpid() and state["requests_in_flight"] == 1  # this request
    assert state["rss_bytes"] > 10_000_000 and state["uptime_s"] >= 0


def test_health_counts_requests_and_server_errors(local):
    from fastapi.responses import JSONResponse

    async def boom() -> JSONResponse:
        return JSONResponse({"detail": "overloaded"}, status_code=503)

    app = create_app(local, LIMITS)
    app.add_api_route("/boom", boom)
    with LiveServer(app) as live, httpx.Client(base_url=live.url) as http:
        before = http.get("/health").json()["server"]["requests_served"]
        http.post("/retrieve", json={"queries": ["digoxin"]}).raise_for_status()
        assert http.get("/boom").status_code == 503
        state = http.get("/health").json()["server"]
    assert state["requests_served"] == before + 3 and state["server_errors"] == 1


def test_retrieve_speaks_the_search_r1_protocol(client, local):
    queries = ["digoxin toxicity", "sepsis fluids"]
    response = client.post("/retrieve", json={"queries": queries, "topk": 4, "return_scores": True})
    assert response.status_code == 200
    result = response.json()["result"]
    assert len(result) == 2
    for query, ranked in zip(queries, result, strict=True):
        expected = local.search(query, k=4)
        assert [item["document"]["id"] for item in ranked] == [h.doc_id for h in expected]
        assert [item["score"] for item in ranked] == [h.score for h in expected]
        for item, hit in zip(ranked, expected, strict=True):
            title, _, text = item["document"]["contents"].partition("\n")
            assert title == f'"{hit.title}"' and text == local.get(hit.doc_id).content


def test_retrieve_without_scores_returns_plain_documents_and_default_topk(client):
    result = client.post("/retrieve", json={"queries": ["insulin"]}).json()["result"]
    assert len(result[0]) == LIMITS.default_topk
    assert set(result[0][0]) >= {"id", "contents"} and "score" not in result[0][0]


def test_doc_endpoint_returns_the_stored_document(client, local):
    doc = local.get("card-001")
    assert client.get("/doc/card-001").json() == doc.model_dump(mode="json")
    missing = client.get("/doc/no-such-doc")
    assert missing.status_code == 404 and "no-such-doc" in missing.json()["detail"]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"queries": ["insulin"], "topk": 0}, "topk must be between 1 and 10"),
        ({"queries": ["insulin"], "topk": 11}, "topk must be between 1 and 10"),
        ({"queries": ["q"] * 9}, "at most 8 queries"),
        ({"queries": []}, "at least 1"),
        ({"topk": 3}, "queries"),
        ({"queries": "insulin"}, "list"),
        ({"queries": [1, None]}, "string"),
    ],
)
def test_bad_requests_are_422_with_a_reason(client, body, fragment):
    response = client.post("/retrieve", json=body)
    assert response.status_code == 422
    assert fragment in str(response.json()["detail"])


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"{not json", "malformed JSON body: Expecting property name"),
        (b"", "malformed JSON body: Expecting value"),
        ('{"queries": ["é"]}'.encode("latin-1"), "malformed JSON body: 'utf-8' codec"),
        (b"[" * 50_000, "malformed JSON body: maximum recursion depth"),
        (b'{"queries": ["insulin"], "topk": 1e400}', "finite number"),
        (b"[1]", "valid dictionary"),
    ],
    ids=["syntax", "empty", "not-utf8", "deep-nesting", "infinite-topk", "not-an-object"],
)
def test_malformed_json_is_422_with_a_reason(client, body, fragment):
    """docs/search.md: malformed JSON answers 422 (FastAPI alone answers 400 or 500 for some)."""
    response = client.post("/retrieve", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 422
    assert fragment in str(response.json()["detail"])


def test_oversized_bodies_are_413_declared_or_streamed(client):
    big = {"queries": ["x" * 70_000]}
    assert client.post("/retrieve", json=big).status_code == 413

    def chunks():  # no Content-Length: the body is counted as it arrives
        for _ in range(20):
            yield b" " * 5_000

    response = client.post(
        "/retrieve", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413


def test_hostile_queries_through_the_server_return_the_local_hits(client, local):
    """What the local index answers, for every query: at most topk stored documents each."""
    queries = [
        'content:* AND (x OR "',
        "\x00\x1b[2J",
        "🩺" * 500,
        "a~2 b^3 [a TO z]",
        "",
        "NOT",
        "(((insulin \udc80",
    ]
    body = {"queries": queries, "topk": 5, "return_scores": True}
    raw = json.dumps(body).encode("ascii")  # escaped: httpx cannot encode a lone surrogate
    response = client.post("/retrieve", content=raw, headers={"Content-Type": "application/json"})
    assert response.status_code == 200
    result = response.json()["result"]
    assert len(result) == len(queries)
    for query, answers in zip(queries, result, strict=True):
        expected = local.search(query, k=5)
        assert len(answers) <= 5
        assert [a["document"]["id"] for a in answers] == [h.doc_id for h in expected]
        assert [a["score"] for a in answers] == [h.score for h in expected]
        for answer in answers:
            assert answer["document"]["contents"].endswith(
                local.get(answer["document"]["id"]).content
            )
    assert result[-1], "the plain word among the syntax is still searched"


# ---------------------------------------------------------------- the remote backend


def test_remote_searcher_matches_the_local_index(remote, local):
    assert remote.manifest == local.manifest
    for query in ["warfarin vitamin K reversal", "type 1 diabetes: 10 km (run)", "", "*"]:
        assert remote.search(query, k=5) == local.search(query, k=5)
    queries = [f"{q.question}" for q in load_starter_questions()[:20]] + ["insulin"] * 3
    assert remote.search_many(queries, k=3) == [local.search(q, k=3) for q in queries]
    assert remote.get("card-001") == local.get("card-001")
    assert remote.get("no-such-doc") is None and remote.get("") is None
    assert "card-001" in remote and "nope" not in remote


def test_remote_splits_large_batches_by_the_server_limit(remote, local):
    queries = [f"insulin dose {i}" for i in range(3 * LIMITS.max_queries + 1)]
    assert remote.search_many(queries, k=2) == [local.search(q, k=2) for q in queries]


def test_ids_with_slashes_and_spaces_round_trip(tmp_path):
    ids = ["a/b c", "x?y#z%", "ümlaut"]
    corpus = Corpus.from_documents(
        "odd-ids", [Document(id=i, title=i, content=f"unique{n} text") for n, i in enumerate(ids)]
    )
    searcher = build_searcher(corpus, backend="tantivy", cache_dir=tmp_path)
    with LiveServer(create_app(searcher)) as live:
        remote = RemoteSearcher(live.url)
        for n, doc_id in enumerate(ids):
            assert remote.get(doc_id) == searcher.get(doc_id) is not None
            assert remote.search(f"unique{n}")[0].doc_id == doc_id


def test_server_down_is_a_clear_connection_error(monkeypatch):
    import medr3_env.search.remote_backend as remote_backend

    url = f"http://127.0.0.1:{free_port()}"
    waits: list[float] = []
    monkeypatch.setattr(remote_backend.time, "sleep", waits.append)
    with pytest.raises(ConnectionError, match=f"{url}.*unreachable after 3 attempts"):
        RemoteSearcher(url, retries=2, backoff=0.01)
    assert waits == [0.01, 0.02]  # two retries, the backoff doubling
    monkeypatch.undo()
    with pytest.raises(SearchServerUnavailable, match="medr3 serve"):
        gym.make("MedR3-v0", backend="remote", search_url=url)


def test_5xx_answers_are_retried_with_backoff(local):
    app = create_app(local)
    failures = {"left": 2}

    async def flaky(scope, receive, send):
        if scope["type"] == "http" and scope["path"] == "/retrieve" and failures["left"]:
            failures["left"] -= 1
            await send({"type": "http.response.start", "status": 503, "headers": []})
            await send({"type": "http.response.body", "body": b"busy"})
            return
        await app(scope, receive, send)

    with LiveServer(flaky) as live:
        remote = RemoteSearcher(live.url, retries=3, backoff=0.01, cache_size=0)
        assert remote.search("digoxin", k=2) == local.search("digoxin", k=2)
        assert failures["left"] == 0
        failures["left"] = 5
        with pytest.raises(SearchServerUnavailable, match="HTTP 503"):
            remote.search("insulin", k=2)


def create_app_health() -> dict:
    """A real server's /health answer, so that only the endpoint under test misbehaves."""
    from fastapi.testclient import TestClient

    from medr3_env.search import build_searcher

    return TestClient(create_app(build_searcher())).get("/health").json()


def test_a_server_without_a_manifest_is_a_clear_error():
    async def not_medr3(scope, receive, send):
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b'{"status": "ok"}'})

    with LiveServer(not_medr3) as live, pytest.raises(SearchServerError, match="/health"):
        RemoteSearcher(live.url, retries=0)


@pytest.mark.parametrize(
    "answer", [b'{"result": "nope"}', b'{"result": [[{"doc": 1}]]}', b"{}", b'{"result": []}']
)
def test_malformed_server_answers_are_clear_errors(answer):
    """A server that is not `medr3 serve` (or is broken) gives SearchServerError, not KeyError."""

    health = json.dumps(create_app_health()).encode()

    async def wrong(scope, receive, send):
        if scope["type"] != "http":
            return
        body = health if scope["path"] == "/health" else answer
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    with LiveServer(wrong) as live:
        remote = RemoteSearcher(live.url, retries=0, cache_size=0)
        with pytest.raises(SearchServerError, match="unexpected /retrieve answer"):
            remote.search("digoxin", k=2)
        with pytest.raises(SearchServerError, match="unexpected /doc answer"):
            remote.get("card-001")


def test_rejected_request_is_a_server_error_naming_the_status(server):
    remote = RemoteSearcher(server.url)
    with pytest.raises(SearchServerError, match="422"):
        remote._checked("POST", "/retrieve", {"queries": ["x"], "topk": 99})


# ---------------------------------------------------------------- environments over HTTP


def test_episodes_through_the_server_match_the_local_backend(server, local):
    remote_env = gym.make("MedR3-v0", backend="remote", search_url=server.url, split="test")
    local_env = gym.make("MedR3-v0", split="test")
    local_env.unwrapped.searcher = local
    assert isinstance(remote_env.unwrapped.searcher, RemoteSearcher)
    policy = ScriptedPolicy()
    for item in remote_env.unwrapped.questions.items[:8]:
        over_http = run_episode(remote_env.unwrapped, policy, item_id=item.id, seed=0)
        direct = run_episode(local_env.unwrapped, policy, item_id=item.id, seed=0)
        assert [t.action for t in over_http.turns] == ["search", "read", "answer"]
        assert [t.retrieved for t in over_http.turns] == [t.retrieved for t in direct.turns]
        assert over_http.reward_terms == direct.reward_terms


def test_training_agent_settings_use_the_shared_server(server):
    """MEDR3_SEARCH_URL makes every OpenRLHF agent episode search through the server."""
    from medr3_env.agents.agent_settings import AgentSettings
    from medr3_env.env import MedR3Env

    settings = AgentSettings.from_environ(
        {"MEDR3_STAGE": "retrieval", "MEDR3_SEARCH_URL": server.url}
    )
    config = settings.env_config()
    assert config.backend == "remote" and config.search_url == server.url
    env = MedR3Env(config, split="test")
    _, info = env.reset(seed=0)
    _, _, _, _, info = env.step(f"<search>{info['question']}</search>")
    assert isinstance(env.searcher, RemoteSearcher) and info["retrieved_ids"]


def test_cli_search_queries_a_running_server(server, local):
    from typer.testing import CliRunner

    from medr3_env.cli import app

    result = CliRunner().invoke(app, ["search", "digoxin toxicity", "--url", server.url, "--json"])
    assert result.exit_code == 0, result.output
    ids = [hit["doc_id"] for hit in json.loads(result.stdout)]
    assert ids == [hit.doc_id for hit in local.search("digoxin toxicity", k=5)]


class CountingSearcher(Searcher):
    """Delegates to a real searcher and counts the calls it receives."""

    def __init__(self, inner: Searcher) -> None:
        self.inner, self.manifest = inner, inner.manifest
        self.batches: list[int] = []
        self.singles = 0

    def search(self, query, k=5):
        self.singles += 1
        return self.inner.search(query, k)

    def search_many(self, queries, k=5):
        self.batches.append(len(queries))
        return self.inner.search_many(queries, k)

    def get(self, doc_id):
        return self.inner.get(doc_id)


def test_vector_env_batches_the_searches_of_its_sub_envs(remote, local):
    counting = CountingSearcher(remote)
    envs = gym.make_vec("MedR3-v0", num_envs=4, searcher=counting)
    envs.reset(seed=0)
    queries = ["digoxin toxicity", "sepsis fluids", "<b>not a search</b>", "insulin dose"]
    actions = [f"<search>{q}</search>" if "<" not in q else q for q in queries]
    _, _, _, _, infos = envs.step(actions)
    assert counting.batches == [3] and counting.singles == 0
    for number, query in enumerate(queries):
        expected = [] if "<" in query else [h.doc_id for h in local.search(query, k=5)]
        assert list(infos["retrieved_ids"][number]) == expected
    envs.close()


def test_remote_backend_needs_a_url():
    with pytest.raises(ValueError, match="search_url"):
        EnvConfig(backend="remote")
    with pytest.raises(ValueError, match="only used with backend='remote'"):
        EnvConfig(search_url="http://127.0.0.1:1")
    with pytest.raises(ValueError, match="needs url"):
        build_searcher(backend="remote")
    assert EnvConfig(backend="remote", search_url="http://h:1").search_url == "http://h:1"


# ---------------------------------------------------------------- the command


@pytest.mark.slow
def test_medr3_serve_starts_a_server_that_answers(local):
    port = free_port()
    command = [sys.executable, "-c", "from medr3_env.cli import main; main()", "serve"]
    command += ["--backend", "tantivy", "--port", str(port), "--max-topk", "7"]
    process = subprocess.Popen(
        command, env=dict(os.environ), stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        url, remote = f"http://127.0.0.1:{port}", None
        deadline = time.monotonic() + 60
        while remote is None and time.monotonic() < deadline and process.poll() is None:
            try:
                remote = RemoteSearcher(url, retries=0)
            except ConnectionError:
                time.sleep(0.2)
        assert remote is not None, process.stdout.read().decode() if process.stdout else ""
        assert remote.search("digoxin toxicity") == local.search("digoxin toxicity")
        assert remote.health()["limits"]["max_topk"] == 7
    finally:
        process.terminate()
        process.wait(10)


@pytest.mark.slow
def test_sigterm_lets_in_flight_requests_finish(local):
    """SIGTERM during a request: the request is answered in full, then the server exits 0."""
    port = free_port()
    command = [sys.executable, "-c", "from medr3_env.cli import main; main()", "serve"]
    command += ["--backend", "tantivy", "--port", str(port)]
    env = {**os.environ, "MEDR3_DEBUG_PAUSE": "retrieve:2"}
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None:
            try:
                httpx.get(f"{url}/health", timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        answer: dict = {}

        def ask() -> None:
            reply = httpx.post(
                f"{url}/retrieve", json={"queries": ["digoxin toxicity"]}, timeout=30
            )
            answer["status"], answer["body"] = reply.status_code, reply.json()

        worker = threading.Thread(target=ask)
        worker.start()
        assert process.stderr is not None
        for line in process.stderr:  # the request is inside the search now
            if line.startswith(b"medr3-debug-pause retrieve"):
                break
        process.send_signal(signal.SIGTERM)
        worker.join(30)
        assert answer["status"] == 200
        assert answer["body"]["result"][0][0]["id"] == local.search("digoxin toxicity")[0].doc_id
        assert process.wait(30) == 0
        with pytest.raises(httpx.ConnectError):  # and it no longer accepts connections
            httpx.get(f"{url}/health", timeout=1)
        assert b"server stopped" in process.stdout.read() if process.stdout else False
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def test_medr3_serve_rejects_index_and_corpus_together(tmp_path):
    from typer.testing import CliRunner

    from medr3_env.cli import app

    result = CliRunner().invoke(app, ["serve", "--index", str(tmp_path), "--corpus", "starter"])
    assert result.exit_code == 2 and "not both" in result.output
