"""The reader's ONNX Runtime path (runtime onnx | onnx-int8) and per-stage timings of an ask, on the tiny model."""

import json

import numpy as np
import pytest

import odqa
from odqa.errors import OdqaError
from odqa.types import Hit, Passage
from tests.conftest import PASSAGES, write_jsonl
from tests.test_cli import odqa as run_cli
from tests.tiny_model import make_reader_checkpoint

pytest.importorskip("onnxruntime", reason="onnxruntime not installed (pip install 'odqa[onnx]')")

QUESTIONS = ["백록담이 있는 산은 어디인가?", "훈민정음을 창제한 임금은?", "거북선으로 왜군을 물리친 사람은?"]


@pytest.fixture(scope="module")
def ckpt(tiny, tmp_path_factory):
    """A reader checkpoint with a CNN head (random, seeded) and windows small enough that passages split."""
    return make_reader_checkpoint(tiny, tmp_path_factory.mktemp("reader") / "best", 24, 8)


def hits():
    # padded batches of several lengths: long passages give several windows, short ones one
    ps = [Passage(p["id"], p["title"], p["text"] * (1 + i % 3)) for i, p in enumerate(PASSAGES)]
    return [Hit(p, 1.0 - i / 10, i + 1) for i, p in enumerate(ps)]


def read(ckpt, runtime, **kw):
    from odqa.reader.reader import Reader
    r = Reader(ckpt, device="cpu", runtime=runtime, retrieval_weight=0.0, **kw)
    return r, r.read_batch(QUESTIONS, [hits()] * len(QUESTIONS))


def test_the_word_embeddings_stay_outside_the_graph_and_are_checked_with_it(ckpt, cache):
    import onnx as onnx_lib

    from odqa.errors import ModelError
    from odqa.reader.onnx_reader import EMBEDDINGS, OnnxSpanModel
    model = OnnxSpanModel(ckpt, "onnx")
    table = np.load(model.model_path.parent / EMBEDDINGS)
    assert "inputs_embeds" in model.inputs and "input_ids" not in model.inputs
    graph = onnx_lib.load(str(model.model_path))
    assert all(tuple(t.dims)[:1] != (table.shape[0],) for t in graph.graph.initializer)   # no vocabulary matrix
    assert isinstance(model.embeddings, np.memmap)
    damaged = model.model_path.parent / EMBEDDINGS
    data = bytearray(damaged.read_bytes())
    data[-1] ^= 0xFF
    damaged.write_bytes(bytes(data))
    again = OnnxSpanModel(ckpt, "onnx")                  # a damaged table is noticed and exported again
    assert np.array_equal(np.load(again.model_path.parent / EMBEDDINGS), table)


def test_onnx_reads_the_spans_torch_reads_and_int8_stays_close(ckpt, cache):
    _, ref = read(ckpt, "torch")
    onnx, got = read(ckpt, "onnx")
    assert onnx.model.model_path.parent.name.startswith("reader-") and onnx.model.model_path.is_file()
    assert all(ref_q and got_q for ref_q, got_q in zip(ref, got))
    for ref_q, got_q in zip(ref, got):
        assert [(s.passage_id, s.start, s.end) for s in got_q] == [(s.passage_id, s.start, s.end) for s in ref_q]
        assert np.allclose([s.score for s in got_q], [s.score for s in ref_q], atol=1e-3)
        assert np.allclose([s.probability for s in got_q], [s.probability for s in ref_q], atol=1e-4)
    q8, got8 = read(ckpt, "onnx-int8")
    from odqa.reader.onnx_reader import RECIPE
    assert q8.model.model_path.parent.name.endswith(f"-int8-r{RECIPE}") and q8.model.model_path != onnx.model.model_path
    # int8: the raw logits of every window stay close to torch's
    from odqa.reader.inference import collate
    from odqa.reader.features import make_windows
    w = make_windows(onnx.tokenizer, QUESTIONS, [h.passage.text for h in hits()[:3]], 24, 8)
    batch = collate(onnx.tokenizer, w.input_ids, w.token_type_ids)
    import torch
    from odqa.modeling.checkpoint import load_model
    _, model, _ = load_model(ckpt, "span", device="cpu")
    with torch.inference_mode():
        t_start, t_end = (t.numpy() for t in model(**batch))
    o_start, o_end = onnx.model.logits({k: v.numpy() for k, v in batch.items()})
    q_start, q_end = q8.model.logits({k: v.numpy() for k, v in batch.items()})
    mask = batch["attention_mask"].numpy().astype(bool)
    assert np.abs(o_start - t_start)[mask].max() < 1e-3 and np.abs(o_end - t_end)[mask].max() < 1e-3
    scale = np.abs(t_start[mask]).max()
    assert np.abs(q_start - t_start)[mask].max() < 0.1 * scale and np.abs(q_end - t_end)[mask].max() < 0.1 * scale
    assert [q[0].text for q in got8] and all(got8)


def test_second_load_reuses_the_cached_export(ckpt, cache, monkeypatch):
    from odqa.modeling import onnx_runtime
    from odqa.reader import onnx_reader
    first, _ = read(ckpt, "onnx-int8")
    path = first.model.model_path
    mtime = path.stat().st_mtime_ns

    def boom(*a, **k):
        raise AssertionError("exported again")
    monkeypatch.setattr(onnx_reader, "export_span_fp32", boom)
    monkeypatch.setattr(onnx_reader, "quantize_int8", boom)
    monkeypatch.setattr(onnx_runtime, "quantize_int8", boom)
    monkeypatch.setattr("odqa.modeling.checkpoint.load_model", boom)     # nor are the torch weights loaded
    again, spans = read(ckpt, "onnx-int8")
    assert again.model.model_path == path and path.stat().st_mtime_ns == mtime and all(spans)
    meta = json.loads((path.parent / onnx_runtime.SIDECAR).read_text())
    assert meta["kind"] == "int8" and meta["recipe"] == onnx_reader.RECIPE and len(meta["reader_sha256"]) == 64


def test_a_retrained_checkpoint_is_exported_again(ckpt, cache, tmp_path):
    import shutil

    from odqa.checksums import write_checksums
    from odqa.reader.onnx_reader import reader_onnx_path
    other = tmp_path / "other"
    shutil.copytree(ckpt, other)
    head = json.loads((other / "odqa_head.json").read_text())
    head["extra"]["reader"]["window"]["stride"] = 4          # any change to the files that make the model
    (other / "odqa_head.json").write_text(json.dumps(head))
    write_checksums(other)
    assert reader_onnx_path(other, "onnx") != reader_onnx_path(ckpt, "onnx")


def test_unknown_runtime_is_one_clear_error_before_loading(ckpt, tmp_path):
    from odqa.reader.reader import Reader
    with pytest.raises(OdqaError, match=r"unknown reader runtime 'tensorrt' \(choose from torch, onnx, onnx-int8\)"):
        Reader(ckpt, runtime="tensorrt", retrieval_weight=0.0)
    with pytest.raises(OdqaError, match="unknown reader runtime 'fast'"):
        odqa.Pipeline.from_index("no-such-index", reader=ckpt, reader_runtime="fast", index_dir=tmp_path)
    write_jsonl(tmp_path / "q.jsonl", [{"id": "q1", "question": "한라산?", "answers": ["한라산"]}])
    for cmd in (["ask", "한라산?", "--index", "x"], ["evaluate", "--index", "x", "--questions", "q.jsonl"],
                ["serve", "--index", "x"]):
        r = run_cli(*cmd, "--reader", ckpt, "--reader-runtime", "fast", cwd=tmp_path, check=False)
        assert r.returncode != 0 and "Traceback" not in r.stderr, (cmd, r.stderr)
        assert r.stderr.strip() == "odqa: error: unknown reader runtime 'fast' (choose from torch, onnx, onnx-int8)"


@pytest.fixture(scope="module")
def built(tiny, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("api")
    root = tmp / "indexes"
    odqa.build_index(write_jsonl(tmp / "corpus.jsonl", PASSAGES), "h", None,
                     ["dense.enabled=true", f"dense.encoder={tiny}", "dense.max_length=64"], index_dir=root, quiet=True)
    return root


def test_ask_reports_each_stage_and_onnx_answers_as_torch(built, ckpt, cache):
    from odqa.timing import STAGES
    torch_p = odqa.Pipeline.from_index("h", reader=ckpt, index_dir=built, k=3)
    onnx_p = odqa.Pipeline.from_index("h", reader=ckpt, index_dir=built, k=3, reader_runtime="onnx")
    assert onnx_p.reader_settings["reader_runtime"] == "onnx" and torch_p.reader_settings["reader_runtime"] == "torch"
    for q in QUESTIONS:
        a, b = torch_p.ask(q), onnx_p.ask(q)
        assert [(s.passage_id, s.start, s.end) for s in a.answers] == [(s.passage_id, s.start, s.end) for s in b.answers]
        ran = {"query_analysis", "query_encoding", "sparse_search", "dense_search", "fusion", "read_tokenize",
               "read_model", "read_postprocess"}
        assert set(a.timings) == {"retrieve", "read"} | ran and list(a.timings)[:2] == ["retrieve", "read"]
        assert [s for s in a.timings if s in STAGES] == [s for s in STAGES if s in ran]      # documented order
        parts = sum(a.timings[s] for s in ("query_analysis", "query_encoding", "sparse_search", "dense_search", "fusion"))
        assert 0 < parts <= a.timings["retrieve"] + 1e-6
        assert 0 < a.timings["read_model"] <= a.timings["read"] + 1e-6
    sparse = odqa.Pipeline.from_index("h", reader=ckpt, index_dir=built, k=3, mode="sparse").ask(QUESTIONS[0])
    assert "dense_search" not in sparse.timings and "query_encoding" not in sparse.timings
    assert "sparse_search" in sparse.timings
    # a batch reports each question's share; stages outside an ask record nothing
    batch = torch_p.ask_batch(QUESTIONS)
    assert all(set(r.timings) == set(batch[0].timings) for r in batch)


def test_stages_add_up_inside_a_collection_and_record_nothing_outside():
    from odqa.timing import collect, ordered, stage
    with stage("read_model"):                   # no collection open: nothing to record, no error
        pass
    with collect() as seconds:
        for _ in range(2):
            with stage("fusion"):
                pass
        with stage("query_analysis"), collect() as inner:     # a nested collection is its own
            with stage("rerank"):
                pass
    assert set(seconds) == {"fusion", "query_analysis"} and set(inner) == {"rerank"}
    assert list(ordered({"read_model": 1.0, "x": 2.0, "query_analysis": 3.0})) == ["query_analysis", "read_model", "x"]


# `odqa ARGS` in a fresh process, then which of the heavy libraries that process imported (on stderr)
_HARNESS = """import sys
from odqa.cli.main import main
sys.argv = ["odqa", *sys.argv[1:]]
try:
    main()
finally:
    print("imported:", ",".join(m for m in ("torch", "transformers") if m in sys.modules) or "-", file=sys.stderr)
"""


def test_ask_with_the_onnx_reader_over_sparse_retrieval_never_imports_torch(built, ckpt, cache, tmp_path):
    import os
    import subprocess
    import sys
    read(ckpt, "onnx")                   # the export (torch's work) is made once, beforehand
    args = ["ask", QUESTIONS[0], "--index", "h", "--index-dir", built, "--reader", ckpt, "--mode", "sparse",
            "--json"]
    env = {**os.environ, "ODQA_CACHE": str(cache), "ODQA_QUIET": "1"}

    def ask(*extra):
        p = subprocess.run([sys.executable, "-c", _HARNESS, *map(str, args), *extra], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, p.stderr
        return json.loads(p.stdout), p.stderr.strip().splitlines()[-1]

    onnx, imported = ask("--reader-runtime", "onnx")
    assert imported == "imported: -"
    ref, imported = ask("--reader-runtime", "torch")
    assert imported == "imported: torch,transformers"
    assert [(a["passage_id"], a["start"], a["end"]) for a in onnx["answers"]] == \
        [(a["passage_id"], a["start"], a["end"]) for a in ref["answers"]] and onnx["answers"]
