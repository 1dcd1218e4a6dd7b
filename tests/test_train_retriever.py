import json

import pytest

from odqa.errors import OdqaError

from odqa.config import IndexConfig, apply_overrides
from odqa.index.indexing import build_index, load_index
from tests.conftest import squad_file
from tests.test_cli import odqa
from tests.tiny_model import make_tiny_backbone


def request(tiny, data, out, **kw):
    from odqa.api.training import RetrieverTrainRequest
    from odqa.training import TrainConfig
    run = kw.pop("train", {})
    return RetrieverTrainRequest(train_files=[data], out=out, backbone=str(tiny), max_length=32, holdout=0.3,
                                 train=TrainConfig(**{"lr": 1e-5, "batch_size": 4, **run}), **kw)


def test_train_retriever_then_index_with_it(tmp_path, corpus_file, index_root, tiny):
    from odqa.api.training import RetrieverTrainResult, train_retriever
    train = squad_file(tmp_path / "train.json")
    out = tmp_path / "run"
    res = train_retriever(request(tiny, train, out, freeze_layers=1, train={"max_steps": 4, "eval_every": 2}))
    # held out by passage: 1 of the 5 passages (with its 1 or 2 questions) is never trained on
    assert isinstance(res, RetrieverTrainResult)
    assert res.steps == 4 and res.train_questions + res.heldout_questions == 9
    assert res.heldout_questions in (1, 2)
    assert 0 <= res.best_metric <= 1 and set(res.heldout_before) == {"recall@1", "recall@5"}
    best = out / "best"
    assert (best / "config.json").exists() and (best / "tokenizer.json").exists()
    sidecar = json.loads((best / "odqa_retriever.json").read_text())
    assert sidecar["base_backbone"] == str(tiny) and sidecar["freeze_layers"] == 1
    assert sidecar["temperature"] == 0.05   # not an e5 model: the usual temperature
    held = [json.loads(line) for line in (best / "heldout_questions.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(held) == res.heldout_questions and all(h["gold_ids"] and h["question"] for h in held)
    train_ids = {q["id"] for a in json.loads(open(train, encoding="utf-8").read())["data"]
                 for p in a["paragraphs"] for q in p["qas"]}
    assert {h["id"] for h in held} <= train_ids
    cfg = apply_overrides(IndexConfig(), ["dense.enabled=true", f"dense.encoder={best}"])
    build_index(corpus_file, "ft", cfg, index_root)
    assert load_index("ft", index_root).retriever("dense").search(["한라산"], 2)[0]
    with pytest.raises(OdqaError, match="trainable parameters differ"):   # other frozen layers: a clear refusal
        train_retriever(request(tiny, train, out, resume=True, train={"max_steps": 6}))
    again = train_retriever(request(tiny, train, out, resume=True, freeze_layers=1, train={"max_steps": 6}))
    assert again.steps == 6


def test_train_cli_wiring(tmp_path, tiny):
    """`odqa train retriever`: flags reach the API, --json prints the result, errors are one line with their exit code."""
    train = squad_file(tmp_path / "train.json")
    out = tmp_path / "run"
    args = ("train", "retriever", "--train", train, "--out", out, "--backbone", tiny, "--batch-size", "4",
            "--max-length", "32", "--holdout", "0.3", "--lr", "2e-5", "--temperature", "0.07", "--seed", "3")
    rep = json.loads(odqa(*args, "--max-steps", "2", "--freeze-layers", "1", "--json", cwd=tmp_path).stdout)
    assert set(rep) == {"out", "train_questions", "heldout_questions", "heldout_before", "best_metric", "best_step",
                        "steps", "stopped", "minutes"} and rep["steps"] == 2
    sidecar = json.loads((out / "best" / "odqa_retriever.json").read_text())
    assert (sidecar["temperature"], sidecar["freeze_layers"], sidecar["max_length"]) == (0.07, 1, 32)
    state = json.loads((out / "best" / "odqa_train_state.json").read_text())
    assert (state["config"]["lr"], state["config"]["seed"], state["config"]["metric"]) == (2e-5, 3, "recall@1")
    text = odqa(*args, "--max-steps", "3", "--freeze-layers", "1", "--resume", cwd=tmp_path).stdout
    assert "held-out recall@1" in text and "encoder saved to" in text
    changed = odqa(*args, "--max-steps", "4", "--resume", "--json", cwd=tmp_path, check=False)
    assert changed.returncode == 2 and "trainable parameters differ" in changed.stderr
    assert len(changed.stderr.strip().splitlines()) == 1
    bad = odqa(*args, "--side", "passage", cwd=tmp_path, check=False)
    assert bad.returncode == 2 and bad.stderr.strip().startswith("odqa: error: config field 'side'")
    bad = odqa(*args, "--batch-size", "0", cwd=tmp_path, check=False)
    assert bad.returncode == 2 and "config field 'train.batch_size'" in bad.stderr
    for cmd in ("retriever", "reader", "particles"):
        assert "Example: odqa train " + cmd in odqa("train", cmd, "--help", cwd=tmp_path).stdout


def rcfg(**kw):
    """A retriever task's config with its defaults decided (as odqa.api.training.retriever_defaults does)."""
    from odqa.encoder_training.task import RetrieverTrainConfig
    return RetrieverTrainConfig(**{"temperature": 0.05, "freeze_layers": 0, **kw})


def _task(tmp_path, batch_size=3, holdout=0.0):
    from transformers import AutoTokenizer

    from odqa.encoder_training.task import RetrieverTask
    from odqa.types import Question
    tok = AutoTokenizer.from_pretrained(str(make_tiny_backbone(tmp_path / "enc")))
    texts = {"a": "한라산은 제주도에 있다", "b": "지리산의 최고봉은 천왕봉이다", "c": "김치는 발효 음식이다",
             "d": "세종대왕은 훈민정음을 창제하였다"}
    qs = [Question(f"{g}{i}", f"{texts[g][:3]} 질문 {i}", gold_ids=[g], context=texts[g], title=f"제목{g}")
          for g in "abcd" for i in range(3 if g in "ab" else 1)]
    return RetrieverTask(tok, qs, rcfg(max_length=32, holdout=holdout), batch_size, seed=1)


def test_batches_hold_distinct_gold_passages_and_cover_every_question(tmp_path):
    task = _task(tmp_path)
    for epoch in (0, 1):
        batches = task._batches(epoch, 7)
        assert sorted(i for b in batches for i in b) == list(range(len(task.train)))   # each question once
        for b in batches:
            golds = [task.train[i].gold_ids[0] for i in b]
            assert len(golds) == len(set(golds)) and len(b) <= 3
        assert batches == task._batches(epoch, 7)   # a pure function of (epoch, seed): exact resume
    assert task.num_train_batches() == len(task._batches(0, 0)) >= 3   # 3 questions on passage "a" need 3 batches
    (_, cs, ce), = task.windows["a"]     # passages encoded with their title, as the index does
    assert (cs, ce) == (0, len("제목a\n한라산은 제주도에 있다"))


def test_a_hard_negative_that_is_the_rows_own_gold_is_masked(tmp_path):
    import torch
    task = _task(tmp_path, batch_size=4)
    golds = {q.gold_ids[0] for q in task.train}
    # every question's hard negative is passage "c": for the question whose gold is "c" it must not count
    task.negatives = [["c"] for _ in task.train]
    batch = next(b for b in task.train_batches(0, 3) if b["mask"].any())
    n = batch["q"]["input_ids"].shape[0]
    assert batch["mask"].shape == (n, 2 * n) and "c" in golds
    rows, cols = torch.nonzero(batch["mask"], as_tuple=True)
    # only the row whose gold is "c" is masked, in all n negative columns, never on its own label
    assert len(set(rows.tolist())) == 1 and sorted(cols.tolist()) == list(range(n, 2 * n))
    assert not batch["mask"].diagonal().any()
    from transformers import AutoModel
    loss = task.loss(AutoModel.from_pretrained(str(tmp_path / "enc")), batch)
    assert torch.isfinite(loss)   # a masked column takes no probability and breaks nothing


def test_e5_backbones_train_at_their_own_temperature():
    from odqa.encoder_training.model import default_temperature
    assert default_temperature("offline:multilingual-e5-small") == 0.01
    assert default_temperature("intfloat/multilingual-e5-base") == 0.01
    assert default_temperature("klue/bert-base") == 0.05


def test_the_positive_is_the_window_holding_the_answer(tmp_path, tiny):
    from transformers import AutoTokenizer

    from odqa.retrieval.dense import windows_with_spans
    from odqa.encoder_training.task import RetrieverTask
    from odqa.types import Question
    tok = AutoTokenizer.from_pretrained(tiny)
    long_text = "세종대왕은 조선의 임금이다. " * 10 + "거북선은 이순신이 만든 배이다."
    wins = windows_with_spans(tok, ["제목\n" + long_text], "", 24, 8)[0]
    assert len(wins) > 2 and all(len(ids) <= 24 for ids, _, _ in wins)
    text = "제목\n" + long_text
    spans = [(cs, ce) for _, cs, ce in wins]     # overlapping spans from the start to the end of the text
    assert spans[0][0] == 0 and spans[-1][1] == len(text)
    assert all(a[0] < b[0] < a[1] and a[1] <= b[1] for a, b in zip(spans, spans[1:]))
    answer = "이순신"
    qs = [Question("q1", "거북선을 만든 사람은?", answers=[answer], answer_starts=[long_text.index(answer)],
                   gold_ids=["p"], context=long_text, title="제목"),
          Question("q2", "조선의 임금은?", answers=["세종대왕"], answer_starts=[0], gold_ids=["p"], context=long_text,
                   title="제목"),
          Question("q3", "김치는?", answers=["발효"], answer_starts=[4], gold_ids=["k"], context="김치는 발효 음식이다",
                   title="김치")]
    task = RetrieverTask(tok, qs, rcfg(max_length=24, window_stride=8, holdout=0.0), 2, seed=1)
    w1, w2 = (task.positive[[q.id for q in task.train].index(i)] for i in ("q1", "q2"))
    _, cs, ce = task.windows["p"][w1]
    start = len("제목\n") + long_text.index(answer)
    assert w1 > 0 and cs <= start and start + len(answer) <= ce      # past the first window: found where it is
    assert w2 == 0
    cut = RetrieverTask(tok, qs, rcfg(max_length=24, window_stride=0, holdout=0.0), 2, seed=1)
    assert all(len(w) == 1 for w in cut.windows.values()) and set(cut.positive) == {0}
    batch = next(iter(task.train_batches(0, 1)))
    assert batch["p"]["input_ids"].shape[1] <= 24 and task.evaluate.__doc__


def test_query_side_training_keeps_the_base_passage_vectors(tmp_path, corpus_file, index_root, tiny):
    import numpy as np

    from odqa.retrieval.dense import DenseEncoder
    train = squad_file(tmp_path / "train.json")
    out = tmp_path / "run"
    from odqa.api.training import train_retriever
    res = train_retriever(request(tiny, train, out, side="query", train={"max_steps": 4, "eval_every": 2, "lr": 1e-3}))
    assert res.steps == 4 and 0 <= res.best_metric <= 1
    best = out / "best"
    sidecar = json.loads((best / "odqa_retriever.json").read_text())
    assert sidecar["side"] == "query" and sidecar["passage_encoder"] == str(tiny)
    tuned, base = DenseEncoder(str(best), 32), DenseEncoder(str(tiny), 32)
    texts = ["한라산은 제주도에 있는 산이다", "김치는 발효 음식이다"]
    # passages go through the base encoder (the vectors training scored against), queries through the tuned one
    assert np.allclose(tuned.encode(texts, "passage"), base.encode(texts, "passage"), atol=1e-6)
    assert not np.allclose(tuned.encode(texts, "query"), base.encode(texts, "query"), atol=1e-4)
    cfg = apply_overrides(IndexConfig(), ["dense.enabled=true", f"dense.encoder={best}"])
    build_index(corpus_file, "qs", cfg, index_root)
    assert load_index("qs", index_root).retriever("dense").search(["한라산"], 2)[0]
    with pytest.raises(OdqaError, match="query-side encoder"):
        DenseEncoder(str(best), 32, quantize="onnx")


def test_query_side_batches_mask_the_gold_passages_other_windows(tmp_path, tiny):
    import torch

    from odqa.encoder_training.query_side import QuerySideTask
    from odqa.types import Question
    from transformers import AutoModel, AutoTokenizer
    tok, model = AutoTokenizer.from_pretrained(tiny), AutoModel.from_pretrained(tiny)
    long = " ".join(f"문장{i}은 길다" for i in range(40)) + " 정답은 한라산이다"
    qs = [Question("q1", "정답은 무엇인가", gold_ids=["a"], context=long, title="제목",
                   answers=["한라산"], answer_starts=[long.index("한라산")]),
          Question("q2", "김치는 무엇인가", gold_ids=["b"], context="김치는 발효 음식이다", title="김치")]
    cfg = rcfg(backbone=tiny, max_length=32, window_stride=16, holdout=0.0)
    task = QuerySideTask(tok, qs, cfg, 4, seed=1, passage_model=model)
    n_a = len(task.windows["a"])
    assert n_a > 2 and task.wv.shape[0] == n_a + 1
    batch = next(iter(task.train_batches(0, 0)))
    row = {q.id: r for r, q in enumerate(task.train[i] for i in task._batches(0, 0)[0])}
    target = int(batch["target"][row["q1"]])
    assert target == task.row[("a", n_a - 1)] or target == task.row[("a", n_a - 2)]   # the window holding the answer
    masked = set(torch.nonzero(batch["mask"][row["q1"]]).flatten().tolist())
    assert masked == {task.row[("a", w)] for w in range(n_a)} - {target}          # its other windows, nothing else
    assert not batch["mask"][row["q2"]].any()
    before = task.wv.clone()
    task.loss(model, batch).backward()
    assert torch.equal(task.wv, before) and not task.wv.requires_grad


def test_holdout_takes_whole_articles():
    from odqa.training_data import holdout_passages
    from odqa.types import Passage
    pool = [Passage(f"{t}{i}", f"제목{t}", "본문") for t in "abcdefghij" for i in range(3)]
    for seed in range(5):
        held = holdout_passages(pool, 0.2, seed)
        assert len(held) == 6                                          # 2 whole articles of 3 paragraphs
        assert all({f"{t}{i}" for i in range(3)} <= held or not {f"{t}{i}" for i in range(3)} & held for t in "abcdefghij")
    one_article = [Passage(f"p{i}", "같은 제목", "본문") for i in range(10)]
    assert len(holdout_passages(one_article, 0.3, 1)) == 3             # one article: by passage


def test_extra_passages_join_the_pool_as_negatives_only(tmp_path, tiny):
    from transformers import AutoTokenizer

    from odqa.encoder_training.task import RetrieverTask
    from odqa.types import Passage, Question
    tok = AutoTokenizer.from_pretrained(tiny)
    texts = {g: f"{g} 문서는 {g}에 대한 글이다" for g in "abcdef"}
    qs = [Question(f"{g}{i}", f"{g} 질문 {i}", gold_ids=[g], context=texts[g], title=f"제목{g}")
          for g in "abcdef" for i in range(2)]
    extra = [Passage(f"x{i}", "", f"a 문서는 아니다 {i}") for i in range(5)] + [Passage("a", "제목a", texts["a"])]
    task = RetrieverTask(tok, qs, rcfg(max_length=32, holdout=0.34), 3, seed=1, extra=extra)
    assert len(task.pool) == 6 + 5                       # a gold passage given again as extra is not doubled
    assert len(task.heldout) == 4 and len(task.train) == 8   # held out: 2 of the 6 articles, never an extra passage
    assert all(q.gold_ids[0] in texts for q in task.heldout + task.train)
    assert any(n.startswith("x") for negs in task.negatives for n in negs)   # BM25 may pick them as hard negatives


def test_default_freezes_a_third_of_the_layers(tmp_path):
    """The default --freeze-layers (the measured recipe: 4 of e5-small's 12) scales with the backbone and
    never names a layer a small backbone lacks."""
    tiny = make_tiny_backbone(tmp_path / "enc6", layers=6)
    out = tmp_path / "run"
    from odqa.api.training import train_retriever
    train_retriever(request(tiny, squad_file(tmp_path / "train.json"), out, train={"max_steps": 1}))
    assert json.loads((out / "best" / "odqa_retriever.json").read_text())["freeze_layers"] == 2
