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
