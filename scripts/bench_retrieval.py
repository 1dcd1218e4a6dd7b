"""Retrieval benchmark, side by side in one run (see BENCHMARKS.md for figures).

  python scripts/make_bench.py --data ../shared/data --out bench
  python scripts/bench_retrieval.py --bench bench [--analyzers mecab,kiwi]

For each analyzer: characters/s of analysis (corpus texts, all workers), k1/b chosen
by sweep on the TRAIN questions, then dev recall at those settings. Then, on the
default analyzer's tokens: index build time and queries/s of odqa (bm25s) against
rank-bm25 BM25Okapi on exactly the same tokens.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from odqa.config import BM25Config
from odqa.corpus import load_corpus, load_questions
from odqa.evaluation.retrieval import Judge, evaluate, sweep_bm25
from odqa.retrieval.sparse import BM25Scorer, SparseRetriever, passage_text
from odqa.text.analyzers import make_analyzer

GRID = {"k1": [0.3, 0.6, 0.9, 1.2, 1.5], "b": [0.1, 0.2, 0.3, 0.5, 0.75]}


def timed(fn, *a, **kw):
    t = time.perf_counter()
    out = fn(*a, **kw)
    return out, time.perf_counter() - t


def analyzer_part(name, corpus, texts, train, dev, judge) -> dict:
    an = make_analyzer(name, workers=os.cpu_count() or 2)
    an(texts[0])  # load models before timing
    _, secs = timed(an.tokenize, texts)
    sweep = sweep_bm25(corpus.passages, an, BM25Config(), True, train, judge, GRID)
    cfg = BM25Config(k1=sweep["best"]["params"]["k1"], b=sweep["best"]["params"]["b"])
    ret = SparseRetriever.build(corpus.passages, an, cfg)
    m = evaluate(ret.search, dev, judge)["metrics"]
    return {"analyzer": name, "version": an.version, "chars_per_s": round(sum(map(len, texts)) / secs),
            "analysis_seconds": round(secs, 2), "chosen_on_train": sweep["best"]["params"],
            "train_recall@1": sweep["best"]["recall@1"],
            "dev": {k: round(v, 4) for k, v in m.items() if k.startswith(("recall", "mrr"))},
            "end_to_end_qps": m["queries_per_second"]}


def speed_part(name, corpus, texts, dev, cfg: BM25Config) -> dict:
    an = make_analyzer(name, workers=os.cpu_count() or 2)
    doc_terms = an.tokenize(texts)
    q_terms = an.tokenize([q.question for q in dev])
    ours, t_ours = timed(BM25Scorer(cfg).fit, doc_terms)
    ref_cfg = BM25Config("robertson", cfg.k1, cfg.b)  # BM25Okapi is Robertson's formula
    ref, t_ref = timed(BM25Scorer(ref_cfg, backend="rank-bm25").fit, doc_terms)
    k = 10
    (o_idx, _), t_oq = timed(ours.top_k, q_terms, k)
    (r_idx, _), t_rq = timed(ref.top_k, q_terms, k)
    ours_okapi = BM25Scorer(ref_cfg).fit(doc_terms)
    (oo_idx, _), _ = timed(ours_okapi.top_k, q_terms, k)
    agree = float(np.mean(oo_idx[:, 0] == r_idx[:, 0]))
    return {"passages": len(texts), "queries": len(dev), "k": k,
            "build_seconds": {"odqa_bm25s": round(t_ours, 3), "rank_bm25": round(t_ref, 3)},
            "qps_same_tokens": {"odqa_bm25s": round(len(dev) / t_oq, 1), "rank_bm25": round(len(dev) / t_rq, 2)},
            "speedup": round(t_rq / t_oq, 1),
            "top1_agreement_robertson_vs_bm25okapi": round(agree, 4)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench", type=Path, default=Path("bench"))
    ap.add_argument("--analyzers", default="mecab,kiwi")
    ap.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = ap.parse_args()
    corpus = load_corpus(args.bench / "corpus.jsonl")
    train = load_questions(args.bench / "train_questions.jsonl")
    dev = load_questions(args.bench / "dev_questions.jsonl")
    judge = Judge(corpus.canonical, {p.id for p in corpus.passages})
    texts = [passage_text(p, True) for p in corpus.passages]
    result = {"cores": os.cpu_count(), "analyzers": []}
    for name in args.analyzers.split(","):
        result["analyzers"].append(analyzer_part(name, corpus, texts, train, dev, judge))
        print(json.dumps(result["analyzers"][-1], ensure_ascii=False), flush=True)
    best = result["analyzers"][0]
    cfg = BM25Config(k1=best["chosen_on_train"]["k1"], b=best["chosen_on_train"]["b"])
    result["speed"] = speed_part(best["analyzer"], corpus, texts, dev, cfg)
    print(json.dumps(result["speed"]), flush=True)
    if args.out:
        args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
