"""`odqa serve`'s app (odqa.server.app.create_app) through FastAPI's TestClient, on a fake pipeline."""

import asyncio
import logging
import threading

import httpx
import pytest
from fastapi.testclient import TestClient

from odqa.api.config import DEFAULT_K
from odqa.server.app import create_app
from odqa.server.settings import ServeConfig
from tests.serving import PASSAGE, FakePipeline


def client(pipe=None, **settings) -> TestClient:
    config = ServeConfig(indexes=["demo"], **settings)
    return TestClient(create_app({"demo": pipe or FakePipeline()}, config))


def ask(c, **body):
    return c.post("/v1/ask", json={"question": "한라산의 높이는?", **body})


def test_ask_answers_with_offsets_alternatives_passages_and_timings():
    with client() as c:
        r = ask(c, top=2)
        assert r.status_code == 200, r.text
        j = r.json()
    best = j["answers"][0]
    assert best["text"] == "1,947미터" and PASSAGE.text[best["start"]:best["end"]] == best["text"]
    assert best["probability"] == 0.9 and best["title"] == "한라산" and len(j["answers"]) == 2
    assert j["passages"] == [{"rank": 1, "id": "p1", "title": "한라산", "doc_id": "", "text": PASSAGE.text,
                              "score": 3.5, "source": "sparse"}]
    assert set(j["timings"]) == {"queue", "retrieve", "read", "total"} and j["timings"]["total"] > 0
    assert j["index"] == "demo" and j["mode"] == "sparse" and j["reader"] == "fake" and j["batch_size"] == 1


def test_retrieve_indexes_page_and_docs():
    with client() as c:
        r = c.post("/v1/retrieve", json={"question": "한라산", "k": 1}).json()
        assert r["passages"][0]["id"] == "p1" and r["mode"] == "sparse" and "retrieve" in r["timings"]
        assert c.get("/v1/indexes").json() == {"default": "demo", "indexes": [
            {"name": "demo", "mode": "sparse", "modes": ["sparse"], "passages": 1, "reader": "fake"}]}
        page = c.get("/")
        assert page.status_code == 200 and "text/html" in page.headers["content-type"] and "/static/app.js" in page.text
        assert c.get("/static/app.js").status_code == 200
        docs = c.get("/docs").text
        assert "/docs-assets/swagger-ui-bundle.js" in docs and "cdn" not in docs.lower()
        assert c.get("/docs-assets/swagger-ui-bundle.js").status_code == 200
        assert "/v1/ask" in c.get("/openapi.json").json()["paths"]


BAD = [
    ({"question": ""}, 422, "the question is empty"),
    ({"question": "   \t "}, 422, "the question is empty"),
    ({"question": "가" * 1001}, 422, "question: string should have at most 1000 characters"),
    ({"question": "질문", "index": "nope"}, 404, "no index 'nope' is served here"),
    ({"question": "질문", "index": "../demo"}, 422, "index:"),
    ({"question": "질문", "index": "a/b"}, 422, "index:"),
    ({"question": "질문", "k": 0}, 422, "k:"),
    ({"question": "질문", "k": 101}, 422, "k: input should be less than or equal to 100"),
    ({"question": "질문", "top": 0}, 422, "top:"),
    ({"question": "질문", "top": 21}, 422, "top: input should be less than or equal to 20"),
    ({"question": "질문", "mode": "fuzzy"}, 422, "mode:"),
    ({"question": "질문", "mode": "dense"}, 422, "has no dense part"),
    ({"question": "질문", "rerank": True}, 422, "rerank: unknown field"),
    ({}, 422, "question: field required"),
]


@pytest.mark.parametrize("body,status,words", BAD, ids=[f"{s}-{w}" for _, s, w in BAD])
def test_bad_input_gets_a_plain_error_and_the_server_keeps_answering(body, status, words):
    with client() as c:
        r = c.post("/v1/ask", json=body)
        assert r.status_code == status and r.json() == {"error": r.json()["error"], "status": status}
        assert words in r.json()["error"], r.json()
        assert ask(c).status_code == 200


def test_a_body_over_the_limit_or_not_json_is_refused():
    with client(max_body_bytes=1024) as c:
        r = c.post("/v1/ask", content=b'{"question": "' + b"a" * 2000 + b'"}', headers={"content-type": "application/json"})
        assert r.status_code == 413 and "over 1024 bytes" in r.json()["error"]
        r = c.post("/v1/ask", content=b"{not json", headers={"content-type": "application/json"})
        assert r.status_code == 422 and r.json()["error"] == "the body is not valid JSON"
        assert c.get("/v1/nothing").status_code == 404
        assert ask(c).status_code == 200


def test_a_bug_answers_500_without_traceback_and_is_logged(caplog):
    pipe = FakePipeline(fail=ZeroDivisionError("boom"))
    with client(pipe) as c, caplog.at_level(logging.ERROR, "odqa.server"):
        r = ask(c)
        assert r.status_code == 500 and "Traceback" not in r.text and "boom" not in r.text
        assert r.json()["error"].startswith("internal error")
        pipe.fail = None
        assert ask(c).status_code == 200
    assert any(rec.exc_info and "ZeroDivisionError" in str(rec.exc_info[0]) for rec in caplog.records)


def test_a_slow_request_times_out_with_504_and_the_server_keeps_answering():
    pipe = FakePipeline(delay=0.6)
    with client(pipe, timeout_s=0.2) as c:
        r = ask(c)
        assert r.status_code == 504 and "no answer within 0.2 s" in r.json()["error"]
        pipe.delay = 0
        assert ask(c).status_code == 200


@pytest.mark.parametrize("headers,status", [
    ({"Authorization": "Bearer s3cret"}, 200), ({"X-API-Key": "s3cret"}, 200),
    ({"Authorization": "Bearer wrong"}, 401), ({"X-API-Key": "wrong"}, 401), ({}, 401)])
def test_api_key_is_checked_on_every_data_request(headers, status):
    with client(api_key="s3cret") as c:
        for r in (c.post("/v1/ask", json={"question": "질문"}, headers=headers), c.get("/v1/health", headers=headers),
                  c.get("/metrics", headers=headers)):
            assert r.status_code == status, r.text
        if status == 401:
            assert ("wrong API key" if headers else "needs an API key") in r.json()["error"]
        assert c.get("/").status_code == 200          # the page holds no data: it asks for the key


def test_cors_is_off_unless_an_origin_is_configured():
    origin = {"Origin": "http://example.test"}
    with client() as c:
        assert "access-control-allow-origin" not in ask(c, ).headers
        assert "access-control-allow-origin" not in c.get("/v1/health", headers=origin).headers
    with client(cors_origins=["http://example.test"]) as c:
        assert c.get("/v1/health", headers=origin).headers["access-control-allow-origin"] == "http://example.test"


def test_health_is_loading_until_the_pipelines_are_loaded():
    release = threading.Event()

    def load():
        release.wait(10)
        return {"demo": FakePipeline()}
    with TestClient(create_app(load, ServeConfig(indexes=["demo"]))) as c:
        h = c.get("/v1/health")
        assert h.status_code == 503 and h.json()["status"] == "loading"
        r = ask(c)
        assert r.status_code == 503 and "still loading" in r.json()["error"]
        release.set()
        for _ in range(100):
            if c.get("/v1/health").status_code == 200:
                break
            threading.Event().wait(0.05)
        h = c.get("/v1/health").json()
        assert h["status"] == "ready" and h["indexes"] == ["demo"] and h["load_seconds"] >= 0
        assert ask(c).status_code == 200


def test_a_failed_load_is_reported_by_health():
    def load():
        raise RuntimeError("index 'demo' is corrupt")
    with TestClient(create_app(load, ServeConfig(indexes=["demo"]))) as c:
        for _ in range(100):
            if c.get("/v1/health").json()["status"] != "loading":
                break
            threading.Event().wait(0.05)
        h = c.get("/v1/health")
        assert h.status_code == 503 and h.json()["status"] == "failed" and "corrupt" in h.json()["error"]
        assert "could not load" in ask(c).json()["error"]


def test_metrics_count_requests_errors_latency_and_batch_sizes():
    with client() as c:
        ask(c)
        ask(c, k=0)
        text = c.get("/metrics").text
    assert 'odqa_requests_total{endpoint="/v1/ask",method="POST",status="200"} 1.0' in text
    assert 'odqa_errors_total{endpoint="/v1/ask",kind="invalid"} 1.0' in text
    assert 'odqa_request_seconds_count{endpoint="/v1/ask"} 2.0' in text
    assert "odqa_batch_size_count 1.0" in text
    assert all(f'odqa_stage_seconds_count{{stage="{s}"}} 1.0' in text for s in ("retrieve_batch", "read_batch"))


async def _concurrently(app, bodies):
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        return await asyncio.gather(*(c.post("/v1/ask", json=b) for b in bodies))


def _app(pipe, **settings):
    return create_app({"demo": pipe}, ServeConfig(indexes=["demo"], **settings))


def test_concurrent_requests_are_answered_in_one_batch():
    pipe = FakePipeline()
    bodies = [{"question": f"질문 {i}"} for i in range(6)]
    rs = asyncio.run(_concurrently(_app(pipe, max_batch_size=6, max_wait_ms=5000), bodies))
    assert [r.status_code for r in rs] == [200] * 6
    assert pipe.calls == [([f"질문 {i}" for i in range(6)], DEFAULT_K)]
    assert [r.json()["question"] for r in rs] == [b["question"] for b in bodies]
    assert {r.json()["batch_size"] for r in rs} == {6}


def test_batches_are_cut_at_max_size_and_after_max_wait():
    pipe = FakePipeline()
    rs = asyncio.run(_concurrently(_app(pipe, max_batch_size=2, max_wait_ms=50), [{"question": f"q{i}"} for i in range(5)]))
    assert all(r.status_code == 200 for r in rs)
    assert sorted(len(qs) for qs, _ in pipe.calls) == [1, 2, 2]


def test_while_the_workers_are_busy_a_due_batch_keeps_gathering():
    pipe = FakePipeline(delay=0.4)

    async def staggered(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            first = asyncio.create_task(c.post("/v1/ask", json={"question": "q0"}))
            later = []
            for i in range(1, 5):                # arriving 50 ms apart, each past max_wait
                await asyncio.sleep(0.05)
                later.append(asyncio.create_task(c.post("/v1/ask", json={"question": f"q{i}"})))
            return await asyncio.gather(first, *later)
    rs = asyncio.run(staggered(_app(pipe, workers=1, max_wait_ms=10)))
    assert all(r.status_code == 200 for r in rs)
    # q1..q4 are retrieved as they come and wait while q0 is read, their reading batch gathering meanwhile (with
    # the workers of the served app, one thread, their retrieval may wait too and be read in two batches)
    assert pipe.reads[0] == ["q0"] and len(pipe.reads) <= 3, pipe.reads
    assert [q for batch in pipe.reads for q in batch] == [f"q{i}" for i in range(5)]
    assert [q for qs, _ in pipe.calls for q in qs] == [f"q{i}" for i in range(5)]


def test_reading_batches_hold_windows_not_questions():
    pipe = FakePipeline(windows=5)                       # every question reads 5 windows
    rs = asyncio.run(_concurrently(_app(pipe, max_batch_size=16, max_batch_windows=12, max_wait_ms=300),
                                   [{"question": f"q{i}"} for i in range(7)]))
    assert all(r.status_code == 200 for r in rs)
    assert len(pipe.calls) == 1                          # retrieved in one batch
    assert sorted(len(b) for b in pipe.reads) == [1, 2, 2, 2]     # read 2 at a time: 10 windows, a third would be 15
    assert sorted(r.json()["batch_size"] for r in rs) == [1, 2, 2, 2, 2, 2, 2]
    big = FakePipeline(windows=40)                       # a question over the bound is read alone, not refused
    rs = asyncio.run(_concurrently(_app(big, max_batch_windows=12, max_wait_ms=300), [{"question": "q"}] * 3))
    assert all(r.status_code == 200 for r in rs) and sorted(map(len, big.reads)) == [1, 1, 1]


def test_requests_with_different_parameters_are_not_mixed():
    pipe = FakePipeline()
    bodies = [{"question": f"q{i}", "k": 2 if i % 2 else 5, "top": 1 + i % 2} for i in range(6)]
    rs = asyncio.run(_concurrently(_app(pipe, max_batch_size=3, max_wait_ms=5000), bodies))
    assert sorted(pipe.calls) == [(["q0", "q2", "q4"], 5), (["q1", "q3", "q5"], 2)]
    assert [len(r.json()["answers"]) for r in rs] == [b["top"] for b in bodies]   # top is each request's own


def test_batching_off_answers_each_request_alone():
    pipe = FakePipeline()
    rs = asyncio.run(_concurrently(_app(pipe, batching=False, max_wait_ms=5000), [{"question": f"q{i}"} for i in range(4)]))
    assert all(r.status_code == 200 and r.json()["batch_size"] == 1 for r in rs)
    assert sorted(pipe.calls) == [([f"q{i}"], DEFAULT_K) for i in range(4)]


def test_past_the_queue_bound_requests_are_refused_at_once_with_retry_after():
    pipe = FakePipeline(delay=0.3)
    rs = asyncio.run(_concurrently(_app(pipe, batching=False, workers=1, max_queue=2),
                                   [{"question": f"q{i}"} for i in range(5)]))
    codes = [r.status_code for r in rs]
    assert codes.count(200) == 2 and codes.count(503) == 3, codes
    refused = [r for r in rs if r.status_code == 503]
    assert all(int(r.headers["Retry-After"]) >= 1 and "at capacity" in r.json()["error"] for r in refused)


def test_a_request_that_would_wait_past_its_deadline_is_refused_not_timed_out():
    pipe = FakePipeline(delay=0.25)

    async def burst(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            first = await c.post("/v1/ask", json={"question": "warm"})       # measures the seconds per question
            t0 = asyncio.get_running_loop().time()
            rs = await asyncio.gather(*(c.post("/v1/ask", json={"question": f"q{i}"}) for i in range(12)))
            return first, rs, asyncio.get_running_loop().time() - t0
    first, rs, took = asyncio.run(burst(_app(pipe, batching=False, workers=1, timeout_s=1.0)))
    codes = [r.status_code for r in rs]
    assert first.status_code == 200 and 504 not in codes, codes
    assert 1 <= codes.count(200) <= 5 and codes.count(503) >= 7, codes   # about 1 s of work admitted
    assert took < 2.5                                                    # nobody waited for a timeout
