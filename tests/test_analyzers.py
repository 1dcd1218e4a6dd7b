import pytest

from odqa.errors import OdqaError
from odqa.text.analyzers import make_analyzer

SENT = "세종대왕은 1443년에 훈민정음을 창제하였다."


@pytest.mark.parametrize("name", ["mecab", "kiwi"])
def test_morpheme_analyzers_keep_content_drop_particles(name):
    terms = make_analyzer(name, workers=1)(SENT)
    assert "훈민정음" in terms and "1443" in terms
    assert "은" not in terms and "을" not in terms and "에" not in terms


@pytest.mark.parametrize("name", ["mecab", "kiwi", "whitespace", "char-ngram"])
def test_batches_match_single_calls(name):
    an = make_analyzer(name, workers=2)
    texts = [SENT, "제주도의 한라산", "", "Apple과 삼성전자"] * 3
    assert an.tokenize(texts) == [an(t) for t in texts]


def test_mecab_process_pool_same_as_serial(monkeypatch):
    an = make_analyzer("mecab", workers=2)
    texts = [f"{i}번째 문장에서 한라산과 지리산을 비교한다." for i in range(50)]
    serial = an.tokenize(texts)
    monkeypatch.setattr(type(an), "parallel_min", 10)
    assert an.tokenize(texts) == serial


def test_pos_filter_is_configurable():
    nouns = make_analyzer("mecab", pos=["NN"])(SENT)
    assert "훈민정음" in nouns and "창제" in nouns and "1443" not in nouns


def test_whitespace_and_ngrams():
    assert make_analyzer("whitespace")("한라산, 제주도!") == ["한라산", "제주도"]
    assert make_analyzer("char-ngram")("한라산 섬") == ["한라", "라산", "섬"]


def test_unknown_analyzer():
    with pytest.raises(OdqaError, match="unknown analyzer 'foo'"):
        make_analyzer("foo")
