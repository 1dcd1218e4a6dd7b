"""Metadata filters on a large sparse index: does a filter matching 1 % of the passages still return k hits,
and what does it cost in queries per second?

  python scripts/bench_filters.py [--passages 100000] [--queries 300] [-k 10] [--analyzer whitespace]

Builds (once, in a temporary folder) a sparse index of synthetic passages: each has 40 words drawn from a
Zipf-like vocabulary of 20,000 Korean-looking words and a metadata field `bucket` = its number mod 100, so
`bucket=7` matches 1 % of them and `bucket in [0, ..., 9]` 10 %. Queries are 4 words drawn the same way.
Reports queries per second without a filter and with each filter (batches of 32 queries, best of 3 rounds),
how many queries got k hits, how many got every hit they could (min(k, allowed passages sharing a term with the
query), counted by scoring every passage), and the one-time cost of reading the metadata for the first filtered
search.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np


def words(n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    syllables = [chr(c) for c in range(0xAC00, 0xD7A4, 7)]
    return ["".join(rng.choice(syllables, size=int(rng.integers(2, 4)))) for _ in range(n)]


def draw(rng, vocab: list[str], p: np.ndarray, n: int) -> str:
    return " ".join(vocab[i] for i in rng.choice(len(vocab), size=n, p=p))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--passages", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("-k", type=int, default=10)
    ap.add_argument("--analyzer", default="whitespace", help="whitespace keeps the build light; mecab is the default "
                                                             "of odqa index (search cost is the same)")
    args = ap.parse_args()

    from odqa.api import build_index, load_index
    from odqa.retrieval.filters import parse_filters

    rng = np.random.default_rng(1)
    vocab = words(20_000)
    p = 1.0 / np.arange(1, len(vocab) + 1) ** 0.8
    p /= p.sum()
    tmp = Path(tempfile.mkdtemp(prefix="odqa-filters-"))
    corpus = tmp / "corpus.jsonl"
    with open(corpus, "w", encoding="utf-8") as fh:
        for i in range(args.passages):
            fh.write(json.dumps({"id": f"p{i}", "text": draw(rng, vocab, p, 40), "bucket": i % 100},
                                ensure_ascii=False) + "\n")
    t0 = time.perf_counter()
    build_index(corpus, "filters", None, [f"analyzer.name={args.analyzer}"], index_dir=tmp, quiet=True)
    build_s = time.perf_counter() - t0
    retriever = load_index("filters", tmp).sparse
    queries = [draw(rng, vocab, p, 4) for _ in range(args.queries)]

    csc = retriever.scorer._csc()
    terms = retriever.analyzer.tokenize(queries)

    def possible(flt) -> list[int]:
        """min(k, allowed passages sharing a term with each query), by scoring every passage."""
        rows = retriever.metadata.rows(flt) if flt else np.arange(args.passages)
        return [min(args.k, int((csc.scores(t)[rows] > 0).sum())) for t in terms]

    def run(flt) -> tuple[float, list[int]]:
        best, counts = 0.0, []
        for _ in range(3):
            counts, t = [], time.perf_counter()
            for s in range(0, len(queries), 32):
                counts += [len(h) for h in retriever.search(queries[s:s + 32], args.k, flt)]
            best = max(best, len(queries) / (time.perf_counter() - t))
        return best, counts

    t = time.perf_counter()
    retriever.metadata.columns()
    metadata_s = time.perf_counter() - t
    rows = {}
    for label, flt in (("none", None), ("bucket=7 (1 %)", parse_filters("bucket=7")),
                       ("bucket in [0..9] (10 %)", parse_filters([f"bucket in [{', '.join(map(str, range(10)))}]"]))):
        qps, counts = run(flt)
        rows[label] = {"queries_per_second": round(qps, 1), "queries_with_k_hits": sum(c == args.k for c in counts),
                       "queries_with_every_possible_hit": sum(c == m for c, m in zip(counts, possible(flt))),
                       "queries": len(counts)}
    print(json.dumps({"passages": args.passages, "k": args.k, "analyzer": args.analyzer,
                      "build_seconds": round(build_s, 1), "metadata_read_seconds": round(metadata_s, 2),
                      "machine": platform.processor() or platform.machine(), "results": rows},
                     ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
