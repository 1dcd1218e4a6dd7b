import math

import numpy as np
import pytest

from odqa.config import BM25Config
from odqa.errors import OdqaError
from odqa.retrieval.sparse import METHODS, BM25Scorer

DOCS = [["a", "b", "b"], ["b", "c"], ["c", "c", "c", "d", "e"], ["a", "e"]]


def atire(query, docs, k1, b):
    n = len(docs)
    avgdl = sum(map(len, docs)) / n
    out = []
    for d in docs:
        s = 0.0
        for t in set(query):
            df = sum(1 for x in docs if t in x)
            tf = d.count(t)
            if df == 0 or tf == 0:
                continue
            idf = math.log(n / df)
            s += idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * len(d) / avgdl))
        out.append(s)
    return np.array(out)


@pytest.mark.parametrize("k1,b", [(1.2, 0.75), (0.3, 0.2), (2.0, 1.0)])
def test_atire_matches_formula(k1, b):
    scorer = BM25Scorer(BM25Config(method="atire", k1=k1, b=b)).fit(DOCS)
    for q in (["a"], ["b", "e"], ["c", "d", "zzz"]):
        expected = atire(q, DOCS, k1, b)
        idx, sc = scorer.top_k([q], 4)
        got = np.zeros(4)
        got[idx[0]] = sc[0]
        assert np.allclose(got, expected, atol=1e-5), (q, got, expected)


def test_top_k_sorted_and_capped():
    scorer = BM25Scorer(BM25Config()).fit(DOCS)
    idx, sc = scorer.top_k([["c"]], 10)
    assert idx.shape == (1, 4) and int(idx[0, 0]) == 2
    assert list(sc[0]) == sorted(sc[0], reverse=True)


@pytest.mark.parametrize("method", list(METHODS))
def test_every_variant_ranks_the_obvious_document_first(method):
    scorer = BM25Scorer(BM25Config(method=method, k1=1.2, b=0.75)).fit(DOCS)
    idx, _ = scorer.top_k([["d"]], 1)
    assert int(idx[0, 0]) == 2


def test_reference_backend_agrees_on_ranking():
    docs = DOCS + [["f", "g"], ["g", "h", "h"], ["x"], ["y", "z"], ["a", "x", "y"]]
    fast = BM25Scorer(BM25Config(method="robertson", k1=1.5, b=0.75)).fit(docs)
    ref = BM25Scorer(BM25Config(method="robertson", k1=1.5, b=0.75), backend="rank-bm25").fit(docs)
    for q in (["d"], ["h", "e"], ["b", "z"]):
        (fi,), (fs,) = fast.top_k([q], len(docs))
        (ri,), (rs,) = ref.top_k([q], len(docs))
        n = int((fs > 0).sum())
        assert n > 0 and list(fi[:n]) == list(ri[:n])


def test_unknown_method():
    with pytest.raises(OdqaError, match="config field 'method': input should be 'atire'"):
        BM25Scorer(BM25Config(method="okapi"))


# --- the direct scoring path (odqa.retrieval.csc_scores) against bm25s's own retrieve ---------------

def _random_corpus(rng, n_docs=300, vocab=40):
    """Short documents over a small vocabulary, so many documents tie on many queries."""
    words = [f"w{i}" for i in range(vocab)]
    docs = [[str(w) for w in rng.choice(words, size=rng.integers(1, 6))] for _ in range(n_docs)]
    queries = [[str(w) for w in rng.choice(words + ["unknown", "zz"], size=rng.integers(1, 5))] for _ in range(200)]
    return docs, queries + [["unknown"], ["w1", "w1", "w1"], []]


def _same_as_bm25s(scorer: BM25Scorer, queries, k):
    idx, sc = scorer.top_k(queries, k)
    ref = scorer._model.retrieve(queries, k=k, show_progress=False, n_threads=0)
    assert idx.shape == ref.documents.shape == (len(queries), k) and sc.dtype == ref.scores.dtype
    tied_rows = 0
    for q, mine, s, theirs, t in zip(queries, idx, sc, ref.documents, ref.scores):
        assert np.array_equal(s, t), q                   # the same scores, bit for bit, rank by rank
        full = scorer._model.get_scores(q) if q else np.zeros(scorer.n_docs, np.float32)
        assert np.array_equal(full[mine], s)             # each document carries its own score
        assert len(set(mine.tolist())) == k
        for value in np.unique(s):                       # equal scores: document order, the first ones
            at = np.flatnonzero(s == value)
            assert list(mine[at]) == sorted(mine[at]), q
            if at[-1] == k - 1:                          # the group cut at k keeps the lowest documents
                assert list(mine[at]) == list(np.flatnonzero(full == value)[:len(at)])
            else:
                assert set(mine[at]) == set(theirs[at]) == set(np.flatnonzero(full == value))
            tied_rows += len(at) > 1
        if len(np.unique(s)) == k and (full == s[-1]).sum() == 1:    # no ties: exactly bm25s's ranking
            assert np.array_equal(mine, theirs)
    return tied_rows


@pytest.mark.parametrize("method", list(METHODS))
def test_direct_top_k_is_bm25s_ranking_with_ties_in_document_order(method):
    rng = np.random.default_rng(7)
    docs, queries = _random_corpus(rng)
    scorer = BM25Scorer(BM25Config(method=method, k1=0.9, b=0.4)).fit(docs)
    assert _same_as_bm25s(scorer, queries, 10) > 0       # the data does exercise ties
    _same_as_bm25s(scorer, queries[:20], len(docs))      # k = every document
    idx, sc = scorer.top_k([["unknown"], []], 5)         # nothing known: zeros, the first documents
    assert not sc.any() and idx.tolist() == [[0, 1, 2, 3, 4]] * 2


def test_direct_top_k_on_a_loaded_memory_mapped_index(tmp_path):
    import bm25s

    rng = np.random.default_rng(3)
    docs, queries = _random_corpus(rng, n_docs=120)
    cfg = BM25Config(method="bm25+", k1=1.2, b=0.75)
    built = BM25Scorer(cfg).fit(docs)
    built.save(tmp_path / "bm25")
    loaded = BM25Scorer.load(tmp_path / "bm25", cfg)
    mapped = BM25Scorer(cfg)
    mapped._model = bm25s.BM25.load(str(tmp_path / "bm25"), mmap=True, show_progress=False)
    mapped.n_docs = built.n_docs
    assert isinstance(mapped._model.scores["data"], np.memmap)
    want = built.top_k(queries, 10)
    for other in (loaded, mapped):
        got = other.top_k(queries, 10)
        assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])
    _same_as_bm25s(mapped, queries, 10)


@pytest.mark.parametrize("method", list(METHODS))
def test_a_loaded_index_scores_as_bm25s_loads_it_without_importing_bm25s(tmp_path, method):
    import json
    import subprocess
    import sys

    rng = np.random.default_rng(5)
    docs, queries = _random_corpus(rng, n_docs=80)
    cfg = BM25Config(method=method, k1=1.1, b=0.6)
    BM25Scorer(cfg).fit(docs).save(tmp_path / "bm25")
    mapped = BM25Scorer(cfg)
    mapped._model = __import__("bm25s").BM25.load(str(tmp_path / "bm25"), mmap=True, show_progress=False)
    mapped.n_docs = mapped._model.scores["num_docs"]
    want = mapped.top_k(queries, 7)
    code = ("import json, sys; from pathlib import Path; from odqa.config import BM25Config; "
            "from odqa.retrieval.sparse import BM25Scorer; "
            f"s = BM25Scorer.load(Path(sys.argv[1]), BM25Config(method={method!r}, k1=1.1, b=0.6)); "
            "i, v = s.top_k(json.loads(sys.argv[2]), 7); "
            "print(json.dumps([i.tolist(), v.tolist(), 'bm25s' in sys.modules, 'numba' in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "bm25"), json.dumps(queries)],
                         capture_output=True, text=True, check=True).stdout
    idx, scores, bm25s_imported, numba_imported = json.loads(out)
    assert idx == want[0].tolist() and np.array_equal(np.float32(scores), want[1])
    assert not bm25s_imported and not numba_imported


def test_a_loaded_scorer_saves_again(tmp_path):
    cfg = BM25Config()
    BM25Scorer(cfg).fit(DOCS).save(tmp_path / "a")
    BM25Scorer.load(tmp_path / "a", cfg).save(tmp_path / "b")
    again = BM25Scorer.load(tmp_path / "b", cfg)
    assert np.array_equal(again.top_k([["d"]], 2)[0], BM25Scorer(cfg).fit(DOCS).top_k([["d"]], 2)[0])


def test_refit_drops_the_old_matrix():
    scorer = BM25Scorer(BM25Config()).fit(DOCS)
    assert int(scorer.top_k([["d"]], 1)[0][0, 0]) == 2
    scorer.fit([["x"], ["d", "y"]])
    assert int(scorer.top_k([["d"]], 1)[0][0, 0]) == 1
