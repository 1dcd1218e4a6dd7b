"""Synthetic scale run: how build time, memory and queries/s grow with corpus size.

  python scripts/bench_scale.py --bench bench --sizes 100000,1000000

Passages are generated from the benchmark corpus's own words (frequency-weighted,
20-60 words each, fixed seed); queries are 4-8 words drawn from random generated
passages. Each size runs in a fresh process so peak memory (max RSS) is its own.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def generate(bench: Path, n: int, seed: int = 0) -> tuple[list[str], list[str]]:
    counts = collections.Counter()
    with open(bench / "corpus.jsonl", encoding="utf-8") as fh:
        for line in fh:
            counts.update(json.loads(line)["text"].split())
    words = np.array(list(counts))
    p = np.array(list(counts.values()), dtype=np.float64)
    p /= p.sum()
    rng = np.random.default_rng(seed)
    lengths = rng.integers(20, 61, size=n)
    flat = rng.choice(len(words), size=int(lengths.sum()), p=p)
    texts, pos = [], 0
    for ln in lengths:
        texts.append(" ".join(words[flat[pos:pos + ln]]))
        pos += ln
    queries = []
    for i in rng.integers(0, n, size=1000):
        ws = texts[i].split()
        queries.append(" ".join(rng.choice(ws, size=min(len(ws), int(rng.integers(4, 9))), replace=False)))
    return texts, queries


def run_one(bench: Path, n: int, analyzer: str) -> dict:
    from odqa.config import BM25Config
    from odqa.retrieval.sparse import BM25Scorer
    from odqa.text.analyzers import make_analyzer

    t = time.perf_counter()
    texts, queries = generate(bench, n)
    gen_s = time.perf_counter() - t
    an = make_analyzer(analyzer, workers=os.cpu_count() or 2)
    t = time.perf_counter()
    terms = an.tokenize(texts)
    analyse_s = time.perf_counter() - t
    chars = sum(map(len, texts))
    del texts
    t = time.perf_counter()
    scorer = BM25Scorer(BM25Config()).fit(terms)
    fit_s = time.perf_counter() - t
    del terms
    q_terms = an.tokenize(queries)
    t = time.perf_counter()
    scorer.top_k(q_terms, 10)
    q_s = time.perf_counter() - t
    return {"passages": n, "characters": chars, "generate_s": round(gen_s, 1), "analyse_s": round(analyse_s, 1),
            "analyse_chars_per_s": round(chars / analyse_s), "bm25_index_s": round(fit_s, 1),
            "build_s": round(analyse_s + fit_s, 1), "qps_scoring": round(len(queries) / q_s, 1),
            "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench", type=Path, default=Path("bench"))
    ap.add_argument("--sizes", default="100000,1000000")
    ap.add_argument("--analyzer", default="mecab")
    ap.add_argument("--one", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(run_one(args.bench, args.one, args.analyzer)))
        return
    for n in map(int, args.sizes.split(",")):
        out = subprocess.run([sys.executable, __file__, "--bench", str(args.bench), "--analyzer", args.analyzer,
                              "--one", str(n)], capture_output=True, text=True, check=True)
        print(out.stdout.strip().splitlines()[-1], flush=True)


if __name__ == "__main__":
    main()
