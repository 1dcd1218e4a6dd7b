"""What keeps large indexes cheap: the streamed sparse build (same index as the in-memory one), passages
read on demand, BM25 scores memory-mapped (or not), and a swapped-out index still serving its readers."""

import json

import numpy as np
import pytest

from odqa.config import BM25Config, IndexConfig
from odqa.corpus import CorpusStream, load_corpus
from odqa.errors import CorpusError
from odqa.index import store
from odqa.index.indexing import build_index, load_index
from odqa.retrieval.sparse import BM25Scorer, SparseRetriever
from odqa.index.streaming import TokenIds, build_sparse_streamed, chunks
from odqa.text.analyzers import make_analyzer
from odqa.types import Passage
from tests.conftest import PASSAGES, QUESTIONS, write_jsonl

MORE = [{"id": f"x{i}", "title": f"제목{i % 3}", "text": f"{w}은 {i}번째 문장에 나오는 {v}이다."}
        for i, (w, v) in enumerate([("사과", "과일"), ("서울", "도시"), ("고양이", "동물"), ("소나무", "나무"),
                                    ("바다", "물"), ("피아노", "악기"), ("축구", "운동"), ("김치", "음식")])]
QUERIES = [q["question"] for q in QUESTIONS] + ["사과 과일", "김치 음식 한국", "없는단어", "서울 도시 바다"]


def _ranked(hits):
    return [[(h.passage.id, round(h.score, 5)) for h in row] for row in hits]


@pytest.mark.parametrize("analyzer", ["mecab", "whitespace"])
def test_streamed_build_gives_the_index_of_the_in_memory_build(tmp_path, analyzer):
    corpus = write_jsonl(tmp_path / "c.jsonl", PASSAGES + MORE)
    an = make_analyzer(analyzer)
    whole = load_corpus(corpus)
    expected = SparseRetriever.build(whole.passages, an, BM25Config()).search(QUERIES, 5)

    stream = CorpusStream(corpus)
    out = build_sparse_streamed(stream, tmp_path, an, BM25Config(), max_passages=3)   # several chunks
    assert (stream.n_passages, stream.n_duplicates, stream.aliases) == (len(whole.passages), 1, {"p6": "p1"})
    assert out.passages == len(whole.passages) and out.vocabulary > 0
    with store.PassageStore(tmp_path / store.PASSAGES) as passages:
        assert list(passages) == whole.passages
        got = SparseRetriever(passages, an, BM25Scorer.load(tmp_path / "bm25", BM25Config())).search(QUERIES, 5)
        assert _ranked(got) == _ranked(expected)
    assert json.loads((tmp_path / "bm25" / "odqa.json").read_text()) == {"include_title": True}


def test_build_index_streams_and_keeps_its_counts(tmp_path, index_root):
    rows = PASSAGES + [{"id": "e1", "title": "빈", "text": "   "}, {"id": "p7", "title": "한라산", "text": PASSAGES[0]["text"]}]
    res = build_index(write_jsonl(tmp_path / "c.jsonl", rows), "t", IndexConfig(), index_root)
    c = res.manifest["corpus"]
    assert (c["passages"], c["duplicates_merged"], c["empty_skipped"]) == (5, 2, 1)
    assert json.loads((index_root / "t" / "aliases.json").read_text()) == {"p6": "p1", "p7": "p1"}
    idx = load_index("t", index_root)
    assert isinstance(idx.passages, store.PassageStore) and [p.id for p in idx.passages] == ["p1", "p2", "p3", "p4", "p5"]
    assert idx.sparse.search(["백록담"], 1)[0][0].passage.id == "p1"


def test_a_corpus_stream_is_checked_as_it_is_read(tmp_path):
    empty = write_jsonl(tmp_path / "e.jsonl", [{"id": "a", "text": " "}])
    with pytest.raises(CorpusError, match="no passages with text"):
        list(CorpusStream(empty))
    clash = write_jsonl(tmp_path / "d.jsonl", [{"id": "a", "text": "하나"}, {"id": "a", "text": "둘"}])
    with pytest.raises(CorpusError, match="duplicate passage id 'a'"):
        list(CorpusStream(clash))
    with pytest.raises(CorpusError, match="not found"):
        CorpusStream(tmp_path / "missing.jsonl")
    s = CorpusStream(write_jsonl(tmp_path / "ok.jsonl", PASSAGES), dedup=False)
    assert len(list(s)) == 6 and s.n_duplicates == 0


def test_token_ids_and_chunks():
    ids = TokenIds()
    for doc in ([0, 1, 2], [], [2, 2, 5]):
        ids.append(doc)
    assert len(ids) == 3 and list(ids) == [[0, 1, 2], [], [2, 2, 5]] and ids[-1] == [2, 2, 5] and ids.n_terms == 6
    ps = [Passage(str(i), "", "가" * (i + 1)) for i in range(7)]
    assert [len(c) for c in chunks(ps, 3)] == [3, 3, 1]
    assert [len(c) for c in chunks(ps, 100, max_chars=6)] == [3, 2, 1, 1]


def test_passage_store_reads_on_demand(tmp_path):
    ps = [Passage(f"p{i}", f"제목 {i}", f"본문 {i}\u2028줄", f"d{i}") for i in range(10)]
    (tmp_path / "a").mkdir()
    with store.PassageWriter(tmp_path / "a") as w:
        w.write(ps)
    with store.PassageStore(tmp_path / "a" / store.PASSAGES) as s:
        assert len(s) == 10 and s[0] == ps[0] and s[-1] == ps[9] and s[2:5] == ps[2:5] and list(s) == ps
        with pytest.raises(IndexError):
            s[10]
    raw = (tmp_path / "a" / store.PASSAGES).read_bytes().rstrip(b"\n")        # no newline after the last line
    (tmp_path / "b.jsonl").write_bytes(raw)
    with store.PassageStore(tmp_path / "b.jsonl") as s:
        assert list(s) == ps and s[9] == ps[9]


def _mapped(a: np.ndarray) -> bool:
    """Whether `a` is a file mapping (or a plain view of one)."""
    return isinstance(a, np.memmap) or isinstance(a.base, np.memmap)


@pytest.mark.parametrize("mmap", [True, False])
def test_bm25_scores_are_mapped_or_read(corpus_file, index_root, mmap):
    build_index(corpus_file, "t", IndexConfig(), index_root)
    idx = load_index("t", index_root, mmap=mmap)
    scores = idx.sparse.scorer._csc()
    assert all(_mapped(a) == mmap for a in (scores.data, scores.indices, scores.indptr))
    assert idx.sparse.search(["훈민정음 창제"], 1)[0][0].passage.id == "p3"


def test_odqa_mmap_0_turns_mapping_off(corpus_file, index_root, monkeypatch):
    build_index(corpus_file, "t", IndexConfig(), index_root)
    assert _mapped(load_index("t", index_root).sparse.scorer._csc().data)
    monkeypatch.setenv("ODQA_MMAP", "0")
    assert not _mapped(load_index("t", index_root).sparse.scorer._csc().data)


def test_a_loaded_index_keeps_serving_after_a_rebuild_swaps_its_folder(tmp_path, index_root):
    a = write_jsonl(tmp_path / "a.jsonl", PASSAGES[:5])
    b = write_jsonl(tmp_path / "b.jsonl", [{"id": "dokdo", "title": "독도", "text": "독도는 동해에 있는 섬이다."}] + MORE)
    build_index(a, "t", IndexConfig(), index_root)
    old = load_index("t", index_root, mmap=True)
    before = _ranked(old.sparse.search(QUERIES, 3))
    build_index(b, "t", IndexConfig(), index_root)                  # the folder old maps is swapped out and removed
    assert _ranked(old.sparse.search(QUERIES, 3)) == before         # its mapped scores and open passages stay
    assert [p.id for p in old.passages] == ["p1", "p2", "p3", "p4", "p5"]
    new = load_index("t", index_root)
    assert new.sparse.search(["독도"], 1)[0][0].passage.id == "dokdo" and len(new.passages) == 9


def test_a_passages_file_that_does_not_match_the_manifest_is_refused(corpus_file, index_root):
    from odqa.errors import IndexCorrupt
    from odqa.index import manifest as mf
    build_index(corpus_file, "t", IndexConfig(), index_root)
    folder = index_root / "t"
    m = json.loads((folder / "manifest.json").read_text())
    m["corpus"]["passages"] = 4
    mf.write_manifest(folder, m)                                    # checksums fine, count wrong
    with pytest.raises(IndexCorrupt, match="passages.jsonl"):
        load_index("t", index_root)
