import shutil

import numpy as np
import pytest

from odqa.config import HybridConfig, IndexConfig, apply_overrides
from odqa.corpus import load_questions
from odqa.errors import OdqaError
from odqa.evaluation.retrieval import Judge, evaluate, sweep_fusion
from odqa.retrieval.hybrid import fuse
from odqa.index.indexing import build_index, load_index
from odqa.types import Hit, Passage
from tests.conftest import in_threads
from tests.tiny_model import make_tiny_backbone


def hits(pairs, source):
    return [Hit(Passage(pid, "", pid), s, r + 1, source) for r, (pid, s) in enumerate(pairs)]


def test_minmax_fusion_formula_and_missing_scores():
    sp = hits([("a", 10.0), ("b", 6.0), ("c", 2.0)], "sparse")
    de = hits([("c", 0.9), ("d", 0.8), ("a", 0.4)], "dense")
    out = fuse(sp, de, HybridConfig(method="minmax", alpha=0.5), 10)
    got = {h.passage.id: h.score for h in out}
    # sparse norm: a 1, b .5, c 0; dense norm: c 1, d .8, a 0; missing -> 0 (the list minimum)
    assert got == pytest.approx({"a": 0.5, "b": 0.25, "c": 0.5, "d": 0.4})
    assert [h.rank for h in out] == [1, 2, 3, 4] and out[0].source == "hybrid"
    only_dense = fuse(sp, de, HybridConfig(method="minmax", alpha=1.0), 2)
    assert [h.passage.id for h in only_dense] == ["c", "d"]


def test_rrf_fusion():
    sp = hits([("a", 3.0), ("b", 2.0)], "sparse")
    de = hits([("b", 0.9), ("c", 0.1)], "dense")
    got = {h.passage.id: h.score for h in fuse(sp, de, HybridConfig(method="rrf", rrf_k=60), 5)}
    assert got == pytest.approx({"a": 1 / 61, "b": 1 / 62 + 1 / 61, "c": 1 / 62})


def test_encoder_pools_normalises_and_buckets(tiny):
    from odqa.retrieval.dense import DenseEncoder
    enc = DenseEncoder(tiny, max_length=32, batch_size=3)
    texts = ["한라산", "세종대왕은 훈민정음을 창제하였다 " * 3, "김치", "지리산의 최고봉은 천왕봉이다"]
    batched = enc.encode(texts)
    assert batched.shape == (4, 32) and np.allclose(np.linalg.norm(batched, axis=1), 1, atol=1e-5)
    one_by_one = np.vstack([enc.encode([t]) for t in texts])
    assert np.allclose(batched, one_by_one, atol=1e-5)  # padding by length buckets does not change vectors
    assert enc.encode([], "query").shape == (0, 32)          # an empty batch is an empty matrix, not an error


def test_long_query_is_truncated_with_warning(tiny, caplog):
    from odqa.retrieval.dense import DenseEncoder
    enc = DenseEncoder(tiny, max_length=8)
    v = enc.encode(["한라산 " * 50], "query")
    assert v.shape == (1, 32) and "truncated" in caplog.text


def test_int8_quantisation_stays_close(tiny):
    from odqa.retrieval.dense import DenseEncoder
    texts = ["한라산은 제주도에 있는 산이다", "김치는 한국의 전통 음식이다"]
    fp = DenseEncoder(tiny).encode(texts)
    q8 = DenseEncoder(tiny, quantize="int8").encode(texts)
    assert (fp * q8).sum(1).min() > 0.95


def test_one_encoder_serves_concurrent_encode_calls(tiny, tmp_path, monkeypatch):
    """Threads sharing one encoder get the vectors sequential calls give; a query-side folder's passage
    runtime is made once however many threads ask for it first."""
    import json
    import threading

    from odqa.retrieval import dense
    from odqa.retrieval.dense import DenseEncoder
    made = []
    real = dense.make_runtime
    monkeypatch.setattr(dense, "make_runtime", lambda *a, **k: made.append(a[0]) or real(*a, **k))
    texts = ["한라산은 제주도에 있는 산이다", "김치는 한국의 전통 음식이다", "세종대왕은 훈민정음을 창제하였다 " * 3,
             "지리산", "이순신은 거북선으로 왜군을 물리쳤다", "백록담은 한라산 정상에 있다"]
    qs = tmp_path / "qs"                      # a query-side folder: passages go through the base encoder
    shutil.copytree(tiny, qs)
    (qs / "odqa_retriever.json").write_text(json.dumps({"side": "query", "passage_encoder": tiny}))
    for enc in (DenseEncoder(tiny, max_length=32, batch_size=2), DenseEncoder(str(qs), max_length=32, batch_size=2)):
        jobs = [(texts[i:] + texts[:i], kind) for i in range(len(texts)) for kind in ("query", "passage")]
        start = threading.Barrier(4)

        def work(n):
            start.wait()
            return {j: enc.encode(*jobs[j]) for j in range(n, len(jobs), 4)}

        got = {j: v for part in in_threads(4, work) for j, v in part.items()}
        assert len(got) == len(jobs)
        passages = enc._passages
        for j, (batch, kind) in enumerate(jobs):
            np.testing.assert_allclose(got[j], enc.encode(batch, kind), atol=1e-6)
        assert enc._passages is passages      # made once (query-side folder) or never (shared encoder)
    assert made == [tiny, str(qs), tiny]      # the shared encoder, the query-side one, its passage runtime once


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf", "ivfpq"])
def test_dense_index_build_retrieve_and_hybrid(kind, tiny, corpus_file, questions_file, index_root):
    cfg = apply_overrides(IndexConfig(), ["dense.enabled=true", f"dense.encoder={tiny}", f"dense.index={kind}"])
    res = build_index(corpus_file, "d", cfg, index_root)
    d = res.manifest["dense"]
    assert d["encoder"] == tiny and d["dim"] == 32 and len(d["encoder_sha256"]) == 64 and d["index"] == kind
    idx = load_index("d", index_root)
    dense_hits = idx.retriever("dense").search(["세종대왕은 훈민정음을 창제하였다"], 3)[0]
    assert dense_hits and dense_hits[0].source == "dense"
    assert dense_hits[0].score >= dense_hits[-1].score
    exact = idx.retriever("dense").search([idx.passages[2].title + "\n" + idx.passages[2].text], 1)[0]
    assert exact[0].passage.id == idx.passages[2].id  # a passage's own text finds it
    if kind == "hnsw":   # the search-time candidate list is kept through save and load
        assert idx.retriever("dense").index.hnsw.efSearch == cfg.dense.hnsw_ef_search == 128
    if kind == "ivfpq":  # dim/8 bytes a vector (32-d: 4 sub-vectors)
        assert idx.retriever("dense").index.pq.M == 4 and d["pq_m"] == 0
    hy = idx.retriever("hybrid", HybridConfig(alpha=0.0)).search(["거북선 왜군"], 2)[0]
    assert hy[0].passage.id == idx.sparse.search(["거북선 왜군"], 1)[0][0].passage.id


def test_adding_dense_reuses_sparse_and_refuses_other_encoder(tiny, tmp_path, corpus_file, index_root):
    build_index(corpus_file, "d", IndexConfig(), index_root)
    bm25_file = next((index_root / "d" / "bm25").glob("*.npy"))
    cfg = apply_overrides(IndexConfig(), ["dense.enabled=true", f"dense.encoder={tiny}"])
    res = build_index(corpus_file, "d", cfg, index_root)
    assert res.status == "rebuilt" and res.reasons == ["dense"]
    assert build_index(corpus_file, "d", cfg, index_root).status == "up-to-date"
    other = str(make_tiny_backbone(tmp_path / "other", seed=1))
    idx = load_index("d", index_root)
    with pytest.raises(OdqaError, match=f"built with encoder '{tiny}', not '{other}'"):
        idx.dense(other)
    assert bm25_file.name in {f.name for f in (index_root / "d" / "bm25").glob("*.npy")}
    with pytest.raises(OdqaError, match="has no dense part"):
        build_index(corpus_file, "s", IndexConfig(), index_root)
        load_index("s", index_root).retriever("dense")


def test_dense_vectors_follow_the_corpus_and_survive_a_query_encoder_swap(tiny, tmp_path, corpus_file, index_root):
    import json

    from odqa.retrieval.dense import DenseEncoder
    from tests.conftest import PASSAGES, write_jsonl
    cfg = apply_overrides(IndexConfig(), ["dense.enabled=true", f"dense.encoder={tiny}"])
    build_index(corpus_file, "d", cfg, index_root)
    rows = [{**p, "id": "n" + p["id"]} for p in PASSAGES[:3]]             # another corpus: 3 passages, not 5
    other = write_jsonl(tmp_path / "other.jsonl", rows)
    res = build_index(other, "d", cfg, index_root)        # new corpus, same dense settings: vectors re-encoded
    idx = load_index("d", index_root)
    assert res.manifest["dense"]["vectors"] == 3 and idx.dense().index.ntotal == 3
    own = rows[2]["title"] + "\n" + rows[2]["text"]
    assert idx.dense().search([own], 1)[0][0].passage.id == "np3"   # its own text finds it
    # a query-side folder over the same passage encoder: the stored vectors are kept, queries use the new model
    qs = tmp_path / "qs"
    shutil.copytree(tiny, qs)
    make_tiny_backbone(tmp_path / "q", seed=3)
    shutil.copy(tmp_path / "q" / "model.safetensors", qs / "model.safetensors")
    (qs / "odqa_retriever.json").write_text(json.dumps({"side": "query", "passage_encoder": tiny}))
    res = build_index(other, "d", apply_overrides(cfg, [f"dense.encoder={qs}"]), index_root)
    d = res.manifest["dense"]
    assert res.reasons == ["dense"] and d["vectors_from"] == tiny and d["encoder"] == str(qs)
    assert d["passage_sha256"] != d["encoder_sha256"] and "encode_seconds" in d
    idx = load_index("d", index_root)
    q = DenseEncoder(str(qs)).encode([rows[2]["text"]], "query")
    want = DenseEncoder(tiny).encode([own], "passage")
    hit = idx.dense().search([rows[2]["text"]], 3)[0]
    score = {h.passage.id: h.score for h in hit}["np3"]
    assert abs(score - float(q[0] @ want[0])) < 1e-4      # query from the new folder, passage from the base


def test_fusion_sweep(tiny, corpus_file, questions_file, index_root):
    cfg = apply_overrides(IndexConfig(), ["dense.enabled=true", f"dense.encoder={tiny}"])
    build_index(corpus_file, "d", cfg, index_root)
    idx = load_index("d", index_root)
    qs = load_questions(questions_file)
    judge = Judge(idx.canonical, {p.id for p in idx.passages})
    res = sweep_fusion(idx.retriever("hybrid"), qs, judge, {"alpha": [0.0, 0.5, 1.0]})
    rows = {r["params"]["alpha"]: r for r in res["rows"]}
    sparse = evaluate(idx.sparse.search, qs, judge)["metrics"]
    assert rows[0.0]["recall@1"] == sparse["recall@1"]  # alpha 0 is sparse alone
    assert res["best"]["recall@1"] == max(r["recall@1"] for r in res["rows"])
    # depth: candidates kept from each list before fusing; depth 1 can only return the two top-1s
    hy = idx.retriever("hybrid")
    res = sweep_fusion(hy, qs, judge, {"alpha": [0.5], "depth": [1, 5]})
    by_depth = {r["params"]["depth"]: r for r in res["rows"]}
    assert set(by_depth) == {1, 5} and by_depth[1]["recall@5"] <= by_depth[5]["recall@5"]
    def top1_of_each(texts, k):   # what depth 1 leaves, without fusing: the two top-1 hits
        return [[s[0], d[0]] for s, d in zip(idx.sparse.search(texts, 1), idx.retriever("dense").search(texts, 1))]
    assert by_depth[1]["recall@5"] == evaluate(top1_of_each, qs, judge)["metrics"]["recall@5"]
    with pytest.raises(OdqaError, match="sweepable: alpha, rrf_k, depth"):
        sweep_fusion(hy, qs, judge, {"k1": [1.0]})


def test_split_windows_cover_the_passage_and_repeat_the_prefix():
    from odqa.retrieval.dense import split_windows
    ids = [0] + [7, 8] + list(range(100, 120)) + [2]          # CLS, 2 prefix tokens, 20 body tokens, SEP
    assert split_windows(ids[:9], 10, 3, keep=2) == [ids[:9]]            # short: unchanged
    assert split_windows(ids, 10, 0) == [ids[:9] + [2]]                   # stride 0: cut, closing token kept
    wins = split_windows(ids, 10, 3, keep=2)
    assert all(len(w) <= 10 and w[:3] == [0, 7, 8] and w[-1] == 2 for w in wins)
    body = [w[3:-1] for w in wins]
    assert [b[0] for b in body] == [100, 103, 106, 109, 112, 115]         # starts `stride` apart
    assert body[-1][-1] == 119 and len(body[-1]) == 5                     # the last one reaches the end
    assert sorted({t for b in body for t in b}) == list(range(100, 120))  # nothing skipped
    wide = split_windows(ids, 10, 50, keep=2)                             # a stride above the width: capped
    assert [w[3] for w in wide] == [100, 106, 112, 118] and wide[-1][-2] == 119     # width 10 - 2 - 2


def test_windowed_index_scores_a_passage_by_its_best_window(tiny, tmp_path, index_root):
    import json

    from odqa.retrieval.dense import DenseEncoder, split_windows
    long_text = "세종대왕은 조선의 임금이다. " * 12 + "거북선은 이순신이 만든 배이다."
    rows = [{"id": "long", "title": "긴 문서", "text": long_text}, {"id": "a", "title": "한라산", "text": "한라산은 제주도에 있다."},
            {"id": "b", "title": "김치", "text": "김치는 발효 음식이다."}]
    corpus = tmp_path / "c.jsonl"
    corpus.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    cfg = apply_overrides(IndexConfig(), ["dense.enabled=true", f"dense.encoder={tiny}", "dense.max_length=24",
                                          "dense.window_stride=8"])
    d = build_index(corpus, "w", cfg, index_root).manifest["dense"]
    assert d["window_stride"] == 8 and d["vectors"] > 3
    idx = load_index("w", index_root)
    ret = idx.dense()
    assert len(ret.owners) == d["vectors"] and set(ret.owners.tolist()) == {0, 1, 2}
    query = "거북선은 이순신이 만든 배이다."
    hits = ret.search([query], 3)[0]
    assert sorted(h.passage.id for h in hits) == ["a", "b", "long"]       # k distinct passages
    enc = DenseEncoder(tiny, max_length=24)
    text = "긴 문서\n" + long_text
    wins = split_windows(enc._full_ids([text], "passage")[0], 24, 8)
    best = float((enc.encode_ids(wins) @ enc.encode([query], "query")[0]).max())
    assert next(h.score for h in hits if h.passage.id == "long") == pytest.approx(best, abs=1e-4)
    # changing the stride rebuilds the dense part only; a bad stride or a broken owners file is one clear error
    res = build_index(corpus, "w", apply_overrides(cfg, ["dense.window_stride=16"]), index_root)
    assert res.reasons == ["dense"] and res.manifest["dense"]["vectors"] < d["vectors"]
    with pytest.raises(OdqaError, match="config field 'dense.window_stride': input should be greater than or equal to 0, got -1"):
        build_index(corpus, "w", apply_overrides(cfg, ["dense.window_stride=-1"]), index_root)
    np.save(index_root / "w" / "dense" / "owners.npy", np.array([0, 1]))
    with pytest.raises(OdqaError, match="owners.npy: truncated or grown"):   # caught by its recorded size
        load_index("w", index_root).dense()


def test_zscore_fusion_standardises_each_list():
    sp = hits([("a", 10.0), ("b", 6.0), ("c", 2.0)], "sparse")        # mean 6, std sqrt(32/3)
    de = hits([("c", 0.9), ("d", 0.6), ("e", 0.3)], "dense")          # mean 0.6, std sqrt(0.06)
    got = {h.passage.id: h.score for h in fuse(sp, de, HybridConfig(method="zscore", alpha=0.5), 10)}
    zs, zd = (32 / 3) ** 0.5, 0.06 ** 0.5
    low_s, low_d = -4 / zs, -0.3 / zd                                  # each list's lowest z-score
    assert got == pytest.approx({"a": 0.5 * (4 / zs) + 0.5 * low_d, "b": 0.5 * low_d, "c": 0.5 * low_s + 0.5 * 0.3 / zd,
                                 "d": 0.5 * low_s, "e": 0.5 * low_s + 0.5 * low_d})
    one = fuse(hits([("a", 3.0)], "sparse"), de, HybridConfig(method="zscore", alpha=0.0), 2)
    assert [h.passage.id for h in one] == ["a", "c"]      # a one-hit list still ranks its hit first
    with pytest.raises(OdqaError, match="config field 'method': input should be 'minmax', 'zscore' or 'rrf', got 'mean'"):
        fuse(sp, de, HybridConfig(method="mean"), 3)


def test_ivfpq_codes_take_pq_m_bytes_a_vector_and_keep_nprobe():
    import faiss

    from odqa.config import DenseConfig
    from odqa.errors import OdqaError
    from odqa.retrieval.dense import build_faiss
    rng = np.random.default_rng(0)
    vecs = rng.standard_normal((2000, 64)).astype("float32")
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    index = build_faiss(vecs, DenseConfig(index="ivfpq", ivf_nlist=16, ivf_nprobe=16, pq_m=16))
    assert index.code_size == 16 and index.pq.nbits == 8 and index.nprobe == 16 and index.ntotal == 2000
    exact = faiss.IndexFlatIP(64)
    exact.add(vecs)
    q = vecs[:50] + 0.05 * rng.standard_normal((50, 64)).astype("float32")
    top_pq = index.search(q, 10)[1]
    top = exact.search(q, 1)[1]
    assert np.mean([t[0] in row for t, row in zip(top, top_pq)]) >= 0.9    # all lists searched: PQ alone
    with pytest.raises(OdqaError, match="pq_m 10 must divide the vector size 64"):
        build_faiss(vecs, DenseConfig(index="ivfpq", pq_m=10))


def test_windowed_encoding_prints_no_tokenizer_length_warning(tiny, capfd, caplog):
    """odqa cuts and windows passages itself: the tokenizer's "longer than the specified maximum sequence
    length" warning is not true of it and must not reach users."""
    from odqa.modeling.backbone import load_backbone
    from odqa.retrieval.dense import DenseEncoder
    tokenizer, model = load_backbone(tiny)
    tokenizer.model_max_length = 16                    # a limit the text below passes
    enc = DenseEncoder(tiny, max_length=16, model=model, tokenizer=tokenizer)
    long = " ".join(["한라산 높이 백록담"] * 40)
    enc.encode([long])
    enc.window_ids([long], 8)
    captured = capfd.readouterr()
    assert "Token indices sequence length" not in captured.err + captured.out + caplog.text
