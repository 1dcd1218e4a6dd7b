"""BM25 from raw term counts: bit-equal to bm25s's precomputed scores, and segment scoring with deletions
equal to a fresh fit of the remaining documents."""

import random

import numpy as np
import pytest

from odqa.config import BM25Config
from odqa.retrieval import bm25_terms as bt
from odqa.retrieval.segment_scores import Segment, SegmentScores
from odqa.retrieval.sparse import METHODS, BM25Scorer


def corpus(n, seed=0, vocab=40):
    rng = random.Random(seed)
    words = [f"w{i}" for i in range(vocab)]
    return [[rng.choice(words[:rng.randint(3, vocab)]) for _ in range(rng.randint(1, 30))] for _ in range(n)]


def counts_of(docs):
    vocab = {}
    flat = [vocab.setdefault(t, len(vocab)) for d in docs for t in d]
    ends = np.cumsum([0] + [len(d) for d in docs])
    return bt.term_counts(np.array(flat, dtype=np.int32), ends, len(vocab), block_docs=7), vocab


def fitted(docs, cfg):
    return BM25Scorer(cfg).fit(docs)


@pytest.mark.parametrize("method", list(METHODS))
def test_precompute_is_bm25s_to_the_bit(method):
    docs = corpus(60, seed=1)
    cfg = BM25Config(method=method, k1=1.2, b=0.75, delta=0.5)
    counts, vocab = counts_of(docs)
    data, non = bt.precompute(counts, cfg)
    model = fitted(docs, cfg)._model
    inv = {v: k for k, v in vocab.items()}
    for col in range(len(vocab)):
        theirs = model.vocab_dict[inv[col]]
        a, b = model.scores["indptr"][theirs], model.scores["indptr"][theirs + 1]
        c, d = counts.indptr[col], counts.indptr[col + 1]
        assert list(model.scores["indices"][a:b]) == list(counts.indices[c:d])
        assert data[c:d].tobytes() == np.asarray(model.scores["data"][a:b]).tobytes()
        if non is not None:
            assert non[col] == model.nonoccurrence_array[theirs]


def split(docs, cuts):
    out, start = [], 0
    for c in list(cuts) + [len(docs)]:
        out.append(docs[start:c])
        start = c
    return out


def segments_of(parts, deleted):
    segs, offset = [], 0
    for part in parts:
        counts, vocab = counts_of(part)
        gone = deleted[offset:offset + len(part)]
        df = counts.df() - np.bincount(np.repeat(np.arange(len(vocab)), counts.df())[gone[counts.indices]],
                                       minlength=len(vocab))
        segs.append(Segment(counts, vocab, df))
        offset += len(part)
    return segs


@pytest.mark.parametrize("method", list(METHODS))
def test_segments_with_deletions_rank_and_score_like_a_fresh_fit(method):
    docs = corpus(90, seed=2)
    cfg = BM25Config(method=method, k1=0.9, b=0.4, delta=1.0)
    deleted = np.zeros(len(docs), dtype=bool)
    deleted[[0, 5, 31, 32, 70, 89]] = True
    scorer = SegmentScores(segments_of(split(docs, [50, 75]), deleted), deleted, cfg)
    kept = [d for d, gone in zip(docs, deleted) if not gone]
    fresh = fitted(kept, cfg)
    queries = [["w1"], ["w3", "w7", "w3"], ["w0", "nope"], ["w39", "w2", "w11"], ["nope"]]
    for k in (1, 10, 200):
        a_docs, a_scores = scorer.top_k(queries, k)
        b_docs, b_scores = fresh.top_k(queries, k)
        assert a_docs.tolist() == b_docs.tolist()
        assert a_scores.tobytes() == b_scores.tobytes()


def test_a_deleted_document_never_comes_back():
    docs = [["a", "b"], ["a"], ["c"]]
    deleted = np.array([False, True, False])
    scorer = SegmentScores(segments_of([docs], deleted), deleted, BM25Config())
    d, s = scorer.top_k([["a"]], 3)
    assert d.shape == (1, 2) and d[0, 0] == 0 and s[0, 1] == 0     # position 1 is document 2 ("c"), score 0
