import json

import numpy as np
import pytest
import torch

from odqa.errors import OdqaError
from odqa.metrics import em_f1, exact_match, f1, normalize_answer
from odqa.modeling.checkpoint import build_model, load_model, save_model
from odqa.modeling.heads import ClassificationHead, HeadConfig, SpanHead
from odqa.reader.features import SkipReport, make_windows, training_examples
from odqa.reader.postprocess import (default_postprocessor, merge, mix_retrieval, particle_step, probabilities,
                                     window_spans)
from odqa.types import Answer, Question
from tests.conftest import PASSAGES, squad_file, write_jsonl
from tests.test_cli import odqa
from tests.tiny_model import make_tiny_backbone


@pytest.fixture(scope="module")
def tok(tiny):
    from transformers import AutoTokenizer
    return AutoTokenizer.from_pretrained(str(tiny))


# ------------------------------------------------------------------ features
def test_answer_maps_to_tokens_whose_offsets_give_the_answer(tok):
    ctx = PASSAGES[2]["text"]
    start = ctx.find("훈민정음")
    w = make_windows(tok, ["누가 창제했나"], [ctx], max_length=64, stride=16, answers=[(start, "훈민정음")])
    assert len(w) == 1 and w.start[0] > 0
    s, e = w.offsets[0][w.start[0]][0], w.offsets[0][w.end[0]][1]
    assert s == start and ctx[s:e].startswith("훈민정음")   # a word piece may carry the particle along
    assert all(o is None for o in w.offsets[0][:3])          # CLS and question tokens carry no context offsets


def test_long_context_gives_overlapping_windows_and_no_answer_labels(tok):
    ctx = " ".join(p["text"] for p in PASSAGES[:5])
    start = ctx.find("김치는")
    w = make_windows(tok, ["무엇인가"], [ctx], max_length=32, stride=8, answers=[(start, "김치")])
    assert len(w) > 3 and set(w.example) == {0}
    labelled = [i for i in range(len(w)) if w.start[i] > 0]
    assert labelled and any(w.start[i] == 0 and w.end[i] == 0 for i in range(len(w)))
    for i in labelled:
        assert w.offsets[i][w.start[i]][0] == start and ctx[start:w.offsets[i][w.end[i]][1]].startswith("김치")
    firsts = [next(o for o in offs if o) for offs in w.offsets]
    lasts = [next(o for o in reversed(offs) if o) for offs in w.offsets]
    assert all(firsts[i + 1][0] < lasts[i][1] for i in range(len(w) - 1))   # consecutive windows overlap


def test_answer_not_at_its_offset_is_reported_and_skipped():
    good = Question("a", "q", ["한라산"], ["p"], "한라산은 산이다", [0])
    bad = Question("b", "q", ["지리산"], ["p"], "한라산은 산이다", [0])
    report = SkipReport()
    qs, ctxs, ans = training_examples([good, bad], report)
    assert qs == ["q"] and ans == [(0, "한라산")]
    assert report.skipped == 1 and "question b" in report.records[0]


# ------------------------------------------------------------------ decoding
def test_window_spans_best_valid_span_and_limits():
    offsets = [None, None, (0, 2), (3, 5), (6, 8), None]
    start = np.array([9.0, 0, 1, 5, 0, 9])
    end = np.array([9.0, 0, 0, 1, 4, 9])
    spans = window_spans(start, end, offsets, n_best=5, max_answer_tokens=30)
    assert spans[0][1:] == (3, 8) and spans[0][0] == pytest.approx(9.0)
    assert all(s <= e for _, s, e in spans)
    short = window_spans(start, end, offsets, n_best=5, max_answer_tokens=1)
    assert all((s, e) in [(0, 2), (3, 5), (6, 8)] for _, s, e in short)


def test_postprocess_merges_mixes_and_normalises():
    text = "한라산은 높다"
    spans = [Answer("한라산", "p1", 0, 3, 2.0, retrieval_score=1.0), Answer("한라산", "p1", 0, 3, 5.0, retrieval_score=1.0),
             Answer("높다", "p2", 5, 7, 4.5, retrieval_score=0.0)]
    merged = merge(spans, {})
    assert len(merged) == 2 and merged[0].score == 5.0
    probs = probabilities(merged, {})
    assert sum(s.probability for s in probs) == pytest.approx(1.0)
    mixed = mix_retrieval(2.0)(list(reversed(merged)), {})
    assert mixed[0].passage_id == "p1" and mixed[0].score == pytest.approx(7.0)

    class Rules:
        def apply(self, ctx, s, e):
            return (s, e - 1) if ctx[e - 1] == "은" else (s, e)
    post = default_postprocessor(5, extra=[particle_step(Rules())])
    out = post([Answer("한라산은", "p1", 0, 4, 3.0), Answer("한라산", "p1", 0, 3, 3.0)], {"p1": text})
    assert [(s.text, round(s.probability, 3)) for s in out] == [("한라산", 1.0)]


def test_korquad_em_f1():
    assert normalize_answer(" 《한라산》 ") == "한라산"
    assert exact_match("(한라산)", ["한라산"]) == 1.0 and exact_match("한라산은", ["한라산"]) == 0.0
    assert f1("한라산은", ["한라산"]) == pytest.approx(2 * 0.75 * 1.0 / 1.75)
    assert f1("백두산", ["한라산", "백두산"]) == 1.0
    m = em_f1({"a": "한라산", "b": "x"}, {"a": ["한라산"], "b": ["세종"], "c": ["없음"]})
    assert m["count"] == 3 and m["em"] == pytest.approx(100 / 3)


# ------------------------------------------------------------------ heads and checkpoints
@pytest.mark.parametrize("kind", ["linear", "cnn", "lstm"])
def test_span_heads_ignore_padding(kind):
    torch.manual_seed(0)
    head = SpanHead(16, HeadConfig(type=kind, dropout=0.0)).eval()
    x = torch.randn(1, 5, 16)
    padded = torch.cat([x, torch.randn(1, 3, 16)], dim=1)
    s1, e1 = head(x, torch.ones(1, 5, dtype=torch.long))
    s2, e2 = head(padded, torch.tensor([[1] * 5 + [0] * 3]))
    assert torch.allclose(s1, s2[:, :5], atol=1e-5) and torch.allclose(e1, e2[:, :5], atol=1e-5)
    assert (s2[:, 5:] < -1e3).all()


def test_head_config_rejects_unknown_values():
    with pytest.raises(OdqaError, match="head type"):
        HeadConfig(type="gru")
    with pytest.raises(OdqaError, match="odd"):
        HeadConfig(type="cnn", kernels=[2])
    with pytest.raises(OdqaError, match="unknown field"):
        HeadConfig.from_dict({"type": "linear", "width": 3})


def test_entity_start_pooling_reads_the_given_positions():
    head = ClassificationHead(4, 3, HeadConfig(dropout=0.0), pooling="entity_start").eval()
    x = torch.arange(2 * 6 * 4, dtype=torch.float).reshape(2, 6, 4)
    pooled = head.pool(x, torch.ones(2, 6), torch.tensor([[1, 4], [2, 3]]))
    assert torch.equal(pooled[0], torch.cat([x[0, 1], x[0, 4]])) and torch.equal(pooled[1], torch.cat([x[1, 2], x[1, 3]]))


@pytest.mark.parametrize("kind", ["linear", "cnn", "lstm"])
def test_checkpoint_round_trip_keeps_outputs(tiny, tmp_path, kind):
    tok, model = build_model(str(tiny), "span", HeadConfig(type=kind))
    model.eval()
    enc = tok(["한라산은 어디"], ["한라산은 제주도에 있다"], return_tensors="pt")
    before = model(**enc)
    save_model(model, tok, tmp_path / "ck", extra={"reader": {"window": {}}})
    tok2, model2, meta = load_model(tmp_path / "ck", "span")
    after = model2(**tok2(["한라산은 어디"], ["한라산은 제주도에 있다"], return_tensors="pt"))
    assert meta["head"]["type"] == kind
    assert torch.allclose(before[0], after[0], atol=1e-5) and torch.allclose(before[1], after[1], atol=1e-5)
    with pytest.raises(OdqaError, match="expected 'classification'"):
        load_model(tmp_path / "ck", "classification")


def test_checkpoint_with_another_tokenizer_is_refused(tiny, tmp_path):
    tok, model = build_model(str(tiny), "span", HeadConfig())
    save_model(model, tok, tmp_path / "ck")
    other = make_tiny_backbone(tmp_path / "other")
    for f in ("tokenizer.json", "tokenizer_config.json"):
        (tmp_path / "ck" / f).write_bytes((other / f).read_bytes())
    meta = json.loads((tmp_path / "ck" / "odqa_head.json").read_text())
    meta["tokenizer"] = "0" * 16
    (tmp_path / "ck" / "odqa_head.json").write_text(json.dumps(meta))
    from odqa.checksums import write_checksums
    write_checksums(tmp_path / "ck")      # a consistent folder (else its checksums catch the swap first)
    with pytest.raises(OdqaError, match="tokenizer does not match"):
        load_model(tmp_path / "ck", "span")


# ------------------------------------------------------------------ end to end through the CLI
def test_train_ask_evaluate_end_to_end(tiny, tmp_path, corpus_file):
    train = squad_file(tmp_path / "train.json")
    out = tmp_path / "run"
    rep = json.loads(odqa("train", "reader", "--train", train, "--dev", train, "--out", out, "--backbone", tiny,
                          "--max-steps", "12", "--batch-size", "4", "--eval-every", "6", "--max-length", "48",
                          "--stride", "16", "--lr", "3e-3", "--head", "cnn", "--json", cwd=tmp_path).stdout)
    assert rep["steps"] == 12 and rep["train_questions"] == 9 and rep["metric"] == "f1"
    history = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    best = out / "best"
    assert json.loads((best / "odqa_head.json").read_text())["head"]["type"] == "cnn"

    odqa("index", corpus_file, "--name", "c", "--index-dir", tmp_path / "ix", cwd=tmp_path)
    ans = json.loads(odqa("ask", "백록담이 있는 산은?", "--index", "c", "--index-dir", tmp_path / "ix",
                          "--reader", best, "--json", cwd=tmp_path).stdout)
    assert ans["answers"] and not ans["sentence_level"]
    a = ans["answers"][0]
    text = next(p["text"] for p in PASSAGES if p["id"] == a["passage_id"])
    assert text[a["start"]:a["end"]] == a["text"] and 0 < a["probability"] <= 1

    none = odqa("ask", "전혀 관계없는 질문 xyz", "--index", "c", "--index-dir", tmp_path / "ix", "--reader", best,
                cwd=tmp_path)
    assert "no answer found" in none.stdout

    qs = write_jsonl(tmp_path / "q.jsonl", [{"id": "q1", "question": "백록담이 있는 산은?", "answers": ["한라산"],
                                            "gold_ids": ["p1"]}])
    ev = json.loads(odqa("evaluate", "--index", "c", "--index-dir", tmp_path / "ix", "--reader", best,
                         "--questions", qs, "--out", tmp_path / "ev", "--json", cwd=tmp_path).stdout)
    assert ev["questions"] == 1 and 0 <= ev["em"] <= 100 and ev["retrieval"]["recall@1"] == 1.0
    preds = json.loads((tmp_path / "ev" / "predictions.json").read_text())
    nbest = json.loads((tmp_path / "ev" / "nbest.json").read_text())
    assert set(preds) == {"q1"} and preds["q1"] == nbest["q1"][0]["text"]
    closed = json.loads(odqa("evaluate", "--closed", "--reader", best, "--questions", train, "--json",
                             cwd=tmp_path).stdout)
    assert closed["questions"] == 9 and closed["setting"]["closed"]

    learned = json.loads(odqa("train", "particles", "--reader", best, "--train", train, "--json", cwd=tmp_path).stdout)
    assert learned["examples"] == 9 and (best / "particles.json").exists()
    assert learned["train_em_after"] >= learned["train_em_before"]
    stripped = json.loads(odqa("evaluate", "--closed", "--reader", best, "--reader", best, "--particles", "auto",
                               "--questions", train, "--json", cwd=tmp_path).stdout)
    assert stripped["setting"]["particles"] == "auto" and len(stripped["setting"]["readers"]) == 2
    assert stripped["scored"] == 9


def test_ask_without_reader_answers_with_a_sentence(tiny, tmp_path, corpus_file):
    odqa("index", corpus_file, "--name", "d", "--index-dir", tmp_path / "ix", "--dense", "--encoder", tiny,
         cwd=tmp_path)
    ans = json.loads(odqa("ask", "백록담이 있는 산은?", "--index", "d", "--index-dir", tmp_path / "ix", "--json",
                          "--reader", "none", cwd=tmp_path).stdout)
    assert ans["sentence_level"] and ans["mode"] == "hybrid"
    a = ans["answers"][0]
    text = next(p["text"] for p in PASSAGES if p["id"] == a["passage_id"])
    assert text[a["start"]:a["end"]] == a["text"] and a["text"].strip()


def test_training_examples_are_read_as_the_reader_reads_them_normalised():
    import unicodedata
    ctx = unicodedata.normalize("NFD", "한라산의 높이는 １，９４７ m이다")
    answer = unicodedata.normalize("NFD", "１，９４７ m")
    q = Question("a", unicodedata.normalize("NFD", "한라산의 높이는?"), [answer], ["p"], ctx, [ctx.index(answer)])
    qs, ctxs, ans = training_examples([q], SkipReport())
    assert qs == ["한라산의 높이는?"] and ctxs == ["한라산의 높이는 1,947 m이다"]
    start, text = ans[0]
    assert text == "1,947 m" and ctxs[0][start:start + len(text)] == text
    plain = Question("b", "q", ["산"], ["p"], "한라산은 산이다", [5])
    assert training_examples([plain], SkipReport())[2] == [(5, "산")]
