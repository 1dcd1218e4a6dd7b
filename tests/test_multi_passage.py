"""Multi-passage reader training: mined negatives, shared normalisation, batches of whole questions, --init."""

import json

import pytest
import torch

from odqa.modeling.losses import shared_span_loss
from odqa.reader.negatives import is_negative, load_cache, mine, MiningSettings, pool_retriever, save_cache
from odqa.reader.task import ReaderConfig, ReaderTask
from odqa.types import Hit, Passage, Question
from tests.conftest import PASSAGES, squad_file
from tests.test_cli import odqa


@pytest.fixture(scope="module")
def tok(tiny):
    from transformers import AutoTokenizer
    return AutoTokenizer.from_pretrained(str(tiny))


# ------------------------------------------------------------------ the shared loss
def test_shared_loss_with_one_window_per_question_is_cross_entropy():
    torch.manual_seed(0)
    logits = torch.randn(5, 12)
    target = torch.tensor([3, 1, 7, 11, 2])
    shared = shared_span_loss(logits, target, torch.arange(5))
    assert torch.allclose(shared, torch.nn.functional.cross_entropy(logits, target), atol=1e-6)


def test_shared_loss_normalises_over_all_windows_of_a_question_and_reaches_negatives():
    torch.manual_seed(1)
    logits = torch.randn(3, 8, requires_grad=True)
    target = torch.tensor([4, 0, 0])                  # window 0 holds the answer; 1 and 2 are negatives
    loss = shared_span_loss(logits, target, torch.tensor([0, 0, 0]))
    expected = torch.logsumexp(logits.reshape(-1), 0) - logits[0, 4]
    assert torch.allclose(loss, expected)
    loss.backward()
    assert logits.grad[1].abs().sum() > 0 and logits.grad[2].abs().sum() > 0
    assert (logits.grad[1:] > 0).all()                 # every position of a negative is pushed down
    # a window-wise loss would not see the negatives' scores against the gold one
    per_window = torch.nn.functional.cross_entropy(logits[:1], target[:1])
    assert loss > per_window


def test_shared_loss_sums_the_answer_over_overlapping_windows():
    logits = torch.zeros(2, 4)
    loss = shared_span_loss(logits, torch.tensor([1, 2]), torch.tensor([7, 7]))
    assert torch.allclose(loss, torch.log(torch.tensor(8.0)) - torch.log(torch.tensor(2.0)))


# ------------------------------------------------------------------ mining
def _q(qid, question, answer, context=""):
    return Question(qid, question, [answer], context=context)


class FixedRetriever:
    def __init__(self, passages):
        self.passages = passages

    def search(self, queries, k=10):
        return [[Hit(p, 1.0 / (r + 1), r + 1, "sparse") for r, p in enumerate(self.passages[:k])] for _ in queries]


def test_mining_excludes_the_gold_passage_passages_holding_the_answer_and_excluded_ids():
    gold = "한라산은 제주도에 있는 산이다."
    ps = [Passage("g", "", "한라산은  제주도에 있는 산이다. "),     # the gold text (other spacing)
          Passage("a", "", "백록담은 한라산 정상에 있다."),          # holds the answer text
          Passage("x", "", "지리산의 최고봉은 천왕봉이다."),          # an excluded (dev) passage
          Passage("n1", "", "김치는 한국의 전통 음식이다."),
          Passage("n2", "", "이순신은 거북선으로 왜군을 물리쳤다."),
          Passage("n3", "", "세종대왕은 훈민정음을 창제하였다.")]
    q = _q("q", "제주도에 있는 산은?", "한라산", gold)
    assert not is_negative(ps[0], q) and not is_negative(ps[1], q) and is_negative(ps[3], q)
    found = mine([q], FixedRetriever(ps), k=2, excluded={"x"})
    assert [p.id for p in found[0]] == ["n1", "n2"]


def test_mining_a_corpus_file_with_bm25_and_the_cache_round_trip(tmp_path, corpus_file):
    retriever, passages = pool_retriever(str(corpus_file), "sparse")
    q = _q("q1", "백록담이 있는 산은 어디인가?", "한라산", PASSAGES[0]["text"])
    found = mine([q], retriever, k=3)
    assert found[0] and all("한라산" not in p.text for p in found[0])
    settings = MiningSettings(str(corpus_file), "sparse", 3, 0)
    save_cache(tmp_path / "run", settings, [q], found)
    assert load_cache(tmp_path / "run", settings, [q]) == found
    assert load_cache(tmp_path / "run", MiningSettings(str(corpus_file), "sparse", 2, 0), [q]) is None
    with pytest.raises(Exception, match="sparse retrieval only"):
        pool_retriever(str(corpus_file), "hybrid")


# ------------------------------------------------------------------ batches of whole questions
def _task(tok, normalisation, batch_size=4, cap=8):
    ctx = [PASSAGES[0]["text"], "세종대왕은 조선의 제4대 임금으로 훈민정음을 창제하였다.", "이순신은 조선 중기의 무신이다."]
    train = [Question("a", "백록담이 있는 산은?", ["한라산"], context=ctx[0], answer_starts=[0]),
             Question("b", "훈민정음을 창제한 임금은?", ["세종대왕"], context=ctx[1], answer_starts=[0]),
             Question("c", "조선 중기의 무신은?", ["이순신"], context=ctx[2], answer_starts=[0])]
    negs = [[Passage("n1", "", PASSAGES[4]["text"]), Passage("n2", "", PASSAGES[1]["text"])],
            [Passage("n3", "", PASSAGES[3]["text"])], []]
    cfg = ReaderConfig(window={"max_length": 24, "stride": 8}, normalisation=normalisation, negative_passages=2,
                       max_question_windows=cap)
    return ReaderTask(tok, train, [], cfg, batch_size=batch_size, seed=0, negatives=negs)


def test_shared_batches_keep_questions_whole_and_hold_their_negatives(tok):
    task = _task(tok, "shared")
    assert task.n_negative_passages == 3 and any(task.mined)
    seen = []
    for batch in task.train_batches(0, 0):
        groups = batch["group"].tolist()
        for g in set(groups):
            assert g not in seen                        # a question never spans two batches
            seen.append(g)
            rows = [i for i, x in enumerate(groups) if x == g]
            assert any(batch["start"][i] > 0 for i in rows)
            assert len(rows) == min(len(task.groups[g]), task.cfg.max_question_windows)
        assert len(groups) <= task.batch_size or len(set(groups)) == 1
    assert sorted(seen) == [0, 1, 2]
    model_windows = {g: len(w) for g, w in enumerate(task.groups)}
    assert model_windows[0] > 1                          # gold windows and negative windows together


def test_window_mode_trains_every_mined_window_as_no_answer(tok):
    task = _task(tok, "window")
    mined = [i for i in range(len(task.win)) if task.mined[i]]
    assert mined and all(task.win.start[i] == 0 and task.win.end[i] == 0 for i in mined)
    assert set(mined) <= set(task._epoch_windows(__import__("random").Random(0)))
    for batch in task.train_batches(0, 0):
        assert "group" not in batch


def test_cap_on_windows_per_question_keeps_the_answer_window(tok):
    task = _task(tok, "shared", cap=1)
    for batch in task.train_batches(0, 0):
        assert (batch["start"] > 0).all()


def test_shared_training_loss_backpropagates(tiny, tok):
    from odqa.modeling.checkpoint import build_model
    from odqa.modeling.heads import HeadConfig
    _, model = build_model(str(tiny), "span", HeadConfig())
    task = _task(tok, "shared", batch_size=16)
    batch = next(iter(task.train_batches(0, 0)))
    loss = task.loss(model, batch)
    loss.backward()
    assert torch.isfinite(loss) and model.head.out.weight.grad.abs().sum() > 0


# ------------------------------------------------------------------ through the CLI: --init and mining
def test_init_continues_a_reader_and_mines_negatives_once(tiny, tmp_path, corpus_file):
    from odqa.api.training import ReaderTrainRequest
    from odqa.reader.train import init_reader
    from odqa.modeling.checkpoint import load_model
    train = squad_file(tmp_path / "train.json")
    common = ["--train", train, "--max-length", "48", "--stride", "16", "--batch-size", "4", "--lr", "1e-3", "--json"]
    odqa("train", "reader", *common, "--out", tmp_path / "r1", "--backbone", tiny, "--head", "cnn",
         "--max-steps", "2", cwd=tmp_path)
    # --init: backbone and head from the checkpoint (its cnn head wins over --head linear)
    cfg = ReaderTrainRequest(train_files=[train], out=tmp_path / "x", init=str(tmp_path / "r1" / "best"))
    _, model, cfg2 = init_reader(cfg)
    _, saved, _ = load_model(tmp_path / "r1" / "best", "span")
    assert cfg2.head.type == "cnn" and model.training
    for (k, a), (_, b) in zip(model.state_dict().items(), saved.state_dict().items()):
        assert torch.equal(a, b), k
    rep = json.loads(odqa("train", "reader", *common, "--out", tmp_path / "r2", "--init", tmp_path / "r1" / "best",
                          "--head", "linear", "--max-steps", "2", "--negative-passages", "2", "--pool", corpus_file,
                          "--normalisation", "shared", cwd=tmp_path).stdout)
    assert rep["head"] == "cnn" and rep["steps"] == 2
    meta = json.loads((tmp_path / "r2" / "best" / "odqa_head.json").read_text())
    assert meta["head"]["type"] == "cnn" and meta["extra"]["reader"]["normalisation"] == "shared"
    assert meta["extra"]["reader"]["mined_passages"] > 0
    cache = (tmp_path / "r2" / "negatives.jsonl").read_text().splitlines()
    assert json.loads(cache[0])["k"] == 2 and len(cache) == 1 + 9
    # negatives without a pool: one clear line
    bad = odqa("train", "reader", *common, "--out", tmp_path / "r3", "--backbone", tiny, "--max-steps", "1",
               "--negative-passages", "2", cwd=tmp_path, check=False)
    assert bad.returncode != 0 and "needs a pool" in bad.stderr and "Traceback" not in bad.stderr


# ------------------------------------------------------------------ the EM-token feature
def test_em_feature_marks_the_passage_tokens_whose_morpheme_is_in_the_question(tok):
    from odqa.reader.em_feature import em_spans
    from odqa.reader.features import make_windows
    q, ctx = "백록담이 있는 산은?", "한라산 정상에는 백록담이 있다. 김치는 음식이다."
    spans = em_spans([q], [ctx])[0]
    marked = {ctx[s:e] for s, e in spans}
    assert "백록담" in marked and "김치" not in marked and "음식" not in marked
    w = make_windows(tok, [q], [ctx], 64, 16, em=[spans])
    ids, offs = w.em_ids[0], w.offsets[0]
    assert len(ids) == len(w.input_ids[0])
    on = [ctx[o[0]:o[1]] for i, o in zip(ids, offs) if i]
    assert on and all(any(t in m or m in t for m in marked) for t in on)
    assert all(i == 0 for i, o in zip(ids, offs) if o is None)       # question and special tokens never marked
    assert any(i == 0 for i, o in zip(ids, offs) if o is not None and "김치" in ctx[o[0]:o[1]])


def test_em_embedding_starts_at_zero_and_changes_the_scores_once_trained(tiny, tok):
    from odqa.modeling.checkpoint import build_model
    from odqa.modeling.heads import HeadConfig
    from odqa.reader.inference import collate
    _, plain = build_model(str(tiny), "span", HeadConfig())
    torch.manual_seed(0)
    _, model = build_model(str(tiny), "span", HeadConfig(em_feature=True))
    model.load_state_dict({**plain.state_dict(), "head.em.weight": model.head.em.weight}, strict=True)
    model.eval(), plain.eval()
    ids = tok("한라산 백록담")["input_ids"]
    batch = collate(tok, [ids], None, [[0] + [1] * (len(ids) - 2) + [0]])
    with torch.no_grad():
        a = model(**batch)[0]
        b = plain(**{k: v for k, v in batch.items() if k != "em_ids"})[0]
        assert torch.allclose(a, b, atol=1e-5)
        model.head.em.weight[1] += torch.randn(model.config.hidden_size)     # (a constant shift LayerNorm removes)
        assert not torch.allclose(model(**batch)[0], b, atol=1e-3)


def test_a_reader_trained_with_the_em_feature_saves_loads_and_reads(tiny, tmp_path, corpus_file):
    train = squad_file(tmp_path / "train.json")
    common = ["--train", train, "--max-length", "48", "--stride", "16", "--batch-size", "4", "--lr", "1e-2", "--json"]
    odqa("train", "reader", *common, "--out", tmp_path / "r0", "--backbone", tiny, "--max-steps", "1", cwd=tmp_path)
    # --init a reader without the feature, with --em-feature: the embedding joins it, trained and saved
    odqa("train", "reader", *common, "--out", tmp_path / "r1", "--init", tmp_path / "r0" / "best", "--em-feature",
         "--max-steps", "3", cwd=tmp_path)
    best = tmp_path / "r1" / "best"
    meta = json.loads((best / "odqa_head.json").read_text())
    assert meta["head"]["em_feature"] is True
    from odqa.modeling.checkpoint import load_model
    _, model, _ = load_model(best, "span")
    assert model.head.em.weight.abs().sum() > 0                      # trained away from its zero start
    odqa("index", corpus_file, "--name", "c", "--index-dir", tmp_path / "ix", cwd=tmp_path)
    ans = json.loads(odqa("ask", "백록담이 있는 산은?", "--index", "c", "--index-dir", tmp_path / "ix",
                          "--reader", best, "--json", cwd=tmp_path).stdout)
    assert ans["answers"] and not ans["sentence_level"]
    closed = json.loads(odqa("evaluate", "--closed", "--reader", best, "--questions", train, "--json",
                             cwd=tmp_path).stdout)
    assert closed["questions"] == 9


def test_training_files_with_an_empty_question_or_a_shifted_answer_are_counted_not_fatal(tiny, tmp_path):
    from odqa.corpus import load_questions
    from odqa.errors import CorpusError
    data = {"data": [{"title": "t", "paragraphs": [{"context": "한라산은 제주도에 있는 산이다.", "qas": [
        {"id": "ok", "question": "제주도에 있는 산은?", "answers": [{"text": "한라산", "answer_start": 0}]},
        {"id": "shifted", "question": "무엇이 있나?", "answers": [{"text": "제주도", "answer_start": 6}]},
        {"id": "empty", "question": "  ", "answers": [{"text": "산", "answer_start": 12}]}]}]}]}
    f = tmp_path / "t.json"
    f.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(CorpusError, match=r"qas\[2\]: empty question"):
        load_questions(f)                                   # evaluation data: refused, named
    skipped = []
    assert [q.id for q in load_questions(f, skipped=skipped)] == ["ok", "shifted"]
    assert skipped == [f"{f}: data[0].paragraphs[0].qas[2]"]
    rep = json.loads(odqa("train", "reader", "--train", f, "--out", tmp_path / "r", "--backbone", tiny,
                          "--max-length", "48", "--stride", "16", "--max-steps", "1", "--json", cwd=tmp_path).stdout)
    assert rep["train_questions"] == 1 and rep["skipped_records"] == 2


def test_mining_an_index_keeps_the_excluded_gold_passages_out(tmp_path, corpus_file, questions_file):
    from odqa.reader.negatives import excluded_ids
    odqa("index", corpus_file, "--name", "c", "--index-dir", tmp_path / "ix", cwd=tmp_path)
    retriever, passages = pool_retriever("c", "sparse", tmp_path / "ix")
    excluded = excluded_ids([questions_file], passages)
    assert {"p1", "p2", "p3", "p4", "p6"} <= excluded and "p5" not in excluded
    q = _q("t", "제주도와 조선의 산과 임금과 김치는?", "없는답")
    found = mine([q], retriever, k=5, excluded=excluded)
    assert [p.id for p in found[0]] == ["p5"]
