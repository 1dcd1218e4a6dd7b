"""`PipelineConfig`: one default per setting, the same in the API, the CLI and the server; files; overrides."""

import pytest
import typer.main

import odqa
from odqa.api import FLAT, Pipeline, PipelineConfig
from odqa.server.settings import ServeConfig

# every setting's default, listed once
DEFAULTS = {"index": None, "index_dir": None, "device": "auto", "mode": "auto", "k": 2, "alpha": None,
            "fusion": None, "encoder": None, "filters": [], "reranker": None, "rerank": 0, "reader": [], "reader_runtime": "torch",
            "retrieval_weight": 2.0, "particles": None, "n_best": 20,
            "min_probability": 0.0}
PIPELINE_COMMANDS = ("ask", "evaluate", "predict", "serve", "mcp")


def _command(name):
    from odqa.cli.main import app
    return typer.main.get_command(app).commands[name]


def _options(name) -> dict:
    """option name -> click parameter, of command NAME."""
    return {opt: p for p in _command(name).params for opt in p.opts}


@pytest.fixture
def captured(monkeypatch):
    """The configs `Pipeline.from_config` is called with (it loads nothing)."""
    seen = []

    def capture(cls, cfg, **kw):
        seen.append(cfg)
        raise odqa.OdqaError("captured")
    monkeypatch.setattr(Pipeline, "from_config", classmethod(capture))
    return seen


def test_the_config_holds_each_default_once():
    assert set(DEFAULTS) == set(FLAT) and PipelineConfig().flat() == DEFAULTS


@pytest.mark.parametrize("command", PIPELINE_COMMANDS)
def test_cli_option_defaults_are_the_configs(command):
    params = {p.name: p for p in _command(command).params}
    for name, default in DEFAULTS.items():
        if name in ("index", "index_dir", "n_best"):       # per command (--index, --index-dir; ask derives n_best)
            continue
        got = params[name].default
        assert (got or [] if name in ("reader", "filters") else got) == default, (command, name)


def test_the_server_and_the_api_use_the_same_defaults(captured):
    assert ServeConfig(indexes=["h"]).pipeline.flat() == DEFAULTS
    for make in (lambda: Pipeline.from_index("h"), lambda: Pipeline.from_reader()):
        with pytest.raises(odqa.OdqaError, match="captured"):
            make()
    assert captured[0].flat() == {**DEFAULTS, "index": "h"} and captured[1].flat() == DEFAULTS


def test_serve_help_shows_every_pipeline_option_ask_has(cli, monkeypatch):
    ask_only = {"--top", "-n", "--verbose", "-v", "--json"}
    ask = {o for o in _options("ask") if o.startswith("-")} - ask_only
    assert ask <= set(_options("serve"))
    monkeypatch.setenv("COLUMNS", "200")
    code, out, _ = cli("serve", "--help")
    assert code == 0 and all(flag in out for flag in ask)
    for flag in ("--device", "--retrieval-weight", "--alpha", "--fusion", "--encoder", "--particles", "--config"):
        assert flag in ask


def test_serve_passes_every_pipeline_setting(cli, monkeypatch, tmp_path):
    got = []
    monkeypatch.setattr("odqa.server.run.serve", got.append)
    code, _, err = cli("serve", "--index", "h", "--retrieval-weight", "0.5", "--alpha", "0.3", "--fusion", "rrf",
                       "--device", "cpu", "-k", "4", "--index-dir", tmp_path)
    assert code == 0, err
    assert got[0].pipeline.flat() == {**DEFAULTS, "retrieval_weight": 0.5, "alpha": 0.3, "fusion": "rrf",
                                      "device": "cpu", "k": 4, "index_dir": tmp_path}


@pytest.mark.parametrize("suffix", ["yaml", "json"])
def test_a_config_round_trips_through_its_file(tmp_path, suffix):
    cfg = PipelineConfig.from_flat(index="demo", index_dir=tmp_path, k=5, reader=["a", tmp_path / "b"],
                                   particles="auto", reranker=tmp_path / "rr", rerank=30, alpha=0.3, fusion="rrf",
                                   device="cpu", retrieval_weight=0.0, reader_runtime="onnx-int8")
    path = cfg.save(tmp_path / f"pipeline.{suffix}")
    assert PipelineConfig.load(path) == cfg and cfg.reader.model == ["a", str(tmp_path / "b")]
    with pytest.raises(odqa.ConfigError, match="unknown config field 'retriever.depth'"):
        PipelineConfig(retriever={"depth": 3})


def test_flags_override_a_config_file(cli, captured, tmp_path):
    path = PipelineConfig.from_flat(k=5, mode="sparse", retrieval_weight=1.0).save(tmp_path / "p.yaml")
    code, _, err = cli("ask", "질문", "--index", "h", "--config", path, "-k", "3")
    assert code != 0 and "captured" in err
    assert captured[0].flat() == {**DEFAULTS, "index": "h", "k": 3, "mode": "sparse", "retrieval_weight": 1.0}


def test_errors_name_api_parameters_and_the_cli_names_its_flags(cli, tmp_path):
    with pytest.raises(odqa.OdqaError, match="`rerank` needs a reranker"):
        Pipeline.from_index("h", reader="none", rerank=5, index_dir=tmp_path)
    code, _, err = cli("ask", "질문", "--index", "h", "--reader", "none", "--rerank", "5", "--index-dir", tmp_path)
    assert code != 0 and "--rerank needs a reranker: --reranker FOLDER" in err and "`" not in err.split(":")[2]


def test_from_config_equals_from_index_with_the_same_settings(serve_index_root):
    settings = {"reader": "none", "mode": "hybrid", "k": 3, "alpha": 0.4, "n_best": 5}
    a = Pipeline.from_index("h", index_dir=serve_index_root, **settings)
    b = Pipeline.from_config(PipelineConfig.from_flat(index="h", index_dir=serve_index_root, **settings))
    assert a.config == b.config and a.mode == b.mode == "hybrid"
    ra, rb = a.ask("백록담이 있는 산은 어디인가?"), b.ask("백록담이 있는 산은 어디인가?")
    assert ra.answers == rb.answers and ra.hits == rb.hits and len(ra.hits) == 3


def test_retrieve_uses_a_retriever(serve_index_root, cli, tmp_path):
    r = odqa.Retriever.from_index("h", odqa.RetrieverSettings(mode="sparse", k=2), serve_index_root)
    hits = r.retrieve("거북선")
    assert hits[0].passage.id == "p4" and {h.source for h in hits} == {"sparse"}
    assert r.in_mode("dense").mode == "dense" and r.in_mode("dense") is r.in_mode("dense")
    code, out, err = cli("retrieve", "거북선", "--index", "h", "--index-dir", serve_index_root, "-k", "2", "--json")
    assert code == 0, err
    assert '"mode": "sparse"' in out and out.count('"rank"') == len(hits)


def test_errors_below_the_cli_name_parameters_and_the_cli_prints_the_flags_of_any_command():
    from odqa.cli.main import cli_message
    assert cli_message("`precision` must be int8, not 'x'") == "--precision must be int8, not 'x'"
    assert cli_message("`shard` 0/4: I counts from 1 to N") == "--shard 0/4: I counts from 1 to N"
    assert cli_message("`rerank` needs `reranker`") == "--rerank needs --reranker"
    assert cli_message("`no_such_option` stays") == "`no_such_option` stays"


def test_no_error_below_the_cli_spells_a_flag():
    """Messages raised below the CLI name API parameters in backticks; a whole command to run (`odqa index ...`)
    or an install line may spell its flags."""
    import ast
    import re
    from pathlib import Path
    src = Path(__file__).resolve().parents[1] / "src" / "odqa"
    offenders = []
    for p in src.rglob("*.py"):
        if p.relative_to(src).parts[0] == "cli":
            continue
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Raise) and node.exc is not None:
                text = "".join(c.value for c in ast.walk(node.exc) if isinstance(c, ast.Constant) and isinstance(c.value, str))
                text = re.sub(r"`[^`]*`", "", text).split("pip install")[0]
                if re.search(r"(?<![\w-])--[a-z]", text):
                    offenders.append(f"{p.relative_to(src)}:{node.lineno}")
    assert offenders == []
