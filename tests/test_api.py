"""The Python API (`odqa.Pipeline`, `odqa.build_index`, ...): what the CLI and the server stand on."""

import json
import subprocess
import sys
import threading

import pytest

import odqa
from odqa.errors import IndexNotFound, IndexStale, OdqaError
from tests.conftest import PASSAGES, QUESTIONS, in_threads, squad_file, write_jsonl
from tests.tiny_model import make_reader_checkpoint


@pytest.fixture(scope="module")
def reader_ckpt(tiny, tmp_path_factory):
    """A reader checkpoint (random head on the tiny backbone): deterministic, enough to compare answers."""
    return make_reader_checkpoint(tiny, tmp_path_factory.mktemp("reader") / "best", 48, 16)


@pytest.fixture(scope="module")
def built(tiny, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("api")
    corpus = write_jsonl(tmp / "corpus.jsonl", PASSAGES)
    root = tmp / "indexes"
    res = odqa.build_index(corpus, "h", None, [f"dense.enabled=true", f"dense.encoder={tiny}", "dense.max_length=64"],
                           index_dir=root, quiet=True)
    return {"root": root, "corpus": corpus, "result": res}


def test_import_odqa_is_cheap_and_exports_the_api():
    code = "import sys, odqa; assert 'torch' not in sys.modules; print(odqa.Pipeline.__module__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "odqa.api.pipeline"
    for name in ("Pipeline", "build_index", "load_index", "evaluate_retrieval", "evaluate_answers", "predict"):
        assert callable(getattr(odqa, name))
    with pytest.raises(AttributeError):
        odqa.no_such_name


def test_pipeline_from_index_answers_with_offsets_into_its_passages(built, reader_ckpt):
    p = odqa.Pipeline.from_index("h", reader=reader_ckpt, index_dir=built["root"], k=3)
    assert p.mode == "hybrid" and not p.sentence_level       # auto: the index has vectors
    r = p.ask("백록담이 있는 산은 어디인가?")
    assert r.answers and len(r.hits) <= 3 and {"retrieve", "read", "fusion", "read_model"} <= set(r.timings)
    for a in r.answers:
        assert r.passage(a).text[a.start:a.end] == a.text
    assert sum(a.probability for a in r.answers) <= 1 + 1e-6
    hits = p.retrieve("훈민정음을 창제한 임금은?", k=2)
    assert len(hits) == 2 and hits[0].passage.id == "p3"
    assert odqa.Pipeline.from_index("h", reader=reader_ckpt, mode="sparse", index_dir=built["root"]).mode == "sparse"


def test_one_pipeline_serves_8_threads_with_the_sequential_answers(built, reader_ckpt):
    p = odqa.Pipeline.from_index("h", reader=reader_ckpt, index_dir=built["root"], k=3)
    base = [q["question"] for q in QUESTIONS] + [p_["title"] + "에 대해 알려줘" for p_ in PASSAGES]
    questions = [f"{base[i % len(base)]} {'?' * (i // len(base))}".strip() for i in range(25)]

    def key(res):
        return [(a.text, a.passage_id, a.start, a.end, round(a.probability, 5)) for a in res.answers]

    sequential = {q: key(p.ask(q)) for q in questions}
    start = threading.Barrier(8)

    def worker(t):
        start.wait()
        return [key(p.ask(q)) for q in questions[t:] + questions[:t]]   # each thread its own order

    got = in_threads(8, worker)
    for t in range(8):
        assert got[t] == [sequential[q] for q in questions[t:] + questions[:t]]


def test_evaluate_answers_open_and_closed_and_predict(built, reader_ckpt, tmp_path):
    qs = write_jsonl(tmp_path / "q.jsonl", QUESTIONS)
    p = odqa.Pipeline.from_index("h", reader=reader_ckpt, index_dir=built["root"], k=2)
    rep = odqa.evaluate_answers(p, qs, out=tmp_path / "ev")
    m = rep.metrics
    assert m["questions"] == 5 and m["scored"] == 5 and m["retrieval"]["recall@1"] >= 0.6
    assert m["setting"]["readers"] == [str(reader_ckpt)] and m["setting"]["mode"] == "hybrid"
    assert json.loads((tmp_path / "ev" / "predictions.json").read_text()) == rep.predictions
    stages = json.loads((tmp_path / "ev" / "stages.json").read_text())
    assert set(stages) == set(rep.predictions) and sum(m["stages"].values()) == 5
    assert m["stages"]["correct"] == round(m["em"] * 5 / 100)
    closed = odqa.evaluate_answers(odqa.Pipeline.from_reader(reader_ckpt), squad_file(tmp_path / "s.json"),
                                   closed=True)
    assert closed.metrics["questions"] == 9 and closed.metrics["setting"]["closed"]
    with pytest.raises(OdqaError, match="needs an index"):
        odqa.evaluate_answers(odqa.Pipeline.from_reader(reader_ckpt), qs)
    # questions without answers: the Boostcamp submission shape {id: answer}
    test = write_jsonl(tmp_path / "test.jsonl", [{"id": "t1", "question": "지리산의 최고봉은?"},
                                                 {"id": "t2", "question": "거북선을 만든 사람은?"}])
    preds = odqa.predict(p, test, out=tmp_path / "predictions.json")
    assert set(preds) == {"t1", "t2"} and all(isinstance(v, str) for v in preds.values())
    assert json.loads((tmp_path / "predictions.json").read_text(encoding="utf-8")) == preds


def test_evaluate_retrieval_and_sweep_through_the_api(built, tmp_path):
    qs = write_jsonl(tmp_path / "q.jsonl", QUESTIONS)
    rep = odqa.evaluate_retrieval("h", qs, mode="sparse", index_dir=built["root"])
    assert rep.metrics["questions"] == 5 and rep.metrics["recall@5"] == 1.0 and len(rep.per_question) == 5
    sw = odqa.sweep_retrieval("h", qs, ["k1=0.5,1.2"], index_dir=built["root"])
    assert [r["params"]["k1"] for r in sw.rows] == [0.5, 1.2] and sw.best in sw.rows


def test_typed_errors(built, reader_ckpt, tmp_path):
    with pytest.raises(IndexNotFound, match="index 'nope' not found"):
        odqa.load_index("nope", built["root"])
    with pytest.raises(OdqaError, match="unknown retrieval mode 'fuzzy'"):
        odqa.Pipeline.from_index("h", reader="none", mode="fuzzy", index_dir=built["root"])
    with pytest.raises(OdqaError, match="device 'cuda:99' is not available"):    # on a GPU machine too
        odqa.Pipeline.from_index("h", device="cuda:99", index_dir=built["root"])
    with pytest.raises(odqa.ModelError, match="reader not found"):
        odqa.Pipeline.from_index("h", reader=tmp_path / "missing", index_dir=built["root"])
    p = odqa.Pipeline.from_index("h", reader="none", index_dir=built["root"], lazy_reader=True)
    with pytest.raises(OdqaError, match="query 1 is empty"):
        p.ask("   ")
    assert issubclass(IndexNotFound, OdqaError) and IndexNotFound.exit_code != OdqaError.exit_code


def test_hybrid_settings_of_the_config_are_used_and_updated_without_rebuild(built, tiny):
    root, corpus = built["root"], built["corpus"]
    dense = [f"dense.enabled=true", f"dense.encoder={tiny}", "dense.max_length=64"]
    odqa.build_index(corpus, "hy", None, dense + ["hybrid.alpha=1.0", "hybrid.method=minmax"], index_dir=root,
                     quiet=True)
    idx = odqa.load_index("hy", root)
    assert idx.hybrid_config().alpha == 1.0 and idx.hybrid_config(alpha=0.2).alpha == 0.2
    p = odqa.Pipeline.from_index("hy", reader="none", index_dir=root, lazy_reader=True)
    q = "제주도 산 정상의 화구호 이름은?"
    assert [h.passage.id for h in p.retrieve(q, 5)] == [h.passage.id for h in idx.dense().search([q], 5)[0]]
    again = odqa.build_index(corpus, "hy", None, dense + ["hybrid.alpha=0.5"], index_dir=root, quiet=True)
    assert again.status == "up-to-date" and odqa.load_index("hy", root).hybrid_config().alpha == 0.5


def test_an_index_of_the_previous_format_is_migrated_and_an_older_one_refused(built):
    root, corpus = built["root"], built["corpus"]
    odqa.build_index(corpus, "old", None, index_dir=root, quiet=True)
    path = root / "old" / "manifest.json"
    m = json.loads(path.read_text())
    v2 = {k: v for k, v in m.items() if k not in ("checksums", "manifest_checksum")} | {"format_version": 2}
    v1 = {k: v for k, v in v2.items() if k not in ("backend", "hybrid")} | {"format_version": 1}
    for old, first in ((v1, 1), (v2, 2)):
        path.write_text(json.dumps(old))
        idx = odqa.load_index("old", root)
        assert idx.manifest["format_version"] == 3 and idx.manifest["migrated_from"] == first
        assert idx.backend == "local" and idx.manifest["checksums"] is None
        assert any("no file checksums recorded" in r for r in idx.stale)      # loads, unchecked, and says so
        assert odqa.Pipeline.from_index("old", reader="none", index_dir=root, lazy_reader=True).retrieve("거북선")
        res = odqa.build_index(corpus, "old", None, index_dir=root, quiet=True)   # records them, no rebuild
        now = json.loads(path.read_text())
        assert res.status == "up-to-date" and now["format_version"] == 3 and "migrated_from" not in now
        assert now["checksums"] == m["checksums"] and not odqa.load_index("old", root).stale
    path.write_text(json.dumps({**v1, "format_version": 0}))
    with pytest.raises(IndexStale) as e:
        odqa.load_index("old", root)
    assert f"odqa index {corpus} --name old" in str(e.value) and "--force" in str(e.value)


def test_an_hf_question_answering_checkpoint_reads_like_an_odqa_reader(built, tiny, tmp_path):
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForQuestionAnswering
    torch.manual_seed(0)
    cfg = BertConfig.from_pretrained(str(tiny))
    folder = tmp_path / "hf-qa"
    BertForQuestionAnswering(cfg).save_pretrained(folder)
    AutoTokenizer.from_pretrained(str(tiny)).save_pretrained(folder)
    p = odqa.Pipeline.from_index("h", reader=folder, index_dir=built["root"], k=2)
    assert p.reader.window.max_length <= 128 and not p.sentence_level
    r = p.ask("지리산의 최고봉은?")
    assert r.answers and all(r.passage(a).text[a.start:a.end] == a.text for a in r.answers)
    (tmp_path / "neither").mkdir()
    (tmp_path / "neither" / "config.json").write_text('{"architectures": ["BertModel"]}')
    with pytest.raises(odqa.ModelError, match="not a reader: expected an odqa reader checkpoint"):
        odqa.Pipeline.from_index("h", reader=tmp_path / "neither", index_dir=built["root"])


def test_training_through_the_api_returns_typed_results(tiny, tmp_path):
    from odqa.api.training import ParticlesTrainRequest, ParticlesTrainResult, ReaderTrainRequest, ReaderTrainResult
    from odqa.config import ConfigError
    train = squad_file(tmp_path / "train.json")
    cfg = ReaderTrainRequest(backbone=str(tiny), head={"type": "linear"}, window={"max_length": 48, "stride": 16},
                            train={"lr": 3e-3, "max_steps": 4, "batch_size": 4, "eval_every": 2},
                            train_files=[train], out=tmp_path / "run", dev=train)
    res = odqa.train_reader(cfg)
    assert isinstance(res, ReaderTrainResult) and res.steps == 4 and res.metric == "f1" and res.train_questions == 9
    assert res.to_json()["out"] == str(tmp_path / "run" / "best") and (tmp_path / "run" / "best").is_dir()
    learned = odqa.train_particles(ParticlesTrainRequest(reader=tmp_path / "run" / "best", train_files=[train]))
    assert isinstance(learned, ParticlesTrainResult) and learned.examples <= 9
    assert (tmp_path / "run" / "best" / "particles.json").exists()
    with pytest.raises(ConfigError, match="config field 'side'"):
        from odqa.api.training import RetrieverTrainRequest
        RetrieverTrainRequest(train_files=[train], out=tmp_path / "r", side="passage")
