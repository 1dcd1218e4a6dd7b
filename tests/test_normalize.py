"""One text normalisation for matching: the demo corpus and questions in NFC, NFD, full-width and compatibility
jamo retrieve and answer alike, and answers point into the stored original text."""

import json
import unicodedata

import pytest

import odqa
from odqa.api.demo import demo_file
from odqa.api.indexes import build_index, evaluate_retrieval, load_index
from odqa.corpus import load_questions
from odqa.text.normalize import NORMALIZATION, _TO_COMPAT, normalize, normalize_with_map
from odqa.types import Question

FULL = {chr(c): chr(c + 0xFEE0) for c in range(0x21, 0x7F)}     # ASCII -> full-width forms


def nfd(t: str) -> str:
    return unicodedata.normalize("NFD", t)


def full_width(t: str) -> str:
    return "".join(FULL.get(c, c) for c in t).replace(" ", "\u3000")


def compat_jamo(t: str) -> str:
    """Each syllable spelt with compatibility jamo (한 -> ㅎㅏㄴ), spaces as no-break spaces plus a zero-width one."""
    return "".join(_TO_COMPAT.get(c, c) for c in nfd(t)).replace(" ", "\u00a0\u200b")


VARIANTS = {"nfc": lambda t: t, "nfd": nfd, "fullwidth": full_width, "compat": compat_jamo}


def test_the_rules():
    assert normalize(nfd("한라산")) == "한라산" == normalize(compat_jamo("한라산"))
    assert normalize("ＫＴＸ １９４７") == "KTX 1947"
    assert normalize("a\u00a0b\u200bc\u3000d") == "a bc d"
    assert normalize("ㄱ자") == "ㄱ자" == normalize(nfd("ㄱ") + "자")      # a lone jamo: its compatibility form
    assert normalize("ㅋㅋㅋ") == "ㅋㅋㅋ"
    assert normalize("plain ASCII") == "plain ASCII"


@pytest.mark.parametrize("variant", VARIANTS)
def test_offsets_map_back_to_the_original(variant):
    original = VARIANTS[variant]("한라산은 높이는 1,947 m이며 백록담이 있다.")
    view = normalize_with_map(original)
    assert view.text == "한라산은 높이는 1,947 m이며 백록담이 있다."
    for word in ("한라산", "1,947 m", "백록담"):
        i = view.text.index(word)
        s, e = view.to_original(i, i + len(word))
        assert normalize(original[s:e]) == word


@pytest.fixture(scope="module")
def variants(tmp_path_factory):
    """The demo corpus indexed once per variant (sparse), and the demo questions in every variant."""
    root = tmp_path_factory.mktemp("norm")
    rows = [json.loads(line) for line in demo_file("demo_corpus.jsonl").read_text(encoding="utf-8").splitlines()]
    for name, f in VARIANTS.items():
        path = root / f"{name}.jsonl"
        path.write_text("".join(json.dumps({**r, "title": f(r["title"]), "text": f(r["text"])}, ensure_ascii=False)
                                + "\n" for r in rows), encoding="utf-8")
        build_index(path, name, None, index_dir=root, quiet=True)
    questions = load_questions(demo_file("demo_questions.jsonl"))
    return root, questions


def _questions(questions, f):
    return [Question(q.id, f(q.question), q.answers, q.gold_ids) for q in questions]


def _top(idx, questions):
    return [h[0].passage.id if h else None for h in idx.sparse.search([q.question for q in questions], 1)]


def test_every_corpus_and_question_encoding_retrieves_as_nfc(variants):
    root, questions = variants
    base = evaluate_retrieval(load_index("nfc", root), questions, mode="sparse", k=10).metrics
    assert base["recall@1"] == 1.0
    baseline = _top(load_index("nfc", root), questions)
    for corpus in VARIANTS:
        idx = load_index(corpus, root)
        assert idx.manifest["analyzer"]["normalization"] == NORMALIZATION
        for qv, f in VARIANTS.items():
            qs = _questions(questions, f)
            got = evaluate_retrieval(idx, qs, mode="sparse", k=10).metrics
            assert got["recall@1"] == base["recall@1"] and got["mrr"] == base["mrr"], (corpus, qv)
            assert _top(idx, qs) == baseline, (corpus, qv)


@pytest.mark.parametrize("corpus,question", [("nfd", "nfd"), ("compat", "fullwidth")])
def test_the_reader_answers_as_on_nfc_text_with_offsets_into_the_original(variants, corpus, question):
    root, questions = variants
    asked = questions[:6]
    base = odqa.Pipeline.from_index("nfc", mode="sparse", index_dir=root).ask_batch([q.question for q in asked])
    pipe = odqa.Pipeline.from_index(corpus, mode="sparse", index_dir=root)
    got = pipe.ask_batch([VARIANTS[question](q.question) for q in asked])
    assert [r.answer is not None for r in base] == [r.answer is not None for r in got]
    for b, r in zip(base, got):
        if r.answer is None:
            continue
        original = r.passage(r.answer).text
        assert r.answer.text == original[r.answer.start:r.answer.end]       # the stored original text
        assert normalize(r.answer.text) == b.answer.text and r.answer.passage_id == b.answer.passage_id


def test_an_index_built_before_normalisation_is_stale_with_the_rebuild_command(variants):
    from odqa.index import manifest as mf
    root, _ = variants
    folder = root / "nfc"
    m = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    del m["analyzer"]["normalization"]
    reasons = mf.staleness(m, lambda name: m["analyzer"]["version"])
    assert any("normalis" in r and "--force" in r and "odqa index" in r for r in reasons), reasons
