"""Calibrated abstention: the reader's temperature, "not sure" below `min_probability`, and the evaluation
report of how far the answer probability can be trusted."""

import json

import pytest

import odqa
from odqa.errors import ModelError
from odqa.evaluation.answers import span_error
from odqa.reader.postprocess import temper
from odqa.types import Answer
from tests.conftest import PASSAGES, QUESTIONS, write_jsonl
from tests.tiny_model import make_reader_checkpoint


@pytest.fixture(scope="module")
def reader_ckpt(tiny, tmp_path_factory):
    return make_reader_checkpoint(tiny, tmp_path_factory.mktemp("reader") / "best", 48, 16)


@pytest.fixture(scope="module")
def held(tmp_path_factory):
    """24 questions with their passages (the conftest questions, repeated under other ids)."""
    by_id = {p["id"]: p for p in PASSAGES}
    paras = []
    for rep in range(6):
        for q in QUESTIONS[:4]:
            ctx = by_id[q["gold_ids"][0]]["text"]
            start = ctx.find(q["answers"][0])
            paras.append({"context": ctx, "qas": [{"id": f"{q['id']}-{rep}", "question": q["question"],
                                                   "answers": [{"text": q["answers"][0], "answer_start": start}]}]})
    path = tmp_path_factory.mktemp("held") / "held.json"
    path.write_text(json.dumps({"data": [{"title": "t", "paragraphs": paras}]}, ensure_ascii=False), encoding="utf-8")
    return path


def _answers(probs):
    return [Answer(f"a{i}", "p", i, i + 1, 0.0, p) for i, p in enumerate(probs)]


def test_temperature_keeps_the_order_and_flattens_or_sharpens():
    spans = _answers([0.7, 0.2, 0.1])
    flat = temper(3.0)(spans, {})
    sharp = temper(0.5)(spans, {})
    for out in (flat, sharp):
        assert [a.text for a in out] == ["a0", "a1", "a2"]
        assert sum(a.probability for a in out) == pytest.approx(1.0)
    assert flat[0].probability < 0.7 < sharp[0].probability
    assert temper(1.0)(spans, {}) == spans


def test_span_errors_say_how_a_wrong_span_misses():
    assert span_error("백록", ["백록담"]) == "inside_gold"
    assert span_error("백록담이라는 화구호", ["백록담"]) == "contains_gold"
    assert span_error("담이라", ["백록담"]) == "overlap"
    assert span_error("천왕봉", ["백록담"]) == "disjoint"


def test_the_reader_applies_its_calibration_file_and_refuses_a_damaged_one(reader_ckpt, tmp_path):
    import shutil
    from odqa.reader.reader import Reader
    hits = odqa.Hit(odqa.Passage("p1", "", PASSAGES[0]["text"]), 1.0, 1)
    plain = Reader(reader_ckpt, retrieval_weight=0.0).read("백록담이 있는 산은?", [hits])
    ck = tmp_path / "ck"
    shutil.copytree(reader_ckpt, ck)
    (ck / "calibration.json").write_text(json.dumps({"temperature": 4.0}))
    warm = Reader(ck, retrieval_weight=0.0)
    assert warm.temperature == 4.0
    flat = warm.read("백록담이 있는 산은?", [hits])
    assert [a.text for a in flat] == [a.text for a in plain] and flat[0].probability < plain[0].probability
    (ck / "calibration.json").write_text("{not json")
    with pytest.raises(ModelError, match="calibration.json: unreadable calibration"):
        Reader(ck, retrieval_weight=0.0)


def test_below_min_probability_the_answer_is_marked_not_sure_and_kept_as_the_guess(reader_ckpt, held):
    sure = odqa.Pipeline.from_reader(reader_ckpt)
    unsure = odqa.Pipeline.from_reader(reader_ckpt, min_probability=0.999)
    hits = [odqa.Hit(odqa.Passage("p1", "", PASSAGES[0]["text"]), 1.0, 1)]
    a = sure.read(["백록담이 있는 산은?"], [hits])[0]
    assert a and a[0].probability < 0.999
    rep = odqa.evaluate_answers(unsure, held, closed=True)
    m = rep.metrics
    assert m["abstention"]["answered"] == 0 and m["abstention"]["coverage"] == 0.0
    assert set(m["calibration"]) == {"ece", "auroc", "mean_probability", "em_at_coverage"}
    assert sum(m["span_errors"].values()) == m["stages"]["span"] + m["stages"]["passage"]
    assert all(v == "" for v in odqa.predict(unsure, held, closed=True).values())
    assert any(v for v in odqa.predict(sure, held, closed=True).values())
    with pytest.raises(odqa.ConfigError, match="min_probability"):
        odqa.Pipeline.from_reader(reader_ckpt, min_probability=1.0)


def test_ask_says_not_sure_in_text_and_json(reader_ckpt, tiny, tmp_path, cli):
    corpus = write_jsonl(tmp_path / "corpus.jsonl", PASSAGES)
    code, _, err = cli("index", corpus, "--name", "c", "--index-dir", tmp_path / "ix", "--quiet")
    assert code == 0, err
    base = ("ask", "백록담이 있는 산은 어디인가?", "--index", "c", "--index-dir", tmp_path / "ix", "--reader", reader_ckpt)
    code, out, err = cli(*base, "--min-probability", "0.999", "--json")
    r = json.loads(out)
    assert code == 0 and r["abstained"] is True and r["answers"]
    code, out, _ = cli(*base, "--min-probability", "0.999")
    assert out.startswith("확실하지 않음") and "best guess" in out
    code, out, _ = cli(*base, "--json")
    assert json.loads(out)["abstained"] is False


def test_calibrate_reader_writes_the_temperature_the_reader_then_applies(reader_ckpt, held, tmp_path, cli,
                                                                        monkeypatch):
    import shutil
    ck = tmp_path / "ck"
    shutil.copytree(reader_ckpt, ck)
    code, out, err = cli("train", "calibration", "--reader", ck, "--questions", held, "--json")
    assert code == 0, err
    res = json.loads(out)
    saved = json.loads((ck / "calibration.json").read_text())
    assert saved["temperature"] == res["temperature"] and 0.05 <= res["temperature"] <= 20.0
    assert saved["questions"] == 24 and saved["setting"]["closed"] is True
    # a reader already calibrated is fitted on top of its temperature: the two compose into one
    monkeypatch.setattr("odqa.api.calibration.fit_temperature", lambda f, correct: 2.0)
    (ck / "calibration.json").write_text(json.dumps({"temperature": 3.0}))
    assert odqa.calibrate_reader(str(ck), held).temperature == pytest.approx(6.0)
    code, _, err = cli("train", "calibration", "--reader", ck, "--questions", held, "--index", "nope",
                       "--index-dir", tmp_path)
    assert code != 0 and "\n" not in err
