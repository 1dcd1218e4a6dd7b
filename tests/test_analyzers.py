import pytest

from odqa.errors import OdqaError
from odqa.text.analyzers import make_analyzer

SENT = "세종대왕은 1443년에 훈민정음을 창제하였다."


@pytest.mark.parametrize("name", ["mecab", "kiwi"])
def test_morpheme_analyzers_keep_content_drop_particles(name):
    terms = make_analyzer(name, workers=1)(SENT)
    assert ("훈민정음" in terms or {"훈민", "정음"} <= set(terms)) and "1443" in terms   # mecab: parts by default
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
    nouns = make_analyzer("mecab", pos=["NN"], decompound="none")(SENT)
    assert "훈민정음" in nouns and "창제" in nouns and "1443" not in nouns


def test_whitespace_and_ngrams():
    assert make_analyzer("whitespace")("한라산, 제주도!") == ["한라산", "제주도"]
    assert make_analyzer("char-ngram")("한라산 섬") == ["한라", "라산", "섬"]


def test_unknown_analyzer():
    with pytest.raises(OdqaError, match="unknown analyzer 'foo'"):
        make_analyzer("foo")


COMPOUNDS = "대한민국의 국립중앙박물관에 갔었다"


def test_mecab_decompound_modes_index_compound_parts():
    none, mixed, discard = (make_analyzer("mecab", workers=1, decompound=m)(COMPOUNDS)
                            for m in ("none", "mixed", "discard"))
    assert "대한민국" in none and "대한" not in none and "박물" not in none
    for part in ("대한", "민국", "박물", "관", "가"):            # 박물관 = 박물 + 관, 갔었 = 가 + 았었 (EP dropped)
        assert part in mixed and part in discard
    assert "대한민국" in mixed and "박물관" in mixed and "대한민국" not in discard and "박물관" not in discard
    assert set(none) <= set(mixed) and set(discard) <= set(mixed)
    assert "았었" not in mixed                                  # each part is kept by its own tag
    assert "중앙" in none and "중앙" in discard                 # a word without parts: whole in every mode
    assert make_analyzer("mecab", workers=1)(COMPOUNDS) == discard   # the default (chosen on train questions)


def test_decompound_is_in_the_spec_and_checked():
    assert make_analyzer("mecab", decompound="mixed").spec()["decompound"] == "mixed"
    assert make_analyzer("mecab").spec()["decompound"] == "discard"
    assert "decompound" not in make_analyzer("whitespace").spec()
    assert make_analyzer("kiwi", decompound="none").name == "kiwi"
    with pytest.raises(OdqaError, match="decompound 'mixed' needs the mecab analyzer"):
        make_analyzer("kiwi", decompound="mixed")
    with pytest.raises(OdqaError, match="unknown decompound mode 'split'"):
        make_analyzer("mecab", decompound="split")


@pytest.mark.parametrize("mode", ["mixed", "discard"])
def test_decompound_batches_pool_and_long_texts_agree(mode, monkeypatch):
    an = make_analyzer("mecab", workers=2, decompound=mode)
    texts = [COMPOUNDS, "", "한국어학 쉼표, 했다", f"{COMPOUNDS} " * 400] * 3   # the last one is cut in pieces
    serial = an.tokenize(texts)
    assert serial == [an(t) for t in texts]
    monkeypatch.setattr(type(an), "parallel_min", 2)
    assert an.tokenize(texts) == serial
    assert serial[3].count("대한") == 400


def test_mecab_features_read_from_the_lattice_match_parse():
    import mecab

    from odqa.text.analyzers import mecab_features
    text = "아버지가방에들어가신다 1,000원 \"a,b\" ㅋㅋ 😀 대한민국"
    assert mecab_features(text) == [(m.surface, str(m.feature)) for m in mecab.MeCab().parse(text)]
