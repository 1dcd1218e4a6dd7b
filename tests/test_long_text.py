"""Long texts are analysed in pieces of bounded length (time linear in length), offsets kept."""

import pytest

from odqa.text import morphs, pieces
from odqa.text.analyzers import make_analyzer
from odqa.text.morphs import Morph, morphemes

SENT = "세종대왕은 1443년에 훈민정음을 창제하였다. 한라산은 제주도에 있는 산이다! "


def long_text(chars: int) -> str:
    return (SENT * (chars // len(SENT) + 1))[:chars]


def test_spans_cover_the_text_in_bounded_pieces_cut_at_sentence_ends():
    text = long_text(50_000)
    sp = pieces.spans(text, 2000)
    assert sp[0][0] == 0 and sp[-1][1] == len(text)
    assert all(a[1] == b[0] for a, b in zip(sp, sp[1:]))                     # contiguous
    assert all(0 < e - s <= 2000 for s, e in sp)
    assert all(text[e - 2:e] in (". ", "! ") for _, e in sp[:-1])             # at sentence ends
    nospace = "가" * 5000
    assert pieces.spans(nospace, 2000) == [(0, 2000), (2000, 4000), (4000, 5000)]
    assert pieces.spans("짧다", 2000) == [(0, 2)]


class RecordingTagger:
    """The real MeCab tagger, recording the length of every text it is given."""

    def __init__(self, tagger):
        self.tagger, self.lengths = tagger, []

    def parse(self, text):
        self.lengths.append(len(text))
        return self.tagger.parse(text)

    def pos(self, text):
        self.lengths.append(len(text))
        return self.tagger.pos(text)


@pytest.fixture
def recording(monkeypatch):
    from odqa.text import analyzers
    rec = RecordingTagger(analyzers.mecab_tagger())
    monkeypatch.setattr(analyzers, "mecab_tagger", lambda: rec)
    monkeypatch.setattr(morphs, "mecab_tagger", lambda: rec)
    return rec


def test_morphemes_of_a_long_text_come_from_bounded_pieces_with_shifted_offsets(recording):
    text = long_text(200_000)
    got = morphemes([text])[0]
    assert recording.lengths and max(recording.lengths) <= pieces.PIECE_CHARS
    expected = [Morph(m.start + s, m.end + s, m.tag, m.form)
                for s, e in pieces.spans(text) for m in morphs._from_mecab(text[s:e])]
    assert got == expected
    assert all(0 <= m.start < m.end <= len(text) and text[m.start:m.end] == m.form for m in got)
    assert all(a.end <= b.start for a, b in zip(got, got[1:]))                # in order, not overlapping


def test_kiwi_morphemes_of_a_long_text_keep_offsets_inside_and_in_order():
    text = long_text(20_000)
    got = morphemes([text], "kiwi")[0]
    assert got and all(0 <= m.start < m.end <= len(text) and text[m.start:m.end] == m.form for m in got)
    assert all(a.end <= b.start for a, b in zip(got, got[1:]))
    assert got[-1].end > len(text) - 20                                       # the last piece was analysed


def test_index_terms_of_a_long_text_are_its_pieces_terms_and_progress_moves(recording):
    an = make_analyzer("mecab", workers=1)
    text = long_text(200_000)
    steps = []
    terms = an.tokenize([text, "한라산"], progress=steps.append)
    assert max(recording.lengths) <= pieces.PIECE_CHARS
    assert terms[0] == [t for s, e in pieces.spans(text) for t in an(text[s:e])] and terms[1] == an("한라산")
    assert len(steps) > 1 and 0 < steps[0] < 1 and sum(steps) == pytest.approx(2)   # moves within the long text
    short = []
    an.tokenize(["한라산", "지리산"], progress=short.append)
    assert short == [2] and isinstance(short[0], int)                         # whole texts count as ints


def test_kiwi_analyzer_reads_a_long_text_in_pieces():
    an = make_analyzer("kiwi", workers=1)
    text = long_text(30_000)
    assert an.tokenize([text])[0] == [t for s, e in pieces.spans(text) for t in an(text[s:e])]


def test_token_prefix_keeps_the_tokens_that_are_used(tiny):
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(str(tiny))
    text = long_text(200_000)
    calls = []

    def count(s):
        calls.append(len(s))
        return len(tok(s, add_special_tokens=False)["input_ids"])
    cut = pieces.token_prefix(text, 64, count)
    assert text.startswith(cut) and len(cut) < 5000 and max(calls) < 5000
    full = tok(text[:8000], add_special_tokens=False)["input_ids"]
    assert tok(cut, add_special_tokens=False)["input_ids"][:64] == full[:64]
    assert pieces.token_prefix("짧은 질문", 64, count) == "짧은 질문"


def test_dense_encoder_tokenises_a_prefix_of_a_long_passage_with_the_same_ids(tiny):
    from odqa.retrieval.dense import DenseEncoder
    enc = DenseEncoder(str(tiny), max_length=32)
    text = long_text(500_000)
    seen = []
    real = enc.tokenizer.__class__.__call__

    def spy(self, texts, *a, **kw):
        seen.extend(len(t) for t in ([texts] if isinstance(texts, str) else texts))
        return real(self, texts, *a, **kw)
    full = enc.tokenizer(text[:5000], add_special_tokens=True)["input_ids"]
    type(enc.tokenizer).__call__ = spy
    try:
        ids = enc._ids([text, "한라산"], "passage")
    finally:
        type(enc.tokenizer).__call__ = real
    assert max(seen) < 5000                                    # the 500k-character text was never tokenised whole
    assert ids[0] == full[:31] + full[-1:] and len(ids[0]) == 32
    assert ids[1] == enc.tokenizer("한라산")["input_ids"]
