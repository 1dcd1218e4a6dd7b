"""`odqa serve` for real: the command's refusals, a real pipeline behind the app, SIGTERM on a real process."""

import signal
import threading
import time

import pytest
from fastapi.testclient import TestClient

import odqa
from odqa.server.app import create_app
from odqa.server.run import load_pipelines
from odqa.server.settings import ServeConfig
from tests.serving import ServerProcess, get_json
from tests.test_cli import odqa as run_odqa


@pytest.fixture(scope="module")
def root(serve_index_root):
    return serve_index_root


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.7", "::"])
def test_a_public_address_without_a_key_or_no_auth_refuses_to_start(host, tmp_path, monkeypatch):
    monkeypatch.delenv("ODQA_API_KEY", raising=False)
    p = run_odqa("serve", "--index", "h", "--host", host, cwd=tmp_path, check=False)
    assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert f"refusing to serve on {host} without an API key" in p.stderr and "--no-auth" in p.stderr


def test_an_unknown_index_refuses_to_start(tmp_path, root):
    p = run_odqa("serve", "--index", "nope", "--index-dir", root, cwd=tmp_path, check=False)
    assert p.returncode == 4 and "no index 'nope'" in p.stderr and "have: h" in p.stderr


def test_settings_refused_before_start(tmp_path):
    with pytest.raises(odqa.ConfigError, match="must not exceed"):
        ServeConfig(indexes=["h"], k=50, max_k=10)
    ServeConfig(indexes=["h"], host="0.0.0.0", api_key="k").check_bind()
    ServeConfig(indexes=["h"], host="0.0.0.0", no_auth=True).check_bind()
    ServeConfig(indexes=["h"], host="localhost").check_bind()


def test_a_real_pipeline_answers_in_every_mode_of_its_index(root):
    config = ServeConfig(indexes=["h"], reader=["none"], index_dir=root)
    with TestClient(create_app(load_pipelines(config), config)) as c:
        j = c.post("/v1/ask", json={"question": "백록담이 있는 산은 어디인가?", "k": 3, "mode": "sparse"}).json()
        best, by_id = j["answers"][0], {p["id"]: p for p in j["passages"]}
        assert j["sentence_level"] and j["mode"] == "sparse" and {p["source"] for p in j["passages"]} == {"sparse"}
        assert by_id[best["passage_id"]]["text"][best["start"]:best["end"]] == best["text"]
        assert j["passages"][0]["id"] == "p1"
        dense = c.post("/v1/retrieve", json={"question": "거북선", "k": 2, "mode": "dense"}).json()
        assert dense["mode"] == "dense" and {p["source"] for p in dense["passages"]} == {"dense"}
        assert c.post("/v1/ask", json={"question": "거북선"}).json()["mode"] == "hybrid"      # auto on a dense index
        assert c.get("/v1/indexes").json()["indexes"][0]["modes"] == ["sparse", "dense", "hybrid"]


def test_sigterm_lets_the_in_flight_request_finish_then_exits_0(root, tmp_path):
    with ServerProcess("--index", "h", "--index-dir", root, "--reader", "none", "--max-wait-ms", "2000",
                       cwd=tmp_path) as srv:
        srv.wait_ready()
        got = {}
        t = threading.Thread(target=lambda: got.update(r=get_json(srv.url + "/v1/ask", {"question": "거북선"})))
        t.start()
        time.sleep(0.7)                    # the request now waits in its batch (2 s)
        srv.proc.send_signal(signal.SIGTERM)
        t.join(30)
        assert got["r"][0] == 200 and got["r"][1]["answers"], got
        assert srv.proc.wait(30) == 0, srv.output()
        assert "Waiting for" in srv.output() or "Shutting down" in srv.output()
