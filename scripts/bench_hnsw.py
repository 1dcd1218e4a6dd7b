"""HNSW search-time candidate list (efSearch) against exact search, on an index's own vectors.

  python scripts/bench_hnsw.py --bench bench --index indexes/bench [--ef 16,64,128,256]

Reads the flat FAISS index built by `odqa index --dense`, builds HNSW graphs over the same
vectors for each efSearch, and reports dev recall and single-query latency (k 100).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench", type=Path, default=Path("bench"))
    ap.add_argument("--index", type=Path, default=Path("indexes/bench"))
    ap.add_argument("--encoder", default="offline:multilingual-e5-small")
    ap.add_argument("--ef", default="16,64,128,256")
    ap.add_argument("--m", type=int, default=32)
    args = ap.parse_args()

    import faiss
    from odqa.config import DenseConfig
    from odqa.corpus import load_corpus, load_questions
    from odqa.retrieval.dense import DenseEncoder, DenseRetriever, build_faiss
    from odqa.evaluation.retrieval import Judge, evaluate

    corpus = load_corpus(args.bench / "corpus.jsonl")
    flat = faiss.read_index(str(args.index / "dense" / "index.faiss"))
    vecs = flat.reconstruct_n(0, flat.ntotal)
    dev = load_questions(args.bench / "dev_questions.jsonl")
    judge = Judge(corpus.canonical, {p.id for p in corpus.passages})
    enc = DenseEncoder(args.encoder, 256, 32)
    q = enc.encode([d.question for d in dev], "query")
    for ef in (int(x) for x in args.ef.split(",")):
        index = build_faiss(vecs, DenseConfig(index="hnsw", hnsw_m=args.m, hnsw_ef_search=ef))
        m = evaluate(DenseRetriever(corpus.passages, enc, index).search, dev, judge)["metrics"]
        t = time.perf_counter()
        for i in range(len(q)):
            index.search(q[i:i + 1], 100)
        ms = (time.perf_counter() - t) / len(q) * 1000
        print(json.dumps({"ef_search": ef, **{k: round(m[k], 4) for k in ("recall@1", "recall@5", "recall@20", "mrr")},
                          "search_ms_per_query_k100": round(ms, 3)}), flush=True)


if __name__ == "__main__":
    main()
