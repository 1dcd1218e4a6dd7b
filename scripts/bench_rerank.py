"""Recall@1/@3 of an index's top-N against the same top-N reranked by a cross-encoder, for several N.

One retrieval at the largest N and one reranking pass over it per question: the reranked top-N for a
smaller N is the cross-encoder's order of the retriever's first N (the same scores), so every N is
compared on the same questions in one run. Prints one JSON object (also written to --out).

    python scripts/bench_rerank.py --index bench --reranker runs/reranker/best \\
        --questions bench/train_questions.jsonl --sample 200 --ns 10,20
"""

from __future__ import annotations

import argparse
import json
import random
import time

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--index", required=True)
    ap.add_argument("--index-dir", default=None)
    ap.add_argument("--reranker", required=True)
    ap.add_argument("--questions", required=True)
    ap.add_argument("--only-ids", default=None, help="JSONL whose `id`s restrict the questions (e.g. held-out ones)")
    ap.add_argument("--sample", type=int, default=0, help="a seeded random sample of this many questions (0 = all)")
    ap.add_argument("--ns", default="10,20")
    ap.add_argument("--mode", default="hybrid")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    from odqa.api.pipeline import Pipeline
    from odqa.corpus import load_questions
    from odqa.progress import bar
    from odqa.evaluation.retrieval import Judge

    ns = sorted(int(x) for x in args.ns.split(","))
    qs = [q for q in load_questions(args.questions) if q.answers]
    if args.only_ids:
        keep = {json.loads(line)["id"] for line in open(args.only_ids, encoding="utf-8") if line.strip()}
        qs = [q for q in qs if q.id in keep]
    if args.sample and args.sample < len(qs):
        qs = random.Random(0).sample(qs, args.sample)
    t0 = time.perf_counter()
    pipe = Pipeline.from_index(args.index, reader="none", mode=args.mode, k=min(ns), index_dir=args.index_dir,
                               reranker=args.reranker, rerank=max(ns), lazy_reader=True)
    load_s = time.perf_counter() - t0
    judge = Judge(pipe.index.canonical, pipe.index.passage_ids())
    texts = [q.question for q in qs]
    t0 = time.perf_counter()
    hits = [h for s in range(0, len(texts), 64) for h in pipe.passages_to_read(texts[s:s + 64], max(ns))]
    retrieve_s = time.perf_counter() - t0
    scores, pairs = [], 0
    t0 = time.perf_counter()
    with bar(len(texts), "reranking", "question") as pb:
        for s in range(0, len(texts), 16):
            scores += pipe.reranker.scores(texts[s:s + 16], hits[s:s + 16])
            pairs += sum(len(h) for h in hits[s:s + 16])
            pb.update(len(texts[s:s + 16]))
    rerank_s = time.perf_counter() - t0

    def recall(orders: list[list[str]], at: int) -> float:
        return round(float(np.mean([bool(judge.gold_set(q) & set(o[:at])) for q, o in zip(qs, orders)])), 4)

    rows = []
    for n in ns:
        base = [[h.passage.id for h in hs[:n]] for hs in hits]
        reranked = [[hs[i].passage.id for i in np.argsort(-sc[:n], kind="stable")] for hs, sc in zip(hits, scores)]
        rows.append({"n": n, "retrieved_recall@1": recall(base, 1), "retrieved_recall@3": recall(base, 3),
                     "retrieved_recall@n": recall(base, n),
                     "reranked_recall@1": recall(reranked, 1), "reranked_recall@3": recall(reranked, 3)})
    report = {"index": args.index, "mode": pipe.mode, "questions_file": args.questions, "questions": len(qs),
              "reranker": args.reranker, "rows": rows, "seconds": {"load": round(load_s, 1),
              "retrieve": round(retrieve_s, 1), "rerank": round(rerank_s, 1)},
              "rerank_ms_per_question_at_max_n": round(1000 * rerank_s / max(1, len(qs)), 1),
              "rerank_ms_per_pair": round(1000 * rerank_s / max(1, pairs), 2), "pairs": pairs}
    text = json.dumps(report, ensure_ascii=False, indent=1)
    print(text)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
