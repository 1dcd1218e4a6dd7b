"""`odqa mcp` and odqa.integrations.mcp against the real MCP SDK: its own client, in memory, over stdio
(spawning `python -m odqa mcp`) and over streamable HTTP on a free loopback port."""

import os
import socket
import subprocess
import sys
import time

import anyio
import pytest

pytest.importorskip("mcp.server.mcpserver", reason="the mcp extra: pip install -e '.[dev]'")

from mcp.client import Client  # noqa: E402
from mcp.client.stdio import StdioServerParameters  # noqa: E402

import odqa  # noqa: E402
from odqa.integrations.catalog import Catalog  # noqa: E402
from odqa.integrations.mcp import make_server  # noqa: E402

QUESTION = "한라산의 높이는 몇 미터인가?"


def call(server, *calls):
    """[(tool name, arguments)] called over one client connection: the CallToolResults, and the tools listed."""
    async def run():
        async with Client(server) as c:
            tools = (await c.list_tools()).tools
            return [await c.call_tool(name, args) for name, args in calls], tools
    return anyio.run(run)


@pytest.fixture(scope="module")
def catalog(demo_index_root):
    return Catalog(odqa.PipelineConfig.from_flat(mode="sparse"), ["demo"], demo_index_root)


@pytest.fixture(scope="module")
def server(catalog):
    return make_server(catalog)


def _env():
    return {"ODQA_QUIET": "1", **({"PYTHONPATH": os.environ["PYTHONPATH"]} if "PYTHONPATH" in os.environ else {})}


def test_a_client_lists_the_typed_tools_and_gets_the_answer_of_odqa_ask(server, catalog):
    (ask, search, indexes), tools = call(server, ("ask", {"question": QUESTION}),
                                         ("search", {"query": QUESTION, "k": 2}), ("list_indexes", {}))
    assert sorted(t.name for t in tools) == ["ask", "list_indexes", "search"]
    schema = {t.name: t for t in tools}
    assert schema["ask"].input_schema["required"] == ["question"] and "evidence" in schema["ask"].output_schema["properties"]
    assert schema["search"].input_schema["properties"]["k"]["minimum"] == 1
    expected = catalog.pipeline("demo").ask(QUESTION).answer            # what odqa.Pipeline.ask answers
    a = ask.structured_content
    assert not ask.is_error and a["answer"] == expected.text == "1,947 m"
    assert (a["evidence"]["id"], a["start"], a["end"]) == (expected.passage_id, expected.start, expected.end)
    assert a["probability"] == pytest.approx(expected.probability, abs=1e-6) and a["index"] == "demo"
    s = search.structured_content
    assert [p["id"] for p in s["passages"]][:1] == ["demo-001"] and len(s["passages"]) == 2 and s["mode"] == "sparse"
    assert indexes.structured_content == {"indexes": ["demo"], "default": "demo"}


def test_errors_are_tool_errors_naming_the_argument(server):
    (unknown, empty, bad_k), _ = call(server, ("search", {"query": QUESTION, "index": "nope"}),
                                      ("ask", {"question": "  "}), ("search", {"query": QUESTION, "k": 0}))
    assert unknown.is_error and "`index` 'nope' is not served here (served: demo)" in unknown.content[0].text
    assert empty.is_error and "question" in empty.content[0].text.lower()
    assert bad_k.is_error and "k" in bad_k.content[0].text


def test_the_stdio_server_answers_a_client_that_spawns_it(demo_index_root, server):
    params = StdioServerParameters(command=sys.executable, env=_env(), args=[
        "-m", "odqa", "mcp", "--index", "demo", "--index-dir", str(demo_index_root), "--mode", "sparse"])
    (ask,), tools = call(params, ("ask", {"question": QUESTION}))
    (local,), _ = call(server, ("ask", {"question": QUESTION}))
    assert sorted(t.name for t in tools) == ["ask", "list_indexes", "search"]
    assert ask.structured_content == local.structured_content


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_http_server_listens_on_loopback_and_answers(demo_index_root):
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "odqa", "mcp", "--transport", "http", "--port", str(port),
                             "--index", "demo", "--index-dir", str(demo_index_root), "--mode", "sparse"],
                            env={**os.environ, **_env()}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert proc.poll() is None, proc.stderr.read().decode()
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.3)
        (search, indexes), _ = call(f"http://127.0.0.1:{port}/mcp", ("search", {"query": QUESTION, "k": 1}),
                                    ("list_indexes", {}))
        assert search.structured_content["passages"][0]["id"] == "demo-001"
        assert indexes.structured_content["default"] == "demo"
        psutil = pytest.importorskip("psutil")
        listening = [c.laddr.ip for c in psutil.net_connections("tcp") if c.laddr and c.laddr.port == port
                     and c.status == psutil.CONN_LISTEN]
        assert listening == ["127.0.0.1"]
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_cli_refuses_a_bad_transport_and_an_unknown_index(cli, demo_index_root):
    code, _, err = cli("mcp", "--transport", "sse", "--index-dir", demo_index_root)
    assert code == 2 and err == "odqa: error: --transport must be one of stdio, http, got 'sse'"
    code, _, err = cli("mcp", "--index", "nope", "--index-dir", demo_index_root)
    assert code == 4 and "nope" in err and len(err.splitlines()) == 1


def test_search_keeps_the_servers_mode_unless_asked_for_another(serve_index_root):
    server = make_server(Catalog(odqa.PipelineConfig.from_flat(mode="sparse", reader="none"), ["h"], serve_index_root))
    (own, hybrid), _ = call(server, ("search", {"query": "백록담이 있는 산은?"}),
                            ("search", {"query": "백록담이 있는 산은?", "mode": "hybrid"}))
    assert own.structured_content["mode"] == "sparse" and hybrid.structured_content["mode"] == "hybrid"
    assert {p["retriever"] for p in hybrid.structured_content["passages"]} == {"hybrid"}


def test_filters_limit_search_and_ask(meta_index_root):
    server = make_server(Catalog(odqa.PipelineConfig.from_flat(reader="none"), ["m"], meta_index_root))
    (news, bad), tools = call(server, ("search", {"query": "한라산 거북선 김치", "k": 6, "filters": ["source=news"]}),
                              ("search", {"query": "한라산", "filters": ["source=="]}))
    passages = news.structured_content["passages"]
    assert passages and {p["metadata"]["source"] for p in passages} == {"news"}
    assert bad.is_error and "filter" in bad.content[0].text.lower()
    assert "filters" in {t.name: t for t in tools}["ask"].input_schema["properties"]


def test_cli_passes_the_pipeline_settings_and_the_transport(cli, monkeypatch, tmp_path):
    got = []
    monkeypatch.setattr("odqa.integrations.mcp.serve", lambda *a: got.append(a))
    code, _, err = cli("mcp", "--index", "a", "--index", "b", "--transport", "http", "--port", "9001", "-k", "4",
                       "--mode", "sparse", "--min-probability", "0.3", "--index-dir", tmp_path)
    assert code == 0, err
    catalog, transport, port = got[0]
    assert (transport, port, catalog.names(), catalog.default(), catalog.index_dir) == ("http", 9001, ["a", "b"], "a", tmp_path)
    flat = catalog.config.flat()
    assert (flat["k"], flat["mode"], flat["min_probability"]) == (4, "sparse", 0.3)

