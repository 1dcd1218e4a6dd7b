import json
import logging
import math

import pytest

from odqa.errors import OdqaError
from odqa.reader.ensemble import load_nbest, mismatched_questions, predictions_from, soft_vote, validate_nbest
from tests.conftest import PASSAGES
from tests.test_cli import odqa
from tests.tiny_model import TEXTS

PASSAGE = PASSAGES[0]            # 한라산은 제주도에 있는 산으로 높이는 1,947미터이다. ...


def _tokenizer(kind: str):
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
    if kind == "wordpiece":
        tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        trainer = trainers.WordPieceTrainer(vocab_size=150, special_tokens=["[UNK]"], show_progress=False)
    else:
        tok = Tokenizer(models.BPE(unk_token="[UNK]"))
        tok.pre_tokenizer = pre_tokenizers.Metaspace()
        trainer = trainers.BpeTrainer(vocab_size=120, special_tokens=["[UNK]"], show_progress=False)
    tok.normalizer = normalizers.NFKC()
    tok.train_from_iterator(TEXTS * 5 + [p["text"] for p in PASSAGES], trainer)
    return tok


def _char_span(offsets, start: int, end: int) -> tuple[int, int]:
    """Token indices covering characters [start, end)."""
    i = next(k for k, (s, e) in enumerate(offsets) if s <= start < e or (s >= start and e > s))
    j = max(k for k, (s, e) in enumerate(offsets) if s < end and e > s)
    return i, j


def _nbest(tok, logits_by_answer: dict[str, float]) -> list[dict]:
    """A reader's n-best over PASSAGE: token spans scored, mapped back to character offsets."""
    text = PASSAGE["text"]
    offsets = [(s, e) for s, e in tok.encode(text).offsets]
    rows = []
    for answer, logit in logits_by_answer.items():
        a = text.index(answer)
        i, j = _char_span(offsets, a, a + len(answer))
        s, e = offsets[i][0], offsets[j][1]
        while text[s].isspace():     # Metaspace tokens may carry the space before a word
            s += 1
        rows.append({"text": text[s:e], "passage_id": PASSAGE["id"], "start": s, "end": e, "score": logit})
    z = sum(math.exp(r["score"]) for r in rows)
    for r in rows:
        r["probability"] = math.exp(r["score"]) / z
    return sorted(rows, key=lambda r: -r["probability"])


def test_two_tokenizers_over_one_passage_vote_on_character_offsets():
    wp, bpe = _tokenizer("wordpiece"), _tokenizer("bpe")
    text = PASSAGE["text"]
    ans = "1,947미터"
    a = text.index(ans)
    toks_wp = wp.encode(text).offsets
    toks_bpe = bpe.encode(text).offsets
    assert _char_span(toks_wp, a, a + len(ans)) != _char_span(toks_bpe, a, a + len(ans))   # other token indices ...
    nb_a = {"q1": _nbest(wp, {"1,947미터": 2.0, "한라산": 1.5, "제주도": 0.1})}
    nb_b = {"q1": _nbest(bpe, {"한라산": 2.2, "1,947미터": 2.0, "백록담": 0.5})}
    span_a = next((r["start"], r["end"]) for r in nb_a["q1"] if r["text"] == "1,947미터")
    span_b = next((r["start"], r["end"]) for r in nb_b["q1"] if r["text"] == "1,947미터")
    assert span_a == span_b == (a, a + len(ans))                                # ... the same characters
    assert nb_a["q1"][0]["text"] == "1,947미터" and nb_b["q1"][0]["text"] == "한라산"

    out = soft_vote([nb_a, nb_b])
    rows = out["q1"]
    assert [r["text"] for r in rows] == ["1,947미터", "한라산", "백록담", "제주도"]   # merged, 4 distinct spans
    assert math.isclose(sum(r["probability"] for r in rows), 1.0)
    pa = {r["text"]: r["probability"] for r in nb_a["q1"]}
    pb = {r["text"]: r["probability"] for r in nb_b["q1"]}
    assert math.isclose(rows[0]["probability"], (pa["1,947미터"] + pb["1,947미터"]) / 2)
    assert math.isclose(rows[0]["score"], pa["1,947미터"] + pb["1,947미터"])
    assert set(rows[0]) == {"text", "passage_id", "start", "end", "probability", "score"}
    assert predictions_from(out) == {"q1": "1,947미터"}

    # weights decide between the two readers
    assert predictions_from(soft_vote([nb_a, nb_b], [0.1, 0.9])) == {"q1": "한라산"}
    assert predictions_from(soft_vote([nb_a, nb_b], [0.9, 0.1])) == {"q1": "1,947미터"}
    assert len(soft_vote([nb_a, nb_b], top=2)["q1"]) == 2
    with pytest.raises(OdqaError, match="2 weights for 3"):
        soft_vote([nb_a, nb_b, nb_a], [0.5, 0.5])
    with pytest.raises(OdqaError, match="positive sum"):
        soft_vote([nb_a, nb_b], [0.0, 0.0])


def _row(text, start, p, pid="p1"):
    return {"text": text, "passage_id": pid, "start": start, "end": start + len(text), "probability": p, "score": 1.0}


def test_missing_questions_get_nothing_from_that_member(caplog):
    a = {"q1": [_row("한라산", 0, 0.7), _row("제주도", 5, 0.3)], "q2": [_row("백록담", 40, 1.0)]}
    b = {"q1": [_row("한라산", 0, 0.4), _row("한라산", 0, 0.6, pid="p6")], "q3": []}
    assert mismatched_questions([a, b]) == 2
    with caplog.at_level(logging.WARNING, logger="odqa.reader.ensemble"):
        out = soft_vote([a, b])
    assert "2 questions are missing" in caplog.text
    assert list(out) == ["q1", "q2", "q3"]
    assert out["q2"] == [{**_row("백록담", 40, 1.0), "score": 1.0}] and out["q3"] == []
    q1 = {(r["passage_id"], r["start"]): r["probability"] for r in out["q1"]}
    assert q1 == pytest.approx({("p1", 0): 0.55, ("p1", 5): 0.15, ("p6", 0): 0.3})   # same text, other passage: apart
    assert predictions_from(out) == {"q1": "한라산", "q2": "백록담", "q3": ""}


def test_cli_and_bad_files(tmp_path):
    a = {"q1": [_row("한라산", 0, 0.6), _row("제주도", 5, 0.4)]}
    b = {"q1": [_row("제주도", 5, 0.9), _row("한라산", 0, 0.1)], "q2": [_row("백록담", 40, 1.0)]}
    fa, fb = tmp_path / "a.json", tmp_path / "b.json"
    fa.write_text(json.dumps(a, ensure_ascii=False), encoding="utf-8")
    fb.write_text(json.dumps(b, ensure_ascii=False), encoding="utf-8")
    out, pred = tmp_path / "ens.json", tmp_path / "pred.json"
    rep = json.loads(odqa("ensemble", fa, fb, "--out", out, "--weights", "0.9,0.1", "--predictions", pred,
                          "--json", cwd=tmp_path).stdout)
    assert rep["questions"] == 2 and rep["mismatched_questions"] == 1 and rep["weights"] == [0.9, 0.1]
    assert [m["questions"] for m in rep["members"]] == [1, 2]
    ens = load_nbest(out)
    assert ens["q1"][0]["text"] == "한라산" and ens["q1"][0]["probability"] == pytest.approx(0.55)
    assert json.loads(pred.read_text(encoding="utf-8")) == {"q1": "한라산", "q2": "백록담"}
    text = odqa("ensemble", fa, fb, "--out", out, cwd=tmp_path)
    assert "1 questions are missing" in text.stderr and "2 questions from 2 n-best files" in text.stdout
    assert "Example: odqa ensemble" in odqa("ensemble", "--help", cwd=tmp_path).stdout

    def error(*files, extra=()):
        p = odqa("ensemble", *files, "--out", out, *extra, cwd=tmp_path, check=False)
        assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1, p.stderr
        return p.stderr.strip()

    assert error(fa, tmp_path / "nope.json") == f"odqa: error: {tmp_path / 'nope.json'}: n-best file not found"
    bad = tmp_path / "bad.json"
    bad.write_text('{"q1": [', encoding="utf-8")
    assert f"{bad}:1: malformed JSON" in error(fa, bad)
    broken = {"q1": [_row("한라산", 0, 0.6)], "q7": [{k: v for k, v in _row("x", 0, 1.0).items() if k != "start"}]}
    bad.write_text(json.dumps(broken), encoding="utf-8")
    assert error(fa, bad) == f"odqa: error: {bad}: question q7: answer 0: missing field 'start'"
    assert "2 weights for 3" in error(fa, fb, fa, extra=("--weights", "0.5,0.5"))
    with pytest.raises(OdqaError, match="question q1: answer 0: field 'probability' has type str"):
        validate_nbest({"q1": [{**_row("x", 0, 1.0), "probability": "0.5"}]})
